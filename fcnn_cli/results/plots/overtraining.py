"""The overtraining check in TMVA's style: for each class (or label), the held-out rows'
distribution of the network's output as a filled histogram and the training rows' as points
with error bars, both as densities on one scale, the KS p-value in the legend (see
:mod:`fcnn_cli.network.overtraining`; drawn from metrics.json)."""

import math

from fcnn_cli.results.plots.figures import drawing, pyplot, save, with_unit

PANELS = 4  # classes or labels drawn at most: those whose histograms metrics.json keeps
COLUMNS = 2  # panels a row


@drawing()
def overtraining_plot(check, path, units=None):
    """The panels of an overtraining ``check`` (metrics.json's "overtraining"); ``units``
    of the labels, for a regression's residuals."""
    import numpy as np

    plt = pyplot()
    groups = list(check["groups"].items())
    shown = [(name, group) for name, group in groups if "histograms" in group][:PANELS]
    columns = min(COLUMNS, len(shown))
    rows = math.ceil(len(shown) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.8 * rows), squeeze=False,
                             layout="constrained")
    train_name, held_name = check.get("splits") or ("train", "held-out")
    classify = "classes_left_out" in check
    for ax, (name, group) in zip(axes.flat, shown):
        hist = group["histograms"]
        edges = np.asarray(hist["edges"], np.float64)
        centres = (edges[1:] + edges[:-1]) / 2
        held, train = hist["test"], hist["train"]
        held_density, _ = _densities(held, edges)
        train_density, train_error = _densities(train, edges)
        ax.stairs(held_density, edges, fill=True, color="C0", alpha=0.45, label=held_name)
        ax.errorbar(centres, train_density, yerr=train_error, fmt="o", ms=3, color="C3",
                    elinewidth=1, label=train_name)
        ax.set_ylim(bottom=0)
        p = group["p_value"]
        ax.legend(title=f"KS p = {p:.3g}" if p == p else "KS p: –", fontsize=8,
                  title_fontsize=9, frameon=False)
        ax.set_title(f"class {name}" if classify else name,
                     color="C3" if name in check.get("overtrained", ()) else "black")
        ax.set_xlabel(_what(check, classify, name, units or {}))
        ax.set_ylabel("density")
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    more = len(groups) - len(shown)
    fig.suptitle("Overtraining check: training against held-out rows" +
                 (f" (the first {len(shown)} {'classes' if classify else 'labels'}; "
                  f"the p-values of {more} more in metrics.json)" if more else ""))
    return save(fig, path)


def _what(check, classify, name, units):
    """The axis's quantity: the score compared, or the label's residual."""
    if not classify:
        return f"residual: predicted − true {with_unit(name, units.get(name, ''))}"
    names = list(check["groups"])
    if len(names) == 2 and not check.get("classes_left_out"):
        return f"p({names[1]})"
    return "p(true class)"


def _densities(side, edges):
    """(density, its error) of each bin of one side's histogram: the sums of weights and their
    errors over the side's sum of weights and the bin's width, so that both sides share one
    scale whatever their rows."""
    import numpy as np

    scale = side["sum_of_weights"] * np.diff(edges)
    content, error = (np.array([np.nan if v is None else v for v in side[key]], np.float64)
                      for key in ("content", "error"))
    with np.errstate(invalid="ignore", divide="ignore"):
        return content / scale, error / np.abs(scale)
