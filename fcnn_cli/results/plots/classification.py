"""How well classes are told apart: the confusion matrix, the ROC curves, the rejection curve of
the signal class (1/ε_B against ε_S, the analyses' figure) and the reliability diagram of the
predicted probabilities. Where the sample holds a baseline's probabilities beside the network's
(``<name>_p_<class>``, its metadata's ``baselines``), the ROC and rejection curves show every
model."""

import logging

from fcnn_cli.results.plots.figures import MIN_ROWS, SMALL, drawing, pyplot, save

log = logging.getLogger(__name__)

MAX_CLASS_PLOTS = 20  # classes beyond which no confusion matrix or ROC curves are drawn


def class_plots(frame, target, classes, out_dir, weight=None, meta=None):
    """The plots of a sample's rows of one label of ``classes`` (a frame of the label, its
    prediction and, where the sample holds them, the probability of each class); with
    ``weight`` (each row's event weight) weighted. ``meta``, the sample's metadata, may name
    the signal class (``signal``), its working point (``working_point``: its ``cut``) and the
    baselines whose probabilities are columns too (``baselines``). Returns the paths written."""
    import numpy as np

    from fcnn_cli.network.tasks import signal_index

    meta = meta or {}
    if len(classes) > MAX_CLASS_PLOTS:
        log.warning("%d classes: no confusion matrix, ROC curves or reliability diagram "
                    "(drawn up to %d classes; the per-class metrics are in metrics.json)",
                    len(classes), MAX_CLASS_PLOTS)
        return []
    index = {c: i for i, c in enumerate(classes)}
    true = frame[target].astype(str).map(index).to_numpy(np.int64)
    pred = frame[f"{target}_pred"].astype(str).map(index).to_numpy(np.int64)
    written = [confusion_plot(true, pred, classes, out_dir / "confusion.png", weight)]
    columns = [f"p_{c}" for c in classes]
    if not all(c in frame.columns for c in columns):
        log.warning("no ROC curves or reliability diagram: the sample holds no probability "
                    "of each class")
        return [p for p in written if p]
    proba = frame[columns].to_numpy(np.float64)
    others = baseline_probabilities(frame, classes, meta.get("baselines") or [])
    signal = signal_index(classes, meta.get("signal"))
    written += [roc_plot(true, proba, classes, out_dir / "roc.png", weight, others, signal)]
    if signal is not None:
        models = {NETWORK: proba, **others}
        cut = (meta.get("working_point") or {}).get("cut")
        written.append(rejection_plot(true == signal, {m: p[:, signal] for m, p in
                                                       models.items()},
                                      classes[signal], out_dir / "rejection.png", weight, cut))
    written.append(reliability_plot(true, proba, classes, out_dir / "reliability.png",
                                    weight=weight))
    return [p for p in written if p]


NETWORK = "network"


def baseline_probabilities(frame, classes, names):
    """{name: rows × classes} of each baseline whose columns ``<name>_p_<class>`` the sample
    holds; one that lacks them is said and left out."""
    import numpy as np

    out = {}
    for name in names:
        columns = [f"{name}_p_{c}" for c in classes]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            log.warning("no curves of baseline %s: the sample has no column %r", name,
                        missing[0])
            continue
        out[name] = frame[columns].to_numpy(np.float64)
    return out


@drawing()
def confusion_plot(true, pred, classes, path, weight=None):
    """The confusion matrix in counts (with ``weight``, sums of the rows' weights) and
    normalised by row (the true class)."""
    import numpy as np

    plt = pyplot()
    k = len(classes)
    counts = np.bincount(np.asarray(true) * k + np.asarray(pred), weights=weight,
                         minlength=k * k).reshape(k, k)
    what, form = ("counts", "d") if weight is None else ("sums of weights", ".3g")
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts / counts.sum(axis=1, keepdims=True)
    side = min(5.5 + 0.25 * k, 11.0)
    fig, axes = plt.subplots(1, 2, figsize=(2 * side + 1, side))
    for ax, values, title, fmt in ((axes[0], counts, f"Confusion matrix ({what})", form),
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
    return save(fig, path)


@drawing()
def roc_plot(true, proba, classes, path, weight=None, others=None, signal=None):
    """ROC curves: of the signal class (index ``signal``, else the second) for two classes,
    one-vs-rest for more; with ``weight`` weighted, their AUC that of the weighted report.
    ``others``: {baseline: rows × classes probabilities}, drawn dashed beside the network's."""
    import numpy as np

    from fcnn_cli.network.metrics import roc_auc

    plt = pyplot()
    true, proba = np.asarray(true), np.asarray(proba, np.float64)
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    which = [1 if signal is None else signal] if len(classes) == 2 else range(len(classes))
    # NaN where none or all rows are of the class (or, weighted, where the weights of either
    # side do not sum to more than 0): no curve to draw.
    aucs = {i: roc_auc(true == i, proba[:, i], weight) for i in which}
    lone = [classes[i] for i in which if aucs[i] != aucs[i]]
    either = "" if weight is None else " (or their weights do not sum to more than 0)"
    if len(lone) == len(which):
        plt.close(fig)
        log.warning("no ROC curve: the sample's rows are all of one class%s (%s)", either,
                    classes[int(true[0])] if len(true) else "none")
        return None
    if lone:
        log.warning("no ROC curve of class(es) %s: none or all of the sample's rows are of "
                    "it%s", ", ".join(map(str, lone[:10])) + (" …" if len(lone) > 10 else ""),
                    either)
    models = {NETWORK: proba, **(others or {})}
    for style, (model, p) in zip(LINE_STYLES, models.items()):
        for colour, i in enumerate(which):
            if aucs[i] != aucs[i]:
                continue
            auc = aucs[i] if model == NETWORK else roc_auc(true == i, p[:, i], weight)
            name = classes[i] if not others else f"{model}: {classes[i]}"
            fpr, tpr = roc_curve(true == i, p[:, i], weight)
            # One class: a colour a model; several: a colour a class, a line style a model.
            shade = len(ax.lines) if len(which) == 1 else colour
            ax.plot(fpr, tpr, color=f"C{shade % 10}", linestyle=style,
                    label=f"{name} (AUC {auc:.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate",
           title=("Weighted ROC curve" if weight is not None else "ROC curve")
           + (" (one class against the rest)" if len(classes) > 2 else ""),
           xlim=(0, 1), ylim=(0, 1.01))
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


# The network's curves solid, each baseline's in the next style (the colour is the class's).
LINE_STYLES = ("-", "--", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)))


@drawing()
def rejection_plot(is_signal, scores, signal, path, weight=None, cut=None):
    """The background rejection 1/ε_B against the signal efficiency ε_S (log scale) of each
    model's score (``scores``: {model: p(signal) a row}), weighted with ``weight``; ``cut``, the
    network's working point, marked on its curve. None (said) where a class has no rows or no
    positive sum of weights."""
    import numpy as np

    is_signal = np.asarray(is_signal, bool)
    plt = pyplot()
    curves = {model: rejection_curve(score, is_signal, weight)
              for model, score in scores.items()}
    if not any(len(eff) for eff, _ in curves.values()):
        log.warning("no rejection curve: the sample has no %s rows (or their weights do not "
                    "sum to more than 0)", "signal" if not is_signal.any() else "background")
        return None
    fig, ax = plt.subplots(figsize=SMALL)
    for k, (style, (model, (eff, rejection))) in enumerate(zip(LINE_STYLES, curves.items())):
        ax.plot(eff, rejection, color=f"C{k}", linestyle=style, label=model)
    if cut is not None:
        _mark(ax, scores[NETWORK], is_signal, weight, cut)
    ax.set_yscale("log")
    ax.set(xlabel=f"signal efficiency ε_S ({signal})", ylabel="background rejection 1/ε_B",
           title=("Weighted background" if weight is not None else "Background")
           + f" rejection (signal: {signal})", xlim=(0, 1))
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return save(fig, path)


def rejection_curve(score, is_signal, weight=None):
    """(ε_S, 1/ε_B) at each cut of :class:`fcnn_cli.network.roc.Curve` (the figures of merit's
    curve) where both efficiencies are above 0: 1/ε_B is infinite where no background passes,
    and ε_S = 0 says nothing. Empty where a class has no positive sum of weights."""
    import numpy as np

    from fcnn_cli.network.roc import Curve

    curve = Curve(score, is_signal, weight)
    eff_s, eff_b = curve.signal.efficiency, curve.background.efficiency
    if not (curve.signal.total > 0 and curve.background.total > 0):
        return np.zeros(0), np.zeros(0)
    keep = (eff_s > 0) & (eff_b > 0)
    return eff_s[keep], 1 / eff_b[keep]


def _mark(ax, score, is_signal, weight, cut):
    """The working point on the network's curve. Its ε_S and ε_B are this sample's at the cut,
    not a report's: the mark must lie on the curve drawn, and the sample (at most
    ``evaluation.PLOT_ROWS`` rows, of another table where evaluate made it) is not the rows the
    cut was chosen on. Found as a report finds a cut's figures, float32 scores and all."""
    from fcnn_cli.network.merit import working_point

    point = working_point(score, is_signal, weight, threshold=cut)
    if point["background_efficiency"] > 0:  # 1/ε_B is finite
        ax.plot(point["signal_efficiency"], point["rejection"], "o", color="black", zorder=3,
                label=f"working point (cut {cut:.3g}: ε_S {point['signal_efficiency']:.3f}, "
                      f"1/ε_B {point['rejection']:.3g})")


def roc_curve(positive, score, weight=None):
    """False and true positive rates at every distinct score, from the highest down; with
    ``weight``, shares of the negatives' and the positives' sums of weights (the trapezoids
    under it sum to :func:`fcnn_cli.network.metrics.roc_auc`'s weighted AUC)."""
    import numpy as np

    order = np.argsort(-np.asarray(score), kind="stable")
    score, positive = np.asarray(score)[order], np.asarray(positive, bool)[order]
    w = np.ones(len(score)) if weight is None else np.asarray(weight, np.float64)[order]
    # Only the ends of runs of equal scores: a tie group is one step of the curve.
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tp = np.cumsum(np.where(positive, w, 0.0))[last]
    fp = np.cumsum(np.where(positive, 0.0, w))[last]
    return (np.r_[0, fp / _positive(fp[-1])], np.r_[0, tp / _positive(tp[-1])])


def _positive(total):
    return total if total > 0 else 1.0


@drawing()
def reliability_plot(true, proba, classes, path, bins=10, weight=None):
    """The reliability diagram: in bins of the predicted probability, how often it came true
    (for two classes that of the second class; for more the most probable class's), bins of
    fewer than MIN_ROWS rows open and not joined, with the rows in each bin below. With
    ``weight`` weighted: means and shares over each bin's sum of weights, the error and
    MIN_ROWS for its effective rows (as ``fcnn evaluate --by`` counts them), the sums of
    weights below."""
    import numpy as np

    from fcnn_cli.network.weighted import effective_rows
    from fcnn_cli.results.binned import wilson_error

    plt = pyplot()
    true, proba = np.asarray(true), np.asarray(proba, np.float64)
    if len(classes) == 2:
        p, hit, what = proba[:, 1], true == 1, f"p({classes[1]})"
        observed = f"share that is {classes[1]}"
    else:
        p, hit, what = proba.max(axis=1), proba.argmax(axis=1) == true, "p(predicted class)"
        observed = "share predicted right"
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    w = np.ones(len(p)) if weight is None else np.asarray(weight, np.float64)
    count = np.bincount(index, weights=w, minlength=bins)
    rows = count if weight is None else np.nan_to_num(
        effective_rows(count, np.bincount(index, weights=w * w, minlength=bins)))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=w * p, minlength=bins) / count
        freq = np.bincount(index, weights=w * hit, minlength=bins) / count
        err = wilson_error(freq, rows)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 7.0), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    ok, sparse = rows >= MIN_ROWS, (rows > 0) & (rows < MIN_ROWS)
    top.errorbar(mean_p[ok], freq[ok], yerr=err[ok], fmt="o", color="C0", capsize=3,
                 label="network")
    # The line joins neighbouring bins of enough rows only: through bins of a few rows it
    # would zigzag, and over a gap it would show what was not measured.
    top.plot(np.where(ok, mean_p, np.nan), np.where(ok, freq, np.nan), color="C0")
    if sparse.any():
        top.errorbar(mean_p[sparse], freq[sparse], yerr=err[sparse], fmt="o", mfc="white",
                     color="C0", capsize=3, label=f"bins of fewer than {MIN_ROWS} rows")
    top.set(ylabel=observed, xlim=(0, 1), ylim=(0, 1.02),
            title=f"Reliability of {what}" + ("" if weight is None else " (weighted)"))
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.bar((edges[:-1] + edges[1:]) / 2, count, width=1 / bins * 0.9, color="C0")
    bottom.set(xlabel=f"predicted {what}", ylabel="rows" if weight is None else "sum of weights")
    if count.min() >= 0 and count.max() > 0 and count[count > 0].min() * 100 < count.max():
        bottom.set_yscale("log")
    fig.tight_layout()
    return save(fig, path)
