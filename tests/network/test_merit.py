import json
import math
from statistics import NormalDist

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from fcnn_cli.network import merit
from scores import table


def reference(score, signal, weight):
    """The ROC curve by scikit-learn, and Σw² of each class passing each of its cuts by a
    loop over them."""
    fpr, tpr, cut = roc_curve(signal, score, sample_weight=weight, drop_intermediate=False)
    w = np.ones(len(score)) if weight is None else weight
    squares = {side: np.array([(w[mask & (score >= c)] ** 2).sum() for c in cut])
               for side, mask in (("signal", signal), ("background", ~signal))}
    return fpr, tpr, cut.astype(np.float64), squares, w


def efficiency_error(eff, squares, w, mask):
    """σ_ε = √(Σ_pass w² (1 − ε)² + Σ_fail w² ε²) / Σw, the passing Σw² given."""
    total, total_squares = w[mask].sum(), (w[mask] ** 2).sum()
    return math.sqrt(squares * (1 - eff) ** 2 + (total_squares - squares) * eff ** 2) / total


def interpolate(x, y, target, first):
    """y where x = target between point k (``first`` of the points with x past the target,
    less one) and k + 1, with the fraction of the way."""
    k = first - 1
    frac = (target - x[k]) / (x[k + 1] - x[k])
    return y[k] + frac * (y[k + 1] - y[k]), k, frac


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_signal_efficiency_at_fixed_background_efficiency(weighted, ties):
    score, signal, weight = table(weighted=weighted, ties=ties)
    fpr, tpr, cut, squares, w = reference(score, signal, weight)
    report = merit.report(score, signal, weight, background_points=(0.01, 0.1, 0.3, 1.0))
    for entry in report["signal_efficiency_at"]:
        target = entry["background_efficiency"]
        first = np.searchsorted(fpr, target, side="right")  # the first point with fpr > target
        if first == len(fpr):  # the target is the end of the curve
            assert entry["signal_efficiency"] == pytest.approx(1.0)
            assert entry["cut"] == cut[-1]
            continue
        eff, k, frac = interpolate(fpr, tpr, target, first)
        passing = squares["signal"][k] + frac * (squares["signal"][k + 1] - squares["signal"][k])
        assert entry["signal_efficiency"] == pytest.approx(eff, rel=1e-12)
        assert entry["error"] == pytest.approx(efficiency_error(eff, passing, w, signal),
                                               rel=1e-9)
        assert entry["cut"] == cut[k]
        if not weighted:
            assert entry["error"] == pytest.approx(math.sqrt(eff * (1 - eff) / signal.sum()))
        # the error with the cut's: ε_S's moved by σ_B along the curve's secant over ±2 σ_B
        bkg = fpr[k] + frac * (fpr[k + 1] - fpr[k])
        passing_b = squares["background"][k] + frac * (
            squares["background"][k + 1] - squares["background"][k])
        sigma_b = efficiency_error(bkg, passing_b, w, ~signal)
        low, high = max(target - 2 * sigma_b, 0), min(target + 2 * sigma_b, 1)
        ends = [interpolate(fpr, tpr, t, np.searchsorted(fpr, t, side="right"))[0]
                if t < 1 else 1.0 for t in (low, high)]
        shift = (ends[1] - ends[0]) / (high - low) * sigma_b
        assert entry["error_with_cut"] == pytest.approx(math.hypot(entry["error"], shift),
                                                        rel=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_rejection_at_fixed_signal_efficiency(weighted, ties):
    score, signal, weight = table(weighted=weighted, ties=ties)
    fpr, tpr, cut, squares, w = reference(score, signal, weight)
    report = merit.report(score, signal, weight)
    assert [e["signal_efficiency"] for e in report["rejection_at"]] == [0.5, 0.7, 0.9]
    for entry in report["rejection_at"]:
        first = np.flatnonzero(tpr >= entry["signal_efficiency"])[0]
        bkg, k, frac = interpolate(tpr, fpr, entry["signal_efficiency"], first)
        passing = squares["background"][k] + frac * (
            squares["background"][k + 1] - squares["background"][k])
        sigma = efficiency_error(bkg, passing, w, ~signal)
        assert entry["background_efficiency"] == pytest.approx(bkg, rel=1e-12)
        assert entry["rejection"] == pytest.approx(1 / bkg, rel=1e-12)
        assert entry["background_efficiency_error"] == pytest.approx(sigma, rel=1e-9)
        assert entry["error"] == pytest.approx(sigma / bkg ** 2, rel=1e-9)
        assert entry["error_with_cut"] > entry["error"]
        assert entry["cut"] == cut[first]
        if not weighted:
            assert sigma == pytest.approx(math.sqrt(bkg * (1 - bkg) / (~signal).sum()))


def by_hand(score, signal, w, cut):
    """Every figure at ``cut`` from the rows that pass it."""
    passed = score >= cut
    s, b = w[signal & passed].sum(), w[~signal & passed].sum()
    eff_s, eff_b = s / w[signal].sum(), b / w[~signal].sum()
    err_b = efficiency_error(eff_b, (w[~signal & passed] ** 2).sum(), w, ~signal)
    return {"cut": cut, "signal_efficiency": eff_s,
            "signal_efficiency_error": efficiency_error(
                eff_s, (w[signal & passed] ** 2).sum(), w, signal),
            "background_efficiency": eff_b, "background_efficiency_error": err_b,
            "rejection": 1 / eff_b, "rejection_error": err_b / eff_b ** 2,
            "purity": s / (s + b), "signal_rows": int((signal & passed).sum()),
            "background_rows": int((~signal & passed).sum()), "signal_passed": s,
            "background_passed": b}


@pytest.mark.parametrize("weighted", [False, True])
def test_working_points_by_hand(weighted):
    score, signal, weight = table(weighted=weighted, ties=True)
    w = np.ones(len(score)) if weight is None else weight
    values = np.unique(score).astype(np.float64)[::-1]  # the cuts, tight to loose
    eff_s = [w[signal & (score >= c)].sum() / w[signal].sum() for c in values]
    eff_b = [w[~signal & (score >= c)].sum() / w[~signal].sum() for c in values]
    tightest = values[next(i for i, e in enumerate(eff_s) if e >= 0.7)]
    loosest = values[max(i for i, e in enumerate(eff_b) if e <= 0.05)]
    for asked, cut in (({"eff": 0.7}, tightest), ({"bkg": 0.05}, loosest),
                       ({"threshold": 0.55}, 0.55)):
        point = merit.working_point(score, signal, weight, **asked)
        want = by_hand(score, signal, w, cut)
        assert point.pop("asked")
        assert point == pytest.approx(want, rel=1e-12)
    point = merit.working_point(score, signal, weight, eff=0.7)
    assert point["signal_efficiency"] >= 0.7
    assert merit.working_point(score, signal, weight, bkg=0.05)["background_efficiency"] <= 0.05


def test_negative_weights_are_taken_as_they_are():
    score, signal, weight = table(n=400, seed=3, weighted=True, ties=True)
    weight[::7] *= -0.5
    point = merit.working_point(score, signal, weight, threshold=0.3)
    point.pop("asked")
    assert point == pytest.approx(by_hand(score, signal, weight, 0.3), rel=1e-12)


def test_a_point_beyond_the_reach_of_the_rows_is_nan_with_a_reason():
    rng = np.random.default_rng(4)
    signal = np.arange(1000) < 500  # 500 background rows: ε_B moves in steps of 0.002
    score = np.where(signal, rng.normal(1, 1, 1000), rng.normal(0, 1, 1000))
    report = merit.report(score, signal)
    first, second = report["signal_efficiency_at"][:2]
    assert math.isnan(first["signal_efficiency"]) and math.isnan(first["cut"])
    assert "500 background rows" in first["reason"] and "0.002" in first["reason"]
    assert second["signal_efficiency"] > 0 and "reason" not in second
    # a score that keeps some signal free of background at 90 % has no finite rejection there
    score = np.where(signal, np.arange(1000) + 2000.0, np.arange(1000))
    entry = merit.report(score, signal)["rejection_at"][2]
    assert math.isnan(entry["rejection"]) and "no background row" in entry["reason"]
    point = merit.working_point(score, signal, bkg=0.001)
    assert point["background_efficiency"] == 0 and math.isnan(point["rejection"])


def test_a_huge_weight_gives_finite_or_nan_figures_never_an_error():
    # one background weight of 1e170 leaves the others an ε_B of ~1e-170, whose square
    # underflows to 0: 1/ε_B and its error are still figures, not a division by zero
    rng = np.random.default_rng(5)
    signal = np.arange(400) < 200
    score = np.where(signal, rng.normal(0.6, 0.15, 400), rng.normal(0.4, 0.15, 400))
    weight = np.ones(400)
    weight[-1], score[-1] = 1e170, -1.0
    report = merit.report(score, signal, weight, eff=0.7, yields=True)
    at = report["rejection_at"][1]
    assert at["background_efficiency"] == pytest.approx(at["rejection"] ** -1)
    assert 1e167 < at["rejection"] < 1e170
    point = report["working_point"]
    assert point["rejection"] == pytest.approx(1e170 / point["background_passed"])
    for figure in (at["error"], at["error_with_cut"], point["rejection_error"]):
        assert math.isnan(figure) or math.isfinite(figure)
    json.dumps(report)
    # ε_B tiny but its error not inf: error / ε_B² divided twice stays finite
    assert merit._over_squared(1e-170, 1e-170) == pytest.approx(1e170)
    assert merit.divide(1, 0.0) == math.inf and math.isnan(merit.divide(0, 0.0))


def test_scores_that_do_not_separate_say_so():
    report = merit.report(np.full(10, 0.5), np.arange(10) < 5)
    reasons = {p["reason"] for p in report["rejection_at"]}
    assert reasons == {"the scores do not separate: every row has the same score, "
                       "a single cut"}


def test_a_class_without_rows_gives_nan_with_a_reason():
    report = merit.report(np.arange(5.0), np.zeros(5, bool))
    assert report["signal_efficiency_at"][0]["reason"] == "no signal rows"
    assert report["rejection_at"][0]["reason"] == "no signal rows"
    assert math.isnan(report["separation"])
    assert merit.working_point(np.arange(5.0), np.zeros(5, bool), eff=0.5)["reason"]


def separation_by_hand(score, signal, w, bins=40):
    edges = np.linspace(score.min(), score.max(), bins + 1)
    s = np.histogram(score[signal], edges, weights=w[signal])[0] / w[signal].sum()
    b = np.histogram(score[~signal], edges, weights=w[~signal])[0] / w[~signal].sum()
    return sum(0.5 * (x - y) ** 2 / (x + y) for x, y in zip(s, b) if x + y > 0)


@pytest.mark.parametrize("weighted", [False, True])
def test_separation(weighted):
    score, signal, weight = table(weighted=weighted)
    w = np.ones(len(score)) if weight is None else weight
    got = merit.report(score, signal, weight)["separation"]
    assert got == pytest.approx(separation_by_hand(score.astype(np.float64), signal, w))
    same = np.concatenate([score, score])
    assert merit.separation(same, np.arange(len(same)) < len(score)) == 0
    apart = np.concatenate([np.zeros(10), np.ones(10)])
    assert merit.separation(apart, apart > 0) == pytest.approx(1.0)
    assert merit.separation(np.ones(4), [True, False, True, False]) == 0


def test_chunks_give_the_report_of_all_rows_and_it_is_json():
    score, signal, weight = table(weighted=True)
    scores = merit.Scores()
    for part in np.array_split(np.arange(len(score)), 7):
        scores.add(score[part], signal[part], weight[part])
    whole = merit.report(score, signal, weight, eff=0.7, yields=True)
    chunked = scores.report(eff=0.7, yields=True)
    assert json.dumps(chunked, sort_keys=True) == json.dumps(whole, sort_keys=True)
    assert set(whole) == {"rows", "signal", "background", "signal_efficiency_at",
                          "rejection_at", "separation", "separation_bins", "working_point",
                          "significance"}
    assert whole["signal"]["effective_rows"] == pytest.approx(
        weight[signal].sum() ** 2 / (weight[signal] ** 2).sum())
    with pytest.raises(ValueError, match="with weights and rows without"):
        scores.add(score, signal)


def test_unit_weights_give_the_unweighted_figures():
    score, signal, _ = table()
    plain = merit.report(score, signal, eff=0.7)
    unit = merit.report(score, signal, np.ones(len(score)), eff=0.7)
    for key in ("signal_efficiency_at", "rejection_at", "separation", "working_point"):
        assert unit[key] == plain[key]


def test_refusals():
    with pytest.raises(ValueError, match="NaN"):
        merit.report([0.1, np.nan], [True, False])
    with pytest.raises(ValueError, match="expected yields"):
        merit.report([0.1, 0.2], [True, False], yields=True)
    with pytest.raises(ValueError, match="one of"):
        merit.working_point([0.1, 0.2], [True, False], eff=0.5, bkg=0.1)
    with pytest.raises(ValueError, match=r"not in \(0, 1\]"):
        merit.report([0.1, 0.2], [True, False], background_points=(0.0,))


# Two Gaussian classes in 4-D, whose likelihood ratio is the best classifier there is.
MEAN_S, MEAN_B = np.array([1.0, 0.5, 0.0, -0.5]), np.zeros(4)
COV_B = np.eye(4)
COV_S = np.array([[1.5, 0.3, 0, 0], [0.3, 0.7, 0, 0], [0, 0, 1.2, 0], [0, 0, 0, 1.0]])


def gaussians(n, rng, cov_s=COV_S):
    signal = rng.random(n) < 0.5
    x = np.where(signal[:, None], rng.multivariate_normal(MEAN_S, cov_s, n),
                 rng.multivariate_normal(MEAN_B, COV_B, n))
    llr = 0.0
    for mean, cov, sign in ((MEAN_S, cov_s, 1), (MEAN_B, COV_B, -1)):
        d = x - mean
        quadratic = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
        llr = llr + sign * -0.5 * (quadratic + np.log(np.linalg.det(cov)))
    return llr, signal


def test_the_likelihood_ratio_reaches_the_optimum_within_its_error():
    # different covariances: the optimum by Monte Carlo on 10⁶ rows
    best = merit.report(*gaussians(1_000_000, np.random.default_rng(99)))
    best = best["signal_efficiency_at"][1]
    got = merit.report(*gaussians(20_000, np.random.default_rng(1)))["signal_efficiency_at"][1]
    assert got["background_efficiency"] == best["background_efficiency"] == 0.01
    assert got["error_with_cut"] < 0.03  # an error that says something
    assert abs(got["signal_efficiency"] - best["signal_efficiency"]) < 3 * math.hypot(
        got["error_with_cut"], best["error_with_cut"])


def test_equal_covariances_reach_the_normal_cdfs_optimum():
    # the likelihood ratio is then linear: the classes N(0, 1) and N(d, 1) along it, d the
    # Mahalanobis distance of the means, and ε_S = Φ(d − Φ⁻¹(1 − ε_B))
    d = math.sqrt(MEAN_S @ MEAN_S)
    normal = NormalDist()
    pulls = []
    for seed in range(40):
        score, signal = gaussians(5000, np.random.default_rng(seed), cov_s=COV_B)
        entry = merit.report(score, signal)["signal_efficiency_at"][1]
        exact = normal.cdf(d - normal.inv_cdf(1 - entry["background_efficiency"]))
        pulls.append((entry["signal_efficiency"] - exact) / entry["error_with_cut"])
    pulls = np.array(pulls)
    assert abs(pulls[0]) < 3
    assert np.abs(pulls).max() < 4 and 0.7 < pulls.std() < 1.4  # the error is honest
