"""The pieces of the report page's HTML that its sections share: the names of metrics.json's
keys and of the splits, a cell that carries its number's exact value, a table of such cells.
Kept apart from :mod:`~fcnn_cli.results.page`, which puts the page together, so that the
sections in other modules (:mod:`~fcnn_cli.results.merit_page`) build on them without
importing the page that imports them."""

import json
from html import escape

# Headers for the keys of metrics.json and config.json; a key not here is shown as it is.
LABELS = {"mse": "MSE (unit²)", "rmse": "RMSE", "mae": "MAE", "r2": "R²",
          "cross_entropy": "cross-entropy", "roc_auc": "ROC AUC", "f1": "F1",
          "ece": "expected calibration error",
          "mean_entropy": "mean entropy (nats)", "low": "confidence from", "high": "to",
          "confidence": "mean confidence", "nll": "NLL", "crps": "CRPS",
          "coverage_1sigma": "within ±1σ", "coverage_2sigma": "within ±2σ",
          "level": "central interval", "observed": "share of labels within",
          "p68": "68th percentile", "p95": "95th percentile", "distance": "mean distance"}
SPLITS = {"train": "training", "val": "validation", "test": "test"}
# Scores whose best is 1, shown with the digits that tell them from 1; and shares, in %.
SCORES = ("r2", "roc_auc", "accuracy", "precision", "recall", "f1")
PERCENTS = ("coverage_1sigma", "coverage_2sigma", "level", "observed")


def cell(value, key=None, error=None):
    """A table cell of ``value`` (shown as ``key``'s numbers are, with ``error`` where given),
    a number's exact value in its ``data-value``."""
    from fcnn_cli.results.report import _fmt, score

    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if value is None:
        return "<td>–</td>"
    if isinstance(value, str):
        return f"<td>{escape(value)}</td>"
    if isinstance(value, (int, float)):
        shown = ("–" if value != value else score(value) if key in SCORES
                 else f"{value:.1%}" if key in PERCENTS
                 else _fmt(value) if isinstance(value, float) else str(value))
        if error is not None and error == error and value == value:
            shown += f" ± {error:.2g}"
        return f'<td class="n" data-value="{value!r}">{escape(shown)}</td>'
    return f"<td>{escape(json.dumps(value))}</td>"


def table(keys, rows, cls="", names=None):
    """A table of ``rows`` under the headers of ``keys`` (``names`` or LABELS give them), each
    cell shown as its key asks."""
    names = {**LABELS, **(names or {})}
    head = "".join(f"<th>{escape(names.get(str(k), str(k)))}</th>" for k in keys)
    body = "".join("<tr>" + "".join(cell(v, k) for k, v in zip(keys, row)) + "</tr>\n"
                   for row in rows)
    return f'<div class="table"><table class="{escape(cls)}">\n<tr>{head}</tr>\n{body}' \
           "</table></div>"
