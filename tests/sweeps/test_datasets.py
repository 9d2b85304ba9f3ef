"""A sweep's data through a recipe, as fcnn train reads it: a selection, a weight and
definitions given once make runs equal to fcnn train's, bit for bit; a grid of them trains each
set of data options on its own tables, read once; weights reach the grid's negative-weight and
NaN options; samples of ROOT files are recorded, found again by a rerun, and applied by predict
and evaluate on the sweep's runs."""

import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sweeping import FIXED, counting, never
from fcnn_cli.commands import cli
from fcnn_cli.data import simulate
from fcnn_cli.data.writer import write_table
from fcnn_cli.engine import train
from fcnn_cli.network import checkpoint
from fcnn_cli.sweeps import datasets, plan, records, run
from fcnn_cli.sweeps.grid import Sweep, combinations

SELECTION = "tp1 > 10"
# Options that train in a moment, as the command line takes them.
QUICK = ["--epochs", "2", "--batch-size", "32", "--threads", "1", "--width", "8", "--seed", "3",
         "--no-plots", "-q"]


@pytest.fixture(scope="module")
def weighted(tmp_path_factory):
    """Earthquakes with an event weight ``w`` of which a share is negative, and a feature with
    missing values (``ts4``) in rows that SELECTION leaves out."""
    table = simulate.earthquakes(n=240, seed=1)
    rng = np.random.default_rng(5)
    # Negative weights small beside the others: a test split of a dozen rows whose weights
    # sum to a negative squared error has no RMSE.
    frame = table.frame.assign(w=np.where(rng.random(240) < 0.1, -0.1,
                                          rng.uniform(0.5, 2.0, 240)))
    frame.loc[(rng.random(240) < 0.2) & (frame.tp1 <= 10), "ts4"] = np.nan
    path = tmp_path_factory.mktemp("weighted") / "q.csv"
    write_table(dataclasses.replace(table, frame=frame), path)
    return str(path)


def _ok(runner, *args):
    result = runner.invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output + str(result.exception)
    return result


def _equal_weights(one, other):
    first, second = (checkpoint.load(Path(d) / "model.pt").net.state_dict() for d in (one, other))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_a_sweeps_run_with_a_recipe_is_fcnn_trains_run(runner, weighted, tmp_path):
    """Bit for bit: the weights, the metrics, the recipe recorded; predict on the sweep's run
    applies its definitions and says which rows pass its selection, as on train's."""
    recipe = ["--weight", "w", "--where", SELECTION, "--define", "t=ts1 - tp1", "--nan", "drop"]
    _ok(runner, "sweep", weighted, *recipe, *QUICK, "--grid", "depth=1", "-o", tmp_path / "sw")
    _ok(runner, "train", weighted, *recipe, *QUICK, "--depth", "1", "-o", tmp_path / "run")
    (swept,) = (p.parent for p in (tmp_path / "sw").glob("*/model.pt"))
    _equal_weights(swept, tmp_path / "run")
    assert (swept / "metrics.json").read_text() == (tmp_path / "run" / "metrics.json").read_text()
    config, trained = (json.loads((d / "config.json").read_text())
                       for d in (swept, tmp_path / "run"))
    assert config["recipe"] == trained["recipe"] and config["recipe"]["where"] == SELECTION
    assert config["recipe"]["samples"][0]["files"][0]["sha256"]
    assert config["features"] == trained["features"] and "t" in config["features"]
    assert "w" not in config["features"] and config["sizes"] == trained["sizes"]
    outputs = [_ok(runner, "predict", d / "model.pt", weighted).stdout
               for d in (swept, tmp_path / "run")]
    assert outputs[0] == outputs[1] and outputs[0].startswith("selected,")


def _kept(path, where):
    """The rows a selection keeps that have every value (the others left out by nan=drop)."""
    from fcnn_cli.data.tables import read_table

    frame = read_table(path).frame
    return len(frame[frame.tp1 > 10 if where else slice(None)].dropna())


def test_a_grid_of_selections_trains_each_on_its_rows_read_once(weighted, tmp_path,
                                                                monkeypatch):
    """Each set of data options is read once, and its combinations that differ in member
    options still train together; each as fcnn train would, with its own weights."""
    calls = counting(monkeypatch)
    reads = []
    real_read = datasets.read
    monkeypatch.setattr(datasets, "read", lambda o, *a: reads.append(o["where"]) or
                        real_read(o, *a))
    spec = Sweep({"data": weighted, "weight": "w"}, {**FIXED, "seed": 2, "nan": "drop"},
                 {"where": ["", SELECTION], "lr": [1e-3, 1e-2]})
    rows = run.run(spec, tmp_path)
    assert reads == [None, SELECTION] and calls == {"passes": [[1, 1], [1, 1]], "fits": 0}
    for combination in combinations(spec.grid):
        run_dir = tmp_path / spec.key(combination)
        config = json.loads((run_dir / "config.json").read_text())
        assert sum(config["sizes"].values()) == _kept(weighted, combination["where"])
        assert config["recipe"]["where"] == (combination["where"] or None)
        assert config["recipe"]["weight"] == "w" and config["train"]["lr"] == combination["lr"]
        inputs = datasets.read(datasets.data_options(spec.data, combination), {})
        single = train.fit(inputs.tables[0], train.TrainConfig(
            epochs=1, batch_size=32, threads=1, seed=2, nan="drop", lr=combination["lr"]),
            {"width": 8}, inputs.targets, inputs.features, weight=inputs.weight)
        loaded = checkpoint.load(run_dir / "model.pt")
        x = loaded.feature_matrix(dataclasses.replace(inputs.tables[0],
                                                      frame=inputs.tables[0].frame.dropna()))
        np.testing.assert_allclose(loaded.outputs(x), single.predictor.outputs(x), rtol=1e-4,
                                   atol=1e-4)
    assert {row["where"] for row in rows} == {"", SELECTION}
    monkeypatch.setattr(run, "train_combination", never)
    monkeypatch.setattr(run, "train_group", never)
    assert run.run(spec, tmp_path) == rows
    assert [s for *_, s in plan.plan(spec, tmp_path)] == [plan.FINISHED] * 4


def test_a_selection_its_table_refuses_fails_its_combinations_alone(weighted, tmp_path):
    spec = Sweep({"data": weighted}, {**FIXED, "nan": "drop"},
                 {"where": [SELECTION, "nosuch > 1"], "depth": [1]})
    rows = run.run(spec, tmp_path)
    assert [(r["where"], r["mode"]) for r in rows] == [(SELECTION, "single"),
                                                       ("nosuch > 1", "failed")]
    assert "nosuch" in rows[1]["error"]
    failed = tmp_path / spec.key({"where": "nosuch > 1", "depth": 1}) / records.FAILED_FILE
    assert json.loads(failed.read_text())["data"]["where"] == "nosuch > 1"


def test_weights_reach_a_grid_of_negative_weights_and_nan(weighted, tmp_path):
    """Each combination trains alone (they differ in options a pass shares), bit for bit as
    fit trains it with the same weights and options."""
    spec = Sweep({"data": weighted, "weight": "w"}, {**FIXED, "seed": 1},
                 {"negative_weights": ["keep", "zero"], "nan": ["drop", "fill"]})
    rows = run.run(spec, tmp_path)
    assert sorted(r["mode"] for r in rows) == ["single"] * 4
    inputs = datasets.read(spec.data, {})
    for combination in combinations(spec.grid):
        run_dir = tmp_path / spec.key(combination)
        config = train.TrainConfig(epochs=1, batch_size=32, threads=1, seed=1, **combination)
        single = train.fit(inputs.tables[0], config, {"width": 8}, inputs.targets,
                           inputs.features, weight="w")
        loaded = checkpoint.load(run_dir / "model.pt")
        saved = loaded.net.state_dict()
        assert all(torch.equal(saved[k], v) for k, v in single.predictor.net.state_dict().items())
        assert ("ts4_missing" in loaded.inputs) == (combination["nan"] == "fill")
    metrics = {r["negative_weights"]: r["val_rmse_mean"] for r in rows if r["nan"] == "drop"}
    assert metrics["keep"] != metrics["zero"]


MASS = ("mass=sqrt((Muon_E_0 + Muon_E_1)**2 - (Muon_Px_0 + Muon_Px_1)**2 "
        "- (Muon_Py_0 + Muon_Py_1)**2 - (Muon_Pz_0 + Muon_Pz_1)**2)")
WHERES = ["nMuon >= 2", "nMuon >= 2 && mass > 40"]
GRID = 'where=["nMuon >= 2", "nMuon >= 2 && mass > 40"]'


@pytest.fixture
def dimuons(tmp_path):
    """A signal file and two background files of dimuon events (tests/dimuon.py)."""
    pytest.importorskip("uproot")
    import dimuon

    d = tmp_path / "dimuons"
    d.mkdir()
    for name, n, seed, mixed in (("sig.root", 160, 1, False), ("bkg_1.root", 100, 2, True),
                                 ("bkg_2.root", 100, 3, True)):
        dimuon.write(d / name, n, seed, mixed)
    return d


def _samples(d):
    return ["--sample", f"signal={d}/sig.root*0.5", "--sample", f"background={d}/bkg_*.root*2",
            "--objects", "Muon:2", "--define", MASS, "--weight", "genWeight"]


def test_a_sweep_of_samples_and_selections(runner, dimuons, tmp_path):
    """Its runs record the samples' files and each its selection; the leaderboard tells them
    apart by it; predict and evaluate apply it on a sweep's run; a rerun finds them
    finished, and refuses samples whose files changed."""
    out = tmp_path / "sw"
    _ok(runner, "sweep", *_samples(dimuons), "--grid", GRID, *QUICK, "-o", out)
    _ok(runner, "train", *_samples(dimuons), "--where", WHERES[1], *QUICK, "-o",
        tmp_path / "run")
    board = pd.read_csv(out / "leaderboard.csv")
    assert sorted(board["where"]) == sorted(WHERES)
    for where in WHERES:
        run_dir = Path(board.loc[board["where"] == where, "run"].item())
        recipe = json.loads((run_dir / "config.json").read_text())["recipe"]
        assert recipe["where"] == where and [s["name"] for s in recipe["samples"]] == \
            ["signal", "background"]
        assert [Path(f["path"]).name for s in recipe["samples"] for f in s["files"]] == \
            ["sig.root", "bkg_1.root", "bkg_2.root"]
        scores = pd.read_csv(io.StringIO(_ok(
            runner, "predict", run_dir / "model.pt", dimuons / "bkg_1.root", "--keep",
            "mass").stdout))
        assert ((scores.selected == 1) == ((scores.mass > 40) | (where == WHERES[0]))).all()
    _equal_weights(run_dir, tmp_path / "run")
    report = json.loads(_ok(runner, "evaluate", run_dir / "model.pt", "--sample",
                            f"signal={dimuons}/sig.root", "--sample",
                            f"background={dimuons}/bkg_1.root", "--json").stdout)
    assert report["selection"]["where"] == WHERES[1] and report["weight"] == "genWeight"
    os.utime(dimuons / "bkg_1.root")  # touched: the same content, found the same
    again = _ok(runner, "sweep", *_samples(dimuons), "--grid", GRID, *QUICK, "-o", out,
                "--dry-run")
    assert again.stdout.count("finished") == 2
    import dimuon

    dimuon.write(dimuons / "bkg_2.root", 100, 9, True)  # other events in one file
    refused = runner.invoke(cli, ["sweep", *_samples(dimuons), "--grid", GRID, *QUICK, "-o",
                                  str(out)])
    assert refused.exit_code != 0 and "bkg_2.root is not the file it was trained on" in \
        refused.output


def test_a_sweep_of_samples_is_named_by_them(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    samples = Sweep({"samples": ["signal=s.root", "background=b_*.root*2"]}, {},
                    {"depth": [1]})
    assert datasets.name(samples.data) == "signal-background"
    assert datasets.name(Sweep({"data": "part_*.parquet"}, {}, {"depth": [1]}).data) == "part_"
    result = runner.invoke(cli, ["sweep", "--grid", "depth=1"])
    assert result.exit_code == 2 and "missing argument DATA (or --sample NAME=FILE)" in \
        result.output


def test_labels_are_read_of_every_file_made_as_training_makes_them(weighted, tmp_path):
    """DATA of two files: their labels one after the other, a defined one made of each row's
    x and y; none for samples and stdin, nor where DATA records none and none are named."""
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    frame = pd.read_csv(weighted, comment="#")
    for path, rows in ((first, frame[:100]), (second, frame[100:])):
        rows.to_csv(path, index=False)
    data = {"data": f"{first},{second}", "define": ["r=x + 2 * y"], "targets": ["r"]}
    table, targets = datasets.labels(data)
    assert targets == ["r"] and list(table.frame.columns) == ["r"]
    np.testing.assert_allclose(table.frame["r"], frame["x"] + 2 * frame["y"])
    assert datasets.labels({**data, "targets": None}) is None  # plain CSV: no metadata
    assert datasets.labels({"data": "-"}) is None
    assert datasets.labels({"samples": ["s=a.csv", "b=b.csv"], "data": None}) is None
