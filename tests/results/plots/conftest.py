import pytest

from fcnn_cli.data import simulate
from plotted import saved_run


@pytest.fixture(scope="session")
def quake_run(tmp_path_factory):
    return saved_run(tmp_path_factory.mktemp("runs"), simulate.earthquakes(n=800, seed=2),
                     "quakes")


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plots draw, each still saved (and so laid out and rendered)."""
    from matplotlib.figure import Figure

    figures, savefig = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig",
                        lambda fig, *args, **kw: figures.append(fig) or savefig(fig, *args, **kw))
    return figures
