"""Sweeps: every combination of a grid of training options, each over several seeds.

A grid maps option names (the fields of NetConfig and TrainConfig, as in configuration files)
to lists of values; the combinations are their product, in the order the grid gives its keys
and values. Each combination trains ``seeds`` times, with seeds ``seed``, ``seed + 1``, …:
where the ensemble path takes the options, as the members of one ensemble trained in one
vectorised pass (member k is seed + k; all members share the split of ``seed``), else one run
after another, each an ordinary run with its own seed.

Combinations whose options differ in ``ensemble.MEMBER_OPTIONS`` alone (lr, weight decay,
init, dropout, patience, ema: they change neither the network's shape nor the step's kernels)
train together: all their seeds as the members of one vectorised pass (at most MAX_MEMBERS;
larger groups are split), each combination still an ensemble of its own seeds (its cohort,
:func:`fcnn_cli.engine.train.fit_cohorts`), saved in its own run directory as if trained alone.

A combination's run directory, inside the sweep directory, is named by its options and a hash
of everything that defines its result (:meth:`Sweep.key`). It holds one run as ``fcnn train``
writes it (an ensemble's single checkpoint holds every seed's member), or with sequential seeds
a ``seed-<s>`` run directory per seed, and ``seeds.json``, written last: each seed's validation
and test metrics, the time (of combinations trained together, an equal share of their group's
time), the options and the data files it was trained on (:func:`data_files`). A combination
whose directory holds a ``seeds.json`` that reads as its result (every field checked) is
finished and a rerun skips it; a rerun on data files that changed since is refused, and so is
one that would write over its inputs. Its lock is held while it trains, so that a
second sweep into the same directory skips it. The leaderboard is rebuilt from the
``seeds.json`` files the sweep directory holds, so that shards writing into one directory each
see what all have finished.

A combination that fails for its options (an FcnnError, such as a training that diverges at
once or options the network refuses, or a lack of memory) gets ``failed.json`` instead, and the
sweep goes on; a rerun tries it again. Anything else (a programming error, an interrupt) stops
the sweep at once; a run cut short by an interrupt is never saved, so nothing of it passes for
finished.
"""

import contextlib
import dataclasses
import difflib
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import re
import statistics
import time
import tomllib
from datetime import datetime, timezone
from pathlib import Path

from fcnn_cli.core.config import (MAX_MEMBERS, DataConfig, NetConfig, TrainConfig, Unsupported,
                             option_fields, typed, valid_seed)
from fcnn_cli.core.errors import FcnnError, Message, first_line, shown

log = logging.getLogger(__name__)

# Options a sweep sets itself, and why.
SEEDS = "the seeds are given by seeds= (each combination trains seed, seed + 1, …)"
SPEED_ONLY = "it changes how fast a combination trains, not what: give it once for all"
NOT_IN_GRID = {"seed": SEEDS, "ensemble": SEEDS,
               "stream": "a sweep reads its tables into memory once for all combinations",
               "threads": SPEED_ONLY, "device": SPEED_ONLY}
GRID_FIELDS = {f.name: f for cls in (NetConfig, TrainConfig) for f in option_fields(cls)
               if f.name not in NOT_IN_GRID}
NET_FIELDS = {f.name for f in option_fields(NetConfig)}
DATA_FIELDS = {f.name for f in option_fields(DataConfig)}
ALL_FIELDS = {f.name: f for cls in (DataConfig, NetConfig, TrainConfig) for f in option_fields(cls)}
# Options that change where and how fast a combination trains, not what it trains to (a device
# or thread count changes float rounding alone): a rerun that names them otherwise finds the
# combination finished, and the leaderboard does not tell rows apart by them.
NOT_DEFINING = ("threads", "device")
INPUTS = ("data", "val", "test")  # the DataConfig options that are files
RESULT_FILE = "seeds.json"
FAILED_FILE = "failed.json"
LEADERBOARD_FILES = ("leaderboard.json", "leaderboard.csv", "leaderboard.png")
# A grid's combinations are counted before they are made: each is at least one training run,
# and planning alone takes seconds per ten thousand. One list is bounded by the same number
# before its values are read.
MAX_COMBINATIONS = 10_000
# seeds.json and failed.json are read only up to this size: 1024 seeds of a 50-class
# classification, each seed's confusion matrices included, stay below it.
MAX_SAVED_BYTES = 256 << 20
# A combination's status in a sweep; BUSY: another process holds its run directory's lock.
FINISHED, FAILED, NEW, BUSY = "finished", "failed", "new", "busy"
SPLITS = ("val", "test")


@dataclasses.dataclass
class Sweep:
    """What a sweep trains: ``data`` the DataConfig options (data, targets, features, val,
    test), ``fixed`` the options every combination takes, ``grid`` {option: [values]};
    ``grid_file`` the file the grid was read from, if any: an input, never written over."""

    data: dict
    fixed: dict
    grid: dict
    seeds: int = 1
    grid_file: str | None = None

    def __post_init__(self):
        # Absolute, as fcnn train records them: the key and the runs' config.toml name the
        # same files whatever the directory the sweep was started from.
        data = {k: _absolute(v) if k in INPUTS else v for k, v in self.data.items()}
        self.data = dataclasses.asdict(DataConfig(**data))
        for key in self.fixed:
            if key not in ("seed", *NOT_DEFINING):
                _grid_field(key, "option")
        if not 1 <= self.seeds <= 1024:
            raise FcnnError(f"seeds must be between 1 and 1024, not {self.seeds}", ("seeds",))
        for key in self.grid:
            if key in self.fixed:
                raise FcnnError(f"{key} is both fixed and in the grid; give it once",
                                (key, "grid"))
            _refuse_repeats(key, self.grid[key])
        _refuse_too_many(self.grid)
        for combination in combinations(self.grid):
            # A bad value (or a last seed out of range) fails now, not after hours; options
            # that take no ensemble train their seeds one by one.
            try:
                train_config(self, combination, ensemble=self.seeds)
            except Unsupported:  # raised after the other TrainConfig checks, before NetConfig's
                train_config(self, combination)

    def key(self, combination):
        """The name of a combination's run directory: its values, then a hash of all that
        defines its runs: the data options, every option of the combination with the defaults
        filled in (an option typed as its default is the one left out) but NOT_DEFINING, and
        the number of seeds."""
        # Keys in order of their names: the grid's order (a command line's) names no other run.
        text = "_".join(f"{k}={_short(v)}" for k, v in sorted(combination.items())) or "fixed"
        text = re.sub(r"[^A-Za-z0-9=.,+-]+", "-", text)[:80]
        defined = _said([self.data, defined_options(self, combination), self.seeds])
        return f"{text}-{hashlib.sha256(defined.encode()).hexdigest()[:10]}"


def defined_options(sweep, combination):
    """Every NetConfig and TrainConfig option of a combination, defaults filled in, but those
    that do not change its result (NOT_DEFINING)."""
    config, net = train_config(sweep, combination)
    options = {**dataclasses.asdict(config), **NetConfig(n_in=1, n_out=1, **net).to_dict(),
               # as given: left out, training takes the task's default (not NetConfig's)
               "dropout": net.get("dropout")}
    return {k: v for k, v in options.items() if k not in (*NOT_DEFINING, "n_in", "n_out")}


def _absolute(path):
    return path if path in (None, "-") else os.path.abspath(path)


def _said(value):
    """A value as JSON says it: what tells values apart, and a saved one from a given one."""
    return json.dumps(value, sort_keys=True, default=str)


def _refuse_repeats(key, values):
    """Refuse a value given twice (as typed: 1e-3 and 0.001 are one): it would name one run
    directory trained twice over."""
    seen = set()
    for value in values:
        said = _said(value)
        if said in seen:
            raise FcnnError(f"grid {key}: the value {_short(value)} is given twice; give each "
                            "value once", ("grid",))
        seen.add(said)


def _refuse_too_many(grid):
    count = math.prod(len(values) for values in grid.values())
    if count > MAX_COMBINATIONS:
        raise FcnnError(f"the grid makes {count} combinations; a sweep trains at most "
                        f"{MAX_COMBINATIONS}: split it into several sweeps")


def _refuse_long(values, where, options=()):
    """Refuse a list of values longer than any grid takes, before its values are read."""
    if len(values) > MAX_COMBINATIONS:
        raise FcnnError(f"{where}: {len(values)} values; a sweep trains at most "
                        f"{MAX_COMBINATIONS} combinations", options)


def _short(value):
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def parse_grid(items):
    """``["depth=3,10", "arch=plain,resnet"]`` as {option: [values]}, each value read as a
    configuration file's (a TOML value; a bare word is a name) and of its option's type."""
    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values.strip():
            raise FcnnError(f"grid {item!r}: give KEY=V1,V2,… (for example depth=3,10)",
                            ("grid",))
        field = _grid_field(key)
        if key in grid:
            raise FcnnError(f"grid key {key!r} is given twice", ("grid",))
        texts = values.split(",")
        _refuse_long(texts, f"grid {key}", ("grid",))
        grid[key] = [_typed(field, _toml_value(text.strip())) for text in texts]
    return grid


def _toml_value(text):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return text  # a bare word: a name, such as resnet (or brackets nested past reason)


def _grid_field(key, what="grid key"):
    if key in GRID_FIELDS:
        return GRID_FIELDS[key]
    if key in NOT_IN_GRID:
        raise FcnnError(f"{what} {key!r}: {NOT_IN_GRID[key]}", ("grid",))
    if key in DATA_FIELDS:
        raise FcnnError(f"{what} {key!r} is a data option, given once for all combinations: "
                        + ("give the data file as DATA" if key == "data" else f"give {key}"),
                        ("grid",) if key == "data" else ("grid", key))
    near = difflib.get_close_matches(key, GRID_FIELDS, n=1, cutoff=0.5)
    raise FcnnError(f"unknown {what} {key!r}" + (f"; did you mean {near[0]!r}?" if near
                    else "; the keys are the options of fcnn train"), ("grid",))


def _typed(field, value):
    try:
        return typed(field, value, none=False)
    except FcnnError as e:
        raise FcnnError(f"grid: {e}", ("grid",)) from None


def read_grid_file(path):
    """The grid and the other options of a TOML file: a ``[grid]`` table of lists, beside any
    options a configuration file of ``fcnn train`` takes. Returns (grid, options)."""
    from fcnn_cli.core import configfile

    document = configfile.parse(path)
    table = document.pop("grid", None)
    if not isinstance(table, dict):
        raise FcnnError(f"{path}: needs a [grid] table of lists, such as depth = [3, 10]")
    grid = {}
    for key, values in table.items():
        if not isinstance(values, list) or not values:
            raise FcnnError(f"{path}: [grid] {key} must be a list of values, not "
                            f"{shown(values)}")
        _refuse_long(values, f"{path}: [grid] {key}")
        try:
            field = _grid_field(key)
            grid[key] = [_typed(field, v) for v in values]
        except FcnnError as e:
            raise FcnnError(f"{path}: [grid] {e}") from None
    return grid, configfile.read_config(path, document)


def parse_shard(text):
    """``"I/N"`` as (I, N), 1 ≤ I ≤ N, written as such: digits (at most nine) without spaces."""
    found = re.fullmatch(r"([0-9]{1,9})/([0-9]{1,9})", text)
    if not found or not 1 <= int(found[1]) <= int(found[2]):
        raise FcnnError(f"shard must be I/N with 1 ≤ I ≤ N (such as 2/8), not {shown(text)}",
                        ("shard",))
    return int(found[1]), int(found[2])


def combinations(grid):
    """Every combination of the grid's values as {option: value}: the product in the order
    of the grid's keys, the last key changing fastest."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def shard(items, index, count):
    """The ``index``-th (from 1) of ``count`` disjoint shares of ``items``: every count-th one,
    so that the shares together hold each item once and differ in size by one at most."""
    return items[index - 1::count]


def seeds_of(sweep, config):
    """The seeds a combination trains: its members' (:func:`fcnn_cli.engine.ensemble.member_seed`)."""
    from fcnn_cli.engine.ensemble import member_seed

    return [member_seed(config.seed, k) for k in range(sweep.seeds)]


def train_config(sweep, combination, **changes):
    """The TrainConfig and the network options of a combination."""
    options = {**sweep.fixed, **combination}
    net = {k: v for k, v in options.items() if k in NET_FIELDS}
    config = TrainConfig(**{k: v for k, v in options.items() if k not in NET_FIELDS},
                         **changes)
    NetConfig(n_in=1, n_out=1, **net)
    return config, net


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
    _check_outputs(sweep, directory, keyed)
    return [(combination, key, _status(sweep, combination, directory / key, files))
            for combination, key in keyed]


def _check_outputs(sweep, directory, keyed):
    """Refuse, before anything is written, a file the sweep writes that cannot be written or
    is one of its inputs (:func:`fcnn_cli.core.fileio.check_output`): the leaderboard's, and in the
    run directories of ``keyed``'s (combination, key) pairs that exist already (those made
    now hold no input), ``seeds.json``, ``failed.json`` and the runs' files, the seeds' too.
    These are read back as well: one that is not a regular file (a FIFO would block) is
    refused too."""
    from fcnn_cli.core.fileio import check_output
    from fcnn_cli.results.runs import RUN_FILES
    from fcnn_cli.data.tables import input_file

    inputs = [input_file(sweep.data[k]) for k in INPUTS if sweep.data.get(k)]
    inputs.append(sweep.grid_file)
    if directory.is_dir():
        for name in LEADERBOARD_FILES:
            check_output(directory / name, inputs)
    for _, key in keyed:
        run_dir = directory / key
        if not run_dir.is_dir():
            continue
        paths = [run_dir / name for name in (RESULT_FILE, FAILED_FILE, *RUN_FILES)]
        paths += [seed / name for seed in sorted(run_dir.glob("seed-*")) if seed.is_dir()
                  for name in RUN_FILES]
        for path in paths:
            check_output(path, inputs)
            if path.exists() and not path.is_file():
                raise FcnnError(f"{path}: is not a regular file, which the sweep would read "
                                "and write as its own; remove it or choose another output "
                                "directory", ("output",))


def data_files(sweep, digest=False):
    """What tells the sweep's data files apart from their later versions: each one's path,
    size and time of change, with ``digest`` also its content's SHA-256 (what a result
    records), {option: {...}}; refuses a file that is not there. A selector
    (``events.root:tree``) is kept in the path, the file's own stat taken."""
    from fcnn_cli.data.tables import input_file

    found = {}
    for option in INPUTS:
        path = sweep.data.get(option)
        if path in (None, "-"):
            continue
        try:
            info = os.stat(input_file(path))
        except OSError as e:
            raise FcnnError(f"{path}: cannot read: {e.strerror or e}", (option,)) from None
        found[option] = {"path": path, "size": info.st_size, "mtime_ns": info.st_mtime_ns}
        if digest:
            found[option]["sha256"] = _digest(path, info.st_size, info.st_mtime_ns)
    return found


def _same_data(saved, files):
    """Whether the files a result was trained on are these: the same path and size, and the
    same time of change or, where only that differs (a copy, a touch), the same content (a
    result that recorded none counts as of other data)."""
    if saved.keys() != files.keys():
        return False
    for option, now in files.items():
        then = saved[option]
        if (then.get("path"), then.get("size")) != (now["path"], now["size"]):
            return False
        if then.get("mtime_ns") != now["mtime_ns"] and \
                then.get("sha256") != _digest(now["path"], now["size"], now["mtime_ns"]):
            return False
    return True


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


def _status(sweep, combination, run_dir, files):
    from fcnn_cli.results import runs

    try:
        if _finished(sweep, combination, run_dir, files):
            return FINISHED
    except NotAResult as e:
        log.warning("%s: not a sweep's result (%s): its combination trains again",
                    run_dir / RESULT_FILE, e)
    if runs.locked(run_dir):
        return BUSY
    return FAILED if (run_dir / FAILED_FILE).exists() else NEW


def _finished(sweep, combination, run_dir, files):
    """Whether ``run_dir`` holds the ``seeds.json`` of ``combination`` trained on ``files``;
    raises NotAResult for one that does not read as that, FcnnError for one of other data."""
    if not (run_dir / RESULT_FILE).exists():
        return False
    saved, _ = read_result(run_dir / RESULT_FILE)
    if not _same_data(saved["data_files"], files):
        raise _other_data(run_dir, saved["data_files"], files)
    config, _ = train_config(sweep, combination)
    for name, expected in (("combination", combination), ("seeds", seeds_of(sweep, config))):
        if _said(saved[name]) != _said(expected):  # edited, or written by another grid
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
    path = (files.get(changed) or saved.get(changed) or {}).get("path", "?")
    return FcnnError(f"{run_dir / RESULT_FILE}: trained on other data: {path} is not the file "
                     "it was trained on (its size or content differ); give this sweep another "
                     "output directory", ("output",))


def run(sweep, directory, shard_of=(1, 1), plots=False):
    """Train the combinations of this shard of the grid that ``directory`` does not hold
    finished (failed ones again), each run's plots drawn with ``plots`` (also those that a
    finished combination lacks); returns the leaderboard of all that ``directory`` holds.
    Progress goes to the log, a line as each combination starts and ends."""
    from fcnn_cli.core.fileio import writing

    directory = Path(directory)
    planned = plan(sweep, directory, shard_of)
    with writing(directory):
        directory.mkdir(parents=True, exist_ok=True)
    todo = [(c, key) for c, key, status in planned if status != FINISHED]
    log.info("%d combinations (shard %d/%d): %d finished already, %d to train (%d of them "
             "failed before)", len(planned), *shard_of, len(planned) - len(todo), len(todo),
             sum(status == FAILED for *_, status in planned))
    if not planned:
        log.warning("shard %d/%d of a grid of %d combinations holds none: nothing to train",
                    *shard_of, len(combinations(sweep.grid)))
    if plots:
        for _, key, status in planned:
            if status == FINISHED:
                _draw_runs(directory / key, missing=True)
    if todo:
        inputs = _read_tables(sweep)
        labels = {key: f"combination {i} of {len(todo)}: {key}"
                  for i, (_, key) in enumerate(todo, 1)}
        for group in groups(sweep, todo):
            with _claimed(sweep, group, directory, inputs.files, labels) as free:
                if len(free) == 1:
                    combination, key = free[0]
                    _attempt(sweep, combination, inputs, directory / key, labels[key], plots)
                elif free:
                    _attempt_group(sweep, free, inputs, directory, labels, plots)
    return leaderboard(directory)


@contextlib.contextmanager
def _claimed(sweep, group, directory, files, labels):
    """Hold the lock of each run directory of ``group`` (:func:`fcnn_cli.results.runs.claim`) while
    they train, so that a second sweep of the same grid (a resubmitted job) trains none of
    them too; yields the (combination, key) pairs to train: not those whose lock another live
    process holds, nor those it finished meanwhile."""
    from fcnn_cli.results import runs

    with contextlib.ExitStack() as held:
        free = []
        for combination, key in group:
            one = held.enter_context(contextlib.ExitStack())  # closed early if not trained
            try:
                one.enter_context(runs.claim(directory / key, force=True))
            except runs.InProgress:
                log.info("%s: another process trains it; skipped", labels[key])
                continue
            try:
                done = _finished(sweep, combination, directory / key, files)
            except NotAResult:
                done = False
            if done:
                one.close()
                log.info("%s: finished by another process meanwhile", labels[key])
                continue
            free.append((combination, key))
        yield free


@dataclasses.dataclass
class Inputs:
    """The sweep's tables (data, val, test; None where not given), read once, and the
    :func:`data_files` they were read from."""

    tables: list
    files: dict


def _read_tables(sweep):
    from fcnn_cli.data.tables import read_table

    files = data_files(sweep, digest=True)
    narrow = sweep.data.get("targets") or ()
    return Inputs([read_table(sweep.data[k], narrow=narrow) if sweep.data.get(k) else None
                   for k in INPUTS], files)


def _attempt(sweep, combination, inputs, run_dir, label, plots):
    """Train one combination; one that fails for its options is recorded in ``failed.json``
    and the sweep goes on."""
    log.info("%s: training", label)
    start = time.perf_counter()
    try:
        train_combination(sweep, combination, inputs, run_dir)
        error = None
    except _failures() as e:
        error = e.with_traceback(None)  # its frames hold the failed run's tensors
    _finish(sweep, combination, run_dir, (label, time.perf_counter() - start, inputs.files),
            error, plots)


def _attempt_group(sweep, group, inputs, directory, labels, plots):
    """Train combinations together (:func:`train_group`), each that fails recorded as
    :func:`_attempt` records it. Where the options take no ensemble, or the group does not fit
    in memory, in smaller groups: those that agree in the options the autograd step takes one
    of for all members, then one by one. ``labels``: {key: its progress label}."""
    keys = [key for _, key in group]
    log.info("%s to %s: training together, as one vectorised pass", labels[keys[0]],
             labels[keys[-1]].partition(":")[0])
    start, retry = time.perf_counter(), None
    try:
        errors = train_group(sweep, group, inputs, directory)
    except (Unsupported, *_out_of_memory()) as e:
        retry = isinstance(e, Unsupported), first_line(e, 1000)
    except _failures() as e:
        errors = [e.with_traceback(None)] * len(group)
    if retry is not None:  # out of the handler, whose traceback held the failed pass's memory
        split, why = retry
        log.info("these %d combinations cannot train together (%s): in smaller groups",
                 len(group), why)
        _release_memory()
        for part in _parts(sweep, group, split):
            if len(part) == 1:
                combination, key = part[0]
                _attempt(sweep, combination, inputs, directory / key, labels[key], plots)
            else:
                _attempt_group(sweep, part, inputs, directory, labels, plots)
        return
    seconds = (time.perf_counter() - start) / len(group)
    for (combination, key), error in zip(group, errors):
        _finish(sweep, combination, directory / key, (labels[key], seconds, inputs.files),
                error, plots)


def _parts(sweep, group, split):
    """``group`` in the parts that agree in ``ensemble.KERNEL_OPTIONS`` where ``split`` and that
    makes more than one, else one combination a part."""
    from fcnn_cli.engine.ensemble import KERNEL_OPTIONS

    found = {}
    for combination, key in group:
        options = {**sweep.fixed, **combination}
        kernel = _said({k: options.get(k) for k in KERNEL_OPTIONS})
        found.setdefault(kernel, []).append((combination, key))
    if split and len(found) > 1:
        return list(found.values())
    return [[pair] for pair in group]


def _finish(sweep, combination, run_dir, progress, error, plots):
    """How a combination ended: ``failed.json`` for an ``error``, else none left and its
    plots drawn with ``plots``; a line in the log either way. ``progress``: (label, seconds,
    the :func:`data_files` trained on)."""
    from fcnn_cli.core.fileio import writing

    label, seconds, files = progress
    if error is not None:
        _record_failure(sweep, combination, run_dir, error, (seconds, files))
        log.warning("%s: failed after %s: %s", label, _duration(seconds),
                    Message(first_line(error, 1000), getattr(error, "options", ())))
        return
    with writing(run_dir / FAILED_FILE):
        (run_dir / FAILED_FILE).unlink(missing_ok=True)
    log.info("%s: finished in %s", label, _duration(seconds))
    if plots:
        _draw_runs(run_dir)


def _failures():
    """What fails a combination and not the sweep: the user's options (FcnnError) and a lack of
    memory for them (a network too wide for the GPU or the CPU)."""
    return FcnnError, *_out_of_memory()


def _release_memory():
    """Hand a failed pass's memory back (to the GPU's allocator too) before smaller ones."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _out_of_memory():
    """A lack of memory: found before training or when an allocation failed in it (the
    training engine says either as devices.OutOfMemory), or anywhere else."""
    import torch

    from fcnn_cli.machine.devices import OutOfMemory

    return MemoryError, torch.OutOfMemoryError, OutOfMemory


def _record_failure(sweep, combination, run_dir, error, spent):
    """``failed.json``; ``spent``: (seconds, the :func:`data_files` trained on)."""
    from fcnn_cli.core.fileio import write_text, writing

    seconds, files = spent
    config, _ = train_config(sweep, combination)
    record = {**_described(sweep, combination, files), "seeds": seeds_of(sweep, config),
              "error": first_line(error, 1000), "kind": type(error).__name__,
              "failed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "seconds": seconds}
    with writing(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / FAILED_FILE, json.dumps(record, indent=2, default=str) + "\n")


def _draw_runs(run_dir, missing=False):
    """The plots of each run a combination saved (one, or one per seed), as fcnn train draws
    them; the runs are saved already, so a failure here is only a warning. Once all are drawn,
    ``seeds.json`` says so (it is written before the plots, which a sweep stopped while
    drawing leaves incomplete); with ``missing`` only a combination whose plots it does not
    list as drawn, or that has none (removed since)."""
    from fcnn_cli.results.plots import plot_run
    from fcnn_cli.results.runs import PLOTS_DIR

    result = Path(run_dir) / RESULT_FILE
    if missing:
        if _plotted(result) and any(Path(run_dir).glob(f"**/{PLOTS_DIR}/*.png")):
            return
        log.info("%s: drawing the plots that an earlier sweep left out", run_dir)
    drawn = True
    for path in sorted(p.parent for p in Path(run_dir).glob("**/model.pt")):
        try:
            plot_run(path)
        except FcnnError as e:
            drawn = False
            log.warning("the run is saved, but its plots are not: %s; draw them with: "
                        "fcnn plot %s", e, path)
    if drawn and result.exists():
        from fcnn_cli.core.fileio import write_text

        saved = _read_json(result)  # the sweep's own, written before the plots
        write_text(result, json.dumps({**saved, "plotted": True}, indent=2, default=str) + "\n")


def _plotted(result):
    try:
        return _read_json(result).get("plotted") is True
    except (NotAResult, AttributeError):
        return False


def _described(sweep, combination, files):
    """What a combination's ``seeds.json`` and ``failed.json`` say of what it trains: its
    values, its options (fixed ones too), and the data files, which a rerun checks."""
    return {"combination": combination, "options": {**sweep.fixed, **combination},
            "data": {k: v for k, v in sweep.data.items() if v is not None}, "data_files": files}


def _duration(seconds):
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {seconds % 60:02.0f} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _grouped_result(sweep, combination, result, keys, spent):
    """What ``seeds.json`` holds of a combination trained in the group of ``keys``;
    ``spent``: (its seconds, the :func:`data_files` trained on)."""
    seconds, files = spent
    members = result.members or [{split: result.metrics[split] for split in SPLITS
                                  if split in result.metrics}]
    return {**_described(sweep, combination, files),
            "seeds": seeds_of(sweep, result.config), "mode": "grouped",
            "group": keys, "seconds": seconds, "metrics": members}


def groups(sweep, todo):
    """``todo``'s (combination, key) pairs in groups that train together: those whose options
    differ in ``ensemble.MEMBER_OPTIONS`` alone, in order of their first member, each of at
    most ``MAX_MEMBERS`` members (combinations × seeds)."""
    from fcnn_cli.engine.ensemble import MEMBER_OPTIONS

    found = {}
    for combination, key in todo:
        options = {k: v for k, v in {**sweep.fixed, **combination}.items()
                   if k not in MEMBER_OPTIONS}
        found.setdefault(_said(options), []).append((combination, key))
    most = MAX_MEMBERS // sweep.seeds
    return [group[i:i + most] for group in found.values() for i in range(0, len(group), most)]


def train_group(sweep, group, inputs, directory):
    """Train several combinations (each over its seeds) as the cohorts of one vectorised pass
    (:func:`fcnn_cli.engine.train.fit_cohorts`), then save each one's run and ``seeds.json`` as
    :func:`train_combination` does, its time its share of the group's. Returns each
    combination's FcnnError (one that kept nothing) or None; raises ``Unsupported`` where the
    options take no ensemble."""
    from fcnn_cli.engine import train
    from fcnn_cli.core.fileio import write_text

    start = time.perf_counter()
    cohorts = [train_config(sweep, combination, ensemble=sweep.seeds) for combination, _ in group]
    data, val, test = inputs.tables
    results = train.fit_cohorts(data, cohorts, sweep.data.get("targets"),
                                sweep.data.get("features"), val, test)
    done = [(combination, key, result) for (combination, key), result in zip(group, results)
            if not isinstance(result, FcnnError)]
    for _, key, result in done:
        _save(sweep, result, directory / key)
    seconds = (time.perf_counter() - start) / len(group)
    for combination, key, result in done:
        saved = _grouped_result(sweep, combination, result, [k for _, k in group],
                                (seconds, inputs.files))
        write_text(directory / key / RESULT_FILE,
                   json.dumps(saved, indent=2, default=str) + "\n")
    return [r if isinstance(r, FcnnError) else None for r in results]


def train_combination(sweep, combination, inputs, run_dir):
    """Train one combination over its seeds, save its runs, then ``seeds.json``."""
    from fcnn_cli.core.fileio import write_text

    start = time.perf_counter()
    config, _ = train_config(sweep, combination)
    seeds = seeds_of(sweep, config)
    if sweep.seeds > 1:
        try:
            members, mode = _as_ensemble(sweep, combination, inputs, run_dir), "ensemble"
        except _NoEnsemble as e:
            log.info("%s: seeds one after another: %s", run_dir.name, e)
            members, mode = _one_by_one(sweep, combination, inputs, run_dir, seeds), \
                "sequential"
    else:
        members, mode = [_single(sweep, combination, inputs, run_dir, {})], "single"
    result = {**_described(sweep, combination, inputs.files), "seeds": seeds, "mode": mode,
              "seconds": time.perf_counter() - start, "metrics": members}
    write_text(run_dir / RESULT_FILE, json.dumps(result, indent=2, default=str) + "\n")


class _NoEnsemble(Exception):
    """The options take no ensemble: the seeds train one after another."""


def _as_ensemble(sweep, combination, inputs, run_dir):
    """Every seed a member of one ensemble, saved as one run; each member's metrics."""
    try:
        result = _fit(sweep, combination, inputs, {"ensemble": sweep.seeds})
    except Unsupported as e:
        raise _NoEnsemble(str(e)) from None
    _save(sweep, result, run_dir)
    return result.members


def _one_by_one(sweep, combination, inputs, run_dir, seeds):
    return [_single(sweep, combination, inputs, run_dir / f"seed-{seed}", {"seed": seed})
            for seed in seeds]


def _single(sweep, combination, inputs, run_dir, changes):
    result = _fit(sweep, combination, inputs, changes)
    _save(sweep, result, run_dir)
    return {split: result.metrics[split] for split in SPLITS if split in result.metrics}


def _fit(sweep, combination, inputs, changes):
    from fcnn_cli.engine import train

    config, net = train_config(sweep, combination, **changes)
    data, val, test = inputs.tables
    return train.fit(data, config, net, sweep.data.get("targets"), sweep.data.get("features"),
                     val, test)


def _save(sweep, result, run_dir):
    """Save a run in ``run_dir``: its combination's run directory, or a seed's inside it,
    whose lock :func:`_claimed` holds (claimed again here, it would refuse this process)."""
    from fcnn_cli.results import runs

    if result.interrupted:  # not saved, a run cut short is never taken for a finished one
        raise KeyboardInterrupt
    runs.forget_state(run_dir)
    runs.save_run(result, run_dir, *(sweep.data.get(k) for k in INPUTS))


HIGHER_IS_BETTER = ("accuracy",)


def headline(report):
    """A report's headline metrics, {name: value}; the leaderboard ranks by the last."""
    if "accuracy" in report:
        return {"accuracy": report["accuracy"]}
    found = {"rmse": report["overall"]["rmse"]}
    if "distance" in report:
        found["mean_distance"] = report["distance"]["mean"]
    return found


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


def _read_saved(path, kinds):
    """The object of a sweep's JSON file, each key of ``kinds`` of its kind and range."""
    saved = _read_json(path)
    if not isinstance(saved, dict):
        raise NotAResult("it holds no object")
    _check_kinds(saved, kinds, "its")
    if not 0 <= saved["seconds"] < math.inf:
        raise NotAResult(f"its 'seconds' is {shown(saved['seconds'])}, not a time")
    seeds = saved["seeds"]
    if not seeds or not all(type(seed) is int and valid_seed(seed) for seed in seeds) or \
            len(set(seeds)) < len(seeds):
        raise NotAResult(f"its 'seeds' are {shown(seeds)}, not distinct seeds")
    for option, entry in saved["data_files"].items():
        if option not in INPUTS:
            raise NotAResult(f"its data_files name {option!r}, not one of {', '.join(INPUTS)}")
        _check_kinds({option: entry}, {option: OBJECT}, "its data_files'")
        _check_kinds(entry, FILE_KEYS, f"its data_files' {option}")
        if entry["size"] < 0 or not isinstance(entry.get("sha256", ""), str):
            raise NotAResult(f"its data_files' {option} is {shown(entry)}")
    return saved


def _read_json(path):
    """A sweep's JSON file, which must be a regular file of at most MAX_SAVED_BYTES."""
    from fcnn_cli.core.fileio import read_regular

    try:
        return json.loads(read_regular(path, MAX_SAVED_BYTES, os.path.basename(path)))
    except FcnnError as e:
        raise NotAResult(str(e)) from None
    except (OSError, ValueError, RecursionError) as e:
        raise NotAResult(f"not readable JSON: {first_line(e)}") from None


def _check_kinds(saved, kinds, whose):
    for key, (kind, said) in kinds.items():
        value = saved.get(key)
        if key not in saved:
            raise NotAResult(f"{whose} has no {key!r}")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise NotAResult(f"{whose} {key!r} is {shown(value)}, not {said}")


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


def _failed_row(path):
    saved = _read_saved(path, FAILED_KEYS)
    return {"run": str(path.parent), **saved["combination"], "seeds": len(saved["seeds"]),
            "mode": FAILED, "seconds": saved["seconds"], "error": saved["error"]}, saved


def _told_apart(found):
    """The rows of ``found`` (row, its saved file), each with the options in which the rows
    differ beside its combination's values; NOT_DEFINING do not count."""
    described = [{**saved["data"], **saved["options"]} for _, saved in found]
    names = dict.fromkeys(k for options in described for k in options
                          if k not in NOT_DEFINING)
    differ = [name for name in names
              if len({_said(options.get(name, _default(name))) for options in described}) > 1]
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


def _rank(row):
    """Best first by the validation mean of the ranked metric; what has none goes last."""
    value = row.get(f"val_{row.get('metric')}_mean")
    if value is None or not math.isfinite(value):
        return math.inf
    return -value if row["metric"] in HIGHER_IS_BETTER else value


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
    writer.writerows({k: _short(v) if isinstance(v, list) else v for k, v in row.items()}
                     for row in rows)
    write_text(as_csv, text.getvalue())
    if plot:
        from fcnn_cli.results.plots import leaderboard_plot

        try:
            leaderboard_plot(rows, as_png)
        except FcnnError as e:
            log.warning("the leaderboard is written, but not its figure: %s", e)
