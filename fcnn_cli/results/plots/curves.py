"""How a training went, epoch by epoch: the learning curves (loss, the validation headline
metric, the learning rate) and the diagnostics of each layer (weight gradients, activations)."""

import math

from fcnn_cli.results.plots.figures import drawing, length_unit, pyplot, save, with_unit

MAX_MARKED_LAYERS = 12  # layers a diagnostics plot draws (evenly spread, first and last kept)
# The validation metric the learning curves draw: the first that every epoch recorded.
HEADLINE = {"val_mean_distance": "mean distance", "val_rmse": "RMSE",
            "val_accuracy": "accuracy"}


@drawing()
def learning_curves(history, path, best_epoch=None, unit=""):
    """Training and validation loss (log scale while every loss is positive: a Gaussian
    negative log-likelihood is not), the validation headline metric (in a readable length unit)
    and the learning rate against epoch, the kept epoch marked."""
    plt = pyplot()
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
        factor, shown = (1.0, "") if key == "val_accuracy" else length_unit(values, unit)
        metric.plot(epochs, [factor * v for v in values], color="C1")
        metric.set(yscale="linear" if key == "val_accuracy" else _scale(values),
                   xlabel="epoch", ylabel=with_unit(name, shown), title=f"Validation {name}")
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
    return save(fig, path)


@drawing()
def diagnostics_plot(rows, path):
    """Per layer: the weight-gradient norm against epoch (log scale), and the activations'
    mean and variance layer by layer at the first and the last epoch measured."""
    plt = pyplot()
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
        mean.plot(positions, [mine[layer]["act_mean"] for layer in layers], style,
                  label=f"epoch {epoch}")
        var.plot(positions, [max(mine[layer]["act_var"], 1e-300) for layer in layers], style,
                 label=f"epoch {epoch}")
    names = [str(layer) for layer in layers]
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
    return save(fig, path)


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
