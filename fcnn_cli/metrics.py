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
