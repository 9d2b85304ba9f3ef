"""Sweeps: grids and their errors, combinations, shards, reruns, the leaderboard, and seeds
trained as one ensemble's members."""

import csv
import dataclasses
import json
import os
import signal
import statistics
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from fcnn_cli.data import simulate
from fcnn_cli.sweeps import sweep
from fcnn_cli.engine import train
from fcnn_cli.commands import cli
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.engine.prepare import split_indices
from fcnn_cli.data.tables import write_table

FIXED = {"epochs": 1, "batch_size": 32, "threads": 1, "width": 8}


def test_grid_values_take_their_options_types():
    grid = sweep.parse_grid(["depth=3,10", "arch=plain,resnet", "lr=1e-3,0.01",
                             "batchnorm=true,false", "batch-size=16"])
    assert grid == {"depth": [3, 10], "arch": ["plain", "resnet"], "lr": [0.001, 0.01],
                    "batchnorm": [True, False], "batch_size": [16]}
    assert type(grid["lr"][0]) is float and type(grid["depth"][0]) is int


@pytest.mark.parametrize("items, message", [
    (["depht=3"], "unknown grid key 'depht'; did you mean 'depth'?"),
    (["depth=3,x"], "depth must be an integer, not 'x'"),
    (["depth"], "give KEY=V1,V2"),
    (["depth="], "give KEY=V1,V2"),
    (["seed=1,2"], "seeds are given by seeds="),
    (["stream=true"], "reads its tables into memory"),
    (["depth=1", "depth=2"], "given twice"),
    (["lr=fast"], "lr must be a number"),
])
def test_grid_errors_say_what_is_wrong(items, message):
    with pytest.raises(FcnnError, match=message.replace("?", r"\?")):
        sweep.parse_grid(items)


def test_bad_values_and_clashes_are_refused_before_training():
    with pytest.raises(FcnnError, match="unknown option 'epoch'; did you mean 'epochs'"):
        sweep.Sweep({"data": "x.csv"}, {"epoch": 2}, {"depth": [1]})
    with pytest.raises(FcnnError, match="unknown architecture 'cnn'"):
        sweep.Sweep({"data": "x.csv"}, {}, sweep.parse_grid(["arch=plain,cnn"]))
    with pytest.raises(FcnnError, match="depth is both fixed and in the grid"):
        sweep.Sweep({"data": "x.csv"}, {"depth": 2}, {"depth": [1, 2]})
    with pytest.raises(FcnnError, match="seeds must be between"):
        sweep.Sweep({"data": "x.csv"}, {}, {"depth": [1]}, seeds=0)
    # Options no ensemble takes train their seeds one by one, and are checked all the same.
    sweep.Sweep({"data": "x.csv"}, {"diagnostics": True}, {"depth": [1]}, seeds=2)
    with pytest.raises(FcnnError, match="unknown architecture 'cnn'"):
        sweep.Sweep({"data": "x.csv"}, {"diagnostics": True}, {"arch": ["cnn"]}, seeds=2)


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "", " 1/2", "1/2 ", "1 / 2",
                                  "\u0661/\u0662", "1/" + "9" * 5000])
def test_bad_shards_are_refused(text):
    with pytest.raises(FcnnError, match="shard must be I/N"):
        sweep.parse_shard(text)


def test_combinations_in_a_stable_order():
    grid = {"depth": [3, 10], "arch": ["plain", "resnet", "selu"]}
    assert sweep.combinations(grid) == [
        {"depth": d, "arch": a} for d in (3, 10) for a in ("plain", "resnet", "selu")]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 7, 11])
def test_shards_cover_the_grid_exactly_once(count):
    combos = sweep.combinations({"depth": [1, 2, 3], "arch": ["plain", "resnet", "selu"]})
    shares = [sweep.shard(combos, i, count) for i in range(1, count + 1)]
    taken = [json.dumps(c, sort_keys=True) for share in shares for c in share]
    assert sorted(taken) == sorted(json.dumps(c, sort_keys=True) for c in combos)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_keys_are_stable_and_tell_combinations_apart():
    one = sweep.Sweep({"data": "x.csv"}, {"epochs": 2}, {"depth": [1, 2]}, seeds=2)
    keys = [one.key(c) for c in sweep.combinations(one.grid)]
    assert keys[0].startswith("depth=1-") and len(set(keys)) == 2
    assert keys == [sweep.Sweep({"data": "x.csv"}, {"epochs": 2}, {"depth": [1, 2]},
                                seeds=2).key(c) for c in sweep.combinations(one.grid)]
    other = sweep.Sweep({"data": "x.csv"}, {"epochs": 3}, {"depth": [1, 2]}, seeds=2)
    assert other.key({"depth": 1}) != keys[0]


def test_grid_file_holds_the_grid_and_fixed_options(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text('data = "q.csv"\n[grid]\ndepth = [1, 2]\narch = ["plain", "selu"]\n'
                    "[train]\nepochs = 2\n")
    grid, fixed = sweep.read_grid_file(path)
    assert grid == {"depth": [1, 2], "arch": ["plain", "selu"]}
    assert fixed == {"data": str(tmp_path / "q.csv"), "epochs": 2}
    path.write_text("[grid]\ndepth = 3\n")
    with pytest.raises(FcnnError, match="depth must be a list"):
        sweep.read_grid_file(path)
    path.write_text("[grid]\nwidht = [3]\n")
    with pytest.raises(FcnnError, match="did you mean 'width'"):
        sweep.read_grid_file(path)


@pytest.fixture(scope="module")
def quakes(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "q.csv"
    write_table(simulate.earthquakes(n=160, seed=1), path)
    return str(path)


def test_leaderboard_is_mean_and_std_over_seeds_and_a_rerun_skips(quakes, tmp_path,
                                                                   monkeypatch):
    """cosine trains its seeds as one ensemble, plateau with batch norm (the autograd step,
    which takes no member's own plateau) one run after another, each in a run directory of its
    own."""
    spec = sweep.Sweep({"data": quakes}, {**FIXED, "arch": "batchnorm"},
                       {"schedule": ["cosine", "plateau"]}, seeds=2)
    rows = sweep.run(spec, tmp_path)
    assert {r["schedule"]: r["mode"] for r in rows} == {"cosine": "ensemble",
                                                        "plateau": "sequential"}
    by_schedule = {r["schedule"]: r for r in rows}
    runs = [json.loads((tmp_path / spec.key({"schedule": "plateau"}) / f"seed-{s}" /
                        "metrics.json").read_text()) for s in (0, 1)]
    for split in ("val", "test"):
        for name, values in (("mean_distance", [m[split]["distance"]["mean"] for m in runs]),
                             ("rmse", [m[split]["overall"]["rmse"] for m in runs])):
            row = by_schedule["plateau"]
            assert row[f"{split}_{name}_mean"] == pytest.approx(statistics.fmean(values))
            assert row[f"{split}_{name}_std"] == pytest.approx(statistics.stdev(values))
    assert rows[0]["metric"] == "mean_distance"  # lower is better: the best first
    assert rows[0]["val_mean_distance_mean"] <= rows[1]["val_mean_distance_mean"]
    assert (tmp_path / spec.key({"schedule": "cosine"}) / "model.pt").exists()
    sweep.write_leaderboard(rows, tmp_path)
    assert json.loads((tmp_path / "leaderboard.json").read_text()) == \
        json.loads(json.dumps(rows))
    assert (tmp_path / "leaderboard.csv").read_text().count("\n") == 3

    monkeypatch.setattr(sweep, "train_combination", _never)
    assert sweep.run(spec, tmp_path) == rows


def _never(*args):
    raise AssertionError("a finished combination trained again")


def test_shards_into_one_directory_fill_the_leaderboard(quakes, tmp_path):
    spec = sweep.Sweep({"data": quakes}, FIXED, {"depth": [1, 2, 3]})
    first = sweep.run(spec, tmp_path, (1, 2))
    assert sorted(r["depth"] for r in first) == [1, 3]
    assert sorted(r["depth"] for r in sweep.run(spec, tmp_path, (2, 2))) == [1, 2, 3]


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """Tables of their own for validation and test, so that the split does not depend on
    the seed and a member compares with a single run."""
    root = tmp_path_factory.mktemp("splits")
    paths = []
    for name, n, seed in (("train", 192, 1), ("val", 64, 2), ("test", 64, 3)):
        paths.append(str(root / f"{name}.csv"))
        write_table(simulate.earthquakes(n=n, seed=seed), paths[-1])
    return paths


def test_seeds_train_as_one_ensemble_and_equal_single_runs(splits, tmp_path, monkeypatch):
    data, val, test = splits
    fits = []
    real_fit = train.fit
    monkeypatch.setattr(train, "fit", lambda *a, **k: fits.append(a[1]) or real_fit(*a, **k))
    spec = sweep.Sweep({"data": data, "val": val, "test": test}, {**FIXED, "seed": 4,
                       "epochs": 2}, {"depth": [2]}, seeds=3)
    sweep.run(spec, tmp_path)
    assert [config.ensemble for config in fits] == [3]
    saved = json.loads((tmp_path / spec.key({"depth": 2}) / sweep.RESULT_FILE).read_text())
    assert saved["seeds"] == [4, 5, 6] and saved["mode"] == "ensemble"
    from fcnn_cli.data.tables import read_table

    tables = [read_table(p) for p in splits]
    for k, seed in enumerate(saved["seeds"]):
        config = train.TrainConfig(epochs=2, batch_size=32, threads=1, seed=seed)
        single = real_fit(_in_order_of(tables[0], 4, seed), config, {"depth": 2, "width": 8},
                          val_table=tables[1], test_table=tables[2])
        for split in ("val", "test"):
            assert saved["metrics"][k][split]["overall"]["rmse"] == pytest.approx(
                single.metrics[split]["overall"]["rmse"], rel=1e-4)


def _in_order_of(table, seed, own_seed):
    """``table`` reordered so that a run with ``own_seed`` trains on its rows in the order a
    run with ``seed`` does (the members of an ensemble share the split of its seed)."""
    n = len(table.frame)
    order = split_indices(n, 0.0, 0.0, seed)[0][np.argsort(split_indices(n, 0.0, 0.0,
                                                                         own_seed)[0])]
    return dataclasses.replace(table, frame=table.frame.iloc[order].reset_index(drop=True))


def test_command_line_writes_and_prints_the_leaderboard(runner, quakes, tmp_path):
    out = tmp_path / "sw"
    result = runner.invoke(cli, ["sweep", quakes, "--grid", "depth=1,2", "--epochs", "1",
                                 "--width", "8", "--threads", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Leaderboard (2 combinations" in result.output
    assert len(json.loads((out / "leaderboard.json").read_text())) == 2


@pytest.mark.parametrize("args, message", [
    (["--grid", "depht=1"], "unknown --grid key 'depht'; did you mean 'depth'?"),
    (["--grid", "depth=1", "--shard", "3/2"], "--shard must be I/N"),
    (["--grid", "depth=1", "--depth", "2"], "--depth is both fixed and in the --grid"),
    ([], "give a grid"),
    (["--grid", "features=a,b"], "--grid key 'features' is a data option, given once for all "
                                 "combinations: give --features"),
    (["--grid", "targets=a"], "given once for all combinations: give --target"),
    (["--grid", "data=a.csv"], "given once for all combinations: give the data file as DATA"),
    (["--grid", "depth=1", "--seed", str(2**63 - 1), "--seeds", "2"],
     "--seed + --seeds - 1 (the last member's --seed) must be at most"),
])
def test_command_line_errors_are_one_line(runner, args, message, tmp_path):
    result = runner.invoke(cli, ["sweep", "q.csv", *args, "-o", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def _failing(depths, error):
    """train_combination, but raising ``error`` for the combinations of these depths."""
    real = sweep.train_combination

    def train_combination(spec, combination, tables, run_dir):
        if combination["depth"] in depths:
            raise error
        return real(spec, combination, tables, run_dir)
    return train_combination


@pytest.mark.parametrize("error", [FcnnError("options the network refuses"),
                                   torch.OutOfMemoryError("CUDA out of memory")])
def test_a_failed_combination_is_recorded_and_the_sweep_goes_on(quakes, tmp_path,
                                                                  monkeypatch, error):
    spec = sweep.Sweep({"data": quakes}, FIXED, {"depth": [2, 1]})
    monkeypatch.setattr(sweep, "train_combination", _failing({2}, error))
    rows = sweep.run(spec, tmp_path)
    assert [(r["depth"], r["mode"], r.get("error")) for r in rows] == [
        (1, "single", None), (2, "failed", str(error))]
    saved = json.loads((tmp_path / spec.key({"depth": 2}) / sweep.FAILED_FILE).read_text())
    assert saved["error"] == str(error) and saved["combination"] == {"depth": 2}
    assert saved["options"] == {**FIXED, "depth": 2} and saved["seeds"] == [0]
    assert datetime.fromisoformat(saved["failed_at"]).tzinfo is not None
    assert [s for *_, s in sweep.plan(spec, tmp_path)] == [sweep.FAILED, sweep.FINISHED]
    sweep.write_leaderboard(rows, tmp_path)
    assert json.loads((tmp_path / "leaderboard.json").read_text())[-1]["error"] == str(error)
    assert (tmp_path / "leaderboard.csv").read_text().splitlines()[-1].endswith(str(error))


def test_a_rerun_trains_the_failed_and_the_missing_only(quakes, tmp_path, monkeypatch):
    spec = sweep.Sweep({"data": quakes}, FIXED, {"depth": [1, 2]})
    monkeypatch.setattr(sweep, "train_combination", _failing({2}, FcnnError("no memory")))
    sweep.run(spec, tmp_path)
    monkeypatch.undo()
    trained = []
    real = sweep.train_combination
    monkeypatch.setattr(sweep, "train_combination",
                        lambda s, c, *a: trained.append(c["depth"]) or real(s, c, *a))
    larger = sweep.Sweep({"data": quakes}, FIXED, {"depth": [1, 2, 3]})
    rows = sweep.run(larger, tmp_path)
    assert trained == [2, 3]
    assert sorted(r["depth"] for r in rows) == [1, 2, 3]
    assert not any("error" in r for r in rows)
    assert not (tmp_path / spec.key({"depth": 2}) / sweep.FAILED_FILE).exists()


@pytest.mark.parametrize("error", [ValueError("a bug"), KeyboardInterrupt()])
def test_programming_errors_and_interrupts_stop_the_sweep_at_once(quakes, tmp_path,
                                                                   monkeypatch, error):
    spec = sweep.Sweep({"data": quakes}, FIXED, {"depth": [1, 2]})
    monkeypatch.setattr(sweep, "train_combination", _failing({1}, error))
    with pytest.raises(type(error)):
        sweep.run(spec, tmp_path)
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
    spec = sweep.Sweep({"data": quakes}, {**FIXED, "epochs": 2, **options},
                       {"depth": [1]}, seeds=seeds)
    _interrupt_in_epoch_2(monkeypatch, mode, seeds)
    with pytest.raises(KeyboardInterrupt):
        sweep.run(spec, tmp_path)
    run_dir = tmp_path / spec.key({"depth": 1})
    assert not (run_dir / sweep.RESULT_FILE).exists()
    assert not (run_dir / "model.pt").exists() and not (run_dir / "state.pt").exists()
    assert [s for *_, s in sweep.plan(spec, tmp_path)] == [sweep.NEW]
    monkeypatch.undo()
    rows = sweep.run(spec, tmp_path)
    assert [r["mode"] for r in rows] == [mode]
    assert json.loads((run_dir / sweep.RESULT_FILE).read_text())["seeds"] == list(range(seeds))


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
    assert (failed / sweep.FAILED_FILE).exists() and not (failed / "plots").exists()
    assert (finished / "plots" / "learning_curves.png").exists()
    assert (out / "leaderboard.png").exists()

    listed = runner.invoke(cli, [*args, "--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert "2 combinations, 1 to train" in " ".join(listed.output.split())
    assert "failed: to retry" in listed.output and "finished" in listed.output


def test_no_plots_draws_nothing_and_dry_run_trains_nothing(runner, quakes, tmp_path,
                                                           monkeypatch):
    out = tmp_path / "sw"
    args = ["sweep", quakes, "--grid", "depth=1,2", "--epochs", "1", "--width", "8",
            "--threads", "1", "-o", str(out)]
    monkeypatch.setattr(sweep, "train_combination", _never)
    listed = runner.invoke(cli, [*args, "--dry-run", "--shard", "2/2"])
    assert listed.exit_code == 0, listed.output
    assert "shard 2/2: 1 combinations, 1 to train" in " ".join(listed.output.split())
    assert "to train" in listed.output and not out.exists()
    monkeypatch.undo()
    result = runner.invoke(cli, [*args, "--no-plots"])
    assert result.exit_code == 0, result.output
    assert list(out.glob("**/*.png")) == []


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
    saved = json.loads(next(tmp_path.glob(f"*/{sweep.FAILED_FILE}")).read_text())
    assert "batch_size 1 gives fewer" in saved["error"] and saved["kind"] == "FcnnError"


def _counting(monkeypatch):
    """Counts of the passes the ensemble path trains (each with its cohorts' sizes) and of
    the runs fit trains."""
    from fcnn_cli.engine import ensemble

    calls = {"passes": [], "fits": 0}
    real_cohorts, real_fit = ensemble.train_cohorts, train.fit

    def cohorts(data, group, *args, **kwargs):
        calls["passes"].append([c.config.ensemble for c in group])
        return real_cohorts(data, group, *args, **kwargs)

    def fit(*args, **kwargs):
        calls["fits"] += 1
        return real_fit(*args, **kwargs)
    monkeypatch.setattr(ensemble, "train_cohorts", cohorts)
    monkeypatch.setattr(train, "fit", fit)
    return calls


LR_INIT = {"lr": [1e-3, 1e-2], "init": ["he", "lecun"]}


def test_a_grid_of_lr_and_init_trains_as_one_group(splits, tmp_path, monkeypatch):
    """Each combination's run predicts as a single run of it; a rerun trains nothing."""
    from fcnn_cli.network import checkpoint
    from fcnn_cli.data.tables import read_table

    data, val, test = splits
    calls = _counting(monkeypatch)
    spec = sweep.Sweep({"data": data, "val": val, "test": test},
                       {**FIXED, "seed": 4, "epochs": 2, "depth": 2}, LR_INIT)
    rows = sweep.run(spec, tmp_path)
    assert calls == {"passes": [[1, 1, 1, 1]], "fits": 0}
    assert [r["mode"] for r in rows] == ["grouped"] * 4
    assert len({r["seconds"] for r in rows}) == 1
    tables = [read_table(p) for p in splits]
    for combination in sweep.combinations(LR_INIT):
        run = tmp_path / spec.key(combination)
        saved = json.loads((run / sweep.RESULT_FILE).read_text())
        assert saved["seeds"] == [4] and len(saved["group"]) == 4
        loaded = checkpoint.load(run / "model.pt")
        assert loaded.members is None and loaded.net.config.init == combination["init"]
        config = train.TrainConfig(epochs=2, batch_size=32, threads=1, seed=4,
                                   lr=combination["lr"])
        single = train.fit(tables[0], config, {"depth": 2, "width": 8,
                                               "init": combination["init"]},
                           val_table=tables[1], test_table=tables[2])
        x = loaded.feature_matrix(tables[2])
        np.testing.assert_allclose(loaded.outputs(x), single.predictor.outputs(x), rtol=1e-4,
                                   atol=1e-4)
        assert saved["metrics"][0]["test"]["overall"]["rmse"] == pytest.approx(
            single.metrics["test"]["overall"]["rmse"], rel=1e-4)
    monkeypatch.setattr(sweep, "train_combination", _never)
    monkeypatch.setattr(sweep, "train_group", _never)
    assert sweep.run(spec, tmp_path) == rows


def test_grouped_seeds_save_each_combination_as_its_own_ensemble(quakes, tmp_path,
                                                                  monkeypatch):
    calls = _counting(monkeypatch)
    spec = sweep.Sweep({"data": quakes}, FIXED, {"lr": [1e-3, 1e-2]}, seeds=2)
    rows = sweep.run(spec, tmp_path)
    assert calls == {"passes": [[2, 2]], "fits": 0}
    for row in rows:
        saved = json.loads((tmp_path / sweep.Path(row["run"]).name / sweep.RESULT_FILE)
                           .read_text())
        assert saved["mode"] == "grouped" and len(saved["metrics"]) == 2
        config = json.loads((sweep.Path(row["run"]) / "config.json").read_text())
        assert config["train"]["ensemble"] == 2 and config["train"]["lr"] == row["lr"]


def test_shards_of_a_group_cover_the_grid_once(quakes, tmp_path, monkeypatch):
    calls = _counting(monkeypatch)
    spec = sweep.Sweep({"data": quakes}, FIXED, {"lr": [1e-3, 3e-3, 1e-2], "init": ["he"]})
    sweep.run(spec, tmp_path, (1, 2))
    rows = sweep.run(spec, tmp_path, (2, 2))
    assert calls["passes"] == [[1, 1]] and calls["fits"] == 1  # the second shard: 1 alone
    assert sorted(r["lr"] for r in rows) == [1e-3, 3e-3, 1e-2]
    assert sorted(r["mode"] for r in rows) == ["grouped", "grouped", "single"]
    assert len(list(tmp_path.glob(f"*/{sweep.RESULT_FILE}"))) == 3


def test_groups_join_member_options_and_split_past_the_most_members(monkeypatch):
    spec = sweep.Sweep({"data": "x.csv"}, FIXED, {"depth": [1, 2], "lr": [1e-3, 1e-2, 0.1],
                                                  "patience": [0, 3]}, seeds=3)
    todo = [(c, spec.key(c)) for c in sweep.combinations(spec.grid)]
    groups = sweep.groups(spec, todo)
    assert [[c["depth"] for c, _ in g] for g in groups] == [[1] * 6, [2] * 6]
    monkeypatch.setattr(sweep, "MAX_MEMBERS", 12)  # 4 combinations of 3 seeds a pass
    groups = sweep.groups(spec, todo)
    assert [len(g) for g in groups] == [4, 2, 4, 2]
    assert sorted(key for g in groups for _, key in g) == sorted(key for _, key in todo)


def test_a_group_the_ensemble_path_refuses_trains_one_by_one(quakes, tmp_path, monkeypatch):
    calls = _counting(monkeypatch)
    spec = sweep.Sweep({"data": quakes}, {**FIXED, "arch": "batchnorm"},
                       {"lr": [1e-3, 1e-2]})
    rows = sweep.run(spec, tmp_path)
    assert calls["fits"] == 2 and [r["mode"] for r in rows] == ["single", "single"]


def test_a_combination_lost_in_a_group_fails_alone(quakes, tmp_path, monkeypatch):
    """The group's other combinations are saved; the lost one is recorded as failed, listed
    last, and trained alone by the rerun."""
    real = train.fit_cohorts

    def first_lost(*args, **kwargs):
        results = real(*args, **kwargs)
        return [FcnnError("member 0 of the ensemble diverged at once"), *results[1:]]
    monkeypatch.setattr(train, "fit_cohorts", first_lost)
    spec = sweep.Sweep({"data": quakes}, FIXED, {"lr": [1e-3, 1e-2]})
    lost, kept = (spec.key(c) for c in sweep.combinations(spec.grid))
    rows = sweep.run(spec, tmp_path)
    assert [r["mode"] for r in rows] == ["grouped", "failed"]
    assert "member 0 of the ensemble diverged" in rows[1]["error"]
    assert (tmp_path / kept / sweep.RESULT_FILE).exists()
    assert not (tmp_path / lost / sweep.RESULT_FILE).exists()
    assert (tmp_path / lost / sweep.FAILED_FILE).exists()
    monkeypatch.setattr(train, "fit_cohorts", real)
    rows = sweep.run(spec, tmp_path)  # the rerun trains the lost one alone
    assert sorted(r["mode"] for r in rows) == ["grouped", "single"]
    assert not (tmp_path / lost / sweep.FAILED_FILE).exists()


def test_autograd_networks_group_only_where_the_kernel_options_agree(quakes, tmp_path):
    """Batch norm trains through autograd, which takes one lr for all members: a grid of lr ×
    init trains as one group per lr."""
    fixed = {**FIXED, "arch": "batchnorm"}
    spec = sweep.Sweep({"data": quakes}, fixed, {"lr": [1e-3, 1e-2], "init": ["he", "lecun"]})
    rows = sweep.run(spec, tmp_path)
    assert sorted(r["mode"] for r in rows) == ["grouped"] * 4
    groups = {json.loads((Path(r["run"]) / sweep.RESULT_FILE).read_text())["group"][0]
              for r in rows}
    assert len(groups) == 2
    for row in rows:  # each group's combinations share one lr
        group = json.loads((Path(row["run"]) / sweep.RESULT_FILE).read_text())["group"]
        combinations = [json.loads((tmp_path / key / sweep.RESULT_FILE).read_text())[
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
    spec = sweep.Sweep({"data": quakes}, {**FIXED, "arch": "selu"}, {"dropout": [0.0, 0.1]})
    rows = sweep.run(spec, tmp_path)
    assert sorted(r["mode"] for r in rows) == ["single", "single"]
    assert not any(isinstance(m, list) and m[-1].config.dropout for m in steps)


@pytest.mark.parametrize("option", [{"schedule": "plateau", "arch": "batchnorm"},
                                    {"diagnostics": True}])
def test_one_seed_combinations_are_not_grouped_where_an_ensemble_refuses(quakes, tmp_path,
                                                                        option):
    """With one seed a combination is one network: grouped, it would lose the diagnostics
    that a pass of several members does not take, or the plateau schedule that the autograd
    step does not give members one by one."""
    spec = sweep.Sweep({"data": quakes}, {**FIXED, **option}, {"init": ["he", "lecun"]})
    rows = sweep.run(spec, tmp_path)
    assert sorted(r["mode"] for r in rows) == ["single", "single"]


def test_the_plateau_schedule_trains_seeds_and_combinations_together(quakes, tmp_path):
    """Each member on its own plateau: a combination's seeds as one ensemble, combinations
    that differ in a member option as cohorts of one pass, each member its own plateau."""
    fixed = {**FIXED, "epochs": 2, "schedule": "plateau"}
    spec = sweep.Sweep({"data": quakes}, fixed, {"depth": [1]}, seeds=2)
    assert [r["mode"] for r in sweep.run(spec, tmp_path / "seeds")] == ["ensemble"]
    spec = sweep.Sweep({"data": quakes}, fixed, {"lr": [1e-3, 1e-2]})
    rows = sweep.run(spec, tmp_path / "cohorts")
    assert sorted(r["mode"] for r in rows) == ["grouped", "grouped"]
    for row in rows:  # each combination's rate its own
        with open(tmp_path / "cohorts" / spec.key({"lr": row["lr"]}) / "history.csv") as f:
            assert [float(epoch["lr"]) for epoch in csv.DictReader(f)] == [row["lr"]] * 2


def test_a_group_that_does_not_fit_in_memory_trains_one_by_one(quakes, tmp_path,
                                                               monkeypatch):
    def too_big(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(train, "fit_cohorts", too_big)
    spec = sweep.Sweep({"data": quakes}, FIXED, {"lr": [1e-3, 1e-2]})
    rows = sweep.run(spec, tmp_path)
    assert sorted(r["mode"] for r in rows) == ["single", "single"]


@pytest.fixture
def own_quakes(tmp_path):
    """A data file of the test's own, to change under a sweep."""
    path = tmp_path / "data" / "q.csv"
    path.parent.mkdir()
    write_table(simulate.earthquakes(n=160, seed=1), path)
    return path


def test_a_rerun_on_changed_data_is_refused(own_quakes, tmp_path, monkeypatch, runner):
    out = tmp_path / "sw"
    spec = sweep.Sweep({"data": str(own_quakes)}, FIXED, {"depth": [1]})
    sweep.run(spec, out)
    saved = json.loads(next(out.glob(f"*/{sweep.RESULT_FILE}")).read_text())
    assert saved["data_files"]["data"]["path"] == str(own_quakes)
    assert saved["data_files"]["data"]["size"] == own_quakes.stat().st_size
    write_table(simulate.earthquakes(n=160, seed=9), own_quakes)
    monkeypatch.setattr(sweep, "train_combination", _never)
    for attempt in (sweep.run, sweep.plan):
        with pytest.raises(FcnnError, match=f"trained on other data: {own_quakes} is not"):
            attempt(spec, out)
    listed = runner.invoke(cli, ["sweep", str(own_quakes), "--grid", "depth=1", "--epochs",
                                 "1", "--batch-size", "32", "--width", "8", "-o", str(out),
                                 "--dry-run"])
    assert listed.exit_code == 1 and "trained on other data" in listed.output
    assert "give this sweep another --output directory" in listed.output


def test_a_failure_records_the_data_files(own_quakes, tmp_path, monkeypatch):
    spec = sweep.Sweep({"data": str(own_quakes)}, FIXED, {"depth": [1]})
    monkeypatch.setattr(sweep, "train_combination", _failing({1}, FcnnError("no")))
    sweep.run(spec, tmp_path / "sw")
    saved = json.loads(next((tmp_path / "sw").glob(f"*/{sweep.FAILED_FILE}")).read_text())
    assert saved["data_files"]["data"]["mtime_ns"] == own_quakes.stat().st_mtime_ns


def test_keys_ignore_what_does_not_change_the_result(own_quakes, monkeypatch):
    """Typed-out defaults, threads, device and the spelling of the data path name the same
    directory; an option that changes the result does not."""
    monkeypatch.chdir(own_quakes.parent)
    plain = sweep.Sweep({"data": "q.csv"}, {"epochs": 1}, {"depth": [1]})
    spelt = sweep.Sweep({"data": "./q.csv"}, {"epochs": 1, "batch_size": 32, "threads": 1,
                                              "device": "cpu"}, {"depth": [1]})
    absolute = sweep.Sweep({"data": str(own_quakes)}, {"epochs": 1}, {"depth": [1]})
    keys = {s.key({"depth": 1}) for s in (plain, spelt, absolute)}
    assert len(keys) == 1
    other = sweep.Sweep({"data": "q.csv"}, {"epochs": 1, "batch_size": 16}, {"depth": [1]})
    assert other.key({"depth": 1}) not in keys


def test_runs_record_absolute_data_paths(own_quakes, tmp_path, monkeypatch):
    import tomllib

    monkeypatch.chdir(own_quakes.parent)
    spec = sweep.Sweep({"data": "q.csv"}, FIXED, {"depth": [1]})
    sweep.run(spec, tmp_path / "sw")
    run = tmp_path / "sw" / spec.key({"depth": 1})
    assert json.loads((run / "config.json").read_text())["data"] == str(own_quakes)
    assert tomllib.loads((run / "config.toml").read_text())["data"] == str(own_quakes)


def test_leaderboard_tells_apart_rows_of_other_fixed_options(runner, quakes, tmp_path):
    out = tmp_path / "sw"
    args = ["sweep", quakes, "--grid", "depth=1", "--epochs", "1", "--width", "8",
            "--threads", "1", "--no-plots", "-o", str(out)]
    assert runner.invoke(cli, [*args, "--optimizer", "sgd"]).exit_code == 0
    result = runner.invoke(cli, [*args, "--threads", "2"])  # threads do not tell rows apart
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "leaderboard.json").read_text())
    assert sorted(r["optimizer"] for r in rows) == ["adam", "sgd"]
    assert all("threads" not in r for r in rows)
    assert (out / "leaderboard.csv").read_text().splitlines()[0].startswith(
        "run,depth,optimizer,")
    header = next(line for line in result.output.splitlines() if "optimizer" in line)
    assert "depth" in header and "sgd" in result.output


def test_plots_left_out_by_a_stopped_sweep_are_drawn_on_a_rerun(quakes, tmp_path,
                                                               monkeypatch):
    import shutil

    spec = sweep.Sweep({"data": quakes}, FIXED, {"depth": [1]})
    sweep.run(spec, tmp_path, plots=True)
    plots = tmp_path / spec.key({"depth": 1}) / "plots"
    drawn = sorted(p.name for p in plots.glob("*.png"))
    assert "learning_curves.png" in drawn
    shutil.rmtree(plots)
    monkeypatch.setattr(sweep, "train_combination", _never)
    sweep.run(spec, tmp_path)
    assert not plots.exists()  # without plots, none drawn
    sweep.run(spec, tmp_path, plots=True)
    assert sorted(p.name for p in plots.glob("*.png")) == drawn


@pytest.mark.parametrize("values", [["lr=1e-3,1e-3"], ["lr=1e-3,0.001"],
                                    ["depth=1,2", "arch=plain,resnet,plain"]])
def test_repeated_grid_values_are_refused(values):
    with pytest.raises(FcnnError, match="is given twice"):
        sweep.Sweep({"data": "x.csv"}, {}, sweep.parse_grid(values))


def test_repeated_values_in_a_grid_file_are_refused(runner, tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text("[grid]\nlr = [1e-3, 0.001]\n")
    result = runner.invoke(cli, ["sweep", "q.csv", "--grid-file", str(path), "-o",
                                 str(tmp_path / "sw")])
    assert result.exit_code == 2 and "the value 0.001 is given twice" in result.output
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("case", ["existing file", "under a file", "stdout", "missing data",
                                  "missing data, dry run", "missing val"])
def test_bad_directories_and_data_are_one_line_and_write_nothing(runner, quakes, tmp_path,
                                                                 monkeypatch, case):
    monkeypatch.chdir(tmp_path)  # where -o - would make a directory
    (tmp_path / "file").write_text("mine\n")
    data, extra = quakes, []
    output = {"existing file": "file", "under a file": "file/sub", "stdout": "-"}.get(case,
                                                                                     "sw")
    if case.startswith("missing data"):
        data = str(tmp_path / "gone.csv")
    if case == "missing data, dry run":
        extra = ["--dry-run"]
    if case == "missing val":
        extra = ["--val", str(tmp_path / "gone.csv")]
    before = sorted(tmp_path.rglob("*"))
    result = runner.invoke(cli, ["sweep", data, "--grid", "depth=1", "--epochs", "1",
                                 "-o", output if output == "-" else str(tmp_path / output),
                                 *extra])
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert "Error:" in result.output.splitlines()[-1]
    assert sorted(tmp_path.rglob("*")) == before
    assert (tmp_path / "file").read_text() == "mine\n"


def test_a_damaged_result_trains_again_and_never_breaks_the_leaderboard(quakes, tmp_path,
                                                                        caplog):
    spec = sweep.Sweep({"data": quakes}, FIXED, {"depth": [1, 2]})
    sweep.run(spec, tmp_path)
    truncated, wrong = (tmp_path / spec.key({"depth": d}) / sweep.RESULT_FILE for d in (1, 2))
    truncated.write_text(truncated.read_text()[:40])
    wrong.write_text(wrong.read_text().replace('"seconds": ', '"seconds": "abc", "x": '))
    assert sweep.leaderboard(tmp_path) == []
    assert f"{truncated}: skipped" in caplog.text and "'seconds' is 'abc'" in caplog.text
    assert [s for *_, s in sweep.plan(spec, tmp_path)] == [sweep.NEW, sweep.NEW]
    assert f"{wrong}: not a sweep's result" in caplog.text
    rows = sweep.run(spec, tmp_path)
    assert sorted(r["depth"] for r in rows) == [1, 2]
    assert all(isinstance(r["seconds"], float) for r in rows)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / sweep.FAILED_FILE).write_text('{"seconds": "abc"}')
    assert len(sweep.leaderboard(tmp_path)) == 2


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


def test_a_combination_another_process_trains_is_skipped(quakes, tmp_path, monkeypatch,
                                                        held_elsewhere, caplog):
    caplog.set_level("INFO")
    spec = sweep.Sweep({"data": quakes}, FIXED, {"depth": [1, 2]})
    busy, free = (spec.key({"depth": d}) for d in (1, 2))
    held_elsewhere(tmp_path / busy)
    assert [s for *_, s in sweep.plan(spec, tmp_path)] == [sweep.BUSY, sweep.NEW]
    from fcnn_cli.results import runs

    held = []
    real = sweep.train_combination
    monkeypatch.setattr(sweep, "train_combination", lambda s, c, i, run_dir: held.append(
        runs.locked(run_dir)) or real(s, c, i, run_dir))
    rows = sweep.run(spec, tmp_path)
    assert [r["depth"] for r in rows] == [2] and held == [True]  # locked while it trains
    assert not runs.locked(tmp_path / free)
    assert f"{busy}: another process trains it; skipped" in caplog.text
    assert not (tmp_path / busy / sweep.RESULT_FILE).exists()
    assert (tmp_path / free / sweep.RESULT_FILE).exists()


def test_a_combination_finished_meanwhile_is_not_trained_again(quakes, tmp_path, monkeypatch,
                                                              caplog):
    """Planned as new, then finished by another sweep before this one reached it."""
    caplog.set_level("INFO")
    spec = sweep.Sweep({"data": quakes}, FIXED, {"depth": [1]})
    sweep.run(spec, tmp_path / "other")
    run_dir = tmp_path / spec.key({"depth": 1})
    real_plan = sweep.plan

    def plan_then_finish(*args):
        planned = real_plan(*args)
        import shutil

        shutil.copytree(tmp_path / "other" / run_dir.name, run_dir)
        return planned
    monkeypatch.setattr(sweep, "plan", plan_then_finish)
    monkeypatch.setattr(sweep, "train_combination", _never)
    assert [r["depth"] for r in sweep.run(spec, tmp_path)] == [1]
    assert "finished by another process meanwhile" in caplog.text


def test_command_line_says_what_another_process_trains(runner, quakes, tmp_path,
                                                       held_elsewhere):
    out = tmp_path / "sw"
    args = ["sweep", quakes, "--grid", "depth=1,2", "--epochs", "1", "--width", "8",
            "--batch-size", "32", "--no-plots", "-o", str(out)]
    spec = sweep.Sweep({"data": quakes}, {"epochs": 1, "width": 8}, {"depth": [1, 2]})
    held_elsewhere(out / spec.key({"depth": 1}))
    listed = runner.invoke(cli, [*args, "--dry-run"])
    assert "training in another process" in listed.output
    assert "2 combinations, 1 to train" in " ".join(listed.output.split())
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1 of 2 combinations were training in another process" in result.output


def test_a_typed_dropout_is_not_the_task_default_in_the_key():
    """Left out, a classifier trains with dropout 0.1 (the task's default), so dropout 0 typed
    out is another combination."""
    grid = {"lr": [1e-3]}
    plain = sweep.Sweep({"data": "x.csv"}, {}, grid)
    typed = sweep.Sweep({"data": "x.csv"}, {"dropout": 0.0}, grid)
    assert plain.key({"lr": 1e-3}) != typed.key({"lr": 1e-3})


def test_a_touched_data_file_is_the_same_data_an_edited_one_is_not(quakes, tmp_path):
    import os
    import shutil

    data = tmp_path / "q.csv"
    shutil.copy(quakes, data)
    spec = sweep.Sweep({"data": str(data)}, FIXED, {"lr": [1e-3]})
    sweep.run(spec, tmp_path / "sw")
    os.utime(data, ns=(1, 1))  # a copy or a touch: the time changes, not the content
    assert [s for *_, s in sweep.plan(spec, tmp_path / "sw")] == [sweep.FINISHED]
    text = data.read_text()
    data.write_text(text.replace("1", "2", 1))  # one digit: the same size, other content
    with pytest.raises(FcnnError, match="trained on other data"):
        sweep.plan(spec, tmp_path / "sw")


def test_a_data_file_with_a_selector_is_found(tmp_path):
    path = tmp_path / "q.h5"
    path.write_bytes(b"0" * 123)  # only its size is read here
    spec = sweep.Sweep({"data": f"{path}:events"}, FIXED, {"lr": [1e-3]})
    files = sweep.data_files(spec)
    assert files["data"]["path"] == f"{path}:events"
    assert files["data"]["size"] == path.stat().st_size


def test_the_plan_in_a_log_shows_every_value_and_run_whole(runner, quakes, tmp_path,
                                                           monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    result = runner.invoke(cli, ["sweep", quakes, "--grid", "lr=0.001,0.01", "--grid",
                                 "arch=plain,resnet", "--grid", "weight-decay=0.0001",
                                 "--grid", "dropout=0.1", "--grid", "width=16", "--dry-run",
                                 "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and "│ 0.001 │" in result.output
    spec = sweep.Sweep({"data": quakes}, {}, {"lr": [0.001], "arch": ["plain"],
                                               "weight_decay": [0.0001], "dropout": [0.1],
                                               "width": [16]})
    assert spec.key(next(iter(sweep.combinations(spec.grid)))) in result.output


def test_the_command_line_replaces_a_grid_of_the_file(runner, quakes, tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text("[grid]\nlr = [0.001, 0.01]\ndepth = [1, 2]\n")
    out = tmp_path / "sw"
    result = runner.invoke(cli, ["sweep", quakes, "--grid-file", str(path), "--lr", "0.5",
                                 "--dry-run", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"--lr on the command line replaces the grid of lr in {path}" in result.output
    assert "Sweep plan (2 combinations" in result.output and "0.001" not in result.output
    spec = sweep.Sweep({"data": quakes}, {"lr": 0.5}, {"depth": [1, 2]})
    assert spec.key({"depth": 1}) in result.output


def test_the_order_of_the_grid_keys_names_no_other_run():
    one = sweep.Sweep({"data": "x.csv"}, {}, {"lr": [1e-3], "init": ["he"]})
    other = sweep.Sweep({"data": "x.csv"}, {}, {"init": ["he"], "lr": [1e-3]})
    assert one.key({"lr": 1e-3, "init": "he"}) == other.key({"init": "he", "lr": 1e-3})


@pytest.mark.parametrize("key", ["threads", "device"])
def test_options_of_speed_alone_are_fixed_not_swept(key):
    value = {"threads": 1, "device": "cpu"}[key]
    sweep.Sweep({"data": "x.csv"}, {key: value}, {"lr": [1e-3]})  # fixed: taken
    with pytest.raises(FcnnError, match="changes how fast"):
        sweep.parse_grid([f"{key}={value}"])


def test_a_run_whose_plots_were_cut_short_gets_them_all_again(quakes, tmp_path, monkeypatch):
    from fcnn_cli.results import plots

    spec = sweep.Sweep({"data": quakes}, FIXED, {"lr": [1e-3]})
    real, drawn = plots.plot_run, []

    def cut_short(path):
        (path / "plots").mkdir(exist_ok=True)
        (path / "plots" / "learning_curves.png").write_bytes(b"partial")
        raise KeyboardInterrupt  # the sweep stopped while drawing
    monkeypatch.setattr(plots, "plot_run", cut_short)
    with pytest.raises(KeyboardInterrupt):
        sweep.run(spec, tmp_path, plots=True)
    monkeypatch.setattr(plots, "plot_run", lambda path: drawn.append(path) or real(path))
    sweep.run(spec, tmp_path, plots=True)
    assert len(drawn) == 1 and len(list((drawn[0] / "plots").glob("*.png"))) > 1
    sweep.run(spec, tmp_path, plots=True)  # all drawn now: nothing again
    assert len(drawn) == 1


def test_a_finished_combination_without_its_model_trains_again(quakes, tmp_path):
    spec = sweep.Sweep({"data": quakes}, FIXED, {"lr": [1e-3]})
    sweep.run(spec, tmp_path)
    (tmp_path / spec.key({"lr": 1e-3}) / "model.pt").unlink()
    assert [s for *_, s in sweep.plan(spec, tmp_path)] == [sweep.NEW]
    sweep.run(spec, tmp_path)
    assert (tmp_path / spec.key({"lr": 1e-3}) / "model.pt").is_file()


def test_an_empty_shard_says_so(quakes, tmp_path, caplog):
    spec = sweep.Sweep({"data": quakes}, FIXED, {"lr": [1e-3, 1e-2]})
    with caplog.at_level("WARNING"):
        assert sweep.plan(spec, tmp_path, (5, 8)) == []
        sweep.run(spec, tmp_path, (5, 8))
    assert "shard 5/8 of a grid of 2 combinations holds none" in caplog.text


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
    failed = json.loads((out / rows[-1]["run"].rsplit("/", 1)[-1] / sweep.FAILED_FILE)
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
    spec = sweep.Sweep({"data": quakes}, FIXED, {"lr": [1e-3, 1e-2]}, seeds=2)
    rows = sweep.run(spec, tmp_path)
    assert sorted(r["mode"] for r in rows) == ["ensemble", "ensemble"]


def test_a_network_too_large_for_the_memory_fails_its_combination_alone(quakes, tmp_path,
                                                                        monkeypatch):
    from fcnn_cli.machine import devices

    monkeypatch.setattr(devices, "memory_available", lambda device: 64 << 20)
    fixed = {k: v for k, v in FIXED.items() if k != "width"}
    spec = sweep.Sweep({"data": quakes}, fixed, {"width": [8, 4096]})
    rows = sweep.run(spec, tmp_path)
    assert [(r["width"], r["mode"]) for r in rows] == [(8, "single"), (4096, "failed")]
    assert rows[-1]["error"].startswith("a network of ") and \
        "but 64 MiB is available on the CPU" in rows[-1]["error"]

def test_an_empty_shard_option_is_refused(runner, quakes, tmp_path):
    result = runner.invoke(cli, ["sweep", quakes, "--grid", "depth=1", "--epochs", "1",
                                 "--shard", "", "-o", str(tmp_path / "sw")])
    assert result.exit_code == 2, result.output
    assert "--shard must be I/N with 1 ≤ I ≤ N (such as 2/8), not ''" in result.output
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("case", ["data is its leaderboard", "val is its leaderboard",
                                  "test is its leaderboard", "its leaderboard links to the data",
                                  "the grid file is its leaderboard",
                                  "seeds.json links to the data",
                                  "failed.json is a hard link to the data",
                                  "a seed's run file links to the data"])
def test_a_sweep_never_writes_over_its_inputs(runner, quakes, tmp_path, case, dry_run):
    """Whatever the input (DATA, --val, --test, --grid-file) and the file of the sweep it is or
    is linked from: refused before anything is written, the input byte for byte as it was."""
    import shutil

    out = tmp_path / "sw"
    out.mkdir()
    data, extra, grid = tmp_path / "q.csv", [], ["--grid", "depth=1,2"]
    shutil.copy(quakes, data)
    victim, written = data, out / "leaderboard.csv"
    if case == "data is its leaderboard":
        data = victim = out / "leaderboard.csv"
        data.write_bytes((tmp_path / "q.csv").read_bytes())
    elif case in ("val is its leaderboard", "test is its leaderboard"):
        victim = written = out / "leaderboard.json"
        shutil.copy(data, victim)
        extra = [f"--{case.split()[0]}", str(victim)]
    elif case == "its leaderboard links to the data":
        (out / "leaderboard.csv").symlink_to(data)
    elif case == "the grid file is its leaderboard":
        victim = written = out / "leaderboard.json"
        victim.write_text("[grid]\ndepth = [1, 2]\n")
        grid = ["--grid-file", str(victim)]
    else:
        run_dir = out / sweep.Sweep({"data": str(data)}, {"epochs": 1},
                                    {"depth": [1, 2]}).key({"depth": 2})
        written = {"seeds.json links to the data": run_dir / "seeds.json",
                   "failed.json is a hard link to the data": run_dir / "failed.json",
                   "a seed's run file links to the data": run_dir / "seed-0" / "history.csv",
                   }[case]
        written.parent.mkdir(parents=True)
        if "hard link" in case:
            os.link(data, written)
        else:
            written.symlink_to(data)
    before = {p: p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")}
    result = runner.invoke(cli, ["sweep", str(data), *grid, "--epochs", "1", "--no-plots",
                                 "-o", str(out), *extra, *(["--dry-run"] if dry_run else [])])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1] == (
        f"Error: {written}: is the same file as the input {victim}; write the output to "
        "another file")
    assert {p: p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")} == before


def _sweep_process(args, timeout=120):
    """fcnn sweep in a process of its own, which a hang cannot stop the tests in."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "fcnn_cli", "sweep", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("name, make", [("seeds.json", os.mkfifo), ("failed.json", os.mkfifo),
                                        ("model.pt", os.mkfifo),
                                        ("seed-1/config.json", os.mkfifo),
                                        ("seeds.json", os.mkdir)])
def test_a_special_file_among_its_own_is_refused_at_once(quakes, tmp_path, name, make,
                                                         dry_run):
    """A FIFO would block the sweep where it reads or writes it (a directory cannot be
    written): one line and exit 1 at once, the FIFO left as it was."""
    import stat

    spec = sweep.Sweep({"data": quakes}, {"epochs": 1}, {"depth": [1]})
    path = tmp_path / spec.key({"depth": 1}) / name
    path.parent.mkdir(parents=True)
    make(path)
    kind = os.lstat(path).st_mode
    done = _sweep_process([quakes, "--grid", "depth=1", "--epochs", "1", "-o", tmp_path,
                           *(["--dry-run"] if dry_run else [])])
    assert done.returncode == 1 and done.stdout == "", done.stderr
    assert done.stderr.splitlines() == [f"Error: {path}: " + (
        "is a directory; name a file to write" if make is os.mkdir else
        "is not a regular file, which the sweep would read and write as its own; remove it or "
        "choose another --output directory")]
    assert stat.S_IFMT(os.lstat(path).st_mode) == stat.S_IFMT(kind)
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        {spec.key({"depth": 1}), *name.split("/")})


def test_the_leaderboard_skips_special_and_huge_files(tmp_path):
    """Other sweeps' files in the directory: a FIFO is not opened, a (sparse) file larger
    than a result can be is not read; each is skipped with a warning."""
    import subprocess
    import sys

    for name in ("fifo", "huge", "failed"):
        (tmp_path / name).mkdir()
    os.mkfifo(tmp_path / "fifo" / sweep.RESULT_FILE)
    os.mkfifo(tmp_path / "failed" / sweep.FAILED_FILE)
    with open(tmp_path / "huge" / sweep.RESULT_FILE, "wb") as f:
        f.truncate(sweep.MAX_SAVED_BYTES + 1)
    code = f"from fcnn_cli import sweep; print(sweep.leaderboard({str(tmp_path)!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout == "[]\n", done.stderr
    assert sorted(done.stderr.splitlines()) == sorted([
        f"{tmp_path / 'failed' / 'failed.json'}: skipped, not a sweep's failure: failed.json: "
        "not a regular file (a FIFO)",
        f"{tmp_path / 'fifo' / 'seeds.json'}: skipped, not a sweep's result: seeds.json: not "
        "a regular file (a FIFO)",
        f"{tmp_path / 'huge' / 'seeds.json'}: skipped, not a sweep's result: seeds.json: "
        "larger than 256 MiB"])


@pytest.fixture(scope="module")
def finished(quakes, tmp_path_factory):
    """A sweep of one finished combination (copy it before changing it)."""
    spec = sweep.Sweep({"data": quakes}, FIXED, {"depth": [1]})
    out = tmp_path_factory.mktemp("finished")
    sweep.run(spec, out)
    return spec, out


def _with_file(entry):
    return lambda saved: next(iter(saved["data_files"].values())).update(entry)


DAMAGED = {
    "no seeds": (lambda s: s.update(seeds=[], metrics=[]),
                 "its 'seeds' are [], not distinct seeds"),
    "a seed twice": (lambda s: s.update(seeds=[0, 0], metrics=s["metrics"] * 2),
                     "its 'seeds' are [0, 0], not distinct seeds"),
    "a seed as text": (lambda s: s.update(seeds=["0"]), "its 'seeds' are ['0'], not distinct"),
    "a negative seed": (lambda s: s.update(seeds=[-1]), "its 'seeds' are [-1], not distinct"),
    "a seed as true": (lambda s: s.update(seeds=[True]), "its 'seeds' are [True], not"),
    "other seeds": (lambda s: s.update(seeds=[5]), "its 'seeds' is [5], not [0]"),
    "another combination": (lambda s: s.update(combination={"depth": 2}),
                            "its 'combination' is {'depth': 2}, not {'depth': 1}"),
    "data files as numbers": (lambda s: s.update(data_files={"data": 3}),
                              "its data_files' 'data' is 3, not an object"),
    "an unknown data file": (lambda s: s["data_files"].update(x={}),
                             "its data_files name 'x', not one of data, val, test"),
    "a size as text": (_with_file({"size": "big"}),
                       "its data_files' data 'size' is 'big', not a size"),
    "a negative size": (_with_file({"size": -1}), "its data_files' data is {"),
    "a time as a float": (_with_file({"mtime_ns": 1.5}),
                          "its data_files' data 'mtime_ns' is 1.5, not a time"),
    "a digest as a number": (_with_file({"sha256": 5}), "its data_files' data is {"),
    "no path": (lambda s: next(iter(s["data_files"].values())).pop("path"),
                "its data_files' data has no 'path'"),
    "negative seconds": (lambda s: s.update(seconds=-1), "its 'seconds' is -1, not a time"),
    "seconds not a number": (lambda s: s.update(seconds=float("nan")),
                             "its 'seconds' is nan, not a time"),
    "an unknown mode": (lambda s: s.update(mode="fast"), "its 'mode' is 'fast', not one of "
                                                         "single, ensemble, sequential"),
    "metrics of no seed": (lambda s: s.update(metrics=[]),
                           "its metrics are not one object per seed"),
    "metrics not objects": (lambda s: s.update(metrics=[3]),
                            "its metrics are not one object per seed"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_result_edited_out_of_shape_is_not_finished(finished, tmp_path, caplog, damage):
    """One warning naming the file and what is wrong; the combination trains again."""
    import shutil

    spec, source = finished
    shutil.copytree(source, tmp_path, dirs_exist_ok=True)
    path = tmp_path / spec.key({"depth": 1}) / sweep.RESULT_FILE
    saved = json.loads(path.read_text())
    edit, said = DAMAGED[damage]
    edit(saved)
    path.write_text(json.dumps(saved))
    with caplog.at_level("WARNING"):
        assert [s for *_, s in sweep.plan(spec, tmp_path)] == [sweep.NEW]
    (said_once,) = [r.getMessage() for r in caplog.records]
    assert said_once.startswith(f"{path}: not a sweep's result ({said}"), said_once
    assert said_once.endswith("): its combination trains again")


@pytest.mark.parametrize("damage", ["no seeds", "data files as numbers"])
def test_an_edited_result_is_listed_and_trained_again_from_the_command_line(
        runner, finished, tmp_path, damage):
    import shutil

    spec, source = finished
    shutil.copytree(source, tmp_path, dirs_exist_ok=True)
    path = tmp_path / spec.key({"depth": 1}) / sweep.RESULT_FILE
    saved = json.loads(path.read_text())
    DAMAGED[damage][0](saved)
    path.write_text(json.dumps(saved))
    args = ["sweep", spec.data["data"], "--grid", "depth=1", "--no-plots", "-o", str(tmp_path),
            *(f"--{k.replace('_', '-')}={v}" for k, v in FIXED.items())]
    listed = runner.invoke(cli, [*args, "--dry-run"])
    assert listed.exit_code == 0 and "to train" in listed.output, listed.output
    assert DAMAGED[damage][1] in listed.output and "Traceback" not in listed.output
    trained = runner.invoke(cli, args)
    assert trained.exit_code == 0, trained.output
    saved, row = sweep.read_result(path)
    assert saved["seeds"] == [0] and row["seeds"] == 1


def test_a_grid_is_counted_before_its_combinations_are_made(monkeypatch):
    monkeypatch.setattr(sweep, "combinations", _never)
    grid = {key: list(range(1, 101)) for key in ("depth", "width", "epochs", "batch_size")}
    with pytest.raises(FcnnError, match="^the grid makes 100000000 combinations; a sweep "
                                        "trains at most 10000: split it into several sweeps$"):
        sweep.Sweep({"data": "x.csv"}, {}, grid)


def test_the_bound_is_on_the_combinations_and_on_one_list_before_its_values(monkeypatch,
                                                                           tmp_path):
    monkeypatch.setattr(sweep, "MAX_COMBINATIONS", 6)
    sweep.Sweep({"data": "x.csv"}, {}, {"depth": [1, 2], "width": [1, 2, 3]})  # 6: taken
    with pytest.raises(FcnnError, match="the grid makes 8 combinations; a sweep trains at "
                                        "most 6"):
        sweep.Sweep({"data": "x.csv"}, {}, {"depth": [1, 2], "width": [1, 2, 3, 4]})
    assert sweep.parse_grid(["depth=1,2,3,4,5,6"]) == {"depth": [1, 2, 3, 4, 5, 6]}
    path = tmp_path / "sweep.toml"
    path.write_text("[grid]\ndepth = [1, 2, 3, 4, 5, 6, 7]\n")
    monkeypatch.setattr(sweep, "_typed", _never)  # refused before any value is read
    with pytest.raises(FcnnError, match="^grid depth: 7 values; a sweep trains at most 6 "
                                        "combinations$"):
        sweep.parse_grid(["depth=1,2,3,4,5,6,7"])
    with pytest.raises(FcnnError, match=f"^{path}: \\[grid\\] depth: 7 values; a sweep "
                                        "trains at most 6 combinations$"):
        sweep.read_grid_file(path)


def test_a_grid_file_of_a_million_combinations_is_one_line(runner, tmp_path):
    path = tmp_path / "sweep.toml"
    values = list(range(1, 1001))
    path.write_text(f"[grid]\ndepth = {values}\nwidth = {values}\n")
    result = runner.invoke(cli, ["sweep", "q.csv", "--grid-file", str(path), "--dry-run",
                                 "-o", str(tmp_path / "sw")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.splitlines()[-1] == (
        "Error: the grid makes 1000000 combinations; a sweep trains at most 10000: split it "
        "into several sweeps")


def test_a_grid_file_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_bytes("\ufeff[grid]\ndepth = [1, 2]\n".encode("utf-8"))
    assert sweep.read_grid_file(path) == ({"depth": [1, 2]}, {})


@pytest.mark.parametrize("text", ["[grid]\ndepth = " + "[" * 3000 + "]" * 3000,
                                  "[grid]\n" + "a." * 3000 + "a = 1"])
def test_a_grid_file_nested_too_deep_is_one_line(runner, tmp_path, text):
    path = tmp_path / "sweep.toml"
    path.write_text(text + "\n")
    result = runner.invoke(cli, ["sweep", "q.csv", "--grid-file", str(path), "--dry-run",
                                 "-o", str(tmp_path / "sw")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.splitlines()[-1] == (
        f"Error: {path}: tables or lists nested more than 16 levels deep; no option takes "
        "such a value")


def test_a_grid_value_nested_too_deep_is_one_line():
    with pytest.raises(FcnnError, match=r"^grid: depth must be an integer, not '\[\[\["):
        sweep.parse_grid(["depth=" + "[" * 3000 + "]" * 3000])
