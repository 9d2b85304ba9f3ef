"""A run as one self-contained HTML page (``fcnn report``): its configuration, data sizes,
metrics and plots, the images embedded as data URIs. No scripts and nothing fetched from
elsewhere, so the file opens in any browser, offline, and can be mailed as it is.

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

from fcnn_cli.errors import FcnnError, printable_all, size_text
from fcnn_cli.fileio import read_regular

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_BYTES = 16 * 2**20  # a plot fcnn draws is a few hundred kB

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; text-align: left; } td.n { text-align: right; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
"""


def run_page(run_dir):
    """The HTML text of the page for ``run_dir``. Its plots are those in ``plots/``; where
    there are none they are drawn for the page alone, and the run is left as it was."""
    from fcnn_cli import runs

    run_dir = Path(run_dir)
    parts = (_shown(run_dir / "config.json", _config_parts)
             + _shown(run_dir / "metrics.json", _metrics_parts))
    plots = sorted((run_dir / runs.PLOTS_DIR).glob("*.png"))
    if plots:
        images = [(p.stem, data) for p in plots if (data := png_bytes(p)) is not None]
    else:
        from fcnn_cli.plots import plot_run

        with tempfile.TemporaryDirectory(prefix="fcnn-report-") as scratch:
            images = [(p.stem, p.read_bytes()) for p in sorted(plot_run(run_dir, scratch))]
    return _document(run_dir.name, parts, images)


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
    return _document(name, _config_parts(config) + _metrics_parts(metrics), images)


def _config_parts(config):
    return _configuration(config) + _sizes(config.get("sizes") or {})


def _metrics_parts(metrics):
    return [part for split, report in metrics.items() for part in _metrics(split, report)]


def _document(name, sections, images):
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<title>fcnn run {escape(name)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
             f"<h1>fcnn run {escape(name)}</h1>"]
    parts += sections
    if images:
        parts.append("<h2>Plots</h2>")
    for stem, data in images:
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        parts.append(f'<figure><img src="{uri}" alt="{escape(stem)}">'
                     f"<figcaption>{escape(stem.replace('_', ' '))}</figcaption></figure>")
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)


def _json(path):
    from fcnn_cli.runs import MAX_TEXT_BYTES

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


def _cell(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return f"<td>{escape(str(value))}</td>"
    if isinstance(value, (int, float)):
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        return f'<td class="n" data-value="{value!r}">{escape(shown)}</td>'
    return f"<td>{escape(json.dumps(value))}</td>"


def _table(header, rows, cls=""):
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>\n" for row in rows)
    return f'<table class="{escape(cls)}">\n<tr>{head}</tr>\n{body}</table>'


def _configuration(config):
    net, train = config.get("net") or {}, config.get("train") or {}
    features = config.get("features") or []
    rows = [("data", config.get("data")), ("validation data", config.get("val_data")),
            ("test data", config.get("test_data")),
            ("labels", ", ".join(config.get("targets") or [])),
            ("features", f"{len(features)}: " + ", ".join(features[:20])
             + (" …" if len(features) > 20 else "")),
            ("best epoch", config.get("best_epoch")), ("stopped", config.get("stopped"))]
    rows += [(f"net {k}", v) for k, v in net.items()]
    rows += [(f"train {k}", v) for k, v in train.items()]
    rows += [(f"version of {k}", v) for k, v in (config.get("versions") or {}).items()]
    return ["<h2>Configuration</h2>", _table(("option", "value"), rows, "config")]


def _sizes(sizes):
    return ["<h2>Data</h2>", _table(("split", "rows"), list(sizes.items()), "sizes")]


def _metrics(split, report):
    out = [f"<h2>Metrics: {escape(split)} ({escape(str(report.get('rows', 0)))} rows)</h2>"]
    if report.get("task") == "classification":
        out.append(_table(("accuracy", "cross_entropy", "roc_auc"),
                          [[report.get(k) for k in ("accuracy", "cross_entropy", "roc_auc")]],
                          f"metrics {split}"))
        per_class = report.get("per_class") or {}
        out.append(_table(("class", "precision", "recall", "f1", "support"),
                          [[c] + [m[k] for k in ("precision", "recall", "f1", "support")]
                           for c, m in per_class.items()], f"per-class {split}"))
        if "reliability" in report:
            out.append(_table(("ece", "mean_entropy"),
                              [[report.get("ece"), report.get("mean_entropy")]],
                              f"calibration {split}"))
            keys = ("low", "high", "rows", "confidence", "accuracy")
            out.append(_table(keys, [[b.get(k) for k in keys] for b in report["reliability"]],
                              f"reliability {split}"))
        return out
    keys = ("mse", "rmse", "mae", "r2")
    rows = [[name, m.get("unit", "")] + [m[k] for k in keys]
            for name, m in (report.get("targets") or {}).items()]
    rows.append(["overall", ""] + [report["overall"][k] for k in keys])
    out.append(_table(("target", "unit") + keys, rows, f"metrics {split}"))
    if "distance" in report:
        d = report["distance"]
        keys = ("mean", "median", "p68", "p95", "max")
        out.append(f"<p>Distance between true and predicted ({escape(', '.join(d['of']))})"
                   f"{' in ' + escape(d['unit']) if d.get('unit') else ''}:</p>")
        out.append(_table(keys, [[d[k] for k in keys]], f"distance {split}"))
    if "uncertainty" in report:
        u = report["uncertainty"]
        keys = ("nll", "crps", "coverage_1sigma", "coverage_2sigma")
        out.append("<p>Predicted uncertainties (ideal coverage: 68.3 % and 95.4 %):</p>")
        out.append(_table(keys, [[u.get(k) for k in keys]], f"uncertainty {split}"))
        out.append(_table(("central interval", "share of labels within"),
                          [[c.get("level"), c.get("observed")] for c in u.get("calibration", [])],
                          f"calibration {split}"))
    return out
