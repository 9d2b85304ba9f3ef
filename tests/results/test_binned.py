import math

import numpy as np
import pytest

from fcnn_cli.results import binned


def test_bin_index_takes_the_last_edge_in_and_leaves_outside_and_nan_out():
    edges = [0.0, 1.0, 2.0, 4.0]
    got = binned.bin_index([0.0, 0.5, 1.0, 3.9, 4.0, -0.1, 4.1, np.nan], edges)
    assert got.tolist() == [0, 0, 1, 2, 2, -1, -1, -1]


def test_edges_span_the_finite_values_and_a_single_value_gets_a_bin():
    np.testing.assert_allclose(binned.edges_for([3.0, np.nan, 1.0, np.inf], 4),
                               [1.0, 1.5, 2.0, 2.5, 3.0])
    np.testing.assert_allclose(binned.edges_for([2.0], 1), [1.5, 2.5])
    assert binned.edges_for([np.nan]) is None


def _by_hand(residuals, index, b):
    r = residuals[index == b]
    p16, p84 = np.percentile(r, [16, 84], axis=0)
    sd = r.std(axis=0, ddof=1)
    return {"bias": r.mean(axis=0), "resolution": sd, "median": np.median(r, axis=0),
            "robust_resolution": (p84 - p16) / 2, "bias_error": sd / math.sqrt(len(r)),
            "resolution_error": sd / math.sqrt(2 * (len(r) - 1))}


def test_residual_statistics_equal_numpy_by_hand_with_an_empty_bin():
    rng = np.random.default_rng(0)
    residuals = rng.normal(size=(200, 2)) * [1.0, 3.0] + [0.5, -1.0]
    index = rng.choice([0, 1, 3, -1], size=200)  # bin 2 empty, some rows outside
    stats = binned.residual_stats(residuals, index, 4)
    assert stats["count"].tolist() == [int((index == b).sum()) for b in range(4)]
    for b in (0, 1, 3):
        for key, want in _by_hand(residuals, index, b).items():
            np.testing.assert_allclose(stats[key][b], want, rtol=1e-12, err_msg=key)
    assert stats["count"][2] == 0
    assert all(np.isnan(stats[key][2]).all() for key in stats if key != "count")


def test_a_single_row_has_a_bias_but_no_resolution():
    stats = binned.residual_stats([[2.5]], np.array([0]), 1)
    assert stats["count"].tolist() == [1]
    assert stats["bias"][0, 0] == stats["median"][0, 0] == 2.5
    assert stats["robust_resolution"][0, 0] == 0.0
    assert np.isnan(stats["resolution"][0, 0]) and np.isnan(stats["bias_error"][0, 0])


def test_distance_and_class_statistics_by_hand():
    d = np.array([1.0, 2.0, 4.0, 8.0])
    index = np.array([0, 0, 1, -1])
    stats = binned.distance_stats(d, index, 3)
    assert stats["mean"][:2].tolist() == [1.5, 4.0]
    assert stats["median"][:2].tolist() == [1.5, 4.0]
    assert stats["error"][0] == pytest.approx(np.std([1.0, 2.0], ddof=1) / math.sqrt(2))
    assert np.isnan(stats["error"][1]) and np.isnan(stats["mean"][2])
    true, pred = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    index = np.array([0, 0, 0, 1, 1])
    stats = binned.class_stats(true, pred, index, 2, 3)
    assert stats["count"].tolist() == [3, 2]
    assert stats["accuracy"].tolist() == [2 / 3, 1 / 2]
    # the Wilson interval's half width: sqrt(p(1 - p)/n + 1/(4n²)) / (1 + 1/n)
    assert stats["accuracy_error"][0] == pytest.approx(math.sqrt(2 / 27 + 1 / 36) / (4 / 3))
    np.testing.assert_equal(stats["recall"], [[0.5, 1.0, np.nan], [np.nan, 1.0, 0.0]])


def test_binned_report_in_chunks_equals_one_pass_and_numpy():
    rng = np.random.default_rng(1)
    by = rng.uniform(0, 10, size=500)
    truth = rng.normal(size=(500, 2))
    pred = truth + rng.normal(scale=[0.1, 0.2], size=(500, 2))
    whole, chunked = (binned.Binned(["e"], ["a", "b"], point=[0, 1]) for _ in range(2))
    whole.add(by, truth, pred)
    for part in np.array_split(np.arange(500), 7):
        chunked.add(by[part], truth[part], pred[part])
    a, b = whole.report(5), chunked.report(5)
    assert a == b
    assert [x["count"] for x in a["bins"]] == np.histogram(by, 5)[0].tolist()
    edges = np.histogram_bin_edges(by, 5)
    first = (by >= edges[0]) & (by < edges[1])
    r = (pred - truth)[first]
    assert a["bins"][0]["targets"]["b"]["resolution"] == pytest.approx(r[:, 1].std(ddof=1),
                                                                        rel=1e-6)
    assert a["bins"][0]["distance"]["mean"] == pytest.approx(
        np.sqrt((r ** 2).sum(axis=1)).mean())


def test_two_dimensional_bins_are_row_major_with_given_edges():
    report_maker = binned.Binned(["u", "v"], ["t"])
    u, v = np.array([0.5, 0.5, 1.5, 1.5, 5.0]), np.array([0.5, 2.5, 0.5, 2.5, 0.5])
    truth = np.zeros(5)
    report_maker.add(np.stack([u, v], axis=1), truth, np.array([1.0, 2.0, 3.0, 4.0, 9.0]))
    report = report_maker.report(edges=[[0, 1, 2], [0, 2, 3]])
    assert [b["index"] for b in report["bins"]] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert [b["targets"]["t"]["bias"] for b in report["bins"]] == [1.0, 2.0, 3.0, 4.0]
    assert report["outside"] == 1 and report["rows"] == 5
    assert report["bins"][1]["low"] == [0.0, 2.0] and report["bins"][1]["high"] == [1.0, 3.0]


def test_a_column_without_finite_values_gives_no_bins():
    b = binned.Binned(["e"], ["t"])
    b.add(np.array([np.nan, np.nan]), np.zeros(2), np.ones(2))
    report = b.report(3)
    assert report["bins"] == [] and report["outside"] == 2 and "finite" in report["empty"]


def test_edges_over_the_whole_float_range_do_not_overflow():
    edges = binned.edges_for([-1e308, 0.0, 1e308], 4)
    assert np.isfinite(edges).all() and edges[0] == -1e308 and edges[-1] == 1e308
    np.testing.assert_allclose(edges, [-1e308, -5e307, 0.0, 5e307, 1e308])
    b = binned.Binned(["big"], ["t"])
    b.add(np.array([-1e308, 0.0, 1e308]), np.zeros(3), np.ones(3))
    report = b.report(4)
    assert report["outside"] == 0 and sum(x["count"] for x in report["bins"]) == 3


def test_an_accuracy_of_one_or_zero_has_an_error_all_the_same():
    stats = binned.class_stats(np.array([0, 1, 0, 1, 0]), np.array([0, 1, 0, 1, 1]),
                               np.array([0, 0, 0, 0, 1]), 2, 2)
    assert stats["accuracy"].tolist() == [1.0, 0.0]
    # n = 4: sqrt(1/64) / (5/4); n = 1: sqrt(1/4) / 2
    np.testing.assert_allclose(stats["accuracy_error"], [0.1, 0.25])


def test_rows_outside_the_bins_are_told_apart():
    b = binned.Binned(["e"], ["t"])
    b.add(np.array([0.0, 1.0, np.nan, np.inf, 5.0]), np.zeros(5), np.ones(5))
    report = b.report(edges=[[0.0, 1.0, 2.0]])
    assert report["outside"] == 3 and report["not_finite"] == 2


# Weighted bins: numpy's np.average, the errors from Σw and Σw².

def _weighted_by_hand(r, w):
    mu = np.average(r, axis=0, weights=w)
    n_eff = w.sum() ** 2 / (w ** 2).sum()
    sd = np.sqrt(np.average((r - mu) ** 2, axis=0, weights=w) * n_eff / (n_eff - 1))
    return {"bias": mu,
            "bias_error": np.sqrt(((w ** 2)[:, None] * (r - mu) ** 2).sum(axis=0)) / w.sum()
            * np.sqrt(n_eff / (n_eff - 1)),
            "resolution": sd, "resolution_error": sd / np.sqrt(2 * (n_eff - 1))}


def _weights(n, rng, negative):
    w = rng.uniform(0.1, 2.0, n)
    if negative:
        w[::6] *= -0.4
    return w


@pytest.mark.parametrize("negative", [False, True])
def test_weighted_residual_statistics_equal_numpy_by_hand(negative):
    rng = np.random.default_rng(2)
    residuals = rng.normal(size=(300, 2)) * [1.0, 3.0] + [0.5, -1.0]
    index = rng.choice([0, 1, 3, -1], size=300)  # bin 2 empty, some rows outside
    w = _weights(300, rng, negative)
    stats = binned.residual_stats(residuals, index, 4, w)
    assert stats["count"].tolist() == [int((index == b).sum()) for b in range(4)]
    for b in (0, 1, 3):
        r, wb = residuals[index == b], w[index == b]
        assert stats["sum_of_weights"][b] == pytest.approx(wb.sum(), rel=1e-12)
        assert stats["effective_rows"][b] == pytest.approx(wb.sum() ** 2 / (wb ** 2).sum(),
                                                           rel=1e-12)
        for key, want in _weighted_by_hand(r, wb).items():
            np.testing.assert_allclose(stats[key][b], want, rtol=1e-12, err_msg=key)
        if not negative:
            p16, p50, p84 = np.quantile(r, [0.16, 0.5, 0.84], axis=0, weights=np.tile(
                wb[:, None], 2), method="inverted_cdf")
            np.testing.assert_array_equal(stats["median"][b], p50)
            np.testing.assert_allclose(stats["robust_resolution"][b], (p84 - p16) / 2,
                                       rtol=1e-12)
    assert stats["sum_of_weights"][2] == 0 and np.isnan(stats["effective_rows"][2])
    assert all(np.isnan(stats[key][2]).all() for key in ("bias", "resolution", "median"))


def test_weights_of_one_give_the_unweighted_bins_and_a_scale_changes_nothing():
    rng = np.random.default_rng(3)
    residuals = rng.normal(size=(200, 1))
    index = rng.choice([0, 1], size=200)
    plain = binned.residual_stats(residuals, index, 2)
    ones = binned.residual_stats(residuals, index, 2, np.ones(200))
    for key in ("bias", "resolution", "resolution_error"):
        np.testing.assert_allclose(ones[key], plain[key], rtol=1e-12, err_msg=key)
    # the error of the bias from Σw², unbiased for n_eff rows: with equal weights
    # σ (over n − 1) / sqrt(n), as without weights
    n = (index == 0).sum()
    assert ones["bias_error"][0, 0] == pytest.approx(
        residuals[index == 0].std(ddof=1) / np.sqrt(n), rel=1e-12)
    w = rng.uniform(0.5, 2.0, 200)
    a, b = (binned.residual_stats(residuals, index, 2, s * w) for s in (1.0, 1e-3))
    for key in a:
        if key not in ("count", "sum_of_weights"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-12, err_msg=key)


def test_integer_weights_give_the_means_and_quantiles_of_the_rows_repeated():
    rng = np.random.default_rng(4)
    residuals = rng.normal(size=(150, 2)).round(2)
    index = rng.choice([0, 1, 2], size=150)
    counts = rng.integers(0, 4, 150)
    weighted = binned.residual_stats(residuals, index, 3, counts.astype(float))
    repeated = binned.residual_stats(np.repeat(residuals, counts, axis=0),
                                     np.repeat(index, counts), 3, np.ones(counts.sum()))
    for key in ("bias", "median", "robust_resolution", "sum_of_weights"):
        np.testing.assert_allclose(weighted[key], repeated[key], rtol=1e-12, err_msg=key)
    # but an event of weight 3 is one measurement, not three: its errors are larger
    assert (weighted["bias_error"] > repeated["bias_error"]).all()


def test_weighted_distance_and_class_statistics_by_hand():
    d = np.array([1.0, 2.0, 4.0, 8.0, 3.0])
    w = np.array([1.0, 3.0, 2.0, 5.0, -1.0])
    index = np.array([0, 0, 1, -1, 1])
    stats = binned.distance_stats(d, index, 3, w)
    assert stats["mean"][:2].tolist() == [7 / 4, 5.0]  # (1 + 6) / 4, (8 − 3) / 1
    # n_eff = 16 / 10: the error sqrt(Σw²(d − μ)²) / Σw times sqrt(n_eff / (n_eff − 1))
    assert stats["error"][0] == pytest.approx(
        np.sqrt(1 * 0.75 ** 2 + 9 * 0.25 ** 2) / 4 * np.sqrt(1.6 / 0.6))
    # bin 1 sorted: 3 (w −1), 4 (w 2): the sums −1, 1 pass half of 1 at 4
    assert stats["median"][:2].tolist() == [2.0, 4.0] and np.isnan(stats["mean"][2])
    true, pred = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 0, 2])
    w = np.array([1.0, 3.0, 2.0, 0.5, 1.0, 1.0])
    index = np.array([0, 0, 0, 1, 1, -1])
    stats = binned.class_stats(true, pred, index, 2, 3, w)
    assert stats["count"].tolist() == [3, 2] and stats["sum_of_weights"].tolist() == [6.0, 1.5]
    assert stats["accuracy"].tolist() == [3 / 6, 0.5 / 1.5]
    n_eff = 36 / 14
    assert stats["effective_rows"][0] == pytest.approx(n_eff)
    assert stats["accuracy_error"][0] == pytest.approx(binned.wilson_error(0.5, n_eff))
    np.testing.assert_equal(stats["recall"], [[0.25, 1.0, np.nan], [np.nan, 1.0, 0.0]])


def test_a_bin_whose_weights_sum_to_zero_has_no_means():
    stats = binned.residual_stats([[1.0], [3.0], [2.0]], np.array([0, 0, 1]), 2,
                                  np.array([1.0, -1.0, 2.0]))
    assert stats["count"].tolist() == [2, 1] and stats["sum_of_weights"].tolist() == [0.0, 2.0]
    assert np.isnan([stats[k][0, 0] for k in ("bias", "bias_error", "resolution",
                                              "median")]).all()
    assert stats["bias"][1, 0] == 2.0 and np.isnan(stats["bias_error"][1, 0])
    accuracy = binned.class_stats([0, 1], [0, 1], np.array([0, 0]), 1, 2, [1.0, -1.0])
    assert np.isnan(accuracy["accuracy"][0]) and accuracy["count"][0] == 2


def test_weighted_binned_report_in_chunks_equals_one_pass_and_numpy():
    rng = np.random.default_rng(5)
    by = rng.uniform(0, 10, size=500)
    truth = rng.normal(size=(500, 2))
    pred = truth + rng.normal(scale=[0.1, 0.2], size=(500, 2))
    w = _weights(500, rng, True)
    whole, chunked = (binned.Binned(["e"], ["a", "b"], point=[0, 1]) for _ in range(2))
    whole.add(by, truth, pred, weight=w)
    for part in np.array_split(np.arange(500), 7):
        chunked.add(by[part], truth[part], pred[part], weight=w[part])
    a, b = whole.report(5), chunked.report(5)
    for key in ("sum_of_weights", "effective_rows"):  # summed chunk by chunk
        assert a.pop(key) == pytest.approx(b.pop(key), rel=1e-12)
    assert a == b
    assert whole.report(5)["sum_of_weights"] == pytest.approx(w.sum(), rel=1e-12)
    edges = np.histogram_bin_edges(by, 5)
    first = (by >= edges[0]) & (by < edges[1])
    r = (pred - truth)[first].astype(np.float32).astype(np.float64)  # kept as float32
    entry = a["bins"][0]
    assert entry["count"] == first.sum()
    assert entry["sum_of_weights"] == pytest.approx(w[first].sum(), rel=1e-12)
    assert entry["targets"]["b"]["bias"] == pytest.approx(np.average(r[:, 1], weights=w[first]),
                                                          rel=1e-12)
    assert "sum_of_weights" not in entry["targets"]["b"]
    d = np.sqrt(((pred - truth)[first] ** 2).sum(axis=1))
    assert entry["distance"]["mean"] == pytest.approx(np.average(d, weights=w[first]),
                                                      rel=1e-12)
    classes = binned.Binned(["e"], ["t"], classes=["x", "y"])
    classes.add(by, truth[:, 0] > 0, pred[:, 0] > 0, weight=w)
    entry = classes.report(5)["bins"][0]
    right = (truth[first, 0] > 0) == (pred[first, 0] > 0)
    assert entry["accuracy"] == pytest.approx(np.average(right, weights=w[first]), rel=1e-12)
    assert entry["sum_of_weights"] == pytest.approx(w[first].sum(), rel=1e-12)
    with pytest.raises(ValueError, match="with weights and rows without"):
        classes.add(by, truth[:, 0] > 0, pred[:, 0] > 0)


def test_equal_weights_give_the_unweighted_errors_of_a_bin():
    rng = np.random.default_rng(5)
    residuals, distances = rng.normal(size=(40, 2)), rng.uniform(0, 3, 40)
    index = rng.integers(0, 3, 40)
    for weight in (np.ones(40), np.full(40, 2.5)):
        plain, weighed = (binned.residual_stats(residuals, index, 3, w)
                          for w in (None, weight))
        for key in ("bias", "bias_error", "resolution", "resolution_error"):
            assert weighed[key] == pytest.approx(plain[key], rel=1e-12), key
        plain, weighed = (binned.distance_stats(distances, index, 3, w) for w in (None, weight))
        assert weighed["error"] == pytest.approx(plain["error"], rel=1e-12)
