"""The figures of merit of a classification report (``report["merit"]``, see
:mod:`fcnn_cli.network.merit`) as one table for people: ε_S at each ε_B and 1/ε_B at each ε_S
with their errors (those that count the cut's own scatter) and cuts, the separation, the working
point and, where the weights are expected yields, the best cuts of S/√B and Z_Asimov. A figure
the rows cannot resolve shows "—", and why once under the table."""

from rich.table import Table as RichTable
from rich.text import Text

MISSING = "—"


def merit_tables(merit):
    """[the table, and a note of the reasons for the figures it could not give, if any]."""
    table = RichTable(title=Text(_heading(merit), style="table.title"), title_justify="left")
    for name, justify in (("figure", "left"), ("value", "right"), ("cut", "right")):
        table.add_column(name, justify=justify)
    reasons = {}
    for figure, value, cut, reason in _rows(merit):
        table.add_row(Text(figure), value, cut)
        if reason:
            reasons.setdefault(reason, []).append(figure)
    notes = [f"{MISSING} {', '.join(figures)}: {reason}" for reason, figures in reasons.items()]
    notes += [merit[k] for k in ("weights_warning",) if merit.get(k)]
    note = merit.get("significance", {}).get("note")
    return [table] + ([Text("\n".join(notes + ([note] if note else [])), style="italic")]
                      if notes or note else [])


def _heading(merit):
    weighted = "sum_of_weights" in merit["signal"]
    return (f"Figures of merit (signal: {merit['signal_class']}; {merit['signal']['rows']} "
            f"signal and {merit['background']['rows']} background rows"
            + (", weighted)" if weighted else ")"))


def _rows(merit):
    """(figure, value, cut, reason or None) a row of the table."""
    for p in merit["signal_efficiency_at"]:
        yield (f"ε_S at ε_B = {p['background_efficiency']:g}",
               _pm(p["signal_efficiency"], p["error_with_cut"]), _cut(p["cut"]), p.get("reason"))
    for p in merit["rejection_at"]:
        yield (f"1/ε_B at ε_S = {p['signal_efficiency']:g}",
               _pm(p["rejection"], p["error_with_cut"]), _cut(p["cut"]), p.get("reason"))
    separation = merit["separation"]
    yield (f"separation ⟨S²⟩ ({merit['separation_bins']} bins)", _value(separation), "",
           "a class's sum of weights is not positive" if separation != separation else None)
    if "working_point" in merit:
        yield from _working_point(merit["working_point"])
    if "significance" in merit:
        yield from _significance(merit["significance"]["best"])


ASKED = {"signal_efficiency": "ε_S", "background_efficiency": "ε_B", "threshold": "cut"}


def _working_point(wp):
    (key, value), = wp["asked"].items()
    reason = wp.get("reason")
    yield f"working point ({ASKED[key]} = {value:g})", "", _cut(wp["cut"]), reason
    for name, figure, error in (("ε_S", "signal_efficiency", "signal_efficiency_error"),
                                ("ε_B", "background_efficiency", "background_efficiency_error"),
                                ("1/ε_B", "rejection", "rejection_error"),
                                ("purity", "purity", None)):
        shown = _pm(wp[figure], wp[error]) if error else _value(wp[figure])
        yield f"  {name}", shown, "", None


def _significance(best):
    for key, name in (("s_over_sqrt_b", "S/√B"), ("z_asimov", "Z_Asimov")):
        b = best[key]
        if b is None:
            yield f"best {name}", MISSING, MISSING, "no cut leaves a background > 0"
        else:
            # The rows behind B: a best cut on a few background rows is a fluctuation.
            rows = f"; {b['background_rows']} background rows" if "background_rows" in b else ""
            yield (f"best {name} (S = {b['signal']:.4g}, B = {b['background']:.4g}{rows})",
                   _value(b[key]), _cut(b["cut"]), None)


def _value(v):
    return MISSING if v != v else f"{v:.3g}"


def _pm(value, error):
    if value != value:
        return MISSING
    return f"{value:.3g}" if error != error else f"{value:.3g} ± {error:.2g}"


def _cut(cut):
    return MISSING if cut != cut else f"{cut:.4g}"
