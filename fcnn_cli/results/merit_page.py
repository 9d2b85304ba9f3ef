"""The report page's figures of merit: for each split whose report holds them, ε_S at fixed ε_B
and 1/ε_B at fixed ε_S with their errors and cuts, the separation, the working point and the
significance's best cuts. Shown in the page's tables (:mod:`~fcnn_cli.results.htmlparts`), each
number with its exact ``data-value``."""

from html import escape

from fcnn_cli.results.htmlparts import SPLITS, table

NAMES = {"background_efficiency": "ε_B", "signal_efficiency": "ε_S", "rejection": "1/ε_B",
         "error": "± error", "error_with_cut": "± error with the cut's",
         "signal_efficiency_error": "± ε_S", "background_efficiency_error": "± ε_B",
         "rejection_error": "± 1/ε_B", "purity": "purity S/(S+B)",
         "separation_bins": "bins", "signal": "S", "background": "B",
         "s_over_sqrt_b": "S/√B", "z_asimov": "Z_Asimov", "best": "best of"}
FIGURE_NAMES = {"s_over_sqrt_b": "S/√B", "z_asimov": "Z_Asimov"}


def merit(split, figures):
    """The tables of a split's ``merit`` (a classification report's figures of merit)."""
    tag = f"merit {split}"
    out = [f"<h3>Figures of merit: {escape(SPLITS.get(split, split))} "
           f"(signal: {escape(str(figures['signal_class']))})</h3>"]
    if figures.get("weights_warning"):
        out.append(f"<p>{escape(figures['weights_warning'])}</p>")
    points = figures["signal_efficiency_at"]
    out.append(_rows(("background_efficiency", "signal_efficiency", "error", "error_with_cut",
                      "cut"), points, f"efficiency {tag}"))
    rejections = figures["rejection_at"]
    out.append(_rows(("signal_efficiency", "rejection", "error", "error_with_cut", "cut"),
                     rejections, f"rejection {tag}"))
    out.append(_rows(("separation", "separation_bins"), [figures], f"separation {tag}"))
    point = figures.get("working_point")
    if point:
        asked = ", ".join(f"{NAMES.get(k, k)} = {v}" for k, v in point["asked"].items())
        out.append(f"<p>Working point ({escape(asked)}):</p>")
        out.append(_rows(("cut", "signal_efficiency", "signal_efficiency_error",
                          "background_efficiency", "background_efficiency_error", "rejection",
                          "rejection_error", "purity"), [point], f"working-point {tag}"))
    significance = figures.get("significance")
    if significance:
        best = [{"best": FIGURE_NAMES[k], **v} for k, v in significance["best"].items() if v]
        out.append("<p>Significance (weights as expected yields), the best cuts:</p>")
        out.append(_rows(("best", "cut", "signal", "background", "s_over_sqrt_b", "z_asimov"),
                         best, f"significance {tag}"))
        if significance.get("note"):
            out.append(f"<p>{escape(significance['note'])}</p>")
    reasons = dict.fromkeys(p["reason"] for p in points + rejections + [point or {}]
                            if p.get("reason"))
    out += [f"<p>– : {escape(str(r))}</p>" for r in reasons]
    return out


def _rows(keys, items, cls):
    return table(keys, [[item.get(k) for k in keys] for item in items], cls, NAMES)
