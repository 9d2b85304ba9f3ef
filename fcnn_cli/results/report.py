"""Metric reports as tables for people (rich); JSON is the report dict itself.

Names from the data (file names, targets, units, classes) go in as rich Text, never as markup:
rich would read ``[...]`` in them as styles, and ``[/]`` would crash the report.

One idea, one module of about 400 lines: every table a person reads on the terminal is built
here from its report dict, so that the styles and the escaping of names live in one place."""

from rich.table import Table as RichTable
from rich.text import Text

from fcnn_cli.network.foldrule import FoldRule
from fcnn_cli.network.metrics import FULL_REPORT_CLASSES, ROC_AUC_CLASSES
from fcnn_cli.results.units import readable_length

# Classes a per-class table shows on screen, and the most classes a confusion matrix is drawn
# for (beyond, a table of the most frequent confusions): what a terminal shows legibly.
TABLE_CLASSES = 20
_JSON = "the JSON report (fcnn evaluate --json; metrics.json of a run)"


def _title(text):
    return Text(text, style="table.title")


def _fmt(v):
    if v != v:  # NaN
        return "–"
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"


def score(v, places=4):
    """A score whose best is 1 (R², ROC AUC) to ``places`` decimals, or to as many more as
    show two digits of its distance from 1: 0.99987, not 1; only 1 itself is 1."""
    import math

    if v != v:
        return "–"
    if not 0 < v < 1:
        return f"{v:.{places}g}" if abs(v) < 1e4 else f"{v:.3e}"
    return f"{v:.{min(17, max(places, 1 - math.floor(math.log10(1 - v))))}f}"


def _weighted(report):
    """Whether a report's figures are weighted: it then has the sums of weights beside counts."""
    return "sum_of_weights" in report


def _heading(title, report):
    """A report's title with its rows, and for a weighted one their sum of weights and effective
    rows: every figure under it is then a weighted one."""
    if not _weighted(report):
        return _title(f"{title} ({report['rows']} rows)")
    return _title(f"{title}, weighted ({report['rows']} rows, sum of weights "
                  f"{_fmt(report['sum_of_weights'])}, effective rows "
                  f"{_fmt(report['effective_rows'])})")


def _row(m, factor=1.0):
    # R² close to 1 is where models differ: show it with enough digits to tell them apart.
    return [_fmt(m["mse"] * factor ** 2), _fmt(m["rmse"] * factor), _fmt(m["mae"] * factor),
            score(m["r2"], 6)]


def regression_tables(report, title="Metrics"):
    """One table of per-target metrics, and one of distances where the targets are a position.
    Lengths are shown in a unit that suits their size (errors of metres in metres, not as
    0.002 km), as the plots show them; the JSON report keeps the data's units."""
    table = RichTable(title=_heading(title, report), title_justify="left")
    for col in ("target", "unit", "MSE (unit²)", "RMSE", "MAE", "R²"):
        table.add_column(col, justify="left" if col in ("target", "unit") else "right")
    for name, m in report["targets"].items():
        factor, unit = readable_length(m["rmse"], m["unit"])
        table.add_row(Text(name), Text(unit), *_row(m, factor))
    table.add_row("overall", "", *_row(report["overall"]), style="bold")
    tables = [table]
    if "distance" in report:
        d = report["distance"]
        factor, unit = readable_length(d["mean"], d["unit"])
        unit = f" ({unit})" if unit else ""
        dist = RichTable(title=_title(f"Distance between true and predicted "
                                      f"({', '.join(d['of'])}){unit}"), title_justify="left")
        for col in ("mean", "median", "68th pct", "95th pct", "max"):
            dist.add_column(col, justify="right")
        dist.add_row(*(_fmt(d[k] * factor) for k in ("mean", "median", "p68", "p95", "max")))
        tables.append(dist)
    if "uncertainty" in report:
        tables += uncertainty_tables(report["uncertainty"], report["targets"])
    return tables


def uncertainty_tables(u, targets):
    """The predicted Gaussians against the labels: per label NLL, CRPS, mean σ and the share
    within ±1σ and ±2σ; and the share within each central interval against its level."""
    table = RichTable(title=_title("Uncertainties (ideal: 68.3 % within ±1σ, 95.4 % within "
                                   "±2σ)"), title_justify="left")
    for col in ("target", "unit", "NLL", "CRPS", "mean σ", "within ±1σ", "within ±2σ"):
        table.add_column(col, justify="left" if col in ("target", "unit") else "right")
    for name, m in u["per_label"].items():
        table.add_row(Text(name), Text(targets[name]["unit"]), _fmt(m["nll"]), _fmt(m["crps"]),
                      _fmt(u["mean_sigma"][name]), f"{m['coverage_1sigma']:.1%}",
                      f"{m['coverage_2sigma']:.1%}")
    table.add_row("overall", "", _fmt(u["nll"]), _fmt(u["crps"]), "",
                  f"{u['coverage_1sigma']:.1%}", f"{u['coverage_2sigma']:.1%}", style="bold")
    levels = RichTable(title=_title("Calibration"),
                       title_justify="left")
    levels.add_column("central interval")
    levels.add_column("observed", justify="right")
    for row in u["calibration"]:
        levels.add_row(f"{row['level']:.1%}", f"{row['observed']:.1%}")
    return [table, levels]


def reliability_table(report):
    """Confidence (the probability of the class decided on) against accuracy, by bins."""
    weighted = _weighted(report)
    table = RichTable(title=_title(f"Reliability{', weighted' if weighted else ''} (expected "
                                   f"calibration error {_fmt(report['ece'])})"),
                      title_justify="left")
    for col in ("confidence bin", "rows") + (("sum of weights",) if weighted else ()) + \
            ("mean confidence", "accuracy"):
        table.add_column(col, justify="right")
    for b in report["reliability"]:
        sums = [_fmt(b["sum_of_weights"])] if weighted else []
        table.add_row(f"{b['low']:.1f}–{b['high']:.1f}", str(b["rows"]), *sums,
                      f"{b['confidence']:.3f}", f"{b['accuracy']:.3f}")
    return table


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
    """The tables for a report of either task; a classification's figures of merit after its
    own tables where it has them."""
    if report["task"] == "classification":
        from fcnn_cli.results.merittables import merit_tables

        merit = merit_tables(report["merit"]) if "merit" in report else []
        return classification_tables(report, title) + merit
    return regression_tables(report, title)


def classification_tables(report, title="Metrics"):
    """Summary, per-class scores and the confusion matrix (rows: true, columns: predicted).

    Past ``TABLE_CLASSES`` classes the per-class table shows those with the most rows, and the
    most frequent confusions replace the matrix; a note under each says what is left out and
    where it is (the JSON report), or that it is not kept (past ``FULL_REPORT_CLASSES``)."""
    summary = RichTable(title=_heading(title, report), title_justify="left")
    for col in ("accuracy", "cross-entropy", "ROC AUC"):
        summary.add_column(col, justify="right")
    summary.add_row(f"{report['accuracy']:.2%}", _fmt(report["cross_entropy"]),
                    score(report["roc_auc"]))
    if "classes" in report and len(report["classes"]) <= TABLE_CLASSES:
        return [summary, _per_class_table(report["per_class"].items(), _weighted(report)),
                _matrix(report),
                reliability_table(report)]
    shown = [summary, reliability_table(report)]
    if report.get("n_classes", 0) > ROC_AUC_CLASSES:
        shown.append(_note(f"ROC AUC is not computed past {ROC_AUC_CLASSES} classes (it would "
                           "keep a score per class and row)."))
    return shown + _capped_per_class(report) + _capped_confusions(report)


def recipe_table(report):
    """evaluate's lines on what it applied of the model's recipe: the selection and the rows
    it removed, the weights, the samples (none where there is nothing to say)."""
    rows = []
    for s in report.get("samples") or ():
        rows.append((f"sample {s['name']}", f"{len(s['files'])} file(s)"
                     + (f", scale {s['scale']:g}" if s["scale"] != 1 else "")
                     + (f", where {s['where']}" if s.get("where") else "")
                     + (" (its cut in training)" if s.get("where_of_the_model") else "")))
    selection = report.get("selection")
    if selection:
        cut = selection["where"] or "the samples' selections"
        rows.append(("selection", f"{cut}: removed {selection['rows_removed']} row(s), kept "
                     f"{selection['rows_kept']}" if selection["applied"] else
                     f"{cut}: not applied (--no-select)"))
    if "weighted" in report:
        rows.append(("weights", (report["weight"] or "the samples' scales")
                     if report["weighted"] else "none: events counted"))
    if report.get("rows_of_weight_0"):
        rows.append(("weight 0", f"{report['rows_of_weight_0']} row(s) left out, as in "
                                 "training"))
    return _data_table(rows)


def _data_table(rows):
    """The "Data" table of (what, value) rows, as a list of none or one."""
    if not rows:
        return []
    table = RichTable(title="Data", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value")
    for what, value in rows:
        table.add_row(Text(what), Text(value))
    return [table]


def _note(text):
    return Text(text, style="italic")


def _per_class_table(rows, weighted=False):
    table = RichTable(title="Per class, weighted" if weighted else "Per class",
                      title_justify="left")
    for col in ("class", "precision", "recall", "F1", "support") + \
            (("sum of weights",) if weighted else ()):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, m in rows:
        sums = [_fmt(m["sum_of_weights"])] if weighted and "sum_of_weights" in m else []
        table.add_row(Text(name), f"{m['precision']:.4f}", f"{m['recall']:.4f}",
                      f"{m['f1']:.4f}", str(m["support"]), *sums)
    return table


def _matrix(report):
    # Weighted, each cell gives its rows and, in brackets, their sum of weights.
    sums = report.get("confusion_matrix_weighted")
    confusion = RichTable(title="Confusion matrix (rows: true class, columns: predicted"
                          + ("; rows (sum of weights))" if sums else ")"), title_justify="left")
    confusion.add_column("true \\ predicted")
    for name in report["classes"]:
        confusion.add_column(Text(name), justify="right")
    for i, (name, row) in enumerate(zip(report["classes"], report["confusion_matrix"])):
        cells = [f"{n} ({_fmt(w)})" for n, w in zip(row, sums[i])] if sums else map(str, row)
        confusion.add_row(Text(name), *cells)
    return confusion


def _capped_per_class(report):
    # A full report lists the classes in their order: show those with the most rows.
    rows = sorted(report["per_class"].items(), key=lambda item: -item[1]["support"])
    shown = rows[:TABLE_CLASSES]
    table = _per_class_table(shown, _weighted(report))
    if "classes" in report:
        n_classes = len(report["classes"])
        rest = f"all are in {_JSON}"
    else:
        n_classes = report["n_classes"]
        rest = (f"{_JSON} lists {len(rows)} and the averages; per-class numbers of the other "
                f"{n_classes - len(rows)} are not kept")
        for label, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
            m = report[key]
            table.add_row(label, *(f"{m[k]:.4f}" for k in ("precision", "recall", "f1")),
                          str(report["rows"]), style="bold")
    return [table, _note(f"The {len(shown)} classes with the most rows of {n_classes}; "
                         f"{rest}.")]


def _capped_confusions(report):
    if "classes" in report:
        names, matrix = report["classes"], report["confusion_matrix"]
        pairs = sorted(((names[i], names[j], count) for i, row in enumerate(matrix)
                        for j, count in enumerate(row) if count and i != j),
                       key=lambda pair: -pair[2])  # stable: ties stay in class order
        total, rest = len(pairs), f"the full confusion matrix is in {_JSON}"
    else:
        pairs = [(p["true"], p["predicted"], p["count"]) for p in report["top_confusions"]]
        total = len(pairs) + report["left_out"]["confusions"]
        rest = (f"{_JSON} lists the {len(pairs)} most frequent; past {FULL_REPORT_CLASSES} "
                "classes the full confusion matrix is not kept")
    shown = pairs[:TABLE_CLASSES]
    table = RichTable(title="Most frequent confusions", title_justify="left")
    for col in ("true class", "predicted", "rows"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for true, predicted, count in shown:
        table.add_row(Text(true), Text(predicted), str(count))
    return [table, _note(f"{len(shown)} of the {total} (true, predicted) pairs of different "
                         f"classes; {rest}.")]


def _range(low, high):
    """A bin's bounds to a precision that its width shows: 0 – 10, not -0.005776 – 9.992;
    in significant digits where fixed places would be many (1e+300, 1.0000001)."""
    import math

    width = high - low  # inf where the bounds are near the largest floats
    big = max(abs(low), abs(high))
    if math.isfinite(width) and width > 0 and big < 1e6:
        places = max(0, 1 - math.floor(math.log10(width)))
        if places <= 6:
            return " – ".join(f"{round(v, places) + 0.0:.{places}f}" for v in (low, high))
    digits = 4
    if math.isfinite(width) and width > 0 and big > 0:
        digits = min(17, max(4, 2 + math.ceil(math.log10(big) - math.log10(width))))
    return " – ".join(f"{v:.{digits}g}" for v in (low, high))


def _pm(value, error):
    if value != value:
        return "–"
    return f"{value:.3g}" if error != error else f"{value:.3g} ± {error:.2g}"


TABLE_RECALLS = 4  # classes whose recall the binned table shows (all are in the JSON)


def binned_tables(binned):
    """Per label, a table of its bins: range, rows, bias ± error, resolution (σ), median and
    half the 16–84 % width; one of the mean distance for a point; one of the accuracy and
    recalls for classes."""
    by = [a["column"] + (f" ({a['unit']})" if a["unit"] else "") for a in binned["by"]]
    outside = _outside(binned)
    where = f"in bins of {' and '.join(by)} ({binned['rows']} rows{outside})"
    bins = [b for b in binned["bins"] if b["count"]]
    if not bins:
        return [_note(f"No bins: {binned.get('empty', 'no rows in any bin')}.")]
    empty = len(binned["bins"]) - len(bins)
    where = where[:-1] + (f"; {empty} empty bins not shown)" if empty else ")")
    first = bins[0]
    if "accuracy" in first:
        recalls = list(first["recall"])[:TABLE_RECALLS]
        more = len(first["recall"]) - len(recalls)
        table = _bin_table(f"Accuracy {where}", by, bins,
                           ["accuracy"] + [f"recall {c}" for c in recalls],
                           lambda b: [_pm(b["accuracy"], b["accuracy_error"])]
                           + [_fmt(b["recall"][c]) for c in recalls])
        return [table] + ([_note(f"The recall of {more} more classes is in --json.")]
                          if more else [])
    shown = [_bin_table(f"{t} {where}", by, bins, ["bias ± error", "σ", "median", "½(p84−p16)"],
                        lambda b, t=t: _residual_cells(b["targets"][t]))
             for t in first["targets"]]
    if "distance" in first:
        shown.append(_bin_table(f"Distance {where}", by, bins, ["mean ± error", "median"],
                                lambda b: [_pm(b["distance"]["mean"], b["distance"]["error"]),
                                           _pm(b["distance"]["median"], float("nan"))]))
    return shown


def _outside(binned):
    """Rows outside the bins: where the column had no number, and where it was out of range."""
    outside, odd = binned["outside"], binned.get("not_finite", 0)
    if not outside:
        return ""
    if not odd:
        return f"; {outside} outside the bins"
    return (f"; {outside} outside the bins: {odd} NaN or infinite, {outside - odd} out of "
            "range")


def _residual_cells(s):
    nan = float("nan")
    return [_pm(s["bias"], s["bias_error"]), _pm(s["resolution"], nan), _pm(s["median"], nan),
            _pm(s["robust_resolution"], nan)]


def _bin_table(title, by, bins, columns, cells):
    table = RichTable(title=_title(title), title_justify="left")
    for name in by:
        table.add_column(Text(name))
    for col in ["rows"] + columns:
        table.add_column(Text(col), justify="right")
    for b in bins:
        table.add_row(*[_range(lo, hi) for lo, hi in zip(b["low"], b["high"])],
                      str(b["count"]), *cells(b))
    return table


def working_point_text(point, signal):
    """A model's working point (``task.working_point``) in words, as ``fcnn info`` and the end
    of training say it: the rule that makes the class column and what the cut was chosen at."""
    asked = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in point.get("asked", {}).items())
    return f"{signal} where p({signal}) ≥ {point['cut']:.6g}" + (f" (chosen at {asked})" if asked
                                                                 else "")


def _embedding(net):
    """A network's embedding of its features, in words."""
    words = f"{net['embed']}, {net['embed_dim']} values per feature"
    if net["embed"] == "periodic":
        words += f", {net['embed_frequencies']} frequencies (σ {net['embed_sigma']:g} at start)"
    return words


def info_tables(about):
    """``fcnn info``: the network, the columns, the training and the metrics of a checkpoint."""
    net = about["network"]
    summary = RichTable(title=_title(about["model"]), title_justify="left", show_header=False)
    summary.add_column("what")
    summary.add_column("value")
    rows = [("task", about["task"]), ("layers", net["layers"]),
            ("parameters", _parameters(net["parameters"], about.get("members"))),
            ("architecture", f"{net['arch']}, {net['activation']}, init {net['init']}, "
                             f"dropout {net['dropout']}"
                             + (", batch norm" if net["batchnorm"] else "")),
            ("feature scaling", about["preprocessing"]["features"]),
            ("best epoch", str(about["best_epoch"]))]
    if net.get("embed", "none") != "none":  # models from before embeddings have no key
        rows.insert(3, ("embedding", _embedding(net)))
    if about.get("members"):
        rows.append(("ensemble", f"{about['members']} members (seed + 0 … seed + "
                                 f"{about['members'] - 1}); best epochs "
                                 f"{', '.join(map(str, about['best_epochs'] or []))}"))
    folds = about.get("folds")
    if folds:
        rows.append(("k-fold", "member k trained on the rows outside fold k of "
                               + _described(folds)))
    if about.get("output"):
        rows.append(("output", "a mean and a Gaussian variance per label"))
    labels = about["labels"]
    if "classes" in labels:
        rows += [("label", labels["column"]),
                 ("classes", ", ".join(labels["classes"][:TABLE_CLASSES])
                  + (f" … ({len(labels['classes'])})" if len(labels["classes"]) > TABLE_CLASSES
                     else "")),
                 ("output", labels["output"])]
        if labels.get("signal") is not None:
            rows.append(("signal", labels["signal"]))
        if labels.get("working_point"):
            rows.append(("working point", working_point_text(labels["working_point"],
                                                             labels["signal"])))
    else:
        rows += [("labels", ", ".join(c["name"] + (f" ({c['unit']})" if c["unit"] else "")
                                      for c in labels["columns"])),
                 ("position", ", ".join(labels["position"]) if labels["position"] else "–")]
    if about.get("nan_fill"):
        rows.append(("missing values", _filling(about["nan_fill"])))
    if about.get("categories"):
        from fcnn_cli.data.categories import Categories

        rows += [(f"levels of {c}", ", ".join(shown))
                 for c, shown in Categories(about["categories"]).describe(
                     about.get("embedded")).items()]
    if about["training"]:
        rows.append(("training", _training(about["training"])))
    rows.append(("written by", ", ".join(f"{k} {v}" for k, v in about["versions"].items())))
    for what, value in rows:
        summary.add_row(what, Text(str(value)))
    return [summary, *_recipe_tables(about.get("recipe")), _features_table(about["features"]),
            *_metrics_tables(about["metrics"])]


def _filling(filled):
    """A --nan fill model's line: each feature's median, and the input that flags it."""
    return "filled with the training median: " + ", ".join(
        f"{f['feature']} {_fmt(f['median'])}" + (f" (input {f['indicator']})"
                                                if f["indicator"] else "") for f in filled)


RECIPE_FILES = 3  # files of a sample that a recipe's rows name; info --json lists all


def recipe_rows(recipe, files=RECIPE_FILES):
    """The rows (what, value) that state a recipe in its saved form (``Recipe.to_dict``, as the
    checkpoint and config.json keep it): each sample's files, scale and selection, the weight,
    the selection, the objects and each definition. Read from a run's files, which may have
    been edited: what is not of its kind is passed over."""
    if not isinstance(recipe, dict):
        return []
    rows = []
    for s in recipe.get("samples") or []:
        if not isinstance(s, dict) or not isinstance(s.get("files"), list):
            continue
        paths = [str(f.get("path") if isinstance(f, dict) else f) for f in s["files"]]
        text = ", ".join(paths[:files]) + (f" … ({len(paths)} files)" if len(paths) > files
                                           else "")
        extra = [f"scale {s['scale']:g}"] if isinstance(s.get("scale"), (int, float)) \
            and s["scale"] != 1 else []
        extra += [f"where {s['where']}"] if s.get("where") else []
        name = s.get("name")
        rows.append((f"sample {name}" if name is not None else "data",
                     text + (f" ({'; '.join(extra)})" if extra else "")))
    rows += [(what, str(recipe[key])) for what, key in (("weight", "weight"),
                                                       ("selection", "where")) if recipe.get(key)]
    if recipe.get("objects"):
        rows.append(("objects", ", ".join(map(str, recipe["objects"]))))
    rows += [(f"define {d[0]}", str(d[1])) for d in recipe.get("define") or []
             if isinstance(d, list) and len(d) == 2]
    return rows


def _recipe_tables(recipe):
    """fcnn info's table of what the model makes of raw tables."""
    return _data_table(recipe_rows(recipe))


def _parameters(count, members):
    """An ensemble's count is all its members': said so, with one member's."""
    if not members:
        return f"{count:,}"
    return f"{count:,} ({members} members × {count // members:,})"


# The training options fcnn info shows: always these, and the others of INFO_UNLESS_DEFAULT
# where a run set them.
INFO_TRAINING = ("epochs", "batch_size", "lr", "optimizer", "schedule", "ema", "weight_decay",
                 "best_by", "seed")
INFO_UNLESS_DEFAULT = ("precision", "class_weight")


def _training(training):
    import dataclasses

    from fcnn_cli.core.config import TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    shown = [k for k in INFO_TRAINING if k in training]
    shown += [k for k in INFO_UNLESS_DEFAULT if training.get(k, defaults[k]) != defaults[k]]
    return ", ".join(f"{k} {training[k]}" for k in shown)


def _features_table(features):
    table = RichTable(title=_title(f"Features ({len(features)}): training ranges"),
                      title_justify="left")
    for col in ("feature", "unit", "min", "max"):
        table.add_column(col, justify="left" if col in ("feature", "unit") else "right")
    for f in features[:TABLE_CLASSES]:
        table.add_row(Text(f["name"]), Text(f["unit"]),
                      *("–" if v is None else _fmt(v) for v in (f["min"], f["max"])))
    if len(features) > TABLE_CLASSES:
        table.add_row(f"… {len(features) - TABLE_CLASSES} more (fcnn info --json)", "", "", "")
    return table


def _metrics_tables(metrics):
    table = RichTable(title=_title("Metrics of the kept weights"), title_justify="left")
    if not metrics:
        return []
    first = next(iter(metrics.values()))
    table.add_column("split")
    table.add_column("rows", justify="right")
    if first.get("task") == "classification":
        keys = (("accuracy", "accuracy"), ("cross_entropy", "cross-entropy"),
                ("roc_auc", "ROC AUC"))
        for _, name in keys:
            table.add_column(name, justify="right")
        for split, m in metrics.items():
            table.add_row(split, str(m.get("rows", "")), *(
                (score if k == "roc_auc" else _fmt)(_headline(m, k)) for k, _ in keys))
        return [table]
    # The mean distance only of labels that are a position: one label, or several that are
    # not, have none.
    position = any("distance" in m for m in metrics.values())
    for name in ("RMSE", "MAE", "R²", *(["mean distance"] if position else [])):
        table.add_column(name, justify="right")
    for split, m in metrics.items():
        distance = [_fmt(_headline(m, "distance", "mean"))] if position else []
        table.add_row(split, str(m.get("rows", "")), _fmt(_headline(m, "overall", "rmse")),
                      _fmt(_headline(m, "overall", "mae")), score(_headline(m, "overall", "r2"), 6),
                      *distance)
    return [table]


def _headline(report, *keys):
    """The number at ``keys`` in a checkpoint's metrics, as a float; NaN (shown as –) where
    the file (edited, and signed anew) holds none there."""
    for key in keys:
        report = report.get(key) if isinstance(report, dict) else None
    if not isinstance(report, (int, float)) or isinstance(report, bool):
        return float("nan")
    try:
        return float(report)
    except OverflowError:  # an integer of hundreds of digits
        return float("inf") if report > 0 else float("-inf")



# The figures of each fold's network that the folds' table shows: (name, place in a report).
FOLD_FIGURES = {"classification": (("accuracy", ("accuracy",)),
                                   ("cross-entropy", ("cross_entropy",)),
                                   ("ROC AUC", ("roc_auc",))),
                "regression": (("RMSE", ("overall", "rmse")), ("MAE", ("overall", "mae")),
                               ("R²", ("overall", "r2")), ("mean distance", ("distance", "mean")))}
FOLD_ROWS = 20  # folds shown each on a row of its own; beyond, their mean and spread only


def fold_tables(metrics):
    """k-fold's tables: each fold's network on its own fold, then the out-of-fold metrics of
    every row (``metrics["val"]``)."""
    return [folds_table(metrics["folds"]),
            *tables(metrics["val"], "Out-of-fold metrics")]


def folds_table(folds):
    """k-fold's figures of each fold's network on its own fold (up to ``FOLD_ROWS`` folds),
    and their mean ± standard deviation over the folds."""
    each = folds["each"]
    table = RichTable(title=_title(f"Each fold's network on its own fold "
                                   f"({_described(folds.get('rule') or {}, len(each))})"),
                      title_justify="left")
    figures = [(name, place) for name, place in FOLD_FIGURES.get(folds.get("task"), ())
               if _at(folds, place) is not None]
    # Distances in the unit they read best in, as the table of distances shows them.
    factor, unit = readable_length(_at(folds, ("distance", "mean")) or 0.0,
                                   (folds.get("distance") or {}).get("unit", ""))
    for col in ["fold", "rows"] + [f"{name} ({unit})" if place[0] == "distance" and unit
                                   else name for name, place in figures]:
        table.add_column(col, justify="left" if col == "fold" else "right")

    def cell(report, place):
        value = _at(report, place)
        return value * factor if value is not None and place[0] == "distance" else value
    for k, report in enumerate(each if len(each) <= FOLD_ROWS else []):
        table.add_row(str(k), str(report["rows"]), *(_shown(name, cell(report, place))
                                                     for name, place in figures))
    spread = folds.get("std") or {}
    table.add_row("mean ± std", str(folds["rows"]), *(
        f"{_shown(name, cell(folds, place))} ± {_fmt(cell(spread, place) or 0.0)}"
        for name, place in figures), style="bold")
    return table


def _described(rule, k=None):
    """A recorded fold rule (a dict: metrics.json's, fcnn info's; ``k`` where it has none) as
    FoldRule.describe says it: "5 folds by row position with seed 2, stratified by 'side'"."""
    return FoldRule(rule.get("k", k), rule.get("by"), rule.get("seed"),
                    rule.get("strata")).describe()


def _shown(name, value):
    """A figure as the other tables show it: a score whose best is 1 with the digits that
    tell it from 1."""
    if value is None:
        return "–"
    return score(value, 6 if name == "R²" else 4) if name in ("R²", "ROC AUC") else _fmt(value)


def _at(report, place):
    for key in place:
        report = report.get(key) if isinstance(report, dict) else None
    return report if isinstance(report, (int, float)) and not isinstance(report, bool) else None


def baseline_table(metrics, split=None, seconds=None):
    """The network beside its baselines (``metrics["baselines"]``), a column each, on the
    figures of :func:`~fcnn_cli.results.sidebyside.figures`: of a run's ``split``
    (``metrics[split]``; ``seconds``: the network's fit time), or of an evaluation (``split``
    None: ``metrics`` is the network's report). None without baselines."""
    from fcnn_cli.results.sidebyside import figures

    baselines = metrics.get("baselines") or {}
    if not baselines:
        return None
    network = metrics if split is None else metrics[split]
    reports = [network] + [b if split is None else b.get(split, {}) for b in baselines.values()]
    where = f" ({split} split)" if split else ""
    table = RichTable(title=_title(f"The network beside its baselines{where}"),
                      title_justify="left")
    table.add_column("figure")
    for name in ["network", *baselines]:
        table.add_column(Text(name), justify="right")
    for figure in figures(reports):
        table.add_row(Text(figure.label), *(_compared(figure.key, value, error)
                                            for value, error in zip(figure.values,
                                                                    figure.errors)))
    if split is not None:
        fits = [seconds] + [b.get("seconds") for b in baselines.values()]
        table.add_row("fit (s)", *("–" if s is None else f"{s:.3g}" for s in fits))
    return table


def _compared(key, value, error):
    """A model's number in the side-by-side table: "–" where its report has none."""
    if value is None:
        return "–"
    if error is not None:
        return _pm(value, error)
    if key == "predict_seconds":  # as the fit's seconds below it
        return f"{value:.3g}"
    return score(value) if key == "roc_auc" else _fmt(value)
