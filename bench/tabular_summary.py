"""The arithmetic of the tabular benchmark's figures: scores, their mean and standard error over
seeds, who is within one standard error of the best on a table, and mean ranks.

Each table is judged by one score: ROC AUC for two classes, accuracy for more, RMSE for
regression (lower is better). A method is within one standard error of the best when the
difference of the two means is at most the standard error of that difference,
√(SE_method² + SE_best²): a method that gives the same result for every seed (SE 0) is then
compared with the best's spread alone. Ranks are by mean score on each table (1 the best, tied
methods share the mean of their ranks); a method's mean rank is over the tables it ran on.
"""

import math

import numpy as np

HIGHER_IS_BETTER = {"auc": True, "accuracy": True, "rmse": False}


def score_name(kind, classes):
    """The score that judges a table."""
    if kind == "regress":
        return "rmse"
    return "auc" if classes == 2 else "accuracy"


def scores(kind, truth, out):
    """{"accuracy", "auc"} of class probabilities, or {"rmse"} over all labels."""
    if kind == "regress":
        return {"rmse": float(np.sqrt(np.mean((np.asarray(out) - truth) ** 2)))}
    from sklearn.metrics import roc_auc_score

    out = np.asarray(out, np.float64)
    auc = roc_auc_score(truth, out[:, 1]) if out.shape[1] == 2 else \
        roc_auc_score(truth, out / out.sum(1, keepdims=True), multi_class="ovr",
                      labels=np.arange(out.shape[1]))
    return {"accuracy": float(np.mean(out.argmax(1) == truth)), "auc": float(auc)}


def mean_se(values):
    """Mean and standard error of the mean (0 for one value)."""
    values = np.asarray(values, np.float64)
    se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), float(se)


def judged(table, higher):
    """For one table's {method: [score per seed]}: {method: (mean, se, within, rank)}."""
    stats = {m: mean_se(v) for m, v in table.items()}
    sign = 1.0 if higher else -1.0
    best = max(stats, key=lambda m: sign * stats[m][0])
    best_mean, best_se = stats[best]
    ranks = _ranks({m: -sign * mean for m, (mean, _) in stats.items()})
    return {m: (mean, se, abs(mean - best_mean) <= math.hypot(se, best_se) + 1e-12, ranks[m])
            for m, (mean, se) in stats.items()}


def _ranks(costs):
    """Rank 1 for the lowest cost; ties share the mean of the ranks they span."""
    order = sorted(costs.values())
    return {m: order.index(c) + (order.count(c) + 1) / 2 for m, c in costs.items()}


def summary(judgements):
    """From {table: judged(...)}: {method: (tables within one SE of the best, tables run,
    mean rank)}."""
    methods = {m for table in judgements.values() for m in table}
    out = {}
    for m in methods:
        rows = [table[m] for table in judgements.values() if m in table]
        out[m] = (sum(row[2] for row in rows), len(rows),
                  float(np.mean([row[3] for row in rows])))
    return out
