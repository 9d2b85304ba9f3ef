"""A run as one self-contained HTML page (``fcnn report``): its headline metrics and learning
curves, each split's metrics, the other plots with titles and captions, the data sizes and the
configuration, the images embedded as data URIs. No scripts and nothing fetched from
elsewhere, so the file opens in any browser, offline, and can be mailed as it is; it fits a
phone's screen as well as a desktop's.

Every number shown carries its exact value in a ``data-value`` attribute, so that a reader (or
a test) can take the page's numbers back without parsing their rounded text.
"""

import base64
import json
import logging
import os
import stat
import tempfile
from html import escape
from pathlib import Path

from fcnn_cli.core.errors import FcnnError, printable_all, size_text
from fcnn_cli.core.fileio import read_regular
from fcnn_cli.results.htmlparts import SPLITS, cell, table

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_BYTES = 16 * 2**20  # a plot fcnn draws is a few hundred kB

# Narrow screens: a long name (a path) wraps anywhere, a row's name and numbers never; a table
# still wider than the screen scrolls in its own box; the page itself never scrolls sideways.
STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; padding: 0 1em; max-width: 72em;
       color: #222; overflow-wrap: break-word; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
h3 { font-size: 1.1em; margin: 0 0 0.4em; }
div.table { overflow-x: auto; margin: 0.6em 0 1.2em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; text-align: left; }
td { overflow-wrap: anywhere; } td:first-child, td.n { white-space: nowrap; }
td.n { text-align: right; }
figure { margin: 1.2em 0 2em; } img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; max-width: 60em; }
@media (max-width: 40em) { body { font-size: 14px; padding: 0 0.5em; }
  th, td { padding: 0.2em 0.3em; } }
"""


def run_page(run_dir):
    """The HTML text of the page for ``run_dir``. Its plots are those in ``plots/``; where
    there are none they are drawn for the page alone, and the run is left as it was."""
    from fcnn_cli.results import runs

    run_dir = Path(run_dir)
    config = _shown(run_dir / "config.json", _config_parts)
    metrics = _shown(run_dir / "metrics.json", _metrics_parts)
    plots = sorted((run_dir / runs.PLOTS_DIR).glob("*.png"))
    if plots:
        images = [(p.stem, data) for p in plots if (data := png_bytes(p)) is not None]
    else:
        from fcnn_cli.results.plots import plot_run

        with tempfile.TemporaryDirectory(prefix="fcnn-report-") as scratch:
            images = [(p.stem, p.read_bytes()) for p in sorted(plot_run(run_dir, scratch))]
    return _document(run_dir.name, metrics, images, config)


def _shown(path, parts):
    """The page's parts that show the JSON file ``path``; a file edited or damaged into
    another shape is one line that names it. Control characters in its text are shown
    escaped: the page may well be printed on a terminal (-o -)."""
    value = printable_all(_json(path))
    try:
        return parts(value)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise FcnnError(f"{path}: malformed: {type(e).__name__} {str(e)[:80]}") from None


def png_bytes(path):
    """The bytes of the PNG image ``path``, or None (with a warning) where it is no regular
    file (a link, a FIFO, a directory), no PNG, or larger than MAX_IMAGE_BYTES: what lies in a
    run's plots/ is put into a page that may be mailed, so it is read with care."""
    try:
        # O_NOFOLLOW: a link is refused, not followed; O_NONBLOCK: a FIFO does not hang.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
                     | os.O_CLOEXEC)
    except OSError as e:
        why = "a symbolic link" if os.path.islink(path) else e.strerror
        log.warning("%s left out of the page: %s", path, why)
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            why = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        elif info.st_size > MAX_IMAGE_BYTES:
            why = f"{size_text(info.st_size)}, more than a plot's {size_text(MAX_IMAGE_BYTES)}"
        else:
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read(MAX_IMAGE_BYTES + 1)
            if data.startswith(PNG_SIGNATURE) and len(data) <= MAX_IMAGE_BYTES:
                return data
            why = "not a PNG image"
    except OSError as e:
        why = e.strerror
    finally:
        os.close(fd)
    log.warning("%s left out of the page: %s", path, why)
    return None


def page(name, config, metrics, images):
    """The page from its parts: ``images`` is a list of (name, PNG bytes)."""
    return _document(name, _metrics_parts(metrics), images, _config_parts(config))


def _config_parts(config):
    return _sizes(config.get("sizes") or {}) + _configuration(config)


def _metrics_parts(metrics):
    """The headline table of every split, each split's full metrics (the network beside its
    baselines where the run fitted any), and the overtraining check's section."""
    splits = {k: v for k, v in metrics.items() if k not in NOT_SPLITS}
    return (_headlines(splits),
            [part for split, report in splits.items() for part in _metrics(split, report)]
            + _baselines(splits, metrics.get("baselines")),
            _overtraining(metrics.get("overtraining")))


def _baselines(splits, fitted):
    """The network beside each baseline (``fitted``: metrics.json's ``baselines``, {name:
    {"seconds": s, split: report}}), a row a figure of each split that both have."""
    from fcnn_cli.results.sidebyside import figures

    if not fitted:
        return []
    names = list(fitted)
    head = "".join(f"<th>{escape(h)}</th>" for h in ["split", "figure", "network", *names])
    body = []
    for split, report in splits.items():
        theirs = [fitted[n].get(split) or {} for n in names]
        if not any(theirs):
            continue
        for figure in figures([report, *theirs]):
            body.append(f"<tr><td>{escape(SPLITS.get(split, split))}</td>"
                        f"<td>{escape(figure.label)}</td>"
                        + "".join(cell(v, figure.key, e)
                                  for v, e in zip(figure.values, figure.errors)) + "</tr>\n")
    seconds = [fitted[n].get("seconds") for n in names]
    body.append("<tr><td></td><td>fit (seconds)</td>" + cell(None)
                + "".join(cell(s) for s in seconds) + "</tr>\n")
    return ["<h2>The network beside its baselines</h2>",
            f'<div class="table"><table class="baselines">\n<tr>{head}</tr>\n'
            + "".join(body) + "</table></div>"]


# The keys of metrics.json that are not a split's report.
NOT_SPLITS = ("baselines", "overtraining")


def _overtraining(check):
    """The check's warning (or that there is none) and its p-values, a class or label a row;
    the plot follows them (:func:`_document`)."""
    if not check:
        return []
    groups = check["groups"]
    kind = "class" if "classes_left_out" in check else "label"
    train, held = check.get("splits") or ("train", "held-out")
    said = check.get("warning") or (
        f"No {kind} differs between the {train} and {held} rows (every KS p ≥ "
        f"{check['alarm_p_value']:g}).")
    rows = [[name, *g["rows"], g["statistic"], g["p_value"], name in check["overtrained"]]
            for name, g in groups.items()]
    return [f"<p>{escape(said)} Test: {escape(check['test'])}.</p>",
            table((kind, f"{train} rows", f"{held} rows", "KS D", "p-value", "overtrained"),
                   rows, "overtraining")]


def _document(name, metrics, images, config):
    """What a reader looks for first comes first: the headline metrics and the learning
    curves; then each split's metrics and the other plots; the configuration last."""
    headlines, details, checked = metrics
    curves = [image for image in images if image[0] == CURVES]
    checks = [image for image in images if image[0] == OVERTRAINING]
    others = sorted((image for image in images if image[0] not in (CURVES, OVERTRAINING)),
                    key=_plot_order)
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
             f"<title>fcnn run {escape(name)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
             f"<h1>fcnn run {escape(name)}</h1>"]
    parts += headlines + _figures(curves) + details
    parts += ["<h2>Overtraining check</h2>"] + checked + _figures(checks, level="h3") \
        if checked or checks else []
    parts += _figures(others, "Plots", "Drawn from the held-out rows (the test split, else the "
                      "validation split; at most 100 000 of them).")
    parts += config
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)


CURVES = "learning_curves"
OVERTRAINING = "overtraining"
# Each plot's title and what it shows, by the start of its file name, in the order shown.
PLOTS = {
    CURVES: ("Learning curves", "Training and validation loss per epoch (log scale), the "
             "validation headline metric and the learning rate; the kept epoch is marked."),
    "regression": ("Predicted against true: {}", "Each held-out row's prediction against its "
                   "true value, with the identity line, and the histogram of the residuals "
                   "with their bias, resolution (σ), median and half the 16–84 % width."),
    "position_map": ("True and predicted positions", "Arrows from true to predicted position "
                     "(magnified by the factor the title gives where the errors are small), "
                     "and the stations the data file records."),
    "distance_map": ("Mean distance over the region", "The mean distance between true and "
                     "predicted position in 2-D bins of the true position: where the network "
                     "is poor."),
    "nearer": ("Where the network or {} is nearer", "In 2-D bins of the true position, "
               "the baseline's mean distance minus the network's: blue where the network is "
               "nearer, red where the baseline is."),
    "distance_cdf": ("Distribution of the distance", "The share of rows within each distance "
                     "of their true position, with the 50, 68 and 95 % points."),
    "confusion": ("Confusion matrix", "Rows: the true class; columns: the predicted one; as "
                  "counts and normalised by true class."),
    "roc": ("ROC curves", "True against false positive rate as the decision threshold moves "
            "(each class against the rest where there are more than two); each baseline's "
            "dashed beside the network's."),
    "rejection": ("Background rejection against signal efficiency", "1/ε_B (log scale) "
                  "against ε_S as the cut on p(signal) moves, weighted where the rows have "
                  "weights, for the network and each baseline; the working point marked."),
    "reliability": ("Reliability diagram", "Accuracy against confidence (the probability of "
                    "the class decided on), with the rows in each bin; a calibrated network "
                    "lies on the diagonal."),
    "significance": ("Significance scan", "S/√B and the Asimov significance Z_A against the "
                     "cut on p(signal) for weights that are expected yields, their best cuts "
                     "marked; below, the expected signal S and background B that pass."),
    OVERTRAINING: ("Training against held-out outputs", "For each class, the distribution "
                   "of the probability of the row's true class (two classes: of the second "
                   "class), or for each label the residual: the held-out rows filled, the "
                   "training rows as points with their errors, both as densities; the legend "
                   "gives the Kolmogorov–Smirnov p-value."),
    "correlations": ("Correlations of the inputs", "The Pearson correlation of each pair of "
                     "features on (a sample of at most 100 000 of) the training rows, a matrix "
                     "for each class."),
    "diagnostics": ("Gradients and activations by layer", "Each layer's weight-gradient norm "
                    "per epoch (log scale), and the activations' mean and variance at the first "
                    "and the last epoch."),
}


def _plot_kind(stem):
    """The key of PLOTS a plot's file name starts with (regression_<label>), or None."""
    return next((key for key in PLOTS if stem == key or stem.startswith(key + "_")), None)


def _plot_order(image):
    kind = _plot_kind(image[0])
    return (list(PLOTS).index(kind) if kind else len(PLOTS), image[0])


def _figures(images, heading=None, note="", level=None):
    """A section of plots under ``heading``; without one each plot's title heads a section
    (``level``: the title's heading otherwise)."""
    if not images:
        return []
    parts = [f"<h2>{escape(heading)}</h2>"] if heading else []
    parts += [f"<p>{escape(note)}</p>"] if note else []
    level = level or ("h3" if heading else "h2")
    for stem, data in images:
        kind = _plot_kind(stem)
        title, caption = PLOTS.get(kind, (stem.replace("_", " ").capitalize(), ""))
        title = title.format(stem[len(kind) + 1:]) if kind else title
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        parts.append(f"<figure><{level}>{escape(title)}</{level}>\n"
                     f'<img src="{uri}" alt="{escape(title)}">\n'
                     f"<figcaption>{escape(caption)} ({escape(stem)}.png)</figcaption></figure>")
    return parts


def _json(path):
    from fcnn_cli.results.runs import MAX_TEXT_BYTES

    if not os.path.exists(path):
        raise FcnnError(f"{path.parent}: not a complete run directory (no {path.name})")
    try:
        value = json.loads(read_regular(path, MAX_TEXT_BYTES))
    except ValueError as e:  # UnicodeDecodeError too
        raise FcnnError(f"{path}: not readable JSON: {e}") from None
    except RecursionError:
        raise FcnnError(f"{path}: not readable JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise FcnnError(f"{path}: holds no JSON object")
    return value


def _headlines(metrics):
    """One row per split of the numbers a run is judged by."""
    if not metrics:
        return []
    first = next(iter(metrics.values()))
    if first.get("task") == "classification":
        keys = ("accuracy", "cross_entropy", "roc_auc")
        rows = [[report.get(k) for k in keys] for report in metrics.values()]
    else:
        keys = ("rmse", "mae", "r2") + (("distance",) if "distance" in first else ())
        rows = [[report["overall"][k] for k in keys[:3]]
                + ([report["distance"]["mean"]] if "distance" in first else [])
                for report in metrics.values()]
    rows = [[SPLITS.get(split, split), report.get("rows")] + row
            for (split, report), row in zip(metrics.items(), rows)]
    unit = (first.get("distance") or {}).get("unit")
    names = {"distance": f"mean distance ({unit})"} if unit else {}
    return ["<h2>Headline metrics</h2>",
            table(("split", "rows") + keys, rows, "headlines", names)]


def _configuration(config):
    from fcnn_cli.results.report import recipe_rows

    net, train = config.get("net") or {}, config.get("train") or {}
    features = config.get("features") or []
    rows = [("data", config.get("data")), ("validation data", config.get("val_data")),
            ("test data", config.get("test_data")),
            ("labels", ", ".join(config.get("targets") or [])),
            ("features", f"{len(features)}: " + ", ".join(features[:20])
             + (" …" if len(features) > 20 else "")),
            ("best epoch", config.get("best_epoch")), ("stopped", config.get("stopped")),
            ("device", config.get("device"))]
    rows += recipe_rows(config.get("recipe"))
    rows += [(NET_LABELS.get(k, _flag(k)), v) for k, v in net.items()]
    rows += [(_flag(k), v) for k, v in train.items()]
    rows += [(f"{k} version", v) for k, v in (config.get("versions") or {}).items()]
    return ["<h2>Configuration</h2>", table(("option", "value"), rows, "config")]


# The network's sizes that the data make, not options.
NET_LABELS = {"n_in": "inputs", "n_out": "outputs",
              "levels": "embedded levels (input, rows, width)"}


def _flag(key):
    """An option of config.json as fcnn train takes it."""
    return "--" + str(key).replace("_", "-")


def _sizes(sizes):
    rows = [(SPLITS.get(split, split), rows) for split, rows in sizes.items()]
    return ["<h2>Data</h2>", table(("split", "rows"), rows, "sizes")]


def _metrics(split, report):
    called = SPLITS.get(split, split)
    out = [f"<h2>Metrics: {escape(called)} ({escape(str(report.get('rows', 0)))} rows)</h2>"]
    if report.get("task") == "classification":
        keys = ("accuracy", "cross_entropy", "roc_auc")
        out.append(table(keys, [[report.get(k) for k in keys]], f"metrics {split}"))
        per_class = report.get("per_class") or {}
        keys = ("class", "precision", "recall", "f1", "support")
        out.append(table(keys, [[c] + [m[k] for k in keys[1:]] for c, m in per_class.items()],
                          f"per-class {split}"))
        if "reliability" in report:
            keys = ("ece", "mean_entropy")
            out.append(table(keys, [[report.get(k) for k in keys]], f"calibration {split}"))
            keys = ("low", "high", "rows", "confidence", "accuracy")
            out.append(table(keys, [[b.get(k) for k in keys] for b in report["reliability"]],
                              f"reliability {split}"))
        if "merit" in report:
            from fcnn_cli.results.merit_page import merit

            out += merit(split, report["merit"])
        return out
    keys = ("mse", "rmse", "mae", "r2")
    rows = [[name, m.get("unit", "")] + [m[k] for k in keys]
            for name, m in (report.get("targets") or {}).items()]
    rows.append(["overall", ""] + [report["overall"][k] for k in keys])
    out.append(table(("label", "unit") + keys, rows, f"metrics {split}"))
    if "distance" in report:
        d = report["distance"]
        keys = ("mean", "median", "p68", "p95", "max")
        out.append(f"<p>Distance between true and predicted ({escape(', '.join(d['of']))})"
                   f"{' in ' + escape(d['unit']) if d.get('unit') else ''}:</p>")
        out.append(table(keys, [[d[k] for k in keys]], f"distance {split}"))
    if "uncertainty" in report:
        u = report["uncertainty"]
        keys = ("nll", "crps", "coverage_1sigma", "coverage_2sigma")
        out.append(f"<p>Predicted uncertainties of the {escape(called)} rows (ideal: 68.3 % "
                   "within ±1σ, 95.4 % within ±2σ):</p>")
        out.append(table(keys, [[u.get(k) for k in keys]], f"uncertainty {split}"))
        keys = ("level", "observed")
        out.append(table(keys, [[c.get(k) for k in keys] for c in u.get("calibration", [])],
                          f"calibration {split}"))
    return out
