"""k-fold training: the rows of each fold, the rows each fold's network trains and validates
on in the ensemble engine's one pass, and the out-of-fold scores of the whole table.

Each row falls in one of K folds by :class:`~fcnn_cli.network.foldrule.FoldRule` (a hash of a
column's value, or of the row's position with the seed, stratified by class for a
classification). Network k is member k of one ensemble pass (:mod:`fcnn_cli.engine.ensemble`;
its initial weights and row orders those of seed + k): it trains on every row outside fold k
and is validated on fold k alone, which picks its best epoch and stops it early. Every row of
the table is validated by exactly one network, the one that never trained on it; so the
validation split is the whole table, ordered by fold, and the union of the folds' validations
is the out-of-fold score of every row. No rows are held out (a test table may be given): every
row is trained on by K - 1 networks and scored by the other.

The members of one pass take minibatches of one size at every step, so each takes as many rows
an epoch as the member with the most: a member with fewer rows outside its fold takes the
difference again, drawn from its own rows (their first ones in that epoch's order).
"""

import dataclasses
import logging

import numpy as np

from fcnn_cli.core.config import TrainConfig
from fcnn_cli.core.errors import FcnnError, Message
from fcnn_cli.engine import figures
from fcnn_cli.network.foldrule import FoldRule, NoFold

log = logging.getLogger(__name__)


def rule_of(config, val_table=None):
    """The fold rule of a run's options, or None without folds."""
    if config.folds == 1:
        return None
    if val_table is not None:
        raise FcnnError(f"folds={config.folds}: each fold's network validates on its own fold; "
                        "give no validation table (val)", ("folds", "val"))
    _say_fractions(config)
    return FoldRule(config.folds, config.fold_by, config.seed)


def of_table(rule, table, strata):
    """Each training row's fold (``strata``: each row's class, for a stratified rule); rows
    without a value in the fold column, which nan's "drop" and "fill" leave out before, are
    refused saying so."""
    try:
        return rule.of_table(table, strata)
    except NoFold as e:
        raise FcnnError(f"{e}; nan='drop' leaves such rows out", ("nan",)) from None


def stratified(rule, kind, targets):
    """The rule by row position of a classification, stratified by its label's classes: a
    fold's held-out rows then hold every class, a rare one too, in the table's shares (to one
    row). A fold column's rule is the user's, and regression's folds stay a hash of position."""
    if rule is None or rule.by is not None or kind != "classify":
        return rule
    return dataclasses.replace(rule, strata=targets[0])


def stratifies(resume):
    """Whether a run deals a classification's folds by position stratified (:func:`stratified`):
    yes, but where it resumes a state (``resume``) that records no stratified rule. A k-fold
    state saved before folds were stratified records none: its folds, a hash of position
    alone, are dealt again as they were, so that the run goes on exactly. (A regression's
    state, or one of no folds, has no stratified folds to deal either way.)"""
    if resume is None:
        return True
    if "folds" not in resume:
        return False
    try:
        return FoldRule.from_dict(resume["folds"]).strata is not None
    except ValueError as e:
        raise FcnnError(f"the saved training state's {e}; cannot resume") from None


def _say_fractions(config):
    """The fractions that hold rows out apply to no row: every row is in a fold."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    changed = [name for name in ("val_frac", "test_frac")
               if getattr(config, name) != defaults[name]]
    if changed:
        verb = "hold" if len(changed) > 1 else "holds"
        log.warning("%s", Message(
            f"folds={config.folds}: every row is in a fold, trained on by the other folds' "
            f"networks and scored by its own; {' and '.join(changed)} {verb} no rows out (a "
            "test table does)", ("folds", *changed)))


def hidden(table, rule, features):
    """The table that the default features are chosen from: without the fold column, an
    event number, which is no feature unless named in ``features``."""
    if rule is None or rule.by is None or features or rule.by not in table.frame.columns:
        return table
    return dataclasses.replace(table, frame=table.frame.drop(columns=[rule.by]))


def check_column(table, rule, targets, weight):
    if rule is None or rule.by is None:
        return
    if rule.by not in table.frame.columns:
        raise FcnnError(f"{table.name}: no fold column {rule.by!r}", ("fold_by",))
    if rule.by in targets or rule.by == weight:
        role = "a label" if rule.by in targets else "the events' weight"
        raise FcnnError(f"{table.name}: column {rule.by!r} cannot be both {role} and the fold "
                        "column", ("fold_by",))


def needed(rule):
    """The columns a row must have a value in to have a fold."""
    return [rule.by] if rule is not None and rule.by is not None else []


def pooled(rows, fold_of):
    """The split's (train, val, test) rows for k-fold training (``fold_of``: each row's fold;
    None: no folds): every row both trains and validates, ordered by fold, so that each fold's
    rows are one span of either split."""
    if fold_of is None:
        return rows
    train, _, test = rows
    pool = train[np.argsort(fold_of[train], kind="stable")]
    return pool, pool, test


@dataclasses.dataclass
class FoldRows:
    """Where each fold's rows are: fold k's training rows are ``train[k]:train[k + 1]`` of the
    training split, its validation rows ``val[k]:val[k + 1]`` of the validation split (every
    row of the table; training rows are fewer where negative weights leave some out)."""

    rule: FoldRule
    train: np.ndarray  # K + 1 offsets
    val: np.ndarray  # K + 1 offsets

    @classmethod
    def of(cls, rule, rows, fold_of, name):
        """The spans of the (fold-ordered) ``rows`` of the split, each fold checked to hold
        rows to validate on and to leave its network rows to train on."""
        train, val = (np.searchsorted(fold_of[r], np.arange(rule.k + 1)) for r in rows[:2])
        folds = cls(rule, train, val)
        sizes, left = np.diff(val), train[-1] - np.diff(train)
        for k in range(rule.k):
            if not sizes[k]:
                raise FcnnError(f"{name}: fold {k} of {rule.k} holds no rows ({rule.describe()})"
                                ": too few rows, or too few distinct values in the fold column, "
                                "for so many folds", ("folds",))
            if left[k] < 2:
                raise FcnnError(f"{name}: the rows outside fold {k} leave its network "
                                f"{left[k]} row(s) to train on", ("folds",))
        return folds

    @property
    def k(self):
        return self.rule.k

    def of_val(self):
        """The fold of each validation row."""
        return np.repeat(np.arange(self.k), np.diff(self.val))

    def share(self, splits):
        """Where every row trains, the validation split is the training split: one array of
        (scaled) features for both."""
        if len(splits["train"]) == len(splits["val"]):
            splits["val"].x, splits["val"].scaled = splits["train"].x, True


def as_ensemble(config):
    """The options of the pass that trains the folds' networks: an ensemble of K members."""
    return dataclasses.replace(config, ensemble=config.folds, folds=1, fold_by=None)


def refuse_processes(config, world):
    if world.distributed:
        raise FcnnError(f"folds={config.folds}: the folds' networks train together in one "
                        "process; train without several processes", ("folds",))


class MemberRows:
    """The rows each member of an ensemble pass trains and validates on, k-fold's: member k
    trains on the training rows outside fold k and validates on fold k
    (:class:`fcnn_cli.engine.ensemble.AllRows` gives every member every row)."""

    def __init__(self, folds):
        bounds = folds.train
        self.starts, self.sizes = bounds[:-1], np.diff(bounds)
        self.counts = int(bounds[-1]) - self.sizes  # each member's rows
        self.train_rows = int(self.counts.max())  # what every member takes an epoch
        self.val = folds.val

    def orders(self, generators, kind):
        """Each member's rows of one epoch in a new order of its own generator (members ×
        rows), topped up from their start to the rows every member takes."""
        import torch

        order = torch.empty(len(generators), self.train_rows, dtype=kind)
        for k, (row, generator) in enumerate(zip(order, generators)):
            perm = torch.randperm(int(self.counts[k]), generator=generator, dtype=kind)
            # The j-th row outside fold k: j before the fold's span, else j past it.
            perm += (perm >= int(self.starts[k])).to(kind) * int(self.sizes[k])
            row.copy_(perm.repeat(-(-self.train_rows // len(perm)))[:self.train_rows])
        return order

    def validation_rows(self, m):
        return slice(int(self.val[m]), int(self.val[m + 1]))

    @staticmethod
    def together(outputs):
        """The members' outputs on their folds, in fold order: each row's out-of-fold output."""
        import torch

        return torch.cat(outputs)


@dataclasses.dataclass
class Scores:
    metrics: dict  # "train" (in fold), "val" (out of fold), "folds" (each fold's network)
    sample: object  # a Sample of out-of-fold predictions, for the plots


def score(predictor, data, config, choosing=False):
    """Every row of the table scored by the folds' networks (``predictor``, their ensemble):
    "val" by the network that never saw it (out of fold: what each fold's validation saw,
    together), "train" by the mean of the K - 1 that trained on it, and "folds" each fold's
    network on its own fold, with their mean and spread (:func:`summary`). Each report at the
    predictor's task's working point, with the figures of merit the run asks
    (:mod:`~fcnn_cli.engine.figures`); ``choosing``: "val"'s find the working point."""
    from fcnn_cli.results.evaluation import Sample

    task, units, k = predictor.task, data.units, data.folds.k
    asked = {split: figures.at_cut(data, config, split, task) for split in ("train", "val")}
    if choosing:
        asked["val"] = figures.asking(data, config, "val")
    outside, inside = (task.metrics(units, sample=data.distance_sample, figures=asked[split])
                       for split in ("val", "train"))
    # A fold's rows are a share of the table's: the significance scan is the out-of-fold one.
    own = asked["val"] and dataclasses.replace(asked["val"], yields=None)
    each = [task.metrics(units, figures=own) for _ in range(k)]
    sample = Sample(task, seed=config.seed)
    x, truth, weight = next(data.chunks("val"))  # rows in memory: one chunk
    fold, step = data.folds.of_val(), predictor.chunk_rows
    blocks = ((slice(i, i + step), x[i:i + step]) for i in range(0, len(x), step))
    for part, out in predictor.outputs_of(blocks, scaled=data.scaled("val")):
        f, t, w = fold[part], truth[part], None if weight is None else weight[part]
        own = out[f, np.arange(len(f))]  # rows × outputs: each row's out-of-fold outputs
        outside.add(t, own, weight=w)
        inside.add(t, _trained_on(out, f), weight=w)
        for j in np.unique(f):
            rows = f == j
            each[j].add(t[rows], own[rows], weight=None if w is None else w[rows])
        sample.add(None, t, own)
    metrics = {"train": inside.report(), "val": outside.report(),
               "folds": summary([r.report() for r in each], data.folds.rule)}
    return Scores(metrics, sample)


def _trained_on(out, fold):
    """Each row's outputs of the K - 1 networks that trained on it ((K - 1) × rows ×
    outputs; of the one, for two folds): the members but the row's fold's own."""
    k = len(out)
    others = np.arange(k - 1)[:, None]
    members = others + (others >= fold[None, :])
    picked = np.take_along_axis(out, members[:, :, None], axis=0)
    return picked[0] if k == 2 else picked


def summary(reports, rule):
    """The folds' reports as one: each number the mean over the folds (the rows their sum),
    ``std`` the folds' spread of each (the sample standard deviation, over K - 1), ``each``
    the reports themselves and ``rule`` the fold rule. Shaped as a split's report, so that every
    table of metrics shows it as one more split."""
    mean = _mean(reports)
    return {**mean, "rows": sum(r["rows"] for r in reports), "std": _spread(reports),
            "each": reports, "rule": rule.to_dict()}


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _mean(values):
    """The mean of the numbers at each place of equally shaped reports; other values (names,
    units) the first's."""
    first = values[0]
    if isinstance(first, dict):
        return {key: _mean([v[key] for v in values]) for key in first
                if all(isinstance(v, dict) and key in v for v in values)}
    if isinstance(first, list) and all(isinstance(v, list) and len(v) == len(first)
                                       for v in values):
        return [_mean(list(column)) for column in zip(*values)]
    if all(_number(v) for v in values):
        return float(np.mean(values))
    return first


def _spread(values):
    """The sample standard deviation of the numbers at each place of the reports; None where
    there are none (a name)."""
    first = values[0]
    if isinstance(first, dict):
        found = {key: _spread([v[key] for v in values]) for key in first
                 if all(isinstance(v, dict) and key in v for v in values)}
        return {key: v for key, v in found.items() if v is not None} or None
    if isinstance(first, list) and all(isinstance(v, list) and len(v) == len(first)
                                       for v in values):
        found = [_spread(list(column)) for column in zip(*values)]
        return None if all(v is None for v in found) else found
    if all(_number(v) for v in values):
        return float(np.std(values, ddof=1))
    return None
