"""The collector paused while a command loads its libraries, and what they made frozen."""

import gc
import subprocess
import sys

import pytest

from fcnn_cli.machine import collector


@pytest.fixture
def collector_as_it_was():
    """The test process's collector, put back: enabled as it was, nothing left frozen."""
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


def test_loading_pauses_the_collector_and_freezes_what_exists(collector_as_it_was):
    gc.enable()
    frozen = gc.get_freeze_count()
    with collector.loading():
        assert not gc.isenabled()
        made = [[] for _ in range(1000)]  # containers the collector tracks
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(made)
    assert all(not gc.is_finalized(m) for m in made)


def test_a_failure_while_loading_leaves_the_collector_running(collector_as_it_was):
    gc.enable()
    with pytest.raises(ImportError):
        with collector.loading():
            raise ImportError("no such library")
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off(collector_as_it_was):
    gc.disable()
    with collector.loading():
        pass
    assert not gc.isenabled()


# The commands' full passes of the collector, counted in a fresh interpreter: without the pause,
# importing torch alone makes three or more, each over every object loaded so far.
RUN = """
import gc, sys
full = []
gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2
                    and full.append(1))
from fcnn_cli.commands import cli
try:
    cli.main(sys.argv[1].split(), prog_name="fcnn", standalone_mode=False)
except SystemExit as done:
    assert not done.code, done.code
print("full passes", len(full), "torch" in sys.modules)
"""


@pytest.mark.slow
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_scoring_makes_no_full_pass_over_torch(tmp_path, model_path, quakes_csv, command):
    args = f"{command} {model_path} {quakes_csv}" + \
        (f" -o {tmp_path / 'out.csv'}" if command == "predict" else "")
    done = subprocess.run([sys.executable, "-c", RUN, args], capture_output=True, text=True,
                          check=True)
    assert done.stdout.splitlines()[-1] == "full passes 0 True"


@pytest.mark.slow
def test_training_makes_no_full_pass_over_torch(tmp_path, quakes_csv):
    args = f"train {quakes_csv} -o {tmp_path / 'run'} --epochs 3 --no-plots -q"
    done = subprocess.run([sys.executable, "-c", RUN, args], capture_output=True, text=True,
                          check=True)
    assert done.stdout.splitlines()[-1] == "full passes 0 True"
