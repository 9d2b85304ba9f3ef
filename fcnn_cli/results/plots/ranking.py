"""Which inputs matter: the permutation importance of each input as horizontal bars with the
spread over the repeats, and the Pearson correlation matrices of the features, a panel a
class (see :mod:`fcnn_cli.results.ranking`)."""

import logging

from fcnn_cli.results.plots.figures import drawing, pyplot, save

log = logging.getLogger(__name__)

CLASS_PANELS = 4  # correlation matrices drawn at most: the first classes, the rest noted
MAX_BARS = 60  # inputs drawn at most, the most important: a longer list is unreadable
MAX_ANNOTATED = 12  # features up to which each cell of a matrix shows its value
METRIC_NAMES = {"roc_auc": "ROC AUC", "accuracy": "accuracy", "rmse": "RMSE",
                "mean_distance": "mean distance"}


@drawing()
def importance_plot(report, path):
    """The inputs of a ranking report, the most important on top: each one's mean loss of the
    metric over the repeats, with its standard deviation as the error bar."""
    import numpy as np

    plt = pyplot()
    entries = report["inputs"][:MAX_BARS]
    names = [e["name"] + (" [raw]" if e["kind"] == "raw" else "") for e in entries]
    mean = np.array([e["mean"] for e in entries])
    std = np.array([e["std"] for e in entries])
    fig, ax = plt.subplots(figsize=(7.0, min(2.0 + 0.3 * len(entries), 20.0)))
    at = np.arange(len(entries))[::-1]
    colours = ["tab:orange" if e["kind"] == "raw" else "tab:blue" for e in entries]
    ax.barh(at, mean, xerr=std, color=colours, capsize=3, ecolor="0.3")
    ax.set_yticks(at, names)
    ax.axvline(0.0, color="0.5", lw=0.8)
    metric = METRIC_NAMES.get(report["metric"], report["metric"])
    change = "drop" if report["higher_is_better"] else "rise"
    unit = f" ({report['unit']})" if report.get("unit") else ""
    ax.set_xlabel(f"{metric} {change}{unit} when the input is shuffled "
                  f"(mean ± std of {report['repeats']})")
    left_out = len(report["inputs"]) - len(entries)
    title = f"Permutation importance, {report['rows']} rows" + \
        (", weighted" if report.get("weighted") else "") + \
        (f" ({left_out} least important not shown)" if left_out else "")
    ax.set_title(title)
    fig.tight_layout()
    return save(fig, path)


@drawing()
def correlation_plot(matrices, features, path):
    """The correlation matrices ``[(title, matrix, rows)]`` side by side, the first
    CLASS_PANELS of them (a note names how many more there are)."""
    import numpy as np

    plt = pyplot()
    shown = matrices[:CLASS_PANELS]
    k = len(features)
    side = min(3.5 + 0.3 * k, 9.0)
    fig, axes = plt.subplots(1, len(shown), figsize=(side * len(shown) + 1.2, side + 0.6),
                             squeeze=False, layout="constrained")
    image = None
    for ax, (title, matrix, rows) in zip(axes[0], shown):
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
        ticks = range(k) if k <= 40 else []
        ax.set_xticks(ticks, features if k <= 40 else [], rotation=90 if k > 6 else 0)
        ax.set_yticks(ticks, features if k <= 40 else [])
        ax.set_title(f"{title} ({rows} rows)")
        for i, j in np.ndindex(matrix.shape) if k <= MAX_ANNOTATED else ():
            v = matrix[i, j]
            ax.text(j, i, "–" if v != v else f"{v:.2f}", ha="center", va="center",
                    fontsize=9 if k <= 6 else 7, color="white" if abs(v) > 0.6 else "black")
    fig.colorbar(image, ax=list(axes[0]), fraction=0.046, pad=0.02, label="Pearson r")
    more = len(matrices) - len(shown)
    fig.suptitle("Correlations of the inputs" +
                 (f" (the first {len(shown)} classes of {len(matrices)})" if more else ""))
    return save(fig, path)
