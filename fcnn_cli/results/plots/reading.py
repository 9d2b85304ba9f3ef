"""What the plots read from a run directory — config.json, history.csv, diagnostics.csv, the
sample of predictions and metrics.json's significance scan — each checked: the run wrote them,
but they are files that may have been edited or damaged since. A damaged one is one line naming
it; a damaged scan, which only its own plot needs, a ValueError that leaves that plot out."""

import csv
import io
import json
import os

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.core.fileio import check_regular, read_regular

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "lr")
DIAGNOSTICS_COLUMNS = ("epoch", "layer", "grad_norm", "act_mean", "act_var")
# The most rows of history.csv drawn: one an epoch, of a run of at most its config.json's
# epochs, and never more than this (a file within MAX_TEXT_BYTES could hold millions, each
# taking hundreds of bytes once read).
MAX_HISTORY_ROWS = 1_000_000


def read_json(path):
    """A JSON object (config.json); {} where there is none, or it is no object."""
    from fcnn_cli.results.runs import MAX_TEXT_BYTES

    if not os.path.exists(path):
        return {}
    try:
        value = json.loads(read_regular(path, MAX_TEXT_BYTES))
        return value if isinstance(value, dict) else {}
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply
        return {}


def read_csv(path, needed, most=None):
    """A CSV of numbers (history.csv, diagnostics.csv) as dicts; [] when there is none. The
    columns ``needed`` must hold a number in every row (``layer`` may be a name); more than
    ``most`` rows are refused before they are all read."""
    from fcnn_cli.results.runs import MAX_TEXT_BYTES

    if not os.path.exists(path):
        return []
    rows = []
    try:
        text = read_regular(path, MAX_TEXT_BYTES).decode("utf-8")
        for row in csv.DictReader(io.StringIO(text, newline="")):
            if len(rows) == most:
                raise FcnnError(f"{path}: malformed: more than {most:,} rows")
            rows.append({k: _number(v) for k, v in row.items()
                         if k is not None and v not in ("", None)})
    except (csv.Error, UnicodeDecodeError) as e:
        raise FcnnError(f"{path}: cannot read: {e}") from None
    for i, row in enumerate(rows, start=2):
        for column in needed:
            if column not in row:
                raise FcnnError(f"{path}: malformed: line {i} has no {column!r}")
            if column != "layer" and not isinstance(row[column], (int, float)):
                raise FcnnError(f"{path}: malformed: line {i}: {column} is "
                                f"{str(row[column])[:40]!r}, not a number")
    return rows


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def history_rows(config):
    """The most rows of a run's history.csv: its epochs (from its config.json where that
    holds a whole number), at most MAX_HISTORY_ROWS."""
    train = config.get("train")
    epochs = train.get("epochs") if isinstance(train, dict) else None
    return min(epochs, MAX_HISTORY_ROWS) if type(epochs) is int and epochs >= 0 \
        else MAX_HISTORY_ROWS


def read_sample(path):
    """The sample of predictions, checked; None where the run kept none. One whose footer
    declares more rows than a run keeps (``evaluation.PLOT_ROWS``) is refused before they are
    read: a small file of compressed rows could stand for billions."""
    from fcnn_cli.results import evaluation
    from fcnn_cli.results.runs import MAX_SAMPLE_BYTES
    from fcnn_cli.data.tables import parquet_rows, read_table

    if not os.path.exists(path):
        return None
    check_regular(path, MAX_SAMPLE_BYTES)
    rows = parquet_rows(path)
    if rows > evaluation.PLOT_ROWS:
        raise FcnnError(f"{path}: malformed sample of predictions: it declares {rows:,} rows, "
                        f"more than the {evaluation.PLOT_ROWS:,} a run keeps")
    table = read_table(path)
    check_sample(table, path)
    return table


def check_sample(table, path):
    """Check, once, what the plots take from a sample file's metadata: the run wrote it, but
    it is a file that may have been edited or damaged since."""
    from fcnn_cli.data.columns import is_numeric

    meta, frame = table.extra, table.frame

    def malformed(why):
        raise FcnnError(f"{path}: malformed sample of predictions: {why}")

    if not table.targets:
        malformed("it names no label among its columns")
    missing = [f"{t}_pred" for t in table.targets if f"{t}_pred" not in frame.columns]
    if missing:
        malformed(f"no column {missing[0]!r}")
    weight = meta.get("weight")
    if weight is not None and not (isinstance(weight, str) and weight in frame.columns
                                   and is_numeric(frame[weight])):
        malformed(f"weight {str(weight)[:80]!r} names no numeric column of it")
    if "classes" in meta:
        _check_classes(meta["classes"], table, malformed)
        _check_merit(meta, malformed)
        return
    for name in table.targets + [f"{t}_pred" for t in table.targets]:
        if not is_numeric(frame[name]):
            malformed(f"column {name!r} is not numeric, and no classes are named")
    point = meta.get("position")
    if point is not None and not (isinstance(point, list) and 2 <= len(point) <= 3 and
                                  len(set(map(str, point))) == len(point) and
                                  all(isinstance(c, str) and c in table.targets for c in point)):
        malformed(f"position {str(point)[:80]} is not 2 or 3 of its labels")


def _check_classes(classes, table, malformed):
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)
            and len(set(classes)) == len(classes)):
        malformed(f"classes {str(classes)[:80]} is not a list of distinct names")
    if len(table.targets) != 1:
        malformed("classes are named for more than one label")
    target = table.targets[0]
    known = set(classes)
    for column in (target, f"{target}_pred"):
        values = table.frame[column].astype(str)
        stray = values[~values.isin(known)]
        if len(stray):
            malformed(f"column {column!r} holds {stray.iloc[0][:40]!r}, none of its classes")


def _check_merit(meta, malformed):
    """What the ROC and rejection curves take: the signal class, its working point's cut and
    the names of the baselines whose probabilities are columns too."""
    signal, point, names = meta.get("signal"), meta.get("working_point"), meta.get("baselines")
    if signal is not None and signal not in meta["classes"]:
        malformed(f"signal {str(signal)[:40]!r} is none of its classes")
    cut = point.get("cut") if isinstance(point, dict) else None
    if point is not None and not (isinstance(cut, (int, float)) and not isinstance(cut, bool)
                                  and cut == cut):
        malformed(f"working point {str(point)[:80]} has no number for its cut")
    if names is not None and not (isinstance(names, list) and
                                  all(isinstance(n, str) and n for n in names)):
        malformed(f"baselines {str(names)[:80]} is not a list of names")


SCAN_KEYS = ("cut", "signal", "background", "s_over_sqrt_b", "z_asimov")


def significance_of(metrics):
    """(split, signal class, significance) of a run's metrics.json (``metrics``): the test
    split's figures of merit, else the validation split's; None where neither has a
    significance scan. Its shape is checked, the file may have been edited: a damaged one
    raises ValueError, which says what is wrong."""
    for split in ("test", "val"):
        report = metrics.get(split)
        merit = report.get("merit") if isinstance(report, dict) else None
        if isinstance(merit, dict) and "significance" in merit:
            _check_significance(merit, f"{split} significance")
            return split, merit["signal_class"], merit["significance"]
    return None


def _check_significance(merit, what):
    """A report's ``merit`` whose ``significance`` the plot can draw, else ValueError naming
    ``what`` (the split's significance)."""
    scan = (merit.get("significance") or {}).get("scan") if isinstance(
        merit.get("significance"), dict) else None
    if not isinstance(merit.get("signal_class"), str):
        raise ValueError(f"{what}: no signal class")
    if not (isinstance(scan, dict) and all(_numbers(scan.get(k)) for k in SCAN_KEYS)
            and len({len(scan[k]) for k in SCAN_KEYS}) == 1):
        raise ValueError(f"{what}: its scan is not lists of numbers of one length "
                         f"({', '.join(SCAN_KEYS)})")
    best = merit["significance"].get("best")
    if not (isinstance(best, dict) and all(
            best.get(k) is None or (isinstance(best[k], dict) and
                                    all(_numbers([best[k].get(f)]) for f in SCAN_KEYS))
            for k in ("s_over_sqrt_b", "z_asimov"))):
        raise ValueError(f"{what}: its best cuts are not numbers")


def _numbers(values):
    return isinstance(values, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
