import math

import numpy as np
import pytest
from scipy.stats import ks_2samp, kstwobign

from fcnn_cli.network import overtraining
from fcnn_cli.network.overtraining import kolmogorov_tail, ks_test


def test_the_kolmogorov_tail_is_scipys():
    lam = np.concatenate([np.linspace(0, 4, 401), [0.05, 0.999999, 1.000001, 10.0]])
    np.testing.assert_allclose(kolmogorov_tail(lam), kstwobign.sf(lam), rtol=1e-10,
                               atol=1e-14)


@pytest.mark.parametrize("sizes", [(40, 60), (500, 700), (3000, 2000)])
@pytest.mark.parametrize("ties", [False, True])
def test_unweighted_test_is_the_kolmogorov_distributions(sizes, ties):
    rng = np.random.default_rng(sum(sizes))
    a, b = rng.normal(size=sizes[0]), rng.normal(0.1, 1.0, size=sizes[1])
    if ties:
        a, b = a.round(1), b.round(1)
    got, scipy = ks_test(a, b), ks_2samp(a, b, method="asymp")
    assert got["statistic"] == scipy.statistic  # to the last bit
    n = sizes[0] * sizes[1] / sum(sizes)
    want = kstwobign.sf(got["statistic"] * math.sqrt(n))
    assert got["p_value"] == pytest.approx(want, rel=1e-9, abs=1e-6)
    assert got["rows"] == list(sizes) and "effective_rows" not in got
    # scipy's "asymp" is the one-sample distribution at n = n₁n₂/(n₁+n₂): a little smaller
    assert scipy.pvalue <= got["p_value"] <= 1.25 * scipy.pvalue


def share_below(p_values, level=0.05):
    return float(np.mean(np.asarray(p_values) < level))


@pytest.mark.parametrize("weights", ["none", "positive", "negative"])
def test_p_values_of_one_distribution_are_uniform(weights):
    p_values = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        a, b = rng.normal(size=300), rng.normal(size=450)
        if weights == "positive":
            wa, wb = rng.uniform(0.2, 3.0, 300), rng.exponential(1.0, 450)
        elif weights == "negative":  # 30 % of rows weigh −0.7
            wa = np.where(rng.random(300) < 0.3, -0.7, 1.0)
            wb = np.where(rng.random(450) < 0.3, -0.7, 1.0)
        else:
            wa = wb = None
        p_values.append(ks_test(a, b, wa, wb)["p_value"])
    assert 0.02 <= share_below(p_values) <= 0.09
    assert 0.3 < np.median(p_values) < 0.7


def test_n_eff_of_negative_weights_takes_their_signed_sum():
    # (Σ|w|)² / Σw² would take cancelling weights for many rows: most p-values of one
    # distribution would then fall below 0.05
    rng = np.random.default_rng(7)
    wa = np.where(rng.random(400) < 0.3, -0.7, 1.0)
    got = ks_test(rng.normal(size=400), rng.normal(size=400), wa, np.ones(400))
    assert got["effective_rows"][0] == pytest.approx(wa.sum() ** 2 / (wa ** 2).sum())
    assert got["effective_rows"][1] == pytest.approx(400)


def test_different_distributions_give_tiny_p_values():
    rng = np.random.default_rng(3)
    assert ks_test(rng.normal(size=2000), rng.normal(0.5, 1.0, 2000))["p_value"] < 1e-10
    assert ks_test(rng.normal(size=2000), rng.normal(0.0, 1.5, 2000),
                   rng.uniform(0.5, 1.5, 2000), rng.uniform(0.5, 1.5, 2000))["p_value"] < 1e-6


def test_integer_weights_are_repeated_rows():
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=300).round(2), rng.normal(0.2, 1.0, 400).round(2)
    wa, wb = rng.integers(0, 4, 300).astype(float), rng.integers(1, 3, 400).astype(float)
    weighted = ks_test(a, b, wa, wb)
    repeated = ks_test(np.repeat(a, wa.astype(int)), np.repeat(b, wb.astype(int)))
    assert weighted["statistic"] == repeated["statistic"]
    assert weighted["statistic"] == ks_2samp(np.repeat(a, wa.astype(int)),
                                             np.repeat(b, wb.astype(int)),
                                             method="asymp").statistic
    # the p-value takes n_eff = (Σw)²/Σw², fewer than the Σw repeated rows: a larger p
    n_a, n_b = weighted["effective_rows"]
    assert n_a == pytest.approx(wa.sum() ** 2 / (wa ** 2).sum()) and n_a < wa.sum()
    lam = weighted["statistic"] * math.sqrt(n_a * n_b / (n_a + n_b))
    assert weighted["p_value"] == pytest.approx(kstwobign.sf(lam), rel=1e-9)
    assert weighted["p_value"] > repeated["p_value"]


def test_empty_samples_and_nan():
    got = ks_test([], [1.0, 2.0])
    assert math.isnan(got["p_value"]) and got["reason"]
    assert math.isnan(ks_test([1.0], [2.0], [-1.0], [1.0])["statistic"])
    with pytest.raises(ValueError, match="NaN"):
        ks_test([1.0, np.nan], [2.0])


def test_histograms_on_one_binning():
    rng = np.random.default_rng(5)
    train, test = rng.normal(size=500), rng.normal(0.3, 1.0, 300)
    w_train, w_test = rng.uniform(0.5, 2.0, 500), None
    got = overtraining.histograms(train, test, w_train, w_test, bins=20)
    edges = np.linspace(min(train.min(), test.min()), max(train.max(), test.max()), 21)
    np.testing.assert_allclose(got["edges"], edges)
    np.testing.assert_allclose(got["train"]["content"], np.histogram(train, edges,
                                                                     weights=w_train)[0])
    np.testing.assert_allclose(got["train"]["error"],
                               np.sqrt(np.histogram(train, edges, weights=w_train ** 2)[0]))
    np.testing.assert_allclose(got["test"]["error"],
                               np.sqrt(np.histogram(test, edges)[0]))
    for name in ("train", "test"):
        assert np.sum(got[name]["density"]) * (edges[1] - edges[0]) == pytest.approx(1.0)
        assert got[name]["below"] == got[name]["above"] == 0
    narrow = overtraining.histograms(train, test, span=(-1, 1))
    assert narrow["test"]["below"] == (test < -1).sum()
    assert narrow["test"]["above"] == (test > 1).sum()
    assert sum(narrow["test"]["content"]) == ((test >= -1) & (test <= 1)).sum()


def test_per_class_warns_of_the_class_whose_training_scores_differ():
    rng = np.random.default_rng(8)
    train_class, test_class = rng.integers(0, 2, 2000), rng.integers(0, 2, 1000)
    test_score = rng.beta(2, 5, 1000) + 0.3 * test_class
    train_score = rng.beta(2, 5, 2000) + 0.3 * train_class
    train_score[train_class == 1] += 0.1  # the signal's training rows scored higher
    got = overtraining.per_class(train_score, train_class, test_score, test_class,
                                 ["background", "signal"])
    assert got["overtrained"] == ["signal"]
    assert got["groups"]["background"]["p_value"] > 0.01
    assert "class 'signal'" in got["warning"] and "KS p < 0.01" in got["warning"]
    assert got["test"] == overtraining.NAME and got["alarm_p_value"] == 0.01
    # a score a class: each class on its own column
    two = np.stack([1 - train_score, train_score], axis=1)
    columns = overtraining.per_class(two, train_class, np.stack([1 - test_score, test_score],
                                     axis=1), test_class, ["background", "signal"])
    assert columns["groups"]["signal"]["statistic"] == got["groups"]["signal"]["statistic"]


def test_per_label_of_residuals():
    rng = np.random.default_rng(9)
    train, test = rng.normal(size=(800, 2)), rng.normal(size=(600, 2))
    train[:, 1] *= 0.5  # the second label fits its training rows too closely
    weights = rng.uniform(0.5, 1.5, 800)
    got = overtraining.per_label(train, test, ["x", "y"], weights, None)
    assert got["overtrained"] == ["y"] and "label 'y'" in got["warning"]
    x = got["groups"]["x"]
    assert x["statistic"] == ks_test(train[:, 0], test[:, 0], weights)["statistic"]
    assert len(x["histograms"]["edges"]) == overtraining.HISTOGRAM_BINS + 1
    quiet = overtraining.per_label(train[:, 0], test[:, 0], ["x"])
    assert quiet["overtrained"] == [] and "warning" not in quiet
