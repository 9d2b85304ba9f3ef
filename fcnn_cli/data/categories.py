"""Categorical features: a column of levels (text, booleans, a categorical dtype, or integers
named with ``--categorical``) as one-hot inputs of the network, or as one index input where
it has more levels than MAX_LEVELS.

A column's levels are the texts of the values training saw, sorted, then ``None`` where some
value was missing (missing is a level of its own). Each level is one input, named
``column='level'`` (the level's repr: quoted, control characters escaped), and one more input,
``column=<unknown>``, takes what training never saw, so that a new level is counted, not an
error and never a wrong index. Values compare as text: 11, 11.0 and "11" are one level.

A column of more than MAX_LEVELS levels (up to MAX_EMBEDDED) is one input, ``column=<index>``:
0 for the unknown level, then 1, 2, … for its levels in order, which the network's learned
embedding (:mod:`fcnn_cli.network.levels`) takes.
"""

import logging
from dataclasses import dataclass, field

from fcnn_cli.core.config import MAX_EMBEDDED
from fcnn_cli.core.errors import FcnnError, shown

log = logging.getLogger(__name__)

MAX_LEVELS = 64  # one-hot inputs of a column at most: beyond, one index input, embedded
MAX_TEXT = 100  # characters of a level at most: a longer text is a note, not a level
MISSING = "<missing>"
UNKNOWN = "<unknown>"
INDEX = "<index>"  # the one input of a column of more than MAX_LEVELS levels
SHOWN = 5  # levels a message or `fcnn info` shows of a column, the first in order


def is_categorical(series):
    """A column of levels by its type alone: text, booleans or a categorical dtype (not
    numbers, whose levels must be named)."""
    import pandas as pd

    return (pd.api.types.is_bool_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(series) or series.dtype == object)


def input_name(column, level):
    """The name of the network input of ``level`` (None: missing) of ``column``."""
    return f"{column}={MISSING if level is None else repr(level)}"


def is_unknown(name):
    """Whether a network input is the unknown level's of a categorical feature."""
    return name.endswith(f"={UNKNOWN}")


def is_index(name):
    """Whether a network input is the level's index of a categorical feature of many levels
    (which scaling leaves as it is)."""
    return name.endswith(f"={INDEX}")


def embedded(levels):
    """Whether a column of ``levels`` (None: missing) takes one index input, not one-hot ones."""
    return len(levels) - (None in levels) > MAX_LEVELS


def text(value):
    """A value as the level it is: its text, a whole float as an integer (11.0 is 11)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def factorized(series):
    """(each row's code, -1 where missing; the distinct values present)."""
    import pandas as pd

    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes, list(_texts(uniques))


def _texts(uniques):
    """The texts of a column's distinct values (pandas' factorize's), one at a time."""
    if getattr(uniques, "dtype", None) == "float32":  # its own shortest text: 0.1, not 0.1000…
        return (text(float(str(u))) for u in uniques.to_numpy())
    return map(text, uniques.tolist())  # numpy's scalars as Python's


def few_and_short(series):
    """Whether a column's levels can be one-hot inputs: at most MAX_LEVELS, none longer than
    MAX_TEXT characters."""
    return count_levels(series) <= MAX_LEVELS and \
        all(len(t) <= MAX_TEXT for t in factorized(series)[1])


def count_levels(series, bound=MAX_LEVELS):
    """The number of distinct levels of a column's present values, up to one past ``bound``:
    of their texts (11 and "11" are one), counted only where the values' own count, which no
    count of their texts exceeds, passes ``bound``, and no further than one past it, so that
    a million distinct values never make a million texts."""
    import pandas as pd

    values = int(pd.Series(series).nunique(dropna=True))
    if values <= bound:
        return values
    texts = set()
    for t in _texts(pd.factorize(series, use_na_sentinel=True)[1]):
        texts.add(t)
        if len(texts) > bound:
            break
    return len(texts)


@dataclass
class Categories:
    """The levels of each categorical feature column, in the order of the features."""

    levels: dict = field(default_factory=dict)  # column: sorted texts, then None if missing

    @classmethod
    def fit(cls, table, columns, named=()):
        """The levels of ``columns`` in ``table``; a column of more than MAX_EMBEDDED levels,
        or of one longer than MAX_TEXT, is refused naming --categorical where ``named`` holds it
        (a default feature list leaves such columns out before)."""
        levels = Levels(columns, named)
        levels.add(table, whole=True)
        return levels.categories()

    @property
    def columns(self):
        return list(self.levels)

    def names(self, column):
        """The inputs of ``column``: one per level, then the unknown level's; or its index's
        alone where it has more than MAX_LEVELS."""
        if embedded(self.levels[column]):
            return [f"{column}={INDEX}"]
        return [input_name(column, v) for v in self.levels[column]] + [f"{column}={UNKNOWN}"]

    def index_rows(self):
        """{index input: the rows of its embedding's table (its levels and the unknown)} of
        the columns of more than MAX_LEVELS levels."""
        return {f"{c}={INDEX}": len(v) + 1 for c, v in self.levels.items() if embedded(v)}

    def inputs(self, features):
        """``features`` with each categorical column replaced by its inputs, in place."""
        return [n for c in features for n in (self.names(c) if c in self.levels else [c])]

    def of_levels(self, inputs):
        """Whether each of ``inputs`` is a level's (0 or 1, or an index), not a number's."""
        names = {n for c in self.levels for n in self.names(c)}
        return [n in names for n in inputs]

    def raw(self, inputs):
        """The columns a table must have for the network's ``inputs``: each categorical
        column once, where its first input stands."""
        owner = {n: c for c in self.levels for n in self.names(c)}
        seen, columns = set(), []
        for n in inputs:
            c = owner.get(n, n)
            if c not in seen:
                seen.add(c)
                columns.append(c)
        return columns

    def encode(self, table, unseen=None):
        """``table`` with each categorical column replaced by its one-hot inputs (float32), or
        its index (float32, exact up to 2**24); rows of a level training never saw (or
        missing, where training saw none missing) go to the unknown input, or index 0, and
        are counted in ``unseen`` (an :class:`Unseen`)."""
        import dataclasses

        import numpy as np
        import pandas as pd

        frame, parts = table.frame, []
        for c, levels in self.levels.items():
            codes, uniques = factorized(frame[c])
            index = {v: i for i, v in enumerate(levels) if v is not None}
            unknown = len(levels)
            missing = levels.index(None) if None in levels else unknown
            # Each distinct value's input, and the last entry for code -1: missing.
            lut = np.array([index.get(u, unknown) for u in uniques] + [missing], np.int64)
            slot = lut[codes]
            if unseen is not None:
                unseen.add(c, codes[slot == unknown], uniques, missing == unknown)
            if embedded(levels):  # the unknown level first: index 0
                block = np.where(slot == unknown, 0, slot + 1).astype(np.float32)[:, None]
            else:
                block = np.zeros((len(frame), unknown + 1), np.float32)
                block[np.arange(len(frame)), slot] = 1.0
            # One block of the column's inputs, not a column each: pandas copies neither.
            parts.append(pd.DataFrame(block, index=frame.index, columns=self.names(c),
                                      copy=False))
        encoded = pd.concat([frame.drop(columns=self.columns), *parts], axis=1)
        return dataclasses.replace(table, frame=encoded)

    def to_dict(self):
        return {c: list(levels) for c, levels in self.levels.items()}

    @classmethod
    def from_dict(cls, d, features):
        """The categories of a checkpoint, read as untrusted input: each column's levels are
        distinct texts, sorted, at most MAX_EMBEDDED, then at most one None; its inputs stand
        among the model's ``features`` in order, unbroken."""
        _need(isinstance(d, dict), "categories are not a table of columns")
        for c, levels in d.items():
            _need(isinstance(levels, list) and len(levels) <= MAX_EMBEDDED + 1,
                  f"categories of {c!r}: not a list of at most {MAX_EMBEDDED} levels")
            texts = levels[:-1] if levels and levels[-1] is None else levels
            _need(len(texts) <= MAX_EMBEDDED and c not in features,
                  f"categories of {c!r}: more than {MAX_EMBEDDED} levels, or a feature of its "
                  "own")
            _need(all(isinstance(v, str) and len(v) <= MAX_TEXT for v in texts),
                  f"categories of {c!r}: levels are not texts of at most {MAX_TEXT} characters "
                  "and at most one missing")
            _need(texts == sorted(set(texts)), f"categories of {c!r}: levels are not distinct "
                  "and sorted")
        categories = cls({c: list(v) for c, v in d.items()})
        taken = set()
        for c in categories.levels:
            names = categories.names(c)
            _need(names[0] in features and
                  features[features.index(names[0]):][:len(names)] == names,
                  f"categories of {c!r}: its inputs are not among the features, in order")
            _need(taken.isdisjoint(names), f"categories of {c!r}: its inputs are another's")
            taken.update(names)
        return categories

    def describe(self, widths=None):
        """Each column's levels for people: how they enter the network (a column of
        ``widths``, {column: width}, embedded; any other one-hot), the first few, quoted, then
        the unknown level or, where there are more, how many in all. The levels are taken as
        they are: a caller that shows them on a terminal makes them printable first (quoting
        does not escape again what that escaped)."""
        widths = widths or {}
        return {c: ([f"embedded, {len(levels)} levels, dim {widths[c]}"] if c in widths
                    else ["one-hot"])
                + [MISSING if v is None else _quoted(v) for v in levels[:SHOWN]] +
                ["…" if c in widths else f"… ({len(levels)} levels)" if len(levels) > SHOWN
                 else UNKNOWN]
                for c, levels in self.levels.items()}


def _quoted(text, limit=40):
    """``text`` in quotes, cut short as :func:`~fcnn_cli.core.errors.shown` cuts a repr."""
    quoted = f"'{text}'"
    return quoted if len(quoted) <= limit else quoted[:limit - 3] + "..."


class Levels:
    """The levels of categorical columns gathered table by table (the pieces of a streamed
    source, or one table), bounded: a column is refused as soon as it has more than
    MAX_EMBEDDED levels or one longer than MAX_TEXT, so that a column of a million distinct
    values never holds more than one table's worth of them besides MAX_EMBEDDED."""

    def __init__(self, columns, named=(), by_type=()):
        self.texts = {c: set() for c in columns}
        self.missing = dict.fromkeys(columns, False)
        self.named = set(named)  # with --categorical, which a message then names
        self.by_type = set(by_type)  # taken by their type, named nowhere: one-hot at most

    def add(self, table, whole=False):
        """The levels of ``table``'s rows (``whole``: all the rows there are, so that a column
        refused has "more than" the bound, not "at least" what the pieces so far held). A
        column taken by its type takes one-hot inputs only (:meth:`_refuse_unnamed`)."""
        for c, texts in self.texts.items():
            series = table.frame[c]
            self._refuse_count(table.name, c, count_levels(series, MAX_EMBEDDED),
                               "more than" if whole else "at least")
            codes, uniques = factorized(series)
            longest = max(uniques, key=len, default="")
            if len(longest) > MAX_TEXT:
                raise FcnnError(f"{table.name}: categorical column {c!r} has a level of "
                                f"{len(longest)} characters ({shown(longest)}), longer than the "
                                f"{MAX_TEXT} a level may have; leave it out of --categorical "
                                "and --features", self._option(c))
            texts.update(uniques)
            self._refuse_count(table.name, c, len(texts), "at least")
            self._refuse_unnamed(table.name, c, len(texts))
            self.missing[c] = self.missing[c] or bool((codes < 0).any())

    def _refuse_unnamed(self, name, column, count):
        """A column taken as categorical by its type, named nowhere, past MAX_LEVELS levels: in
        memory it would be left out (its levels counted before it is chosen); a stream chose it
        by its first piece, and a later one passes the bound. Embedding it unasked would make
        a model that the same table in memory does not."""
        if count > MAX_LEVELS and column in self.by_type:
            raise FcnnError(f"{name}: column {column!r} has at least {count} levels, more than "
                            f"the {MAX_LEVELS} one-hot inputs of a column taken by its type; "
                            "name it with --categorical for a learned embedding, or leave it "
                            "out of --features", ("categorical",))

    def _refuse_count(self, name, column, count, said):
        """Refuse ``column`` past MAX_EMBEDDED levels: "more than" MAX_EMBEDDED where
        ``count`` stopped one past it, "at least" ``count`` where later pieces may add more."""
        if count > MAX_EMBEDDED:
            levels = MAX_EMBEDDED if said == "more than" else count
            raise FcnnError(f"{name}: categorical column {column!r} has {said} {levels} "
                            f"levels, past the {MAX_EMBEDDED} a column may take (one-hot up to "
                            f"{MAX_LEVELS}, a learned embedding beyond); leave it out of "
                            "--categorical and --features", self._option(column))

    def _option(self, column):
        return ("categorical",) if column in self.named else ("features",)

    def categories(self, missing=True):
        """The Categories of the levels gathered: each column's texts sorted, then None where
        a value was missing (and ``missing``: a missing value is a level)."""
        return Categories({c: sorted(texts) + ([None] if missing and self.missing[c] else [])
                           for c, texts in self.texts.items()})


class Unseen:
    """The rows of levels that training never saw, over a stream of tables: counted, with the
    first few values of each column, for one line at the end."""

    def __init__(self):
        self.rows, self.values = 0, {}

    def add(self, column, codes, uniques, missing_unknown):
        """The ``codes`` (of ``uniques``; -1: missing) of a column's rows given the unknown
        input; missing is unseen where ``missing_unknown``."""
        import numpy as np

        if not len(codes):
            return
        self.rows += len(codes)
        kept = self.values.setdefault(column, [])
        _, first = np.unique(codes, return_index=True)
        for i in codes[np.sort(first)][:SHOWN]:  # in the order they come
            value = MISSING if i < 0 and missing_unknown else shown(uniques[i])
            if len(kept) < SHOWN and value not in kept:
                kept.append(value)

    def say(self, name):
        """Log the one line of what was seen, if anything."""
        if not self.rows:
            return
        where = "; ".join(f"{c!r}: {', '.join(v)}" for c, v in self.values.items())
        log.warning("%s: %d row(s) of level(s) never seen in training, each given the "
                    "unknown level's input: %s", name, self.rows, where)


def encode_tables(tables, features, named=None, rows=None):
    """(the tables encoded, the network's inputs, the Categories or None) of training: the
    categorical ``features`` (``named`` with --categorical, and those of levels by type) of
    the first table fitted on its ``rows`` (the training split's; None: all), and each table
    (None: absent) encoded by them."""
    import dataclasses

    columns = categorical_columns(tables[0], features, named)
    if not columns:
        return tables, features, None
    fitted = tables[0] if rows is None else \
        dataclasses.replace(tables[0], frame=tables[0].frame.iloc[rows])
    categories = Categories.fit(fitted, columns, named or ())
    inputs = announce(categories, tables[0], features)
    encoded = []
    for table in tables:
        if table is not None:
            unseen = Unseen()
            table = categories.encode(table, unseen)
            unseen.say(table.name)
        encoded.append(table)
    return encoded, inputs, categories


def categorical_columns(table, features, named=None):
    """The categorical ones of ``features``: those ``named`` with --categorical, each of them
    a feature, and those of levels by their type in ``table`` (the first piece of a stream)."""
    # The scaling and the checkpoint know a categorical feature's inputs by these names.
    reserved = [c for c in features if is_index(c) or is_unknown(c)]
    if reserved:
        raise FcnnError(f"{table.name}: column {reserved[0]!r} is named as fcnn names a "
                        "categorical feature's input; rename it")
    named = list(named or ())
    outside = [c for c in named if c not in features]
    if outside:
        raise FcnnError(f"--categorical {outside[0]!r}: not a feature column of "
                        f"{table.name}", ("categorical",))
    return [c for c in features if c in named or is_categorical(table.frame[c])]


def announce(categories, table, features):
    """The network's inputs of ``features`` under ``categories``, said in one line; an input's
    name that is also a column of ``table`` is refused."""
    inputs = categories.inputs(features)
    clash = [n for c in categories.levels for n in categories.names(c)
             if n in table.frame.columns]
    if clash:
        raise FcnnError(f"{table.name}: column {clash[0]!r} is also the name of a "
                        "categorical feature's input; rename it")
    count = len(inputs) - len(features) + len(categories.levels)
    log.info("%s: categorical feature(s) %s (%d input%s)", table.name,
             ", ".join(f"{c!r} ({len(v)} levels, "
                       f"{'a learned embedding' if embedded(v) else 'one-hot'})"
                       for c, v in categories.levels.items()), count, "" if count == 1 else "s")
    return inputs


def _need(ok, what):
    if not ok:
        raise FcnnError(what)
