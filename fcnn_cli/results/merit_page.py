"""The report page's figures of merit: for each split whose report holds them, ε_S at fixed ε_B
and 1/ε_B at fixed ε_S with their errors and cuts, the separation, the working point and the
significance's best cuts. Shown in the page's tables (:mod:`~fcnn_cli.results.htmlparts`), each
number with its exact ``data-value``."""

import logging
from html import escape

from fcnn_cli.results.htmlparts import SPLITS, table

log = logging.getLogger(__name__)

NAMES = {"background_efficiency": "ε_B", "signal_efficiency": "ε_S", "rejection": "1/ε_B",
         "error": "± error", "error_with_cut": "± error with the cut's",
         "signal_efficiency_error": "± ε_S", "background_efficiency_error": "± ε_B",
         "rejection_error": "± 1/ε_B", "purity": "purity S/(S+B)",
         "separation_bins": "bins", "signal": "S", "background": "B",
         "s_over_sqrt_b": "S/√B", "z_asimov": "Z_Asimov", "best": "best of"}
FIGURE_NAMES = {"s_over_sqrt_b": "S/√B", "z_asimov": "Z_Asimov"}


def merit(split, figures):
    """The tables of a split's ``merit`` (a classification report's figures of merit). A part
    that an edited or damaged metrics.json cannot give is left out, with a line (and a warning)
    that says so: the page shows the rest, as it does a plot it cannot show."""
    tag = f"merit {split}"
    called = escape(SPLITS.get(split, split))
    out = [f"<h3>Figures of merit: {called} "
           f"(signal: {escape(str(figures.get('signal_class')))})</h3>"]
    if figures.get("weights_warning"):
        out.append(f"<p>{escape(str(figures['weights_warning']))}</p>")
    reasons = {}
    for what, part in (("the efficiencies and rejections", _curve),
                       ("the working point", _working_point),
                       ("the significance", _significance)):
        try:
            out += part(figures, tag, reasons)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            why = f"{type(e).__name__} {str(e)[:80]}"
            log.warning("metrics.json: %s of the %s split left out of the page: malformed: %s",
                        what, split, why)
            out.append(f"<p>{escape(what.capitalize())} left out: malformed in metrics.json "
                       f"({escape(why)})</p>")
    out += [f"<p>– : {escape(str(r))}</p>" for r in reasons]
    return out


def _curve(figures, tag, reasons):
    points, rejections = figures["signal_efficiency_at"], figures["rejection_at"]
    out = [_rows(("background_efficiency", "signal_efficiency", "error", "error_with_cut",
                  "cut"), points, f"efficiency {tag}"),
           _rows(("signal_efficiency", "rejection", "error", "error_with_cut", "cut"),
                 rejections, f"rejection {tag}"),
           _rows(("separation", "separation_bins"), [figures], f"separation {tag}")]
    reasons.update(dict.fromkeys(p["reason"] for p in points + rejections if p.get("reason")))
    return out


def _working_point(figures, tag, reasons):
    point = figures.get("working_point")
    if not point:
        return []
    asked = ", ".join(f"{NAMES.get(k, k)} = {v}" for k, v in point["asked"].items())
    out = [f"<p>Working point ({escape(asked)}):</p>",
           _rows(("cut", "signal_efficiency", "signal_efficiency_error", "background_efficiency",
                  "background_efficiency_error", "rejection", "rejection_error", "purity"),
                 [point], f"working-point {tag}")]
    if point.get("reason"):
        reasons[point["reason"]] = None
    return out


def _significance(figures, tag, reasons):
    significance = figures.get("significance")
    if not significance:
        return []
    best = [{"best": FIGURE_NAMES[k], **v} for k, v in significance["best"].items() if v]
    out = ["<p>Significance (weights as expected yields), the best cuts:</p>",
           _rows(("best", "cut", "signal", "background", "s_over_sqrt_b", "z_asimov"), best,
                 f"significance {tag}")]
    if significance.get("note"):
        out.append(f"<p>{escape(significance['note'])}</p>")
    return out


def _rows(keys, items, cls):
    return table(keys, [[item.get(k) for k in keys] for item in items], cls, NAMES)
