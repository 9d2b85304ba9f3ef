"""Pictures for people: matplotlib (Agg), imported only when a plot is asked for.

Each figure is one PNG, written atomically. :func:`plot_run` draws a run directory's plots from
its files (history.csv, diagnostics.csv, config.json and the held-out rows with their
predictions, predictions.parquet); :func:`plot_sample` draws those of a sample of predictions
alone (``fcnn evaluate --plots``); :func:`binned_plot` draws bias and resolution in bins.
"""

import contextlib
import csv
import io
import json
import logging
import math
import os
import warnings
from pathlib import Path

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.core.fileio import check_regular, open_output, read_regular, writing

log = logging.getLogger(__name__)

GRID_ROWS, GRID_COLS = 4, 6  # galaxy_grid's images
DPI = 100
SMALL, WIDE, TALL = (6.4, 4.8), (11.0, 4.4), (11.0, 7.6)  # inches: one panel, two, two rows
ARROWS = 300  # events a position map draws
HEXBIN_ROWS = 2000  # beyond, the residual against true is a 2-D histogram
MAP_BINS = 20  # per axis at most, in the map of the mean distance
MAP_MARGIN = 0.06  # of the span, around what a position map draws: room for markers, names
MAP_CELL_ROWS = 30  # events a cell of the map of the mean distance aims at
MIN_ROWS = 10  # a map's cells and a reliability diagram's bins of fewer rows are not drawn
MAX_COUNTED_CELLS = 100  # up to this many cells a map writes each cell's rows in it
MAX_CLASS_PLOTS = 20  # classes beyond which no confusion matrix or ROC curves are drawn
MAX_STATIONS = 500  # stations a map draws at most
MAX_STATION_NAMES = 40  # beyond, the stations are drawn without their names
MAX_MARKED_LAYERS = 12  # layers a diagnostics plot draws (evenly spread, first and last kept)


def check_out_dir(path, option="output"):
    """A directory that plots may be written into: none yet, or a directory; not ``-``,
    which would make a directory of that name where stdout was meant."""
    if str(path) == "-":
        raise FcnnError(f"{option}: the PNG files go into a directory, not to stdout ('-'); "
                        "name a directory", (option,))
    if Path(path).exists() and not Path(path).is_dir():
        raise FcnnError(f"{option} {path}: exists and is not a directory", (option,))


def check_png(path):
    if not str(path).lower().endswith(".png"):
        raise FcnnError(f"{path}: the preview is a PNG image; name it *.png")


def _pyplot():
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # else a caller's (a notebook's) is kept
        matplotlib.use("Agg")  # files only: a batch job has no display
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def _drawing():
    """Around the drawing of a figure (a decorator): a label in a script the font lacks (日本)
    is drawn as boxes, not worth a warning a plot; the caller's own filters stay as they were."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font",
                                category=UserWarning)
        yield


def _save(fig, path):
    plt = _pyplot()
    try:
        with open_output(path) as stream, writing(path):
            fig.savefig(stream, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return Path(path)


def _label(name, unit):
    return f"{name} ({unit})" if unit else name


def _length_unit(values, unit):
    """``(factor, unit)``: :func:`fcnn_cli.results.units.readable_length` for lengths like ``values``
    (by their median size), so that metres in a km region read as metres."""
    import numpy as np

    from fcnn_cli.results.units import readable_length

    size = np.abs(np.asarray(values, np.float64))
    size = size[np.isfinite(size) & (size > 0)]
    return readable_length(float(np.median(size)) if len(size) else 0.0, unit)


@_drawing()
def galaxy_grid(table, path, rows=GRID_ROWS, cols=GRID_COLS):
    """A grid of the first images in a galaxy table, each titled with its label."""
    import numpy as np

    plt = _pyplot()
    check_png(path)
    label = table.targets[0]
    pixels = table.frame.drop(columns=[label]).to_numpy(dtype=np.float32)
    size = int(round(pixels.shape[1] ** 0.5))
    count = min(rows * cols, len(pixels))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.75 * rows))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < count:
            ax.imshow(pixels[i].reshape(size, size), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_title(str(table.frame[label].iloc[i]), fontsize=9)
    fig.tight_layout()
    _save(fig, path)


# --- learning curves and diagnostics ---------------------------------------------------------

HEADLINE = {"val_mean_distance": "mean distance", "val_rmse": "RMSE",
            "val_accuracy": "accuracy"}


@_drawing()
def learning_curves(history, path, best_epoch=None, unit=""):
    """Training and validation loss (log scale while every loss is positive: a Gaussian
    negative log-likelihood is not), the validation headline metric (in a readable length unit)
    and the learning rate against epoch, the kept epoch marked."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(14.0, 4.2))
    loss, metric, lr = axes
    losses = {"training": [r["train_loss"] for r in history],
              "validation": [r["val_loss"] for r in history]}
    for label, values in losses.items():
        loss.plot(epochs, values, label=label)
    loss.set(yscale=_scale(losses["training"] + losses["validation"]), xlabel="epoch",
             ylabel="loss", title="Loss")
    key = next((k for k in HEADLINE
                if all(isinstance(r.get(k), (int, float)) for r in history)), None)
    if key:
        name, values = HEADLINE[key], [r[key] for r in history]
        factor, shown = (1.0, "") if key == "val_accuracy" else _length_unit(values, unit)
        metric.plot(epochs, [factor * v for v in values], color="C1")
        metric.set(yscale="linear" if key == "val_accuracy" else _scale(values),
                   xlabel="epoch", ylabel=_label(name, shown), title=f"Validation {name}")
    _plain_log(metric)
    lr.plot(epochs, [r["lr"] for r in history], color="C2")
    lr.set(xlabel="epoch", ylabel="learning rate", title="Learning rate")
    for ax in axes:
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1,
                       label=f"kept (epoch {best_epoch})")
        ax.grid(alpha=0.3)
    loss.legend()
    _whole_epochs(axes)
    fig.tight_layout()
    return _save(fig, path)


@_drawing()
def diagnostics_plot(rows, path):
    """Per layer: the weight-gradient norm against epoch (log scale), and the activations'
    mean and variance layer by layer at the first and the last epoch measured."""
    plt = _pyplot()
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    epochs = sorted({r["epoch"] for r in rows})
    shown = _spread(layers, MAX_MARKED_LAYERS)
    fig, (grad, mean, var) = plt.subplots(1, 3, figsize=(15.0, 4.4))
    colours = plt.get_cmap("viridis")
    for i, layer in enumerate(shown):
        mine = [r for r in rows if r["layer"] == layer]
        grad.plot([r["epoch"] for r in mine], [max(r["grad_norm"], 1e-300) for r in mine],
                  marker="." if len(epochs) < 30 else None,
                  color=colours(i / max(len(shown) - 1, 1)),
                  label=f"layer {layer}" if layer != "output" else "output")
    grad.set(yscale="log", xlabel="epoch", ylabel="‖∇W‖ (weight-gradient norm)",
             title="Weight gradients per layer")
    grad.legend(fontsize=7, ncol=2 if len(shown) > 6 else 1)
    positions = list(range(1, len(layers) + 1))
    for epoch, style in ((epochs[0], "o--"), (epochs[-1], "s-")):
        mine = {r["layer"]: r for r in rows if r["epoch"] == epoch}
        mean.plot(positions, [mine[l]["act_mean"] for l in layers], style,
                  label=f"epoch {epoch}")
        var.plot(positions, [max(mine[l]["act_var"], 1e-300) for l in layers], style,
                 label=f"epoch {epoch}")
    names = [str(l) for l in layers]
    for ax, what in ((mean, "mean"), (var, "variance")):
        ax.set_xticks(positions, names if len(names) <= 20 else None)
        if len(names) > 20:
            ax.set_xticks(positions[::max(1, len(names) // 10)],
                          names[::max(1, len(names) // 10)])
        ax.set(xlabel="layer", ylabel=f"activation {what}", title=f"Activation {what} per layer")
        ax.legend()
    var.set_yscale("log")
    _whole_epochs([grad])
    for ax in (grad, mean, var):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _scale(values):
    """A log axis where every finite value is positive, else a linear one (log would draw
    nothing of a value at or below 0, and warn)."""
    finite = [v for v in values if math.isfinite(v)]
    return "log" if finite and min(finite) > 0 else "linear"


def _plain_log(ax):
    """A log y axis's ticks as plain numbers (20, 30), not as 2 × 10¹, 3 × 10¹: a length
    in a readable unit reads as one."""
    from matplotlib.ticker import LogFormatter

    if ax.get_yscale() == "log":
        ax.yaxis.set_major_formatter(LogFormatter())
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))


def _whole_epochs(axes):
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _spread(items, most):
    if len(items) <= most:
        return items
    step = (len(items) - 1) / (most - 1)
    return [items[round(i * step)] for i in range(most)]


# --- regression ----------------------------------------------------------------------------

@_drawing()
def regression_plot(true, pred, name, unit, path, split=""):
    """The residual against true (a 2-D histogram when rows are many, its cells as fine as the
    residuals: on predicted against true they would be as coarse as the label's range), and the
    residual histogram with its bias and resolution written on it; residuals in a readable
    length unit."""
    import numpy as np

    plt = _pyplot()
    true, pred = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    fig, (scatter, hist) = plt.subplots(1, 2, figsize=WIDE)
    factor, shown = _length_unit(pred - true, unit)
    residual = factor * (pred - true)
    span = _span(residual.min(), residual.max())
    if len(true) > HEXBIN_ROWS:
        cells = scatter.hexbin(true, residual, gridsize=60, bins="log", mincnt=1, cmap="viridis",
                               extent=_span(true.min(), true.max()) + span)
        fig.colorbar(cells, ax=scatter, label="rows")
    else:
        scatter.scatter(true, residual, s=6, alpha=0.6)
    scatter.axhline(0, color="red", linewidth=1)
    what = f"residual: predicted − true {_label(name, shown)}"
    scatter.set(xlabel=f"true {_label(name, unit)}", ylabel=what,
                title=f"{name}: residual against true" + (f" ({split})" if split else ""))
    stats = residual_summary(residual)
    hist.hist(residual, bins=_bins(residual), range=span, color="C0", alpha=0.8)
    hist.axvline(0, color="grey", linewidth=1)
    hist.axvline(stats["bias"], color="red", linewidth=1)
    u = f" {shown}" if shown else ""
    hist.text(0.98, 0.97, f"rows {len(residual)}\nbias {stats['bias']:.3g}{u}\n"
              f"resolution (σ) {stats['resolution']:.3g}{u}\n"
              f"median {stats['median']:.3g}{u}\n"
              f"half 16–84 % {stats['robust_resolution']:.3g}{u}",
              transform=hist.transAxes, ha="right", va="top", fontsize=9,
              bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    hist.set(xlabel=what, ylabel="rows", title=f"{name}: residuals")
    hist.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _span(low, high):
    """``(low, high)``, widened where it is a single value (a histogram's cells, an axis
    need a width)."""
    low, high = float(low), float(high)
    if high - low > 1e-9 * max(abs(low), abs(high)):  # else rounding makes equal edges
        return low, high
    pad = 0.5 * abs(low) or 0.5
    return low - pad, high + pad


def residual_summary(residual):
    """Bias, resolution and their robust forms of one label's residuals."""
    import numpy as np

    p16, median, p84 = np.percentile(residual, [16, 50, 84])
    return {"bias": float(np.mean(residual)),
            "resolution": float(np.std(residual, ddof=1)) if len(residual) > 1 else math.nan,
            "median": float(median), "robust_resolution": float(p84 - p16) / 2}


def _bins(values):
    import numpy as np

    return int(np.clip(np.sqrt(len(values)), 10, 100))


# --- positions -----------------------------------------------------------------------------

@_drawing()
def position_map(true, pred, names, unit, path, stations=None, seed=0):
    """The region: true → predicted arrows for a sample of events, and the stations, every
    arrow head and station inside the axes and the stations' names above the arrows."""
    import numpy as np

    plt = _pyplot()
    true, pred = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    rng = np.random.default_rng(seed)
    shown = rng.choice(len(true), min(ARROWS, len(true)), replace=False)
    tails = true[shown, :2]
    arrows = pred[shown, :2] - tails
    factor = magnification(np.hypot(*arrows.T), np.ptp(true[:, :2], axis=0).max())
    heads = tails + factor * arrows
    fig, ax = plt.subplots(figsize=(7.4, 6.6))
    ax.scatter(*tails.T, s=8, color="C0", label="true", zorder=3)
    ax.quiver(*tails.T, *(heads - tails).T, angles="xy", scale_units="xy", scale=1, color="C3",
              width=0.003, zorder=2,
              label="true → predicted" + (f" (× {factor:g})" if factor > 1 else ""))
    xy = np.asarray(stations["positions"], np.float64)[:, :2] if stations else np.zeros((0, 2))
    limits = _map_limits(np.concatenate([tails, heads, xy]))
    ax.set(xlim=limits[0], ylim=limits[1])
    if stations:
        ax.scatter(*xy.T, marker="^", s=140, color="black", label="station", zorder=4)
        if len(xy) <= MAX_STATION_NAMES:
            _station_names(ax, stations["names"], xy, limits)
    ax.set(xlabel=_label(names[0], unit), ylabel=_label(names[1], unit),
           title=f"True and predicted positions ({len(shown)} events"
                 + (f"; arrows {factor:g} × as long)" if factor > 1 else ")"))
    ax.set_aspect("equal", adjustable="box")  # the limits stay: nothing is cut off
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _map_limits(points):
    """x and y limits that hold every point, with a margin of MAP_MARGIN of the larger span."""
    low, high = points.min(axis=0), points.max(axis=0)
    pad = MAP_MARGIN * float((high - low).max())
    return [_span(lo - pad, hi + pad) for lo, hi in zip(low, high)]


def _station_names(ax, names, xy, limits):
    """Each station's name beside it on the side towards the middle of the map (inside the
    axes), on a pale box above the arrows."""
    middle = [sum(lim) / 2 for lim in limits]
    for name, (x, y) in zip(names, xy):
        right, up = x <= middle[0], y <= middle[1]
        ax.annotate(name, (x, y), xytext=(8 if right else -8, 8 if up else -8),
                    textcoords="offset points", ha="left" if right else "right",
                    va="bottom" if up else "top", fontsize=10, zorder=5,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.8,
                          "edgecolor": "none"})


def magnification(lengths, span):
    """A round factor (1, 2 or 5 × 10^k, at least 1) that draws the median arrow at about a
    fortieth of the map's span: errors far smaller than the region still show."""
    import numpy as np

    median = float(np.median(lengths)) if len(lengths) else 0.0
    if not (median > 0 and span > 0):
        return 1
    want = span / 40 / median
    if want <= 1:
        return 1
    power = 10 ** math.floor(math.log10(want))
    return max(m * power for m in (1, 2, 5) if m * power <= want)


@_drawing()
def distance_map(true, pred, names, unit, path, stations=None):
    """The mean distance between true and predicted position in 2-D bins of the true one:
    where the network is poor."""
    import numpy as np

    from fcnn_cli.results.binned import Binned

    plt = _pyplot()
    true, pred = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    binned = Binned(names[:2], names, point=list(range(len(names))))
    binned.add(true[:, :2], true, pred)
    report = binned.report(map_bins(len(true)))
    factor, shown = _length_unit(np.sqrt(((pred - true) ** 2).sum(axis=1)), unit)
    fig, ax = plt.subplots(figsize=(7.4, 6.2))
    note = _heat(ax, fig, report, lambda b: factor * b["distance"]["mean"],
                 _label("mean distance", shown))
    if note is None:
        _pyplot().close(fig)
        log.warning("no map of the mean distance: no event has a finite true position")
        return None
    handles = [_sparse_cells()]
    if stations:
        xy = np.asarray(stations["positions"], np.float64)
        handles.insert(0, ax.scatter(xy[:, 0], xy[:, 1], marker="^", s=140, color="white",
                                     edgecolor="black", label="station", clip_on=False))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2,
              fontsize=9)
    ax.set(xlabel=f"true {_label(names[0], unit)}", ylabel=f"true {_label(names[1], unit)}",
           title=f"Mean distance between true and predicted position\n({note})")
    ax.set_aspect("equal", adjustable="box")
    fig.tight_layout()
    return _save(fig, path)


def map_bins(rows):
    """Bins per axis of a map of ``rows`` events: about MAP_CELL_ROWS events a cell, 3 to
    MAP_BINS."""
    return int(min(max(math.sqrt(rows / MAP_CELL_ROWS), 3), MAP_BINS))


def _heat(ax, fig, report, value, label, cmap="viridis"):
    """A 2-D binned report as a coloured map of ``value(bin)``. A cell of fewer than
    MIN_ROWS rows, whose colour one outlier would set, is not drawn: the hatched background
    (:func:`_sparse_cells`) shows there. Where the cells are at most MAX_COUNTED_CELLS, each is
    labelled with its rows (texts are slow to draw). Returns a note on the rows a cell for the
    title (None, and nothing drawn, for a report of no bins)."""
    import numpy as np

    if not report["bins"]:
        return None
    xe, ye = (np.asarray(a["edges"]) for a in report["by"])
    counts = np.zeros((len(xe) - 1, len(ye) - 1), np.int64)
    grid = np.full(counts.shape, np.nan)
    for b in report["bins"]:
        counts[tuple(b["index"])] = b["count"]
        if b["count"] >= MIN_ROWS:
            grid[tuple(b["index"])] = value(b)
    ax.patch.set(**SPARSE)
    mesh = ax.pcolormesh(xe, ye, grid.T, cmap=cmap, shading="flat")
    if np.isfinite(grid).any():  # else a scale of nothing
        fig.colorbar(mesh, ax=ax, label=label)
    if counts.size > MAX_COUNTED_CELLS:
        return f"{counts.min()}–{counts.max()} rows a cell"
    dark = mesh.norm(grid) < 0.5  # viridis is dark at its low end
    for (i, j), n in np.ndenumerate(counts):
        ax.text((xe[i] + xe[i + 1]) / 2, (ye[j] + ye[j + 1]) / 2, str(n), ha="center",
                va="center", fontsize=8, color="white" if dark[i, j] else "black")
    return "numbers: rows in each cell"


SPARSE = {"hatch": "///", "edgecolor": "0.7"}  # the look of a cell with too few rows to draw


def _sparse_cells():
    """The legend's entry for the cells of too few rows."""
    from matplotlib.patches import Patch

    return Patch(facecolor="white", **SPARSE, label=f"fewer than {MIN_ROWS} rows: not drawn")


@_drawing()
def distance_cdf(distance, unit, path):
    """The cumulative distribution of the distance, median, 68th and 95th percentiles marked."""
    import numpy as np

    plt = _pyplot()
    factor, unit = _length_unit(distance, unit)
    d = np.sort(factor * np.asarray(distance, np.float64))
    fig, ax = plt.subplots(figsize=SMALL)
    ax.plot(d, np.arange(1, len(d) + 1) / len(d))
    for q, style in ((50, ":"), (68, "--"), (95, "-.")):
        v = float(np.percentile(d, q))
        ax.axvline(v, color="grey", linestyle=style, linewidth=1,
                   label=f"{q} %: {v:.3g}{' ' + unit if unit else ''}")
    if d[0] > 0 and d[-1] / d[0] > 1e3:
        ax.set_xscale("log")
    ax.set(xlabel=_label("distance between true and predicted position", unit),
           ylabel="fraction of events within", title=f"Distance ({len(d)} events)",
           ylim=(0, 1.01))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


# --- classification ------------------------------------------------------------------------

@_drawing()
def confusion_plot(true, pred, classes, path):
    """The confusion matrix in counts and normalised by row (the true class)."""
    import numpy as np

    plt = _pyplot()
    k = len(classes)
    counts = np.bincount(np.asarray(true) * k + np.asarray(pred), minlength=k * k).reshape(k, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts / counts.sum(axis=1, keepdims=True)
    side = min(5.5 + 0.25 * k, 11.0)
    fig, axes = plt.subplots(1, 2, figsize=(2 * side + 1, side))
    for ax, values, title, fmt in ((axes[0], counts, "Confusion matrix (counts)", "d"),
                                   (axes[1], rates, "Normalised by true class", ".2f")):
        shown = ax.imshow(values, cmap="Blues")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        ax.set_xticks(range(k), classes, rotation=45 if k > 4 else 0, ha="right" if k > 4 else
                      "center")
        ax.set_yticks(range(k), classes)
        ax.set(xlabel="predicted class", ylabel="true class", title=title)
        if k <= 12:
            top = np.nanmax(values) if values.size else 0
            for i in range(k):
                for j in range(k):
                    v = values[i, j]
                    ax.text(j, i, "–" if v != v else format(v, fmt), ha="center",
                            va="center", fontsize=9,
                            color="white" if top and v > 0.6 * top else "black")
    fig.tight_layout()
    return _save(fig, path)


@_drawing()
def roc_plot(true, proba, classes, path):
    """ROC curves: of the second class for two classes, one-vs-rest for more."""
    import numpy as np

    from fcnn_cli.network.metrics import roc_auc

    plt = _pyplot()
    true, proba = np.asarray(true), np.asarray(proba, np.float64)
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    which = [1] if len(classes) == 2 else range(len(classes))
    lone = [classes[i] for i in which if (true == i).all() or not (true == i).any()]
    if len(lone) == len(which):
        plt.close(fig)
        log.warning("no ROC curve: the sample's rows are all of one class (%s)",
                    classes[int(true[0])] if len(true) else "none")
        return None
    if lone:
        log.warning("no ROC curve of class(es) %s: none or all of the sample's rows are of "
                    "it", ", ".join(map(str, lone[:10])) + (" …" if len(lone) > 10 else ""))
    for i in which:
        positive = true == i
        if positive.all() or not positive.any():
            continue
        fpr, tpr = roc_curve(positive, proba[:, i])
        auc = roc_auc(positive, proba[:, i])
        ax.plot(fpr, tpr, label=f"{classes[i]} (AUC {auc:.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate",
           title="ROC curve" + (" (one class against the rest)" if len(classes) > 2 else ""),
           xlim=(0, 1), ylim=(0, 1.01))
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def roc_curve(positive, score):
    """False and true positive rates at every distinct score, from the highest down."""
    import numpy as np

    order = np.argsort(-np.asarray(score), kind="stable")
    score, positive = np.asarray(score)[order], np.asarray(positive, bool)[order]
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tp = np.cumsum(positive)[last]
    fp = last + 1 - tp
    return (np.r_[0, fp / max(fp[-1], 1)], np.r_[0, tp / max(tp[-1], 1)])


@_drawing()
def reliability_plot(true, proba, classes, path, bins=10):
    """The reliability diagram: in bins of the predicted probability, how often it came true
    (for two classes that of the second class; for more the most probable class's), bins of
    fewer than MIN_ROWS rows open and not joined, with the rows in each bin below."""
    import numpy as np

    from fcnn_cli.results.binned import wilson_error

    plt = _pyplot()
    true, proba = np.asarray(true), np.asarray(proba, np.float64)
    if len(classes) == 2:
        p, hit, what = proba[:, 1], true == 1, f"p({classes[1]})"
        observed = f"share that is {classes[1]}"
    else:
        p, hit, what = proba.max(axis=1), proba.argmax(axis=1) == true, "p(predicted class)"
        observed = "share predicted right"
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=bins) / count
        freq = np.bincount(index, weights=hit, minlength=bins) / count
        err = wilson_error(freq, count)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 7.0), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    ok, sparse = count >= MIN_ROWS, (count > 0) & (count < MIN_ROWS)
    top.errorbar(mean_p[ok], freq[ok], yerr=err[ok], fmt="o", color="C0", capsize=3,
                 label="network")
    # The line joins neighbouring bins of enough rows only: through bins of a few rows it
    # would zigzag, and over a gap it would show what was not measured.
    top.plot(np.where(ok, mean_p, np.nan), np.where(ok, freq, np.nan), color="C0")
    if sparse.any():
        top.errorbar(mean_p[sparse], freq[sparse], yerr=err[sparse], fmt="o", mfc="white",
                     color="C0", capsize=3, label=f"bins of fewer than {MIN_ROWS} rows")
    top.set(ylabel=observed, title=f"Reliability of {what}", xlim=(0, 1),
            ylim=(0, 1.02))
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.bar((edges[:-1] + edges[1:]) / 2, count, width=1 / bins * 0.9, color="C0")
    bottom.set(xlabel=f"predicted {what}", ylabel="rows")
    if count.max() > 0 and count[count > 0].min() * 100 < count.max():
        bottom.set_yscale("log")
    fig.tight_layout()
    return _save(fig, path)


# --- bias and resolution in bins -----------------------------------------------------------

@_drawing()
def binned_plot(report, path, targets_units=None):
    """Bias and resolution (with their errors, robust forms as open markers), the mean
    distance for a point, or the accuracy for classes, against the bin variable; for two bin
    variables a map of the resolution (or the mean distance, or the accuracy) per cell."""
    if len(report["by"]) == 2:
        return _binned_map(report, path, targets_units or {})
    return _binned_curves(report, path, targets_units or {})


def _no_binned_plot(report):
    log.warning("no plot in bins of %s: %s", " and ".join(a["column"] for a in report["by"]),
                report.get("empty") or f"all {report['rows']} rows are outside the bins")


def _binned_curves(report, path, units):
    import numpy as np

    axis = report["by"][0]
    bins = [b for b in report["bins"] if b["count"]]
    if not bins:
        _no_binned_plot(report)
        return None
    # Halves first: high - low overflows near the largest floats.
    centre = np.array([b["low"][0] / 2 + b["high"][0] / 2 for b in bins])
    half = np.array([b["high"][0] / 2 - b["low"][0] / 2 for b in bins])
    xlabel = _label(axis["column"], axis["unit"])
    if "accuracy" in bins[0]:
        return _accuracy_curve(bins, centre, half, axis["column"], xlabel, path)
    names = list(bins[0]["targets"])
    panels = len(names) + ("distance" in bins[0])
    fig, axes = _pyplot().subplots(2, panels, figsize=(5.2 * panels + 0.6, 7.6), squeeze=False)
    for j, name in enumerate(names):
        _residual_panels(axes[0, j], axes[1, j], [b["targets"][name] for b in bins], centre,
                         half, name, units.get(name, ""), xlabel)
    if "distance" in bins[0]:
        _distance_panels(axes[0, -1], axes[1, -1], bins, centre, half,
                         units.get(names[0], ""), xlabel)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _accuracy_curve(bins, centre, half, column, xlabel, path):
    fig, ax = _pyplot().subplots(figsize=SMALL)
    ax.errorbar(centre, [b["accuracy"] for b in bins], xerr=half,
                yerr=[_nan0(b["accuracy_error"]) for b in bins], fmt="o", capsize=3)
    ax.set(xlabel=xlabel, ylabel="accuracy", title=f"Accuracy in bins of {column}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _residual_panels(top, bottom, stats, centre, half, name, unit, xlabel):
    """Bias above, resolution below, each with its error bars and robust form, in the length
    unit that reads best for the resolution."""
    k, unit = _length_unit([s["resolution"] for s in stats], unit)
    top.errorbar(centre, [k * s["bias"] for s in stats], xerr=half,
                 yerr=[k * _nan0(s["bias_error"]) for s in stats], fmt="o", capsize=3,
                 label="mean")
    top.plot(centre, [k * s["median"] for s in stats], "o", mfc="none", color="C1",
             label="median")
    top.axhline(0, color="grey", linewidth=1)
    top.set(ylabel=f"bias {_label(name, unit)}", title=f"{name}: bias (predicted − true)")
    bottom.errorbar(centre, [k * s["resolution"] for s in stats], xerr=half,
                    yerr=[k * _nan0(s["resolution_error"]) for s in stats], fmt="o", capsize=3,
                    label="standard deviation")
    bottom.plot(centre, [k * s["robust_resolution"] for s in stats], "o", mfc="none",
                color="C1", label="half 16–84 %")
    bottom.set(xlabel=xlabel, ylabel=f"resolution {_label(name, unit)}",
               title=f"{name}: resolution")
    top.legend(fontsize=8)
    bottom.legend(fontsize=8)


def _distance_panels(top, bottom, bins, centre, half, unit, xlabel):
    """The mean and median distance above, the rows per bin below."""
    d = [b["distance"] for b in bins]
    k, unit = _length_unit([s["mean"] for s in d], unit)
    top.errorbar(centre, [k * s["mean"] for s in d], xerr=half,
                 yerr=[k * _nan0(s["error"]) for s in d], fmt="o", capsize=3, label="mean")
    top.plot(centre, [k * s["median"] for s in d], "o", mfc="none", color="C1", label="median")
    top.set(ylabel=_label("distance", unit), title="Distance between true and predicted")
    top.legend(fontsize=8)
    bottom.bar(centre, [b["count"] for b in bins], width=2 * half * 0.9)
    bottom.set(xlabel=xlabel, ylabel="rows", title="Rows per bin")


def _nan0(v):
    return 0.0 if v != v else v


def _binned_map(report, path, units):
    plt = _pyplot()
    x, y = report["by"]
    bins = [b for b in report["bins"] if b["count"]]
    if not bins:
        _no_binned_plot(report)
        return None
    first = bins[0]
    if "accuracy" in first:
        panels = [("accuracy", lambda b: b["accuracy"], "accuracy", "")]
    elif "distance" in first:
        panels = [("mean distance", lambda b: b["distance"]["mean"], "mean distance",
                   units.get(next(iter(first["targets"])), ""))]
    else:
        panels = [(f"{t}: resolution", lambda b, t=t: b["targets"][t]["resolution"],
                   f"resolution of {t}", units.get(t, "")) for t in first["targets"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.6 * len(panels), 5.4), squeeze=False)
    for ax, (title, value, name, unit) in zip(axes.flat, panels):
        k, unit = _length_unit([value(b) for b in bins], unit)
        note = _heat(ax, fig, report, lambda b, value=value, k=k: k * value(b),
                     _label(name, unit))
        ax.legend(handles=[_sparse_cells()], loc="upper center", bbox_to_anchor=(0.5, -0.12),
                  fontsize=9)
        ax.set(xlabel=_label(x["column"], x["unit"]), ylabel=_label(y["column"], y["unit"]),
               title=f"{title[0].upper()}{title[1:]} in bins of {x['column']} and {y['column']}"
                     f"\n({note})")
    fig.tight_layout()
    return _save(fig, path)


# --- a sample of predictions, and a whole run ------------------------------------------------

def plot_sample(table, out_dir):
    """The plots of a sample of rows with their predictions (what
    :func:`fcnn_cli.results.evaluation.prediction_frame` makes, with
    :func:`~fcnn_cli.results.evaluation.sample_metadata` in ``table.extra``): per label for
    regression, the maps for a point, the class plots for classification. Returns the paths
    written."""
    meta = table.extra
    out_dir = Path(out_dir)
    split = meta.get("split", "")
    frame = _finite_rows(table)
    if not len(frame):
        return []
    if "classes" in meta:
        return _class_plots(frame, table.targets[0], meta["classes"], out_dir)
    written = []
    for name, part in zip(table.targets, file_parts(table.targets)):
        written.append(regression_plot(frame[name], frame[f"{name}_pred"], name,
                                       table.units.get(name, ""),
                                       out_dir / f"regression_{part}.png", split))
    point = meta.get("position")
    if point:
        written += _position_plots(frame, point, table.units.get(point[0], ""),
                                   stations_for(meta, point), out_dir)
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


def _position_plots(frame, point, unit, stations, out_dir):
    import numpy as np

    true = frame[point].to_numpy(np.float64)
    pred = frame[[f"{c}_pred" for c in point]].to_numpy(np.float64)
    distance = np.sqrt(((pred - true) ** 2).sum(axis=1))
    return [position_map(true, pred, point, unit, out_dir / "position_map.png", stations),
            distance_map(true, pred, point, unit, out_dir / "distance_map.png", stations),
            distance_cdf(distance, unit, out_dir / "distance_cdf.png")]


def _class_plots(frame, target, classes, out_dir):
    import numpy as np

    if len(classes) > MAX_CLASS_PLOTS:
        log.warning("%d classes: no confusion matrix, ROC curves or reliability diagram "
                    "(drawn up to %d classes; the per-class metrics are in metrics.json)",
                    len(classes), MAX_CLASS_PLOTS)
        return []
    index = {c: i for i, c in enumerate(classes)}
    true = frame[target].astype(str).map(index).to_numpy(np.int64)
    pred = frame[f"{target}_pred"].astype(str).map(index).to_numpy(np.int64)
    written = [confusion_plot(true, pred, classes, out_dir / "confusion.png")]
    columns = [f"p_{c}" for c in classes]
    if all(c in frame.columns for c in columns):
        proba = frame[columns].to_numpy(np.float64)
        written += [roc_plot(true, proba, classes, out_dir / "roc.png"),
                    reliability_plot(true, proba, classes, out_dir / "reliability.png")]
    else:
        log.warning("no ROC curves or reliability diagram: the sample holds no probability "
                    "of each class")
    return [p for p in written if p]


def stations_for(meta, point):
    """The stations the data file records, where their coordinates are the point's labels;
    None if it records none, or none that make sense (the metadata is the file's, untrusted).
    Past MAX_STATIONS only the first are drawn (and looked at)."""
    stations = meta.get("stations")
    try:
        if stations["columns"][:2] != list(point[:2]):
            return None
        given = stations["positions"]
        positions = [[float(v) for v in p] for p in given[:MAX_STATIONS]]
        names = stations.get("names", range(1, len(given) + 1))
        if len(names) != len(given):
            return None
        names = [str(n) for n in names[:MAX_STATIONS]]
        if not positions or any(len(p) != len(point) for p in positions) or \
                not all(math.isfinite(v) for p in positions for v in p):
            return None
    except (TypeError, KeyError, ValueError, IndexError):
        return None
    if len(given) > MAX_STATIONS:
        log.warning("the data file records %d stations: the maps draw the first %d",
                    len(given), MAX_STATIONS)
    return {"names": names, "positions": positions}


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


MAX_LEADERBOARD_ROWS = 60  # combinations a leaderboard figure shows, the best ones


@_drawing()
def leaderboard_plot(rows, path):
    """A sweep's ranked combinations (:func:`fcnn_cli.sweeps.sweep.leaderboard`, best at the top):
    the validation (and test) mean of the headline metric with ± its standard deviation over
    the seeds as error bars, ranked as the leaderboard ranks (by validation). None, and
    nothing written, where no combination has a validation metric (none finished, or the
    sweep kept no validation rows)."""
    finished = [r for r in rows if f"val_{r.get('metric')}_mean" in r]
    ranked = finished[:MAX_LEADERBOARD_ROWS]
    if not ranked:
        return None
    plt = _pyplot()
    metric = ranked[0]["metric"]
    names = [Path(r["run"]).name.rsplit("-", 1)[0] for r in ranked]  # the values, not the hash
    fig, ax = plt.subplots(figsize=(5.0 + 0.07 * max(map(len, names)), 2.2 + 0.3 * len(ranked)),
                           layout="constrained")
    for shift, split in ((-0.1, "val"), (0.1, "test")):
        found = [(i, r[f"{split}_{metric}_mean"], r[f"{split}_{metric}_std"])
                 for i, r in enumerate(ranked) if f"{split}_{metric}_mean" in r]
        if found:
            at, mean, std = zip(*found)
            ax.errorbar(mean, [i + shift for i in at], xerr=std, fmt="o", capsize=3,
                        label={"val": "validation", "test": "test"}[split])
    ax.set_yticks(range(len(ranked)), names, fontsize=8)
    ax.set_ylim(len(ranked) - 0.5, -0.5)  # the best at the top
    failed = sum("error" in r for r in rows)
    notes = [f"the best {len(ranked)} shown"] if len(ranked) < len(finished) else []
    notes += [f"{failed} failed, not shown"] if failed else []
    ax.set(xlabel=f"{metric.replace('_', ' ')} (mean ± std over seeds)",
           title=f"Leaderboard: {len(finished)} combinations"
           + (f" ({'; '.join(notes)})" if notes else ""))
    ax.grid(alpha=0.3, axis="x")
    fig.legend(loc="outside lower center", ncols=2)  # beside the points, never over them
    return _save(fig, path)


def plot_run(run_dir, out_dir=None):
    """Draw a run directory's plots into ``out_dir`` (default: its ``plots/``); returns the
    paths written. Reads the run's files only: no network, no data."""
    from fcnn_cli.results import runs

    run_dir = Path(run_dir)
    if not os.path.lexists(run_dir / "history.csv"):  # one that is no file is read, and refused
        raise FcnnError(f"{run_dir}: not a run directory (no history.csv)")
    out_dir = Path(out_dir) if out_dir else run_dir / runs.PLOTS_DIR
    check_out_dir(out_dir)
    runs.check_plots_dir(out_dir, run_dir)
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    config = _json(run_dir / "config.json")
    history = _read_csv(run_dir / "history.csv", HISTORY_COLUMNS)
    written = []
    sample = _read_sample(run_dir / runs.SAMPLE_FILE)
    if sample is None:
        log.info("%s: none, so only the learning curves are drawn (the run kept no "
                    "held-out rows)", run_dir / runs.SAMPLE_FILE)
    unit = ""
    if sample is not None:
        point = sample.extra.get("position") or sample.targets
        unit = sample.units.get(point[0], "") if point else ""
    if history:
        written.append(learning_curves(history, out_dir / "learning_curves.png",
                                       _best_epoch(config), unit))
    diagnostics = _read_csv(run_dir / "diagnostics.csv", DIAGNOSTICS_COLUMNS)
    if diagnostics:
        written.append(diagnostics_plot(diagnostics, out_dir / "diagnostics.png"))
    if sample is not None:
        written += plot_sample(sample, out_dir)
    return written


def _best_epoch(config):
    best = config.get("best_epoch")
    return best if type(best) is int else None


def _json(path):
    from fcnn_cli.results.runs import MAX_TEXT_BYTES

    if not os.path.exists(path):
        return {}
    try:
        value = json.loads(read_regular(path, MAX_TEXT_BYTES))
        return value if isinstance(value, dict) else {}
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply
        return {}


HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "lr")
DIAGNOSTICS_COLUMNS = ("epoch", "layer", "grad_norm", "act_mean", "act_var")


def _read_csv(path, needed):
    """A CSV of numbers (history.csv, diagnostics.csv) as dicts; [] when there is none. The
    columns ``needed`` must hold a number in every row (``layer`` may be a name)."""
    from fcnn_cli.results.runs import MAX_TEXT_BYTES

    if not os.path.exists(path):
        return []
    try:
        text = read_regular(path, MAX_TEXT_BYTES).decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except (csv.Error, UnicodeDecodeError) as e:
        raise FcnnError(f"{path}: cannot read: {e}") from None
    rows = [{k: _number(v) for k, v in row.items() if k is not None and v not in ("", None)}
            for row in rows]
    for i, row in enumerate(rows, start=2):
        for column in needed:
            if column not in row:
                raise FcnnError(f"{path}: malformed: line {i} has no {column!r}")
            if column != "layer" and not isinstance(row[column], (int, float)):
                raise FcnnError(f"{path}: malformed: line {i}: {column} is "
                                f"{str(row[column])[:40]!r}, not a number")
    return rows


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def _read_sample(path):
    from fcnn_cli.results.runs import MAX_SAMPLE_BYTES
    from fcnn_cli.data.tables import read_table

    if not os.path.exists(path):
        return None
    check_regular(path, MAX_SAMPLE_BYTES)
    table = read_table(path)
    check_sample(table, path)
    return table


def check_sample(table, path):
    """Check, once, what the plots take from a sample file's metadata: the run wrote it, but
    it is a file that may have been edited or damaged since."""
    from fcnn_cli.data.columns import is_numeric

    meta, frame = table.extra, table.frame

    def malformed(why):
        raise FcnnError(f"{path}: malformed sample of predictions: {why}")

    if not table.targets:
        malformed("it names no label among its columns")
    missing = [f"{t}_pred" for t in table.targets if f"{t}_pred" not in frame.columns]
    if missing:
        malformed(f"no column {missing[0]!r}")
    if "classes" in meta:
        _check_classes(meta["classes"], table, malformed)
        return
    for name in table.targets + [f"{t}_pred" for t in table.targets]:
        if not is_numeric(frame[name]):
            malformed(f"column {name!r} is not numeric, and no classes are named")
    point = meta.get("position")
    if point is not None and not (isinstance(point, list) and 2 <= len(point) <= 3 and
                                  len(set(map(str, point))) == len(point) and
                                  all(isinstance(c, str) and c in table.targets for c in point)):
        malformed(f"position {str(point)[:80]} is not 2 or 3 of its labels")


def _check_classes(classes, table, malformed):
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)
            and len(set(classes)) == len(classes)):
        malformed(f"classes {str(classes)[:80]} is not a list of distinct names")
    if len(table.targets) != 1:
        malformed("classes are named for more than one label")
    target = table.targets[0]
    known = set(classes)
    for column in (target, f"{target}_pred"):
        values = table.frame[column].astype(str)
        stray = values[~values.isin(known)]
        if len(stray):
            malformed(f"column {column!r} holds {stray.iloc[0][:40]!r}, none of its classes")
