"""The collector paused while a command imports its libraries, and what they made frozen."""

import gc
import json
import subprocess
import sys
import threading
import weakref

import pytest

from fcnn_cli.core import collector

NEVER_IMPORTED = "fcnn_no_such_library"
# A library that notes, as it is imported, in which thread and whether the collector ran.
LIBRARY = """
import gc, threading
THREAD, COLLECTING = threading.current_thread(), gc.isenabled()
MADE = [[] for _ in range(1000)]  # containers the collector tracks
"""


@pytest.fixture
def restored():
    """The test process's collector, put back: enabled as it was, nothing left frozen."""
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


@pytest.fixture
def library(tmp_path, monkeypatch, restored):
    """The name of a library not imported yet (a new one each test)."""
    name = f"fcnn_test_library_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(LIBRARY)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_a_commands_process_imports_in_a_thread_of_its_own_paused_then_frozen(library,
                                                                               monkeypatch):
    monkeypatch.setattr(collector, "_owned", True)  # as fcnn's entry point makes it
    gc.enable()
    frozen = gc.get_freeze_count()
    collector.imported(library)
    made = sys.modules[library]
    assert made.THREAD is not threading.current_thread() and not made.COLLECTING
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(made.MADE)


def test_garbage_made_before_the_import_is_freed_not_frozen(library, monkeypatch):
    monkeypatch.setattr(collector, "_owned", True)
    gc.enable()

    class Node:  # a reference cycle, garbage once the name is gone: what a reader leaves
        pass

    node = Node()
    node.me = node
    gone = weakref.ref(node)
    del node
    collector.imported(library)
    assert gone() is None


def test_a_python_caller_keeps_its_collector(library, monkeypatch):
    monkeypatch.setattr(collector, "_owned", False)  # a notebook, this test runner
    gc.enable()
    frozen = gc.get_freeze_count()
    collector.imported(library)
    made = sys.modules[library]
    assert made.THREAD is threading.current_thread() and made.COLLECTING
    assert gc.get_freeze_count() == frozen


def test_a_failed_import_is_raised_and_leaves_the_collector_running(monkeypatch, restored):
    monkeypatch.setattr(collector, "_owned", True)
    gc.enable()
    with pytest.raises(ModuleNotFoundError, match=NEVER_IMPORTED):
        collector.imported(NEVER_IMPORTED)
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off(library, monkeypatch):
    monkeypatch.setattr(collector, "_owned", True)
    gc.disable()
    collector.imported(library)
    assert not gc.isenabled()


# A command in a fresh interpreter made a command's own, as fcnn's entry point makes it. It
# prints (JSON): the full passes of the collector over the command's heavy library, made once
# it was in sys.modules but not yet frozen (without the pause, importing torch alone makes
# three or more, each over every object loaded so far); the objects frozen; whether torch was
# loaded;
# and the wings of fcnn whose functions' frames are among the frozen garbage, which no pass
# frees: a frame there keeps its function's last locals (a model's weights, where torch was
# imported within the model's reading) until the process ends.
RUN = """
import gc, json, sys, types
passes = [0]
def note(phase, info):
    if phase == "start" and info["generation"] == 2 and sys.argv[2] in sys.modules and \\
            not gc.get_freeze_count():
        passes[0] += 1
gc.callbacks.append(note)
from fcnn_cli.commands import cli
from fcnn_cli.core import collector
collector.own()
try:
    cli.main(sys.argv[1].split(), prog_name="fcnn", standalone_mode=False)
except SystemExit as done:
    assert not done.code, done.code
frozen = gc.get_freeze_count()
gc.callbacks.clear()
gc.collect()  # the garbage a pass frees
gc.unfreeze()
gc.set_debug(gc.DEBUG_SAVEALL)
gc.collect()
wings = {o.f_code.co_filename.split("fcnn_cli/")[1].split("/")[0] for o in gc.garbage
         if isinstance(o, types.FrameType) and "fcnn_cli/" in o.f_code.co_filename}
print(json.dumps({"passes": passes[0], "frozen": frozen, "torch": "torch" in sys.modules,
                  "wings": sorted(wings)}))
"""


def _run(args, library):
    done = subprocess.run([sys.executable, "-c", RUN, args, library], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_scoring_makes_no_full_pass_over_torch_and_freezes_no_reading(tmp_path, model_path,
                                                                      quakes_csv, command):
    args = f"{command} {model_path} {quakes_csv}" + \
        (f" -o {tmp_path / 'out.csv'}" if command == "predict" else "")
    found = _run(args, "torch")
    assert found["torch"] and found["frozen"] > 100_000
    assert found["passes"] == 0
    assert not {"network", "data"} & set(found["wings"])  # the model's and the table's reading


@pytest.mark.slow
def test_training_makes_no_full_pass_over_torch_and_plot_none_over_matplotlib(tmp_path,
                                                                              quakes_csv):
    run = tmp_path / "run"
    found = _run(f"train {quakes_csv} -o {run} --epochs 3 --no-plots -q", "torch")
    assert found["torch"] and found["frozen"] > 100_000
    assert found["passes"] == 0
    assert not {"network", "data", "engine"} & set(found["wings"])
    # One CPU (the tests' OMP_NUM_THREADS): the figures drawn in this process, not forked.
    found = _run(f"plot {run}", "matplotlib")
    assert not found["torch"] and found["frozen"] > 50_000
    assert found["passes"] == 0
