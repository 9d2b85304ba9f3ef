"""Training a combination: its seeds as one ensemble's members, each equal to a single run;
combinations that differ in member options as the cohorts of one pass, each saved as if
trained alone; the runs' records of their data."""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from sweeping import FIXED, counting, never
from fcnn_cli.data import simulate
from fcnn_cli.data.writer import write_table
from fcnn_cli.engine import train
from fcnn_cli.engine.prepare import split_indices
from fcnn_cli.sweeps import records, run
from fcnn_cli.sweeps.grid import Sweep, combinations


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
    spec = Sweep({"data": data, "val": val, "test": test}, {**FIXED, "seed": 4,
                 "epochs": 2}, {"depth": [2]}, seeds=3)
    run.run(spec, tmp_path)
    assert [config.ensemble for config in fits] == [3]
    saved = json.loads((tmp_path / spec.key({"depth": 2}) / records.RESULT_FILE).read_text())
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


LR_INIT = {"lr": [1e-3, 1e-2], "init": ["he", "lecun"]}


def test_a_grid_of_lr_and_init_trains_as_one_group(splits, tmp_path, monkeypatch):
    """Each combination's run predicts as a single run of it; a rerun trains nothing."""
    from fcnn_cli.network import checkpoint
    from fcnn_cli.data.tables import read_table

    data, val, test = splits
    calls = counting(monkeypatch)
    spec = Sweep({"data": data, "val": val, "test": test},
                 {**FIXED, "seed": 4, "epochs": 2, "depth": 2}, LR_INIT)
    rows = run.run(spec, tmp_path)
    assert calls == {"passes": [[1, 1, 1, 1]], "fits": 0}
    assert [r["mode"] for r in rows] == ["grouped"] * 4
    assert len({r["seconds"] for r in rows}) == 1
    tables = [read_table(p) for p in splits]
    for combination in combinations(LR_INIT):
        run_dir = tmp_path / spec.key(combination)
        saved = json.loads((run_dir / records.RESULT_FILE).read_text())
        assert saved["seeds"] == [4] and len(saved["group"]) == 4
        loaded = checkpoint.load(run_dir / "model.pt")
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
    monkeypatch.setattr(run, "train_combination", never)
    monkeypatch.setattr(run, "train_group", never)
    assert run.run(spec, tmp_path) == rows


def test_grouped_seeds_save_each_combination_as_its_own_ensemble(quakes, tmp_path,
                                                                  monkeypatch):
    calls = counting(monkeypatch)
    spec = Sweep({"data": quakes}, FIXED, {"lr": [1e-3, 1e-2]}, seeds=2)
    rows = run.run(spec, tmp_path)
    assert calls == {"passes": [[2, 2]], "fits": 0}
    for row in rows:
        saved = json.loads((tmp_path / Path(row["run"]).name / records.RESULT_FILE)
                           .read_text())
        assert saved["mode"] == "grouped" and len(saved["metrics"]) == 2
        config = json.loads((Path(row["run"]) / "config.json").read_text())
        assert config["train"]["ensemble"] == 2 and config["train"]["lr"] == row["lr"]


def test_the_plateau_schedule_trains_seeds_and_combinations_together(quakes, tmp_path):
    """Each member on its own plateau: a combination's seeds as one ensemble, combinations
    that differ in a member option as cohorts of one pass, each member its own plateau."""
    fixed = {**FIXED, "epochs": 2, "schedule": "plateau"}
    spec = Sweep({"data": quakes}, fixed, {"depth": [1]}, seeds=2)
    assert [r["mode"] for r in run.run(spec, tmp_path / "seeds")] == ["ensemble"]
    spec = Sweep({"data": quakes}, fixed, {"lr": [1e-3, 1e-2]})
    rows = run.run(spec, tmp_path / "cohorts")
    assert sorted(r["mode"] for r in rows) == ["grouped", "grouped"]
    for row in rows:  # each combination's rate its own
        with open(tmp_path / "cohorts" / spec.key({"lr": row["lr"]}) / "history.csv") as f:
            assert [float(epoch["lr"]) for epoch in csv.DictReader(f)] == [row["lr"]] * 2


def test_runs_record_absolute_data_paths(own_quakes, tmp_path, monkeypatch):
    import tomllib

    monkeypatch.chdir(own_quakes.parent)
    spec = Sweep({"data": "q.csv"}, FIXED, {"depth": [1]})
    run.run(spec, tmp_path / "sw")
    run_dir = tmp_path / "sw" / spec.key({"depth": 1})
    assert json.loads((run_dir / "config.json").read_text())["data"] == str(own_quakes)
    assert tomllib.loads((run_dir / "config.toml").read_text())["data"] == str(own_quakes)


def test_a_working_point_in_a_sweep_is_each_combinations_own(tmp_path, monkeypatch):
    """Combinations of one pass share their data's task: each records its own cut."""
    import pandas as pd

    from fcnn_cli.data.tables import read_table
    from fcnn_cli.network import checkpoint

    rng = np.random.default_rng(5)
    paths = []
    for name, n in (("train", 600), ("val", 300)):
        kind = np.where(rng.random(n) < 0.4, "signal", "background")
        x = rng.normal(size=(n, 2)) + (kind == "signal")[:, None]
        paths.append(tmp_path / f"{name}.csv")
        pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "kind": kind}).to_csv(paths[-1], index=False)
    calls = counting(monkeypatch)
    spec = Sweep({"data": str(paths[0]), "val": str(paths[1]), "targets": ["kind"]},
                 {**FIXED, "epochs": 2, "working_point": "eff=0.7"},
                 {"lr": [1e-3, 3e-2]}, seeds=1)
    run.run(spec, tmp_path / "sweep")
    assert calls["passes"] == [[1, 1]]
    is_signal = pd.read_csv(paths[1]).kind == "signal"
    cuts = []
    for lr in (1e-3, 3e-2):
        predictor = checkpoint.load(tmp_path / "sweep" / spec.key({"lr": lr}) / "model.pt",
                                    "cpu")
        p = predictor.predict(read_table(str(paths[1])))["p_signal"]
        cuts.append(predictor.task.working_point["cut"])
        assert (p[is_signal] >= cuts[-1]).mean() >= 0.7
    assert cuts[0] != cuts[1]


def test_a_baseline_in_a_sweep_is_fitted_beside_each_combinations_run(tmp_path, monkeypatch):
    """A pass of several networks has no one network to fit a baseline beside: the sweep
    trains each combination alone, each run with its baseline."""
    import pandas as pd

    from fcnn_cli.network import baseline

    rng = np.random.default_rng(6)
    kind = np.where(rng.random(500) < 0.4, "signal", "background")
    x = rng.normal(size=(500, 2)) + (kind == "signal")[:, None]
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "kind": kind}).to_csv(tmp_path / "d.csv",
                                                                   index=False)
    calls = counting(monkeypatch)
    spec = Sweep({"data": str(tmp_path / "d.csv"), "targets": ["kind"]},
                 {**FIXED, "epochs": 2, "baseline": "gbdt"}, {"lr": [1e-3, 3e-2]}, seeds=1)
    run.run(spec, tmp_path / "sweep")
    assert calls["passes"] == []  # refused as one pass before training: each alone
    for lr in (1e-3, 3e-2):
        directory = tmp_path / "sweep" / spec.key({"lr": lr})
        assert baseline.load(directory / "baseline_gbdt.pt").name == "gbdt"
        metrics = json.loads((directory / "metrics.json").read_text())
        assert set(metrics["baselines"]["gbdt"]) >= {"seconds", "train", "val", "test"}


def test_a_sweep_never_leaves_a_small_tables_members_to_fcnn(quakes, tmp_path):
    """Its members are its seeds: a combination of one seed, trained alone as a shape of its
    own, is one network where fcnn train would choose five."""
    fixed = {k: v for k, v in FIXED.items() if k != "epochs"} | {"patience": 1}
    spec = Sweep({"data": quakes}, fixed, {"depth": [1, 2]})
    rows = run.run(spec, tmp_path)
    assert sorted(r["mode"] for r in rows) == ["single", "single"]
    for row in rows:
        config = json.loads((Path(row["run"]) / "config.json").read_text())
        assert config["train"]["ensemble"] == 1 and config["train"]["epochs"] == 500
