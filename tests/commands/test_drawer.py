"""fcnn train's plots drawn by a second process."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def _gone(group, seconds=5.0):
    """Whether every process of the group has ended within ``seconds`` (an orphan's end is
    reaped by another, maybe never: an ended one is a zombie)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        alive = []
        for status in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = status.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == group and fields[0] != "Z":  # pgrp, state
                    alive.append(status)
        if not alive:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("modules, cpus, world, worth", [
    ({}, 2, "1", True), ({}, 1, "1", False), ({"torch": None}, 8, "1", False),
    ({}, 8, "4", False)])
def test_a_drawer_is_started_only_where_it_pays(monkeypatch, modules, cpus, world, worth):
    monkeypatch.setenv("WORLD_SIZE", world)
    assert drawer.worth_it(modules, cpus) is worth


def test_none_is_started_where_unwanted_unworthy_or_unable(monkeypatch):
    with drawer.started(False) as none:
        assert none is None
    monkeypatch.setattr(drawer, "worth_it", lambda: False)
    with drawer.started(True) as none:
        assert none is None
    monkeypatch.setattr(drawer, "worth_it", lambda: True)

    def cannot():
        raise OSError(11, "Resource temporarily unavailable")
    monkeypatch.setattr(drawer, "Drawer", cannot)
    with drawer.started(True) as none:
        assert none is None


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


@pytest.mark.parametrize("start", [
    "import sys, os; os.kill(os.getpid(), 9)",  # gone
    "import sys, os; os.write(int(sys.argv[1]), b'a stray line\\n'); sys.stdin.read()",
    "import sys, os; os.write(int(sys.argv[1]), b'[1]\\n'); sys.stdin.read()",
    "import sys, time; sys.stdin.read(); time.sleep(60)",  # silent
    "import sys, os, time; os.write(int(sys.argv[1]), b'{\"written\": ['); sys.stdin.read(); "
    "time.sleep(60)"])  # half an answer
def test_one_gone_stuck_or_saying_no_answer_leaves_the_plots_to_the_command(
        monkeypatch, run, start):
    monkeypatch.setattr(drawer, "ANSWER_SECONDS", 0.5)
    theirs = drawer.Drawer(start)
    try:
        assert theirs.draw(run, quiet=True) is None
    finally:
        theirs.close()
    assert _gone(theirs.process.pid)


def test_an_answer_longer_than_a_pipe_holds_is_read_whole(run, tmp_path):
    import json

    names = [str(tmp_path / f"figure_{k:05d}.png") for k in range(5000)]  # some 300 KB
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps({"written": names}) + "\n")
    start = ("import sys, os; sys.stdin.read(); "
             f"os.write(int(sys.argv[1]), open({str(answer)!r}, 'rb').read())")
    theirs = drawer.Drawer(start)
    try:
        assert theirs.draw(run, quiet=True) == [Path(n) for n in names]
    finally:
        theirs.close()


def test_closed_unasked_it_ends_at_once_with_its_group():
    theirs = drawer.Drawer()
    started = time.monotonic()
    theirs.close()
    assert time.monotonic() - started < 1.0  # killed, not waited for
    assert _gone(theirs.process.pid)


@pytest.mark.parametrize("after", [0.0, 0.3, 0.8])
def test_closed_while_drawing_it_and_its_child_end_leaving_no_half_file(run, tmp_path, after):
    import shutil

    copy = shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("plots"))
    theirs = drawer.Drawer()
    time.sleep(1.0)  # warm, as at the end of a training
    theirs.ask(copy, quiet=True)
    time.sleep(after)
    theirs.close()
    assert _gone(theirs.process.pid)
    left = [p.name for p in copy.rglob("*") if p.name.endswith(".tmp")]
    assert not left


@pytest.mark.parametrize("ignored", [False, True])
def test_told_to_end_while_drawing_it_leaves_the_plots_to_the_command(run, tmp_path, ignored):
    """SIGTERM ends the drawer, also where the command's own disposition (inherited across
    exec where it is "ignore") would not."""
    import shutil
    import threading

    if ignored:
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    theirs = drawer.Drawer()
    if ignored:
        signal.signal(signal.SIGTERM, previous)
    copy = shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("plots"))
    time.sleep(1.0)  # warm
    threading.Timer(0.05, os.kill, (theirs.process.pid, signal.SIGTERM)).start()
    try:
        assert theirs.draw(copy, quiet=True) is None
    finally:
        theirs.close()
    assert _gone(theirs.process.pid)
    assert not [p.name for p in copy.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("asked", [False, True])
def test_it_ends_when_the_command_dies_however(run, tmp_path, asked):
    """A command killed (SIGKILL), waiting or amid the drawing, leaves no drawer to draw into
    a run it no longer holds."""
    import shutil

    copy = shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("plots"))
    ask = (f"import time; time.sleep(1); d.process.stdin.write('{{\"run\": \"{copy}\", "
           "\"quiet\": true}\\n'); d.process.stdin.flush(); time.sleep(0.05)") if asked else ""
    code = ("import os; from fcnn_cli.commands import drawer; d = drawer.Drawer(); "
            f"print(d.process.pid, flush=True)\n{ask}\nos.kill(os.getpid(), 9)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == -9, done.stderr
    assert _gone(int(done.stdout))
    drawn = list((copy / "plots").glob("*.png")) if asked else []
    assert len(drawn) < len(plots.plot_run(run, tmp_path / "all"))  # stopped, not finished


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="a drawer needs a second CPU")
def test_the_command_draws_its_plots_through_one(tmp_path):
    """A whole `fcnn train` (torch not yet imported: the drawer starts) whose plots the drawer
    drew: the command's own process never imports matplotlib. (The tests' OMP_NUM_THREADS=1
    would leave it one CPU; a network this small trains on one thread whatever the count.)"""
    data = tmp_path / "q.csv"
    simulate.earthquakes(n=300, seed=3).frame.to_csv(data, index=False)
    code = ("import sys; sys.argv = ['fcnn'] + sys.argv[1:]\n"
            "from fcnn_cli.commands import cli\n"
            "try: cli.main(prog_name='fcnn')\n"
            "except SystemExit as e: assert not e.code, e.code\n"
            "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, "train", str(data), "--target", "x",
                           "--target", "y", "--epochs", "2", "-q", "-o", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"
    drawn = sorted(p.name for p in (tmp_path / "r" / "plots").iterdir())
    assert "learning_curves.png" in drawn and "position_map.png" in drawn
