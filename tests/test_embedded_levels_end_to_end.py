"""A categorical feature of many levels (500 stations, each with its own calibration offset)
from the command line: its learned embedding learns the offsets far better than the network
without the column; predict counts new stations in one line and writes every row; info says it
is embedded; the checkpoint's levels are checked against the embedding's rows; the ONNX graph
matches torch; an ensemble and k-fold train it."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from forgery import in_meta, resigned

from invoking import invoke, rmse_of
from fcnn_cli.core.config import TrainConfig
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import Table
from fcnn_cli.engine.train import fit
from fcnn_cli.network import checkpoint

STATIONS = np.array([f"st{i:03d}" for i in range(500)])
OFFSETS = np.random.default_rng(42).normal(size=500) * 2.0


def _rows(n, seed):
    rng = np.random.default_rng(seed)
    k = rng.integers(0, len(STATIONS), n)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "station": STATIONS[k],
                         "y": x + OFFSETS[k] + 0.05 * rng.normal(size=n)})


@pytest.fixture(scope="module")
def stations(tmp_path_factory):
    path = tmp_path_factory.mktemp("stations") / "stations.csv"
    _rows(12_000, 0).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(stations, tmp_path_factory):
    """(the run with the station embedded, the test RMSE without the column)."""
    from click.testing import CliRunner

    runner, out = CliRunner(), tmp_path_factory.mktemp("runs")
    common = ["--epochs", 6, "--seed", 3, "-q", "--no-plots", "-t", "y"]
    invoke(runner, "train", stations, *common, "--categorical", "station", "-o", out / "on")
    invoke(runner, "train", stations, *common, "--features", "x", "-o", out / "off")
    return out / "on", rmse_of(out / "off")



def test_the_embedding_learns_each_stations_offset_and_new_stations_are_counted(
        runner, trained, tmp_path):
    run, without = trained
    # Without the column the offsets' spread (2) is left; with it, a small part of it.
    assert rmse_of(run) < 0.2 * without, (rmse_of(run), without)
    new = _rows(40, 1)
    new.loc[[2, 5, 6], "station"] = ["st999", "new\tone", "st999"]
    new.to_csv(tmp_path / "new.csv", index=False)
    out = invoke(runner, "predict", run / "model.pt", tmp_path / "new.csv", "-o",
                  tmp_path / "p.csv", "--keep", "station").output
    lines = [line for line in out.splitlines() if "never seen" in line]
    assert lines == [f"warning: {tmp_path / 'new.csv'}: 3 row(s) of level(s) never seen in "
                     "training, each given the unknown level's input: 'station': 'st999', "
                     "'new\\tone'"]
    # No training row has the unknown level: its row is as it started, zero.
    assert not checkpoint.load(run / "model.pt").net.embed.tables[0][0].any()
    written = pd.read_csv(tmp_path / "p.csv")
    assert len(written) == 40 and written["station"].tolist() == new["station"].tolist()
    evaluated = invoke(runner, "evaluate", run / "model.pt", tmp_path / "new.csv").output
    assert [line for line in evaluated.splitlines() if "never seen" in line] == lines
    info = json.loads(invoke(runner, "info", run / "model.pt", "--json").stdout)
    assert info["embedded"] == {"station": 32} and info["network"]["levels"] == [[1, 501, 32]]
    assert len(info["categories"]["station"]) == 500
    shown = invoke(runner, "info", run / "model.pt").stdout
    assert "embedded, 500 levels, dim 32, 'st000'" in shown and "1 + levels 32 → 64" in shown
    # The options that train it again hold no layout of levels: the data make it anew.
    assert "levels" not in (run / "config.toml").read_text()
    invoke(runner, "train", "--config", run / "config.toml", "--epochs", 1, "-q", "-o",
            tmp_path / "again")
    assert json.loads((tmp_path / "again" / "config.json").read_text())["net"]["levels"] == \
        [[1, 501, 32]]


def test_rank_leaves_a_levels_index_out_of_the_correlations(runner, trained, tmp_path,
                                                            monkeypatch):
    from fcnn_cli.results.plots import ranking

    run, _ = trained
    _rows(300, 2).to_csv(tmp_path / "new.csv", index=False)
    drawn, plot = [], ranking.correlation_plot
    monkeypatch.setattr(ranking, "correlation_plot",
                        lambda matrices, features, path: drawn.append((matrices, features))
                        or plot(matrices, features, path))
    invoke(runner, "rank", run / "model.pt", tmp_path / "new.csv", "--repeats", 1, "--plots",
           tmp_path / "p")
    [(matrices, features)] = drawn
    assert features == ["x"] and matrices[0][1].shape == (1, 1)
    assert (tmp_path / "p" / "correlations.png").is_file()


@pytest.mark.slow
def test_the_onnx_graph_of_an_embedding_matches_torch(runner, trained, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    run, _ = trained
    invoke(runner, "export", run / "model.pt", tmp_path / "m.onnx")
    predictor = checkpoint.load(run / "model.pt")
    rows = _rows(30, 5)
    rows.loc[0, "station"] = "unseen"
    x = predictor.feature_matrix(Table(rows, name="rows"))
    assert x[0, 1] == 0 and x[1:, 1].tolist() == [np.searchsorted(STATIONS, s) + 1
                                                  for s in rows["station"][1:]]
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    graph = session.run(None, {"features": x})[0][:, 0]
    torch_y = predictor.predict(Table(rows, name="rows"))["y_pred"].to_numpy()
    np.testing.assert_allclose(graph, torch_y, rtol=1e-5, atol=1e-5)


def _tampered(run, tmp_path, change):
    """A copy of the run's model with ``change(meta, state)`` made, signed anew."""
    def edit(payload):
        in_meta(lambda meta: change(meta, payload["state"]))(payload)

    path = tmp_path / "tampered.pt"
    shutil.copy(run / "model.pt", path)
    resigned(path, edit)
    return path


def _fewer_levels(meta, state):
    meta["categories"]["station"] = meta["categories"]["station"][:-1]


def _both_tables_smaller(meta, state):
    _fewer_levels(meta, state)
    meta["net"]["levels"][0][1] -= 1
    state["embed.tables.0"] = state["embed.tables.0"][:-1].clone()


def _index_scaled(meta, state):
    meta["x_scaler"]["scale"][1] = 2.0


@pytest.mark.parametrize("change, why", [
    (_fewer_levels, r"embeds the levels of inputs \(position, rows\) \[\[1, 501\]\], but the "
                    r"categories make \[\[1, 500\]\]"),
    (_index_scaled, "kept is not ascending inputs of shift 0 and scale 1"),
    (lambda meta, state: meta["net"].update(levels=[[1, 501, 32], [0, 3, 2]]),
     "levels must be"),
    (lambda meta, state: state.update({"embed.tables.0": state["embed.tables.0"][:, :8].clone()}),
     "has shape"),
])
def test_a_checkpoint_whose_levels_and_embedding_disagree_is_refused(trained, tmp_path, change,
                                                                    why):
    run, _ = trained
    assert checkpoint.load(run / "model.pt").categories.index_rows() == {"station=<index>": 501}
    with pytest.raises(FcnnError, match=why):
        checkpoint.load(_tampered(run, tmp_path, change))
    # One level and one row fewer agree: such a file loads (its digest made anew).
    assert checkpoint.load(_tampered(run, tmp_path, _both_tables_smaller)).net.config.levels \
        == [[1, 500, 32]]


@pytest.mark.parametrize("options", [{"ensemble": 2}, {"folds": 2}])
def test_an_ensemble_and_k_fold_train_an_embedding(options):
    table = Table(_rows(400, 7), name="stations.csv")
    result = fit(table, TrainConfig(epochs=1, seed=1, **options), targets=["y"],
                 categorical=["station"])
    predictor = result.predictor
    assert predictor.members == 2 and predictor.features == ["x", "station=<index>"]
    rows = len(predictor.categories.levels["station"]) + 1
    assert [tuple(m.embed.tables[0].shape) for m in predictor.net.members] == [(rows, 32)] * 2
    predicted = predictor.predict(Table(_rows(5, 2), name="new"))
    assert len(predicted) == 5 and np.isfinite(predicted["y_pred"]).all()


def test_a_sweep_trains_an_embedding(runner, tmp_path):
    _rows(400, 8).to_csv(tmp_path / "few.csv", index=False)
    invoke(runner, "sweep", tmp_path / "few.csv", "-t", "y", "--categorical", "station",
            "--grid", "depth=1,2", "--epochs", 1, "--no-plots", "-o", tmp_path / "sweep")
    models = sorted((tmp_path / "sweep").glob("*/model.pt"))
    assert [len(checkpoint.load(m).net.body) for m in models] == [1, 2]
    assert all(checkpoint.load(m).features == ["x", "station=<index>"] for m in models)
