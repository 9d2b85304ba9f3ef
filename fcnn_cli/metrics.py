"""Metric reports: plain dicts of numbers, ready for JSON."""

import re

import numpy as np

_COORDINATE = re.compile(r"^(.*?)([xyz])(.*)$", re.IGNORECASE)


def regression(y_true, y_pred, names, units=None):
    """MSE, RMSE, MAE and R² per target and overall; for position targets also distances."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    units = units or {}
    err = y_pred - y_true
    per_target = {}
    for i, name in enumerate(names):
        mse = float(np.mean(err[:, i] ** 2))
        variance = float(np.var(y_true[:, i]))
        per_target[name] = {
            "mse": mse,
            "rmse": mse ** 0.5,
            "mae": float(np.mean(np.abs(err[:, i]))),
            "r2": 1.0 - mse / variance if variance > 0 else float("nan"),
            "unit": units.get(name, ""),
        }
    mse = float(np.mean(err ** 2))
    report = {
        "task": "regression",
        "rows": int(len(y_true)),
        "targets": per_target,
        "overall": {
            "mse": mse,
            "rmse": mse ** 0.5,
            "mae": float(np.mean(np.abs(err))),
            "r2": float(np.mean([m["r2"] for m in per_target.values()])),
        },
    }
    if is_position(names, units):
        distance = np.sqrt(np.sum(err ** 2, axis=1))
        report["distance"] = {
            "of": list(names),
            "unit": units.get(names[0], ""),
            "mean": float(np.mean(distance)),
            "median": float(np.median(distance)),
            "p68": float(np.percentile(distance, 68)),
            "p95": float(np.percentile(distance, 95)),
            "max": float(np.max(distance)),
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
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    y_pred = proba.argmax(axis=1) if y_pred is None else np.asarray(y_pred)
    k = len(classes)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_class = {}
    for i, name in enumerate(classes):
        tp = confusion[i, i]
        predicted, actual = confusion[:, i].sum(), confusion[i, :].sum()
        # Where a ratio has nothing to divide by it counts as 0, as scikit-learn's default does.
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall),
                           "f1": float(f1), "support": int(actual)}
    p_true = np.clip(proba[np.arange(len(y_true)), y_true], 1e-12, 1.0)
    if k == 2:
        auc = roc_auc(y_true == 1, proba[:, 1])
    else:
        aucs = [roc_auc(y_true == i, proba[:, i]) for i in range(k)]
        aucs = [a for a in aucs if a == a]
        auc = float(np.mean(aucs)) if aucs else float("nan")
    return {
        "task": "classification",
        "rows": int(len(y_true)),
        "classes": list(classes),
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else float("nan"),
        "cross_entropy": float(-np.mean(np.log(p_true))) if len(y_true) else float("nan"),
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
