"""Performance as a function of a variable: bias and resolution in bins of one or two columns.

Pure numpy. Rows arrive in chunks (:meth:`Binned.add`); per row only the bin variables and the
few numbers the statistics need are kept (the residual of each label as float32, the distance of
a point, or the true and predicted class), so that exact medians and quantiles can be taken
once the edges are known — edges that, without ``edges``, come from the whole range of the data.

For each bin and label: the count, the bias (mean residual, predicted − true) and the
resolution (standard deviation of the residual, n − 1 in the denominator) with their standard
errors, and their robust forms: the median residual and half the width of the central 68 %
(16th to 84th percentile). For a point, the mean and median distance; for classes, the accuracy
and the recall of each class.

With event weights (``add(..., weight=)``; a float64 weight a row is then kept too) each bin
also has its sum of weights Σw and effective rows n_eff = (Σw)² / Σw², and its statistics are
weighted (sums over the bin's rows):

- bias μ = Σw·r / Σw (numpy's ``np.average(r, weights=w)``), its error
  sqrt(Σw²(r − μ)²) / |Σw| · sqrt(n_eff / (n_eff − 1)) (with equal weights the unweighted
  std(ddof=1) / √n; NaN where n_eff ≤ 1);
- resolution σ = sqrt(Σw(r − μ)² / (Σw − Σw²/Σw)), the weighted variance made unbiased for
  n_eff rows (n_eff / (n_eff − 1) times ``np.average((r - μ)**2, weights=w)``; with equal
  weights the n − 1 form above, and unchanged when every weight is scaled), its error
  σ / sqrt(2(n_eff − 1));
- median and robust resolution from weighted inverted-CDF quantiles
  (:func:`~fcnn_cli.network.weighted.weighted_quantile`);
- for a point the weighted mean distance (its error as the bias's) and median; for classes the
  weighted accuracy, its Wilson error for n_eff trials, and each class's weighted recall.

An event counts by its weight, not as that many events: a row of weight 3 is one measurement,
so the errors come from Σw², not from Σw rows. Where a bin's Σw is 0 its means are NaN; the
resolution is NaN where n_eff ≤ 1 or the weighted variance comes out negative (negative weights
can make it so), and the errors need two rows or more, as without weights.
"""

import numpy as np

from fcnn_cli.network.weighted import Weights, effective_rows, weighted_quantile

DEFAULT_BINS = 10


def edges_for(values, bins=DEFAULT_BINS):
    """``bins`` bins of equal width over the finite range of ``values`` (a value alone gets a
    bin of width 1 around it); None when no value is finite."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    # Weighted means of lo and hi, not lo + i * (hi - lo) / bins: hi - lo overflows for a
    # column that spans -1e308 to 1e308.
    t = np.linspace(0.0, 1.0, bins + 1)
    edges = lo * (1 - t) + hi * t
    edges[0], edges[-1] = lo, hi
    return edges


def bin_index(values, edges):
    """The bin of each value: ``edges[i] ≤ v < edges[i + 1]``, the last edge inside the last
    bin; -1 outside the edges and for NaN."""
    values = np.asarray(values, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    index = np.searchsorted(edges, values, side="right") - 1
    index[values == edges[-1]] = len(edges) - 2
    index[~((values >= edges[0]) & (values <= edges[-1]))] = -1
    return index


def flat_index(indices, shape):
    """One bin number for a row's bin in each dimension (row-major); -1 where any is -1."""
    flat = np.zeros(len(indices[0]), dtype=np.int64)
    outside = np.zeros(len(indices[0]), dtype=bool)
    for index, n in zip(indices, shape):
        flat = flat * n + index
        outside |= index < 0
    flat[outside] = -1
    return flat


def groups(index, n_bins):
    """For each bin, the positions of its rows."""
    index = np.asarray(index)
    order = np.argsort(index, kind="stable")
    counts = np.bincount(index[index >= 0], minlength=n_bins)
    start = int((index < 0).sum())
    bounds = start + np.concatenate([[0], np.cumsum(counts)])
    return [order[bounds[b]:bounds[b + 1]] for b in range(n_bins)]


def residual_stats(residuals, index, n_bins, weight=None):
    """Per bin (rows) and label (columns): count, bias, resolution, their standard errors,
    median and robust resolution; NaN where a bin has too few rows for the number. With
    ``weight`` (one a row) weighted, and per bin ``sum_of_weights`` and ``effective_rows``."""
    residuals = np.asarray(residuals, dtype=np.float64).reshape(len(index), -1)
    k = residuals.shape[1]
    keys = ("bias", "bias_error", "resolution", "resolution_error", "median",
            "robust_resolution")
    out = {key: np.full((n_bins, k), np.nan) for key in keys}
    out["count"] = np.zeros(n_bins, dtype=np.int64)
    if weight is not None:
        out["sum_of_weights"], out["effective_rows"] = np.zeros(n_bins), np.full(n_bins, np.nan)
    for b, rows in enumerate(groups(index, n_bins)):
        n = len(rows)
        out["count"][b] = n
        if not n:
            continue
        r = residuals[rows]
        if weight is not None:
            for key, value in weighted_residuals(r, weight[rows]).items():
                out[key][b] = value
            continue
        out["bias"][b] = r.mean(axis=0)
        out["median"][b] = np.median(r, axis=0)
        p16, p84 = np.percentile(r, [16, 84], axis=0)
        out["robust_resolution"][b] = (p84 - p16) / 2
        if n > 1:
            sd = r.std(axis=0, ddof=1)
            out["resolution"][b] = sd
            out["bias_error"][b] = sd / np.sqrt(n)
            out["resolution_error"][b] = sd / np.sqrt(2 * (n - 1))
    return out


def weighted_residuals(r, w):
    """One bin's weighted statistics of residuals ``r`` (rows × labels), as the module's
    docstring defines them."""
    total, squares = float(w.sum()), float((w * w).sum())
    rows = effective_rows(total, squares)
    out = {"sum_of_weights": total, "effective_rows": rows}
    if total == 0:
        return out
    mean, spread = _weighted_mean(r, w, total)
    quantiles = np.array([weighted_quantile(column, w, [0.16, 0.5, 0.84]) for column in r.T])
    out.update(bias=mean, median=quantiles[:, 1],
               robust_resolution=(quantiles[:, 2] - quantiles[:, 0]) / 2)
    if len(w) > 1:
        out["bias_error"] = spread
    if rows > 1:
        with np.errstate(invalid="ignore"):
            sd = np.sqrt((w[:, None] * (r - mean) ** 2).sum(axis=0) / (total - squares / total))
        out.update(resolution=sd, resolution_error=sd / np.sqrt(2 * (rows - 1)))
    return out


def _weighted_mean(values, w, total):
    """The weighted mean of ``values`` (rows × columns, or rows) and its error,
    sqrt(Σw²(v − μ)²) / |Σw| made unbiased for n_eff rows, as the resolution is: equal weights
    give the unweighted std(ddof=1) / √n."""
    column = w if values.ndim == 1 else w[:, None]
    mean = (column * values).sum(axis=0) / total
    rows = effective_rows(total, float((w * w).sum()))
    unbiased = np.sqrt(rows / (rows - 1)) if rows > 1 else np.nan
    spread = np.sqrt((column ** 2 * (values - mean) ** 2).sum(axis=0)) / abs(total)
    return mean, unbiased * spread


def distance_stats(distances, index, n_bins, weight=None):
    """Per bin: mean distance, its standard error and the median distance; with ``weight``
    weighted (see the module's docstring)."""
    distances = np.asarray(distances, dtype=np.float64)
    out = {key: np.full(n_bins, np.nan) for key in ("mean", "error", "median")}
    for b, rows in enumerate(groups(index, n_bins)):
        if not len(rows):
            continue
        d = distances[rows]
        if weight is not None:
            w = weight[rows]
            total = float(w.sum())
            if total != 0:
                out["mean"][b], error = _weighted_mean(d, w, total)
                out["median"][b] = weighted_quantile(d, w, [0.5])[0]
                if len(rows) > 1:
                    out["error"][b] = error
            continue
        out["mean"][b], out["median"][b] = d.mean(), np.median(d)
        if len(rows) > 1:
            out["error"][b] = d.std(ddof=1) / np.sqrt(len(rows))
    return out


def wilson_error(share, n):
    """Half the width of the Wilson score interval at one standard deviation of a share
    measured in ``n`` trials: the binomial sqrt(p(1 - p) / n), but not 0 at a share of 0 or 1,
    where it would claim a certainty that a few rows cannot give."""
    share, n = np.asarray(share, np.float64), np.asarray(n, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(share * (1 - share) / n + 1 / (4 * n * n)) / (1 + 1 / n)


def class_stats(true, predicted, index, n_bins, n_classes, weight=None):
    """Per bin: accuracy and its error (:func:`wilson_error`), and the recall of each class
    (NaN where the bin holds none of it); with ``weight`` weighted, the error for the bin's
    effective rows, and per bin ``sum_of_weights`` and ``effective_rows``."""
    true, predicted = np.asarray(true, np.int64), np.asarray(predicted, np.int64)
    index = np.asarray(index)
    inside = index >= 0
    at, hit = index[inside], (true == predicted)[inside]
    cells = at * n_classes + true[inside]
    count = np.bincount(at, minlength=n_bins)
    per_class = np.bincount(cells, minlength=n_bins * n_classes).reshape(n_bins, n_classes)
    out = {"count": count}
    if weight is None:
        amount, amount_per_class, trials = count, per_class, count
        right = np.bincount(at, weights=hit, minlength=n_bins)
        hits = np.bincount(cells, weights=hit, minlength=n_bins * n_classes)
    else:
        w = np.asarray(weight, np.float64)[inside]
        amount = np.bincount(at, weights=w, minlength=n_bins)
        trials = effective_rows(amount, np.bincount(at, weights=w * w, minlength=n_bins))
        amount_per_class = np.bincount(cells, weights=w, minlength=n_bins * n_classes) \
            .reshape(n_bins, n_classes)
        right = np.bincount(at, weights=hit * w, minlength=n_bins)
        hits = np.bincount(cells, weights=hit * w, minlength=n_bins * n_classes)
        out.update(sum_of_weights=amount, effective_rows=trials)
    hits = hits.reshape(n_bins, n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where((count > 0) & (amount != 0),
                            right / np.where(amount != 0, amount, 1), np.nan)
        error = wilson_error(accuracy, trials)
        recall = np.where((per_class > 0) & (amount_per_class != 0),
                          hits / np.where(amount_per_class != 0, amount_per_class, 1), np.nan)
    return {**out, "accuracy": accuracy, "accuracy_error": error, "recall": recall}


class Binned:
    """Binned statistics of a model over rows that arrive in chunks.

    ``by`` names the 1 or 2 bin variables; ``targets`` the labels; ``point`` the indices of the
    labels that form a point (or None); ``classes`` the class names for classification (then
    ``add`` takes class indices). Rows with weights (all or none) make every statistic
    weighted, as the module's docstring says."""

    def __init__(self, by, targets, point=None, classes=None):
        self.by, self.targets, self.point, self.classes = list(by), list(targets), point, classes
        self.values, self.kept, self.distances = [], [], []
        self.weights, self.kept_weights = Weights(), []

    def add(self, by_values, truth, predicted, weight=None):
        by_values = np.asarray(by_values, dtype=np.float64).reshape(len(truth), len(self.by))
        self.values.append(by_values)
        weight = self.weights.add(weight, len(truth))
        if weight is not None:
            self.kept_weights.append(weight)
        if self.classes is not None:
            dtype = np.min_scalar_type(max(len(self.classes) - 1, 1))
            self.kept.append(np.stack([np.asarray(truth), np.asarray(predicted)],
                                      axis=1).astype(dtype))
            return
        err = np.asarray(predicted, np.float64) - np.asarray(truth, np.float64)
        self.kept.append(err.reshape(len(err), -1).astype(np.float32))
        if self.point is not None:  # float64, as metrics keeps it: float32 can overflow
            self.distances.append(np.sqrt((err[:, self.point] ** 2).sum(axis=1)))

    def report(self, bins=DEFAULT_BINS, edges=None, units=None):
        """The report dict: per bin variable its edges, and a list of bins (row-major over the
        variables), each with its bounds, count and statistics. ``edges`` holds, per
        variable, its bin edges or None for ``bins`` bins over its range."""
        units = units or {}
        values = (np.concatenate(self.values) if self.values
                  else np.zeros((0, len(self.by))))
        edges = list(edges or [None] * len(self.by))
        for d in range(len(self.by)):
            if edges[d] is None:
                edges[d] = edges_for(values[:, d], bins)
        if any(e is None for e in edges):
            missing = [c for c, e in zip(self.by, edges) if e is None][0]
            return {"by": self._axes(edges, units), "rows": len(values),
                    **self.weights.report(), "outside": len(values),
                    "not_finite": int((~np.isfinite(values).all(axis=1)).sum()), "bins": [],
                    "empty": f"column {missing!r} has no finite values"}
        shape = [len(e) - 1 for e in edges]
        index = flat_index([bin_index(values[:, d], e) for d, e in enumerate(edges)], shape)
        n_bins = int(np.prod(shape))
        stats = self._stats(index, n_bins)
        report = {"by": self._axes(edges, units), "rows": int(len(values)),
                  **self.weights.report(), "outside": int((index < 0).sum()),
                  "not_finite": int((~np.isfinite(values).all(axis=1)).sum()), "bins": []}
        for b, where in enumerate(np.ndindex(*shape)):
            entry = {"index": list(where),
                     "low": [float(edges[d][i]) for d, i in enumerate(where)],
                     "high": [float(edges[d][i + 1]) for d, i in enumerate(where)]}
            report["bins"].append({**entry, **self._entry(stats, b)})
        return report

    def _axes(self, edges, units):
        return [{"column": c, "unit": units.get(c, ""),
                 "edges": None if e is None else [float(v) for v in e]}
                for c, e in zip(self.by, edges)]

    def _stats(self, index, n_bins):
        width = 2 if self.classes is not None else len(self.targets)
        kept = np.concatenate(self.kept) if self.kept else np.zeros((0, width))
        weight = np.concatenate(self.kept_weights) if self.kept_weights else None
        if self.classes is not None:
            return class_stats(kept[:, 0], kept[:, 1], index, n_bins, len(self.classes),
                               weight)
        stats = {"residual": residual_stats(kept, index, n_bins, weight)}
        if self.point is not None:
            distances = np.concatenate(self.distances) if self.distances else np.zeros(0)
            stats["distance"] = distance_stats(distances, index, n_bins, weight)
        return stats

    def _entry(self, stats, b):
        if self.classes is not None:
            return {"count": int(stats["count"][b]), **_bin_weights(stats, b),
                    "accuracy": float(stats["accuracy"][b]),
                    "accuracy_error": float(stats["accuracy_error"][b]),
                    "recall": {c: float(stats["recall"][b, i])
                               for i, c in enumerate(self.classes)}}
        r = stats["residual"]
        entry = {"count": int(r["count"][b]), **_bin_weights(r, b),
                 "targets": {t: {key: float(r[key][b, i]) for key in r if key not in _PER_BIN}
                             for i, t in enumerate(self.targets)}}
        if "distance" in stats:
            entry["distance"] = {key: float(v[b]) for key, v in stats["distance"].items()}
        return entry


_PER_BIN = ("count", "sum_of_weights", "effective_rows")  # a bin's, not a label's


def _bin_weights(stats, b):
    """A bin's sum of weights and effective rows, where its rows came with weights."""
    return {key: float(stats[key][b]) for key in _PER_BIN[1:] if key in stats}
