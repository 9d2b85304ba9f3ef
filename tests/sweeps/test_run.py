"""Running a sweep: failed combinations recorded and the sweep going on, errors and signals
that stop it, groups that train together and their fallbacks (the ensemble path refused, not
enough memory), other processes' combinations, and plots drawn on a rerun."""

import json
import os
import signal
from datetime import datetime
from pathlib import Path

import pytest
import torch

from sweeping import FIXED, counting, never
from fcnn_cli.commands import cli
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.engine import train
from fcnn_cli.sweeps import leaderboard, plan, records, run
from fcnn_cli.sweeps.grid import Sweep, combinations, train_config


def _failing(depths, error):
    """train_combination, but raising ``error`` for the combinations of these depths."""
    real = run.train_combination

    def train_combination(spec, combination, tables, run_dir):
        if combination["depth"] in depths:
            raise error
        return real(spec, combination, tables, run_dir)
    return train_combination


@pytest.mark.parametrize("error", [FcnnError("options the network refuses"),
                                   torch.OutOfMemoryError("CUDA out of memory")])
def test_a_failed_combination_is_recorded_and_the_sweep_goes_on(quakes, tmp_path,
                                                                  monkeypatch, error):
    spec = Sweep({"data": quakes}, FIXED, {"depth": [2, 1]})
    monkeypatch.setattr(run, "train_combination", _failing({2}, error))
    rows = run.run(spec, tmp_path)
    assert [(r["depth"], r["mode"], r.get("error")) for r in rows] == [
        (1, "single", None), (2, "failed", str(error))]
    saved = json.loads((tmp_path / spec.key({"depth": 2}) / records.FAILED_FILE).read_text())
    assert saved["error"] == str(error) and saved["combination"] == {"depth": 2}
    assert saved["options"] == {**FIXED, "depth": 2} and saved["seeds"] == [0]
    assert datetime.fromisoformat(saved["failed_at"]).tzinfo is not None
    assert [s for *_, s in plan.plan(spec, tmp_path)] == [plan.FAILED, plan.FINISHED]
    leaderboard.write_leaderboard(rows, tmp_path)
    assert json.loads((tmp_path / "leaderboard.json").read_text())[-1]["error"] == str(error)
    assert (tmp_path / "leaderboard.csv").read_text().splitlines()[-1].endswith(str(error))


def test_a_rerun_trains_the_failed_and_the_missing_only(quakes, tmp_path, monkeypatch):
    spec = Sweep({"data": quakes}, FIXED, {"depth": [1, 2]})
    monkeypatch.setattr(run, "train_combination", _failing({2}, FcnnError("no memory")))
    run.run(spec, tmp_path)
    monkeypatch.undo()
    trained = []
    real = run.train_combination
    monkeypatch.setattr(run, "train_combination",
                        lambda s, c, *a: trained.append(c["depth"]) or real(s, c, *a))
    larger = Sweep({"data": quakes}, FIXED, {"depth": [1, 2, 3]})
    rows = run.run(larger, tmp_path)
    assert trained == [2, 3]
    assert sorted(r["depth"] for r in rows) == [1, 2, 3]
    assert not any("error" in r for r in rows)
    assert not (tmp_path / spec.key({"depth": 2}) / records.FAILED_FILE).exists()


def test_a_failure_records_the_data_files(own_quakes, tmp_path, monkeypatch):
    spec = Sweep({"data": str(own_quakes)}, FIXED, {"depth": [1]})
    monkeypatch.setattr(run, "train_combination", _failing({1}, FcnnError("no")))
    run.run(spec, tmp_path / "sw")
    saved = json.loads(next((tmp_path / "sw").glob(f"*/{records.FAILED_FILE}")).read_text())
    assert saved["data_files"]["data"]["mtime_ns"] == own_quakes.stat().st_mtime_ns


@pytest.mark.parametrize("error", [ValueError("a bug"), KeyboardInterrupt()])
def test_programming_errors_and_interrupts_stop_the_sweep_at_once(quakes, tmp_path,
                                                                   monkeypatch, error):
    spec = Sweep({"data": quakes}, FIXED, {"depth": [1, 2]})
    monkeypatch.setattr(run, "train_combination", _failing({1}, error))
    with pytest.raises(type(error)):
        run.run(spec, tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither recorded as failed nor the next one trained


def _interrupt_in_epoch_2(monkeypatch, mode, seeds):
    """Ctrl-C in the second epoch, after the first was complete: of the last seed's single run,
    or of the ensemble of all seeds."""
    from fcnn_cli.engine import ensemble, loop

    if mode == "ensemble":
        real = ensemble._Run._train_epoch

        def train_epoch(self, epoch, stop):
            if epoch == 2:
                raise KeyboardInterrupt
            return real(self, epoch, stop)
        monkeypatch.setattr(ensemble._Run, "_train_epoch", train_epoch)
        return
    real = loop._epoch

    def one_epoch(state, prepared, rows, step, epoch, *args):
        if epoch == 2 and state.config.seed == seeds - 1:
            raise KeyboardInterrupt
        return real(state, prepared, rows, step, epoch, *args)
    monkeypatch.setattr(loop, "_epoch", one_epoch)


@pytest.mark.parametrize("options, seeds, mode", [({}, 1, "single"), ({}, 2, "ensemble"),
                                                  ({"diagnostics": True}, 2, "sequential")])
def test_a_combination_cut_short_is_not_taken_for_finished(quakes, tmp_path, monkeypatch,
                                                           options, seeds, mode):
    """Training stops at the interrupt and keeps its last complete epoch, but a sweep saves no
    such run: the combination trains again, whole, in the rerun."""
    spec = Sweep({"data": quakes}, {**FIXED, "epochs": 2, **options},
                 {"depth": [1]}, seeds=seeds)
    _interrupt_in_epoch_2(monkeypatch, mode, seeds)
    with pytest.raises(KeyboardInterrupt):
        run.run(spec, tmp_path)
    run_dir = tmp_path / spec.key({"depth": 1})
    assert not (run_dir / records.RESULT_FILE).exists()
    assert not (run_dir / "model.pt").exists() and not (run_dir / "state.pt").exists()
    assert [s for *_, s in plan.plan(spec, tmp_path)] == [plan.NEW]
    monkeypatch.undo()
    rows = run.run(spec, tmp_path)
    assert [r["mode"] for r in rows] == [mode]
    assert json.loads((run_dir / records.RESULT_FILE).read_text())["seeds"] == list(range(seeds))


def test_command_line_goes_on_past_a_diverging_combination(runner, quakes, tmp_path):
    out = tmp_path / "sw"
    args = ["sweep", quakes, "--grid", "lr=1e30,1e-3", "--epochs", "1", "--width", "8",
            "--threads", "1", "-o", str(out)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 3, result.output
    assert "1 of 2 combinations failed" in result.output
    assert "Leaderboard (2 combinations, 1 failed" in result.output
    assert "combination 1 of 2: lr=1e+30-" in result.output and "failed after" in result.output
    assert "combination 2 of 2: lr=0.001-" in result.output and "finished in" in result.output
    rows = json.loads((out / "leaderboard.json").read_text())
    assert [r["lr"] for r in rows] == [0.001, 1e30]
    assert "diverged at once" in rows[-1]["error"] and "Traceback" not in result.output
    failed, finished = (out / rows[1]["run"].rsplit("/", 1)[-1], Path(rows[0]["run"]))
    assert (failed / records.FAILED_FILE).exists() and not (failed / "plots").exists()
    assert (finished / "plots" / "learning_curves.png").exists()
    assert (out / "leaderboard.png").exists()

    listed = runner.invoke(cli, [*args, "--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert "2 combinations, 1 to train" in " ".join(listed.output.split())
    assert "failed: to retry" in listed.output and "finished" in listed.output


@pytest.fixture
def handlers():
    """The test process's own signal handlers, put back after a command that leaves signals
    ignored on its way out."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in previous.items():
        signal.signal(s, handler)


def test_command_line_stops_at_a_signal_with_its_code(runner, quakes, tmp_path, monkeypatch,
                                                      handlers):
    """SIGTERM in the first combination's second epoch: the sweep stops with 143 and keeps
    nothing of that combination for a rerun to take as finished."""
    from fcnn_cli.engine import loop

    real = loop._epoch

    def one_epoch(state, prepared, rows, step, epoch, *args):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(state, prepared, rows, step, epoch, *args)
    monkeypatch.setattr(loop, "_epoch", one_epoch)
    out = tmp_path / "sw"
    result = runner.invoke(cli, ["sweep", quakes, "--grid", "depth=1,2", "--epochs", "2",
                                 "--width", "8", "--threads", "1", "-o", str(out)])
    assert result.exit_code == 143, result.output
    assert "interrupted: the finished combinations are kept" in result.output
    assert "combination 2 of 2" not in result.output
    assert list(out.glob("*/seeds.json")) == [] and not (out / "leaderboard.json").exists()


def test_options_the_network_refuses_fail_their_combination_in_flags(runner, quakes, tmp_path):
    result = runner.invoke(cli, ["sweep", quakes, "--grid", "arch=batchnorm", "--batch-size",
                                 "1", "--threads", "1", "-o", str(tmp_path)])
    assert result.exit_code == 3, result.output
    assert "failed after" in result.output and "; --batch-size 1 gives fewer" in result.output
    assert "1 of 1 combinations failed" in result.output
    saved = json.loads(next(tmp_path.glob(f"*/{records.FAILED_FILE}")).read_text())
    assert "batch_size 1 gives fewer" in saved["error"] and saved["kind"] == "FcnnError"


REGRESSION = "scores classes; a regression keeps the epoch of the lowest validation loss"


@pytest.mark.parametrize("options, message", [
    (["--best-by", "brier", "--grid", "depth=1,2"],
     f"Error: --best-by brier {REGRESSION} (--best-by loss)\n"),
    (["--grid", "best_by=loss,accuracy", "--grid", "depth=1,2"],
     f"Error: --grid: best_by=accuracy {REGRESSION} (best_by=loss): leave accuracy out of "
     "best_by's values\n"),
    (["--grid", "task=classify,auto", "--grid", "best_by=brier,loss"],
     f"Error: --grid: task=auto: best_by=brier {REGRESSION} (best_by=loss)\n"),
    (["--grid-file", "GRID", "--grid", "depth=1,2"],
     f"Error: GRID: [grid] best_by=brier {REGRESSION} (best_by=loss): leave brier out of "
     "best_by's values\n")])
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_figure_of_classes_on_a_regression_stops_the_sweep_before_its_plan(
        runner, quakes, tmp_path, monkeypatch, options, message, dry_run):
    """Refused once the tables are read, before the plan is shown or the sweep directory
    made, by a dry run too: the grid's value named where it was given."""
    monkeypatch.setattr(train, "fit", never)
    monkeypatch.setattr(train, "fit_cohorts", never)
    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\nbest_by = ["loss", "brier"]\n')
    options = [str(grid) if o == "GRID" else o for o in options]
    result = runner.invoke(cli, ["sweep", quakes, *options, "--epochs", "1", "--threads", "1",
                                 "--no-plots", "-o", str(tmp_path / "sw")]
                           + ["--dry-run"] * dry_run)
    assert result.exit_code == 1, result.output
    assert result.output == message.replace("GRID", str(grid))
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("data", [
    {"targets": ["x", "y"]},
    {},  # the labels the file records
    {"where": "tp1 > 0", "weight": "ts1 + 1", "define": ["late=tp2 - tp1"]},
    {"define": ["far=tp1 * 2", "r=x + y"], "targets": ["r"]},  # a label made of x and y
])
def test_a_figure_of_classes_is_checked_on_the_combinations_left_to_train(quakes, tmp_path,
                                                                            monkeypatch, data):
    """Those to train are read for, on the columns their labels are (or are made of) alone,
    each combination's options made once; finished combinations are not."""
    from fcnn_cli.data import tables

    read, real, made = [], tables.read_table, []

    def read_table(path, narrow=None, columns=None):
        read.append(columns)
        return real(path, narrow, columns)
    monkeypatch.setattr(tables, "read_table", read_table)
    spec = Sweep({"data": quakes, **data}, FIXED, {"best_by": ["loss", "brier"]})
    planned = plan.plan(spec, tmp_path)
    monkeypatch.setattr(run, "train_config", lambda *a: made.append(a) or train_config(*a))
    with pytest.raises(FcnnError, match="^grid: best_by=brier scores classes"):
        run.check_figures(spec, planned)
    assert read == [["x", "y"]] and len(made) == 2
    read.clear()
    run.check_figures(spec, [(c, k, plan.FINISHED if c["best_by"] == "brier" else s)
                             for c, k, s in planned])
    assert read == []


@pytest.mark.parametrize("grid, message", [
    (["task=classify,regress", "best_by=brier,loss"],
     f"Error: --grid: task=regress: best_by=brier {REGRESSION} (best_by=loss)\n"),
    (["lr=1,-1"], "Error: --grid: lr=-1.0: lr must be finite and > 0, not -1.0\n"),
    (["val_frac=0.5,0.9"], "Error: --grid: val_frac=0.9: val_frac plus --test-frac must be "
                           "below 1\n")])
def test_a_combination_of_refused_values_is_named_by_the_grid(runner, quakes, tmp_path,
                                                              grid, message):
    result = runner.invoke(cli, ["sweep", quakes, *(f"--grid={g}" for g in grid),
                                 "--test-frac", "0.2", "-o", str(tmp_path / "sw")])
    assert result.exit_code == 2
    assert result.output.endswith(message)
    assert not (tmp_path / "sw").exists()


def test_groups_join_member_options_and_split_past_the_most_members(monkeypatch):
    spec = Sweep({"data": "x.csv"}, FIXED, {"depth": [1, 2], "lr": [1e-3, 1e-2, 0.1],
                                            "patience": [0, 3]}, seeds=3)
    todo = [(c, spec.key(c)) for c in combinations(spec.grid)]
    groups = run.groups(spec, todo)
    assert [[c["depth"] for c, _ in g] for g in groups] == [[1] * 6, [2] * 6]
    monkeypatch.setattr(run, "MAX_MEMBERS", 12)  # 4 combinations of 3 seeds a pass
    groups = run.groups(spec, todo)
    assert [len(g) for g in groups] == [4, 2, 4, 2]
    assert sorted(key for g in groups for _, key in g) == sorted(key for _, key in todo)


def test_shards_of_a_group_cover_the_grid_once(quakes, tmp_path, monkeypatch):
    calls = counting(monkeypatch)
    spec = Sweep({"data": quakes}, FIXED, {"lr": [1e-3, 3e-3, 1e-2], "init": ["he"]})
    run.run(spec, tmp_path, (1, 2))
    rows = run.run(spec, tmp_path, (2, 2))
    assert calls["passes"] == [[1, 1]] and calls["fits"] == 1  # the second shard: 1 alone
    assert sorted(r["lr"] for r in rows) == [1e-3, 3e-3, 1e-2]
    assert sorted(r["mode"] for r in rows) == ["grouped", "grouped", "single"]
    assert len(list(tmp_path.glob(f"*/{records.RESULT_FILE}"))) == 3


def test_a_group_the_ensemble_path_refuses_trains_one_by_one(quakes, tmp_path, monkeypatch):
    calls = counting(monkeypatch)
    spec = Sweep({"data": quakes}, {**FIXED, "arch": "batchnorm"},
                 {"lr": [1e-3, 1e-2]})
    rows = run.run(spec, tmp_path)
    assert calls["fits"] == 2 and [r["mode"] for r in rows] == ["single", "single"]


def test_a_combination_lost_in_a_group_fails_alone(quakes, tmp_path, monkeypatch):
    """The group's other combinations are saved; the lost one is recorded as failed, listed
    last, and trained alone by the rerun."""
    real = train.fit_cohorts

    def first_lost(*args, **kwargs):
        results = real(*args, **kwargs)
        return [FcnnError("member 0 of the ensemble diverged at once"), *results[1:]]
    monkeypatch.setattr(train, "fit_cohorts", first_lost)
    spec = Sweep({"data": quakes}, FIXED, {"lr": [1e-3, 1e-2]})
    lost, kept = (spec.key(c) for c in combinations(spec.grid))
    rows = run.run(spec, tmp_path)
    assert [r["mode"] for r in rows] == ["grouped", "failed"]
    assert "member 0 of the ensemble diverged" in rows[1]["error"]
    assert (tmp_path / kept / records.RESULT_FILE).exists()
    assert not (tmp_path / lost / records.RESULT_FILE).exists()
    assert (tmp_path / lost / records.FAILED_FILE).exists()
    monkeypatch.setattr(train, "fit_cohorts", real)
    rows = run.run(spec, tmp_path)  # the rerun trains the lost one alone
    assert sorted(r["mode"] for r in rows) == ["grouped", "single"]
    assert not (tmp_path / lost / records.FAILED_FILE).exists()


def test_autograd_networks_group_only_where_the_kernel_options_agree(quakes, tmp_path):
    """Batch norm trains through autograd, which takes one lr for all members: a grid of lr ×
    init trains as one group per lr."""
    fixed = {**FIXED, "arch": "batchnorm"}
    spec = Sweep({"data": quakes}, fixed, {"lr": [1e-3, 1e-2], "init": ["he", "lecun"]})
    rows = run.run(spec, tmp_path)
    assert sorted(r["mode"] for r in rows) == ["grouped"] * 4
    groups = {json.loads((Path(r["run"]) / records.RESULT_FILE).read_text())["group"][0]
              for r in rows}
    assert len(groups) == 2
    for row in rows:  # each group's combinations share one lr
        group = json.loads((Path(row["run"]) / records.RESULT_FILE).read_text())["group"]
        combinations = [json.loads((tmp_path / key / records.RESULT_FILE).read_text())[
            "combination"] for key in group]
        assert len(group) == 2 and {c["lr"] for c in combinations} == {row["lr"]}


def test_a_selu_grid_over_dropout_is_not_trained_with_plain_dropout(quakes, tmp_path,
                                                                   monkeypatch):
    """SELU's alpha-dropout trains through autograd, which takes one dropout rate for all: a
    grid dropout=0,0.1 (the first member without any) must not take the autograd-free step."""
    from fcnn_cli.engine import fastpath

    steps = []
    real = fastpath.FastStep.__init__

    def record(self, model, task):
        steps.append(model)
        real(self, model, task)
    monkeypatch.setattr(fastpath.FastStep, "__init__", record)
    spec = Sweep({"data": quakes}, {**FIXED, "arch": "selu"}, {"dropout": [0.0, 0.1]})
    rows = run.run(spec, tmp_path)
    assert sorted(r["mode"] for r in rows) == ["single", "single"]
    assert not any(isinstance(m, list) and m[-1].config.dropout for m in steps)


@pytest.mark.parametrize("option", [{"schedule": "plateau", "arch": "batchnorm"},
                                    {"diagnostics": True}])
def test_one_seed_combinations_are_not_grouped_where_an_ensemble_refuses(quakes, tmp_path,
                                                                        option):
    """With one seed a combination is one network: grouped, it would lose the diagnostics
    that a pass of several members does not take, or the plateau schedule that the autograd
    step does not give members one by one."""
    spec = Sweep({"data": quakes}, {**FIXED, **option}, {"init": ["he", "lecun"]})
    rows = run.run(spec, tmp_path)
    assert sorted(r["mode"] for r in rows) == ["single", "single"]


def test_a_group_that_does_not_fit_in_memory_trains_one_by_one(quakes, tmp_path,
                                                               monkeypatch):
    def too_big(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(train, "fit_cohorts", too_big)
    spec = Sweep({"data": quakes}, FIXED, {"lr": [1e-3, 1e-2]})
    rows = run.run(spec, tmp_path)
    assert sorted(r["mode"] for r in rows) == ["single", "single"]


# What torch's CPU allocator raises when malloc fails (torch 2.13, Linux).
CPU_ALLOCATION_FAILED = ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
                         "can't allocate memory: you tried to allocate 4503599627370496 bytes. "
                         "Error code 12 (Cannot allocate memory)")


def test_a_combination_the_cpu_cannot_allocate_is_recorded_and_the_others_finish(
        runner, quakes, tmp_path, monkeypatch):
    from fcnn_cli.engine import state

    real = state.TrainingState.__init__

    def allocate(self, net_config, *args):
        if net_config.depth == 2:
            raise RuntimeError(CPU_ALLOCATION_FAILED)
        real(self, net_config, *args)

    monkeypatch.setattr(state.TrainingState, "__init__", allocate)
    out = tmp_path / "sw"
    result = runner.invoke(cli, ["sweep", quakes, "--grid", "depth=1,2,3", "--epochs", "1",
                                 "--width", "8", "--threads", "1", "--no-plots", "-o", str(out)])
    assert result.exit_code == 3, result.output
    assert "1 of 3 combinations failed" in result.output and "Traceback" not in result.output
    rows = json.loads((out / "leaderboard.json").read_text())
    assert [(r["depth"], r["mode"]) for r in rows][-1] == (2, "failed")
    assert sorted(r["depth"] for r in rows[:2]) == [1, 3] and {r["mode"] for r in rows[:2]} == {
        "single"}
    failed = json.loads((out / rows[-1]["run"].rsplit("/", 1)[-1] / records.FAILED_FILE)
                        .read_text())
    assert failed["kind"] == "OutOfMemory" and failed["error"] == (
        "not enough memory on the CPU to train (DefaultCPUAllocator: can't allocate memory: you "
        "tried to allocate 4503599627370496 bytes. Error code 12 (Cannot allocate memory)); try "
        "a smaller network or batch_size")


def test_a_group_the_cpu_cannot_allocate_trains_one_by_one(quakes, tmp_path, monkeypatch):
    from fcnn_cli.engine import ensemble

    real = ensemble.train_cohorts

    def allocate(data, cohorts, *args, **kwargs):
        if len(cohorts) > 1:  # the vectorised pass of the whole group
            raise RuntimeError(CPU_ALLOCATION_FAILED)
        return real(data, cohorts, *args, **kwargs)

    monkeypatch.setattr(ensemble, "train_cohorts", allocate)
    spec = Sweep({"data": quakes}, FIXED, {"lr": [1e-3, 1e-2]}, seeds=2)
    rows = run.run(spec, tmp_path)
    assert sorted(r["mode"] for r in rows) == ["ensemble", "ensemble"]


def test_a_network_too_large_for_the_memory_fails_its_combination_alone(quakes, tmp_path,
                                                                        monkeypatch):
    from fcnn_cli.machine import devices

    monkeypatch.setattr(devices, "memory_available", lambda device: 64 << 20)
    fixed = {k: v for k, v in FIXED.items() if k != "width"}
    spec = Sweep({"data": quakes}, fixed, {"width": [8, 4096]})
    rows = run.run(spec, tmp_path)
    assert [(r["width"], r["mode"]) for r in rows] == [(8, "single"), (4096, "failed")]
    assert rows[-1]["error"].startswith("a network of ") and \
        "but 64 MiB is available on the CPU" in rows[-1]["error"]


def test_a_combination_another_process_trains_is_skipped(quakes, tmp_path, monkeypatch,
                                                        held_elsewhere, caplog):
    caplog.set_level("INFO")
    spec = Sweep({"data": quakes}, FIXED, {"depth": [1, 2]})
    busy, free = (spec.key({"depth": d}) for d in (1, 2))
    held_elsewhere(tmp_path / busy)
    assert [s for *_, s in plan.plan(spec, tmp_path)] == [plan.BUSY, plan.NEW]
    from fcnn_cli.results import runs

    held = []
    real = run.train_combination
    monkeypatch.setattr(run, "train_combination", lambda s, c, i, run_dir: held.append(
        runs.locked(run_dir)) or real(s, c, i, run_dir))
    rows = run.run(spec, tmp_path)
    assert [r["depth"] for r in rows] == [2] and held == [True]  # locked while it trains
    assert not runs.locked(tmp_path / free)
    assert f"{busy}: another process trains it; skipped" in caplog.text
    assert not (tmp_path / busy / records.RESULT_FILE).exists()
    assert (tmp_path / free / records.RESULT_FILE).exists()


def test_a_combination_finished_meanwhile_is_not_trained_again(quakes, tmp_path, monkeypatch,
                                                              caplog):
    """Planned as new, then finished by another sweep before this one reached it."""
    caplog.set_level("INFO")
    spec = Sweep({"data": quakes}, FIXED, {"depth": [1]})
    run.run(spec, tmp_path / "other")
    run_dir = tmp_path / spec.key({"depth": 1})
    real_plan = plan.plan

    def plan_then_finish(*args):
        planned = real_plan(*args)
        import shutil

        shutil.copytree(tmp_path / "other" / run_dir.name, run_dir)
        return planned
    monkeypatch.setattr(run, "plan", plan_then_finish)
    monkeypatch.setattr(run, "train_combination", never)
    assert [r["depth"] for r in run.run(spec, tmp_path)] == [1]
    assert "finished by another process meanwhile" in caplog.text


def test_plots_left_out_by_a_stopped_sweep_are_drawn_on_a_rerun(quakes, tmp_path,
                                                               monkeypatch):
    import shutil

    spec = Sweep({"data": quakes}, FIXED, {"depth": [1]})
    run.run(spec, tmp_path, plots=True)
    plots = tmp_path / spec.key({"depth": 1}) / "plots"
    drawn = sorted(p.name for p in plots.glob("*.png"))
    assert "learning_curves.png" in drawn
    shutil.rmtree(plots)
    monkeypatch.setattr(run, "train_combination", never)
    run.run(spec, tmp_path)
    assert not plots.exists()  # without plots, none drawn
    run.run(spec, tmp_path, plots=True)
    assert sorted(p.name for p in plots.glob("*.png")) == drawn


def test_a_run_whose_plots_were_cut_short_gets_them_all_again(quakes, tmp_path, monkeypatch):
    from fcnn_cli.results import plots

    spec = Sweep({"data": quakes}, FIXED, {"lr": [1e-3]})
    real, drawn = plots.plot_run, []

    def cut_short(path):
        (path / "plots").mkdir(exist_ok=True)
        (path / "plots" / "learning_curves.png").write_bytes(b"partial")
        raise KeyboardInterrupt  # the sweep stopped while drawing
    monkeypatch.setattr(plots, "plot_run", cut_short)
    with pytest.raises(KeyboardInterrupt):
        run.run(spec, tmp_path, plots=True)
    monkeypatch.setattr(plots, "plot_run", lambda path: drawn.append(path) or real(path))
    run.run(spec, tmp_path, plots=True)
    assert len(drawn) == 1 and len(list((drawn[0] / "plots").glob("*.png"))) > 1
    run.run(spec, tmp_path, plots=True)  # all drawn now: nothing again
    assert len(drawn) == 1
