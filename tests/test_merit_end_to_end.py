"""The figures of merit end to end: two Gaussian classes of one covariance, whose optimal
classifier is known (the likelihood ratio is linear in the inputs), trained with fcnn train and
evaluated on fresh rows. evaluate's ε_S at ε_B = 0.01 is the optimum's within its error, and
every figure it reports equals one computed here, independently, from predict's
probabilities of the same rows — unweighted, and weighted with expected yields."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fcnn_cli.commands import cli

sklearn = pytest.importorskip("sklearn.metrics")
stats = pytest.importorskip("scipy.stats")

pytestmark = pytest.mark.slow

MEAN = np.array([1.2, -0.8])  # the signal's; the background's is 0
COVARIANCE = np.array([[1.0, 0.4], [0.4, 1.5]])
LUMI = 3.0


def run(*args, code=0):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output + str(result.exception)
    return result


def rows(n, seed):
    """n rows of each class, with a weight column (positive, a different mean for each class:
    weighted figures differ from counted ones)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.multivariate_normal(np.zeros(2), COVARIANCE, n),
                        rng.multivariate_normal(MEAN, COVARIANCE, n)])
    label = np.repeat(["background", "signal"], n)
    weight = np.where(label == "signal", rng.uniform(0.1, 0.3, 2 * n),
                      rng.uniform(0.5, 2.0, 2 * n))
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "label": label, "w": weight})


def optimal_signal_efficiency(background_efficiency):
    """ε_S of the likelihood ratio's cut at ε_B: its log, wᵀx with w = Σ⁻¹μ, is normal with
    variance Δ = μᵀΣ⁻¹μ in both classes and means 0 (background) and Δ (signal); a cut at c
    passes ε_B = Φ(−c/√Δ) and ε_S = Φ((Δ − c)/√Δ) = Φ(Φ⁻¹(ε_B) + √Δ)."""
    delta = MEAN @ np.linalg.solve(COVARIANCE, MEAN)
    return stats.norm.cdf(stats.norm.ppf(background_efficiency) + np.sqrt(delta))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("gaussians")
    rows(3000, 1).to_csv(d / "train.csv", index=False)
    rows(20_000, 2).to_csv(d / "fresh.csv", index=False)
    run("train", d / "train.csv", "-t", "label", "--features", "x1,x2", "--epochs", 6,
        "--batch-size", 128, "--lr", 0.01, "--seed", 1, "-o", d / "run", "-q", "--no-plots")
    return d


def predicted(d):
    out = run("predict", d / "run" / "model.pt", d / "fresh.csv", "-o", "-").stdout
    return pd.read_csv(io.StringIO(out))["p_signal"].to_numpy()


def evaluated(d, *args):
    return json.loads(run("evaluate", d / "run" / "model.pt", d / "fresh.csv", "--json",
                          *args).stdout)["merit"]


def test_the_signal_efficiency_is_the_optimal_one_within_its_error(trained):
    merit = evaluated(trained, "--no-weight")
    at = next(p for p in merit["signal_efficiency_at"] if p["background_efficiency"] == 0.01)
    # The error counts the scatter of the cut found on these rows: ε_S alone (``error``)
    # would understate it by about 3 times here.
    assert abs(at["signal_efficiency"] - optimal_signal_efficiency(0.01)) < at["error_with_cut"]
    assert at["error_with_cut"] < 0.02  # a bound that says something


class Independent:
    """The figures of scores computed here: scikit-learn's ROC curve and numpy."""

    def __init__(self, score, signal, weight):
        self.score, self.signal, self.weight = score, signal, weight
        fpr, tpr, cuts = sklearn.roc_curve(signal, score, sample_weight=weight,
                                           drop_intermediate=False)
        self.fpr, self.tpr, self.cuts = fpr, tpr, cuts

    def at_background(self, target):
        """ε_S and the cut: the loosest cut with ε_B ≤ target, and the line to the next."""
        i = np.flatnonzero(self.fpr <= target)[-1]
        frac = (target - self.fpr[i]) / (self.fpr[i + 1] - self.fpr[i])
        return self.tpr[i] + frac * (self.tpr[i + 1] - self.tpr[i]), self.cuts[i]

    def at_signal(self, target):
        """1/ε_B and the cut: the tightest cut with ε_S ≥ target, the line to the next tighter."""
        j = np.flatnonzero(self.tpr >= target)[0]
        frac = (self.tpr[j] - target) / (self.tpr[j] - self.tpr[j - 1])
        return 1 / (self.fpr[j] - frac * (self.fpr[j] - self.fpr[j - 1])), self.cuts[j]

    def passing(self, cut):
        w = np.ones(len(self.score)) if self.weight is None else self.weight
        passed = self.score >= cut
        s, b = w[passed & self.signal].sum(), w[passed & ~self.signal].sum()
        return s, b, s / w[self.signal].sum(), b / w[~self.signal].sum()

    def separation(self, bins):
        w = np.ones(len(self.score)) if self.weight is None else self.weight
        edges = np.linspace(self.score.min(), self.score.max(), bins + 1)
        s, b = (np.histogram(self.score[m], edges, weights=w[m])[0] / w[m].sum()
                for m in (self.signal, ~self.signal))
        keep = s + b > 0
        return 0.5 * ((s[keep] - b[keep]) ** 2 / (s[keep] + b[keep])).sum()

    def best(self, figure):
        """The cut that maximises S/√B or Z_A over every cut with B > 0, and S, B there."""
        w = np.ones(len(self.score)) if self.weight is None else self.weight
        order = np.argsort(-self.score, kind="stable")
        score, s, b = self.score[order], *(np.cumsum(np.where(m[order], w[order], 0.0))
                                           for m in (self.signal, ~self.signal))
        last = np.r_[score[1:] != score[:-1], True]  # a cut passes every row of its score
        score, s, b = score[last], s[last], b[last]
        ok = b > 0
        score, s, b = score[ok], s[ok], b[ok]
        values = s / np.sqrt(b) if figure == "s_over_sqrt_b" else \
            np.sqrt(2 * ((s + b) * np.log1p(s / b) - s))
        i = np.argmax(values)
        return score[i], s[i], b[i], values[i]


def check(merit, ours):
    close = dict(rel=1e-5, abs=1e-6)
    for p in merit["signal_efficiency_at"]:
        eff, cut = ours.at_background(p["background_efficiency"])
        assert p["signal_efficiency"] == pytest.approx(eff, **close)
        assert p["cut"] == pytest.approx(cut, **close)
    for p in merit["rejection_at"]:
        rejection, cut = ours.at_signal(p["signal_efficiency"])
        assert p["rejection"] == pytest.approx(rejection, **close)
        assert p["cut"] == pytest.approx(cut, **close)
    assert merit["separation"] == pytest.approx(ours.separation(merit["separation_bins"]),
                                                **close)
    wp = merit["working_point"]
    s, b, eff_s, eff_b = ours.passing(np.float32(wp["cut"]))
    assert (wp["signal_efficiency"], wp["background_efficiency"], wp["purity"]) == \
        pytest.approx((eff_s, eff_b, s / (s + b)), **close)
    assert wp["background_efficiency"] <= 0.1  # the loosest cut with ε_B ≤ 0.1
    return close


@pytest.mark.parametrize("weighted", [False, True])
def test_every_figure_is_that_of_predicts_probabilities(trained, weighted):
    fresh = pd.read_csv(trained / "fresh.csv")
    score = predicted(trained).astype(np.float32)
    signal = (fresh["label"] == "signal").to_numpy()
    weight = fresh["w"].to_numpy() * LUMI if weighted else None
    args = ["--weight", "w", "--lumi", LUMI] if weighted else ["--no-weight"]
    merit = evaluated(trained, "--working-point", "bkg=0.1", *args)
    assert merit["signal_class"] == "signal" and merit["rows"] == len(fresh)
    close = check(merit, Independent(score, signal, weight))
    if weighted:
        ours = Independent(score, signal, weight)
        for name, best in merit["significance"]["best"].items():
            cut, s, b, value = ours.best(name)
            assert (best["cut"], best["signal"], best["background"], best[name]) == \
                pytest.approx((cut, s, b, value), **close)
