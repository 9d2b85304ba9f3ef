"""Categorical features from the command line: a label that hangs on a detector region (a text
column) and a particle type (PDG ids, named with --categorical) is learnt far better with them
than without; predict and evaluate take new levels with one line, every row written; a sweep
and an ensemble train on them too; info lists the levels."""

import json

import numpy as np
import pandas as pd
import pytest

from invoking import invoke, rmse_of
from fcnn_cli.core.config import TrainConfig
from fcnn_cli.data.tables import Table
from fcnn_cli.engine.train import fit

OFFSET = {"barrel": 0.0, "endcap": 2.0, "forward": -2.0, "overlap": 1.0}  # calibration
PDG = {11: 0.0, 13: 0.5, 211: -0.5}


def _rows(n, seed):
    rng = np.random.default_rng(seed)
    region = rng.choice(list(OFFSET), n)
    pdg = rng.choice(list(PDG), n)
    x = rng.normal(size=n)
    y = x + np.vectorize(OFFSET.get)(region) + np.vectorize(PDG.get)(pdg) + \
        0.05 * rng.normal(size=n)
    return pd.DataFrame({"x": x, "region": region, "pdg": pdg, "y": y})


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    path = tmp_path_factory.mktemp("categories") / "calib.csv"
    _rows(1200, 0).to_csv(path, index=False)
    return path



def test_a_text_column_of_the_calibration_is_learnt_and_new_levels_are_counted(
        runner, calibration, tmp_path):
    common = ["--epochs", 12, "--seed", 3, "-q", "--no-plots", "-t", "y"]
    invoke(runner, "train", calibration, *common, "--categorical", "pdg", "-o", tmp_path / "on")
    invoke(runner, "train", calibration, *common, "--features", "x", "-o", tmp_path / "off")
    with_levels, without = rmse_of(tmp_path / "on"), rmse_of(tmp_path / "off")
    # Without the columns the offsets' spread (about 1.5) is left; with them, little of it.
    assert with_levels < 0.25 * without, (with_levels, without)
    new = _rows(50, 1)
    new.loc[[3, 7, 8], "region"] = ["muon\tchamber", "", "muon\tchamber"]
    new.loc[9, "pdg"] = 2212
    new.to_csv(tmp_path / "new.csv", index=False)
    out = invoke(runner, "predict", tmp_path / "on" / "model.pt", tmp_path / "new.csv",
                  "-o", tmp_path / "p.csv", "--keep", "region").output
    lines = [line for line in out.splitlines() if "never seen" in line]
    assert lines == [f"warning: {tmp_path / 'new.csv'}: 4 row(s) of level(s) never seen in "
                     "training, each given the unknown level's input: 'region': "
                     "'muon\\tchamber', ''; 'pdg': '2212'"]
    written = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert len(written) == 50 and written["region"].tolist() == new["region"].tolist()
    evaluated = invoke(runner, "evaluate", tmp_path / "on" / "model.pt",
                        tmp_path / "new.csv").output
    assert [line for line in evaluated.splitlines() if "never seen" in line] == lines
    info = json.loads(invoke(runner, "info", tmp_path / "on" / "model.pt", "--json").stdout)
    assert info["categories"] == {"region": sorted(OFFSET), "pdg": ["11", "13", "211"]}


def test_a_streamed_run_learns_the_levels_of_every_piece(runner, calibration, tmp_path):
    parquet = tmp_path / "calib.parquet"
    frame = pd.read_csv(calibration)
    frame.to_parquet(parquet, row_group_size=200)
    common = ["--stream", "--epochs", 12, "--seed", 3, "-q", "--no-plots", "-t", "y"]
    invoke(runner, "train", parquet, *common, "--categorical", "pdg", "-o", tmp_path / "on")
    invoke(runner, "train", parquet, *common, "--features", "x", "-o", tmp_path / "off")
    with_levels, without = rmse_of(tmp_path / "on"), rmse_of(tmp_path / "off")
    assert with_levels < 0.25 * without, (with_levels, without)
    info = json.loads(invoke(runner, "info", tmp_path / "on" / "model.pt", "--json").stdout)
    assert info["categories"] == {"region": sorted(OFFSET), "pdg": ["11", "13", "211"]}
    invoke(runner, "predict", tmp_path / "on" / "model.pt", calibration,
            "-o", tmp_path / "p.csv")
    predicted = pd.read_csv(tmp_path / "p.csv")["y_pred"]
    assert np.sqrt(np.mean((predicted - frame["y"]) ** 2)) < 0.25 * without


def test_an_ensemble_and_a_sweep_take_categorical_features(runner, calibration, tmp_path):
    table = Table(pd.read_csv(calibration), name="calib.csv")
    result = fit(table, TrainConfig(epochs=2, ensemble=2, seed=1), targets=["y"])
    predictor = result.predictor
    assert predictor.members == 2 and predictor.columns == ["x", "region", "pdg"]
    predicted = predictor.predict(Table(_rows(5, 2), name="new"))
    assert list(predicted.columns) == ["y_pred", "y_std"] and len(predicted) == 5
    invoke(runner, "sweep", calibration, "-t", "y", "--categorical", "pdg", "--grid",
            "depth=1,2", "--epochs", 1, "--no-plots", "-o", tmp_path / "sweep")
    models = sorted((tmp_path / "sweep").glob("*/model.pt"))
    info = json.loads(invoke(runner, "info", models[0], "--json").stdout)
    assert len(models) == 2 and list(info["categories"]) == ["region", "pdg"]


@pytest.mark.parametrize("nan, levels", [("error", ["a", "b", None]), ("fill", ["a", "b", None]),
                                         ("drop", ["a", "b"])])
def test_a_missing_level_is_a_level_of_its_own_unless_nan_drops_it(nan, levels):
    from fcnn_cli.engine.prepare import prepare

    frame = _rows(40, 4).assign(region=["a", "b", None, "a"] * 10)
    data = prepare(Table(frame, ["y"], name="t"), TrainConfig(nan=nan), categorical=["pdg"])
    assert data.categories.levels["region"] == levels
    assert sum(data.sizes.values()) == (30 if nan == "drop" else 40)


@pytest.mark.parametrize("stream", [False, True])
def test_a_selection_compares_a_text_column_with_texts(runner, calibration, tmp_path, stream):
    frame = pd.read_csv(calibration)
    data = calibration
    if stream:
        data = tmp_path / "calib.parquet"
        frame.to_parquet(data, row_group_size=200)
    where = "region in ('barrel', 'endcap') and pdg != '211'"
    invoke(runner, "train", data, "-t", "y", "--where", where, "--epochs", 1, "-q",
            "--no-plots", *(["--stream"] if stream else []), "-o", tmp_path / "run")
    kept = frame["region"].isin(["barrel", "endcap"]) & (frame["pdg"] != 211)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert sum(metrics[s]["rows"] for s in ("train", "val", "test")) == kept.sum()
    assert config["recipe"]["where"] == where
    info = json.loads(invoke(runner, "info", tmp_path / "run" / "model.pt", "--json").stdout)
    assert info["categories"] == {"region": ["barrel", "endcap"]}  # of the rows selected


def test_a_definition_of_a_text_column_works_compared_and_is_refused_computed(
        runner, calibration, tmp_path):
    out = invoke(runner, "train", calibration, "-t", "y", "--define", "r=region + 1",
                  "-o", tmp_path / "bad", code=1).output
    assert out.strip().splitlines()[-1] == (
        f"Error: {calibration}: definition 'r': expression 'region + 1', character 1: "
        "column 'region' holds str values, not numbers")
    invoke(runner, "train", calibration, "-t", "y", "--define", "endcap=region == 'endcap'",
            "--features", "x,endcap", "--epochs", 1, "-q", "--no-plots", "-o", tmp_path / "ok")
    new = _rows(20, 5)
    new.to_csv(tmp_path / "new.csv", index=False)
    invoke(runner, "predict", tmp_path / "ok" / "model.pt", tmp_path / "new.csv",
            "-o", tmp_path / "p.csv", "--keep", "endcap")
    written = pd.read_csv(tmp_path / "p.csv")
    assert written["endcap"].tolist() == (new["region"] == "endcap").astype(float).tolist()


@pytest.mark.parametrize("stream", [False, True])
def test_float64_ids_of_a_parquet_file_are_levels_as_they_are(runner, tmp_path, stream):
    """Parquet's float features are read as float32, but not a categorical one: ids that
    float32 would merge (100000001 and 100000002 are one float32) stay apart, and predict on
    the training file meets no level it did not see."""
    rng = np.random.default_rng(0)
    ids = 100_000_001 + rng.integers(0, 20, 600)
    pd.DataFrame({"x": rng.normal(size=600), "id": ids.astype(np.float64),
                  "y": ids % 7.0}).to_parquet(tmp_path / "ids.parquet")
    invoke(runner, "train", tmp_path / "ids.parquet", "-t", "y", "--categorical", "id",
            "--epochs", 1, "-q", "--no-plots", "-o", tmp_path / "run",
            *(["--stream"] if stream else []))
    info = json.loads(invoke(runner, "info", tmp_path / "run" / "model.pt", "--json").stdout)
    assert info["categories"]["id"] == [str(i) for i in sorted(set(ids.tolist()))]
    out = invoke(runner, "predict", tmp_path / "run" / "model.pt", tmp_path / "ids.parquet",
                  "-o", tmp_path / "p.csv").output
    assert "never seen" not in out
