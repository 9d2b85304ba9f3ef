import numpy as np
import pytest

from fcnn_cli.network.weighted import Weights, effective_rows, weighted_quantile

Q = [0.16, 0.5, 0.68, 0.84, 0.95]


def test_weighted_quantile_equals_numpys_inverted_cdf_for_positive_weights():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 500):
        values = rng.normal(size=n)
        weights = rng.uniform(0.0, 3.0, size=n)
        weights[::5] = 0.0 if n > 1 else weights[::5]
        want = np.quantile(values, Q, weights=weights, method="inverted_cdf")
        np.testing.assert_array_equal(weighted_quantile(values, weights, Q), want)
    ties = np.array([1.0, 2.0, 2.0, 2.0, 3.0])
    w = np.array([0.5, 0.2, 0.1, 0.3, 1.0])
    np.testing.assert_array_equal(weighted_quantile(ties, w, Q),
                                  np.quantile(ties, Q, weights=w, method="inverted_cdf"))


def test_integer_weights_are_the_values_repeated():
    rng = np.random.default_rng(1)
    values = rng.normal(size=300).round(1)  # with ties
    counts = rng.integers(0, 4, size=300)
    repeated = np.repeat(values, counts)
    np.testing.assert_array_equal(weighted_quantile(values, counts, Q),
                                  np.quantile(repeated, Q, method="inverted_cdf"))


def test_negative_weights_by_hand_and_whatever_the_order_of_ties():
    # sorted: 1 (w 2), 2 (w -1), 3 (w 1), 3 (w 1): Σw = 3, sums at the ends of the runs of
    # equal values 2, 1, 3 → fractions 2/3, 1/3, 1
    values, w = np.array([3.0, 1.0, 3.0, 2.0]), np.array([1.0, 2.0, 1.0, -1.0])
    np.testing.assert_array_equal(weighted_quantile(values, w, [0.2, 0.5, 0.67, 0.7, 1.0]),
                                  [1.0, 1.0, 3.0, 3.0, 3.0])
    # a run of equal values whose weights, in one order, would pass q inside it
    values, a, b = np.array([0.0, 1.0, 1.0, 2.0]), [0.5, 1.0, -1.0, 0.5], [0.5, -1.0, 1.0, 0.5]
    assert weighted_quantile(values, a, [0.75])[0] == weighted_quantile(values, b, [0.75])[0]
    assert weighted_quantile(values, a, [0.75])[0] == 2.0


def test_no_positive_sum_of_weights_gives_nan():
    assert np.isnan(weighted_quantile([1.0, 2.0], [1.0, -1.0], [0.5])).all()
    assert np.isnan(weighted_quantile([1.0, 2.0], [-1.0, -1.0], [0.5])).all()
    assert np.isnan(weighted_quantile([], [], [0.5, 0.9])).all()


def test_weights_keep_their_sums_and_refuse_a_mix():
    weights = Weights()
    assert weights.total(5) == 5 and weights.report() == {}
    got = weights.add([1.0, 2.0, -0.5], 3)
    assert got.dtype == np.float64
    weights.add(np.array([0.5]), 1)
    assert weights.total(4) == 3.0
    assert weights.report() == {"sum_of_weights": 3.0,
                                "effective_rows": pytest.approx(9 / 5.5, rel=1e-15)}
    with pytest.raises(ValueError, match="with weights and rows without"):
        weights.add(None, 2)
    with pytest.raises(ValueError, match="2 weights for 3 rows"):
        weights.add([1.0, 1.0], 3)
    plain = Weights()
    plain.add(None, 3)
    with pytest.raises(ValueError, match="with weights and rows without"):
        plain.add([1.0], 1)


def test_a_sum_of_weights_that_is_not_positive_is_said():
    zero, negative = Weights(), Weights()
    zero.add([1.0, -1.0], 2)
    negative.add([1.0, -3.0], 2)
    assert np.isnan(zero.total(2)) and negative.total(2) == -2.0
    assert "sum of weights is 0, not positive" in zero.report()["weights_warning"]
    assert "sum of weights is -2, not positive" in negative.report()["weights_warning"]
    assert effective_rows(-2.0, 10.0) == 0.4 and np.isnan(effective_rows(0.0, 0.0))
