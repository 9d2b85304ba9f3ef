"""The overtraining check at the end of a training, and the correlations of its inputs.

The check (:mod:`fcnn_cli.network.overtraining`) compares the network's outputs on rows it
trained on with its outputs on rows it never saw: for a classifier the probability of each row's
true class (two classes: p(second class), TMVA's score), class by class; for a regression each
label's residual, predicted − true in the label's units. Each side is a seeded uniform sample of
at most :data:`ROWS` rows of its split, weighted by the rows' event weights where the run has
them. Held out are the test rows, else the validation rows; in k-fold training, see
:func:`_check_folds`.

Why a bounded sample: the test's power grows with the rows, and past ~10⁵ a side it flags
differences of a per mille in the distributions that no analysis would call overtraining; the
cost stays that of predicting 2 × 10⁵ rows (well under a second on a CPU for the default
networks), however large the table. A streamed run reads its training and held-out rows once
more for it, as its metrics do.

The sample of training rows gives the Pearson correlation matrices of the features too,
weighted as the check is (:func:`correlations`), which the run saves beside its metrics for
the plots.
"""

import logging

import numpy as np

from fcnn_cli.data.categories import is_index
from fcnn_cli.network import overtraining
from fcnn_cli.results.ranking import pearson

log = logging.getLogger(__name__)

# Rows of each side of the check at most: the test's power and the cost (module docstring).
ROWS = 100_000
# Classes checked at most, the first ones: each brings a KS test and two histograms to
# metrics.json, and the chance that one of many passes the alarm by luck alone.
MAX_CLASSES = 20
# Classes or labels whose histograms metrics.json keeps, the first (those the plot draws): the
# two sides' sums of weights and their errors in 40 bins make some 5 kB a class, and a run of
# many classes must not write a file of hundreds of kB for panels nobody sees.
HISTOGRAMS = 4
# Features up to which the correlations are kept: the matrices grow with the square of the
# features, and past ~50 a matrix is no longer readable in a plot (the galaxies' 1 024 pixels
# would make a million numbers a class).
MAX_FEATURES = 50
# The random streams, under the run's seed, of the training and held-out samples, and of
# k-fold's sample and its halves: distinct, so that no two draws of a check repeat each other,
# and fixed, so that a run's seed gives its check again.
SPLIT_STREAMS = (0, 1)
FOLD_STREAMS = (2, 3)


def attach(result, data):
    """Run the check on a training's result (its metrics measured) and keep it in
    ``result.overtraining``, its warning logged and among ``result.warnings``; the training
    sample's correlations in ``result.correlations``."""
    found, train = check(result.predictor, data, result.config.seed)
    result.overtraining = found
    if found and "warning" in found:
        log.warning("%s", found["warning"])
        result.warnings.append(found["warning"])
    result.correlations = correlations(train, data.task, data.features)
    return result


def check(predictor, data, seed, rows=ROWS):
    """The check of a trained ``predictor`` on the prepared ``data`` (a table's, a streamed
    source's or k-fold's: see :func:`_check_folds`): at most ``rows`` training rows against at
    most ``rows`` held-out ones, each a uniform sample drawn with ``seed``. Returns (the check,
    the training sample (features, truth, event weights or None)); the check is
    :func:`fcnn_cli.network.overtraining.summary`'s dict with ``splits`` (the two compared),
    ``rows`` and ``non_finite`` (of each side); both are None where a side has no rows."""
    if getattr(data, "folds", None) is not None:
        return _check_folds(predictor, data, seed, rows)
    held = "test" if data.sizes["test"] else "val"
    if not data.sizes["train"] or not data.sizes[held]:
        return None, None
    splits = ("train", held)
    samples = [sample(data, split, rows, (seed, stream))
               for split, stream in zip(splits, SPLIT_STREAMS)]
    sides = [(_values(data.task, _outputs(predictor, x, data.scaled(split)), truth), truth, w)
             for (x, truth, w, _), split in zip(samples, splits)]
    return _compared(data.task, *sides, splits), samples[0][:3]


def _check_folds(predictor, data, seed, rows):
    """The check of k-fold training (``predictor``: the folds' networks): rows scored by a
    network that trained on them against rows scored by their own fold's network, which never
    saw them. The rows are a sample of the whole table (every row is in a fold), dealt at
    random into two halves, one for each side, so that no row is on both: the two samples are
    then independent, as the test assumes. The trained-on side takes one network (that of the
    next fold), not the mean of the K − 1 that trained on the row, as the folds' "train" metrics
    do: a mean of several networks is smoother than one network's output, and the test would
    take that smoothing for overtraining."""
    x, truth, weight, picked = sample(data, "val", rows, (seed, FOLD_STREAMS[0]))
    if len(picked) < 2:
        return None, None
    fold = data.folds.of_val()[picked]
    out = _outputs(predictor, x, data.scaled("val"))  # folds × rows × outputs
    k = len(out)
    rng = np.random.default_rng((seed, FOLD_STREAMS[1]))
    half = rng.permutation(len(picked)) < len(picked) // 2  # floor(n/2) rows drawn at random
    at = np.arange(len(picked))
    sides = []
    for rows_of, network in ((half, (fold + 1) % k), (~half, fold)):
        own = out[network[rows_of], at[rows_of]]
        sides.append((_values(data.task, own, truth[rows_of]), truth[rows_of],
                      None if weight is None else weight[rows_of]))
    found = _compared(data.task, *sides, ("trained on (in fold)", "out of fold"))
    return found, (x, truth, weight)


def sample(data, split, rows, seed):
    """(features, truth, event weights or None, the rows' positions in the split) of a
    uniform sample without replacement of at most ``rows`` rows of ``split``, drawn with
    ``seed`` before the split's chunks are read, so that a streamed split is read once and
    only the sampled rows are kept."""
    n = data.sizes[split]
    picked = np.sort(np.random.default_rng(seed).choice(n, min(n, rows), replace=False))
    parts, start = [], 0
    for x, truth, weight in data.chunks(split):
        lo, hi = np.searchsorted(picked, (start, start + len(x)))
        local = picked[lo:hi] - start
        parts.append((x[local], truth[local], None if weight is None else weight[local]))
        start += len(x)
    x, truth, weight = (None if p[0] is None else np.concatenate(p) for p in zip(*parts))
    return x, truth, weight, picked[:len(x)]


def _outputs(predictor, x, scaled):
    """The predictor's outputs of the rows ``x``, predicted in its own blocks of rows so that
    a sample of 10⁵ rows costs the memory of one block's activations, not of all of them."""
    step = predictor.chunk_rows
    blocks = ((None, x[i:i + step]) for i in range(0, len(x), step))
    out = [o for _, o in predictor.outputs_of(blocks, scaled=scaled)]
    return np.concatenate(out, axis=-2)


def _values(task, out, truth):
    """What the check compares of each row: its true class's probability (two classes: the
    second class's), or its residuals in the labels' units."""
    if task.kind == "classify":
        proba = task.proba(out)
        if proba.shape[1] == 2:
            return proba[:, 1]
        return proba[np.arange(len(proba)), np.asarray(truth, np.int64)]
    predicted = task.predictive(out)[0]
    return predicted - np.asarray(truth, np.float64).reshape(predicted.shape)


def _compared(task, train, test, splits):
    """The summary of the two sides, each (values, truth, weight), their rows with a
    non-finite value (of a network that diverged) left out and counted."""
    (a, a_truth, a_weight), (b, b_truth, b_weight) = (_finite(*side) for side in (train, test))
    if task.kind == "classify":
        classes = task.classes[:MAX_CLASSES]
        found = overtraining.per_class(a, a_truth, b, b_truth, classes, a_weight, b_weight)
        found["classes_left_out"] = len(task.classes) - len(classes)
    else:
        found = overtraining.per_label(a, b, task.targets, a_weight, b_weight)
    found.update(splits=list(splits), rows=[len(a), len(b)],
                 non_finite=[len(train[0]) - len(a), len(test[0]) - len(b)])
    return _compact(found)


def _compact(found):
    """The check as metrics.json keeps it: the histograms of the first :data:`HISTOGRAMS`
    groups alone, as sums of weights and their errors (the densities follow from them and the
    sides' sums of weights)."""
    for k, group in enumerate(found["groups"].values()):
        hist = group.pop("histograms")
        if k < HISTOGRAMS:
            group["histograms"] = {"edges": hist["edges"], **{
                side: {key: v for key, v in hist[side].items() if not key.startswith("density")}
                for side in ("train", "test")}}
    return found


def _finite(values, truth, weight):
    """The side's rows whose compared values are all finite (the KS test takes no NaN)."""
    keep = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    return values[keep], truth[keep], None if weight is None else weight[keep]


def correlations(train, task, features):
    """The Pearson correlation matrices of the features on the training sample ``train``
    ((features, truth, event weights or None); the features' columns first), weighted by the
    event weights where the run has them (:func:`fcnn_cli.results.ranking.pearson`): one a
    class of a classifier (the first :data:`MAX_CLASSES` that have rows), one of every row of
    a regression. None above :data:`MAX_FEATURES` features or without rows. The features may
    have been through the scaler: its shift and positive scale leave a correlation as it is
    in the raw units. A level's index (a categorical feature's of many levels) is no quantity
    to correlate: it is left out."""
    if train is None:
        return None
    columns = [i for i, name in enumerate(features) if not is_index(name)]
    features = [features[i] for i in columns]
    if not features:
        return None
    if len(features) > MAX_FEATURES:
        log.info("the correlations of the inputs are not kept: %d features, more than %d",
                 len(features), MAX_FEATURES)
        return None
    x, truth, weight = train
    x = np.asarray(x[:, columns], np.float64)
    groups = [("all rows", np.ones(len(x), bool))]
    if task.kind == "classify":
        groups = [(str(c), truth == k) for k, c in enumerate(task.classes)]
        groups = [(name, rows) for name, rows in groups if rows.any()][:MAX_CLASSES]
    matrices = [_matrix(name, x[rows], None if weight is None else weight[rows])
                for name, rows in groups]
    return {"features": list(features), "weighted": weight is not None, "matrices": matrices}


def _matrix(title, x, weight):
    """One matrix of correlations.json: its ``title``, ``rows``, ``sum_of_weights`` where
    weighted, and the ``matrix`` as lists (NaN as None: JSON has no NaN)."""
    w = np.ones(len(x)) if weight is None else np.asarray(weight, np.float64).reshape(-1)
    out = {"title": title, "rows": len(x)}
    if weight is not None:
        out["sum_of_weights"] = float(w.sum())
    out["matrix"] = [[None if v != v else float(v) for v in row] for row in pearson(x, w)]
    return out
