"""Two groups of figures at once: a forked child's group and the process's own."""

import os

import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.results import plots
from fcnn_cli.results.plots.parallel import side_by_side


def _child_writes(path):
    def first():
        path.write_text(str(os.getpid()))
        return [path]
    return first


def test_each_group_runs_once_the_first_in_another_process(tmp_path):
    child, mine = side_by_side(_child_writes(tmp_path / "a"), lambda: ["mine", os.getpid()])
    assert child == [tmp_path / "a"] and mine == ["mine", os.getpid()]
    assert int((tmp_path / "a").read_text()) != os.getpid()


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


def test_a_child_gone_without_its_answer_is_an_error():
    with pytest.raises(FcnnError, match="ended without its answer"):
        side_by_side(lambda: os._exit(3), list)


def test_the_own_groups_error_waits_for_the_child(tmp_path):
    def mine():
        raise ValueError("own")

    with pytest.raises(ValueError, match="own"):
        side_by_side(_child_writes(tmp_path / "a"), mine)
    assert (tmp_path / "a").is_file()  # the child was waited for, not left running


def test_without_fork_one_after_the_other(monkeypatch, tmp_path):
    monkeypatch.delattr(os, "fork")
    child, mine = side_by_side(_child_writes(tmp_path / "a"), lambda: 2)
    assert child == [tmp_path / "a"] and mine == 2
    assert int((tmp_path / "a").read_text()) == os.getpid()


@pytest.mark.slow
def test_a_runs_plots_drawn_in_two_processes_are_those_drawn_in_one(quake_run, tmp_path):
    one = plots.plot_run(quake_run, tmp_path / "one")
    two = plots.plot_run(quake_run, tmp_path / "two", parallel=True)
    assert [p.name for p in two] == [p.name for p in one]  # and in the same order
    assert len(one) == 8
    for a, b in zip(one, two):
        assert a.read_bytes() == b.read_bytes(), a.name
