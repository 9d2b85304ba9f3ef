"""One label's errors: the residual (predicted − true) against the true value, and its
histogram with the bias and the resolution written on it."""

import math

from fcnn_cli.results.plots.figures import (WIDE, axis_range, drawing, length_unit, pyplot,
                                            save, with_unit)

HEXBIN_ROWS = 2000  # beyond, the residual against true is a 2-D histogram


@drawing()
def regression_plot(true, pred, name, unit, path, split="", weight=None):
    """The residual against true (a 2-D histogram when rows are many, its cells as fine as the
    residuals: on predicted against true they would be as coarse as the label's range), and the
    residual histogram with its bias and resolution written on it; residuals in a readable
    length unit. With ``weight`` (each row's event weight) the histogram and its numbers are
    weighted (:func:`residual_summary`); the rows against true stay rows."""
    import numpy as np

    plt = pyplot()
    true, pred = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    fig, (scatter, hist) = plt.subplots(1, 2, figsize=WIDE)
    factor, shown = length_unit(pred - true, unit)
    residual = factor * (pred - true)
    span = axis_range(residual.min(), residual.max())
    if len(true) > HEXBIN_ROWS:
        cells = scatter.hexbin(true, residual, gridsize=60, bins="log", mincnt=1, cmap="viridis",
                               extent=axis_range(true.min(), true.max()) + span)
        fig.colorbar(cells, ax=scatter, label="rows")
    else:
        scatter.scatter(true, residual, s=6, alpha=0.6)
    scatter.axhline(0, color="red", linewidth=1)
    what = f"residual: predicted − true {with_unit(name, shown)}"
    scatter.set(xlabel=f"true {with_unit(name, unit)}", ylabel=what,
                title=f"{name}: residual against true" + (f" ({split})" if split else ""))
    stats = residual_summary(residual, weight)
    hist.hist(residual, bins=_bins(residual), range=span, color="C0", alpha=0.8,
              weights=weight)
    hist.axvline(0, color="grey", linewidth=1)
    hist.axvline(stats["bias"], color="red", linewidth=1)
    u = f" {shown}" if shown else ""
    total = "" if weight is None else f"\nsum of weights {float(np.sum(weight)):.4g}"
    hist.text(0.98, 0.97, f"rows {len(residual)}{total}\nbias {stats['bias']:.3g}{u}\n"
              f"resolution (σ) {stats['resolution']:.3g}{u}\n"
              f"median {stats['median']:.3g}{u}\n"
              f"half 16–84 % {stats['robust_resolution']:.3g}{u}",
              transform=hist.transAxes, ha="right", va="top", fontsize=9,
              bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    hist.set(xlabel=what, ylabel="rows" if weight is None else "sum of weights",
             title=f"{name}: residuals" + ("" if weight is None else " (weighted)"))
    hist.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def residual_summary(residual, weight=None):
    """Bias, resolution and their robust forms of one label's residuals; with ``weight``
    weighted, as ``fcnn evaluate --by`` weighs a bin's (:mod:`fcnn_cli.results.binned`)."""
    import numpy as np

    if weight is not None:
        return _weighted_summary(np.asarray(residual, np.float64), np.asarray(weight, np.float64))
    p16, median, p84 = np.percentile(residual, [16, 50, 84])
    return {"bias": float(np.mean(residual)),
            "resolution": float(np.std(residual, ddof=1)) if len(residual) > 1 else math.nan,
            "median": float(median), "robust_resolution": float(p84 - p16) / 2}


def _weighted_summary(residual, weight):
    from fcnn_cli.results.binned import weighted_residuals

    stats = weighted_residuals(residual[:, None], weight)
    return {key: float(stats.get(key, [math.nan])[0])
            for key in ("bias", "resolution", "median", "robust_resolution")}


def _bins(values):
    import numpy as np

    return int(np.clip(np.sqrt(len(values)), 10, 100))
