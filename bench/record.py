"""A dated record of each benchmark run: bench/results/<bench>-<date>.json.

The tables in docs/ quote one run of each benchmark; the records keep every run, so that a
re-run is compared with the earlier ones from their files, not retold in prose. A second run of
the same benchmark on one day gets <bench>-<date>-2.json, and so on: a record is never replaced.
bench/results/README.md describes the fields.
"""

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def table(title, columns, rows):
    """One printed table of a run: ``rows`` are dicts keyed by ``columns``, or sequences in
    their order. Numbers are best given unrounded, as measured."""
    return {"title": title, "columns": list(columns),
            "rows": [dict(row) if isinstance(row, dict) else dict(zip(columns, row, strict=True))
                     for row in rows]}


def printed(rich_table):
    """A rich Table as it is printed (its cells' text, units and all): for the scripts that
    format each figure as they add it."""
    columns = [str(column.header) for column in rich_table.columns]
    cells = [[str(cell) for cell in column.cells] for column in rich_table.columns]
    return table(rich_table.title, columns, zip(*cells, strict=True))  # columns of equal length


def write(bench, tables, note=None, directory=RESULTS):
    """Write the ``tables`` (from ``table``) of this run of ``bench`` as its dated record, and
    return the record's path."""
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    record = {"bench": bench, "date": today, "command": " ".join(sys.argv), **_machine(),
              "tables": list(tables)}
    if note:
        record["note"] = note
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        path = directory / f"{bench}-{today}{'' if k == 1 else f'-{k}'}.json"
        try:
            # "x": two runs that finish at once each get a file of their own.
            with open(path, "x") as f:
                json.dump(record, f, indent=2, default=str)
                f.write("\n")
        except FileExistsError:
            continue
        print(f"recorded {path}", file=sys.stderr)
        return path
    raise RuntimeError(f"{directory}: a thousand records of {bench} on {today}")


def _machine():
    """What the figures depend on: the machine, the CPUs this process may use, the versions."""
    torch = sys.modules.get("torch")  # only where the benchmark loaded it: no import for this
    return {"machine": platform.platform(), "processor": platform.machine(),
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "python": platform.python_version(),
            "torch": getattr(torch, "__version__", None), "fcnn": _fcnn_version(),
            "commit": _commit()}


def _fcnn_version():
    try:
        from fcnn_cli import __version__
    except ImportError:
        return None
    return __version__


def _commit():
    """The checkout's commit, with '+' where it has changes: which code the figures are of."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty.strip() else "")
