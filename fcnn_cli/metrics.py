"""Metric reports: plain dicts of numbers, ready for JSON."""

import re

import numpy as np

_COORDINATE = re.compile(r"^(.*?)([xyz])(.*)$", re.IGNORECASE)


def regression(y_true, y_pred, names, units=None):
    """MSE, RMSE, MAE and R² per target and overall; for position targets also distances."""
    report = Regression(names, units)
    report.add(y_true, y_pred)
    return report.report()


class Regression:
    """The regression report over rows that arrive in chunks (``add``), in bounded memory:
    running sums, a running mean and variance of the labels (Chan's update), and one float32
    distance a row, kept only for position labels, for the exact median and percentiles."""

    def __init__(self, names, units=None):
        self.names, self.units = list(names), units or {}
        k = len(self.names)
        self.rows, self.squared, self.absolute = 0, np.zeros(k), np.zeros(k)
        self.mean, self.m2 = np.zeros(k), np.zeros(k)
        self.position = is_position(self.names, self.units)
        self.distances, self.distance_sum, self.distance_max = [], 0.0, -np.inf

    def add(self, y_true, y_pred):
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
            distance = np.sqrt((err ** 2).sum(axis=1))
            self.distances.append(distance.astype(np.float32))
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
            distance = np.concatenate(self.distances)
            report["distance"] = {
                "of": list(self.names),
                "unit": self.units.get(self.names[0], ""),
                "mean": self.distance_sum / n,
                "median": float(np.median(distance)),
                "p68": float(np.percentile(distance, 68)),
                "p95": float(np.percentile(distance, 95)),
                "max": self.distance_max,
            }
        return report


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


def classification(y_true, proba, classes, y_pred=None):
    """Accuracy, cross-entropy, per-class precision/recall/F1, confusion matrix and ROC AUC.

    ``y_true`` holds class indices, ``proba`` one column of probabilities per class; ``y_pred``
    defaults to the most probable class. The confusion matrix has a row per true class and a
    column per predicted class. ROC AUC is one-vs-rest, averaged over classes (macro) for more
    than two, and NaN where a class is absent or alone.
    """
    report = Classification(classes)
    report.add(y_true, proba, y_pred)
    return report.report()


class Classification:
    """The classification report over rows that arrive in chunks (``add``): a running
    confusion matrix and cross-entropy sum, and per row the class and the float32 scores that
    ROC AUC ranks (one for two classes, one per class for more)."""

    def __init__(self, classes):
        self.classes = list(classes)
        k = len(self.classes)
        self.confusion = np.zeros((k, k), dtype=np.int64)
        self.log_loss, self.labels, self.scores = 0.0, [], []

    def add(self, y_true, proba, y_pred=None):
        y_true = np.asarray(y_true, dtype=np.int64)
        proba = np.asarray(proba, dtype=np.float64)
        y_pred = proba.argmax(axis=1) if y_pred is None else np.asarray(y_pred)
        np.add.at(self.confusion, (y_true, y_pred), 1)
        p_true = np.clip(proba[np.arange(len(y_true)), y_true], 1e-12, 1.0)
        self.log_loss -= float(np.log(p_true).sum())
        self.labels.append(y_true.astype(np.min_scalar_type(len(self.classes) - 1)))
        self.scores.append((proba[:, 1] if len(self.classes) == 2 else proba)
                           .astype(np.float32))

    def report(self):
        confusion, k = self.confusion, len(self.classes)
        n = int(confusion.sum())
        per_class = {}
        for i, name in enumerate(self.classes):
            tp = confusion[i, i]
            predicted, actual = confusion[:, i].sum(), confusion[i, :].sum()
            # Where a ratio has nothing to divide by it counts as 0, as scikit-learn's default
            # does.
            precision = tp / predicted if predicted else 0.0
            recall = tp / actual if actual else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            per_class[name] = {"precision": float(precision), "recall": float(recall),
                               "f1": float(f1), "support": int(actual)}
        labels = np.concatenate(self.labels) if self.labels else np.zeros(0, np.int64)
        if k == 2:
            auc = roc_auc(labels == 1, np.concatenate(self.scores)) if n else float("nan")
        else:
            scores = np.concatenate(self.scores) if n else np.zeros((0, k))
            aucs = [roc_auc(labels == i, scores[:, i]) for i in range(k)]
            aucs = [a for a in aucs if a == a]
            auc = float(np.mean(aucs)) if aucs else float("nan")
        return {
            "task": "classification",
            "rows": n,
            "classes": list(self.classes),
            "accuracy": float(np.trace(confusion) / n) if n else float("nan"),
            "cross_entropy": self.log_loss / n if n else float("nan"),
            "roc_auc": auc,
            "per_class": per_class,
            "confusion_matrix": confusion.tolist(),
        }


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
