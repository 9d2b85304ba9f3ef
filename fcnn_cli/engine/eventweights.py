"""Event weights in training: each row's weight as the table gives it (a column the data's
recipe made: generator weights, corrections, a sample's normalisation; some may be negative),
and the weights training takes from it.

The rules are in docs/training.md ("Weighted events"): a weight must be a finite number; rows of
weight 0 weigh nothing anywhere and leave before the split; ``negative_weights`` makes the
training weights (as they are, negatives as 0, or |w|), and rows whose training weight is 0
leave the training rows; a class (or, in regression, the whole) whose training weights sum to
0 or less is an error; ``class_weight="balanced"`` balances the classes' sums; the loss
minimised is the mean over a minibatch of each row's loss times its training weight normalised
to a mean of 1 over the training rows. The validation loss takes the weights as they are (each
row's loss times its weight, over the sum of the weights). Where every training weight is the
same, and every validation weight, training takes the path of no weights, bit for bit.
"""

import logging

import numpy as np

from fcnn_cli.core.errors import FcnnError, shown
from fcnn_cli.data.columns import keep_rows, numeric_matrix

log = logging.getLogger(__name__)


def given(table, column):
    """The weights in ``column`` as float64; one that is missing or not finite is an error
    naming its row."""
    w = numeric_matrix(table, [column], np.float64, finite=False)[:, 0]
    bad = ~np.isfinite(w)
    if bad.any():
        row = int(np.argmax(bad))
        raise FcnnError(f"{table.name}: weight column {column!r} holds "
                        f"{shown(float(w[row]))} at row {table.row(row)} "
                        f"({int(bad.sum())} row(s) in all): an event weight "
                        "must be a finite number; nan='drop' leaves such rows out", ("nan",))
    return w


def weighed(table, column):
    """``table`` without its rows of weight 0, and the weights of the rest as given
    (:func:`given`)."""
    return without_zeros(table, given(table, column), column)


def without_zeros(table, w, column):
    """``table`` and ``w`` without the rows of weight 0, which weigh nothing in training, in
    the validation loss or in any metric: they leave every table before the split, as if
    never there."""
    zero = w == 0
    if not zero.any():
        return table, w
    if zero.all():
        raise FcnnError(f"{table.name}: every row has weight 0 (column {column!r}): nothing "
                        "to train on")
    log.info("%s: leaving out %d row(s) of weight 0 (column %r)", table.name,
             int(zero.sum()), column)
    return keep_rows(table, ~zero), w[~zero]


def for_training(w, policy):
    """The training weights under ``negative_weights``: "keep" (as they are), "zero"
    (negatives as 0) or "abs" (|w|)."""
    if policy == "zero":
        return np.where(w < 0, 0.0, w)
    if policy == "abs":
        return np.abs(w)
    return w


def check_sums(w, labels, name, column):
    """Refuse training weights ``w`` whose sum is not above 0: of a class (``labels``, each
    row's class name) or, in regression (``labels`` None), of all rows."""
    if labels is None:
        _check_sum(float(w.sum()), None, name, column)
        return
    for c, total in sorted(class_sums(w, labels).items()):
        _check_sum(total, c, name, column)


def class_sums(w, labels):
    """{class name: the sum of its rows' weights ``w``}, ``labels`` each row's class name (by
    hashing: sorting a million names takes several times longer)."""
    import pandas as pd

    index, classes = pd.factorize(np.asarray(labels, dtype=object))
    sums = np.bincount(index, weights=w, minlength=len(classes))
    return dict(zip(map(str, classes), sums.tolist()))


def _check_sum(total, label, name, column):
    if total > 0:
        return
    what = "the training rows weigh" if label is None else \
        f"class {label!r} weighs in its training rows"
    raise FcnnError(f"{name}: {what} {total:g} in all (column {column!r}): the weights must "
                    "sum to more than 0; negative_weights='zero' or 'abs' trains without "
                    "negatives", ("negative_weights",))


def uniform(*parts):
    """Whether every array of ``parts`` holds one value alone (or none)."""
    return all(not len(p) or bool((p == p[0]).all()) for p in parts)


def balanced(w, classes, count):
    """``class_weight="balanced"`` folded into the training weights ``w``: each row's weight
    times W / (count × W_c), W being the sum of all and W_c that of its class (``classes``,
    each row's class index), so that every class weighs the same in all."""
    sums = np.bincount(classes, weights=w, minlength=count)
    factors = np.divide(sums.sum(), count * sums, out=np.zeros(count), where=sums > 0)
    return w * factors[classes]


def normalised(w, what, column):
    """``w`` over its mean: a mean of 1, so that the loss of a minibatch is on the scale of an
    unweighted one whatever the weights' unit. ``what`` names the rows for the error where
    the weights sum to 0 or less, and no mean can stand for them."""
    total = float(w.sum())
    if not total > 0:
        raise FcnnError(f"{what} weigh {total:g} in all (column {column!r}): a weighted "
                        "mean over them needs a sum of weights above 0", ("weight",))
    return w * (len(w) / total)


class Tally:
    """What one pass over a streamed source learns of its weights, piece by piece: the
    training weights' sum by class (``None`` in regression) and their number, the validation
    weights' sum and number, whether each of the two varies, and how many rows left."""

    def __init__(self, column, policy):
        self.column, self.policy = column, policy
        self.sums, self.rows = {}, {"train": 0, "val": 0}
        self.zeros = self.negatives = 0  # rows of weight 0; training rows of training weight 0
        self.val_sum = 0.0
        self.first, self.varies = {}, {"train": False, "val": False}

    def add(self, part, w, labels=None):
        """Training weights (``part`` "train", each row's class name in ``labels``) or the
        validation weights as given ("val")."""
        if not len(w):
            return
        self.rows[part] += len(w)
        self.first.setdefault(part, w[0])
        self.varies[part] = self.varies[part] or not bool((w == self.first[part]).all())
        if part == "val":
            self.val_sum += float(w.sum())
            return
        if labels is None:
            self.sums[None] = self.sums.get(None, 0.0) + float(w.sum())
            return
        for c, total in class_sums(w, labels).items():
            self.sums[c] = self.sums.get(c, 0.0) + total

    @property
    def weighted(self):
        """Whether training takes the weights: some training or validation weights differ."""
        return self.varies["train"] or self.varies["val"]

    def check(self, name):
        """Say how many rows left, and refuse a class (or whole) that weighs 0 or less."""
        if self.zeros:
            log.info("%s: leaving out %d row(s) of weight 0 (column %r)", name, self.zeros,
                     self.column)
        if self.negatives:
            log.info("%s: %d training row(s) of negative weight left out "
                     "(negative_weights='zero')", name, self.negatives)
        for c, total in sorted(self.sums.items(), key=lambda item: str(item[0])):
            _check_sum(total, c, name, self.column)

    def weighting(self, task, config, val_name):
        """The :class:`Weighting` the rows of training and validation take."""
        if not self.weighted:
            return Weighting(self.column, self.policy)
        if not self.val_sum > 0:
            raise FcnnError(f"{val_name} weigh {self.val_sum:g} in all (column "
                            f"{self.column!r}): a weighted mean over them needs a sum of "
                            "weights above 0", ("weight",))
        total = sum(self.sums.values())
        factors = None
        if config.class_weight == "balanced" and task.kind == "classify":
            factors = np.array([total / (len(task.classes) * self.sums[c])
                                for c in task.classes])
        return Weighting(self.column, self.policy, True, self.rows["train"] / total,
                         self.rows["val"] / self.val_sum, factors)


class Weighting:
    """How a streamed source's rows take their weights, piece by piece: which rows leave
    (weight 0; in the training rows, training weight 0), and, where training is weighted,
    the weights the loss takes: the training weights (balanced by class ``factors``) times
    ``train_scale``, or the validation weights times ``val_scale``, a mean of 1 over each."""

    def __init__(self, column, policy, weighted=False, train_scale=1.0, val_scale=1.0,
                 factors=None):
        self.column, self.policy, self.weighted = column, policy, weighted
        self.train_scale, self.val_scale, self.factors = train_scale, val_scale, factors

    def kept(self, w, training):
        """Which rows of weights ``w`` stay (of training rows where ``training``)."""
        keep = w != 0
        return keep & (for_training(w, self.policy) != 0) if training else keep

    def of_loss(self, w, classes, training):
        """The weights the loss takes for rows of weights ``w`` (as given) and class indices
        ``classes`` (None in regression)."""
        if not training:
            return w * self.val_scale
        w = for_training(w, self.policy)
        if self.factors is not None:
            w = w * self.factors[classes]
        return w * self.train_scale

    def to_dict(self):
        """What the rows' weights depend on, for the fingerprint a run resumes on."""
        return {"column": self.column, "policy": self.policy, "weighted": self.weighted,
                "scales": [self.train_scale, self.val_scale],
                "factors": None if self.factors is None else self.factors.tolist()}
