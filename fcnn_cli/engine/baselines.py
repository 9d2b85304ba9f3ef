"""A baseline beside the network in a run (``baseline=NAME``,
:mod:`fcnn_cli.network.baseline`): refused before training where it does not apply, fitted once
the network is trained, on the same split, and reported as the network is.

What it is fitted on: the training split's features in their own units, its labels as the task
encodes them for metrics (values in the labels' units, class indices), and the training weights
the network's loss takes (the event weights after the negative-weights rule, balanced by class,
over their mean), or, where training takes the path of no weights, none: the task's class
weights (``class_weight="balanced"``) then stand for the balance, and the baseline multiplies
them in as the network's loss does. It stops early on the validation split, with the validation
weights the network's validation loss takes.

The training split's features are scaled in place (training holds them once); where a run
asks for a baseline, preparation keeps a copy of them as they were (``Split.raw``), freed once
the baseline is fitted and reported: the training features are then held twice while the
network trains. Unscaling them instead would save that memory but not give them back: float32
rounding moves about half the values by a unit in the last place, and a tree's thresholds sit
on training values (the library's bin edges are quantiles of them), so a saved baseline would
score some training rows otherwise than its run reported. The validation and test splits,
never scaled, are used as they are.

A run interrupted before its end fits no baseline; ``--resume`` fits it once the run ends. The
fit depends on the split, the weights and the baseline's own seed alone, so a resumed run's
baseline is the one the run would have had.
"""

import importlib
import logging
import time

import numpy as np

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.engine import figures
from fcnn_cli.engine.prepare import SPLITS
from fcnn_cli.results.baselines import report_of, sample_outputs, with_columns

log = logging.getLogger(__name__)

# The library each baseline needs to fit (a module, and what to install): refused before any
# table is read rather than after the network has trained.
LIBRARIES = {"gbdt": ("sklearn", "scikit-learn: pip install 'fcnn[gbdt]'")}
BLOCK = 1 << 16  # rows predicted at once: the trees' float64 temporaries stay small


def refuse(config):
    """Refuse, in one line and before anything is read, a baseline this run cannot fit: on a
    streamed table, with k-fold (a baseline would be needed for each fold, each row scored by
    the one that did not see it), or without its library."""
    name = config.baseline
    if name is None:
        return
    if config.stream:
        raise FcnnError(f"baseline={name}: a baseline fits on a table in memory, not a "
                        "streamed one; leave out stream", ("baseline", "stream"))
    if config.folds > 1:
        raise FcnnError(f"baseline={name}: k-fold would need a baseline for each fold, every "
                        "row scored by the one that did not see it; train the baseline "
                        "without folds", ("baseline", "folds"))
    module, needs = LIBRARIES.get(name, (None, None))
    if module is not None:
        try:
            importlib.import_module(module)
        except ImportError:
            raise FcnnError(f"the {name} baseline needs {needs}", ("baseline",)) from None


def check(config, data, meta=None):
    """The unfitted baseline ``config.baseline`` once it applies to prepared ``data``'s task
    and inputs (its ``check``) and, for one that reads them (its ``bind``), to the input and
    label names and the table's metadata ``meta``; None where the run asks for none."""
    if config.baseline is None:
        return None
    from fcnn_cli.network import baseline

    model = baseline.make(config.baseline)
    model.check(data.task, len(data.inputs))
    if hasattr(model, "bind"):
        model.bind(data.inputs, data.targets, meta or {})
    return model


def beside(result, model, data, config):
    """``result`` with ``model`` fitted on ``data`` and reported beside its network:
    ``result.baselines`` ({name: the fitted baseline}), ``result.metrics["baselines"]``
    ({name: {"seconds": fit time, "train"/"val"/"test": report}}) and its outputs in
    ``result.sample``. Nothing where the run has not ended (interrupted, data changed) or this
    process measures nothing (another of several does)."""
    if model is None or result.interrupted or result.changed or not result.metrics:
        return result
    x_train = own_units(data, "train")
    start = time.perf_counter()
    model.fit(x_train, *_labels_and_weights(data, "train"),
              data.splits["val"].x, *_labels_and_weights(data, "val"), data.task)
    seconds = time.perf_counter() - start
    log.info("fitted the %s baseline in %.1f s", model.name, seconds)
    model.info = {**model.info, "inputs": data.inputs, "seconds": seconds}
    reports = {split: report(model, data, config, split) for split in SPLITS
               if data.sizes[split]}
    data.splits["train"].raw = None
    result.baselines = {**result.baselines, model.name: model}
    # A new dict: the checkpoint's info holds the network's metrics alone.
    result.metrics = {**result.metrics, "baselines": {
        **result.metrics.get("baselines", {}), model.name: {"seconds": seconds, **reports}}}
    result.sample = with_outputs(result.sample, model, data, config.seed,
                                 result.predictor.chunk_rows)
    return result


def own_units(data, split):
    """Split ``split``'s features in their own units: the copy kept before scaling, where
    they are scaled."""
    part = data.splits[split]
    if not data.scaled(split):
        return part.x
    if part.raw is None:  # prepared without config.baseline
        raise FcnnError(f"the {split} split's features are scaled and no copy of them is kept")
    return part.raw


def _labels_and_weights(data, split):
    """(labels as metrics take them, the weights the network's loss takes or None)."""
    part = data.splits[split]
    weight = part.y[:, -1].astype(np.float64) if data.task.weighted else None
    return part.truth, weight


def report(model, data, config, split):
    """The task's report of ``model`` on split ``split``, with the figures of merit the run
    asks of the split, and the seconds its predictions took (``predict_seconds``: a locator's
    work is done here, not in its fit)."""
    stream = report_of(data.task, data.units, figures=figures.for_split(data, config, split),
                       sample=data.distance_sample)
    part = data.splits[split]
    x = own_units(data, split)
    seconds = 0.0
    for start in range(0, len(x), BLOCK):
        rows = slice(start, start + BLOCK)
        began = time.perf_counter()
        out = model.predict(x[rows])
        seconds += time.perf_counter() - began
        stream.add(part.truth[rows], out, None if part.weight is None else part.weight[rows])
    return {**stream.report(), "predict_seconds": seconds}


def with_outputs(sample, model, data, seed, step):
    """The plots' sample (a Table, from :func:`fcnn_cli.engine.train._sample`: the test split,
    else the validation split, fed ``step`` rows at a time) with the baseline's outputs of the
    same rows as columns (:func:`fcnn_cli.results.baselines.columns`) and its name in the
    metadata's ``baselines``."""
    from fcnn_cli.results.evaluation import PLOT_CLASSES

    task = data.task
    if sample is None or (task.kind == "classify" and len(task.classes) > PLOT_CLASSES):
        return sample  # the sample keeps no probabilities for so many classes
    split = "test" if data.sizes["test"] else "val"
    part = data.splits[split]
    slices = ((part.x[s:s + step], part.truth[s:s + step]) for s in range(0, len(part), step))
    truth, out = sample_outputs(model, slices, seed, task)
    return with_columns(sample, task, model.name, truth, out)
