"""Metric reports: plain dicts of numbers, ready for JSON. Regression (errors per label and, for
labels that form a point, distances) and classification (accuracy, per class, confusion, ROC AUC),
each over rows in chunks; the scores of uncertainties are :mod:`~fcnn_cli.network.calibration`'s."""

import re

import numpy as np

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.network.calibration import Calibration, Reliability
from fcnn_cli.network.weighted import Weights, weighted_quantile

_COORDINATE = re.compile(r"^(.*?)([xyz])(.*)$", re.IGNORECASE)


def regression(y_true, y_pred, names, units=None, position=None, weight=None):
    """MSE, RMSE, MAE and R² per target and overall; for position targets also distances;
    with ``weight`` (one a row) weighted (see :class:`Regression`)."""
    report = Regression(names, units, position)
    report.add(y_true, y_pred, weight=weight)
    return report.report()


# Distances a report of streamed rows keeps for its median and percentiles (8 bytes each).
DISTANCE_SAMPLE = 1_000_000


class Regression:
    """The regression report over rows that arrive in chunks (``add``), in bounded memory:
    running sums, a running mean and variance of the labels (Chan's update), and one float64
    distance a row, kept only for position labels, for the exact median and percentiles.

    ``position`` names the labels that form a point (2 or 3 of ``names``); None takes all the
    labels when their names say so (:func:`is_position`). With ``sample`` at most that many
    distances are kept, a uniform random sample of all rows' (seeded, so repeatable), and the
    median and percentiles are the sample's; the mean and maximum stay exact.

    Rows with weights (``add(..., weight=)``, all rows or none) make every figure weighted, as
    scikit-learn's with ``sample_weight``: MSE and MAE are weighted means, R² is
    1 − Σw(ŷ − y)² / Σw(y − ȳ_w)², the mean distance a weighted mean and its median and
    percentiles weighted inverted-CDF quantiles (:func:`~fcnn_cli.network.weighted.
    weighted_quantile`; the maximum is over the rows of weight other than 0); the report
    adds ``sum_of_weights`` and ``effective_rows`` beside ``rows`` (see
    :mod:`~fcnn_cli.network.weighted`)."""

    def __init__(self, names, units=None, position=None, sample=None):
        self.names, self.units = list(names), units or {}
        k = len(self.names)
        self.rows, self.squared, self.absolute = 0, np.zeros(k), np.zeros(k)
        self.mean, self.m2 = np.zeros(k), np.zeros(k)
        self.weights, self.spread = Weights(), None
        self.point = position_of(self.names, self.units, position)
        self.position = self.point is not None
        self.distances, self.distance_weights = [], []
        self.distance_sum, self.distance_max = 0.0, -np.inf
        self.sample = sample and _Sample(sample)
        self.calibration = None  # a Calibration, once rows come with a standard deviation

    def add(self, y_true, y_pred, y_std=None, weight=None):
        """Rows of labels and predictions; ``y_std``, a predicted standard deviation per
        value, adds the uncertainty report; ``weight``, one a row, weighs them."""
        w = self.weights.add(weight, len(y_true))
        if y_std is not None:
            self.calibration = self.calibration or Calibration(self.names)
            self.calibration.add(y_true, y_pred, y_std, weight=w)
        y_true = np.asarray(y_true, dtype=np.float64)
        err = np.asarray(y_pred, dtype=np.float64) - y_true
        n = len(y_true)
        if not n:
            return
        if w is None:
            self.squared += (err ** 2).sum(axis=0)
            self.absolute += np.abs(err).sum(axis=0)
            mean = y_true.mean(axis=0)
            delta, total = mean - self.mean, self.rows + n
            self.m2 += ((y_true - mean) ** 2).sum(axis=0) + delta ** 2 * self.rows * n / total
            self.mean += delta * n / total
        else:
            self.squared += (w[:, None] * err ** 2).sum(axis=0)
            self.absolute += (w[:, None] * np.abs(err)).sum(axis=0)
            self.spread = self.spread or _Spread(y_true)
            self.spread.add(y_true, w)
        self.rows += n
        if self.position:
            self._add_distances(np.sqrt((err[:, self.point] ** 2).sum(axis=1)), w)

    def _add_distances(self, distance, w):
        if self.sample:
            self.sample.add(distance, w)
        else:
            self.distances.append(distance)  # float64: float32 overflows past 3.4e38
            if w is not None:
                self.distance_weights.append(w)
        self.distance_sum += float(distance.sum() if w is None else (w * distance).sum())
        # A row of weight 0 counts for nothing, its distance neither.
        self.distance_max = max(self.distance_max, float(distance.max(
            initial=-np.inf, where=True if w is None else w != 0)))

    def report(self):
        n, k = self.rows, len(self.names)
        total = self.weights.total(n)
        with np.errstate(invalid="ignore", divide="ignore"):
            mse, mae = self.squared / total, self.absolute / total
            variance = self.m2 / n if self.spread is None else self.spread.variance()
        per_target = {
            name: {"mse": float(mse[i]), "rmse": _root(float(mse[i])), "mae": float(mae[i]),
                   "r2": 1.0 - float(mse[i]) / variance[i] if variance[i] > 0 else float("nan"),
                   "unit": self.units.get(name, "")}
            for i, name in enumerate(self.names)}
        overall = float(self.squared.sum() / (total * k)) if n else float("nan")
        report = {
            "task": "regression",
            "rows": int(n),
            **self.weights.report(),
            "targets": per_target,
            "overall": {
                "mse": overall,
                "rmse": _root(overall),
                "mae": float(self.absolute.sum() / (total * k)) if n else float("nan"),
                "r2": float(np.mean([m["r2"] for m in per_target.values()])),
            },
        }
        if self.position and n:
            report["distance"] = self._distance(total)
        if self.calibration is not None:
            report["uncertainty"] = self.calibration.report()
        return report

    def _distance(self, total):
        of = [self.names[i] for i in self.point]
        out = {"of": of, "unit": self.units.get(of[0], ""), "mean": self.distance_sum / total}
        distance = self.sample.values() if self.sample else np.concatenate(self.distances)
        if self.weights.given:
            weight = self.sample.weights() if self.sample \
                else np.concatenate(self.distance_weights)
            median, p68, p95 = weighted_quantile(distance, weight, [0.5, 0.68, 0.95])
        else:
            median, p68, p95 = (np.median(distance), np.percentile(distance, 68),
                                np.percentile(distance, 95))
        return {**out, "median": float(median), "p68": float(p68), "p95": float(p95),
                "max": self.distance_max}


class _Spread:
    """The weighted sum of squared deviations of the labels from their weighted mean, over
    chunks: sums of w·(y − c) and w·(y − c)² about a fixed c (the first rows' mean), not
    Chan's update, which divides by each chunk's sum of weights — 0 or negative where weights
    may be negative. c near the mean keeps the difference of the sums from cancelling."""

    def __init__(self, y):
        self.shift = y.mean(axis=0)
        self.first, self.second = np.zeros(y.shape[1]), np.zeros(y.shape[1])
        self.total = 0.0

    def add(self, y, w):
        d = y - self.shift
        self.first += (w[:, None] * d).sum(axis=0)
        self.second += (w[:, None] * d * d).sum(axis=0)
        self.total += float(w.sum())

    def variance(self):
        """Σw(y − ȳ_w)² / Σw per label (NaN where Σw is 0)."""
        if self.total == 0:
            return np.full(len(self.first), np.nan)
        return (self.second - self.first ** 2 / self.total) / self.total


def _root(mse):
    """The root of a mean squared error; NaN where negative weights make the mean negative
    (Python's power would give a complex number, which no report can hold)."""
    return mse ** 0.5 if mse >= 0 else float("nan")


class _Sample:
    """A uniform random sample of at most ``size`` values without replacement: each value
    drawn a random key, those of the ``size`` smallest keys kept (compacted once twice as many
    are held, so that adding costs little); each value's weight, where given, beside it."""

    def __init__(self, size):
        self.size, self.rng = size, np.random.default_rng(0)
        self.kept, self.keys, self.kept_weights = [], [], []
        self.held = 0

    def add(self, values, weights=None):
        self.kept.append(values)
        self.keys.append(self.rng.random(len(values)))
        if weights is not None:
            self.kept_weights.append(weights)
        self.held += len(values)
        if self.held > 2 * self.size:
            self._compact()

    def _compact(self):
        values, keys = np.concatenate(self.kept), np.concatenate(self.keys)
        weights = np.concatenate(self.kept_weights) if self.kept_weights else None
        if len(values) > self.size:
            smallest = np.argpartition(keys, self.size - 1)[:self.size]
            values, keys = values[smallest], keys[smallest]
            weights = None if weights is None else weights[smallest]
        self.kept, self.keys, self.held = [values], [keys], len(values)
        self.kept_weights = [] if weights is None else [weights]

    def values(self):
        self._compact()
        return self.kept[0]

    def weights(self):
        """The weights of :meth:`values`, in their order."""
        self._compact()
        return self.kept_weights[0]


def position_of(names, units=None, position=None):
    """The indices in ``names`` of the labels that form a point: those ``position`` names, or
    with None all of them where :func:`is_position` says so; None where there is no point."""
    names = list(names)
    if position is None:
        return list(range(len(names))) if is_position(names, units) else None
    missing = [c for c in position if c not in names]
    if missing:
        raise FcnnError(f"position names {', '.join(map(repr, missing))}, not among the labels "
                        f"({', '.join(map(repr, names))})", ("position",))
    return [names.index(c) for c in position]


def is_position(names, units=None):
    """True for 2 or 3 targets that name the axes of one point: x, y / pos_x, pos_y / x_km, y_km.

    Targets in different units are not a position, whatever their names.
    """
    if len(names) not in (2, 3):
        return False
    matches = [_COORDINATE.match(n) for n in names]
    if not all(matches):
        return False
    rests = {(m.group(1).lower(), m.group(3).lower()) for m in matches}
    axes = {m.group(2).lower() for m in matches}
    if len(rests) != 1 or len(axes) != len(names):
        return False
    prefix, suffix = rests.pop()
    if prefix and prefix[-1].isalnum() or suffix and suffix[0].isalnum():
        return False  # the letter is inside a word ("index", "energy"), not an axis name
    return len({(units or {}).get(n, "") for n in names}) == 1


# A report stays small and readable whatever the number of classes: up to FULL_REPORT_CLASSES
# classes it holds everything (every class's scores, the confusion matrix, ROC AUC); beyond, a
# summary of bounded size (see Classification.report).
FULL_REPORT_CLASSES = 50
# Up to this many classes the accumulator keeps one score per class and row, which ROC AUC
# ranks (4 bytes each); beyond, those would soon outweigh the rows themselves, and ROC AUC is
# left out.
ROC_AUC_CLASSES = FULL_REPORT_CLASSES
# Up to this many classes (true, predicted) pairs are counted in a dense K × K matrix
# (512 KiB); beyond, only the pairs that occur, which are at most one a row.
DENSE_PAIRS_CLASSES = 256
# A summary lists this many classes (those with the most rows) and this many confusions (the
# most frequent (true, predicted) pairs of different classes).
LISTED = 50


def classification(y_true, proba, classes, y_pred=None, weight=None):
    """Accuracy, cross-entropy, per-class precision/recall/F1, confusion matrix and ROC AUC.

    ``y_true`` holds class indices, ``proba`` one column of probabilities per class; ``y_pred``
    defaults to the most probable class; ``weight`` (one a row) weighs the rows (see
    :class:`Classification`). The confusion matrix has a row per true class and a column per
    predicted class. ROC AUC is one-vs-rest, averaged over classes (macro) for more than two,
    and NaN where a class is absent or alone. Beyond ``FULL_REPORT_CLASSES`` classes the
    report is a summary: see :meth:`Classification.report`.
    """
    report = Classification(classes)
    report.add(y_true, proba, y_pred, weight=weight)
    return report.report()


class Classification:
    """The classification report over rows that arrive in chunks (``add``): running counts of
    (true, predicted) class pairs and a cross-entropy sum, and, up to ``ROC_AUC_CLASSES``
    classes, per row the class and the float32 scores that ROC AUC ranks (one for two
    classes, one per class for more).

    Rows with weights (``add(..., weight=)``, all rows or none; a float64 weight a row is then
    kept beside the scores) make every figure weighted, as scikit-learn's with
    ``sample_weight``: accuracy, cross-entropy (``log_loss``), precision, recall and F1
    (``precision_recall_fscore_support``), ROC AUC (``roc_auc_score``: the area under the
    weighted ROC curve), and the calibration figures. The counts stay (``rows``, each class's
    ``support``, ``confusion_matrix``), and the sums of weights are added beside them:
    ``sum_of_weights`` and ``effective_rows`` of the report and ``sum_of_weights`` of each
    class, ``confusion_matrix_weighted``, and in a summary each confusion's."""

    def __init__(self, classes, figures=None):
        self.classes, self.figures = list(classes), figures
        k = len(self.classes)
        self.pairs = _DensePairs(k) if k <= DENSE_PAIRS_CLASSES else _SparsePairs(k)
        self.log_loss, self.labels, self.scores = 0.0, [], []
        self.weights, self.kept_weights = Weights(), []
        self.reliability = Reliability()

    def add(self, y_true, proba, y_pred=None, weight=None):
        y_true = np.asarray(y_true, dtype=np.int64)
        proba = np.asarray(proba, dtype=np.float64)
        y_pred = proba.argmax(axis=1) if y_pred is None else np.asarray(y_pred, dtype=np.int64)
        w = self.weights.add(weight, len(y_true))
        self.pairs.add(y_true, y_pred, w)
        self.reliability.add(y_true, proba, y_pred, w)
        log_p = np.log(np.clip(proba[np.arange(len(y_true)), y_true], 1e-12, 1.0))
        self.log_loss -= float(log_p.sum() if w is None else (w * log_p).sum())
        k = len(self.classes)
        if k <= ROC_AUC_CLASSES:
            self.labels.append(y_true.astype(np.min_scalar_type(k - 1)))
            self.scores.append((proba[:, 1] if k == 2 else proba).astype(np.float32))
            if w is not None:
                self.kept_weights.append(w)

    def report(self):
        """The report dict. Up to ``FULL_REPORT_CLASSES`` classes: ``classes``, ``per_class``
        for every class and the full ``confusion_matrix``. Beyond: ``n_classes``;
        ``per_class`` for the ``LISTED`` classes with the most rows; ``macro_avg`` and
        ``weighted_avg`` of precision, recall and F1 (macro over the classes that occur as
        truth or prediction, weighted by rows, or with weights by their sums); ``top_confusions``,
        the ``LISTED`` most frequent (true, predicted) pairs of different classes; ``left_out``,
        how many classes and such pairs the lists leave out; and ``roc_auc`` NaN past
        ``ROC_AUC_CLASSES``."""
        k = len(self.classes)
        true, pred, count, weight = self.pairs.triples()
        n = int(count.sum())
        total = self.weights.total(n)
        right = (count if weight is None else weight)[true == pred].sum()
        stats = _per_class(true, pred, count, k, weight)
        head = {"task": "classification", "rows": n, **self.weights.report()}
        scores = {"accuracy": float(right / total) if n else float("nan"),
                  "cross_entropy": self.log_loss / total if n else float("nan"),
                  "roc_auc": self._roc_auc(n), **self.reliability.report()}
        if self.figures is not None and k <= ROC_AUC_CLASSES:
            scores["merit"] = self._merit(n)
        if k <= FULL_REPORT_CLASSES:
            confusion = np.zeros((k, k), dtype=np.int64)
            confusion[true, pred] = count
            matrices = {"confusion_matrix": confusion.tolist()}
            if weight is not None:
                confusion = np.zeros((k, k))
                confusion[true, pred] = weight
                matrices["confusion_matrix_weighted"] = confusion.tolist()
            return {**head, "classes": list(self.classes), **scores,
                    "per_class": {name: _class_entry(stats, i)
                                  for i, name in enumerate(self.classes)},
                    **matrices}
        return {**head, "n_classes": k, **scores,
                **self._summary(stats, true, pred, count, weight)}

    def _summary(self, stats, true, pred, count, weight):
        support = stats["support"]
        listed = np.argsort(-support, kind="stable")[:LISTED]
        occurs = (support > 0) | (stats["predicted"] > 0)
        wrong = np.flatnonzero(true != pred)
        worst = wrong[np.argsort(-count[wrong], kind="stable")[:LISTED]]
        return {
            "macro_avg": _average(stats, occurs.astype(np.float64)),
            "weighted_avg": _average(stats, stats.get("sum_of_weights",
                                                      support.astype(np.float64))),
            "per_class": {self.classes[i]: _class_entry(stats, i) for i in listed},
            "top_confusions": [{"true": self.classes[true[j]],
                                "predicted": self.classes[pred[j]], "count": int(count[j]),
                                **({} if weight is None else
                                   {"sum_of_weights": float(weight[j])})}
                               for j in worst],
            "left_out": {"classes": len(self.classes) - len(listed),
                         "confusions": len(wrong) - len(worst)},
        }

    def _merit(self, n):
        """The figures of merit (:class:`~fcnn_cli.network.merit.Figures`) of the rows' kept
        scores."""
        k = len(self.classes)
        labels = np.concatenate(self.labels) if n else np.zeros(0, np.int64)
        weight = np.concatenate(self.kept_weights) if self.kept_weights else None
        scores = np.concatenate(self.scores) if n else np.zeros((0, k) if k > 2 else 0)
        return self.figures.report(labels.astype(np.int64), scores, weight, self.classes)

    def _roc_auc(self, n):
        k = len(self.classes)
        if k > ROC_AUC_CLASSES:
            return float("nan")
        labels = np.concatenate(self.labels) if self.labels else np.zeros(0, np.int64)
        weight = np.concatenate(self.kept_weights) if self.kept_weights else None
        if k == 2:
            return roc_auc(labels == 1, np.concatenate(self.scores), weight) if n \
                else float("nan")
        scores = np.concatenate(self.scores) if n else np.zeros((0, k))
        aucs = [roc_auc(labels == i, scores[:, i], weight) for i in range(k)]
        aucs = [a for a in aucs if a == a]
        return float(np.mean(aucs)) if aucs else float("nan")


def _per_class(true, pred, count, k, weight=None):
    """Per class index: rows of it (support) and rows predicted as it, and precision, recall
    and F1 of the rows, or with ``weight`` (each pair's sum of weights) of the weights, then
    with each class's ``sum_of_weights``. A ratio with nothing to divide by counts as 0, as
    scikit-learn's default does."""
    support, predicted, hits = _sums(true, pred, count, k, np.int64)
    stats = {"support": support, "predicted": predicted}
    if weight is not None:
        support, predicted, hits = _sums(true, pred, weight, k, np.float64)
        stats["sum_of_weights"] = support
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted != 0, hits / np.where(predicted != 0, predicted, 1), 0.0)
        recall = np.where(support != 0, hits / np.where(support != 0, support, 1), 0.0)
        if weight is None:
            both = precision + recall
            f1 = np.where(both > 0, 2 * precision * recall / np.where(both > 0, both, 1), 0.0)
        else:  # scikit-learn's form, which holds for negative sums too
            both = support + predicted
            f1 = np.where(both != 0, 2 * hits / np.where(both != 0, both, 1), 0.0)
    return {**stats, "precision": precision, "recall": recall, "f1": f1}


def _sums(true, pred, amount, k, dtype):
    """Per class: the amount (rows or weights) of the pairs of it as truth, as prediction, and
    as both."""
    right = true == pred
    return tuple(np.bincount(index, weights=values, minlength=k).astype(dtype)
                 for index, values in ((true, amount), (pred, amount),
                                       (true[right], amount[right])))


def _class_entry(stats, i):
    entry = {"precision": float(stats["precision"][i]), "recall": float(stats["recall"][i]),
             "f1": float(stats["f1"][i]), "support": int(stats["support"][i])}
    if "sum_of_weights" in stats:
        entry["sum_of_weights"] = float(stats["sum_of_weights"][i])
    return entry


def _average(stats, weights):
    total = weights.sum()
    return {key: float((stats[key] * weights).sum() / total) if total else float("nan")
            for key in ("precision", "recall", "f1")}


class _DensePairs:
    """(true, predicted) counts, and with weights their sums, in a K × K matrix: for few
    classes, the quickest."""

    def __init__(self, k):
        self.k, self.counts, self.weights = k, np.zeros(k * k, dtype=np.int64), None

    def add(self, true, pred, weight=None):
        codes = true * self.k + pred
        self.counts += np.bincount(codes, minlength=self.k * self.k)
        if weight is not None:
            if self.weights is None:
                self.weights = np.zeros(self.k * self.k)
            self.weights += np.bincount(codes, weights=weight, minlength=self.k * self.k)

    def triples(self):
        """The pairs that occur, as (true classes, predicted classes, counts, sums of weights
        or None)."""
        codes = np.flatnonzero(self.counts)
        return (codes // self.k, codes % self.k, self.counts[codes],
                None if self.weights is None else self.weights[codes])


class _SparsePairs:
    """(true, predicted) counts, and with weights their sums, of the pairs that occur: at most
    one a row, whatever K."""

    def __init__(self, k):
        self.k = k
        self.codes, self.counts = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self.weights = None

    def add(self, true, pred, weight=None):
        codes, inverse = np.unique(np.concatenate([self.codes, true * self.k + pred]),
                                   return_inverse=True)
        inverse = inverse.ravel()
        ones = np.concatenate([self.counts, np.ones(len(true), np.int64)])
        self.counts = np.bincount(inverse, weights=ones, minlength=len(codes)).astype(np.int64)
        if weight is not None:
            held = np.zeros(len(self.codes)) if self.weights is None else self.weights
            self.weights = np.bincount(inverse, weights=np.concatenate([held, weight]),
                                       minlength=len(codes))
        self.codes = codes

    def triples(self):
        return self.codes // self.k, self.codes % self.k, self.counts, self.weights


def roc_auc(positive, score, weight=None):
    """Area under the ROC curve: the chance that a random positive outscores a random
    negative (ties count half), computed from ranks; with ``weight``, each pair of a positive
    and a negative counting the product of their weights (scikit-learn's ``roc_auc_score``
    with ``sample_weight``: the trapezoids under the weighted ROC curve), NaN where the
    positives' or the negatives' sum of weights is not positive, as there."""
    positive = np.asarray(positive, dtype=bool)
    if weight is not None:
        return _weighted_roc_auc(positive, np.asarray(score), np.asarray(weight, np.float64))
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    import pandas as pd

    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _weighted_roc_auc(positive, score, weight):
    """Σ over positives of w · (the negatives' weight below its score + half that at it), over
    (Σw of positives)(Σw of negatives): what the trapezoids sum to, tie groups taken whole."""
    # The area does not change with the weights' scale: in units of the largest, the products
    # below neither overflow (weights of 1e160) nor underflow (1e-300).
    top = np.abs(weight).max(initial=0.0)
    weight = weight / top if np.isfinite(top) and top > 0 else weight
    values, group = np.unique(score, return_inverse=True)
    group = group.ravel()
    pos = np.bincount(group, weights=np.where(positive, weight, 0.0), minlength=len(values))
    neg = np.bincount(group, weights=np.where(positive, 0.0, weight), minlength=len(values))
    w_pos, w_neg = pos.sum(), neg.sum()
    if not (w_pos > 0 and w_neg > 0):
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + neg / 2)).sum() / (w_pos * w_neg))
