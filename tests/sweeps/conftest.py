"""The sweep tests' data files, and a run directory's lock held as another process holds it."""

import pytest

from fcnn_cli.data import simulate
from fcnn_cli.data.tables import write_table


@pytest.fixture(scope="module")
def quakes(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "q.csv"
    write_table(simulate.earthquakes(n=160, seed=1), path)
    return str(path)


@pytest.fixture
def own_quakes(tmp_path):
    """A data file of the test's own, to change under a sweep."""
    path = tmp_path / "data" / "q.csv"
    path.parent.mkdir()
    write_table(simulate.earthquakes(n=160, seed=1), path)
    return path


@pytest.fixture
def held_elsewhere():
    """Holds the lock of a run directory as another process does (flock locks conflict
    between open files, whoever opened them); released at the end of the test."""
    import fcntl

    from fcnn_cli.results import runs

    held = []

    def hold(run_dir):
        run_dir.mkdir(parents=True)
        held.append(open(run_dir / runs.LOCK_FILE, "a"))
        fcntl.flock(held[-1], fcntl.LOCK_EX | fcntl.LOCK_NB)
    yield hold
    for lock in held:
        lock.close()
