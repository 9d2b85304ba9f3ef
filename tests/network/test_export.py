"""fcnn export: an ONNX graph whose outputs are fcnn predict's."""

import dataclasses
import io
import json
import sys

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.network import checkpoint, export
from fcnn_cli.engine import train
from fcnn_cli.commands import cli
from fcnn_cli.data.tables import Table

TOLERANCE = 1e-5


def onnx_outputs(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"features": np.asarray(x, np.float32)})[0]


def relative(got, want, spread=export.PROBABILITY_FLOOR):
    """The largest difference relative to each value, or (near 0, see export.TOLERANCE) to the
    label's standard deviation or 1e-3 for probabilities, whichever is larger."""
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), spread)))


def test_without_the_onnx_libraries_export_says_how_to_install(runner, model_path, tmp_path,
                                                              monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    result = runner.invoke(cli, ["export", str(model_path), str(tmp_path / "m.onnx")])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {export.INSTALL}\n" and "pip install 'fcnn[onnx]'" in \
        result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_a_model_that_would_differ_is_not_written(trained, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(export, "_expected", lambda predictor, x: np.zeros((len(x), 2)) + 1e3)
    with pytest.raises(export.FcnnError, match="differ from the model's .* not written"):
        export.export(trained.predictor, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_the_file_holds_no_trace_of_the_machine_that_wrote_it(trained, tmp_path):
    onnx = pytest.importorskip("onnx")
    import os

    import fcnn_cli

    path = tmp_path / "m.onnx"
    export.export(trained.predictor, path)
    model = onnx.load(path)
    assert all(not node.metadata_props and not node.doc_string for node in model.graph.node)
    assert not model.graph.metadata_props
    assert {p.key for p in model.metadata_props} == {"task", "features", "targets", "units"}
    data = path.read_bytes()  # the exporter's stack traces named the package's own files
    for where in (os.path.dirname(fcnn_cli.__file__), sys.prefix, os.getcwd(), "export.py"):
        assert where.encode() not in data, where


NETWORKS = {
    "plain": ({}, {}),
    "resnet": ({"arch": "resnet", "depth": 3}, {}),
    "batchnorm": ({"arch": "batchnorm"}, {}),
    "selu": ({"arch": "selu", "dropout": 0.05}, {}),
    "minmax-relu": ({"activation": "relu"}, {"scale": "minmax"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_regression_graph_gives_predict_outputs(quakes, tmp_path, name):
    pytest.importorskip("onnxruntime")
    net, options = NETWORKS[name]
    result = train.fit(quakes, train.TrainConfig(epochs=2, batch_size=64, seed=1, **options),
                       net={"width": 16, **net})
    predictor = result.predictor
    path = tmp_path / "m.onnx"
    export.export(predictor, path)
    want = predictor.predict(quakes)[["x_pred", "y_pred"]].to_numpy()
    x = quakes.frame[predictor.features].to_numpy()
    spread = np.asarray(predictor.task.scaler.scale)
    assert relative(onnx_outputs(path, x), want, spread) <= TOLERANCE
    assert relative(onnx_outputs(path, x[:1]), want[:1], spread) <= TOLERANCE  # any rows
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["features"]) == predictor.features
    assert json.loads(meta["targets"]) == ["x", "y"] and meta["task"] == "regress"
    assert json.loads(meta["units"])["x"] == "km"


def sides(quakes):
    frame = quakes.frame.assign(side=np.where(quakes.frame.x > 10, "east",
                                              np.where(quakes.frame.x < -10, "west", "middle")))
    return Table(frame.drop(columns=["x", "y"]), ["side"], name="sides")


@pytest.mark.slow
@pytest.mark.parametrize("classes, output", [(3, "softmax"), (2, "sigmoid"), (2, "softmax")])
def test_classification_graph_gives_predict_probabilities(quakes, tmp_path, classes, output):
    pytest.importorskip("onnxruntime")
    table = sides(quakes)
    if classes == 2:
        table.frame["side"] = table.frame.side.replace("middle", "west")
    result = train.fit(table, train.TrainConfig(epochs=2, batch_size=64, binary_output=output))
    predictor = result.predictor
    path = tmp_path / "m.onnx"
    export.export(predictor, path)
    want = predictor.predict(table)[[f"p_{c}" for c in predictor.task.classes]].to_numpy()
    got = onnx_outputs(path, table.frame[predictor.features].to_numpy())
    assert got.shape == (len(table.frame), classes)
    assert relative(got, want) <= TOLERANCE
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["classes"]) == predictor.task.classes and meta["task"] == "classify"


def run(runner, *args, code=0):
    result = runner.invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output + str(result.exception)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["earthquakes", "galaxies"])
def test_default_data_sets_graph_equals_fcnn_predict(runner, tmp_path, dataset):
    """The default data sets and network (two epochs: the weights' values do not matter)."""
    pytest.importorskip("onnxruntime")
    data = tmp_path / "data.parquet"
    run(runner, "simulate", dataset, "-o", data)
    run(runner, "train", data, "--epochs", 2, "-q", "-o", tmp_path / "run")
    model = tmp_path / "run" / "model.pt"
    run(runner, "export", model, tmp_path / "m.onnx")
    predicted = pd.read_csv(io.StringIO(run(runner, "predict", model, data).stdout))
    predictor = checkpoint.load(model)
    frame = pd.read_parquet(data)
    got = onnx_outputs(tmp_path / "m.onnx", frame[predictor.features].to_numpy())
    if dataset == "earthquakes":
        columns, spread = [f"{t}_pred" for t in predictor.targets], predictor.task.scaler.scale
    else:
        columns, spread = [f"p_{c}" for c in predictor.task.classes], export.PROBABILITY_FLOOR
    assert relative(got, predicted[columns].to_numpy(), np.asarray(spread)) <= TOLERANCE


def test_a_gaussian_head_is_refused_and_nothing_written(quakes, tmp_path):
    result = train.fit(quakes, train.TrainConfig(epochs=1, loss="gaussian"))
    with pytest.raises(export.FcnnError, match="gaussian"):
        export.export(result.predictor, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_bf16_trained_network_exports_its_float32_graph(quakes, tmp_path):
    pytest.importorskip("onnxruntime")
    result = train.fit(quakes, train.TrainConfig(epochs=1, precision="bf16", device="cpu"))
    assert result.predictor.precision == "bf16"
    path = tmp_path / "m.onnx"
    assert export.export(result.predictor, path) <= export.TOLERANCE
    x = quakes.frame[result.predictor.features].to_numpy(np.float32)[:100]
    fp32 = dataclasses.replace(result.predictor, precision="fp32")
    want = result.predictor.task.decode(fp32.outputs(x))
    assert relative(onnx_outputs(path, x), want, np.asarray(result.predictor.task.scaler.scale)) \
        <= TOLERANCE
