"""A table's columns for a network: which are labels and which features, as numbers, and
without the rows that lack a value."""

import dataclasses
import logging

from fcnn_cli.core.config import check_columns
from fcnn_cli.core.errors import FcnnError, listed, shown
from fcnn_cli.data.categories import MAX_LEVELS, few_and_short, is_categorical
from fcnn_cli.data.tables import Table

log = logging.getLogger(__name__)

MOSTLY_NUMERIC = 0.9  # share of values that parse as numbers for a text column to be a typo
FLATTEN = "; flatten it to one value per row (a ROOT jagged branch, a list column) first"
COMPLEX = "; write its real and imaginary parts (or its magnitude) as columns of their own"
WANTED = {"label": "numbers or class names", "feature": "numbers", "kept": "one value per row"}


def is_numeric(series):
    """Real numbers: not booleans, and not complex numbers, which a network's inputs and
    outputs cannot hold."""
    import pandas as pd

    return (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
            and series.dtype.kind != "c")


def select_columns(table, targets=None, features=None, weight=None, named=()):
    """Resolve which columns are labels and which are features.

    ``targets`` defaults to the labels recorded in the file. Features default to every other
    numeric column but ``weight`` (the events' weights: never a label, nor a feature unless
    named) and those the file records as ``aside`` (a simulated origin time, which no real
    table holds), and every column of at most MAX_LEVELS levels of text,
    booleans or a categorical dtype (:mod:`fcnn_cli.data.categories`); columns left over are
    dropped with a notice. Columns ``named`` categorical are features whatever their levels
    (the encoding refuses those of too many).
    Returns ``(features, targets)`` as lists of column names.
    """
    columns = list(table.frame.columns)
    targets = list(targets or table.targets)
    if not targets:
        raise FcnnError(f"{table.name}: no label column: name one with targets "
                        f"(columns: {_listing(columns)})", ("targets",))
    features = list(features or [])
    try:
        check_columns(targets, features)
    except FcnnError as e:
        raise FcnnError(f"{table.name}: {e}", e.options) from None
    _require(table, targets, "label")
    check_flat(table, targets, "label")
    if weight is not None:
        _require(table, [weight], "weight")
        if weight in targets:
            raise FcnnError(f"{table.name}: column {weight!r} cannot be both the label and the "
                            "events' weight", ("weight",))
    if features:
        _require(table, features, "feature")
        check_flat(table, features, "feature")
        for c in features:  # a typo in a column of numbers, not levels
            if not is_numeric(table.frame[c]):
                _refuse_mostly_numeric(table, c)
    else:
        aside = set(table.extra.get("aside", ()))
        rest = [c for c in columns if c not in targets and c != weight and c not in aside]
        for c in rest:
            if not is_numeric(table.frame[c]):
                _refuse_mostly_numeric(table, c)
        features = [c for c in rest if is_numeric(table.frame[c]) or c in named or
                    _of_levels(table.frame[c])]
        kept = set(features)
        dropped = [c for c in rest if c not in kept]
        if dropped:
            log.info("%s: leaving out column(s) %s: neither numbers nor of at most %d short "
                     "levels (--categorical takes one of more, with a learned embedding)",
                     table.name, _listing(dropped), MAX_LEVELS)
        if not features:
            raise FcnnError(f"{table.name}: no numeric feature columns besides the labels "
                            f"{_listing(targets)}")
    return features, targets


def _of_levels(series):
    """A column that a default feature list takes as categorical: text, booleans or a
    categorical dtype, one value a row, of at most MAX_LEVELS short levels."""
    return is_categorical(series) and not _nested(series) and few_and_short(series)


def check_flat(table, columns, role):
    """Refuse columns of lists or structs (nested Parquet columns, array branches and fields,
    object references): no label, no feature, and none kept in an output, which would hold
    their printed text cut short. Complex numbers are refused as labels and features."""
    for c in columns:
        kind = _nested(table.frame[c], complex_too=role != "kept")
        if kind:
            raise FcnnError(f"{table.name}: {role} column {c!r} holds {kind}, not "
                            f"{WANTED[role]}{_hint(kind)}")


def _hint(kind):
    return COMPLEX if kind.startswith("complex") else FLATTEN


def _nested(series, complex_too=True):
    """What a column of lists, structs, references or (with ``complex_too``) complex numbers
    holds ("lists of float64", "structs"), else None."""
    import numpy as np

    if series.dtype.kind == "V":  # a compound field of a compound HDF5 dataset
        return f"structs (fields {_listing(list(series.dtype.names or []), 4)})"
    if series.dtype.kind == "c":
        return f"complex numbers ({series.dtype})" if complex_too else None
    if series.dtype != object:
        return None
    present = series.notna().to_numpy()
    if not present.any():
        return None
    first = series.iloc[int(np.argmax(present))]
    if isinstance(first, dict):
        return f"structs (fields {_listing(list(first), 4)})"
    if isinstance(first, np.ndarray):
        return f"lists of {first.dtype}"
    if isinstance(first, (list, tuple)):
        return "lists"
    if type(first).__module__.startswith("h5py"):
        return f"HDF5 {type(first).__name__} objects"
    return None


def _refuse_mostly_numeric(table, column):
    """A column of numbers with a stray word is a typo, not a text column to leave out. One
    of numbers alone, stored as text (identifiers such as "00123"), is text: left out."""
    import pandas as pd

    series = table.frame[column].dropna()
    if series.empty or pd.api.types.is_bool_dtype(series):
        return
    numbers = pd.to_numeric(series.astype(str).str.strip(), errors="coerce").notna()
    if numbers.mean() >= MOSTLY_NUMERIC:
        bad = _first_non_numeric(table.frame[column])
        if bad is None:
            return
        raise FcnnError(f"{table.name}: column {column!r} holds numbers but not only: row "
                        f"{table.row(bad[0])} holds {shown(bad[1])}")


def _require(table, names, role):
    missing = [c for c in names if c not in table.frame.columns]  # an Index: looked up by hash
    if missing:
        raise FcnnError(f"{table.name}: no {role} column {_listing(missing)}; "
                        f"the table has {_listing(list(table.frame.columns))}")


def _listing(names, limit=12):
    return listed((repr(str(n)) for n in names), limit)


def numeric_matrix(table, columns, dtype="float32", finite=True):
    """The named columns as a float array; non-numeric or (unless not ``finite``) non-finite
    values are errors. Without ``finite``, missing values come as NaN, for the caller to fill."""
    import numpy as np

    if table.frame.empty:  # a header alone has no types to check
        return np.empty((0, len(columns)), dtype)
    _check_numeric(table, columns)
    if not finite:
        with np.errstate(over="ignore"):
            return _columns_as(table.frame, columns, dtype)
    # Straight to float32, one copy; a value beyond its range turns infinite, and only then is
    # the float64 original looked at, to tell such a value from a NaN or inf in the file.
    with np.errstate(over="ignore"):
        x = _columns_as(table.frame, columns, dtype)
        if np.isfinite(x.astype(np.float32, copy=False)).all():
            return x
    _refuse_non_finite(table, columns)


def numeric_rows(table, columns, rows, dtype="float32", consume=False, finite=True):
    """``[numeric_matrix(table, columns, finite=finite)[r] for r in rows]``, the same values
    and errors, filled column by column: never the whole matrix besides its parts. With
    ``consume`` the columns leave ``table`` (the caller hands the table over) and each is
    freed once converted, so that the table and the parts are never held whole side by side."""
    import numpy as np
    import pandas as pd

    if table.frame.empty:
        return [np.empty((0, len(columns)), dtype) for _ in rows]
    _check_numeric(table, columns)
    parts = [np.empty((len(r), len(columns)), dtype) for r in rows]
    left = _taken(table, columns) if consume else None
    for i, c in enumerate(columns):
        series = left.pop(c) if consume else table.frame[c]
        with np.errstate(over="ignore"):
            column = _as_numbers(series, dtype)
        if finite and not np.isfinite(column.astype(np.float32, copy=False)).all():
            if consume:  # those before are finite, and gone
                table = dataclasses.replace(table, frame=pd.DataFrame({c: series, **left}))
            _refuse_non_finite(table, columns[i:])
        for part, r in zip(parts, rows):
            part[:, i] = column[r]
    return parts


def _taken(table, columns):
    """The columns as a dict of Series, dropped from ``table`` all at once: deleting them one
    by one takes time quadratic in the frame's columns (pandas rebuilds its index of blocks
    at each)."""
    taken = {c: table.frame[c] for c in columns}
    table.frame = table.frame.drop(columns=columns)
    return taken


def _check_numeric(table, columns):
    import pandas as pd

    for c in columns:
        series = table.frame[c]
        if not is_numeric(series) and not pd.api.types.is_bool_dtype(series):
            kind = _nested(series)
            if kind:
                raise FcnnError(f"{table.name}: column {c!r} holds {kind}, not "
                                f"numbers{_hint(kind)}")
            bad = _first_non_numeric(series)
            where = f" (row {table.row(bad[0])}: {shown(bad[1])})" if bad else ""
            raise FcnnError(f"{table.name}: column {c!r} is not numeric{where}")


def _refuse_non_finite(table, columns):
    """Say which column holds NaN, infinite or (for float32) too large values."""
    import numpy as np

    x = table.frame[columns].to_numpy(dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.all():
        bad_rows = ~finite.all(axis=1)
        per_column = {c: int(n) for c, n in zip(columns, (~finite).sum(axis=0)) if n}
        col = next(iter(per_column))
        row = int(np.argmax(~finite[:, columns.index(col)]))
        counts = ", ".join(f"{c!r}: {n}" for c, n in list(per_column.items())[:6])
        raise FcnnError(f"{table.name}: {int(bad_rows.sum())} row(s) hold NaN, missing or "
                        f"infinite values ({counts}), first in column {col!r} at row "
                        f"{table.row(row)}; nan='drop' leaves such rows out", ("nan",))
    col = columns[int(np.argmax((np.abs(x) > np.finfo(np.float32).max).any(axis=0)))]
    raise FcnnError(f"{table.name}: column {col!r} holds values beyond float32 range "
                    f"(|x| > 3.4e38)")


def _columns_as(frame, columns, dtype):
    """``frame[columns].to_numpy(dtype)``, the same values, filled column by column: without
    the copy of the columns in their own type that selecting them first makes."""
    import numpy as np

    x = np.empty((len(frame), len(columns)), dtype)
    for i, c in enumerate(columns):
        x[:, i] = _as_numbers(frame[c], dtype)
    return x


def _as_numbers(series, dtype):
    """A column as a float array; a missing value of a nullable column (pandas' NA) as NaN."""
    import numpy as np

    if isinstance(series.dtype, np.dtype):
        return series.to_numpy(dtype=dtype)
    return series.to_numpy(dtype=dtype, na_value=np.nan)


def unlabelled(series):
    """Where a label column holds no value: null (NaN), or blank text, which is what an empty
    CSV cell of a text column is read as ("")."""
    import numpy as np
    import pandas as pd

    missing = series.isna().to_numpy().copy()
    if isinstance(series.dtype, pd.CategoricalDtype):  # its levels, not a text a row
        blank = series.cat.categories.astype(str).str.strip() == ""
        missing |= np.isin(series.cat.codes.to_numpy(), np.flatnonzero(blank))
    elif not is_numeric(series):
        missing |= series.astype(str).str.strip().eq("").to_numpy()
    return missing


def drop_incomplete(table, columns, piece=False, labels=()):
    """The table without rows that hold NaN, missing or infinite values in these columns (of
    ``labels`` blank text too: see :func:`unlabelled`). A ``piece`` of a larger table is
    dropped from quietly, down to no rows: its reader says what the whole lost."""
    import numpy as np

    frame = table.frame
    bad = np.zeros(len(frame), dtype=bool)
    counts = {}
    for c in columns:
        series = frame[c]
        missing = unlabelled(series) if c in labels else series.isna().to_numpy().copy()
        if is_numeric(series):
            missing |= ~np.isfinite(series.to_numpy(dtype=np.float64, na_value=np.nan))
        if missing.any():
            counts[c] = int(missing.sum())
            bad |= missing
    if not bad.any():
        return table
    detail = listed(f"{c!r}: {n}" for c, n in counts.items())
    if piece:
        return Table(frame[~bad].reset_index(drop=True), table.targets, table.units, table.name,
                     table.first_row, _file_rows(table)[~bad])
    log.warning("%s: leaving out %d row(s) with NaN, missing or infinite values (%s)",
                table.name, int(bad.sum()), detail)
    if bad.all():
        raise FcnnError(f"{table.name}: no rows left after leaving out those with NaN, missing "
                        f"or infinite values ({detail})")
    return keep_rows(table, ~bad)


def keep_rows(table, keep):
    """The table of the rows where ``keep`` (a boolean per row), each still named by its row
    in the file."""
    return Table(table.frame[keep].reset_index(drop=True), table.targets, table.units,
                 table.name, table.first_row, _file_rows(table)[keep], table.extra)


def _file_rows(table):
    import numpy as np

    if table.file_rows is not None:
        return table.file_rows
    return np.arange(table.first_row + 1, table.first_row + 1 + len(table.frame))


def _first_non_numeric(series):
    import numpy as np
    import pandas as pd

    converted = pd.to_numeric(series, errors="coerce")
    bad = converted.isna() & series.notna()
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        return i, series.iloc[i]
    return None
