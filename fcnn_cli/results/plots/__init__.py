"""Pictures for people: matplotlib (Agg), imported only when a plot is asked for.

Each figure is one PNG, written atomically. :func:`plot_run` draws a run directory's plots from
its files (history.csv, diagnostics.csv, config.json and the held-out rows with their
predictions, predictions.parquet); :func:`plot_sample` draws those of a sample of predictions
alone (``fcnn evaluate --plots``). The plots themselves, a family a module:

* ``curves``: learning curves and the diagnostics of each layer;
* ``regression``: one label's residuals; ``positions``: the maps and the distance of a point;
* ``classification``: confusion matrix, ROC and rejection curves, reliability diagram;
* ``significance``: the significance scan of weights that are expected yields;
* ``binned``: bias and resolution in bins (``fcnn evaluate --by``);
* ``leaderboard``: a sweep's ranked combinations; ``preview``: a table of images;
* ``overtraining``: training against held-out outputs (metrics.json); ``ranking``: importance
  bars and the inputs' correlation matrices (correlations.json);
* ``figures``: what they share (matplotlib, saving, units); ``reading``: a run's files, checked;
  ``parallel``: two groups of figures drawn at once.
"""

import logging
import os
from pathlib import Path

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.core.fileio import writing
from fcnn_cli.results.plots.classification import class_plots
from fcnn_cli.results.plots.curves import diagnostics_plot, learning_curves
from fcnn_cli.results.plots.figures import noting, pyplot, recipe_note
from fcnn_cli.results.plots.parallel import side_by_side
from fcnn_cli.results.plots.positions import position_plots, stations_for
from fcnn_cli.results.plots.reading import (DIAGNOSTICS_COLUMNS, HISTORY_COLUMNS,
                                            history_rows, read_csv, read_json, read_sample)
from fcnn_cli.results.plots.regression import regression_plot
from fcnn_cli.results.plots.significance import run_significance

log = logging.getLogger(__name__)


def check_out_dir(path, option="output"):
    """A directory that plots may be written into: none yet, or a directory; not ``-``,
    which would make a directory of that name where stdout was meant. ``option`` names the
    option that gave it; None for a default."""
    if str(path) == "-":
        raise FcnnError(f"{option}: the PNG files go into a directory, not to stdout ('-'); "
                        "name a directory", (option,))
    if Path(path).exists() and not Path(path).is_dir():
        raise FcnnError(f"{option} {path}: exists and is not a directory" if option else
                        f"{path}: exists and is not a directory", (option,) if option else ())


def plot_run(run_dir, out_dir=None, parallel=False):
    """Draw a run directory's plots into ``out_dir`` (default: its ``plots/``); returns the
    paths written. Reads the run's files only: no network, no data. ``parallel``: the held-out
    rows' plots in a forked process beside the others (:func:`side_by_side`: the drawer's)."""
    from fcnn_cli.results import runs

    run_dir = Path(run_dir)
    if not os.path.lexists(run_dir / "history.csv"):  # one that is no file is read, and refused
        raise FcnnError(f"{run_dir}: not a run directory (no history.csv)")
    check_out_dir(out_dir or run_dir / runs.PLOTS_DIR, "output" if out_dir else None)
    out_dir = Path(out_dir) if out_dir else run_dir / runs.PLOTS_DIR
    runs.check_plots_dir(out_dir, run_dir)
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    config = read_json(run_dir / "config.json")
    load_libraries()
    with noting(recipe_note(config.get("recipe"))):
        return _draw_run(run_dir, out_dir, config, parallel)


def load_libraries():
    """Imports what drawing a run's plots needs, pandas and pyarrow's Parquet (its held-out
    rows) and matplotlib (Agg), with the collector paused where a command loads them
    (:mod:`fcnn_cli.core.collector`); returns pyplot."""
    from fcnn_cli.core import collector

    collector.imported("pandas", "pyarrow.parquet")
    return pyplot()


def _draw_run(run_dir, out_dir, config, parallel):
    from fcnn_cli.results import runs

    history = read_csv(run_dir / "history.csv", HISTORY_COLUMNS, history_rows(config))
    sample = read_sample(run_dir / runs.SAMPLE_FILE)
    if sample is None:
        log.info("%s: none, so only the learning curves are drawn (the run kept no "
                 "held-out rows)", run_dir / runs.SAMPLE_FILE)
    unit = ""
    if sample is not None:
        point = sample.extra.get("position") or sample.targets
        unit = sample.units.get(point[0], "") if point else ""
    diagnostics = read_csv(run_dir / "diagnostics.csv", DIAGNOSTICS_COLUMNS)

    def first_plots():
        first = [learning_curves(history, out_dir / "learning_curves.png", _best_epoch(config),
                                 unit)] if history else []
        if diagnostics:
            first.append(diagnostics_plot(diagnostics, out_dir / "diagnostics.png"))
        return first

    def rows_plots():
        return plot_sample(sample, out_dir) if sample is not None else []

    def last_plots():
        return run_significance(run_dir, out_dir) + _checks(
            run_dir, out_dir, sample.units if sample is not None else {})

    if not parallel or sample is None:
        return first_plots() + rows_plots() + last_plots()
    # The held-out rows' plots take about half the time, for a run of either task.
    rows, (first, last) = side_by_side(rows_plots, lambda: (first_plots(), last_plots()))
    return first + rows + last


def _checks(run_dir, out_dir, units):
    """The overtraining check of metrics.json and the correlations of correlations.json, each
    where the run kept one; one that is damaged is left out with a warning."""
    from fcnn_cli.results import runs
    from fcnn_cli.results.plots.overtraining import overtraining_plot
    from fcnn_cli.results.plots.ranking import correlation_plot

    check = read_json(run_dir / "metrics.json").get("overtraining")
    correlations = read_json(run_dir / runs.CORRELATIONS_FILE)
    drawings = (("metrics.json", check, lambda: overtraining_plot(
                    check, out_dir / "overtraining.png", units)),
                (runs.CORRELATIONS_FILE, correlations, lambda: correlation_plot(
                    _matrices(correlations), correlations["features"],
                    out_dir / "correlations.png")))
    written = []
    for name, found, draw in drawings:
        try:
            if found:
                written.append(draw())
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            log.warning("%s: damaged (%s %s): its plot is left out", run_dir / name,
                        type(e).__name__, e)
    return written


def _matrices(correlations):
    """correlations.json's matrices as the correlation plot takes them (null: NaN)."""
    import numpy as np

    return [(m["title"], np.array([[np.nan if v is None else v for v in row]
                                   for row in m["matrix"]], np.float64), m["rows"])
            for m in correlations["matrices"]]


def _best_epoch(config):
    best = config.get("best_epoch")
    return best if type(best) is int else None


def plot_sample(table, out_dir):
    """The plots of a sample of rows with their predictions (what
    :func:`fcnn_cli.results.evaluation.prediction_frame` makes, with
    :func:`~fcnn_cli.results.evaluation.sample_metadata` in ``table.extra``): per label for
    regression, the maps for a point, the class plots for classification; weighted where the
    metadata's ``weight`` names a column of event weights. Returns the paths written."""
    meta = table.extra
    out_dir = Path(out_dir)
    split = meta.get("split", "")
    frame = _finite_rows(table)
    if not len(frame):
        return []
    weight = frame[meta["weight"]].to_numpy("float64") if meta.get("weight") else None
    if "classes" in meta:
        return class_plots(frame, table.targets[0], meta["classes"], out_dir, weight, meta)
    written = []
    for name, part in zip(table.targets, file_parts(table.targets)):
        written.append(regression_plot(frame[name], frame[f"{name}_pred"], name,
                                       table.units.get(name, ""),
                                       out_dir / f"regression_{part}.png", split, weight))
    point = meta.get("position")
    if point:
        written += position_plots(frame, point, table.units.get(point[0], ""),
                                  stations_for(meta, point), out_dir,
                                  meta.get("baselines") or ())
    return [p for p in written if p]


def _finite_rows(table):
    """The sample's rows whose numbers (labels, predictions, probabilities) are all finite:
    one NaN would take a histogram's range or a map's bins with it."""
    import numpy as np

    frame = table.frame
    numbers = frame.select_dtypes("number")
    if not numbers.shape[1]:
        return frame
    finite = np.isfinite(numbers.to_numpy(np.float64)).all(axis=1)
    dropped = int((~finite).sum())
    if dropped:
        log.warning("%d of %d rows hold a non-finite label or prediction: left out of the plots",
                    dropped, len(frame))
        frame = frame[finite]
    return frame


def file_part(name):
    """A label as part of a file name."""
    import re

    return re.sub(r"[^\w.-]+", "_", name)[:80] or "label"


def file_parts(names):
    """:func:`file_part` of each name, made unique with a number (``a b`` and ``a_b`` would
    both be ``a_b``, and one plot would replace the other)."""
    taken, parts = set(), []
    for name in names:
        part, n = file_part(name), 1
        while part.lower() in taken:  # lower: a file system may ignore case
            n += 1
            part = f"{file_part(name)}_{n}"
        taken.add(part.lower())
        parts.append(part)
    return parts
