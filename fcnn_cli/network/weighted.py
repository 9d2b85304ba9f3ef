"""Event weights in metric reports: the sums a report keeps of them (:class:`Weights`), and the
weighted quantile (:func:`weighted_quantile`).

A report takes the weights as they are, negative ones included: each weighted figure is the
formula scikit-learn evaluates with ``sample_weight`` (a sum over rows of weight × value, divided
by a sum of weights). Where the sum it divides by is 0 the figure is NaN (scikit-learn raises);
where that sum is negative the figure is computed all the same, and a report whose sum of weights
is not positive says so (``weights_warning``)."""

import numpy as np


class Weights:
    """Whether a report's rows came with weights, and the sums of their weights and squared
    weights. A report's rows come all with weights or all without: a mix is a mistake of the
    caller (ValueError), not two reports in one."""

    def __init__(self):
        self.given = None  # True or False from the first add on
        self.sum = 0.0
        # Σw² in units of the largest |w| so far, squared: weights of 1e160 (or 1e-300) square
        # past (or under) what a float holds.
        self.squares, self.top = 0.0, 0.0

    def add(self, weight, rows):
        """The weights of ``rows`` rows as a float64 array, or None for rows without."""
        given = weight is not None
        if self.given is not None and given != self.given:
            raise ValueError("rows with weights and rows without in one report")
        self.given = given
        if not given:
            return None
        weight = np.asarray(weight, dtype=np.float64).reshape(-1)
        if len(weight) != rows:
            raise ValueError(f"{len(weight)} weights for {rows} rows")
        self.sum += float(weight.sum())
        top = max(self.top, float(np.abs(weight).max(initial=0.0)))
        if top > 0:
            self.squares = self.squares * (self.top / top) ** 2 + float(
                np.square(weight / top).sum())
            self.top = top
        return weight

    def total(self, rows):
        """What the report's means divide by: the rows without weights, else the sum of weights,
        NaN where it is 0 (so that every mean over it is NaN, not infinite)."""
        if not self.given:
            return rows
        return self.sum if self.sum != 0 else float("nan")

    def report(self):
        """``sum_of_weights`` and ``effective_rows`` ((Σw)² / Σw², the rows of equal weight that
        would measure as precisely), and ``weights_warning`` where the sum is not positive;
        nothing for rows without weights."""
        if not self.given:
            return {}
        out = {"sum_of_weights": self.sum,
               "effective_rows": effective_rows(self.sum / (self.top or 1.0), self.squares)}
        if not self.sum > 0:
            out["weights_warning"] = (
                f"the sum of weights is {self.sum:g}, not positive: the weighted figures "
                "divide by it (NaN where it is 0) and mean little")
        return out


def effective_rows(total, squares):
    """(Σw)² / Σw², elementwise; NaN where Σw² is 0."""
    total, squares = np.asarray(total, np.float64), np.asarray(squares, np.float64)
    # Weights past ~1e154 square to inf: n_eff is then NaN, not a numpy warning.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out = np.where(squares != 0, total * total / np.where(squares != 0, squares, 1), np.nan)
    return float(out) if out.ndim == 0 else out


def weighted_quantile(values, weights, q):
    """The weighted inverted-CDF quantiles ``q`` (fractions, each > 0) of 1-D ``values``: for
    each q the smallest value v with Σ{w : value ≤ v} ≥ q · Σw. For weights ≥ 0 this is numpy's
    ``np.quantile(values, q, weights=weights, method="inverted_cdf")``; integer weights give
    the inverted-CDF quantile of the values repeated that many times. Negative weights are
    taken as they are (the cumulative sum may then fall and rise again: the first value past
    q · Σw is taken); NaN where Σw is not positive or there are no values."""
    values = np.asarray(values, dtype=np.float64)
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))
    weights = np.asarray(weights, dtype=np.float64)
    if not len(values):
        return np.full(len(q), np.nan)
    order = np.argsort(values, kind="stable")
    values, cdf = values[order], np.cumsum(weights[order])
    if not cdf[-1] > 0:
        return np.full(len(q), np.nan)
    # Only the ends of runs of equal values: there the sum does not depend on how ties are
    # ordered, which matters once weights may be negative.
    ends = np.flatnonzero(np.append(values[1:] != values[:-1], True))
    cdf = cdf[ends] / cdf[-1]
    passed = cdf[None, :] >= q[:, None]
    return values[ends[np.argmax(passed, axis=1)]]
