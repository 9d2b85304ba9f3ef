"""The network beside its baselines: the figures that the printed table
(:func:`~fcnn_cli.results.report.baseline_table`) and the report page both show, with each
model's value and error, read from their reports. Chosen once here, so that the terminal and
the page compare the models on the same figures."""

from dataclasses import dataclass

from fcnn_cli.results.units import readable_length

# The working points quoted: ε_S at this ε_B, 1/ε_B at this ε_S, what a group meeting asks first.
AT_BACKGROUND, AT_SIGNAL = 0.01, 0.7


@dataclass
class Figure:
    label: str  # as people read it, with its unit
    key: str  # the report's name of the figure, which says how its numbers are shown
    values: tuple  # a number per report, None where the report has none
    errors: tuple  # the value's error per report, None where there is none


def figures(reports):
    """The figures of the first of ``reports`` (the network's) in every one of them.
    Classification: accuracy, ROC AUC, cross-entropy and, where any report holds the figures
    of merit, ε_S at ε_B = AT_BACKGROUND, 1/ε_B at ε_S = AT_SIGNAL and the separation;
    regression: each label's RMSE and the mean distance, in the length unit the network's
    read best in; then the seconds to predict the rows, where a report records them."""
    return [Figure(label, key, *zip(*(read(r) for r in reports)))
            for label, key, read in _readers(reports[0], reports)]


def _readers(network, reports):
    """(label, key, (value, error) of a report) of each figure shown, and the seconds each
    model took to predict the rows where any report records them (a baseline's)."""
    timed = [("predict (s)", "predict_seconds", _plain("predict_seconds"))] \
        if any("predict_seconds" in r for r in reports) else []
    return _figures_of(network, reports) + timed


def _figures_of(network, reports):
    if network.get("task") == "classification":
        out = [(label, key, _plain(key)) for label, key in
               (("accuracy", "accuracy"), ("ROC AUC", "roc_auc"),
                ("cross-entropy", "cross_entropy"))]
        if any("merit" in r for r in reports):
            out += [(f"ε_S at ε_B = {AT_BACKGROUND:g}", "signal_efficiency",
                     _at("signal_efficiency_at", "background_efficiency", AT_BACKGROUND,
                         "signal_efficiency")),
                    (f"1/ε_B at ε_S = {AT_SIGNAL:g}", "rejection",
                     _at("rejection_at", "signal_efficiency", AT_SIGNAL, "rejection")),
                    ("separation ⟨S²⟩", "separation", _plain("merit", "separation"))]
        return out
    out = [_length(f"RMSE {name}", "rmse", m.get("rmse"), m.get("unit"),
                   ("targets", name, "rmse"))
           for name, m in (network.get("targets") or {}).items()]
    if "distance" in network:
        d = network["distance"]
        out.append(_length("mean distance", "distance", d.get("mean"), d.get("unit"),
                           ("distance", "mean")))
    return out


def _plain(*keys):
    return lambda report: (_number(report, *keys), None)


def _at(points, key, target, figure):
    """A figure of merit at one working point (``key`` = ``target``) and its error: the one
    that counts the cut's own scatter, as the merit table shows it (the two tables agree)."""
    def read(report):
        for point in _entry(report, "merit", points) or []:
            if isinstance(point, dict) and point.get(key) == target:
                return _number(point, figure), _number(point, "error_with_cut")
        return None, None
    return read


def _length(name, key, size, unit, place):
    """A length's row in the unit that the network's ``size`` of it reads best in."""
    factor, shown = readable_length(size if _is_number(size) else float("nan"), unit or "")

    def read(report):
        value = _number(report, *place)
        return (None if value is None else value * factor), None
    return name + (f" ({shown})" if shown else ""), key, read


def _entry(report, *keys):
    for key in keys:
        report = report.get(key) if isinstance(report, dict) else None
    return report


def _number(report, *keys):
    """The number at ``keys``, as a float; None where the report (an edited file) has none."""
    value = _entry(report, *keys)
    if not _is_number(value):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer of hundreds of digits
        return float("inf") if value > 0 else float("-inf")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)
