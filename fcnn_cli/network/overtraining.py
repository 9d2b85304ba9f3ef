"""The overtraining check: do the training rows and the held-out rows give a network's output
the same distribution? For a classifier, the score of each true class; for a regression, each
label's residual. Each pair of samples is compared by the two-sample Kolmogorov–Smirnov test and
histogrammed on one binning for the plot (TMVA's figure: held-out filled, training as points).

The test is unbinned: the statistic D = max_x |F_train(x) − F_test(x)| over the empirical
CDFs, taken at the end of each run of equal values as scikit-learn's and scipy's are; with
weights each CDF is the sum of the weights of the values ≤ x over the sample's sum of weights,
negative weights as they are. The p-value is the asymptotic one, the Kolmogorov distribution's
tail

    Q(λ) = 2 Σ_{k≥1} (−1)^{k−1} exp(−2 k² λ²),   λ = D √(n₁ n₂ / (n₁ + n₂)),

summed in its theta-function form √(2π)/λ Σ exp(−(2k − 1)² π² / (8 λ²)) below λ = 1, where
that converges faster (ROOT's ``TMath::KolmogorovProb``; scipy's ``kstwobign.sf``). It is
exact only as the samples grow: for samples of hundreds of rows it is a little conservative
(scipy's ``ks_2samp(method="asymp")`` evaluates the one-sample distribution at n = n₁n₂/(n₁+n₂)
instead, and differs by a few per cent there).

With weights, n₁ and n₂ are the effective numbers of rows n_eff = (Σw)² / Σw² (as ROOT's
``TH1::KolmogorovTest`` takes them for weighted histograms): the variance of a weighted
empirical CDF is F(1 − F) Σw² / (Σw)², that of an unweighted one of n_eff rows. Negative
weights enter that formula as they are, Σw signed: a sample whose weights cancel has a CDF
that scatters as one of few rows, and the test must not take it for one of many, which
(Σ|w|)² / Σw² would. A sample whose Σw is not positive has no CDF: NaN."""

import numpy as np

from fcnn_cli.network.weighted import effective_rows

# The p-value below which the check warns: TMVA's users read overtraining into a KS
# probability of a per cent or less.
ALARM_P_VALUE = 0.01
HISTOGRAM_BINS = 40
NAME = "two-sample Kolmogorov–Smirnov, asymptotic p-value"


def kolmogorov_tail(lam):
    """Q(λ) = P(K > λ) of the Kolmogorov distribution, elementwise (1 for λ ≤ 0)."""
    lam = np.atleast_1d(np.asarray(lam, np.float64))
    out = np.ones(len(lam))
    k = np.arange(1, 21)[:, None]
    small = (lam > 0) & (lam < 1)
    if small.any():
        x = lam[small]
        head = np.exp(-((2 * k - 1) ** 2) * np.pi ** 2 / (8 * x * x)).sum(axis=0)
        out[small] = 1 - np.sqrt(2 * np.pi) / x * head
    large = lam >= 1
    if large.any():
        x = lam[large]
        out[large] = 2 * (np.where(k % 2, 1, -1) * np.exp(-2 * k * k * x * x)).sum(axis=0)
    return np.clip(out, 0.0, 1.0)


def ks_test(first, second, first_weight=None, second_weight=None):
    """The two-sample KS test of ``first`` against ``second`` (1-D, no NaN), each weighted
    where its weights are given: ``statistic`` D, ``p_value``, ``rows`` of each and, with
    weights, ``effective_rows`` of each (what the p-value takes as n)."""
    samples = [_sample(v, w) for v, w in ((first, first_weight), (second, second_weight))]
    weighted = first_weight is not None or second_weight is not None
    out = {"rows": [len(v) for v, _ in samples]}
    with np.errstate(over="ignore"):  # weights past ~1e154: n_eff NaN, the p-value too
        sizes = [effective_rows(w.sum(), (w * w).sum()) if weighted else len(v)
                 for v, w in samples]
    if weighted:
        out["effective_rows"] = sizes
    if min(out["rows"]) == 0 or not min(w.sum() for _, w in samples) > 0:
        return {"statistic": float("nan"), "p_value": float("nan"), **out,
                "reason": "a sample without rows or a positive sum of weights"}
    statistic = _distance(*samples)
    n = sizes[0] * sizes[1] / (sizes[0] + sizes[1])
    p = float(kolmogorov_tail(statistic * np.sqrt(n))[0])
    return {"statistic": statistic, "p_value": p, **out}


def _sample(values, weight):
    values = np.asarray(values, np.float64).reshape(-1)
    if np.isnan(values).any():
        raise ValueError("values hold NaN")
    weight = np.ones(len(values)) if weight is None \
        else np.asarray(weight, np.float64).reshape(-1)
    if len(weight) != len(values):
        raise ValueError(f"{len(weight)} weights for {len(values)} values")
    return values, weight


def _distance(first, second):
    """max |F₁ − F₂| at the ends of the runs of equal values of both samples together. Each
    CDF is a running sum of its own weights divided once by their total, so that unit or
    integer weights give the counts / n of the unweighted CDF to the last bit."""
    values = np.concatenate([first[0], second[0]])
    order = np.argsort(values, kind="stable")
    split = len(first[0])
    cdfs = []
    for w, own in ((first[1], slice(None, split)), (second[1], slice(split, None))):
        amount = np.zeros(len(values))
        amount[own] = w
        cdfs.append(np.cumsum(amount[order]) / w.sum())
    values = values[order]
    ends = np.append(values[1:] != values[:-1], True)
    return float(np.abs(cdfs[0][ends] - cdfs[1][ends]).max())


def histograms(train, test, train_weight=None, test_weight=None, bins=HISTOGRAM_BINS,
               span=None):
    """The two samples on one binning of ``bins`` equal bins over ``span`` (default: from the
    lowest to the highest finite value of both): ``edges``, and for ``train`` and ``test``
    each the ``content`` (sums of weights) and its ``error`` √Σw² a bin, the same divided
    by the sample's sum of weights and the bin width (``density``, ``density_error``: the
    two samples drawn on one scale), and the sums of weights ``below`` and ``above`` the
    span."""
    samples = {"train": _sample(train, train_weight), "test": _sample(test, test_weight)}
    if span is None:
        finite = np.concatenate([v[np.isfinite(v)] for v, _ in samples.values()])
        span = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
    low, high = float(span[0]), float(span[1])
    if not high > low:
        low, high = low - 0.5, low + 0.5
    edges = np.linspace(low, high, bins + 1)
    out = {"edges": edges.tolist()}
    for name, (v, w) in samples.items():
        inside = (v >= low) & (v <= high)
        content = np.histogram(v[inside], edges, weights=w[inside])[0]
        with np.errstate(over="ignore", invalid="ignore"):  # weights past ~1e154: inf, NaN
            error = np.sqrt(np.histogram(v[inside], edges, weights=(w * w)[inside])[0])
        scale = w.sum() * (high - low) / bins
        with np.errstate(invalid="ignore", divide="ignore"):
            density, density_error = content / scale, error / abs(scale)
        out[name] = {"content": content.tolist(), "error": error.tolist(),
                     "density": density.tolist(), "density_error": density_error.tolist(),
                     "below": float(w[v < low].sum()), "above": float(w[v > high].sum()),
                     "sum_of_weights": float(w.sum())}
    return out


def compare(train, test, train_weight=None, test_weight=None, bins=HISTOGRAM_BINS):
    """One pair of samples: :func:`ks_test` and the ``histograms``."""
    return {**ks_test(train, test, train_weight, test_weight),
            "histograms": histograms(train, test, train_weight, test_weight, bins)}


def per_class(train_score, train_class, test_score, test_class, classes, train_weight=None,
              test_weight=None, alarm=ALARM_P_VALUE):
    """The check of a classifier: for each class (its index in ``classes``), the training
    rows of that class against the held-out rows of it. A score of one column (two classes:
    the second class's probability) is compared for every class; a score of a column a
    class, each class on its own column. See :func:`summary` for the dict."""
    train_score, test_score = np.asarray(train_score), np.asarray(test_score)
    train_class, test_class = np.asarray(train_class), np.asarray(test_class)
    groups = {}
    for k, name in enumerate(classes):
        a, b = train_class == k, test_class == k
        groups[str(name)] = compare(_column(train_score, a, k), _column(test_score, b, k),
                                    _part(train_weight, a), _part(test_weight, b))
    return summary(groups, "class", alarm)


def per_label(train_residual, test_residual, names, train_weight=None, test_weight=None,
              alarm=ALARM_P_VALUE):
    """The check of a regression: for each label (a column of the residuals, predicted −
    true), its residuals on the training rows against those on the held-out rows."""
    train_residual = np.asarray(train_residual, np.float64).reshape(len(train_residual), -1)
    test_residual = np.asarray(test_residual, np.float64).reshape(len(test_residual), -1)
    groups = {str(name): compare(train_residual[:, j], test_residual[:, j], train_weight,
                                 test_weight) for j, name in enumerate(names)}
    return summary(groups, "label", alarm)


def summary(groups, kind, alarm=ALARM_P_VALUE):
    """``test`` (which), ``alarm_p_value``, ``groups`` (a :func:`compare` each),
    ``overtrained`` (the groups of p < alarm) and, where there are any, a one-line
    ``warning`` naming them."""
    low = [name for name, g in groups.items() if g["p_value"] < alarm]
    out = {"test": NAME, "alarm_p_value": alarm, "groups": groups, "overtrained": low}
    if low:
        named = ", ".join(f"{kind} {name!r} (p = {groups[name]['p_value']:.2g})"
                          for name in low)
        out["warning"] = (f"overtraining: the training and held-out distributions differ "
                          f"(KS p < {alarm:g}) for {named}")
    return out


def _column(score, rows, k):
    return score[rows] if score.ndim == 1 else score[rows, k]


def _part(weight, rows):
    return None if weight is None else np.asarray(weight, np.float64).reshape(-1)[rows]
