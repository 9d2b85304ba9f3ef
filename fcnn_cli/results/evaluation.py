"""What an evaluation gathers beside the metric report, chunk by chunk: statistics in bins of
a column (:class:`ByColumns`), and a bounded random sample of rows with their predictions for
the plots (:class:`Sample`). Each is a watcher that
:meth:`fcnn_cli.network.predictor.Predictor.evaluate_chunks` feeds with every slice of rows: the
rows' frame, their true labels (as ``task.truth`` gives them) and the network's raw outputs."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from fcnn_cli.results.binned import Binned
from fcnn_cli.data.columns import is_numeric
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.network.digest import RowsDigest

# Rows a plot draws at most: a scatter or a map of more shows nothing more.
PLOT_ROWS = 100_000
# Up to this many classes the sample keeps each row's probabilities (for ROC curves and the
# reliability diagram).
PLOT_CLASSES = 50

log = logging.getLogger(__name__)


class ByColumns:
    """Bias and resolution (or accuracy) of a model in bins of 1 or 2 columns of the table;
    with ``weight``, the name of a column holding each row's event weight, weighted (see
    :mod:`fcnn_cli.results.binned`)."""

    def __init__(self, task, by, threshold=None, position=None, units=None, weight=None):
        if not 1 <= len(by) <= 2:
            raise FcnnError(f"by takes 1 or 2 columns, not {len(by)}", ("by",))
        self.task, self.threshold, self.units = task, threshold, units or {}
        self.weight = weight
        classes = getattr(task, "classes", None)
        point = None if classes else task.point(units, position)
        self.binned = Binned(by, task.targets,
                             None if point is None else [task.targets.index(c) for c in point],
                             classes)
        self.by = list(by)

    def add(self, frame, truth, out):
        missing = [c for c in self.by if c not in frame.columns]
        if missing:
            raise FcnnError(f"no column {missing[0]!r} to bin by; the table has "
                            f"{', '.join(map(repr, map(str, frame.columns[:20])))}", ("by",))
        for c in self.by:
            # An empty CSV column is read as nulls, not numbers: it has no finite values.
            if not is_numeric(frame[c]) and not frame[c].isna().all():
                raise FcnnError(f"column {c!r} is not numeric: bins need numbers", ("by",))
        values = frame[self.by].to_numpy(dtype=np.float64, na_value=np.nan)
        self.binned.add(values, truth, predicted(self.task, out, self.threshold),
                        weight=None if self.weight is None else weights_of(frame, self.weight))

    def report(self, bins, edges=None):
        return self.binned.report(bins, edges, self.units)


def weights_of(frame, column):
    """The event weights of a frame's rows, the float64 values of its column ``column``: each
    a finite number (negative ones are weights as well)."""
    if column not in frame.columns:
        raise FcnnError(f"no weight column {column!r}; the table has "
                        f"{', '.join(map(repr, map(str, frame.columns[:20])))}", ("weight",))
    if not is_numeric(frame[column]):
        raise FcnnError(f"weight column {column!r} is not numeric", ("weight",))
    weight = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(weight)
    if bad.any():
        raise FcnnError(f"weight column {column!r} has {int(bad.sum())} row(s) without a "
                        "finite weight (empty, NaN or infinite)", ("weight",))
    return weight


def predicted(task, out, threshold=None):
    """The prediction that a residual or a hit is counted from: values in the labels' units,
    or class indices."""
    if task.kind == "classify":
        return task.decide(task.proba(out), threshold)
    return task.predictive(out)[0]


class Sample:
    """A uniform random sample of at most ``size`` rows of a stream, with their predictions:
    each row draws a random key and the rows with the smallest keys are kept. With ``weight``
    (the column of the rows' event weights) each kept row keeps its weight, for weighted plots."""

    def __init__(self, task, size=PLOT_ROWS, seed=0, threshold=None, weight=None):
        self.task, self.size, self.threshold, self.weight = task, size, threshold, weight
        self.rng = np.random.default_rng(seed)
        self.keys, self.truth, self.out, self.weights = np.zeros(0), None, None, None
        # Past PLOT_CLASSES classes the predicted class stands for the outputs: a row of
        # 10 000 outputs each would outweigh everything else.
        self.compact = task.kind == "classify" and len(task.classes) > PLOT_CLASSES

    def add(self, frame, truth, out, weight=None):
        """Offer a slice of rows; ``weight``: their event weights, where no frame holds them
        (the rows of a training run's split)."""
        if weight is None and self.weight is not None:
            weight = weights_of(frame, self.weight)
        if self.compact:
            out = predicted(self.task, out, self.threshold)[:, None]
        elif np.ndim(out) == 3:  # an ensemble's: kept rows × members × outputs
            out = np.moveaxis(out, 0, 1)
        keys = np.concatenate([self.keys, self.rng.random(len(truth))])
        truth, out = _joined(self.truth, truth), _joined(self.out, out)
        weights = None if weight is None else _joined(self.weights, weight)
        if len(keys) > self.size:
            keep = np.argpartition(keys, self.size)[:self.size]
            keys, truth, out = keys[keep], truth[keep], out[keep]
            weights = None if weights is None else weights[keep]
        self.keys, self.truth, self.out, self.weights = keys, truth, out, weights

    def frame(self):
        """The sample as a frame: the true label columns, then what predict writes (for
        classes the probabilities only up to ``PLOT_CLASSES`` classes)."""
        if self.truth is None:
            return pd.DataFrame()
        if self.compact:
            names = np.array(self.task.classes, dtype=object)
            return pd.DataFrame({self.task.target: names[self.truth],
                                 f"{self.task.target}_pred": names[self.out[:, 0]]})
        out = np.moveaxis(self.out, 1, 0) if self.out.ndim == 3 else self.out
        return prediction_frame(self.task, self.truth, out, self.threshold)

    def table(self, units, split, position=None, extra=None, name="<table>"):
        """The sample as the plots and predictions.parquet take it: :meth:`frame`, with
        :func:`sample_metadata`; where weighted, the rows' weights beside them, in the column
        that the metadata's ``weight`` names."""
        from fcnn_cli.data.tables import Table

        meta = sample_metadata(self.task, units, split, position, extra)
        frame = self.frame()
        if self.weights is not None:
            meta["weight"] = _free_name("weight", frame.columns)
            frame[meta["weight"]] = self.weights
        return Table(frame, meta["targets"], meta["units"], name,
                     extra={k: v for k, v in meta.items() if k not in ("targets", "units")})


def _joined(kept, new):
    return np.asarray(new) if kept is None else np.concatenate([kept, new])


def _free_name(name, taken):
    """``name``, or with underscores before it, a name none of the columns ``taken`` has."""
    while name in taken:
        name = f"_{name}"
    return name


def prediction_frame(task, truth, out, threshold=None):
    """True labels beside the predictions of the outputs ``out``, as predict writes them."""
    predictions = task.frame(out, threshold).reset_index(drop=True)
    if task.kind == "classify":
        names = np.array(task.classes, dtype=object)[np.asarray(truth, np.int64)]
        true = pd.DataFrame({task.target: names})
        if len(task.classes) > PLOT_CLASSES:
            predictions = predictions[[f"{task.target}_pred"]]
    else:
        true = pd.DataFrame(np.asarray(truth, np.float64).reshape(len(truth), -1),
                            columns=task.targets)
    return pd.concat([true, predictions], axis=1)


def sample_metadata(task, units, split, position=None, extra=None):
    """What the plots need to know of a sample besides its columns, recorded in its file: the
    labels, units, classes, the labels that form a point, the split, and the data file's own
    metadata (its stations, say)."""
    meta = {**(extra or {}), "targets": list(task.targets), "units": dict(units or {}),
            "split": split}
    if task.kind == "classify":
        meta["classes"] = list(task.classes)
        if task.signal is not None:  # the plots' signal class and working point, as recorded
            meta["signal"] = task.signal
        if task.working_point is not None:
            meta["working_point"] = task.working_point
    else:
        meta["position"] = task.point(units, position)
    return meta


def evaluate(predictor, chunks, threshold=None, position=None, by=(), bins=None, edges=None,
             plots=None, paths=None, weight=None, figures=None,
             watchers=()):
    """The report of ``predictor`` on a stream of labelled tables, in bounded memory: the
    metrics, with ``by`` (1 or 2 columns) also the statistics in their bins (``report
    ["binned"]``: ``bins`` bins over each column's range, or ``edges`` per column); with
    ``weight``, the name of the tables' column of event weights, both weighted (the report
    then holds ``sum_of_weights`` beside ``rows``); and with ``plots`` (a directory) the
    plots of a sample of the rows (weighted as well) and of the bins drawn there
    (``report["plots"]`` lists them). ``report["warnings"]`` says (and the log warns) where
    the rows are those the model was trained on: the very rows, as the checkpoint's digest of
    them tells, or (with ``paths``, the model's and the data's as given) the very file its
    run recorded. ``figures`` (:class:`fcnn_cli.network.merit.Figures`) adds the figures of
    merit of a classification (``report["merit"]``). ``watchers`` are fed the rows too (a
    baseline's, say); those with ``plotted(table)`` add their columns to the plots' sample."""
    from fcnn_cli.results.binned import DEFAULT_BINS

    # k-fold networks by a column score the file they trained on (which has the column) out of
    # fold, each row by the network that never saw it: such scores are not optimistic.
    own_folds = predictor.folds is not None and predictor.folds.by is not None
    warnings = [_warned(m) for m in [_training_file(*paths) if paths and not own_folds
                                     else None] if m]
    recorded = predictor.info.get("rows_sha256")
    rows = None if warnings or not recorded else \
        RowsDigest(predictor.features, predictor.targets, predictor.task.kind)
    units, first = predictor.units, {}
    beside, watchers = watchers, list(watchers)
    if by:
        binned = ByColumns(predictor.task, by, threshold, position, units, weight)
        watchers.append(binned)
    if plots:
        sample = Sample(predictor.task, threshold=threshold, weight=weight)
        watchers.append(sample)

    def remembered(tables):
        for table in tables:
            first.setdefault("extra", table.extra)
            first.setdefault("name", table.name)
            yield table
            if rows:  # once evaluate_chunks has checked the table
                rows.add(predictor.encoded(table))

    report = predictor.evaluate_chunks(
        remembered(chunks), threshold, position, watchers,
        weight=weight and (lambda frame: weights_of(frame, weight)), figures=figures)
    if rows and rows.hexdigest() == recorded and not predictor.out_of_fold(first["name"]):
        model = paths[0] if paths else "the model"
        warnings.append(_warned(_trained_on(first["name"], "the very rows", model)))
    report["warnings"] = warnings
    if by:
        report["binned"] = binned.report(bins or DEFAULT_BINS, edges)
    if plots:
        report["plots"] = [str(p) for p in _draw(predictor, sample, first.get("extra"),
                                                 position, report.get("binned"), plots,
                                                 report.get("merit"), beside)]
    return report


def _training_file(model, data):
    """A warning where ``data`` is the table (file and selector) that the run of ``model``
    (its config.json beside it) was trained on."""
    from fcnn_cli.core.fileio import STDIO, same_file
    from fcnn_cli.results.runs import _read_options
    from fcnn_cli.data.tables import split_selector

    try:
        trained = _read_options(Path(model).parent / "config.json").get("data")
    except FcnnError:  # a model without its run: the rows' digest alone tells
        return None
    if not isinstance(trained, str) or STDIO in (str(data), trained):
        return None
    (file, selector), (was, was_selector) = split_selector(data), split_selector(trained)
    if selector == was_selector and same_file(file, was):
        return _trained_on(data, "the file", model)
    return None


def _trained_on(data, what, model):
    return f"{data}: {what} {model} was trained on, validation and test splits included: " \
           "the scores are optimistic; evaluate on rows it has not seen"


def _warned(message):
    log.warning("%s", message)
    return message


def _draw(predictor, sample, extra, position, binned, out_dir, merit=None, beside=()):
    from fcnn_cli.results import plots
    from fcnn_cli.results.plots.binned import binned_plot
    from fcnn_cli.results.plots.figures import noting, recipe_note
    from fcnn_cli.results.plots.significance import significance_plots, signal_meta
    from fcnn_cli.core.fileio import writing

    out_dir = Path(out_dir)
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    table = sample.table(predictor.units, "evaluate", position, extra)
    table.extra.update(signal_meta(merit))
    for watcher in beside:
        table = watcher.plotted(table) if hasattr(watcher, "plotted") else table
    recipe = predictor.recipe.to_dict() if predictor.recipe is not None else None
    with noting(recipe_note(recipe)):
        written = plots.plot_sample(table, out_dir)
        written += significance_plots(merit, out_dir)
        if binned and binned["bins"]:
            name = "binned_" + "_".join(plots.file_part(a["column"]) for a in binned["by"])
            path = binned_plot(binned, out_dir / f"{name}.png", predictor.units)
            written += [path] if path else []
    return written
