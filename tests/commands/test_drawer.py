"""fcnn train's plots drawn by a second process."""

import os
import subprocess
import sys

import pytest

from fcnn_cli.commands import drawer
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import simulate
from fcnn_cli.results import plots
from plotted import saved_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return saved_run(tmp_path_factory.mktemp("runs"), simulate.earthquakes(n=300, seed=2),
                     "quakes")


@pytest.mark.parametrize("modules, cpus, world, worth", [
    ({}, 2, "1", True), ({}, 1, "1", False), ({"torch": None}, 8, "1", False),
    ({}, 8, "4", False)])
def test_a_drawer_is_started_only_where_it_pays(monkeypatch, modules, cpus, world, worth):
    monkeypatch.setenv("WORLD_SIZE", world)
    assert drawer.worth_it(modules, cpus) is worth


def test_it_draws_the_plots_the_command_would_have_drawn(run, tmp_path):
    theirs = drawer.Drawer()
    try:
        written = theirs.draw(run, quiet=True)
    finally:
        theirs.close()
    ours = plots.plot_run(run, tmp_path / "ours")
    assert [p.name for p in written] == [p.name for p in ours] and len(ours) >= 6
    assert all(p.parent == run / "plots" for p in written)
    for a, b in zip(written, ours):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_what_stops_its_plots_is_raised_as_the_command_would(tmp_path):
    theirs = drawer.Drawer()
    try:
        with pytest.raises(FcnnError, match="not a run directory"):
            theirs.draw(tmp_path, quiet=True)
    finally:
        theirs.close()


def test_one_that_is_gone_leaves_the_plots_to_the_command(run):
    theirs = drawer.Drawer()
    theirs.process.kill()
    theirs.process.wait()
    try:
        assert theirs.draw(run, quiet=True) is None
    finally:
        theirs.close()


def test_closed_unasked_it_ends_and_draws_nothing(tmp_path):
    theirs = drawer.Drawer()
    theirs.close()
    assert theirs.process.returncode is not None and not list(tmp_path.iterdir())


def test_the_command_draws_its_plots_through_one(tmp_path):
    """A whole `fcnn train` (torch not yet imported: the drawer starts) whose plots the drawer
    drew: the command's own process never imports matplotlib."""
    data = tmp_path / "q.csv"
    simulate.earthquakes(n=300, seed=3).frame.to_csv(data, index=False)
    code = ("import sys; sys.argv = ['fcnn'] + sys.argv[1:]\n"
            "from fcnn_cli.commands import cli\n"
            "try: cli.main(prog_name='fcnn')\n"
            "except SystemExit as e: assert not e.code, e.code\n"
            "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, "train", str(data), "--target", "x",
                           "--target", "y", "--epochs", "2", "-q", "-o", str(tmp_path / "r")],
                          capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "2"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"
    drawn = sorted(p.name for p in (tmp_path / "r" / "plots").iterdir())
    assert "learning_curves.png" in drawn and "position_map.png" in drawn
