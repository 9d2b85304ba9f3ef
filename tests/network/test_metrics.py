import math

import numpy as np
import pytest

from fcnn_cli.network import metrics


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
        elif isinstance(a[key], list) and a[key] and isinstance(a[key][0], dict):
            assert len(a[key]) == len(b[key]), key
            for x, y in zip(a[key], b[key]):
                _assert_reports_close(x, y)
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
    from fcnn_cli.data.tables import Table

    predictor = trained.predictor
    chunks = [Table(quakes.frame.iloc[i:i + 128].reset_index(drop=True), quakes.targets,
                    quakes.units, quakes.name, i) for i in range(0, len(quakes.frame), 128)]
    _assert_reports_close(predictor.evaluate_chunks(chunks), predictor.evaluate(quakes))


def many_classes(k, n, seed=0, right=0.5):
    """Labels of ``k`` classes and one-hot-ish probabilities that are right about ``right`` of
    the time, wrong at random otherwise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < right, y, rng.integers(0, k, n))
    return y, pred


def proba_for(pred, k):
    proba = np.full((len(pred), k), 0.1 / k)
    proba[np.arange(len(pred)), pred] = 0.9
    return proba


def test_many_classes_give_a_small_summary():
    import json

    k, n = 10_000, 20_000
    y, pred = many_classes(k, n)
    classes = [f"class{i}" for i in range(k)]
    streamed = metrics.Classification(classes)
    for s in range(0, n, 500):
        streamed.add(y[s:s + 500], proba_for(pred[s:s + 500], k))
    report = streamed.report()
    assert len(json.dumps(report, indent=2)) < 40_000  # a dense report: 10⁸ numbers
    assert streamed.scores == [] and streamed.labels == []  # no K scores a row kept
    assert streamed.pairs.counts.size <= n  # pairs that occur, not a K × K matrix
    assert "confusion_matrix" not in report and "classes" not in report
    assert report["n_classes"] == k and report["rows"] == n
    assert report["accuracy"] == pytest.approx(np.mean(pred == y))
    assert np.isnan(report["roc_auc"])
    assert len(report["per_class"]) == metrics.LISTED
    assert len(report["top_confusions"]) == metrics.LISTED
    wrong = len(set(zip(y[pred != y], pred[pred != y])))
    assert report["left_out"] == {"classes": k - metrics.LISTED,
                                  "confusions": wrong - metrics.LISTED}


def test_summary_numbers_by_hand():
    k = metrics.FULL_REPORT_CLASSES + 1
    classes = [f"c{i}" for i in range(k)]
    # class 0: 3 rows, 2 right, 1 taken for class 1; class 1: 1 row, right; class 2: 2 rows
    # both taken for class 1; the other classes never occur
    y = np.array([0, 0, 0, 1, 2, 2])
    pred = np.array([0, 0, 1, 1, 1, 1])
    r = metrics.classification(y, proba_for(pred, k), classes)
    assert list(r["per_class"])[:3] == ["c0", "c2", "c1"]  # by rows, then class order
    assert r["per_class"]["c0"] == pytest.approx({"precision": 1.0, "recall": 2 / 3,
                                                  "f1": 0.8, "support": 3})
    assert r["per_class"]["c1"] == pytest.approx({"precision": 0.25, "recall": 1.0,
                                                  "f1": 0.4, "support": 1})
    # macro over the three classes that occur, weighted by their rows
    assert r["macro_avg"]["recall"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert r["weighted_avg"]["precision"] == pytest.approx((3 * 1.0 + 0.25 + 0) / 6)
    assert r["weighted_avg"]["recall"] == pytest.approx(r["accuracy"]) == pytest.approx(0.5)
    assert r["top_confusions"] == [{"true": "c2", "predicted": "c1", "count": 2},
                                   {"true": "c0", "predicted": "c1", "count": 1}]
    assert r["left_out"] == {"classes": k - metrics.LISTED, "confusions": 0}


@pytest.mark.parametrize("k", [metrics.FULL_REPORT_CLASSES, metrics.DENSE_PAIRS_CLASSES + 1,
                               3000])
def test_many_classes_in_chunks_equal_all_at_once(k):
    y, pred = many_classes(k, 4000, seed=k)
    classes = [f"c{i}" for i in range(k)]
    whole = metrics.classification(y, proba_for(pred, k), classes)
    streamed = metrics.Classification(classes)
    for start in range(0, 4000, 333):
        streamed.add(y[start:start + 333], proba_for(pred[start:start + 333], k))
    _assert_reports_close(streamed.report(), whole)


def test_full_report_up_to_the_cap_has_the_whole_matrix():
    k = metrics.FULL_REPORT_CLASSES
    y, pred = many_classes(k, 3000, seed=3)
    r = metrics.classification(y, proba_for(pred, k), [f"c{i}" for i in range(k)])
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (y, pred), 1)
    assert r["confusion_matrix"] == matrix.tolist() and len(r["per_class"]) == k
    assert r["roc_auc"] == r["roc_auc"]  # still computed at the cap


def test_position_names_the_labels_of_a_point_whatever_their_names():
    from fcnn_cli.core.errors import FcnnError

    truth = np.array([[0.0, 0.0, 5.0], [1.0, 1.0, 5.0]])
    pred = np.array([[3.0, 4.0, 0.0], [1.0, 1.0, 7.0]])
    names = ["east_km", "north_km", "energy"]
    assert "distance" not in metrics.regression(truth, pred, names)
    report = metrics.regression(truth, pred, names, position=["east_km", "north_km"])
    assert report["distance"]["of"] == ["east_km", "north_km"]
    assert report["distance"]["mean"] == 2.5 and report["distance"]["max"] == 5.0
    with pytest.raises(FcnnError, match="'up', not among the labels"):
        metrics.regression(truth, pred, names, position=["east_km", "up"])


def test_distance_sample_bounds_the_rows_kept_and_keeps_mean_and_max_exact():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(50_000, 2))
    out = truth + rng.normal(size=truth.shape)
    exact, sampled, roomy = (metrics.Regression(["x", "y"], sample=s)
                             for s in (None, 5_000, 60_000))
    for start in range(0, len(truth), 3_000):
        for report in (exact, sampled, roomy):
            report.add(truth[start:start + 3_000], out[start:start + 3_000])
    assert len(sampled.sample.values()) == 5_000
    assert sampled.sample.held <= 2 * 5_000
    e, s = exact.report()["distance"], sampled.report()["distance"]
    assert s["mean"] == e["mean"] and s["max"] == e["max"]
    for key in ("median", "p68", "p95"):
        assert s[key] == pytest.approx(e[key], rel=0.03) and s[key] != e[key]
    assert roomy.report() == exact.report()  # fewer rows than the sample: exact
    again = metrics.Regression(["x", "y"], sample=5_000)
    for start in range(0, len(truth), 3_000):
        again.add(truth[start:start + 3_000], out[start:start + 3_000])
    assert again.report() == sampled.report()  # seeded


def test_gaussian_scores_against_formulas_by_hand():
    from fcnn_cli.network.metrics import Calibration, gaussian_crps, gaussian_nll

    y, mean, std = np.array([[1.0], [0.0], [4.0]]), np.array([[0.0], [0.0], [1.0]]), \
        np.array([[1.0], [2.0], [1.0]])
    nll = [0.5 * np.log(2 * np.pi) + 0.5, 0.5 * np.log(2 * np.pi) + np.log(2.0),
           0.5 * np.log(2 * np.pi) + 4.5]
    np.testing.assert_allclose(gaussian_nll(y, mean, std)[:, 0], nll)
    # CRPS = ∫ (F(t) − 1{t ≥ y})² dt, by quadrature
    t = np.linspace(-30, 30, 600_001)
    for i in range(3):
        cdf = 0.5 * (1 + np.vectorize(math.erf)((t - mean[i, 0]) / (std[i, 0] * 2 ** 0.5)))
        by_hand = np.trapezoid((cdf - (t >= y[i, 0])) ** 2, t)
        assert gaussian_crps(y[i], mean[i], std[i])[0] == pytest.approx(by_hand, abs=1e-4)
    report = Calibration(["a"])
    report.add(y, mean, std)
    result = report.report()
    assert result["nll"] == pytest.approx(np.mean(nll))
    # |z| = 1, 0, 3: within ±1σ two of three, within ±2σ the same
    assert result["coverage_1sigma"] == pytest.approx(2 / 3)
    assert result["coverage_2sigma"] == pytest.approx(2 / 3)
    assert result["mean_sigma"]["a"] == pytest.approx(4 / 3)
    levels = {row["level"]: row["observed"] for row in result["calibration"]}
    assert levels[0.1] == pytest.approx(1 / 3) and levels[0.683] == pytest.approx(2 / 3)


def test_regression_report_adds_uncertainties_only_with_a_std():
    from fcnn_cli.network.metrics import Regression

    plain, with_std = Regression(["a"]), Regression(["a"])
    plain.add([[1.0]], [[0.0]])
    with_std.add([[1.0]], [[0.0]], [[1.0]])
    assert "uncertainty" not in plain.report()
    assert with_std.report()["uncertainty"]["coverage_1sigma"] == 1.0


def test_expected_calibration_error_and_reliability_by_hand():
    from fcnn_cli.network.metrics import classification

    # confidences 0.95 (right), 0.95 (wrong), 0.65 (right), 0.55 (right)
    proba = np.array([[0.95, 0.05], [0.95, 0.05], [0.35, 0.65], [0.55, 0.45]])
    report = classification(np.array([0, 1, 1, 0]), proba, ["a", "b"])
    ece = (2 / 4) * abs(0.5 - 0.95) + (1 / 4) * abs(1 - 0.65) + (1 / 4) * abs(1 - 0.55)
    assert report["ece"] == pytest.approx(ece)
    bins = {(b["low"], b["rows"]): b["accuracy"] for b in report["reliability"]}
    assert bins == {(0.5, 1): 1.0, (0.6, 1): 1.0, (0.9, 2): 0.5}
