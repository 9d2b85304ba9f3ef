"""Preparing a table for training: its columns and task, the split, and the feature scaler.

Everything here is numpy: the splits leave as arrays, and the training engine turns them into
tensors on its device.
"""

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fcnn_cli.engine import eventweights, folds as kfold
from fcnn_cli.network import tasks
from fcnn_cli.network.digest import RowsDigest, hash_arrays
from fcnn_cli.core.errors import FcnnError, TooFewRows, listed
from fcnn_cli.data.categories import Categories, encode_tables
from fcnn_cli.data.missing import Filler
from fcnn_cli.data.preprocess import Scaler
from fcnn_cli.data.columns import drop_incomplete, numeric_matrix, numeric_rows, select_columns

SPLITS = ("train", "val", "test")

log = logging.getLogger(__name__)


@dataclass
class Split:
    x: np.ndarray  # features, float32: raw, or through the scaler where ``scaled``
    y: np.ndarray  # labels as the network learns them (standardised values, class indices),
    # with each row's training weight where the task is weighted (tasks.pack)
    truth: np.ndarray  # labels as the metrics compare them (own units, class indices)
    scaled: bool = False
    weight: np.ndarray | None = None  # each row's event weight as given, for the metrics
    raw: np.ndarray | None = None  # the features before scaling, kept where a baseline fits

    def __len__(self):
        return len(self.x)


@dataclass
class Prepared:
    """A table made ready to train on; ``splits`` maps "train", "val", "test" to a Split."""

    features: list
    targets: list
    task: object  # tasks.Regression or tasks.Classification, fitted on the training rows
    x_scaler: Scaler
    splits: dict
    units: dict
    digest: str  # fingerprint of the rows that training and validation see
    x_range: dict  # "min" and "max" of each training input
    rows_digest: str = ""  # RowsDigest of the table trained on, all its splits
    filler: Filler | None = None  # nan="fill": how missing feature values are filled
    folds: kfold.FoldRows | None = None  # k-fold training: each row's fold, by split
    separate: tuple = ()  # the splits read from tables of their own ("val", "test")
    categories: Categories | None = None  # the levels of the categorical features' inputs
    distance_sample = None  # rows in memory: the metrics' percentiles are exact

    @property
    def kind(self):
        return self.task.kind

    @property
    def inputs(self):
        return inputs(self.features, self.filler)

    @property
    def sizes(self):
        return {name: len(self.splits[name]) for name in SPLITS}

    def chunks(self, name):
        """(features, labels as metrics take them, event weights or None) of split ``name``:
        here one chunk; the features are raw unless :meth:`scaled`."""
        split = self.splits[name]
        yield split.x, split.truth, split.weight

    def scaled(self, name):
        """Whether split ``name``'s features have been through the scaler: the training
        split's are, in place, so that training holds them once."""
        return self.splits[name].scaled

    def on(self, device):
        """The training and validation rows as the loop takes them, on ``device``."""
        from fcnn_cli.engine.loop import Tensors

        return Tensors.of(self, device)

    def feature_range(self):
        return self.x_range


def inputs(features, filler):
    """The network's inputs: the features, then (``nan="fill"``) their missing-value
    indicators."""
    return list(features) + (filler.indicators if filler else [])


def prepare(table, config, targets=None, features=None, val_table=None, test_table=None,
            consume=False, weight=None, categorical=None, stratify=True):
    """Columns, task, split and scaler for ``table`` under a TrainConfig.

    ``val_table`` and ``test_table`` replace the validation and the test split: no rows of
    ``table`` are held out for them. With ``consume`` the columns used leave ``table`` as they
    are converted: for a caller that hands the table over, as the command line does.
    ``weight`` names the column of each row's event weight (of every table given), which
    training and every metric then take (:mod:`fcnn_cli.engine.eventweights`).
    ``categorical`` names feature columns to encode as levels, besides those of text,
    booleans or a categorical dtype (:mod:`fcnn_cli.data.categories`).
    ``stratify`` False leaves a classification's k-fold folds by position unstratified, as a
    run saved before they were stratified dealt them (:func:`fcnn_cli.engine.folds.stratifies`).
    """
    if len(table.frame) < 2:
        raise TooFewRows(f"{table.name}: too few rows ({len(table.frame)}) to train on",
                         len(table.frame))
    rule = kfold.rule_of(config, val_table)
    kfold.check_column(table, rule, targets or table.targets, weight)
    features, targets = select_columns(kfold.hidden(table, rule, features), targets, features,
                                       weight, named=categorical or ())
    columns = features + targets
    weights = [weight] if weight is not None else []
    for other in (val_table, test_table):
        if other is not None:
            require_columns(other, columns + weights)
    # A row without a value in the fold column has no fold: "drop" and "fill" leave it out.
    table, val_table, test_table = [
        complete_rows(t, config.nan, features, targets + weights + extra, labels=targets)
        if t is not None else None
        for t, extra in ((table, kfold.needed(rule)), (val_table, []), (test_table, []))]
    weighed = [eventweights.weighed(t, weight) if t is not None and weight is not None
               else (t, None) for t in (table, val_table, test_table)]
    (table, given), (val_table, _), (test_table, _) = weighed
    kind = tasks.infer(table, targets, config.task)
    # Each row's class name, its label checked first: a row without one is refused here, as
    # the split, the folds and the weights' sums deal rows by class.
    strata = tasks.class_names(table, targets[0]) if kind == "classify" else None
    val_frac = 0.0 if val_table is not None or rule else config.val_frac
    test_frac = 0.0 if test_table is not None or rule else config.test_frac
    rows = split_indices(len(table.frame), val_frac, test_frac, config.seed, strata)
    rule = kfold.stratified(rule, kind, targets) if stratify else rule
    fold_of = kfold.of_table(rule, table, strata) if rule else None
    rows = kfold.pooled(rows, fold_of)
    plan = _Weights(weight, weighed, config)
    rows = plan.training_rows(table.name, rows, strata)
    fold_rows = kfold.FoldRows.of(rule, rows, fold_of, table.name) if rule else None
    plan.val_parts = None if fold_rows is None else fold_rows.val
    _check_split(table, rows, val_frac, strata, "train")
    # The levels of the training rows alone (after nan's rows left out: "drop" drops a missing
    # level as it drops a missing number); a level only the others hold is an unseen one.
    (table, val_table, test_table), features, categories = encode_tables(
        [table, val_table, test_table], features, categorical, rows[0])
    if kind == "classify":
        tasks.no_position(config.position)
        tasks.no_gaussian(config.loss)
        task = tasks.Classification.fit(table, targets[0], rows[0], config.binary_output,
                                        "none" if plan.weighted else config.class_weight)
    else:
        task = tasks.Regression.fit(table, targets, rows[0], config.position, config.loss)
    task.weighted = plan.weighted
    _check_split(table, rows, config.val_frac if val_table is None and not rule else None,
                 strata, "val")
    fill = config.nan == "fill"
    rows_digest = RowsDigest.of(_blocks(table), features, targets, kind)
    digest = hashlib.sha256()  # the table's part now, while the table is whole
    hash_arrays(digest, (numeric_matrix(b, features, finite=not fill) for b in _blocks(table)),
                (task.encode(b) for b in _blocks(table)), [] if given is None else [given])
    splits = {name: Split(x, task.encoded(truth), truth) for name, x, truth in
              zip(SPLITS, numeric_rows(table, features, rows, consume=consume, finite=not fill),
                  task.truth_rows(table, rows, consume))}
    for name, other in (("val", val_table), ("test", test_table)):
        if other is not None:
            splits[name] = _separate(other, features, task, fill)
    for name, other, verb in (("val", val_table, "validate"), ("test", test_table, "test")):
        if other is not None and not len(splits[name]):
            raise FcnnError(f"{other.name}: no rows to {verb} on")
    plan.apply(splits, task, table.name)
    filler = _fill(splits, features, table.name) if fill else None
    hash_arrays(digest, [splits["val"].x], [splits["val"].y],
                [] if fold_rows is None else [fold_rows.train, fold_rows.val])
    train = splits["train"]
    # k-fold: one scaler (and one filler) for every fold's network, fitted on all rows. They
    # see the features alone, never a label, so no network learns anything of the rows it is
    # scored on through them; and one input pipeline lets the networks be one ensemble, which
    # predict applies to any row whichever network scores it.
    x_scaler = Scaler.fit(config.scale, train.x, inputs(features, filler))
    x_range = {"min": train.x.min(axis=0).tolist(), "max": train.x.max(axis=0).tolist()}
    train.raw = train.x.copy() if config.baseline else None  # engine.baselines: own units
    x_scaler.transform(train.x, out=train.x)
    train.scaled = True
    if fold_rows is not None:
        fold_rows.share(splits)
    used = set(features + targets)
    units = {k: v for k, v in table.units.items() if k in used}
    return Prepared(features, targets, task, x_scaler, splits, units, digest.hexdigest(),
                    x_range, rows_digest, filler, fold_rows,
                    tuple(name for name, other in (("val", val_table), ("test", test_table))
                          if other is not None), categories=categories)


def complete_rows(table, nan, features, needed, piece=False, labels=()):
    """The table without the rows ``nan`` leaves out: under "drop" those missing any value
    of the features or of ``needed`` (labels, weights), under "fill" those missing one of
    ``needed`` (the features' are filled); ``piece`` and ``labels``, those of ``needed`` whose
    blank text is missing too: as :func:`drop_incomplete` takes them."""
    if nan == "drop":
        return drop_incomplete(table, features + needed, piece, labels)
    if nan == "fill":
        return drop_incomplete(table, needed, piece, labels)
    return table


def _fill(splits, features, name):
    """The filler fitted on the training rows; every split's features filled by it and
    widened by its indicators."""
    filler = Filler.fit(splits["train"].x, features, name)
    for split in splits.values():
        split.x = filler.transform(split.x)
    say_filled(filler, name)
    return filler


def say_filled(filler, name):
    if filler.flagged:
        log.info("%s: missing values filled with the training median of %s, each with an "
                 "indicator input", name, listed(map(repr, filler.flagged)))


class _Weights:
    """The event weights of one preparation (:mod:`~fcnn_cli.engine.eventweights`): the table's
    as given, those of separate validation and test tables (``weighed``: each table with its
    weights, rows of weight 0 gone), and whether training is weighted (some training or
    validation weights differ) or takes the path of no weights."""

    def __init__(self, column, weighed, config):
        (_, self.given), *others = weighed
        self.column, self.config = column, config
        self.tables = {name: (t.name, w) for name, (t, w) in zip(("val", "test"), others)
                       if w is not None}
        self.rows = self.train = None  # the split's rows; the training rows' training weights
        self.weighted = False
        self.val_parts = None  # k-fold: the folds' offsets in the validation rows

    def training_rows(self, name, rows, strata):
        """The split's rows, those of training weight 0 left out of the training rows; the
        training weights checked, and whether they (and the validation's) weigh rows alike."""
        if self.column is None:
            return rows
        train, val, test = rows
        w = eventweights.for_training(self.given[train], self.config.negative_weights)
        eventweights.check_sums(w, None if strata is None else strata[train], name, self.column)
        kept = w != 0
        if not kept.all():
            log.info("%s: %d training row(s) of negative weight left out "
                     "(negative_weights='zero')", name, int((~kept).sum()))
        self.train, self.rows = w[kept], (train[kept], val, test)
        val_w = self.tables["val"][1] if "val" in self.tables else self.given[val]
        self.weighted = not eventweights.uniform(self.train, val_w)
        return self.rows

    def apply(self, splits, task, name):
        """Each split's weights as given (for the metrics) and, where training is weighted,
        its training and validation labels packed with the weights the loss takes."""
        if self.column is None:
            return
        for part, rows in zip(SPLITS, self.rows):
            splits[part].weight = self.tables[part][1] if part in self.tables else \
                self.given[rows]
        if not self.weighted:
            return
        train, val = splits["train"], splits["val"]
        w = self.train
        if self.config.class_weight == "balanced" and task.kind == "classify":
            w = eventweights.balanced(w, train.truth, len(task.classes))
        train.y = tasks.pack(train.y, eventweights.normalised(w, f"{name}: the training rows",
                                                              self.column))
        what = f"{self.tables['val'][0] if 'val' in self.tables else name}: the validation rows"
        val.y = tasks.pack(val.y, self._validation(val.weight, what))

    def _validation(self, w, what):
        """The validation rows' weights over their mean; k-fold's, each fold's over its own,
        as each fold's network validates on its fold alone: its loss is then a weighted mean
        whose sign and scale no other fold's weights change."""
        if self.val_parts is None:
            return eventweights.normalised(w, what, self.column)
        return np.concatenate([eventweights.normalised(w[a:b], f"{what} of fold {k}", self.column)
                               for k, (a, b) in enumerate(zip(self.val_parts,
                                                              self.val_parts[1:]))])


def split_indices(n, val_frac, test_frac, seed, strata=None):
    """Shuffled, disjoint train/validation/test row indices, repeatable for a seed.

    With ``strata`` (a label per row) every class is split in the same proportions, and each
    class keeps at least one training row.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    groups = [perm] if strata is None else _by_class(perm, np.asarray(strata)[perm])
    parts = ([], [], [])
    for g in groups:
        n_test = int(round(len(g) * test_frac))
        n_val = int(round(len(g) * val_frac))
        if strata is not None:
            n_test = min(n_test, max(len(g) - 1, 0))
            n_val = min(n_val, max(len(g) - 1 - n_test, 0))
        parts[0].append(g[n_test + n_val:])
        parts[1].append(g[n_test:n_test + n_val])
        parts[2].append(g[:n_test])
    train, val, test = (np.concatenate(p) for p in parts)
    if strata is not None:  # interleave the classes again
        train, val, test = (rng.permutation(p) for p in (train, val, test))
    return train, val, test


def _by_class(rows, labels):
    """``rows`` grouped by their labels, classes in order of first appearance and rows in
    their given order within each class."""
    codes = pd.factorize(labels)[0]
    order = np.argsort(codes, kind="stable")
    return np.split(rows[order], np.flatnonzero(np.diff(codes[order])) + 1)


def _check_split(table, rows, val_frac, strata, part):
    """Say what the split left, and why, when it leaves too little to train (``part`` "train")
    or validate on ("val")."""
    train, val, test = (len(r) for r in rows)
    n = train + val + test
    left = f"of its {n} rows the split left {train} to train on, {val} to validate and " \
           f"{test} to test"
    if part == "train" and train < 2:
        raise FcnnError(f"{table.name}: too few rows to train on: {left}; lower the "
                        "validation and test fractions, or give separate validation and test "
                        "files")
    if part == "val" and val_frac is not None and not val:
        # round(rows × fraction) rows validate: past half a row, one
        reason = f": round({n} × {val_frac:g}) is 0, so the validation fraction must exceed " \
                 f"{0.5 / n:.3g}" if n else ""
        if strata is not None:
            largest = int(pd.Series(strata).value_counts().iloc[0])
            # Each class gives round(its rows × fraction) rows and keeps one for training.
            needed = 0.5 / largest if largest > 1 else None
            reason = (f": the stratified split takes round(rows × fraction) rows of each class "
                      f"and the largest of the {len(set(strata))} classes has {largest} row(s), "
                      + (f"so the validation fraction must exceed {needed:.3g}" if needed else
                         "which it keeps for training"))
        if not val_frac:
            reason = ": the validation fraction is 0"
        raise FcnnError(f"{table.name}: no rows left for validation ({left}){reason}; "
                        "or give a separate validation file")


def _separate(table, features, task, fill=False):
    """A validation or test table of its own as a Split (``fill``: its features' missing
    values left as NaN, to be filled)."""
    return Split(numeric_matrix(table, features, finite=not fill), task.encode(table),
                 task.truth(table))


def require_columns(table, columns):
    missing = [c for c in columns if c not in table.frame.columns]
    if missing:
        raise FcnnError(f"{table.name}: missing column(s) {', '.join(map(repr, missing))}")


DIGEST_ROWS = 1 << 16  # rows converted at once to be hashed


def _blocks(table):
    """The table in blocks of rows, so that the digest never needs a whole matrix."""
    from fcnn_cli.data.tables import Table

    for start in range(0, len(table.frame), DIGEST_ROWS):
        yield Table(table.frame.iloc[start:start + DIGEST_ROWS], table.targets, table.units,
                    table.name, table.first_row + start)
