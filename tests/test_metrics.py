import numpy as np
import pytest

from fcnn_cli import metrics


def test_regression_metrics_by_hand():
    y = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]])
    p = np.array([[0.0, 3.0], [1.0, 2.0], [3.0, 0.0]])
    r = metrics.regression(y, p, ["x", "y"], {"x": "km", "y": "km"})
    assert r["targets"]["x"]["mse"] == pytest.approx(1 / 3)
    assert r["targets"]["x"]["mae"] == pytest.approx(1 / 3)
    assert r["targets"]["x"]["r2"] == pytest.approx(1 - (1 / 3) / (2 / 3))
    assert r["targets"]["y"]["rmse"] == pytest.approx(np.sqrt(25 / 3))
    assert r["overall"]["mse"] == pytest.approx((1 / 3 + 25 / 3) / 2)
    d = r["distance"]  # per row: 3, 0, sqrt(1 + 16)
    assert d["unit"] == "km"
    assert d["mean"] == pytest.approx((3 + 0 + np.sqrt(17)) / 3)
    assert d["median"] == pytest.approx(3.0)
    assert d["max"] == pytest.approx(np.sqrt(17))


@pytest.mark.parametrize("names,expected", [
    (["x", "y"], True), (["pos_x", "pos_y", "pos_z"], True), (["x_km", "y_km"], True),
    (["x", "energy"], False), (["x"], False), (["x", "x"], False), (["a_x", "b_y"], False),
    (["index", "y"], False),
])
def test_position_detection(names, expected):
    assert metrics.is_position(names) is expected


def test_different_units_are_no_position():
    assert not metrics.is_position(["x", "y"], {"x": "km", "y": "s"})
    r = metrics.regression(np.zeros((2, 2)), np.ones((2, 2)), ["a", "b"])
    assert "distance" not in r


def _assert_reports_close(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _assert_reports_close(a[key], b[key])
        elif isinstance(a[key], float):
            assert a[key] == pytest.approx(b[key], rel=1e-6, nan_ok=True), key
        else:
            assert a[key] == b[key], key


def test_regression_in_chunks_equals_all_at_once():
    rng = np.random.default_rng(0)
    y = rng.normal(5.0, 3.0, size=(1000, 2))
    p = y + rng.normal(0.0, 0.1, size=y.shape)
    whole = metrics.regression(y, p, ["x", "y"], {"x": "km", "y": "km"})
    streamed = metrics.Regression(["x", "y"], {"x": "km", "y": "km"})
    for start in range(0, 1000, 137):
        streamed.add(y[start:start + 137], p[start:start + 137])
    _assert_reports_close(streamed.report(), whole)
    # and against numbers computed the plain way
    assert whole["targets"]["x"]["r2"] == pytest.approx(
        1 - np.mean((p[:, 0] - y[:, 0]) ** 2) / np.var(y[:, 0]), rel=1e-12)
    d = np.sqrt(((p - y) ** 2).sum(axis=1))
    assert whole["distance"]["median"] == pytest.approx(np.median(d), rel=1e-6)
    assert whole["distance"]["p95"] == pytest.approx(np.percentile(d, 95), rel=1e-6)


@pytest.mark.parametrize("k", [2, 3])
def test_classification_in_chunks_equals_all_at_once(k):
    rng = np.random.default_rng(1)
    y = rng.integers(0, k, 900)
    logits = rng.normal(size=(900, k)) + 2.0 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    classes = [f"c{i}" for i in range(k)]
    whole = metrics.classification(y, proba, classes)
    streamed = metrics.Classification(classes)
    for start in range(0, 900, 100):
        streamed.add(y[start:start + 100], proba[start:start + 100])
    _assert_reports_close(streamed.report(), whole)
    assert whole["accuracy"] == pytest.approx(np.mean(proba.argmax(1) == y))
    assert whole["cross_entropy"] == pytest.approx(-np.mean(np.log(proba[np.arange(900), y])))


def test_evaluate_in_chunks_equals_evaluate_whole(trained, quakes):
    from fcnn_cli.tables import Table

    predictor = trained.predictor
    chunks = [Table(quakes.frame.iloc[i:i + 128].reset_index(drop=True), quakes.targets,
                    quakes.units, quakes.name, i) for i in range(0, len(quakes.frame), 128)]
    _assert_reports_close(predictor.evaluate_chunks(chunks), predictor.evaluate(quakes))
