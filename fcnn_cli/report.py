"""Metric reports as tables for people (rich); JSON is the report dict itself."""

from rich.table import Table as RichTable


def _fmt(v):
    if v != v:  # NaN
        return "–"
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"


def _row(m):
    # R² close to 1 is where models differ: show it with enough digits to tell them apart.
    r2 = "–" if m["r2"] != m["r2"] else f"{m['r2']:.6f}"
    return [_fmt(m["mse"]), _fmt(m["rmse"]), _fmt(m["mae"]), r2]


def regression_tables(report, title="Metrics"):
    """One table of per-target metrics, and one of distances where the targets are a position."""
    table = RichTable(title=f"{title} ({report['rows']} rows)", title_justify="left")
    for col in ("target", "unit", "MSE", "RMSE", "MAE", "R²"):
        table.add_column(col, justify="left" if col in ("target", "unit") else "right")
    for name, m in report["targets"].items():
        table.add_row(name, m["unit"], *_row(m))
    table.add_row("overall", "", *_row(report["overall"]), style="bold")
    tables = [table]
    if "distance" in report:
        d = report["distance"]
        unit = f" ({d['unit']})" if d["unit"] else ""
        dist = RichTable(title=f"Distance between true and predicted ({', '.join(d['of'])})"
                         f"{unit}", title_justify="left")
        for col in ("mean", "median", "68th pct", "95th pct", "max"):
            dist.add_column(col, justify="right")
        dist.add_row(*(_fmt(d[k]) for k in ("mean", "median", "p68", "p95", "max")))
        tables.append(dist)
    return tables


def diagnostics_table(rows):
    """Per layer: weight-gradient norm at the start and the end, activation moments at the end."""
    first, last = min(r["epoch"] for r in rows), max(r["epoch"] for r in rows)
    start = {r["layer"]: r for r in rows if r["epoch"] == first}
    end = {r["layer"]: r for r in rows if r["epoch"] == last}
    saturation = any("saturated" in r for r in rows)
    table = RichTable(title=f"Diagnostics (epoch {first} → {last})", title_justify="left")
    for col in ("layer", f"|∇W| epoch {first}", f"|∇W| epoch {last}", "act mean", "act var") + \
            (("saturated",) if saturation else ()):
        table.add_column(col, justify="right")
    for layer, r in end.items():
        cells = [str(layer), _fmt(start[layer]["grad_norm"]), _fmt(r["grad_norm"]),
                 _fmt(r["act_mean"]), _fmt(r["act_var"])]
        if saturation:
            cells.append(f"{r['saturated']:.0%}" if "saturated" in r else "")
        table.add_row(*cells)
    return table


def tables(report, title):
    """The tables for a report of either task."""
    if report["task"] == "classification":
        return classification_tables(report, title)
    return regression_tables(report, title)


def classification_tables(report, title="Metrics"):
    """Summary, per-class scores and the confusion matrix (rows: true, columns: predicted)."""
    summary = RichTable(title=f"{title} ({report['rows']} rows)", title_justify="left")
    for col in ("accuracy", "cross-entropy", "ROC AUC"):
        summary.add_column(col, justify="right")
    summary.add_row(f"{report['accuracy']:.2%}", _fmt(report["cross_entropy"]),
                    _fmt(report["roc_auc"]))
    per_class = RichTable(title="Per class", title_justify="left")
    for col in ("class", "precision", "recall", "F1", "support"):
        per_class.add_column(col, justify="left" if col == "class" else "right")
    for name, m in report["per_class"].items():
        per_class.add_row(name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}",
                          str(m["support"]))
    confusion = RichTable(title="Confusion matrix (rows: true class, columns: predicted)",
                          title_justify="left")
    confusion.add_column("true \\ predicted")
    for name in report["classes"]:
        confusion.add_column(name, justify="right")
    for name, row in zip(report["classes"], report["confusion_matrix"]):
        confusion.add_row(name, *map(str, row))
    return [summary, per_class, confusion]
