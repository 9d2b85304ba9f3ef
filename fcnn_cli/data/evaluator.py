"""Running a parsed expression (``expressions``) on whole columns of a table with numpy: the
operators and functions it may call, the columns as float64 and list columns (jagged ROOT
branches, Parquet lists) as offsets and values, so that ``Muon_Px[0]`` or ``len(Muon_Px)`` is a
few numpy operations however many rows, never a Python step per row.

A program is the expression in postfix order: a list of ``(kind, argument, position)``; it
runs on a stack, so that no expression, however long, recurses in Python. A comparison of a
column with text (``region == 'barrel'``, ``region in ('barrel', 'endcap')``) is one step,
"text", which reads the column's values as texts, as categorical features take them
(:func:`fcnn_cli.data.categories.text`: 11, 11.0 and "11" are "11")."""

import functools
from typing import NamedTuple

from fcnn_cli.core.errors import listed

# The functions an expression may call: name -> (numpy's function, number of arguments).
# Strings, so that parsing needs no numpy; nothing outside this table can be called.
FUNCTIONS = {
    "abs": ("absolute", 1), "sqrt": ("sqrt", 1), "exp": ("exp", 1), "log": ("log", 1),
    "log10": ("log10", 1), "sin": ("sin", 1), "cos": ("cos", 1), "tan": ("tan", 1),
    "arcsin": ("arcsin", 1), "arccos": ("arccos", 1), "arctan": ("arctan", 1),
    "arctan2": ("arctan2", 2), "sinh": ("sinh", 1), "cosh": ("cosh", 1), "tanh": ("tanh", 1),
    "hypot": ("hypot", 2), "minimum": ("minimum", 2), "maximum": ("maximum", 2),
    "clip": ("clip", 3), "where": ("where", 3), "isnan": ("isnan", 1),
    "fmin": ("fmin", 2), "fmax": ("fmax", 2),
}
# Those that take their number of arguments or more: numpy's function of two folded over them
# left to right. fmin and fmax skip NaN (NaN only where every argument is): the earliest of
# several arrival times some of which are missing.
FOLDED = ("fmin", "fmax")
REDUCERS = ("len", "sum", "max", "min")  # of one list column, by name
COMPARISONS = {"<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal",
               "==": "equal", "!=": "not_equal"}
ARITHMETIC = {"+": "add", "-": "subtract", "*": "multiply", "/": "true_divide",
              "%": "remainder", "**": "power"}
UNARY = {"-": "negative", "+": "positive"}
POWERS = {2.0: "square", 0.5: "sqrt"}  # the powers numpy's ** computes by these, faster
LIST_HINT = "index it, e.g. {0}[0], or reduce it with len/sum/max/min, e.g. len({0})"


class Refused(Exception):
    """A problem at a character of an expression: ``position`` (0-based) and ``problem``;
    the caller names the expression."""

    def __init__(self, position, problem):
        super().__init__(problem)
        self.position, self.problem = position, problem


class Lists(NamedTuple):
    """A list column: row i holds ``values[offsets[i]:offsets[i + 1]]`` (float64)."""
    offsets: object
    lengths: object
    values: object


def run(program, columns):
    """The value of ``program`` on ``columns`` (a :class:`Columns`): a float64 or bool array
    of one value per row, its own (never a column of the frame)."""
    import numpy as np

    # (value, whether this run made it): an array made here is written over by the operation
    # that takes it, as numpy reuses the temporaries of a + b * c, instead of a new array
    # (and its pages) for each step.
    stack = []
    with np.errstate(all="ignore"):  # 1/0 is inf and sqrt(-1) nan, as in numpy, silently
        for kind, argument, position in program:
            if kind == "number":
                stack.append((np.float64(argument), False))
            elif kind == "column":
                stack.append((columns.numbers(argument, position), False))
            elif kind == "item":
                lists = columns.lists(argument[0], position)
                stack.append((_item(lists, argument[1]), True))
            elif kind == "reduce":
                stack.append((_reduced(columns.lists(argument[1], position), argument[0]), True))
            elif kind == "text":
                stack.append((_texts_in(columns.texts(argument[0], position), *argument[1:]),
                              True))
            else:
                count = arity(kind, argument)
                arguments = stack[len(stack) - count:]
                del stack[len(stack) - count:]
                stack.append((_apply(kind, argument, arguments), True))
    ((value, made),) = stack
    if np.ndim(value) == 0:  # no column read: the same value on every row
        return np.full(columns.rows, value)
    return value if made else value.copy()


def arity(kind, argument):
    """How many values of the stack an operation of a program takes."""
    if kind in ("number", "column", "item", "reduce", "text", "literal"):
        return 0
    return argument[1] if kind == "call" else 1 if kind in ("unary", "isin") else 2


def _texts_in(column, texts, negated):
    """Whether each row's text (``column``: codes, -1 where missing, and the distinct texts)
    is one of ``texts`` (``negated``: is none of them; a missing value is none)."""
    import numpy as np

    codes, uniques = column
    hit = np.append(np.isin(np.asarray(uniques, dtype=object), list(texts)), False)[codes]
    return ~hit if negated else hit


def fold(kind, argument, values):
    """One operation of a program on constants (numpy scalars), as :func:`run` computes it: for
    a translation of a program to other operations, which computes its constant parts so."""
    import numpy as np

    with np.errstate(all="ignore"):
        return _apply(kind, argument, [(value, False) for value in values])


def _apply(kind, argument, arguments):
    import numpy as np

    values = [value for value, _ in arguments]
    if kind == "call" and argument[0] == "where":
        return np.where(_truth(values[0]), _number(values[1]), _number(values[2]))
    if kind == "call" and argument[0] == "isnan":
        return np.isnan(_number(values[0]))
    if kind == "call" and argument[0] in FOLDED:
        return functools.reduce(getattr(np, FUNCTIONS[argument[0]][0]), map(_number, values))
    if argument in ("and", "or"):
        return getattr(np, f"logical_{argument}")(*map(_truth, values))
    if argument in ("not", "!"):
        return np.logical_not(_truth(values[0]))
    values = [_number(value) for value in values]
    if argument == "??":
        return np.where(np.isnan(values[0]), values[1], values[0])
    if kind == "isin":
        return np.isin(values[0], argument)
    if argument in COMPARISONS:
        return getattr(np, COMPARISONS[argument])(*values)
    name = FUNCTIONS[argument[0]][0] if kind == "call" else UNARY[argument] \
        if kind == "unary" else ARITHMETIC[argument]
    if argument == "**" and np.ndim(values[1]) == 0 and values[1] in POWERS:
        name, values = POWERS[values[1]], values[:1]  # numpy's a ** 2 and a ** 0.5
    out = next((value for value, made in arguments if made and value.dtype == np.float64
                and np.ndim(value)), None)
    return getattr(np, name)(*values) if out is None else getattr(np, name)(*values, out=out)


def _number(value):
    """Booleans as 0 and 1: arithmetic on a comparison counts."""
    import numpy as np

    return value.astype(np.float64) if value.dtype == bool else value


def _truth(value):
    """Numbers as truth values as in C and numpy: true unless 0 (NaN is true)."""
    return value if value.dtype == bool else value != 0


def _item(lists, i):
    """Element ``i`` of each row's list (from the end where negative), NaN where the row has
    no such element."""
    import numpy as np

    out = np.full(len(lists.lengths), np.nan)
    has = lists.lengths > i if i >= 0 else lists.lengths >= -i
    out[has] = lists.values[(lists.offsets[:-1] if i >= 0 else lists.offsets[1:])[has] + i]
    return out


def _reduced(lists, name):
    """len, sum, max or min of each row's list: of an empty list 0, 0, NaN and NaN."""
    import numpy as np

    if name == "len":
        return lists.lengths.astype(np.float64)
    out = np.zeros(len(lists.lengths)) if name == "sum" else np.full(len(lists.lengths), np.nan)
    has = lists.lengths > 0
    if has.any():
        # Each non-empty list reduced from its start to the next non-empty list's start: the
        # empty ones between hold nothing.
        ufunc = {"sum": np.add, "max": np.maximum, "min": np.minimum}[name]
        out[has] = ufunc.reduceat(lists.values, lists.offsets[:-1][has])
    return out


class Columns:
    """A frame's columns as an expression reads them: numbers as float64 and list columns as
    :class:`Lists`, each converted once however often read; ``made`` holds the columns that
    definitions made (float64), read before the frame's."""

    def __init__(self, frame):
        self.frame, self.rows, self.made = frame, len(frame), {}
        self._numbers, self._lists, self._texts = {}, {}, {}

    def names(self):
        return [*self.frame.columns, *self.made]

    def numbers(self, name, position):
        if name in self.made:
            return self.made[name]
        if name not in self._numbers:
            self._numbers[name] = _as_numbers(self._series(name, position), name, position)
        return self._numbers[name]

    def texts(self, name, position):
        """(each row's code, -1 where missing; the distinct values as texts) of a column."""
        import pandas as pd

        from fcnn_cli.data.categories import factorized

        if name not in self._texts:
            series = pd.Series(self.made[name]) if name in self.made else \
                self._series(name, position)
            if is_list_column(series):
                raise Refused(position, f"column {name!r} holds a list a row, not one value: "
                                        "it cannot be compared with text")
            self._texts[name] = factorized(series)
        return self._texts[name]

    def lists(self, name, position):
        if name not in self._lists:
            if name in self.made:
                raise Refused(position, f"{name!r} is a number a row, not a list: "
                                        "it cannot be indexed or reduced")
            self._lists[name] = _as_lists(self._series(name, position), name, position)
        return self._lists[name]

    def _series(self, name, position):
        if name not in self.frame.columns:
            hint = suggestion(name, self.names())
            raise Refused(position, f"no column {name!r}{f' ({hint})' if hint else ''}; "
                                    f"the table has {listing(self.names())}")
        series = self.frame[name]
        if getattr(series, "ndim", 1) != 1:
            raise Refused(position, f"the table has several columns named {name!r}")
        return series


def is_list_column(series):
    """Whether a column holds a list a row: arrays or lists (ROOT jagged or array branches,
    Parquet lists as pandas reads them) or an Arrow list type."""
    import numpy as np

    arrow = getattr(series.dtype, "pyarrow_dtype", None)
    if arrow is not None:
        import pyarrow as pa

        return pa.types.is_list(arrow) or pa.types.is_large_list(arrow) or \
            pa.types.is_fixed_size_list(arrow)
    if series.dtype != object or not len(series):
        return False
    cells = series.to_numpy()
    first = cells[0]
    if first is None or isinstance(first, float):  # a missing list: look for the first one
        present = series.notna().to_numpy()
        first = cells[int(np.argmax(present))]
    return isinstance(first, (np.ndarray, list, tuple))


def _as_numbers(series, name, position):
    import numpy as np

    if is_list_column(series):
        raise Refused(position, f"column {name!r} holds a list a row, not a number: "
                                + LIST_HINT.format(name))
    if series.dtype.kind == "c":
        raise Refused(position, f"column {name!r} holds complex numbers, not real ones")
    try:
        if isinstance(series.dtype, np.dtype):
            return series.to_numpy(dtype=np.float64)  # float64 columns as they are, uncopied
        return series.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable, Arrow
    except (TypeError, ValueError):
        raise Refused(position, f"column {name!r} holds {_kind(series)}, not numbers") from None


def _as_lists(series, name, position):
    if not is_list_column(series):
        raise Refused(position, f"column {name!r} holds one number a row, not a list: use it "
                                "without [ ] and len/sum/max/min")
    try:
        if getattr(series.dtype, "pyarrow_dtype", None) is not None:
            return _arrow_lists(series)
        return _object_lists(series)
    except (TypeError, ValueError):
        raise Refused(position, f"column {name!r} holds lists of something other than "
                                "single numbers") from None


def _object_lists(series):
    """The lists of an object column of arrays (how uproot's ``library="np"`` and pandas give
    jagged branches and Parquet lists); a missing list (None) is empty."""
    import numpy as np
    import pandas as pd

    cells = series.to_numpy()
    try:
        lengths = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    except TypeError:  # a missing list (None or NaN), which has no length: empty
        present = ~pd.isna(cells)
        cells = cells[present]
        lengths = np.zeros(len(present), dtype=np.int64)
        lengths[present] = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    values = np.concatenate(cells).astype(np.float64, copy=False) if len(cells) else \
        np.empty(0)
    if values.ndim != 1 or len(values) != lengths.sum():
        raise ValueError("nested lists")
    return _with_offsets(lengths, values)


def _arrow_lists(series):
    """The lists of a pandas column of an Arrow list type; a null list is empty, a null
    element NaN."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow = pa.chunked_array(series.array.__arrow_array__()).combine_chunks()
    lengths = pc.list_value_length(arrow).fill_null(0).to_numpy().astype(np.int64)
    values = arrow.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    return _with_offsets(lengths, values)


def _with_offsets(lengths, values):
    import numpy as np

    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Lists(offsets, lengths, values)


def _kind(series):
    if series.dtype == object:
        present = series.dropna()
        return f"{type(present.iloc[0]).__name__} values" if len(present) else "no values"
    return f"{series.dtype} values"


def suggestion(name, names):
    """"did you mean …?" of the one of ``names`` closest to ``name``; "" for none close."""
    import difflib

    close = difflib.get_close_matches(name, [str(n) for n in names], n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def listing(names, limit=8):
    """``names`` quoted, the first ``limit`` of them and how many in all."""
    return listed((repr(str(n)) for n in names), limit) or "no columns"
