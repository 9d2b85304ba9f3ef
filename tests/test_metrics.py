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
