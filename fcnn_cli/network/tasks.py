"""What a network predicts — numbers or classes — with the label encoding, output, loss and
metrics that belong to each.

Both tasks stay in this one module (over 400 lines): each implements the same interface that
training, prediction and the checkpoint call (``encode``, ``loss``, ``metrics``, ``frame``,
``to_dict`` …), and they are read side by side to keep it the same.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fcnn_cli.network import calibration, metrics
from fcnn_cli.core.config import check_threshold
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.preprocess import Scaler
from fcnn_cli.data.columns import (check_flat, is_numeric, numeric_matrix, numeric_rows,
                                   unlabelled)

# An integer label with at most this many distinct values could be either task: ask.
AMBIGUOUS_INTEGER_VALUES = 20
# A floor under the Gaussian head's variance (standardised units): the likelihood of a label
# the network fits exactly would otherwise grow without bound.
MIN_VARIANCE = 1e-6
HALF_LOG_TWO_PI = 0.5 * float(np.log(2 * np.pi))


def infer(table, targets, requested="auto"):
    """'regress' or 'classify' for these label columns; the rule is in docs/training.md."""
    frame = table.frame
    categorical = [t for t in targets if not is_numeric(frame[t])]
    if requested == "regress":
        if categorical:
            raise FcnnError(f"{table.name}: label column {categorical[0]!r} is not numeric: "
                            "regression needs numbers (or use task='classify')", ("task",))
        return "regress"
    if requested == "classify" or categorical:
        if len(targets) != 1:
            raise FcnnError(f"{table.name}: classification takes one label column, not "
                            f"{len(targets)} ({', '.join(map(repr, targets))})")
        return "classify"
    for t in targets:
        if pd.api.types.is_integer_dtype(frame[t]):
            distinct = frame[t].nunique()
            if distinct <= AMBIGUOUS_INTEGER_VALUES:
                raise FcnnError(f"{table.name}: label column {t!r} holds {distinct} distinct "
                                "integers: say task='classify' or task='regress'", ("task",))
    return "regress"


@dataclass
class Regression:
    """One linear output per label; labels standardised for training, mapped back after.

    With ``output`` "gaussian" a second output per label is the variance of a Gaussian
    around the first, through a softplus (plus ``MIN_VARIANCE``); the loss is the Gaussian
    negative log-likelihood. Outputs of an ensemble come as members × rows × outputs."""

    targets: list
    scaler: Scaler
    position: list | None = None  # the labels that form a point; None: told by their names
    output: str = "mse"  # or "gaussian" (config.LOSSES)
    # Training's labels carry each row's event weight as one more column (:func:`pack`).
    weighted: bool = field(default=False, compare=False)
    kind = "regress"

    @classmethod
    def fit(cls, table, targets, rows, position=None, loss="mse"):
        if position is not None:
            metrics.position_of(targets, position=position)  # each one a label
        (y,) = numeric_rows(table, targets, [rows], np.float64)
        return cls(list(targets), Scaler.fit("standard", y, targets),
                   None if position is None else list(position), loss)

    @property
    def gaussian(self):
        return self.output == "gaussian"

    @property
    def n_outputs(self):
        return len(self.targets) * (2 if self.gaussian else 1)

    def truth(self, table):
        """The labels as metrics compare them: in their own units."""
        return numeric_matrix(table, self.targets, np.float64)

    def truth_rows(self, table, rows, consume=False):
        """``[self.truth(table)[r] for r in rows]``, without the whole matrix besides (and,
        with ``consume``, the label columns leaving ``table`` once converted)."""
        return numeric_rows(table, self.targets, rows, np.float64, consume)

    def encode(self, table):
        """The labels as the network learns them: standardised."""
        return self.encoded(self.truth(table))

    def encoded(self, truth):
        """The labels as the network learns them, from the labels as metrics take them."""
        return self.scaler.transform(truth)

    def loss(self, out, y):
        """Squared error (or the Gaussian negative log-likelihood) summed over the labels,
        averaged over the minibatch; of :attr:`weighted` labels, the mean of each row's loss
        times its weight."""
        if not self.weighted:
            return self._row_losses(out, y).mean()
        y, w = y[:, :-1], y[:, -1]
        return (self._row_losses(out, y) * w).mean()

    def _row_losses(self, out, y):
        if not self.gaussian:
            return ((out - y) ** 2).sum(dim=1)
        import torch.nn.functional as F

        n = len(self.targets)
        mean, var = out[:, :n], F.softplus(out[:, n:]) + MIN_VARIANCE
        return (0.5 * (var.log() + (y - mean) ** 2 / var) + HALF_LOG_TWO_PI).sum(dim=1)

    @staticmethod
    def normalizer(y):
        """What the loss of rows ``y`` is averaged over: their number."""
        return len(y)

    def decode(self, out):
        return self.scaler.inverse(np.asarray(out, dtype=np.float64))

    def moments(self, out):
        """(mean, variance or None), standardised, per row and label, from one network's
        outputs (rows × outputs) or an ensemble's (members × rows × outputs). An ensemble's
        variance is the mean of its members' variances (none without a Gaussian head) plus
        the variance of their means, floored as the Gaussian head's is (members that agree
        exactly, as bf16's coarse outputs often do, would claim no uncertainty at all); a
        single network without a Gaussian head has none."""
        out = np.asarray(out, dtype=np.float64)
        members, n = (out if out.ndim == 3 else out[None]), len(self.targets)
        means = members[..., :n]
        var = _softplus(members[..., n:]).mean(axis=0) + MIN_VARIANCE if self.gaussian \
            else None
        if len(members) > 1:
            var = means.var(axis=0) + (MIN_VARIANCE if var is None else var)
        return means.mean(axis=0), var

    def predictive(self, out):
        """(mean, standard deviation or None) in the labels' own units (see :meth:`moments`)."""
        if np.ndim(out) == 2 and not self.gaussian:
            return self.decode(out), None  # exactly as ever for a plain network
        mean, var = self.moments(out)
        std = None if var is None else np.sqrt(var) * np.abs(np.asarray(self.scaler.scale))
        return self.decode(mean), std

    def metrics(self, units=None, threshold=None, position=None, sample=None, figures=None):
        """A report that takes (labels, network outputs) in chunks: ``add``, then ``report``;
        ``position`` replaces the labels that form a point; ``sample`` bounds the distances
        kept for percentiles (:class:`fcnn_cli.network.metrics.Regression`). ``figures`` of
        merit are for classification: None."""
        _no_threshold(threshold)
        if figures is not None:
            raise FcnnError("figures of merit (signal, working point, yields) are for "
                            "classification; this model does regression", ("signal",))
        point = self.position if position is None else position
        return _Stream(metrics.Regression(self.targets, units, point, sample),
                       self.predictive)

    def report(self, truth, out, units=None, threshold=None, weight=None):
        return _report(self, truth, out, units, threshold, weight)

    def point(self, units=None, position=None):
        """The names of the labels that form a point, or None."""
        where = metrics.position_of(self.targets, units,
                                    self.position if position is None else position)
        return None if where is None else [self.targets[i] for i in where]

    @staticmethod
    def headline(report):
        row = {"val_rmse": report["overall"]["rmse"]}
        if "distance" in report:
            row["val_mean_distance"] = report["distance"]["mean"]
        return row

    def frame(self, out, threshold=None, members=False):
        """``<label>_pred`` (an ensemble's mean) and, where there is one, ``<label>_std`` (the
        predictive standard deviation); with ``members``, each member's as ``…_m<k>`` too."""
        _no_threshold(threshold)
        columns = self._columns(out, "")
        if members and np.ndim(out) == 3:
            for k, member in enumerate(out):
                columns.update(self._columns(member, f"_m{k}"))
        return pd.DataFrame(columns)

    def _columns(self, out, suffix):
        y, std = self.predictive(out)
        columns = {}
        for i, t in enumerate(self.targets):
            columns[f"{t}_pred{suffix}"] = y[:, i]
            if std is not None:
                columns[f"{t}_std{suffix}"] = std[:, i]
        return columns

    def to_dict(self):
        extra = {"output": self.output} if self.gaussian else {}
        return {"kind": self.kind, "targets": self.targets, "scaler": self.scaler.to_dict(),
                "position": self.position, **extra}

    @classmethod
    def from_dict(cls, d):
        position = d.get("position")
        return cls(list(d["targets"]), Scaler.from_dict(d["scaler"]),
                   None if position is None else list(position), d.get("output", "mse"))


def signal_index(classes, name=None):
    """The index of the signal class of the figures of merit among ``classes``: ``name`` (one
    of them), else a class named "signal", else the second of two; None for several classes
    without one (the figures then have no signal). Training, evaluation and the plots all
    choose by this one rule, so that a curve and the numbers beside it agree."""
    if name is not None:
        if name not in classes:
            raise FcnnError(f"signal {name!r} is not a class of the model; its classes are "
                            f"{', '.join(map(repr, classes[:20]))}", ("signal",))
        return classes.index(name)
    if "signal" in classes:
        return classes.index("signal")
    return 1 if len(classes) == 2 else None


@dataclass
class Classification:
    """Softmax over one output per class with cross-entropy on one-hot labels; for two
    classes optionally one sigmoid output with binary cross-entropy."""

    target: str
    classes: list  # class names (strings) in output order
    output: str = "softmax"  # or "sigmoid": one node, p(classes[1])
    weights: list | None = None  # per-class loss weights
    # Training's labels carry each row's event weight: (class, weight) pairs (:func:`pack`).
    weighted: bool = field(default=False, compare=False)
    # The class that is signal in the figures of merit, as the run named it (--signal); None:
    # the default of signal_index.
    signal: str | None = None
    # The working point the run chose (--working-point): {"asked": {"signal_efficiency": 0.7},
    # "cut": c}; the class column is then signal where p(signal) ≥ c.
    working_point: dict | None = None
    kind = "classify"

    @classmethod
    def fit(cls, table, target, rows, output="softmax", class_weight="none"):
        labels = class_names(table, target)[rows]
        column = table.frame[target]
        values = column.iloc[rows].dropna().unique().tolist()
        counts = pd.Series(labels).value_counts().to_dict() if class_weight == "balanced" \
            else {}
        # An ordered categorical column (the samples' classes) keeps its order.
        order = [str(c) for c in column.cat.categories] \
            if isinstance(column.dtype, pd.CategoricalDtype) and column.dtype.ordered else None
        return cls.of_counts(table.name, target, values, counts, output, class_weight, order)

    @classmethod
    def of_counts(cls, name, target, values, counts, output="softmax", class_weight="none",
                  order=None):
        """The task from the training rows' distinct label ``values`` and the rows of each
        class name (``counts``, needed for balanced class weights), as a streamed pass finds
        them; the classes in ``order`` where it is given, else sorted."""
        names = set(map(str, values))
        classes = _sorted_names(values) if order is None else [c for c in order if c in names]
        if len(classes) < 2:
            raise FcnnError(f"{name}: label column {target!r} holds only one class "
                            f"({classes[0]!r}) in the training rows: nothing to tell apart")
        if output == "sigmoid" and len(classes) != 2:
            raise FcnnError(f"binary_output='sigmoid' needs two classes; {target!r} has "
                            f"{len(classes)}", ("binary_output",))
        weights = None
        if class_weight == "balanced":
            n = np.array([counts[c] for c in classes], np.float64)
            weights = (float(sum(counts.values())) / (len(classes) * n)).tolist()
        return cls(target, classes, output, weights)

    @property
    def targets(self):
        return [self.target]

    @property
    def n_outputs(self):
        return 1 if self.output == "sigmoid" else len(self.classes)

    def encode(self, table):
        labels = class_names(table, self.target)
        index = {c: i for i, c in enumerate(self.classes)}
        unseen = sorted(set(labels) - set(index))
        if unseen:
            row = int(np.argmax(~np.isin(labels, self.classes)))
            raise FcnnError(f"{table.name}: column {self.target!r} holds class {unseen[0]!r} "
                            f"(row {table.row(row)}) never seen in training; the model knows "
                            f"{', '.join(map(repr, self.classes))}")
        return np.array([index[v] for v in labels], dtype=np.int64)

    truth = encode  # class indices serve both the loss and the metrics

    def truth_rows(self, table, rows, consume=False):
        truth = self.truth(table)  # class indices: small beside the features
        return [truth[r] for r in rows]

    @staticmethod
    def encoded(truth):
        return truth

    def loss(self, out, y):
        """Cross-entropy averaged over the minibatch (with class weights, torch's weighted
        mean); of :attr:`weighted` labels, the mean of each row's times its event weight."""
        import torch
        import torch.nn.functional as F

        if self.weighted:
            y, w = y[:, 0].long(), y[:, 1]
            if self.output == "sigmoid":
                rows = F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype),
                                                          reduction="none")
            else:
                rows = F.cross_entropy(out, y, reduction="none")
            return (rows * w).mean()
        w = None if self.weights is None else torch.tensor(self.weights, device=out.device)
        if self.output == "sigmoid":
            return F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype),
                                                      weight=None if w is None else w[y])
        return F.cross_entropy(out, y, weight=w)

    def normalizer(self, y):
        """What the loss of rows ``y`` is averaged over: their number, or with class weights
        under softmax the sum of their weights (as torch's cross-entropy takes it)."""
        if self.weights is None or self.output == "sigmoid":
            return len(y)
        import torch

        return float(torch.tensor(self.weights, device=y.device)[y].sum())

    def proba(self, out):
        """Class probabilities per row; an ensemble's (members × rows × outputs) are the mean
        of its members'."""
        if np.ndim(out) == 3:
            return np.mean([self.proba(member) for member in out], axis=0)
        out = np.asarray(out, dtype=np.float64)
        if self.output == "sigmoid":
            p1 = 1.0 / (1.0 + np.exp(-out[:, 0]))
            return np.stack([1.0 - p1, p1], axis=1)
        z = np.exp(out - out.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def signal_index(self, name=None):
        """The index of the signal class (:func:`signal_index`): ``name``, else the one the run
        recorded, else the default."""
        return signal_index(self.classes, name if name is not None else self.signal)

    def cut(self):
        """The working point's cut on p(signal), or None."""
        return None if self.working_point is None else self.working_point["cut"]

    def decide(self, proba, threshold=None):
        """Class indices: the signal class (:meth:`signal_index`) where its probability is ≥
        ``threshold`` (default: the working point's cut), else the most probable of the
        others; without either, the most probable class."""
        threshold = self.cut() if threshold is None else threshold
        if threshold is None:
            return proba.argmax(axis=1)
        check_threshold(threshold)
        s = self.signal_index()
        if s is None:
            raise FcnnError(f"threshold is for two classes or a signal class; the model has "
                            f"{len(self.classes)} classes and none is signal (name one when "
                            "training or evaluating: --signal CLASS)", ("threshold",))
        others = proba.copy()
        others[:, s] = -np.inf
        return np.where(proba[:, s] >= threshold, s, others.argmax(axis=1)).astype(np.int64)

    def metrics(self, units=None, threshold=None, position=None, sample=None, figures=None):
        """A report that takes (labels, network outputs) in chunks: ``add``, then ``report``
        (``sample`` is for regression's distances); ``figures``, a
        :class:`~fcnn_cli.network.merit.Figures`, adds the figures of merit."""
        no_position(position)

        def convert(out):
            proba = self.proba(out)
            return proba, self.decide(proba, threshold)
        return _Stream(metrics.Classification(self.classes, figures), convert)

    def report(self, truth, out, units=None, threshold=None, weight=None):
        return _report(self, truth, out, units, threshold, weight)

    @staticmethod
    def headline(report):
        return {"val_accuracy": report["accuracy"]}

    @staticmethod
    def point(units=None, position=None):
        """Classes form no point: None."""
        no_position(position)
        return None

    def frame(self, out, threshold=None, members=False):
        """``<label>_pred`` and ``p_<class>``; for an ensemble (the mean probabilities) also
        ``<label>_entropy``, the predictive entropy (nats), and with ``members`` each
        member's class and probabilities as ``<label>_pred_m<k>`` and ``p_<class>_m<k>``."""
        proba = self.proba(out)
        names = np.array(self.classes, dtype=object)
        columns = {f"{self.target}_pred": names[self.decide(proba, threshold)]}
        # The probabilities as one block, not a column each: ten times faster for 10 000 classes.
        blocks = [pd.DataFrame(proba, columns=self.proba_columns())]
        if np.ndim(out) == 3:
            columns[f"{self.target}_entropy"] = calibration.entropy(proba)
            for k, member in enumerate(out if members else ()):
                member_proba = self.proba(member)
                columns[f"{self.target}_pred_m{k}"] = names[self.decide(member_proba, threshold)]
                blocks.append(pd.DataFrame(member_proba, columns=self.proba_columns(f"_m{k}")))
        return pd.concat([pd.DataFrame(columns), *blocks], axis=1)

    def proba_columns(self, suffix=""):
        """The names of the class probability columns (``suffix``: ``_m<k>``, a member's)."""
        return [f"p_{c}{suffix}" for c in self.classes]

    def to_dict(self):
        return {"kind": self.kind, "target": self.target, "classes": self.classes,
                "output": self.output, "weights": self.weights, "signal": self.signal,
                "working_point": self.working_point}

    @classmethod
    def from_dict(cls, d):
        return cls(d["target"], list(d["classes"]), d.get("output", "softmax"), d.get("weights"),
                   signal=d.get("signal"), working_point=d.get("working_point"))


# Network outputs are made and converted (to float64 probabilities, say) at most this many
# values at a time: with thousands of classes a chunk then costs time, not memory.
OUTPUTS_AT_ONCE = 1 << 22


class _Stream:
    """A metrics report fed with network outputs, which the task converts chunk by chunk."""

    def __init__(self, accumulator, convert):
        self.accumulator, self.convert = accumulator, convert

    def add(self, truth, out, weight=None):
        """Rows' labels and outputs, and ``weight``, a weight a row, for a weighted report."""
        # Rows are the next-to-last axis: an ensemble's outputs are members × rows × outputs.
        width = out.shape[-1] * (out.shape[0] if out.ndim == 3 else 1)
        rows = max(1, OUTPUTS_AT_ONCE // max(1, width))
        weight = None if weight is None else np.asarray(weight, np.float64)
        for start in range(0, out.shape[-2], rows):
            part = slice(start, start + rows)
            self.accumulator.add(truth[part], *self.convert(out[..., part, :]),
                                 weight=None if weight is None else weight[part])

    def report(self):
        return self.accumulator.report()


def _report(task, truth, out, units, threshold, weight=None):
    stream = task.metrics(units, threshold)
    stream.add(truth, out, weight)
    return stream.report()


def _no_threshold(threshold):
    if threshold is not None:
        raise FcnnError("threshold is for classification; this model does regression",
                        ("threshold",))


def no_gaussian(loss):
    if loss == "gaussian":
        raise FcnnError("loss='gaussian' is for regression; this is classification", ("loss",))


def _softplus(x):
    with np.errstate(invalid="ignore"):  # a diverged network's NaN stays NaN, unannounced
        return np.logaddexp(0.0, x)


def no_position(position):
    if position is not None:
        raise FcnnError("position is for regression labels; this is classification",
                        ("position",))


def from_dict(d):
    return {"regress": Regression, "classify": Classification}[d["kind"]].from_dict(d)


# Class indices travel as float32 beside the weights: exact up to here.
MAX_WEIGHTED_CLASSES = 1 << 24


def pack(labels, weights):
    """Labels as a weighted task's loss takes them: each row's encoded labels (standardised
    values, or its class index) and its event weight, as one float32 array (rows × columns +
    1). One array, so that every path that takes rows of the labels (minibatches, shuffles,
    an ensemble's own orders, a CUDA graph's gathers) moves each weight with its row."""
    labels = np.asarray(labels)
    # Class indices are one column; no reshape(n, -1), which a piece of no rows cannot take.
    columns = (labels if labels.ndim > 1 else labels[:, None]).astype(np.float32)
    return np.concatenate([columns, np.asarray(weights, np.float32).reshape(-1, 1)], axis=1)


def class_names(table, target):
    """Class labels as strings: the names the checkpoint stores and predict writes."""
    check_flat(table, [target], "label")
    series = table.frame[target]
    missing = unlabelled(series)
    if missing.any():
        raise FcnnError(f"{table.name}: label column {target!r} is empty at row "
                        f"{table.row(int(np.argmax(missing)))} "
                        f"({int(missing.sum())} row(s) in all)")
    return series.astype(str).to_numpy(dtype=object)


def _sorted_names(values):
    # Sort by the original values (numbers numerically), then name them as strings.
    values = list(values)
    try:
        values = sorted(values)
    except TypeError:  # mixed types: fall back to the names' order
        values = sorted(values, key=str)
    return list(dict.fromkeys(str(v) for v in values))
