"""What a sweep keeps of each combination beside its runs, and reads back: ``seeds.json``
(finished) or ``failed.json``, what they hold, and the checks that tell one a sweep wrote from
one edited out of shape or of another grid.

``seeds.json`` is written last, after the runs: each seed's validation and test metrics, the
time (of combinations trained together, an equal share of their group's time), the options
and the data files it was trained on (:func:`fcnn_cli.sweeps.plan.data_files`).
``failed.json`` holds the same description with the error instead of metrics. Both are read
by planning (is a combination finished?), by the leaderboard, and by a rerun's plots; one that
does not read as a sweep's raises :class:`NotAResult`, never anything a caller must not catch.
Also here: a result as one leaderboard row (its headline metric's mean and standard deviation
over its seeds), since a result whose metrics do not make one is no result.
"""

import json
import math
import os
import statistics
from pathlib import Path

from fcnn_cli.core.config import typed, valid_seed
from fcnn_cli.core.errors import FcnnError, first_line, shown
from fcnn_cli.sweeps.datasets import INPUTS, data_options
from fcnn_cli.sweeps.grid import ALL_FIELDS

# The files a sweep writes of its own, beside the runs: each combination's, and the
# leaderboard's in the sweep directory (all checked before anything is written).
RESULT_FILE = "seeds.json"
FAILED_FILE = "failed.json"
LEADERBOARD_FILES = ("leaderboard.json", "leaderboard.csv", "leaderboard.png")
# seeds.json and failed.json are read only up to this size: 1024 seeds of a 50-class
# classification, each seed's confusion matrices included, stay below it.
MAX_SAVED_BYTES = 256 << 20
SPLITS = ("val", "test")


class NotAResult(Exception):
    """A ``seeds.json`` or ``failed.json`` that does not read as one a sweep writes."""


MODES = ("single", "ensemble", "sequential", "grouped")
NUMBER = ((int, float), "a number")
OBJECT = (dict, "an object")
SAVED = {"combination": OBJECT, "options": OBJECT, "data": OBJECT, "data_files": OBJECT,
         "seeds": (list, "a list"), "seconds": NUMBER}
RESULT_KEYS = {**SAVED, "mode": (str, "a name"), "metrics": (list, "a list")}
FAILED_KEYS = {**SAVED, "error": (str, "a message")}
# Each data file's entry in data_files (sha256: only where the sweep read the file).
FILE_KEYS = {"path": (str, "a path"), "size": (int, "a size"), "mtime_ns": (int, "a time")}
# The entry of data_files that lists the files of the samples, or of a DATA of several files.
FILES = "files"


def described(sweep, combination, files):
    """What a combination's ``seeds.json`` and ``failed.json`` say of what it trains: its
    values, its options (fixed ones too), its data options (the grid's selection, weight and
    definitions in their place) and the data files, which a rerun checks."""
    data = data_options(sweep.data, combination)
    return {"combination": combination, "options": {**sweep.fixed, **combination},
            "data": {k: v for k, v in data.items() if v is not None}, "data_files": files}


def read_result(path):
    """A combination's ``seeds.json``, checked, and its leaderboard row; raises NotAResult."""
    saved = _read_saved(Path(path), RESULT_KEYS)
    if saved["mode"] not in MODES:
        raise NotAResult(f"its 'mode' is {shown(saved['mode'])}, not one of {', '.join(MODES)}")
    if len(saved["metrics"]) != len(saved["seeds"]) or not all(
            isinstance(m, dict) for m in saved["metrics"]):
        raise NotAResult("its metrics are not one object per seed")
    try:
        return saved, _row(Path(path), saved)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise NotAResult(f"its metrics do not read: {first_line(e)}") from None


def read_failure(path):
    """A combination's ``failed.json``, checked; raises NotAResult. Its ``error_options``
    (none in older files) are the options its error names, as FcnnError.options."""
    saved = _read_saved(Path(path), FAILED_KEYS)
    named = saved.get("error_options", [])
    if not isinstance(named, list) or not all(isinstance(name, str) for name in named):
        raise NotAResult(f"its 'error_options' are {shown(named)}, not option names")
    return saved


def read_json(path):
    """A sweep's JSON file, which must be a regular file of at most MAX_SAVED_BYTES."""
    from fcnn_cli.core.fileio import read_regular

    try:
        return json.loads(read_regular(path, MAX_SAVED_BYTES, os.path.basename(path)))
    except FcnnError as e:
        raise NotAResult(str(e)) from None
    except (OSError, ValueError, RecursionError) as e:
        raise NotAResult(f"not readable JSON: {first_line(e)}") from None


def _read_saved(path, kinds):
    """The object of a sweep's JSON file, each key of ``kinds`` of its kind and range."""
    saved = read_json(path)
    if not isinstance(saved, dict):
        raise NotAResult("it holds no object")
    _check_kinds(saved, kinds, "it")
    for option, value in saved["combination"].items():
        try:
            typed(ALL_FIELDS[option], value, none=False)
        except KeyError:
            raise NotAResult(f"its combination names {shown(option)}, not an option") from None
        except FcnnError as e:
            raise NotAResult(f"its combination's {e}") from None
    if not 0 <= saved["seconds"] < math.inf:
        raise NotAResult(f"its 'seconds' is {shown(saved['seconds'])}, not a time")
    seeds = saved["seeds"]
    if not seeds or not all(type(seed) is int and valid_seed(seed) for seed in seeds) or \
            len(set(seeds)) < len(seeds):
        raise NotAResult(f"its 'seeds' are {shown(seeds)}, not distinct seeds")
    for option, entry in saved["data_files"].items():
        if option == FILES:
            _check_files(entry)
            continue
        if option not in INPUTS:
            raise NotAResult(f"its data_files name {option!r}, not one of {', '.join(INPUTS)}")
        _check_file(option, entry)
    return saved


def _check_files(entries):
    """The data_files' list of the samples' files (or a DATA's several files)."""
    if not isinstance(entries, list):
        raise NotAResult(f"its data_files' {FILES!r} is {shown(entries)}, not a list")
    for at, entry in enumerate(entries):
        _check_file(f"{FILES}[{at}]", entry)


def _check_file(option, entry):
    _check_kinds({option: entry}, {option: OBJECT}, "its data_files'")
    _check_kinds(entry, FILE_KEYS, f"its data_files' {option}")
    if entry["size"] < 0 or not isinstance(entry.get("sha256", ""), str):
        raise NotAResult(f"its data_files' {option} is {shown(entry)}")


def _check_kinds(saved, kinds, whose):
    for key, (kind, said) in kinds.items():
        value = saved.get(key)
        if key not in saved:
            raise NotAResult(f"{whose} has no {key!r}")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise NotAResult(f"{_possessive(whose)} {key!r} is {shown(value)}, not {said}")


def _possessive(whose):
    """"it" as the owner of a key: "its"; the other owners ("its data_files' val") are."""
    return "its" if whose == "it" else whose


def headline(report):
    """A report's headline metrics, {name: value}; the leaderboard ranks by the last."""
    if "accuracy" in report:
        return {"accuracy": report["accuracy"]}
    found = {"rmse": report["overall"]["rmse"]}
    if "distance" in report:
        found["mean_distance"] = report["distance"]["mean"]
    return found


def _row(path, saved):
    row = {"run": str(path.parent), **saved["combination"], "seeds": len(saved["seeds"]),
           "mode": saved["mode"]}
    for split in SPLITS:
        found = [headline(m[split]) for m in saved["metrics"] if split in m]
        for name in found[0] if found else ():
            numbers = [_number(f[name]) for f in found]
            row["metric"] = name
            row[f"{split}_{name}_mean"] = statistics.fmean(numbers)
            row[f"{split}_{name}_std"] = statistics.stdev(numbers) if len(numbers) > 1 else 0.0
    row["seconds"] = saved["seconds"]
    return row


def _number(value):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"a metric is {shown(value)}, not a number")
    return value
