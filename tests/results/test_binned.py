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
