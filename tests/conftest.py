import os

import pytest
from click.testing import CliRunner

# One CPU thread for every run the tests start, in process and in subprocesses (cpu_budget
# honours OMP_NUM_THREADS): where fcnn chooses its thread count by timing, two runs on a busy
# machine may take different counts and differ in their last bits, and a test comparing them
# would depend on the load. The choosing itself is tested with fake clocks and CPU sets.
os.environ["OMP_NUM_THREADS"] = "1"

from fcnn_cli.data import simulate
from fcnn_cli.engine import train


def pytest_collection_modifyitems(config, items):
    """Tests marked cuda are skipped where no CUDA GPU is present."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="session")
def quakes():
    return simulate.earthquakes(n=600, seed=1)


@pytest.fixture(scope="session")
def trained(quakes):
    """A small network trained briefly: enough to test plumbing, not accuracy."""
    return train.fit(quakes, train.TrainConfig(epochs=3, batch_size=64, seed=3))


@pytest.fixture(scope="session")
def quakes_csv(tmp_path_factory, quakes):
    from fcnn_cli.data.writer import write_table

    path = tmp_path_factory.mktemp("data") / "quakes.csv"
    write_table(quakes, path)
    return path


@pytest.fixture(scope="session")
def model_path(tmp_path_factory, trained):
    from fcnn_cli.network import checkpoint

    path = tmp_path_factory.mktemp("model") / "model.pt"
    checkpoint.save(trained.predictor, path)
    return path


@pytest.fixture(scope="session")
def interrupted_run(tmp_path_factory, quakes_csv):
    """A run directory as Ctrl-C leaves it after epoch 2 of 3 (copy it before changing it)."""
    from fcnn_cli.results import runs
    from fcnn_cli.data.tables import read_table

    def stop(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    result = train.fit(read_table(quakes_csv), train.TrainConfig(epochs=3, batch_size=64),
                       on_epoch=stop)
    assert result.interrupted
    return runs.save_run(result, tmp_path_factory.mktemp("runs") / "cut", str(quakes_csv))


@pytest.fixture
def interrupted(tmp_path, interrupted_run):
    """A fresh copy of ``interrupted_run`` to resume or to damage."""
    import shutil

    return shutil.copytree(interrupted_run, tmp_path / "cut")


@pytest.fixture
def logged(caplog, monkeypatch):
    """caplog that sees fcnn's messages even after a CLI test has set its logger up (its own
    handler, no propagation, a quieter level)."""
    import logging

    monkeypatch.setattr(logging.getLogger("fcnn_cli"), "propagate", True)
    caplog.set_level(logging.INFO, logger="fcnn_cli")
    return caplog


@pytest.fixture(scope="module")
def quake_frame():
    """Earthquakes to write as Parquet pieces (tests/pieces.py) for streamed reading."""
    return simulate.earthquakes(n=3000, seed=4).frame


@pytest.fixture
def quake_file(tmp_path, quake_frame):
    from pieces import write_parquet

    return write_parquet(quake_frame, tmp_path / "q.parquet", ["x", "y"])
