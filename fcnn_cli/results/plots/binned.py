"""Bias and resolution in bins (``fcnn evaluate --by``): against one bin variable as curves
with their errors, over two as a map of cells; and the map of a 2-D binned report that the
distance map draws too."""

import logging

from fcnn_cli.results.plots.figures import (MIN_ROWS, SMALL, drawing, length_unit, pyplot,
                                            save, with_unit)

log = logging.getLogger(__name__)

MAX_COUNTED_CELLS = 100  # up to this many cells a map writes each cell's rows in it
SPARSE = {"hatch": "///", "edgecolor": "0.7"}  # the look of a cell with too few rows to draw


@drawing()
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
    xlabel = with_unit(axis["column"], axis["unit"])
    if "accuracy" in bins[0]:
        return _accuracy_curve(bins, centre, half, axis["column"], xlabel, path)
    names = list(bins[0]["targets"])
    panels = len(names) + ("distance" in bins[0])
    fig, axes = pyplot().subplots(2, panels, figsize=(5.2 * panels + 0.6, 7.6), squeeze=False)
    for j, name in enumerate(names):
        _residual_panels(axes[0, j], axes[1, j], [b["targets"][name] for b in bins], centre,
                         half, name, units.get(name, ""), xlabel)
    if "distance" in bins[0]:
        _distance_panels(axes[0, -1], axes[1, -1], bins, centre, half,
                         units.get(names[0], ""), xlabel)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def _accuracy_curve(bins, centre, half, column, xlabel, path):
    fig, ax = pyplot().subplots(figsize=SMALL)
    ax.errorbar(centre, [b["accuracy"] for b in bins], xerr=half,
                yerr=[_nan0(b["accuracy_error"]) for b in bins], fmt="o", capsize=3)
    ax.set(xlabel=xlabel, ylabel="accuracy", title=f"Accuracy in bins of {column}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def _residual_panels(top, bottom, stats, centre, half, name, unit, xlabel):
    """Bias above, resolution below, each with its error bars and robust form, in the length
    unit that reads best for the resolution."""
    k, unit = length_unit([s["resolution"] for s in stats], unit)
    top.errorbar(centre, [k * s["bias"] for s in stats], xerr=half,
                 yerr=[k * _nan0(s["bias_error"]) for s in stats], fmt="o", capsize=3,
                 label="mean")
    top.plot(centre, [k * s["median"] for s in stats], "o", mfc="none", color="C1",
             label="median")
    top.axhline(0, color="grey", linewidth=1)
    top.set(ylabel=f"bias {with_unit(name, unit)}", title=f"{name}: bias (predicted − true)")
    bottom.errorbar(centre, [k * s["resolution"] for s in stats], xerr=half,
                    yerr=[k * _nan0(s["resolution_error"]) for s in stats], fmt="o", capsize=3,
                    label="standard deviation")
    bottom.plot(centre, [k * s["robust_resolution"] for s in stats], "o", mfc="none",
                color="C1", label="half 16–84 %")
    bottom.set(xlabel=xlabel, ylabel=f"resolution {with_unit(name, unit)}",
               title=f"{name}: resolution")
    top.legend(fontsize=8)
    bottom.legend(fontsize=8)


def _distance_panels(top, bottom, bins, centre, half, unit, xlabel):
    """The mean and median distance above, the rows per bin below."""
    d = [b["distance"] for b in bins]
    k, unit = length_unit([s["mean"] for s in d], unit)
    top.errorbar(centre, [k * s["mean"] for s in d], xerr=half,
                 yerr=[k * _nan0(s["error"]) for s in d], fmt="o", capsize=3, label="mean")
    top.plot(centre, [k * s["median"] for s in d], "o", mfc="none", color="C1", label="median")
    top.set(ylabel=with_unit("distance", unit), title="Distance between true and predicted")
    top.legend(fontsize=8)
    bottom.bar(centre, [b["count"] for b in bins], width=2 * half * 0.9)
    bottom.set(xlabel=xlabel, ylabel="rows", title="Rows per bin")


def _nan0(v):
    return 0.0 if v != v else v


def _binned_map(report, path, units):
    plt = pyplot()
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
        k, unit = length_unit([value(b) for b in bins], unit)
        note = heat(ax, fig, report, lambda b, value=value, k=k: k * value(b),
                    with_unit(name, unit))
        ax.legend(handles=[sparse_cells()], loc="upper center", bbox_to_anchor=(0.5, -0.12),
                  fontsize=9)
        ax.set(xlabel=with_unit(x["column"], x["unit"]),
               ylabel=with_unit(y["column"], y["unit"]),
               title=f"{title[0].upper()}{title[1:]} in bins of {x['column']} and {y['column']}"
                     f"\n({note})")
    fig.tight_layout()
    return save(fig, path)


def heat(ax, fig, report, value, label, cmap="viridis", norm=None):
    """A 2-D binned report as a coloured map of ``value(bin)``. A cell of fewer than
    MIN_ROWS rows, whose colour one outlier would set, is not drawn: the hatched background
    (:func:`sparse_cells`) shows there. Where the cells are at most MAX_COUNTED_CELLS, each is
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
    mesh = ax.pcolormesh(xe, ye, grid.T, cmap=cmap, norm=norm, shading="flat")
    if np.isfinite(grid).any():  # else a scale of nothing
        fig.colorbar(mesh, ax=ax, label=label)
    if counts.size > MAX_COUNTED_CELLS:
        return f"{counts.min()}–{counts.max()} rows a cell"
    # Each count is white on a dark cell as drawn (its colour's luminance), black on a light one
    # and on the background of a cell not drawn: even when one value alone sets the scale.
    rgba = mesh.to_rgba(np.ma.masked_invalid(grid))
    dark = (rgba[..., 3] > 0) & (rgba[..., :3] @ [0.2126, 0.7152, 0.0722] < 0.5)
    for (i, j), n in np.ndenumerate(counts):
        ax.text((xe[i] + xe[i + 1]) / 2, (ye[j] + ye[j + 1]) / 2, str(n), ha="center",
                va="center", fontsize=8, color="white" if dark[i, j] else "black")
    return "numbers: rows in each cell"


def sparse_cells():
    """The legend's entry for the cells of too few rows."""
    from matplotlib.patches import Patch

    return Patch(facecolor="white", **SPARSE, label=f"fewer than {MIN_ROWS} rows: not drawn")
