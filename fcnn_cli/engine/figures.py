"""The figures of merit a run asks of its splits' classification reports: the signal class, the
working point and, where the weights are expected yields, the factors that make a split's
weights the whole table's yields."""

import numpy as np

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.network.merit import Figures


def signal_of(task, config):
    """The index of the signal class (``config.signal``, checked against the classes, else the
    task's default); None for regression, or several classes without a signal."""
    if task.kind != "classify":
        _regression_refuses(config)
        return None
    return task.signal_index(config.signal)


def for_split(data, config, split, threshold=None):
    """The :class:`Figures` of split ``split`` of prepared (or streamed) ``data``, or None where
    there is no signal class. ``threshold``: the working point's cut where one is chosen.
    With ``yields`` or ``lumi`` each class's weights are scaled by ``lumi`` (1 for yields) times
    the class's sum of weights over every split over its sum in this one: the split's rows then
    stand for the whole table's expected yields, as a cut on all of them would keep."""
    signal = signal_of(data.task, config)
    if signal is None:
        if config.working_point or config.yields or config.lumi is not None:
            raise FcnnError(f"{len(data.task.classes)} classes and none named signal: name "
                            "the signal class (signal=CLASS) for a working point or yields",
                            ("signal",))
        return None
    factors = None
    if config.yields or config.lumi is not None:
        factors = tuple(config.lumi or 1.0 for _ in data.task.classes)
        factors = _scaled_to_whole(data, split, factors)
    return Figures(signal, threshold=threshold, yields=factors)


def _scaled_to_whole(data, split, factors):
    k = len(data.task.classes)
    sums = {name: np.zeros(k) for name in data.sizes if data.sizes[name]}
    for name in sums:
        for _, truth, weight in data.chunks(name):
            if weight is None:
                raise FcnnError("yields and lumi: the significance scan needs event weights "
                                "that are expected yields (weight=EXPR or samples' scales); "
                                "this run has none", ("yields", "lumi"))
            sums[name] += np.bincount(np.asarray(truth, np.int64), weights=weight, minlength=k)
    whole = sum(sums.values())
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(sums[split] != 0, whole / sums[split], 0.0)
    return tuple(float(f * s) for f, s in zip(factors, share))


def _regression_refuses(config):
    asked = [name for name in ("signal", "working_point", "lumi")
             if getattr(config, name) is not None] + (["yields"] if config.yields else [])
    if asked:
        raise FcnnError(f"{asked[0]} is for classification; this is regression", tuple(asked))
