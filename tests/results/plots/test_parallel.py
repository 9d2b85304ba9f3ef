"""Two groups of figures at once: a forked child's group and the process's own; the answer a
process that drew gives."""

import os
import sys
import time

import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.results import plots
from fcnn_cli.results.plots.parallel import received, send, side_by_side

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="forks on Linux only")


def _child_writes(path, after=0.0):
    def first():
        time.sleep(after)
        path.write_text(str(os.getpid()))
        return [path]
    return first


def _no_child_left():
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_each_group_runs_once_the_first_in_another_process(tmp_path):
    child, mine = side_by_side(_child_writes(tmp_path / "a"), lambda: ["mine", os.getpid()])
    assert child == [tmp_path / "a"] and mine == ["mine", os.getpid()]
    assert int((tmp_path / "a").read_text()) != os.getpid()
    _no_child_left()


def test_the_childs_fcnn_error_is_raised_here_after_the_own_group(tmp_path):
    def first():
        raise FcnnError("metrics.json: damaged")

    with pytest.raises(FcnnError, match="^metrics.json: damaged$"):
        side_by_side(first, lambda: (tmp_path / "own").write_text("drawn"))
    assert (tmp_path / "own").read_text() == "drawn"


def test_a_bug_in_the_child_is_an_error_naming_it_with_its_traceback_on_stderr(capfd):
    def first():
        return [1 / 0]

    with pytest.raises(FcnnError, match=r"drawing failed \(ZeroDivisionError: division by zero"):
        side_by_side(first, list)
    assert "Traceback" in capfd.readouterr().err
    _no_child_left()


def test_a_child_gone_without_its_answer_is_an_error():
    with pytest.raises(FcnnError, match="ended without its answer"):
        side_by_side(lambda: os._exit(3), list)


def test_the_own_groups_error_waits_for_the_child(tmp_path):
    def mine():
        raise ValueError("own")

    with pytest.raises(ValueError, match="own"):
        side_by_side(_child_writes(tmp_path / "a", after=0.3), mine)
    assert (tmp_path / "a").is_file()  # the child was waited for, not left running
    _no_child_left()


def test_elsewhere_one_after_the_other(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "darwin")
    child, mine = side_by_side(_child_writes(tmp_path / "a"), lambda: 2)
    assert child == [tmp_path / "a"] and mine == 2
    assert int((tmp_path / "a").read_text()) == os.getpid()


def _sent(work):
    read, write = os.pipe()
    send(work, write)
    with os.fdopen(read) as pipe:
        return pipe.read()


def test_an_answer_gives_the_paths_or_raises_the_error_it_carries(tmp_path):
    assert received(_sent(lambda: [tmp_path / "a.png"])) == [tmp_path / "a.png"]

    def bug():
        return [1 / 0]
    with pytest.raises(FcnnError, match=r"^drawing failed \(ZeroDivisionError"):
        received(_sent(bug))
    for line in ("a stray line\n", "[1]\n", '{"other": 1}\n'):
        with pytest.raises(ValueError):
            received(line)


def test_a_process_told_to_end_answers_nothing():
    def stopped():
        raise SystemExit(143)
    read, write = os.pipe()
    with pytest.raises(SystemExit):
        send(stopped, write)
    with os.fdopen(read) as pipe:
        assert pipe.read() == ""  # and its end is closed


@pytest.mark.slow
def test_a_runs_plots_drawn_in_two_processes_are_those_drawn_in_one(quake_run, tmp_path):
    one = plots.plot_run(quake_run, tmp_path / "one")
    two = plots.plot_run(quake_run, tmp_path / "two", parallel=True)
    assert [p.name for p in two] == [p.name for p in one]  # and in the same order
    assert len(one) == 8
    for a, b in zip(one, two):
        assert a.read_bytes() == b.read_bytes(), a.name
