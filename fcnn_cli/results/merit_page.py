"""The report page's figures of merit: for each split whose report holds them, ε_S at fixed ε_B
and 1/ε_B at fixed ε_S with their errors and cuts, the separation, the working point and the
significance's best cuts; and the network beside each baseline the run fitted. Shown in the
page's tables (:mod:`~fcnn_cli.results.page`), each number with its exact ``data-value``."""

from html import escape

NAMES = {"background_efficiency": "ε_B", "signal_efficiency": "ε_S", "rejection": "1/ε_B",
         "error": "± error", "error_with_cut": "± error with the cut's",
         "signal_efficiency_error": "± ε_S", "background_efficiency_error": "± ε_B",
         "rejection_error": "± 1/ε_B", "purity": "purity S/(S+B)",
         "separation_bins": "bins", "signal": "S", "background": "B",
         "s_over_sqrt_b": "S/√B", "z_asimov": "Z_Asimov", "best": "best of"}
FIGURE_NAMES = {"s_over_sqrt_b": "S/√B", "z_asimov": "Z_Asimov"}
# The figures of the comparison with the baselines: what a group meeting asks first.
AT_BACKGROUND, AT_SIGNAL = 0.01, 0.7


def merit(split, figures):
    """The tables of a split's ``merit`` (a classification report's figures of merit)."""
    from fcnn_cli.results.page import SPLITS

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
    from fcnn_cli.results.page import _table

    return _table(keys, [[item.get(k) for k in keys] for item in items], cls, NAMES)


def baselines(splits, fitted):
    """The network beside each baseline (``fitted``: metrics.json's ``baselines``, {name:
    {"seconds": s, split: report}}), a row a figure of each split that both have."""
    if not fitted:
        return []
    from fcnn_cli.results.page import SPLITS, _cell

    names = list(fitted)
    head = "".join(f"<th>{escape(h)}</th>" for h in ["split", "figure", "network", *names])
    body = []
    for split, report in splits.items():
        theirs = [fitted[n].get(split) or {} for n in names]
        if not any(theirs):
            continue
        for label, key, value in comparison(report):
            values = [value] + [_value(r, key) for r in theirs]
            body.append(f"<tr><td>{escape(SPLITS.get(split, split))}</td>"
                        f"<td>{escape(label)}</td>"
                        + "".join(_cell(v, key[0]) for v in values) + "</tr>\n")
    seconds = [fitted[n].get("seconds") for n in names]
    body.append("<tr><td></td><td>fit (seconds)</td>" + _cell(None)
                + "".join(_cell(s) for s in seconds) + "</tr>\n")
    return ["<h2>The network beside its baselines</h2>",
            f'<div class="table"><table class="baselines">\n<tr>{head}</tr>\n'
            + "".join(body) + "</table></div>"]


def comparison(report):
    """(label, key, value) of each figure of a split's ``report`` that the comparison shows;
    ``key`` finds the same figure in a baseline's report (:func:`_value`)."""
    if report.get("task") == "classification":
        keys = [("accuracy",), ("roc_auc",), ("cross_entropy",)]
        if "merit" in report:
            keys += [("signal_efficiency_at", AT_BACKGROUND), ("rejection_at", AT_SIGNAL),
                     ("separation",)]
    else:
        keys = [("rmse", name) for name in report.get("targets") or {}]
        keys += [("distance",)] if "distance" in report else []
    from fcnn_cli.results.page import LABELS

    labels = {"signal_efficiency_at": f"ε_S at ε_B = {AT_BACKGROUND}",
              "rejection_at": f"1/ε_B at ε_S = {AT_SIGNAL}", "distance": "mean distance"}
    return [(f"RMSE {key[1]}" if key[0] == "rmse" else labels.get(key[0], LABELS.get(
        key[0], key[0])), key, _value(report, key)) for key in keys]


def _value(report, key):
    """The figure ``key`` of a report; None where it has none."""
    name = key[0]
    if name in ("signal_efficiency_at", "rejection_at"):
        at, figure = (("background_efficiency", "signal_efficiency")
                      if name == "signal_efficiency_at" else ("signal_efficiency", "rejection"))
        points = (report.get("merit") or {}).get(name) or []
        return next((p.get(figure) for p in points if p.get(at) == key[1]), None)
    if name == "separation":
        return (report.get("merit") or {}).get("separation")
    if name == "rmse":
        return ((report.get("targets") or {}).get(key[1]) or {}).get("rmse")
    if name == "distance":
        return (report.get("distance") or {}).get("mean")
    return report.get(name)
