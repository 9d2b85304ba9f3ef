"""The figures of merit a run asks of its splits' classification reports: the signal class, the
working point and, where the weights are expected yields, the factors that make a split's
weights the whole table's yields.

A run asked for a working point (``--working-point eff=E|bkg=B``) finds its cut on the
validation split's scores (k-fold's: every row's out-of-fold score), weighted as the metrics
are, after training and before its final reports: :func:`asking` gives the figures that find
it, :func:`chosen` the task that carries it (its class column is signal where p(signal) passes
the cut), and every report is then made at that cut. Where no cut meets the target (a
background efficiency below the first background row's, say) the run is kept without a
working point, with a warning: the network is still worth its figures."""

import dataclasses
import logging

import numpy as np

from fcnn_cli.core.config import parse_working_point
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.network.merit import Figures

log = logging.getLogger(__name__)


def of_options(task, signal=None, point=None, yields=False, lumi=None, threshold=None,
               weighted=True):
    """The :class:`Figures` that the figures' options ask of ``task``'s reports, for train and
    evaluate alike: the ``signal`` class (a name, else the task's), the working ``point``
    (:func:`parse_working_point`'s (key, value)) else the cut ``threshold``, and with
    ``yields`` or ``lumi`` a factor of ``lumi`` (1 for yields) a class. None where the task
    has no signal class; the options refused in one line where they cannot apply: for
    regression, without a signal class, or with yields on rows not ``weighted``."""
    index = _signal(task, signal, point, yields, lumi)
    if index is None:
        return None
    scan = yields or lumi is not None
    if scan and not weighted:
        raise without_weights()
    at = dict([point]) if point else {}
    return Figures(index, eff=at.get("signal_efficiency"), bkg=at.get("background_efficiency"),
                   threshold=None if point else threshold,
                   yields=tuple(lumi or 1.0 for _ in task.classes) if scan else None)


def without_weights():
    """The one error of a significance scan asked of rows without event weights."""
    return FcnnError("yields and lumi: the significance scan needs event weights that are "
                     "expected yields (weight=EXPR or samples' scales); these rows have none",
                     ("yields", "lumi", "weight"))


def for_split(data, config, split, threshold=None, point=None):
    """The :class:`Figures` of split ``split`` of prepared (or streamed) ``data``, or None where
    there is no signal class. ``threshold``: the working point's cut where one is chosen;
    ``point``: the working point to find instead. With ``yields`` or ``lumi`` each class's
    factor is ``lumi`` (1 for yields); on a split cut out of the table trained on, times the
    class's sum of weights over the table's splits over its sum in this one: the split's rows
    then stand for the whole table's expected yields, as a cut on all of them would keep. A
    split read from a table of its own (``val``, ``test``) is its own whole sample."""
    figures = of_options(data.task, config.signal, point, config.yields, config.lumi, threshold)
    if figures is None or figures.yields is None:
        return figures
    return dataclasses.replace(figures, yields=_scaled_to_whole(data, split, figures.yields))


def at_cut(data, config, split, task):
    """:func:`for_split` at ``task``'s working point (the run's, once chosen)."""
    cut = task.cut() if task.kind == "classify" else None
    return chosen_at(for_split(data, config, split, cut), task)


def chosen_at(figures, task):
    """``figures`` cut at ``task``'s working point, with what that point was chosen at (an ε_S
    or ε_B) recorded as asked: the figures alone know only the cut."""
    point = getattr(task, "working_point", None)
    if figures is None or figures.threshold is None or not point or not point.get("asked"):
        return figures
    return dataclasses.replace(figures, chosen_at=point["asked"])


def refuse_early(config, weighted, validated):
    """Before anything is read: the options of the figures that need what the run lacks —
    event weights (``weighted``) for yields, validation rows (``validated``) for a working
    point."""
    if (config.yields or config.lumi is not None) and not weighted:
        raise without_weights()
    if config.working_point is not None and not validated:
        raise FcnnError(f"working_point {config.working_point}: the cut is found on the "
                        "validation split, and this run holds none (val_frac 0, no val table)",
                        ("working_point", "val_frac"))


def check(task, config):
    """Once the task is known (before the first epoch): the signal class's index (None for
    regression, or several classes without a signal), the options refused as
    :func:`of_options` refuses them."""
    return _signal(task, config.signal, config.working_point, config.yields, config.lumi)


def _signal(task, signal, point, yields, lumi):
    if task.kind != "classify":
        _regression_refuses(signal, point, yields, lumi)
        return None
    index = task.signal_index(signal)
    if index is None and (point or yields or lumi is not None):
        raise FcnnError(f"{len(task.classes)} classes and none named signal: name the signal "
                        "class (signal=CLASS) for a working point or yields", ("signal",))
    return index


def asking(data, config, split):
    """The figures of ``split`` that find the working point ``config`` asks for."""
    return for_split(data, config, split, point=parse_working_point(config.working_point))


def chosen(task, config, merit=None):
    """A copy of classification ``task`` that records the run's signal class (where named)
    and the working point of ``merit`` (a report's figures made with :func:`asking`); the task
    itself without either."""
    if task.kind != "classify" or (config.signal is None and merit is None):
        return task
    changes = {"signal": task.classes[check(task, config)]}
    if merit is not None:
        point = merit["working_point"]
        if np.isfinite(point["cut"]):
            changes["working_point"] = {"asked": point["asked"], "cut": _on_float32(point["cut"])}
        else:
            log.warning("working_point %s: %s on the validation split (%s); the run is saved "
                        "without a working point", config.working_point,
                        point.get("reason", "no cut meets it"), _rows(merit))
    return dataclasses.replace(task, **changes)


def _on_float32(cut):
    """The figures rank float32 scores, predictions cut float64 probabilities: halfway down to
    the next float32 below the cut, a probability passes exactly where its float32 does (a
    row at the cut itself would otherwise pass in one and fail in the other)."""
    below = np.nextafter(np.float32(cut), np.float32(-np.inf))
    return max(0.0, float((np.float64(below) + cut) / 2))


def _rows(merit):
    return f"{merit['signal']['rows']} signal and {merit['background']['rows']} background rows"


def _scaled_to_whole(data, split, factors):
    if split in data.separate:
        return factors  # a table of its own: its rows are the whole sample
    k = len(data.task.classes)
    # k-fold's validation split is the whole table, which its training split repeats.
    whole = [name for name in data.sizes if data.sizes[name] and name not in data.separate
             and not (name == "train" and getattr(data, "folds", None) is not None)]
    sums = {name: np.zeros(k) for name in dict.fromkeys([*whole, split])}
    for name in sums:
        for _, truth, weight in data.chunks(name):
            if weight is None:
                raise without_weights()
            sums[name] += np.bincount(np.asarray(truth, np.int64), weights=weight, minlength=k)
    total = sum(sums[name] for name in whole)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(sums[split] != 0, total / sums[split], 0.0)
    return tuple(float(f * s) for f, s in zip(factors, share))


def _regression_refuses(signal, point, yields, lumi):
    # Named with a value: "signal" alone is an ordinary word in messages, not its option.
    asked = [(name, said) for name, value, said in (
        ("signal", signal, f"signal='{signal}'"), ("working_point", point, "working_point"),
        ("lumi", lumi, "lumi")) if value is not None] + ([("yields", "yields")] if yields else [])
    if asked:
        raise FcnnError(f"{asked[0][1]} is for classification; this is regression",
                        tuple(name for name, _ in asked))
