"""The fold of a row in k-fold training, which training and the predictor both apply: from a
hash of a column's value (an event number), or of the row's position in its file with the seed.

Hashing, not drawing: an event number gives the same fold in every file, run and process, with
no list of rows to keep, so that a checkpoint can tell for any new table which of its networks
never saw a row. The hash of a value is the splitmix64 step of
:func:`fcnn_cli.engine.stream.split_of` (in the network wing, as the predictor needs it):

* integers (and booleans, as 0 and 1) by their 64-bit two's complement: ``-1`` and
  ``2**64 - 1`` share a fold;
* floating-point numbers that are whole as the integer they equal, so that an event number read
  as ``12345.0`` (a CSV column with a gap, a ROOT double) falls with ``12345``; other finite
  numbers by the bits of their float64;
* text that writes a finite number (``"12345"``, ``"007"``, ``"1.2e3"``) as that number: an
  event number stored as text in one file and as a number in another (Parquet against CSV)
  falls in one fold;
* anything else (text, dates) by the first 8 bytes of the BLAKE2b digest of its
  UTF-8 text (``str`` of the value), which no version of Python or pandas changes.
  A categorical column hashes as its values do.

A row without a value (NaN, null, infinite) has no fold: an error.

By position, the folds of a classification are stratified (``strata``, the label column): the
rows, in order of class and then of their position's hash, are dealt to the folds in turn, as
scikit-learn's StratifiedKFold deals them, so that every fold holds each class's share of the
table to one row, a rare class's included. A row's fold then depends on the other rows' classes:
it is reproduced from the same table, not from a row alone.
"""

import hashlib
from dataclasses import dataclass

import numpy as np

from fcnn_cli.core.config import MAX_FOLDS, valid_seed
from fcnn_cli.core.errors import FcnnError

GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment: 2**64 over the golden ratio
WHOLE = 2.0 ** 63  # floats below this in magnitude that are whole hash as integers


@dataclass(frozen=True)
class FoldRule:
    """``k`` folds, by the column ``by`` or (None) by row position with ``seed``, stratified
    by the classes of the label column ``strata`` where it is given (by position only)."""

    k: int
    by: str | None = None
    seed: int = 0
    strata: str | None = None

    def of_table(self, table, classes=None):
        """The fold (0 to k - 1, int64) of each row of a Table: by its column's values, or by
        its row's position in its file (unstratified, rows left out before do not move the
        others); a stratified rule deals the rows by ``classes``, each row's class of the
        label column ``strata`` (as training has them)."""
        if self.by is None:
            return self.of_positions(positions(table), None if self.strata is None else classes)
        if self.by not in table.frame.columns:
            raise FcnnError(f"{table.name}: no fold column {self.by!r}")
        return self.of_values(table.frame[self.by], table.name)

    def of_positions(self, rows, classes=None):
        """The fold of each row position; with ``classes`` (each row's), stratified."""
        z = np.asarray(rows, dtype=np.uint64) + np.uint64(self.seed * GOLDEN % 2**64)
        if classes is None:
            return _fold(splitmix64(z), self.k)
        return _dealt(splitmix64(z), np.asarray(classes), self.k)

    def of_values(self, series, name="<table>"):
        """The fold of each value of a pandas Series (see the module's rules)."""
        return _fold(splitmix64(value_keys(series, self.by, name)), self.k)

    def to_dict(self):
        """k, by and seed, and strata where the folds are stratified."""
        strata = {} if self.strata is None else {"strata": self.strata}
        return {"k": self.k, "by": self.by, "seed": self.seed, **strata}

    @classmethod
    def from_dict(cls, d):
        """The rule a checkpoint records, checked (a ValueError says what is wrong)."""
        if not isinstance(d, dict) or not {"k", "by", "seed"} <= set(d) <= \
                {"k", "by", "seed", "strata"}:
            raise ValueError("folds: not an object of k, by, seed and (optional) strata")
        k, by, seed, strata = d["k"], d["by"], d["seed"], d.get("strata")
        if type(k) is not int or not 2 <= k <= MAX_FOLDS:
            raise ValueError(f"folds: k is {k!r}, not a whole number from 2 to {MAX_FOLDS}")
        if by is not None and not (isinstance(by, str) and by):
            raise ValueError(f"folds: by is {by!r}, not a column name or null")
        if type(seed) is not int or not valid_seed(seed):
            raise ValueError(f"folds: seed is {seed!r}, not a seed")
        if strata is not None and not (isinstance(strata, str) and strata and by is None):
            raise ValueError(f"folds: strata is {strata!r}, not a label column (by position)")
        return cls(k, by, seed, strata)

    def describe(self):
        what = f"column {self.by!r}" if self.by else f"row position with seed {self.seed}"
        classes = f", stratified by {self.strata!r}" if self.strata else ""
        return f"{self.k} folds by {what}{classes}"


def positions(table):
    """Each row's 0-based data row in its file."""
    if table.file_rows is not None:
        return np.asarray(table.file_rows, dtype=np.int64) - 1
    return table.first_row + np.arange(len(table.frame), dtype=np.int64)


def splitmix64(z):
    """splitmix64 of uint64 values: the state step, then its finaliser (a bijection that
    spreads every input bit over every output bit)."""
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 on purpose
        z = z + np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _fold(h, k):
    """The top 53 bits of a hash as a number in [0, 1), times k: equal folds to 2**-53."""
    return ((h >> np.uint64(11)).astype(np.float64) * (k / 2.0 ** 53)).astype(np.int64)


def _dealt(hashes, classes, k):
    """Stratified folds: the rows in order of class, then of hash, dealt to the k folds in
    turn, so that each fold holds each class's rows to one and the table's to one."""
    _, codes = np.unique(classes, return_inverse=True)
    order = np.lexsort((hashes, codes.ravel()))
    fold = np.empty(len(order), dtype=np.int64)
    fold[order] = np.arange(len(order)) % k
    return fold


def value_keys(series, column, name):
    """The 64-bit key of each value that the fold is a hash of (the module's rules)."""
    import pandas as pd
    from pandas.api import types

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):  # as its values: missing ones become NaN
        return value_keys(pd.Series(np.asarray(series)), column, name)
    if types.is_bool_dtype(dtype) or types.is_integer_dtype(dtype):
        _no_missing(series.isna().to_numpy(), column, name)  # pandas' nullable integers
        kind = np.uint64 if types.is_unsigned_integer_dtype(dtype) else np.int64
        return series.to_numpy(dtype=kind).view(np.uint64)
    if types.is_float_dtype(dtype):
        return _float_keys(series.to_numpy(dtype=np.float64, na_value=np.nan), column, name)
    return _text_keys(series, column, name)


def _float_keys(x, column, name):
    _no_missing(~np.isfinite(x), column, name)
    whole = (np.floor(x) == x) & (np.abs(x) < WHOLE)
    keys = x.view(np.uint64).copy()
    keys[whole] = x[whole].astype(np.int64).view(np.uint64)
    return keys


def _text_keys(series, column, name):
    """Text by its number or BLAKE2b, each distinct value once."""
    import pandas as pd

    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    _no_missing(codes < 0, column, name)
    return np.array([_text_key(str(v)) for v in uniques], dtype=np.uint64)[codes]


def _text_key(text):
    """The key of the number ``text`` writes (as an integer or float column would give it),
    else the BLAKE2b digest of the text."""
    try:
        return int(text) % 2**64  # two's complement, as int64's view
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        number = np.nan
    if np.isfinite(number):
        return int(_float_keys(np.array([number]), None, None)[0])
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"),
                                          digest_size=8).digest(), "little")


class NoFold(FcnnError):
    """Rows without a value in the fold column: they have no fold."""


def _no_missing(missing, column, name):
    if missing.any():
        raise NoFold(f"{name}: {int(missing.sum())} row(s) have no value in the fold column "
                        f"{column!r} (NaN, empty or infinite): such a row has no fold")
