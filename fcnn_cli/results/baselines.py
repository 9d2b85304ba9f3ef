"""Baselines beside a network in its reports: the report of a baseline's outputs (the task's own,
with the same figures), the file a run keeps each baseline in, and the watcher with which
``evaluate`` scores the baselines of a run on new rows beside its network.

A baseline's outputs are already what a report takes (probabilities, or values in the labels'
units), so its report is the task's with the conversion of network outputs left out. The
network's working point (the cut in its checkpoint) is the network's, not the baseline's: a
baseline's classes are the most probable ones, or those a ``threshold`` given for both cuts.
"""

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from fcnn_cli.core.errors import FcnnError

log = logging.getLogger(__name__)

PATTERN = "baseline_*.pt"


def file_name(name):
    """The file a run keeps its baseline ``name`` in, beside model.pt."""
    return f"baseline_{name}.pt"


def report_of(task, units=None, threshold=None, position=None, figures=None, sample=None):
    """A report of ``task`` (``task.metrics``: ``add(truth, outputs, weight)``, then
    ``report()``) that takes a baseline's outputs: rows × classes probabilities, or rows ×
    labels in the labels' units."""
    if task.kind == "classify":
        task = replace(task, working_point=None)
        stream = task.metrics(units, threshold, position, figures=figures)
        stream.convert = lambda proba: (proba, task.decide(proba, threshold))
    else:
        stream = task.metrics(units, threshold, position, sample=sample, figures=figures)
        stream.convert = lambda values: (values, None)
    return stream


def columns(task, name):
    """The plots' sample columns of baseline ``name``'s outputs: ``<name>_p_<class>`` or
    ``<name>_<label>_pred``."""
    if task.kind == "classify":
        return [f"{name}_{c}" for c in task.proba_columns()]
    return [f"{name}_{t}_pred" for t in task.targets]


class Watcher:
    """Scores a baseline on the rows that :func:`fcnn_cli.results.evaluation.evaluate` feeds
    its network with (``add(frame, truth, outputs)``): their features as the predictor makes
    them (filled as in training), weighed by the column ``weight`` where given, into a report
    of its own (:func:`report_of`); with ``plots``, its outputs of the rows that the plots'
    sample keeps too (:meth:`plotted`)."""

    def __init__(self, name, model, predictor, threshold=None, position=None, figures=None,
                 weight=None, plots=False):
        from fcnn_cli.results.evaluation import PLOT_CLASSES, Sample

        self.name, self.model, self.predictor, self.weight = name, model, predictor, weight
        self.seconds = 0.0  # in the baseline's predict alone, not in reading the rows
        # The figures asked of the network, less its cut (a working point's): not the baseline's.
        # An efficiency asked (eff, bkg) is each scorer's own cut, and the only working point.
        if figures is not None and figures.eff is None and figures.bkg is None:
            figures = replace(figures, threshold=threshold)
        task = predictor.task
        self.stream = report_of(task, predictor.units, threshold, position, figures)
        # The twin of the plots' sample (its seed, the same slices): it keeps the same rows.
        # Past PLOT_CLASSES classes the sample keeps no probabilities to compare with.
        self.sample = Sample(task) if plots and not (
            task.kind == "classify" and len(task.classes) > PLOT_CLASSES) else None

    def add(self, frame, truth, out):
        from fcnn_cli.data.tables import Table
        from fcnn_cli.results.evaluation import weights_of

        x = self.predictor.feature_matrix(Table(frame, name=f"baseline {self.name}"))
        weight = None if self.weight is None else weights_of(frame, self.weight)
        began = time.perf_counter()
        outputs = self.model.predict(x)
        self.seconds += time.perf_counter() - began
        self.stream.add(truth, outputs, weight)
        if self.sample is not None:
            self.sample.add(None, truth, outputs)

    def report(self):
        """The task's report, and the seconds the baseline took to predict the rows."""
        return {**self.stream.report(), "predict_seconds": self.seconds}

    def plotted(self, table):
        """The plots' sample ``table`` with this baseline's outputs of its rows."""
        if self.sample is None or self.sample.truth is None:
            return table
        return with_columns(table, self.predictor.task, self.name, self.sample.truth,
                            np.asarray(self.sample.out))


def with_columns(sample, task, name, truth, out):
    """The plots' ``sample`` (a Table) with the outputs ``out`` of baseline ``name`` as columns
    (:func:`columns`) and its name in the metadata's ``baselines``; ``truth``: the labels of
    the rows ``out`` is of, which must be the sample's (else the sample as it is, with a
    warning)."""
    if not _same_rows(sample, task, truth):
        log.warning("the plots leave out the %s baseline: its sample's rows are not the "
                    "network's", name)
        return sample
    frame = sample.frame.copy()
    frame[columns(task, name)] = out
    extra = {**sample.extra, "baselines": [*sample.extra.get("baselines", []), name]}
    return replace(sample, frame=frame, extra=extra)


def _same_rows(sample, task, truth):
    if task.kind == "classify":
        return np.array_equal(np.array(task.classes, dtype=object)[truth],
                              sample.frame[task.target].to_numpy(dtype=object))
    return np.array_equal(np.asarray(truth).reshape(len(truth), -1),
                          sample.frame[task.targets].to_numpy(np.float64))


def beside(model_path, predictor, threshold=None, position=None, figures=None, weight=None,
           plots=False):
    """A :class:`Watcher` for each baseline file beside ``model_path`` (a run's
    ``baseline_<name>.pt``), each loaded and checked against the model: one that fails, or
    that is of other inputs or labels, is one line."""
    from fcnn_cli.network import baseline

    found = []
    for path in sorted(Path(model_path).parent.glob(PATTERN)):
        model = baseline.load(path)
        _matches(path, model, predictor)
        found.append(Watcher(model.name, model, predictor, threshold, position, figures, weight,
                             plots))
    return found


def _matches(path, model, predictor):
    """Refuse a baseline fitted on other inputs or labels than ``predictor``'s (a file left
    from another run, say)."""
    task = predictor.task
    labels = task.classes if task.kind == "classify" else task.targets
    inputs = model.info.get("inputs")
    if inputs != predictor.inputs or list(getattr(model, "labels", labels)) != list(labels):
        raise FcnnError(f"{path}: a baseline of other inputs or labels than the model beside "
                        "it; remove it, or give --no-baselines")


def sample_outputs(model, chunks, seed, task):
    """The outputs of ``model`` on the rows that a plots' sample keeps of ``chunks`` ((features
    in their own units, labels) slices, fed as the network's sample was fed, with its
    ``seed``): the same rows in the same order, since which rows a sample keeps depends on
    its seed and the slices' lengths alone. Returns (labels, outputs) of the kept rows; for
    at most ``PLOT_CLASSES`` classes, as the sample keeps probabilities for no more."""
    from fcnn_cli.results.evaluation import Sample

    twin = Sample(task, seed=seed)
    for x, truth in chunks:
        twin.add(None, truth, model.predict(x))
    return twin.truth, np.asarray(twin.out)
