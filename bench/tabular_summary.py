"""The arithmetic of the tabular benchmark's figures: scores, their mean and standard error over
seeds, who is within one standard error of the best on a table, and mean ranks.

Each table is judged by one score: ROC AUC for two classes, accuracy for more, RMSE for
regression (lower is better). The best method has the best mean score over the seeds. A method
is within one standard error of the best when the difference of the two means is at most the
standard error of that difference, found by a paired bootstrap over the test rows: RESAMPLES
resamples of the test rows, drawn once per table (seeded) and the same for every method; on
each, every seed's predictions are scored and the scores averaged over the seeds; the standard
deviation over the resamples of (method's average − best's average) is the standard error.
It measures the noise of a test split of few rows, which a spread over seeds misses (a
deterministic method has none), and pairing the methods on the same rows takes out what the
rows do to all alike. Ranks are by mean score on each table (1 the best, tied methods share the
mean of their ranks); a method's mean rank is over the tables it ran on.
"""

import dataclasses
import math

import numpy as np

import trees

HIGHER_IS_BETTER = {"auc": True, "accuracy": True, "rmse": False}
RESAMPLES, BOOTSTRAP_SEED = 1000, 0


@dataclasses.dataclass(frozen=True)
class Judged:
    """One method on one table, in the score that judges it."""

    mean: float  # over the seeds
    se: float  # of that mean, over the seeds
    behind: float  # the best's mean less this one's (higher is better), ≥ 0
    behind_se: float  # its standard error, by the paired bootstrap
    within: bool
    rank: float


def score_name(kind, classes):
    """The score that judges a table."""
    if kind == "regress":
        return "rmse"
    return "auc" if classes == 2 else "accuracy"


def scores(kind, truth, out):
    """{"accuracy", "auc"} of class probabilities, or {"rmse"} over all labels."""
    if kind == "regress":
        return {"rmse": trees.rmse(truth, out)}
    from sklearn.metrics import roc_auc_score

    out = np.asarray(out, np.float64)
    auc = roc_auc_score(truth, out[:, 1]) if out.shape[1] == 2 else \
        roc_auc_score(truth, out / out.sum(1, keepdims=True), multi_class="ovr",
                      labels=np.arange(out.shape[1]))
    return {"accuracy": trees.accuracy(truth, out), "auc": float(auc)}


def mean_se(values):
    """Mean and standard error of the mean (0 for one value)."""
    values = np.asarray(values, np.float64)
    se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), float(se)


def resamples(rows, count=RESAMPLES, seed=BOOTSTRAP_SEED):
    """How often each of ``rows`` test rows is drawn in each of ``count`` bootstrap resamples:
    count × rows."""
    drawn = np.random.default_rng(seed).integers(0, rows, (count, rows))
    flat = (drawn + rows * np.arange(count)[:, None]).ravel()
    return np.bincount(flat, minlength=count * rows).reshape(count, rows).astype(np.float64)


def resampled(score, truth, out, counts):
    """``score`` of the outputs ``out`` on each resample (a row of ``counts``)."""
    out = np.asarray(out, np.float64)
    if score == "rmse":
        errors = ((out - truth) ** 2).reshape(len(truth), -1).mean(1)
        return np.sqrt(counts @ errors / counts.sum(1))
    if score == "accuracy":
        return counts @ (out.argmax(1) == truth) / counts.sum(1)
    return _auc(truth == 1, out[:, 1], counts)


def _auc(positive, signal, counts):
    """Two-class ROC AUC on each resample: the chance that a positive row outscores a negative
    one, ties counting half, each row weighted by how often it is drawn."""
    order = np.argsort(signal, kind="stable")
    signal, positive, counts = signal[order], positive[order], counts[:, order]
    # Each row's tie group, [first, last] in the sorted order.
    first = np.searchsorted(signal, signal, side="left")
    last = np.searchsorted(signal, signal, side="right")
    negatives = np.concatenate([np.zeros((len(counts), 1)),
                                np.cumsum(counts * ~positive, 1)], 1)
    below, tied = negatives[:, first], negatives[:, last] - negatives[:, first]
    wins = (counts * positive * (below + 0.5 * tied)).sum(1)
    return wins / ((counts * positive).sum(1) * (counts * ~positive).sum(1))


def judged(score, truth, outputs, seed_scores):
    """One table's {method: Judged}: ``outputs`` {method: [test outputs per seed]},
    ``seed_scores`` {method: [score per seed]} in ``score``."""
    sign = 1.0 if HIGHER_IS_BETTER[score] else -1.0
    stats = {m: mean_se(v) for m, v in seed_scores.items()}
    best = max(stats, key=lambda m: sign * stats[m][0])
    counts = resamples(len(truth))
    boot = {m: np.mean([resampled(score, truth, out, counts) for out in runs], 0)
            for m, runs in outputs.items()}
    ranks = _ranks({m: -sign * mean for m, (mean, _) in stats.items()})
    out = {}
    for m, (mean, se) in stats.items():
        behind = max(0.0, sign * (stats[best][0] - mean))
        behind_se = float(np.std(boot[best] - boot[m], ddof=1))
        out[m] = Judged(mean, se, behind, behind_se, behind <= behind_se + 1e-12, ranks[m])
    return out


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
        out[m] = (sum(row.within for row in rows), len(rows),
                  float(np.mean([row.rank for row in rows])))
    return out
