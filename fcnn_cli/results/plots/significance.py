"""The significance scan of a classification report whose weights are expected yields: S/√B and
the Asimov significance Z_A against the cut on p(signal), their best cuts marked, and below the
signal S and background B that pass each cut (log scale)."""

import logging

from fcnn_cli.results.plots.figures import drawing, pyplot, save

log = logging.getLogger(__name__)

FIGURES = (("s_over_sqrt_b", "S/√B", "C0"), ("z_asimov", "Z_Asimov", "C1"))


@drawing()
def significance_plot(significance, signal, path, split=""):
    """The plot of ``significance`` (a report's ``merit["significance"]``: its ``scan`` and
    ``best``) for signal class ``signal``; None (said) where no cut has a background."""
    import numpy as np

    scan = significance["scan"]
    if not scan["cut"]:
        log.warning("no significance scan plot: no cut passes a background above 0")
        return None
    plt = pyplot()
    cut = np.asarray(scan["cut"], np.float64)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    for key, name, colour in FIGURES:
        top.plot(cut, scan[key], color=colour, label=name)
        best = significance["best"][key]
        if best:
            top.axvline(best["cut"], color=colour, linestyle="--", linewidth=1)
            top.plot(best["cut"], best[key], "o", color=colour,
                     label=f"best {name} {best[key]:.3g} at cut {best['cut']:.3g} "
                           f"(S {best['signal']:.3g}, B {best['background']:.3g})")
    top.set(ylabel="significance", title=f"Significance scan (signal: {signal})"
            + (f", {split}" if split else ""))
    top.legend(loc="best", fontsize=8)
    top.grid(alpha=0.3)
    bottom.plot(cut, scan["signal"], color="C2", label="S (signal passing)")
    bottom.plot(cut, scan["background"], color="C3", label="B (background passing)")
    if min(min(scan["signal"]), min(scan["background"])) > 0:
        bottom.set_yscale("log")  # else a negative sum of weights has no place on it
    bottom.set(xlabel=f"cut on p({signal})", ylabel="expected events")
    bottom.legend(loc="best", fontsize=8)
    bottom.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return save(fig, path)


SPLIT_NAMES = {"test": "test split", "val": "validation split"}


def run_significance(run_dir, out_dir):
    """The significance plot of a run (``significance.png``) from its metrics.json: the test
    split's scan, else the validation split's; [] where neither has one, or where it is
    damaged: that is said, and the run's other plots are drawn, as of its other checks."""
    from fcnn_cli.results.plots.reading import read_json, significance_of

    path = run_dir / "metrics.json"
    try:
        found = significance_of(read_json(path))
    except ValueError as e:
        log.warning("%s: damaged (%s): its plot is left out", path, e)
        return []
    if not found:
        return []
    split, signal, significance = found
    drawn = significance_plot(significance, signal, out_dir / "significance.png",
                              SPLIT_NAMES[split])
    return [drawn] if drawn else []


def signal_meta(merit):
    """What a sample's metadata says of the figures of merit of a report's ``merit`` (None:
    nothing): the signal class, and the working point's cut where it has one."""
    if not merit:
        return {}
    cut = (merit.get("working_point") or {}).get("cut")
    return {"signal": merit["signal_class"],
            **({"working_point": {"cut": cut}} if cut is not None and cut == cut else {})}


def significance_plots(merit, out_dir):
    """``significance.png`` of a report's ``merit`` (``fcnn evaluate --plots``); [] where it
    holds no significance scan."""
    if not merit or "significance" not in merit:
        return []
    drawn = significance_plot(merit["significance"], merit["signal_class"],
                              out_dir / "significance.png")
    return [drawn] if drawn else []
