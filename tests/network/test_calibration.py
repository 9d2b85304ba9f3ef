import math
from statistics import NormalDist

import numpy as np
import pytest

from fcnn_cli.network.calibration import Calibration, gaussian_crps, gaussian_nll


def test_gaussian_scores_against_formulas_by_hand():
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


def test_expected_calibration_error_and_reliability_by_hand():
    from fcnn_cli.network.metrics import classification

    # confidences 0.95 (right), 0.95 (wrong), 0.65 (right), 0.55 (right)
    proba = np.array([[0.95, 0.05], [0.95, 0.05], [0.35, 0.65], [0.55, 0.45]])
    report = classification(np.array([0, 1, 1, 0]), proba, ["a", "b"])
    ece = (2 / 4) * abs(0.5 - 0.95) + (1 / 4) * abs(1 - 0.65) + (1 / 4) * abs(1 - 0.55)
    assert report["ece"] == pytest.approx(ece)
    bins = {(b["low"], b["rows"]): b["accuracy"] for b in report["reliability"]}
    assert bins == {(0.5, 1): 1.0, (0.6, 1): 1.0, (0.9, 2): 0.5}



@pytest.mark.parametrize("negative", [False, True])
def test_weighted_calibration_is_each_figure_weighted_by_hand(negative):
    from fcnn_cli.network.calibration import CALIBRATION_LEVELS

    rng = np.random.default_rng(2)
    y = rng.normal(size=(400, 2))
    mean, std = y + rng.normal(scale=0.8, size=y.shape), rng.uniform(0.5, 1.5, size=y.shape)
    w = rng.uniform(0.1, 2.0, 400)
    if negative:
        w[::7] *= -0.5
    report = Calibration(["a", "b"])
    for part in np.array_split(np.arange(400), 3):
        report.add(y[part], mean[part], std[part], weight=w[part])
    result = report.report()
    z = np.abs(y - mean) / std

    def average(values):
        return np.average(values, axis=0, weights=w)
    nll, crps = gaussian_nll(y, mean, std), gaussian_crps(y, mean, std)
    assert result["nll"] == pytest.approx(average(nll).mean(), rel=1e-12)
    assert result["crps"] == pytest.approx(average(crps).mean(), rel=1e-12)
    assert result["coverage_1sigma"] == pytest.approx(average(z <= 1).mean(), rel=1e-12)
    assert result["coverage_2sigma"] == pytest.approx(average(z <= 2).mean(), rel=1e-12)
    for i, name in enumerate(["a", "b"]):
        label = result["per_label"][name]
        assert label["nll"] == pytest.approx(average(nll)[i], rel=1e-12)
        assert label["coverage_1sigma"] == pytest.approx(average(z <= 1)[i], rel=1e-12)
        assert result["mean_sigma"][name] == pytest.approx(average(std)[i], rel=1e-12)
    half = [NormalDist().inv_cdf(0.5 + p / 2) for p in CALIBRATION_LEVELS]
    observed = [row["observed"] for row in result["calibration"]]
    assert observed == pytest.approx([average(z <= h).mean() for h in half], rel=1e-12)


def test_calibration_with_integer_weights_equals_the_rows_repeated():
    rng = np.random.default_rng(3)
    y, mean, std = rng.normal(size=(200, 1)), rng.normal(size=(200, 1)), \
        rng.uniform(0.5, 2.0, size=(200, 1))
    counts = rng.integers(0, 4, 200)
    weighted, repeated = Calibration(["a"]), Calibration(["a"])
    weighted.add(y, mean, std, weight=counts)
    repeated.add(*(np.repeat(a, counts, axis=0) for a in (y, mean, std)))
    a, b = weighted.report(), repeated.report()
    assert a["coverage_1sigma"] == pytest.approx(b["coverage_1sigma"], rel=1e-12)
    assert a["crps"] == pytest.approx(b["crps"], rel=1e-12)
    assert [r["observed"] for r in a["calibration"]] == \
        pytest.approx([r["observed"] for r in b["calibration"]], rel=1e-12)


def test_the_weighted_ece_is_a_mean_of_the_gaps_with_negative_weights_too():
    from fcnn_cli.network.metrics import classification

    # Confidence 0.95, both wrong: a gap of 0.95 in a bin of weight 3; confidence 0.65, right:
    # 0.35 in a bin of weight -2.9. The signed total, 0.1, would make the ECE 17.
    proba = np.array([[0.95, 0.05], [0.95, 0.05], [0.35, 0.65]])
    report = classification(np.array([1, 1, 1]), proba, ["a", "b"],
                            weight=np.array([1.0, 2.0, -2.9]))
    assert report["ece"] == pytest.approx((3 * 0.95 + 2.9 * 0.35) / 5.9)
