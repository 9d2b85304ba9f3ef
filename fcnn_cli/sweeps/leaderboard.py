"""A sweep's leaderboard: the combinations that a sweep directory holds, ranked by the
headline metric on validation, failed ones last; written as ``leaderboard.csv``,
``leaderboard.json`` and ``leaderboard.png``, and printed as a table.

The leaderboard is rebuilt from the ``seeds.json`` and ``failed.json`` files the sweep
directory holds, so that shards writing into one directory each see what all have finished.
"""

import dataclasses
import json
import logging
import math
from pathlib import Path

from fcnn_cli.core.errors import FcnnError, Message, printable
from fcnn_cli.sweeps.grid import ALL_FIELDS, NOT_DEFINING, said, short
from fcnn_cli.sweeps.plan import FAILED
from fcnn_cli.sweeps.records import (FAILED_FILE, LEADERBOARD_FILES, RESULT_FILE, NotAResult,
                                     read_failure, read_result)

log = logging.getLogger(__name__)

HIGHER_IS_BETTER = ("accuracy",)


def leaderboard(directory):
    """One row per finished combination in ``directory``: its options, the headline metric of
    each split as mean and standard deviation over its seeds, its time and run directory;
    best first by the validation headline; then one per failed combination, with its error.
    Beside a combination's values, a row holds the options (fixed or default, and data) that
    differ between the rows: a directory may hold sweeps run with other fixed options."""
    directory = Path(directory)
    found = []
    for path in sorted(directory.glob(f"*/{RESULT_FILE}")):
        try:
            found.append(read_result(path)[::-1])
        except NotAResult as e:
            log.warning("%s: skipped, not a sweep's result: %s", path, e)
    found.sort(key=lambda pair: _rank(pair[0]))
    for path in sorted(directory.glob(f"*/{FAILED_FILE}")):
        if not (path.parent / RESULT_FILE).exists():
            try:
                found.append(_failed_row(path))
            except NotAResult as e:
                log.warning("%s: skipped, not a sweep's failure: %s", path, e)
    return _told_apart(found)


def _rank(row):
    """Best first by the validation mean of the ranked metric; what has none goes last."""
    value = row.get(f"val_{row.get('metric')}_mean")
    if value is None or not math.isfinite(value):
        return math.inf
    return -value if row["metric"] in HIGHER_IS_BETTER else value


def _failed_row(path):
    saved = read_failure(path)
    return {"run": str(path.parent), **saved["combination"], "seeds": len(saved["seeds"]),
            "mode": FAILED, "seconds": saved["seconds"],
            "error": Message(saved["error"], saved.get("error_options", ()))}, saved


def _told_apart(found):
    """The rows of ``found`` (row, its saved file), each with the options in which the rows
    differ beside its combination's values; NOT_DEFINING do not count."""
    described = [{**saved["data"], **saved["options"]} for _, saved in found]
    names = dict.fromkeys(k for options in described for k in options
                          if k not in NOT_DEFINING)
    differ = [name for name in names
              if len({said(options.get(name, _default(name))) for options in described}) > 1]
    return [{"run": row["run"], **saved["combination"],
             **{k: options.get(k, _default(k)) for k in differ}, **row}
            for (row, saved), options in zip(found, described)]


def _default(name):
    """An option's value where a sweep's file does not give it: its default."""
    field = ALL_FIELDS.get(name)
    return None if field is None or field.default is dataclasses.MISSING else field.default


def option_columns(rows, grid_keys):
    """The option columns of a leaderboard: ``grid_keys``, then the other options its rows
    hold (other grids' keys, options that differ between rows)."""
    return list(dict.fromkeys([*grid_keys, *(k for row in rows for k in row
                                             if k in ALL_FIELDS)]))


def write_leaderboard(rows, directory, plot=False):
    """``leaderboard.csv`` and ``leaderboard.json`` in ``directory``, each written atomically;
    with ``plot`` also ``leaderboard.png`` (a failure to draw it is only a warning)."""
    import csv
    import io

    from fcnn_cli.core.fileio import write_text

    as_json, as_csv, as_png = (Path(directory) / name for name in LEADERBOARD_FILES)
    write_text(as_json, json.dumps(rows, indent=2, default=str) + "\n")
    names = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, names, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: short(v) if isinstance(v, list) else v for k, v in row.items()}
                     for row in rows)
    write_text(as_csv, text.getvalue())
    if plot:
        from fcnn_cli.results.plots.leaderboard import leaderboard_plot

        try:
            leaderboard_plot(rows, as_png)
        except FcnnError as e:
            log.warning("the leaderboard is written, but not its figure: %s", e)


def leaderboard_table(rows, grid_keys, say=str):
    """A sweep's leaderboard (:func:`leaderboard`), best first; failed combinations last,
    their errors under the table (a column would be too narrow to read), each as ``say``
    words it (a Message, which names its options)."""
    from rich.table import Table as RichTable
    from rich.text import Text

    from fcnn_cli.results.report import _title

    metric = next((row["metric"] for row in rows if "metric" in row), "metric")
    failed = [(rank, row) for rank, row in enumerate(rows, 1) if "error" in row]
    errors = Text("\n".join(f"#{rank} ({_run_id(row['run'])}) failed: "
                            f"{printable(say(row['error']))}" for rank, row in failed))
    table = RichTable(title=_title(f"Leaderboard ({len(rows)} combinations"
                                   + (f", {len(failed)} failed" if failed else "")
                                   + f"; {printable(metric)}, mean ± std over seeds)"),
                      title_justify="left", caption=errors if failed else None,
                      caption_justify="left")
    for name in ["#", *grid_keys, "seeds", "val", "test", "seconds", "run"]:
        table.add_column(name, justify="left" if name in ("run", *grid_keys) else "right",
                         no_wrap=name in ("val", "test", "seconds", "run"),
                         min_width=len(name))
    for rank, row in enumerate(rows, 1):
        values = (row.get(k) for k in grid_keys)
        table.add_row(str(rank), *(Text("–" if v is None else printable(short(v)))
                                   for v in values),
                      str(row["seeds"]), _spread(row, "val"), _spread(row, "test"),
                      f"{row['seconds']:.1f}", Text(_run_id(row["run"])))
    return table


def _run_id(run):
    """The hash that ends a sweep's run directory name: the options are in the other
    columns, and ``ls SWEEP_DIR/*-<hash>`` finds it."""
    return printable(Path(run).name.rsplit("-", 1)[-1])


def _spread(row, split):
    from fcnn_cli.results.report import _fmt

    name = f"{split}_{row.get('metric')}"
    if "error" in row:
        return "failed"
    if f"{name}_mean" not in row:
        return "–"
    return f"{_fmt(row[f'{name}_mean'])} ± {_fmt(row[f'{name}_std'])}"
