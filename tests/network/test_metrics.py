
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
        elif key == "confusion_matrix_weighted":  # sums of weights: close, not equal
            np.testing.assert_allclose(a[key], b[key], rtol=1e-12, err_msg=key)
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


def test_regression_report_adds_uncertainties_only_with_a_std():
    from fcnn_cli.network.metrics import Regression

    plain, with_std = Regression(["a"]), Regression(["a"])
    plain.add([[1.0]], [[0.0]])
    with_std.add([[1.0]], [[0.0]], [[1.0]])
    assert "uncertainty" not in plain.report()
    assert with_std.report()["uncertainty"]["coverage_1sigma"] == 1.0


# Weighted reports: scikit-learn's figures with sample_weight.

def _weights(n, rng, negative):
    """Random positive weights, or with ``negative`` about one in six negative (the sum
    stays positive)."""
    w = rng.uniform(0.1, 2.0, n)
    if negative:
        w[rng.random(n) < 1 / 6] *= -0.5
    return w


def _regression_data(seed=0, n=800):
    rng = np.random.default_rng(seed)
    y = rng.normal(5.0, 3.0, size=(n, 2))
    return rng, y, y + rng.normal(0.0, 0.5, size=y.shape) + [0.2, -0.1]


@pytest.mark.parametrize("negative", [False, True])
def test_weighted_regression_equals_scikit_learn(negative):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng, y, p = _regression_data()
    w = _weights(len(y), rng, negative)
    assert (w < 0).any() == negative
    r = metrics.regression(y, p, ["x", "y"], {"x": "km", "y": "km"}, weight=w)
    assert r["rows"] == 800 and r["sum_of_weights"] == pytest.approx(w.sum(), rel=1e-12)
    assert r["effective_rows"] == pytest.approx(w.sum() ** 2 / (w ** 2).sum(), rel=1e-12)
    for i, name in enumerate(["x", "y"]):
        t = r["targets"][name]
        assert t["mse"] == pytest.approx(mean_squared_error(y[:, i], p[:, i], sample_weight=w),
                                         rel=1e-12)
        assert t["rmse"] == pytest.approx(t["mse"] ** 0.5, rel=1e-15)
        assert t["mae"] == pytest.approx(
            mean_absolute_error(y[:, i], p[:, i], sample_weight=w), rel=1e-12)
        assert t["r2"] == pytest.approx(r2_score(y[:, i], p[:, i], sample_weight=w), rel=1e-12)
    o = r["overall"]
    assert o["mse"] == pytest.approx(mean_squared_error(y, p, sample_weight=w), rel=1e-12)
    assert o["mae"] == pytest.approx(mean_absolute_error(y, p, sample_weight=w), rel=1e-12)
    assert o["r2"] == pytest.approx(r2_score(y, p, sample_weight=w), rel=1e-12)
    d = np.sqrt(((p - y) ** 2).sum(axis=1))
    assert r["distance"]["mean"] == pytest.approx(np.average(d, weights=w), rel=1e-12)
    assert r["distance"]["max"] == d.max()
    if not negative:  # numpy's weighted quantiles take no negative weights
        for key, q in (("median", 0.5), ("p68", 0.68), ("p95", 0.95)):
            assert r["distance"][key] == np.quantile(d, q, weights=w, method="inverted_cdf")


def _strip_weights(report):
    """A report without what only weighted ones hold, nor their row counts."""
    if isinstance(report, dict):
        return {k: _strip_weights(v) for k, v in report.items()
                if k not in ("rows", "support", "count", "sum_of_weights", "effective_rows",
                             "confusion_matrix", "confusion_matrix_weighted")}
    if isinstance(report, list) and report and isinstance(report[0], dict):
        return [_strip_weights(v) for v in report]
    return report


def test_integer_weights_equal_the_rows_repeated():
    rng, y, p = _regression_data(1, 300)
    counts = rng.integers(0, 4, 300)
    std = rng.uniform(0.2, 1.0, size=y.shape)
    weighted = metrics.Regression(["x", "y"])
    weighted.add(y, p, std, weight=counts.astype(float))
    repeated = metrics.Regression(["x", "y"])
    repeated.add(*(np.repeat(a, counts, axis=0) for a in (y, p, std)),
                 weight=np.ones(counts.sum()))
    _assert_reports_close(_strip_weights(weighted.report()), _strip_weights(repeated.report()))
    assert weighted.report()["sum_of_weights"] == repeated.report()["rows"] == counts.sum()

    k, classes = 3, ["a", "b", "c"]
    labels = rng.integers(0, k, 300)
    proba = rng.dirichlet(np.ones(k), 300)
    weighted = metrics.classification(labels, proba, classes, weight=counts.astype(float))
    repeated = metrics.classification(np.repeat(labels, counts), np.repeat(proba, counts, 0),
                                      classes, weight=np.ones(counts.sum()))
    _assert_reports_close(_strip_weights(weighted), _strip_weights(repeated))
    assert weighted["confusion_matrix_weighted"] == repeated["confusion_matrix"]


def test_weights_of_one_change_no_mean_of_a_report():
    rng, y, p = _regression_data(2, 200)
    plain = metrics.regression(y, p, ["x", "y"])
    ones = metrics.regression(y, p, ["x", "y"], weight=np.ones(200))
    assert ones["sum_of_weights"] == ones["effective_rows"] == 200.0
    for key in ("mse", "mae", "r2"):
        assert ones["overall"][key] == pytest.approx(plain["overall"][key], rel=1e-12)
    labels = rng.integers(0, 2, 200)
    proba = rng.dirichlet(np.ones(2), 200)
    plain = metrics.classification(labels, proba, ["a", "b"])
    ones = metrics.classification(labels, proba, ["a", "b"], weight=np.ones(200))
    _assert_reports_close(_strip_weights(ones), _strip_weights(plain))
    assert "sum_of_weights" not in plain and "confusion_matrix_weighted" not in plain


def _classes(k, n=900, seed=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    return rng, y, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _trapezoid_auc(positive, score, w):
    """The area under scikit-learn's weighted ROC curve, every point kept: what its
    roc_auc_score gives where the curve runs forward (it refuses one that runs back, as
    negative weights may make it)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(positive, score, sample_weight=w, drop_intermediate=False)
    return np.trapezoid(tpr, fpr)


@pytest.mark.parametrize("k,negative", [(2, False), (2, True), (4, False), (4, True)])
def test_weighted_classification_equals_scikit_learn(k, negative):
    from sklearn import metrics as sk

    rng, y, proba = _classes(k)
    w = _weights(len(y), rng, negative)
    classes = [f"c{i}" for i in range(k)]
    r = metrics.classification(y, proba, classes, weight=w)
    pred = proba.argmax(axis=1)
    assert r["rows"] == 900 and r["sum_of_weights"] == pytest.approx(w.sum(), rel=1e-12)
    assert r["accuracy"] == pytest.approx(sk.accuracy_score(y, pred, sample_weight=w),
                                          rel=1e-12)
    assert r["cross_entropy"] == pytest.approx(
        sk.log_loss(y, proba, sample_weight=w, labels=list(range(k))), rel=1e-12)
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        y, pred, labels=list(range(k)), sample_weight=w, zero_division=0)
    for i, name in enumerate(classes):
        entry = r["per_class"][name]
        assert entry["precision"] == pytest.approx(precision[i], rel=1e-12)
        assert entry["recall"] == pytest.approx(recall[i], rel=1e-12)
        assert entry["f1"] == pytest.approx(f1[i], rel=1e-12)
        assert entry["sum_of_weights"] == pytest.approx(support[i], rel=1e-12)
        assert entry["support"] == int((y == i).sum())
    np.testing.assert_allclose(r["confusion_matrix_weighted"],
                               sk.confusion_matrix(y, pred, sample_weight=w), rtol=1e-12)
    assert r["confusion_matrix"] == sk.confusion_matrix(y, pred).tolist()
    scores = proba.astype(np.float32)  # the report ranks float32 scores
    if k == 2:
        want = _trapezoid_auc(y == 1, scores[:, 1], w)
        if not negative:
            assert want == pytest.approx(sk.roc_auc_score(y, scores[:, 1], sample_weight=w),
                                         rel=1e-12)
    else:
        want = np.mean([_trapezoid_auc(y == i, scores[:, i], w) for i in range(k)])
        if not negative:
            assert want == pytest.approx(sk.roc_auc_score(
                y, scores.astype(np.float64), sample_weight=w, multi_class="ovr",
                average="macro"), rel=1e-12)
    assert r["roc_auc"] == pytest.approx(want, rel=1e-12)


def test_weighted_roc_auc_counts_ties_half_and_weighs_each_pair():
    # positives 0.8 (w 2) and 0.5 (w 1); negatives 0.5 (w 3) and 0.2 (w 1): pairs that the
    # positive wins: 2·3 + 2·1 + 1·1, half the tie 1·3
    auc = metrics.roc_auc([True, True, False, False], [0.8, 0.5, 0.5, 0.2], [2, 1, 3, 1])
    assert auc == pytest.approx((6 + 2 + 1 + 1.5) / (3 * 4), rel=1e-15)
    assert np.isnan(metrics.roc_auc([True, False], [0.9, 0.1], [1.0, -1.0]))
    assert np.isnan(metrics.roc_auc([True, True], [0.9, 0.1], [1.0, 1.0]))


def test_weighted_summary_of_many_classes_equals_scikit_learn():
    from sklearn.metrics import precision_recall_fscore_support

    k = metrics.FULL_REPORT_CLASSES + 10
    y, pred = many_classes(k, 3000, seed=4)
    w = _weights(3000, np.random.default_rng(4), True)
    r = metrics.classification(y, proba_for(pred, k), [f"c{i}" for i in range(k)], weight=w)
    for average, key in (("weighted", "weighted_avg"), ("macro", "macro_avg")):
        labels = list(range(k)) if average == "weighted" else None
        want = precision_recall_fscore_support(y, pred, labels=labels, average=average,
                                               sample_weight=w, zero_division=0)
        assert [r[key][m] for m in ("precision", "recall", "f1")] == \
            pytest.approx(want[:3], rel=1e-12)
    first = r["top_confusions"][0]
    t, p = (int(first[c][1:]) for c in ("true", "predicted"))
    assert first["sum_of_weights"] == pytest.approx(w[(y == t) & (pred == p)].sum(), rel=1e-12)
    assert first["count"] == int(((y == t) & (pred == p)).sum())


@pytest.mark.parametrize("k", [3, metrics.DENSE_PAIRS_CLASSES + 1])
def test_weighted_classification_in_chunks_equals_all_at_once(k):
    rng, y, proba = _classes(k, 2000, seed=k)
    w = _weights(2000, rng, True)
    classes = [f"c{i}" for i in range(k)]
    whole = metrics.classification(y, proba, classes, weight=w)
    streamed = metrics.Classification(classes)
    for part in np.array_split(np.arange(2000), 7):
        streamed.add(y[part], proba[part], weight=w[part])
    _assert_reports_close(streamed.report(), whole)


def test_weighted_reports_in_chunks_and_through_the_task_equal_all_at_once(monkeypatch):
    from sklearn.metrics import r2_score

    from fcnn_cli.network import tasks

    rng, y, p = _regression_data(5, 1000)
    y[500:] += 40.0  # the later chunks far from the first chunk's mean
    w = _weights(1000, rng, True)
    whole = metrics.regression(y, p, ["x", "y"], weight=w)
    streamed = metrics.Regression(["x", "y"])
    for start in range(0, 1000, 137):
        streamed.add(y[start:start + 137], p[start:start + 137], weight=w[start:start + 137])
    _assert_reports_close(streamed.report(), whole)
    assert whole["targets"]["x"]["r2"] == pytest.approx(
        r2_score(y[:, 0], p[:, 0], sample_weight=w), rel=1e-12)
    # the task's stream slices the weights with the rows
    monkeypatch.setattr(tasks, "OUTPUTS_AT_ONCE", 2 * 97)
    task = tasks.Classification("label", ["a", "b", "c"])
    _, labels, proba = _classes(3, 1000)
    stream = task.metrics()
    stream.add(labels, np.log(proba).astype(np.float32), weight=w)
    _assert_reports_close(stream.report(), metrics.classification(
        labels, task.proba(np.log(proba).astype(np.float32)), task.classes, weight=w))


def test_distance_sample_keeps_the_weights_of_the_distances_it_keeps():
    rng, y, p = _regression_data(6, 20_000)
    w = _weights(20_000, rng, False)
    exact, sampled, roomy = (metrics.Regression(["x", "y"], sample=s)
                             for s in (None, 3_000, 30_000))
    for start in range(0, 20_000, 1_500):
        for report in (exact, sampled, roomy):
            report.add(y[start:start + 1_500], p[start:start + 1_500],
                       weight=w[start:start + 1_500])
    e, s = exact.report()["distance"], sampled.report()["distance"]
    assert roomy.report() == exact.report()
    assert s["mean"] == e["mean"]
    for key in ("median", "p68", "p95"):
        assert s[key] == pytest.approx(e[key], rel=0.05) and s[key] != e[key]
    weight_of = dict(zip(np.sqrt(((p - y) ** 2).sum(axis=1)), w))
    assert len(weight_of) == 20_000  # each distance tells its row
    np.testing.assert_array_equal(sampled.sample.weights(),
                                  [weight_of[d] for d in sampled.sample.values()])


def test_a_sum_of_weights_of_zero_gives_nan_and_says_so():
    y, p = np.array([[1.0], [2.0]]), np.array([[1.5], [1.0]])
    r = metrics.regression(y, p, ["a"], weight=[1.0, -1.0])
    assert r["rows"] == 2 and r["sum_of_weights"] == 0.0
    assert "not positive" in r["weights_warning"]
    assert all(np.isnan(r["targets"]["a"][key]) for key in ("mse", "mae", "r2"))
    c = metrics.classification([0, 1], [[0.7, 0.3], [0.4, 0.6]], ["a", "b"], weight=[2, -2])
    assert np.isnan(c["accuracy"]) and np.isnan(c["cross_entropy"]) and np.isnan(c["ece"])
    assert np.isnan(c["roc_auc"]) and "weights_warning" in c
    # a negative sum: the formulas all the same, as scikit-learn's, and the warning
    from sklearn.metrics import mean_squared_error
    r = metrics.regression(y, p, ["a"], weight=[1.0, -3.0])
    assert r["targets"]["a"]["mse"] == pytest.approx(
        mean_squared_error(y, p, sample_weight=[1.0, -3.0]), rel=1e-12)
    assert "-2, not positive" in r["weights_warning"]


def test_rows_with_and_without_weights_in_one_report_are_refused():
    report = metrics.Regression(["a"])
    report.add([[1.0]], [[0.0]], weight=[1.0])
    with pytest.raises(ValueError, match="with weights and rows without"):
        report.add([[1.0]], [[0.0]])
    report = metrics.Classification(["a", "b"])
    report.add([0], [[0.6, 0.4]])
    with pytest.raises(ValueError, match="with weights and rows without"):
        report.add([0], [[0.6, 0.4]], weight=[1.0])


def test_weighted_reliability_and_entropy_by_hand():
    from fcnn_cli.network.calibration import entropy

    rng, y, proba = _classes(2, 500, seed=7)
    w = _weights(500, rng, True)
    r = metrics.classification(y, proba, ["a", "b"], weight=w)
    confidence, right = proba.max(axis=1), (proba.argmax(axis=1) == y).astype(float)
    bins = np.minimum((confidence * 10).astype(int), 9)
    ece, sizes = 0.0, 0.0
    for row in r["reliability"]:
        inside = bins == round(row["low"] * 10)
        assert row["rows"] == inside.sum()
        assert row["sum_of_weights"] == pytest.approx(w[inside].sum(), rel=1e-12)
        assert row["accuracy"] == pytest.approx(np.average(right[inside], weights=w[inside]),
                                                rel=1e-12)
        assert row["confidence"] == pytest.approx(
            np.average(confidence[inside], weights=w[inside]), rel=1e-12)
        ece += abs(row["accuracy"] - row["confidence"]) * abs(w[inside].sum())
        sizes += abs(w[inside].sum())
    assert r["ece"] == pytest.approx(ece / sizes, rel=1e-12)
    assert r["mean_entropy"] == pytest.approx(np.average(entropy(proba), weights=w), rel=1e-12)


def test_a_mean_squared_error_made_negative_by_negative_weights_has_no_root():
    """Negative weights on the large errors can make the weighted MSE negative: its RMSE is
    NaN (not a complex number, which JSON cannot hold), the MSE itself as summed."""
    import json

    truth = np.array([[0.0], [0.0], [0.0]])
    pred = np.array([[0.1], [0.1], [3.0]])
    report = metrics.regression(truth, pred, ["x"], weight=np.array([1.0, 1.0, -0.5]))
    expected = (0.01 + 0.01 - 0.5 * 9.0) / 1.5
    assert report["targets"]["x"]["mse"] == pytest.approx(expected)
    assert np.isnan(report["targets"]["x"]["rmse"]) and np.isnan(report["overall"]["rmse"])
    json.dumps(report)


@pytest.mark.parametrize("scale", [1e160, 1e-300])
def test_weighted_figures_of_extreme_weights_are_those_of_weights_near_1(scale):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    p1 = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, 400), 0.01, 0.99)
    proba = np.stack([1 - p1, p1], axis=1)
    w = rng.exponential(1, 400) * np.where(rng.random(400) < 0.1, -1, 1)
    near_1 = metrics.classification(y, proba, ["a", "b"], weight=w)
    with np.errstate(all="raise"):  # no overflow nor underflow on the way
        extreme = metrics.classification(y, proba, ["a", "b"], weight=w * scale)
    assert extreme["roc_auc"] == pytest.approx(near_1["roc_auc"], rel=1e-12)
    assert extreme["effective_rows"] == pytest.approx(near_1["effective_rows"], rel=1e-12)
