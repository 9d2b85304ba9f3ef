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


# The commands' full passes of the collector, in a fresh interpreter: the most objects one of
# them looked at, against the objects frozen. Without the pause, importing torch alone makes
# three or more passes over every object loaded so far; with it, a pass (if any) looks only at
# what the command made after the freeze.
RUN = """
import gc, sys
looked = [0]
def note(phase, info):
    if phase == "start" and info["generation"] == 2:
        looked[0] = max(looked[0], sum(len(gc.get_objects(g)) for g in range(3)))
gc.callbacks.append(note)
from fcnn_cli.commands import cli
try:
    cli.main(sys.argv[1].split(), prog_name="fcnn", standalone_mode=False)
except SystemExit as done:
    assert not done.code, done.code
print(looked[0], gc.get_freeze_count(), "torch" in sys.modules)
"""


def _passes(args):
    """(the most objects a full pass looked at, the objects frozen, whether torch loaded)."""
    done = subprocess.run([sys.executable, "-c", RUN, args], capture_output=True, text=True,
                          check=True)
    looked, frozen, torch_loaded = done.stdout.split()[-3:]
    return int(looked), int(frozen), torch_loaded == "True"


def _few(looked, frozen):
    """Whether full passes looked at few objects: less than a tenth of those frozen."""
    return looked < frozen / 10


@pytest.mark.slow
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_scoring_makes_no_full_pass_over_torch(tmp_path, model_path, quakes_csv, command):
    args = f"{command} {model_path} {quakes_csv}" + \
        (f" -o {tmp_path / 'out.csv'}" if command == "predict" else "")
    looked, frozen, torch_loaded = _passes(args)
    assert torch_loaded and frozen > 100_000 and _few(looked, frozen)


@pytest.mark.slow
def test_training_makes_no_full_pass_over_torch_and_plot_none_over_matplotlib(tmp_path,
                                                                              quakes_csv):
    run = tmp_path / "run"
    looked, frozen, torch_loaded = _passes(f"train {quakes_csv} -o {run} --epochs 3 --no-plots -q")
    assert torch_loaded and frozen > 100_000 and _few(looked, frozen)
    # One CPU: the figures drawn in this process, not in a forked one.
    looked, frozen, torch_loaded = _passes(f"plot {run}")
    assert not torch_loaded and frozen > 50_000 and _few(looked, frozen)
