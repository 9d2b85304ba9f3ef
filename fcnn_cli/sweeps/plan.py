"""The plan of a sweep's shard: which of its combinations are finished, failed, new, or busy
in another process, and the checks made before anything is written.

A combination whose directory holds a ``seeds.json`` that reads as its result (every field
checked, :mod:`fcnn_cli.sweeps.records`) is finished and a rerun skips it; a rerun on data
files that changed since is refused, and so is one that would write over its inputs. Its
lock is held while it trains, so that a second sweep into the same directory finds it busy
and skips it. A combination with a ``failed.json`` alone is tried again.
"""

import functools
import hashlib
import logging
import os
import re
from pathlib import Path

from fcnn_cli.core.errors import FcnnError, printable, shown
from fcnn_cli.sweeps.datasets import INPUTS, listed_files
from fcnn_cli.sweeps.grid import combinations, said, seeds_of, short, train_config
from fcnn_cli.sweeps.records import (FAILED_FILE, FILES, LEADERBOARD_FILES, RESULT_FILE,
                                     NotAResult, read_result)

log = logging.getLogger(__name__)

# A combination's status in a sweep; BUSY: another process holds its run directory's lock.
FINISHED, FAILED, NEW, BUSY = "finished", "failed", "new", "busy"


def parse_shard(text):
    """``"I/N"`` as (I, N), 1 ≤ I ≤ N, written as such: digits (at most nine) without spaces."""
    found = re.fullmatch(r"([0-9]{1,9})/([0-9]{1,9})", text)
    if not found or not 1 <= int(found[1]) <= int(found[2]):
        raise FcnnError(f"shard must be I/N with 1 ≤ I ≤ N (such as 2/8), not {shown(text)}",
                        ("shard",))
    return int(found[1]), int(found[2])


def shard(items, index, count):
    """The ``index``-th (from 1) of ``count`` disjoint shares of ``items``: every count-th one,
    so that the shares together hold each item once and differ in size by one at most."""
    return items[index - 1::count]


def plan(sweep, directory, shard_of=(1, 1)):
    """This shard's combinations as (combination, key, status): FINISHED where ``directory``
    holds its ``seeds.json`` (one that does not read as this combination's result is not: it
    trains again), FAILED where it holds its ``failed.json`` alone, else NEW. Refuses a
    directory that cannot be one, files the sweep would write that it cannot or that are its
    inputs (:func:`_check_outputs`), data files that are not there, and finished combinations
    trained on other data (files of another size or content)."""
    directory = Path(directory)
    _check_directory(directory)
    files = data_files(sweep)
    keyed = [(combination, sweep.key(combination))
             for combination in shard(combinations(sweep.grid), *shard_of)]
    _check_outputs(sweep, directory, keyed, files)
    return [(combination, key, _status(sweep, combination, directory / key, files))
            for combination, key in keyed]


def _check_outputs(sweep, directory, keyed, files):
    """Refuse, before anything is written, a file the sweep writes that cannot be written or
    is one of its inputs or another run's file (:func:`fcnn_cli.results.runs.check_output`): the
    leaderboard's, and in the run directories of ``keyed``'s (combination, key) pairs that
    exist already (those made now hold no input), ``seeds.json``, ``failed.json`` and the runs'
    files, the seeds' too. These are read back as well: one that is not a regular file (a FIFO
    would block) is refused too. ``files``: the sweep's :func:`data_files`, its samples'
    among them."""
    from fcnn_cli.data.tables import input_file
    from fcnn_cli.results.runs import RUN_FILES, check_output

    inputs = [input_file(sweep.data[k]) for k in INPUTS if sweep.data.get(k)]
    inputs += [input_file(entry["path"]) for entry in files.get(FILES, [])]
    inputs.append(sweep.grid_file)
    if directory.is_dir():
        for name in LEADERBOARD_FILES:
            check_output(directory / name, inputs, force=None)
    for _, key in keyed:
        run_dir = directory / key
        if not run_dir.is_dir():
            continue
        paths = [run_dir / name for name in (RESULT_FILE, FAILED_FILE, *RUN_FILES)]
        paths += [seed / name for seed in sorted(run_dir.glob("seed-*")) if seed.is_dir()
                  for name in RUN_FILES]
        for path in paths:
            check_output(path, inputs, force=None, own=path.parent)
            if path.exists() and not path.is_file():
                raise FcnnError(f"{path}: is not a regular file, which the sweep would read "
                                "and write as its own; remove it or choose another output "
                                "directory", ("output",))


def _check_directory(directory):
    """Refuse a sweep directory that is not one, or cannot be made, before anything is
    written."""
    from fcnn_cli.core.fileio import require_writable_dir

    if directory.is_dir():
        return
    if os.path.lexists(directory):
        raise FcnnError(f"{directory}: exists and is not a directory; choose another output "
                        "directory", ("output",))
    ancestor = Path(os.path.abspath(directory)).parent
    while not os.path.lexists(ancestor):
        ancestor = ancestor.parent
    require_writable_dir(directory, ancestor)


def data_files(sweep, digest=False, samples=None):
    """What tells the sweep's data files apart from their later versions: each one's path,
    size and time of change, with ``digest`` also its content's SHA-256 (what a result
    records), {option: {...}}; the files of its samples, or of a DATA of several files, as a
    list under FILES (looked for now, or those of ``samples``, found already, whose recorded
    SHA-256 is taken rather than read again). Refuses a file that is not there. A selector
    (``events.root:tree``) is kept in the path, the file's own stat taken. Stdin and a pipe,
    which can be read only once, are left out."""
    from fcnn_cli.data.tables import is_pipe

    known = {_file_of(r["path"]): r["sha256"] for s in samples or () for r in s.records or ()}
    listed = listed_files(sweep.data, samples)
    found = {}
    for option in INPUTS:
        path = sweep.data.get(option)
        if path is None or is_pipe(path) or \
                option == "data" and listed is not None:
            continue
        found[option] = _file_entry(path, option, digest, known)
    if listed is not None:
        found[FILES] = [_file_entry(path, "samples", digest, known) for path in listed
                        if not is_pipe(path)]
    return found


def _file_entry(path, option, digest, known):
    """A data file's path, size and time of change (and SHA-256 with ``digest``: as ``known``
    says it, {file: SHA-256}, else read now)."""
    from fcnn_cli.data.tables import input_file

    try:
        info = os.stat(input_file(path))
    except OSError as e:
        raise FcnnError(f"{path}: cannot read: {e.strerror or e}", (option,)) from None
    entry = {"path": path, "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    if digest:
        entry["sha256"] = known.get(_file_of(path)) or \
            _digest(path, info.st_size, info.st_mtime_ns)
    return entry


def _file_of(path):
    from fcnn_cli.data.tables import input_file

    return os.path.abspath(input_file(path))


def _same_data(saved, files):
    """Whether the files a result was trained on are these: the same path and size, and the
    same time of change or, where only that differs (a copy, a touch), the same content (a
    result that recorded none counts as of other data)."""
    if saved.keys() != files.keys():
        return False
    pairs = [(saved[option], now) for option, now in files.items() if option != FILES]
    if FILES in files:
        if len(saved[FILES]) != len(files[FILES]):
            return False
        pairs += list(zip(saved[FILES], files[FILES]))
    return all(_same_file(then, now) for then, now in pairs)


def _same_file(then, now):
    if (then.get("path"), then.get("size")) != (now["path"], now["size"]):
        return False
    return then.get("mtime_ns") == now["mtime_ns"] or \
        then.get("sha256") == _digest(now["path"], now["size"], now["mtime_ns"])


@functools.lru_cache(maxsize=8)
def _digest(path, size, mtime_ns):
    """The SHA-256 of a data file's content, once per version of the file (its size and time
    of change, the cache's key beside the path)."""
    from fcnn_cli.data.tables import input_file

    digest = hashlib.sha256()
    with open(input_file(path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _status(sweep, combination, run_dir, files):
    from fcnn_cli.results import runs

    try:
        if is_finished(sweep, combination, run_dir, files):
            return FINISHED
    except NotAResult as e:
        log.warning("%s: not a sweep's result (%s): its combination trains again",
                    run_dir / RESULT_FILE, e)
    if runs.locked(run_dir):
        return BUSY
    return FAILED if (run_dir / FAILED_FILE).exists() else NEW


def is_finished(sweep, combination, run_dir, files):
    """Whether ``run_dir`` holds the ``seeds.json`` of ``combination`` trained on ``files``;
    raises NotAResult for one that does not read as that, FcnnError for one of other data."""
    if not (run_dir / RESULT_FILE).exists():
        return False
    saved, _ = read_result(run_dir / RESULT_FILE)
    if not _same_data(saved["data_files"], files):
        raise _other_data(run_dir, saved["data_files"], files)
    config, _ = train_config(sweep, combination)
    for name, expected in (("combination", combination), ("seeds", seeds_of(sweep, config))):
        if said(saved[name]) != said(expected):  # edited, or written by another grid
            raise NotAResult(f"its {name!r} is {shown(saved[name])}, not {shown(expected)}")
    runs = [run_dir / f"seed-{seed}" for seed in saved["seeds"]] \
        if saved["mode"] == "sequential" else [run_dir]
    gone = [run for run in runs if not (run / "model.pt").is_file()]
    if gone:
        raise NotAResult(f"{gone[0] / 'model.pt'} is missing")
    return True


def _other_data(run_dir, saved, files):
    changed = next((option for option in {*saved, *files}
                    if saved.get(option) != files.get(option)), "data")
    then, now = saved.get(changed), files.get(changed)
    if changed == FILES:  # of the samples' files, the first that differs
        then, now = _first_other(then or [], now or [])
    path = (now or then or {}).get("path", "?")
    return FcnnError(f"{run_dir / RESULT_FILE}: trained on other data: {path} is not the file "
                     "it was trained on (its size or content differ); give this sweep another "
                     "output directory", ("output",))


def _first_other(saved, files):
    """The entries (saved, now) of the first of two lists of files that differ in path or
    size, or in content (a file left out or added at the end: None for it)."""
    for at in range(max(len(saved), len(files))):
        then, now = (items[at] if at < len(items) else None for items in (saved, files))
        if then is None or now is None or not _same_file(then, now):
            return then, now
    return None, None


def plan_table(planned, grid_keys, shard_of=(1, 1)):
    """The combinations a sweep's share would train (:func:`plan`): each one's values, status
    and run directory."""
    from rich.table import Table as RichTable
    from rich.text import Text

    from fcnn_cli.results.report import _title

    todo = sum(status in (NEW, FAILED) for *_, status in planned)
    share = f"shard {shard_of[0]}/{shard_of[1]}: " if shard_of[1] > 1 else ""
    table = RichTable(title=_title(f"Sweep plan ({share}{len(planned)} combinations, {todo} to "
                                   "train)"), title_justify="left")
    for name in ["#", *grid_keys, "status", "run"]:
        table.add_column(name, justify="right" if name == "#" else "left",
                         no_wrap=name == "run")
    for i, (combination, key, status) in enumerate(planned, 1):
        told = {NEW: "to train", FAILED: "failed: to retry",
                BUSY: "training in another process"}.get(status, status)
        values = (combination.get(k) for k in grid_keys)
        table.add_row(str(i), *(Text("–" if v is None else printable(short(v))) for v in values),
                      told, Text(printable(key)))
    return table
