"""A sweep's grid: which options it takes and of what type, read from ``--grid`` items and
grid files, its combinations counted before they are made, and each combination's key.

A grid maps option names (the fields of NetConfig and TrainConfig, as in configuration files)
to lists of values; the combinations are their product, in the order the grid gives its keys
and values. Each combination trains ``seeds`` times, with seeds ``seed``, ``seed + 1``, ….

The data options are given once for all combinations (the recipe's samples and objects too),
but for a recipe's selection, weight and definitions (``where``, ``weight``, ``define``), which a
grid may vary (:mod:`fcnn_cli.sweeps.datasets`). A combination's run directory, inside the sweep
directory, is named by its options and a hash of everything that defines its result
(:meth:`Sweep.key`).
"""

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import re
import tomllib

from fcnn_cli.core.config import (MADE_BY_DATA, DataConfig, NetConfig, TrainConfig, Unsupported,
                                  option_fields, typed)
from fcnn_cli.core.errors import FcnnError, shown
from fcnn_cli.sweeps.datasets import VARIED, check, data_options, normalized, recipe_of

# Options a sweep sets itself, and why.
SEEDS = "the seeds are given by seeds= (each combination trains seed, seed + 1, …)"
SPEED_ONLY = "it changes how fast a combination trains, not what: give it once for all"
NOT_IN_GRID = {"seed": SEEDS, "ensemble": SEEDS,
               "stream": "a sweep reads its tables into memory once for all combinations",
               "threads": SPEED_ONLY, "device": SPEED_ONLY}
NET_FIELDS = {f.name for f in option_fields(NetConfig)}
DATA_FIELDS = {f.name for f in option_fields(DataConfig)}
GRID_FIELDS = {f.name: f for cls in (NetConfig, TrainConfig, DataConfig)
               for f in option_fields(cls)
               if f.name not in NOT_IN_GRID and (f.name not in DATA_FIELDS or f.name in VARIED)}
ALL_FIELDS = {f.name: f for cls in (DataConfig, NetConfig, TrainConfig) for f in option_fields(cls)}
# Options that change where and how fast a combination trains, not what it trains to (a device
# or thread count changes float rounding alone): a rerun that names them otherwise finds the
# combination finished, and the leaderboard does not tell rows apart by them.
NOT_DEFINING = ("threads", "device")
# A grid's combinations are counted before they are made: each is at least one training run,
# and planning alone takes seconds per ten thousand. One list is bounded by the same number
# before its values are read.
MAX_COMBINATIONS = 10_000


@dataclasses.dataclass
class Sweep:
    """What a sweep trains: ``data`` the DataConfig options (data, targets, features, val,
    test, and a recipe's samples, objects, definitions, selection and weight), ``fixed`` the
    options every combination takes, ``grid`` {option: [values]} (of a recipe's selection,
    weight and definitions too); ``grid_file`` the file the grid was read from, if any: an
    input, never written over; ``from_file`` the grid's keys that file gave (not --grid)."""

    data: dict
    fixed: dict
    grid: dict
    seeds: int = 1
    grid_file: str | None = None
    from_file: tuple = ()

    def __post_init__(self):
        # Absolute, as fcnn train records them: the key and the runs' config.toml name the
        # same files whatever the directory the sweep was started from.
        self.data = normalized(self.data)
        for key in self.fixed:
            if key not in ("seed", *NOT_DEFINING):
                _grid_field(key, "option")
        if not 1 <= self.seeds <= 1024:
            raise FcnnError(f"seeds must be between 1 and 1024, not {self.seeds}", ("seeds",))
        for key in self.grid:
            if key in self.fixed or self.data.get(key) is not None:
                raise FcnnError(f"{key} is both fixed and in the grid; give it once",
                                (key, "grid"))
            _refuse_repeats(key, self.grid[key])
        _refuse_too_many(self.grid)
        recipes = {}
        for combination in combinations(self.grid):
            # A bad value (or a last seed out of range) fails now, not after hours; options
            # that take no ensemble train their seeds one by one.
            try:
                try:
                    config, _ = train_config(self, combination, ensemble=self.seeds)
                except Unsupported:  # raised after TrainConfig's other checks, before NetConfig's
                    config, _ = train_config(self, combination)
            except FcnnError as e:
                raise self.named(e, combination) from None
            _check_data(data_options(self.data, combination), config, recipes)

    def source(self, keys):
        """Where the grid's ``keys`` were given, as a message begins with it, and the options
        that beginning names: the grid file's [grid] where it gave them all, else --grid."""
        if set(keys) <= set(self.from_file):
            return f"{self.grid_file}: [grid]", ()
        return "grid:", ("grid",)

    def named(self, error, combination):
        """``error``, a refusal of ``combination``'s options, naming the grid's values it
        refuses (a pair no combination may hold: task=regress with best_by=brier) where it
        was given them, not as the options it names were given once for all; a value the
        message says already is not said twice."""
        keys = [k for k in combination if k in error.options]
        if not keys:
            return error
        where, options = self.source(keys)
        unsaid = ", ".join(v for v in (f"{k}={short(combination[k])}" for k in keys)
                           if not re.search(rf"(?<![\w.]){re.escape(v)}(?![\w.])", str(error)))
        return FcnnError(f"{where} {unsaid + ': ' if unsaid else ''}{error}",
                         (*options, *(o for o in error.options if o not in keys)))

    def key(self, combination):
        """The name of a combination's run directory: its values, then a hash of all that
        defines its runs: the data options, every option of the combination with the defaults
        filled in (an option typed as its default is the one left out) but NOT_DEFINING, and
        the number of seeds."""
        # Keys in order of their names: the grid's order (a command line's) names no other run.
        text = "_".join(f"{k}={short(v)}" for k, v in sorted(combination.items())) or "fixed"
        text = re.sub(r"[^A-Za-z0-9=.,+-]+", "-", text)[:80]
        defined = said([data_options(self.data, combination),
                        defined_options(self, combination), self.seeds])
        return f"{text}-{hashlib.sha256(defined.encode()).hexdigest()[:10]}"


def defined_options(sweep, combination):
    """Every NetConfig and TrainConfig option of a combination, defaults filled in, but those
    that do not change its result (NOT_DEFINING)."""
    config, net = train_config(sweep, combination)
    options = {**dataclasses.asdict(config), **NetConfig(n_in=1, n_out=1, **net).to_dict(),
               # as given: left out, training takes the task's default (not NetConfig's)
               "dropout": net.get("dropout")}
    return {k: v for k, v in options.items() if k not in (*NOT_DEFINING, *MADE_BY_DATA)}


def _check_data(options, config, recipes):
    """Refuse a combination's data options as ``fcnn train`` refuses them, before any table
    is read: every expression parsed, the samples and the task checked. ``recipes``: those of
    the data options seen so far, each parsed once."""
    seen = said(options)
    if seen not in recipes:
        recipes[seen] = recipe_of(options)
    check(options, config, recipes[seen])


def said(value):
    """A value as JSON says it: what tells values apart, and a saved one from a given one."""
    return json.dumps(value, sort_keys=True, default=str)


def short(value):
    """A grid value as a key, a message or a CSV cell shows it: a list as ``1,2``."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _refuse_repeats(key, values):
    """Refuse a value given twice (as typed: 1e-3 and 0.001 are one): it would name one run
    directory trained twice over."""
    seen = set()
    for value in values:
        text = said(value)
        if text in seen:
            raise FcnnError(f"grid {key}: the value {short(value)} is given twice; give each "
                            "value once", ("grid",))
        seen.add(text)


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


def parse_grid(items):
    """``["depth=3,10", "arch=plain,resnet"]`` as {option: [values]}, each value read as a
    configuration file's (a TOML value; a bare word is a name) and of its option's type. The
    values are split at the commas outside brackets and quotes (``where=hypot(px, py) > 20``
    is one value); a TOML array as a whole, ``where=["x > 1", "x > 2"]``, is the list of
    values, as a grid file's list is."""
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
        array = _toml_array(values)
        texts = array if array is not None else _split(values)
        _refuse_long(texts, f"grid {key}", ("grid",))
        grid[key] = [_typed(field, text if array is not None else _toml_value(text.strip()))
                     for text in texts]
    return grid


def _toml_array(text):
    """The values of ``text`` where it is one TOML array, else None."""
    if not text.strip().startswith("["):
        return None
    value = _toml_value(text.strip())
    return value if isinstance(value, list) else None


def _split(text):
    """``text`` split at its commas outside brackets and quotes (TOML's strings, the back
    quotes of a column name in an expression): an expression's function calls, and a TOML
    array, stay one value each."""
    parts, depth, quote, start = [], 0, None, 0
    for at, char in enumerate(text):
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            parts.append(text[start:at])
            start = at + 1
    return [*parts, text[start:]]


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
    if field.name == "define" and isinstance(value, str):
        value = [value]  # one definition: a list of one
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


def combinations(grid):
    """Every combination of the grid's values as {option: value}: the product in the order
    of the grid's keys, the last key changing fastest."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def seeds_of(sweep, config):
    """The seeds a combination trains: its members'
    (:func:`fcnn_cli.engine.ensemble.member_seed`)."""
    from fcnn_cli.engine.ensemble import member_seed

    return [member_seed(config.seed, k) for k in range(sweep.seeds)]


def train_config(sweep, combination, **changes):
    """The TrainConfig and the network options of a combination (its data options are
    :func:`fcnn_cli.sweeps.datasets.data_options`). A sweep's members are its seeds: a seed
    trained alone is one network, whatever the table's size."""
    options = {k: v for k, v in {**sweep.fixed, **combination}.items() if k not in DATA_FIELDS}
    net = {k: v for k, v in options.items() if k in NET_FIELDS}
    config = TrainConfig(**{k: v for k, v in options.items() if k not in NET_FIELDS},
                         **{"ensemble": 1, **changes})
    NetConfig(n_in=1, n_out=1, **net)
    return config, net
