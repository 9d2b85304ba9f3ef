"""Metric reports: plain dicts of numbers, ready for JSON."""

import math
import re
from statistics import NormalDist

import numpy as np

from fcnn_cli.core.errors import FcnnError

_COORDINATE = re.compile(r"^(.*?)([xyz])(.*)$", re.IGNORECASE)


def regression(y_true, y_pred, names, units=None, position=None):
    """MSE, RMSE, MAE and R² per target and overall; for position targets also distances."""
    report = Regression(names, units, position)
    report.add(y_true, y_pred)
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
    median and percentiles are the sample's; the mean and maximum stay exact."""

    def __init__(self, names, units=None, position=None, sample=None):
        self.names, self.units = list(names), units or {}
        k = len(self.names)
        self.rows, self.squared, self.absolute = 0, np.zeros(k), np.zeros(k)
        self.mean, self.m2 = np.zeros(k), np.zeros(k)
        self.point = position_of(self.names, self.units, position)
        self.position = self.point is not None
        self.distances, self.distance_sum, self.distance_max = [], 0.0, -np.inf
        self.sample = sample and _Sample(sample)
        self.calibration = None  # a Calibration, once rows come with a standard deviation

    def add(self, y_true, y_pred, y_std=None):
        """Rows of labels and predictions; ``y_std``, a predicted standard deviation per
        value, adds the uncertainty report."""
        if y_std is not None:
            self.calibration = self.calibration or Calibration(self.names)
            self.calibration.add(y_true, y_pred, y_std)
        y_true = np.asarray(y_true, dtype=np.float64)
        err = np.asarray(y_pred, dtype=np.float64) - y_true
        n = len(y_true)
        if not n:
            return
        self.squared += (err ** 2).sum(axis=0)
        self.absolute += np.abs(err).sum(axis=0)
        mean = y_true.mean(axis=0)
        delta, total = mean - self.mean, self.rows + n
        self.m2 += ((y_true - mean) ** 2).sum(axis=0) + delta ** 2 * self.rows * n / total
        self.mean += delta * n / total
        self.rows = total
        if self.position:
            distance = np.sqrt((err[:, self.point] ** 2).sum(axis=1))
            if self.sample:
                self.sample.add(distance)
            else:
                self.distances.append(distance)  # float64: float32 overflows past 3.4e38
            self.distance_sum += float(distance.sum())
            self.distance_max = max(self.distance_max, float(distance.max()))

    def report(self):
        n, k = self.rows, len(self.names)
        with np.errstate(invalid="ignore", divide="ignore"):
            mse, mae, variance = self.squared / n, self.absolute / n, self.m2 / n
        per_target = {
            name: {"mse": float(mse[i]), "rmse": float(mse[i]) ** 0.5, "mae": float(mae[i]),
                   "r2": 1.0 - float(mse[i]) / variance[i] if variance[i] > 0 else float("nan"),
                   "unit": self.units.get(name, "")}
            for i, name in enumerate(self.names)}
        overall = float(self.squared.sum() / (n * k)) if n else float("nan")
        report = {
            "task": "regression",
            "rows": int(n),
            "targets": per_target,
            "overall": {
                "mse": overall,
                "rmse": overall ** 0.5,
                "mae": float(self.absolute.sum() / (n * k)) if n else float("nan"),
                "r2": float(np.mean([m["r2"] for m in per_target.values()])),
            },
        }
        if self.position and n:
            distance = self.sample.values() if self.sample else np.concatenate(self.distances)
            of = [self.names[i] for i in self.point]
            report["distance"] = {
                "of": of,
                "unit": self.units.get(of[0], ""),
                "mean": self.distance_sum / n,
                "median": float(np.median(distance)),
                "p68": float(np.percentile(distance, 68)),
                "p95": float(np.percentile(distance, 95)),
                "max": self.distance_max,
            }
        if self.calibration is not None:
            report["uncertainty"] = self.calibration.report()
        return report


class _Sample:
    """A uniform random sample of at most ``size`` values without replacement: each value
    drawn a random key, those of the ``size`` smallest keys kept (compacted once twice as many
    are held, so that adding costs little)."""

    def __init__(self, size):
        self.size, self.rng = size, np.random.default_rng(0)
        self.kept, self.keys = [], []
        self.held = 0

    def add(self, values):
        self.kept.append(values)
        self.keys.append(self.rng.random(len(values)))
        self.held += len(values)
        if self.held > 2 * self.size:
            self._compact()

    def _compact(self):
        values, keys = np.concatenate(self.kept), np.concatenate(self.keys)
        if len(values) > self.size:
            smallest = np.argpartition(keys, self.size - 1)[:self.size]
            values, keys = values[smallest], keys[smallest]
        self.kept, self.keys, self.held = [values], [keys], len(values)

    def values(self):
        self._compact()
        return self.kept[0]


# Central intervals whose share of labels the calibration table compares with their level.
CALIBRATION_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.683, 0.7, 0.8, 0.9, 0.954, 0.99)
_erf = np.frompyfunc(math.erf, 1, 1)


def normal_cdf(z):
    return 0.5 * (1.0 + _erf(np.asarray(z, np.float64) / math.sqrt(2.0)).astype(np.float64))


def gaussian_nll(y, mean, std):
    """−log N(y; mean, std²) per value."""
    z = (y - mean) / std
    return 0.5 * z ** 2 + np.log(std) + 0.5 * math.log(2 * math.pi)


def gaussian_crps(y, mean, std):
    """The continuous ranked probability score of N(mean, std²) for y, in closed form:
    σ [z (2Φ(z) − 1) + 2φ(z) − 1/√π] with z = (y − mean)/σ."""
    z = (y - mean) / std
    pdf = np.exp(-0.5 * z ** 2) / math.sqrt(2 * math.pi)
    return std * (z * (2 * normal_cdf(z) - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


class Calibration:
    """How well predicted Gaussians (a mean and a standard deviation per value) describe the
    labels, over rows in chunks: mean negative log-likelihood, CRPS and σ per label, and the
    share of labels within each central interval of ``CALIBRATION_LEVELS`` (±1σ is 68.3 %,
    ±2σ 95.4 % for a calibrated model)."""

    def __init__(self, names):
        self.names, k = list(names), len(names)
        self.rows, self.nll, self.crps, self.sigma = 0, np.zeros(k), np.zeros(k), np.zeros(k)
        self.half_widths = np.array([NormalDist().inv_cdf(0.5 + p / 2)
                                     for p in CALIBRATION_LEVELS])
        self.within = np.zeros((len(CALIBRATION_LEVELS), k), np.int64)
        self.sigmas = np.zeros((2, k), np.int64)  # within ±1σ and ±2σ

    def add(self, y, mean, std):
        y, mean = np.asarray(y, np.float64), np.asarray(mean, np.float64)
        std = np.maximum(np.asarray(std, np.float64), np.finfo(np.float64).tiny)
        self.rows += len(y)
        self.nll += gaussian_nll(y, mean, std).sum(axis=0)
        self.crps += gaussian_crps(y, mean, std).sum(axis=0)
        self.sigma += std.sum(axis=0)
        z = np.abs(y - mean) / std
        self.within += (z[None] <= self.half_widths[:, None, None]).sum(axis=1)
        self.sigmas += (z[None] <= np.array([1.0, 2.0])[:, None, None]).sum(axis=1)

    def report(self):
        n = max(self.rows, 1)

        def per_label(values):
            return {name: float(values[i]) for i, name in enumerate(self.names)}
        within = self.within / n
        return {
            "nll": float(self.nll.sum() / (n * len(self.names))),
            "crps": float(self.crps.sum() / (n * len(self.names))),
            "mean_sigma": per_label(self.sigma / n),
            "coverage_1sigma": float(self.sigmas[0].sum() / (n * len(self.names))),
            "coverage_2sigma": float(self.sigmas[1].sum() / (n * len(self.names))),
            "per_label": {name: {"nll": float(self.nll[i] / n), "crps": float(self.crps[i] / n),
                                 "coverage_1sigma": float(self.sigmas[0, i] / n),
                                 "coverage_2sigma": float(self.sigmas[1, i] / n)}
                          for i, name in enumerate(self.names)},
            "calibration": [{"level": p, "observed": float(within[j].mean())}
                            for j, p in enumerate(CALIBRATION_LEVELS)],
        }


RELIABILITY_BINS = 10  # equal bins of confidence (the probability of the class decided on)


def entropy(proba):
    """The entropy (nats) of each row's class probabilities."""
    p = np.asarray(proba, np.float64)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)


class Reliability:
    """Expected calibration error and the reliability table of a classifier: rows binned by
    their confidence, each bin's mean confidence against its accuracy."""

    def __init__(self):
        self.count = np.zeros(RELIABILITY_BINS, np.int64)
        self.confidence, self.correct = np.zeros(RELIABILITY_BINS), np.zeros(RELIABILITY_BINS)
        self.entropy = 0.0

    def add(self, y_true, proba, y_pred):
        confidence = proba[np.arange(len(y_pred)), y_pred]
        bins = np.minimum((confidence * RELIABILITY_BINS).astype(np.int64), RELIABILITY_BINS - 1)
        self.count += np.bincount(bins, minlength=RELIABILITY_BINS)
        self.confidence += np.bincount(bins, confidence, RELIABILITY_BINS)
        self.correct += np.bincount(bins, (y_pred == y_true).astype(np.float64),
                                    RELIABILITY_BINS)
        self.entropy += float(entropy(proba).sum())

    def report(self):
        n = int(self.count.sum())
        used = self.count > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            confidence, accuracy = self.confidence / self.count, self.correct / self.count
        gaps = np.abs(accuracy - confidence)[used] * self.count[used]
        return {"ece": float(gaps.sum() / n) if n else float("nan"),
                "mean_entropy": self.entropy / n if n else float("nan"),
                "reliability": [{"low": i / RELIABILITY_BINS, "high": (i + 1) / RELIABILITY_BINS,
                                 "rows": int(self.count[i]), "confidence": float(confidence[i]),
                                 "accuracy": float(accuracy[i])}
                                for i in range(RELIABILITY_BINS) if used[i]]}


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


def classification(y_true, proba, classes, y_pred=None):
    """Accuracy, cross-entropy, per-class precision/recall/F1, confusion matrix and ROC AUC.

    ``y_true`` holds class indices, ``proba`` one column of probabilities per class; ``y_pred``
    defaults to the most probable class. The confusion matrix has a row per true class and a
    column per predicted class. ROC AUC is one-vs-rest, averaged over classes (macro) for more
    than two, and NaN where a class is absent or alone. Beyond ``FULL_REPORT_CLASSES`` classes
    the report is a summary: see :meth:`Classification.report`.
    """
    report = Classification(classes)
    report.add(y_true, proba, y_pred)
    return report.report()


class Classification:
    """The classification report over rows that arrive in chunks (``add``): running counts of
    (true, predicted) class pairs and a cross-entropy sum, and, up to ``ROC_AUC_CLASSES``
    classes, per row the class and the float32 scores that ROC AUC ranks (one for two
    classes, one per class for more)."""

    def __init__(self, classes):
        self.classes = list(classes)
        k = len(self.classes)
        self.pairs = _DensePairs(k) if k <= DENSE_PAIRS_CLASSES else _SparsePairs(k)
        self.log_loss, self.labels, self.scores = 0.0, [], []
        self.reliability = Reliability()

    def add(self, y_true, proba, y_pred=None):
        y_true = np.asarray(y_true, dtype=np.int64)
        proba = np.asarray(proba, dtype=np.float64)
        y_pred = proba.argmax(axis=1) if y_pred is None else np.asarray(y_pred, dtype=np.int64)
        self.pairs.add(y_true, y_pred)
        self.reliability.add(y_true, proba, y_pred)
        p_true = np.clip(proba[np.arange(len(y_true)), y_true], 1e-12, 1.0)
        self.log_loss -= float(np.log(p_true).sum())
        k = len(self.classes)
        if k <= ROC_AUC_CLASSES:
            self.labels.append(y_true.astype(np.min_scalar_type(k - 1)))
            self.scores.append((proba[:, 1] if k == 2 else proba).astype(np.float32))

    def report(self):
        """The report dict. Up to ``FULL_REPORT_CLASSES`` classes: ``classes``, ``per_class``
        for every class and the full ``confusion_matrix``. Beyond: ``n_classes``;
        ``per_class`` for the ``LISTED`` classes with the most rows; ``macro_avg`` and
        ``weighted_avg`` of precision, recall and F1 (macro over the classes that occur as
        truth or prediction, weighted by rows); ``top_confusions``, the ``LISTED`` most
        frequent (true, predicted) pairs of different classes; ``left_out``, how many
        classes and such pairs the lists leave out; and ``roc_auc`` NaN past
        ``ROC_AUC_CLASSES``."""
        k = len(self.classes)
        true, pred, count = self.pairs.triples()
        n = int(count.sum())
        correct = int(count[true == pred].sum())
        stats = _per_class(true, pred, count, k)
        head = {"task": "classification", "rows": n}
        scores = {"accuracy": correct / n if n else float("nan"),
                  "cross_entropy": self.log_loss / n if n else float("nan"),
                  "roc_auc": self._roc_auc(n), **self.reliability.report()}
        if k <= FULL_REPORT_CLASSES:
            confusion = np.zeros((k, k), dtype=np.int64)
            confusion[true, pred] = count
            return {**head, "classes": list(self.classes), **scores,
                    "per_class": {name: _class_entry(stats, i)
                                  for i, name in enumerate(self.classes)},
                    "confusion_matrix": confusion.tolist()}
        return {**head, "n_classes": k, **scores, **self._summary(stats, true, pred, count)}

    def _summary(self, stats, true, pred, count):
        support = stats["support"]
        listed = np.argsort(-support, kind="stable")[:LISTED]
        occurs = (support > 0) | (stats["predicted"] > 0)
        wrong = np.flatnonzero(true != pred)
        worst = wrong[np.argsort(-count[wrong], kind="stable")[:LISTED]]
        return {
            "macro_avg": _average(stats, occurs.astype(np.float64)),
            "weighted_avg": _average(stats, support.astype(np.float64)),
            "per_class": {self.classes[i]: _class_entry(stats, i) for i in listed},
            "top_confusions": [{"true": self.classes[true[j]],
                                "predicted": self.classes[pred[j]], "count": int(count[j])}
                               for j in worst],
            "left_out": {"classes": len(self.classes) - len(listed),
                         "confusions": len(wrong) - len(worst)},
        }

    def _roc_auc(self, n):
        k = len(self.classes)
        if k > ROC_AUC_CLASSES:
            return float("nan")
        labels = np.concatenate(self.labels) if self.labels else np.zeros(0, np.int64)
        if k == 2:
            return roc_auc(labels == 1, np.concatenate(self.scores)) if n else float("nan")
        scores = np.concatenate(self.scores) if n else np.zeros((0, k))
        aucs = [roc_auc(labels == i, scores[:, i]) for i in range(k)]
        aucs = [a for a in aucs if a == a]
        return float(np.mean(aucs)) if aucs else float("nan")


def _per_class(true, pred, count, k):
    """Per class index: rows of it (support), rows predicted as it, and precision, recall
    and F1, where a ratio with nothing to divide by counts as 0, as scikit-learn's default
    does."""
    support = np.bincount(true, weights=count, minlength=k).astype(np.int64)
    predicted = np.bincount(pred, weights=count, minlength=k).astype(np.int64)
    hits = np.bincount(true[true == pred], weights=count[true == pred],
                       minlength=k).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, hits / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, hits / np.maximum(support, 1), 0.0)
        both = precision + recall
        f1 = np.where(both > 0, 2 * precision * recall / np.where(both > 0, both, 1), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support,
            "predicted": predicted}


def _class_entry(stats, i):
    return {"precision": float(stats["precision"][i]), "recall": float(stats["recall"][i]),
            "f1": float(stats["f1"][i]), "support": int(stats["support"][i])}


def _average(stats, weights):
    total = weights.sum()
    return {key: float((stats[key] * weights).sum() / total) if total else float("nan")
            for key in ("precision", "recall", "f1")}


class _DensePairs:
    """(true, predicted) counts in a K × K matrix: for few classes, the quickest."""

    def __init__(self, k):
        self.k, self.counts = k, np.zeros(k * k, dtype=np.int64)

    def add(self, true, pred):
        self.counts += np.bincount(true * self.k + pred, minlength=self.k * self.k)

    def triples(self):
        """The pairs that occur, as (true classes, predicted classes, counts)."""
        codes = np.flatnonzero(self.counts)
        return codes // self.k, codes % self.k, self.counts[codes]


class _SparsePairs:
    """(true, predicted) counts of the pairs that occur: at most one a row, whatever K."""

    def __init__(self, k):
        self.k = k
        self.codes, self.counts = np.zeros(0, np.int64), np.zeros(0, np.int64)

    def add(self, true, pred):
        codes, inverse = np.unique(np.concatenate([self.codes, true * self.k + pred]),
                                   return_inverse=True)
        weights = np.concatenate([self.counts, np.ones(len(true), np.int64)])
        self.codes = codes
        self.counts = np.bincount(inverse.ravel(), weights=weights,
                                  minlength=len(codes)).astype(np.int64)

    def triples(self):
        return self.codes // self.k, self.codes % self.k, self.counts


def roc_auc(positive, score):
    """Area under the ROC curve: the chance that a random positive outscores a random
    negative (ties count half), computed from ranks."""
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    import pandas as pd

    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
