"""Predictions chunk by chunk, and on a GPU the same as on the CPU."""

import contextlib

import numpy as np
import pytest
import torch

from fcnn_cli.engine import train
from fcnn_cli.network import checkpoint, predictor as predictor_module


@pytest.fixture(scope="module")
def ensemble_path(tmp_path_factory, quakes):
    result = train.fit(quakes, train.TrainConfig(epochs=1, ensemble=3, threads=1),
                       net={"depth": 2, "width": 12})
    path = tmp_path_factory.mktemp("ensemble") / "model.pt"
    checkpoint.save(result.predictor, path)
    return path


@pytest.fixture(params=["one network", "ensemble"])
def any_model(request, model_path, ensemble_path):
    return model_path if request.param == "one network" else ensemble_path


def test_output_chunks_are_the_outputs_in_slices(monkeypatch, model_path, quakes):
    model = checkpoint.load(model_path)
    x = model.feature_matrix(quakes)
    whole = model.outputs(x)
    monkeypatch.setattr(predictor_module, "CHUNK_ROWS", 128)
    blocks = ((k, x[k:k + 128]) for k in range(0, 600, 128))
    chunks = [out for _, out in model.outputs_of(blocks)]
    assert [len(c) for c in chunks] == [128] * 4 + [600 - 512]
    np.testing.assert_array_equal(np.concatenate(chunks), whole)
    frames = [frame for _, frame in model.predict_chunks([quakes])]
    assert [len(f) for f in frames] == [len(c) for c in chunks]


def test_a_table_of_no_rows_predicts_its_columns(model_path, quakes):
    from fcnn_cli.data.tables import Table

    model = checkpoint.load(model_path)
    empty = Table(quakes.frame.iloc[:0], name="empty")
    assert list(model.predict(empty).columns) == ["x_pred", "y_pred"]


@pytest.mark.parametrize("members", [False, True])
def test_an_ensemble_names_its_columns_before_any_rows_and_predicts_none(ensemble_path, quakes,
                                                                         members):
    """What --keep checks its names against, and what a table of no rows is given."""
    from fcnn_cli.data.tables import Table

    model = checkpoint.load(ensemble_path)
    columns = ["x_pred", "x_std", "y_pred", "y_std"]
    if members:
        columns += [f"{t}_pred_m{k}" for k in range(3) for t in "xy"]
    assert model.output_columns(members) == columns
    assert model.outputs(model.feature_matrix(quakes)[:0]).shape == (3, 0, 2)
    empty = model.predict(Table(quakes.frame.iloc[:0], name="empty"), members=members)
    assert list(empty.columns) == columns and len(empty) == 0


def test_the_gpu_pipeline_keeps_blocks_in_order_and_buffers_apart(monkeypatch, any_model,
                                                                   quakes):
    """The GPU's pipeline run on a CPU, its CUDA calls stood in for: each block's outputs come
    back in order and whole, though two buffers take turns (a block collected late would read
    the next one's outputs if they shared one) and grow with the blocks."""
    class Event:
        def record(self, stream):
            pass

        def synchronize(self):
            pass

    monkeypatch.setattr(torch.cuda, "Stream", lambda device: None)
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: self)
    model = checkpoint.load(any_model)
    x = model.feature_matrix(quakes)
    bounds = [(0, 5), (5, 5), (5, 300), (300, 301), (301, 600), (600, 600)]
    blocks = [(k, x[a:b]) for k, (a, b) in enumerate(bounds)]
    got = list(model._cuda_outputs(iter(blocks)))
    assert [k for k, _ in got] == list(range(len(bounds)))
    for (_, out), (_, rows) in zip(got, blocks):  # rounding aside: the buffers' alignment
        np.testing.assert_allclose(model._shaped(out), model.outputs(rows), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.cuda
@pytest.mark.parametrize("chunk", [65536, 97])
def test_predict_on_cuda_equals_cpu_within_float32(monkeypatch, model_path, quakes, chunk):
    """Many chunks (97 rows each) go through the pipeline's two buffers in turn."""
    monkeypatch.setattr(predictor_module, "CHUNK_ROWS", chunk)
    cpu, cuda = checkpoint.load(model_path, "cpu"), checkpoint.load(model_path, "cuda")
    np.testing.assert_allclose(cuda.predict(quakes).to_numpy(), cpu.predict(quakes).to_numpy(),
                               rtol=1e-5, atol=1e-5)
    assert cuda.evaluate(quakes)["distance"]["mean"] == pytest.approx(
        cpu.evaluate(quakes)["distance"]["mean"], rel=1e-4)


@pytest.mark.cuda
def test_cuda_predict_of_several_tables_in_turn(model_path, quakes):
    """Buffers made for a small table grow for a larger one."""
    from fcnn_cli.data.tables import Table

    cpu, cuda = checkpoint.load(model_path, "cpu"), checkpoint.load(model_path, "cuda")
    tables = [Table(quakes.frame.iloc[:n], name=f"t{n}") for n in (5, 600, 1)]
    got = [f.to_numpy() for _, f in cuda.predict_chunks(tables)]
    expected = [f.to_numpy() for _, f in cpu.predict_chunks(tables)]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_units_other_than_the_models_are_one_warning_per_table(model_path, quakes, caplog):
    """Predict looks at the features, evaluate at the labels too; a table that gives no unit
    or the model's says nothing."""
    import dataclasses

    model = checkpoint.load(model_path)
    feature, label = model.features[0], model.targets[0]
    assert model.units[feature] and model.units[label]
    other = dataclasses.replace(quakes, units={**quakes.units, label: "m", feature: "ms"},
                                name="other.csv")
    silent = [quakes, dataclasses.replace(quakes, units={}, name="none.csv")]
    with caplog.at_level("WARNING"):
        list(model.predict_chunks([*silent, other, other]))
        model.evaluate_chunks([*silent, other, other])
    said = [r.getMessage() for r in caplog.records if "units other than" in r.getMessage()]
    assert said == [
        f"other.csv: units other than the model's: {feature!r} in ms (the model's: "
        f"{model.units[feature]}); the values are used as they are, not converted",
        f"other.csv: units other than the model's: {feature!r} in ms (the model's: "
        f"{model.units[feature]}), {label!r} in m (the model's: {model.units[label]}); the "
        "values are used as they are, not converted"]


def test_add_to_gives_the_report_each_slice_with_its_rows_weights(monkeypatch, model_path,
                                                                  quakes):
    model = checkpoint.load(model_path)
    monkeypatch.setattr(predictor_module, "CHUNK_ROWS", 256)
    x, truth = model.feature_matrix(quakes), model.task.truth(quakes)
    weight = np.arange(600, dtype=np.float64)

    class Report:
        def __init__(self):
            self.calls = []

        def add(self, truth, out, weight=None):
            self.calls.append((truth, out, weight))

    report = model.add_to(Report(), x, truth, weight=weight)
    assert [len(c[0]) for c in report.calls] == [256, 256, 88]
    np.testing.assert_array_equal(np.concatenate([c[2] for c in report.calls]), weight)
    np.testing.assert_array_equal(np.concatenate([c[1] for c in report.calls]), model.outputs(x))
    assert all(c[2] is None for c in model.add_to(Report(), x, truth).calls)
