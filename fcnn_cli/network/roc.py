"""The ROC curve of a binary score, weighted where weights are given (taken as they are,
negative ones included, as in :mod:`~fcnn_cli.network.weighted`), with the error of each of its
efficiencies. A row passes a cut when its score is ≥ the cut; the curve has one point a distinct
score, from the tightest cut (+inf: nothing passes) to the loosest (everything passes), as
scikit-learn's ``roc_curve(..., drop_intermediate=False)``. An efficiency is the passing sum of
weights over the class's sum (NaN where that is 0); its error is the standard one of a weighted
efficiency,

    σ_ε = √(Σ_pass w² (1 − ε)² + Σ_fail w² ε²) / |Σw|,

which for unit weights is the binomial √(ε(1 − ε)/N): rows without weights are rows of weight
1, so one formula serves both."""

import numpy as np

from fcnn_cli.network.weighted import effective_rows


class Curve:
    """The ROC curve of ``score`` (NaN refused: it has no place among the cuts): ``cut``, the
    distinct scores from +inf down, and for each class (``signal``, ``background``) what
    passes each cut."""

    def __init__(self, score, is_signal, weight=None):
        score = np.asarray(score, np.float32).reshape(-1)
        if np.isnan(score).any():
            raise ValueError("scores hold NaN")
        signal = as_flags(is_signal, len(score))
        weight = np.ones(len(score)) if weight is None else as_weights(weight, len(score))
        values, group = np.unique(score, return_inverse=True)
        self.cut = np.concatenate([[np.inf], values[::-1].astype(np.float64)])
        group = len(values) - 1 - group.ravel()  # 0 for the highest score
        self.signal = _Side(group, signal, weight, len(values))
        self.background = _Side(group, ~signal, weight, len(values))


class _Side:
    """One class's share of the curve, cumulative from the tightest cut: the sums of weights
    (``passed``), of squared weights (``squares``) and the rows (``rows``) that pass each cut;
    the last of each is the class's total."""

    def __init__(self, group, mask, weight, k):
        w = np.where(mask, weight, 0.0)
        with np.errstate(over="ignore"):  # a weight of 1e170 squares to inf: its errors are NaN
            self.passed, self.squares = _cumulative(group, w, k), _cumulative(group, w * w, k)
        self.rows = _cumulative(group, mask.astype(np.float64), k)
        self.total, self.total_squares = self.passed[-1], self.squares[-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            self.efficiency = self.passed / self.total if self.total != 0 \
                else np.full(len(self.passed), np.nan)

    def at(self, i, frac=0.0):
        """(ε, σ_ε) at point ``i`` of the curve, or ``frac`` of the way to point i + 1: the
        passing sums are interpolated linearly, as a random choice between the two cuts
        would pass them on average."""
        eff = between(self.efficiency, i, frac)
        squares = between(self.squares, i, frac)
        with np.errstate(invalid="ignore"):  # inf − inf where a squared weight overflowed
            variance = squares * (1 - eff) ** 2 + (self.total_squares - squares) * eff ** 2
        return eff, float(np.sqrt(max(variance, 0.0)) / abs(self.total)) if self.total \
            else float("nan")

    def summary(self, weighted):
        out = {"rows": int(self.rows[-1])}
        if weighted:
            out.update(sum_of_weights=float(self.total),
                       effective_rows=effective_rows(self.total, self.total_squares))
        return out


def _cumulative(group, amount, k):
    return np.concatenate([[0.0], np.cumsum(np.bincount(group, weights=amount, minlength=k))])


def between(values, i, frac):
    """``values`` at point i of the curve, or ``frac`` of the way to point i + 1."""
    return float(values[i] if frac == 0 else values[i] + frac * (values[i + 1] - values[i]))


def crossing(eff, target, strict):
    """(i, frac): where, going from tight cuts to loose, ``eff`` first passes ``target``
    (> with ``strict``, else ≥), as point i and the fraction of the way to i + 1 at which the
    straight line between them meets it; (last point, 0) where it never does."""
    passed = eff > target if strict else eff >= target
    after = np.flatnonzero(passed[1:])
    if not len(after):
        return len(eff) - 1, 0.0
    i = int(after[0])
    step = eff[i + 1] - eff[i]  # 0 only where the target is ≤ 0, met at the first point
    return i, float((target - eff[i]) / step) if step else 0.0


def as_flags(is_signal, rows):
    flags = np.asarray(is_signal, dtype=bool).reshape(-1)
    if len(flags) != rows:
        raise ValueError(f"{len(flags)} signal flags for {rows} rows")
    return flags


def as_weights(weight, rows):
    weight = np.asarray(weight, dtype=np.float64).reshape(-1)
    if len(weight) != rows:
        raise ValueError(f"{len(weight)} weights for {rows} rows")
    return weight
