"""The physicists' own table formats beside CSV and Parquet: ROOT trees, HDF5 and FITS tables.

Each module here offers the same small interface, which ``tables`` dispatches to by suffix:

* ``opened(path, selector, name)``: a context manager giving a :class:`Source` of the table that
  ``selector`` (the part after ``file:``, or ``None``) picks in the file; ``name`` is how
  messages refer to it;
* ``Source.blocks(rows)``: the table as pandas DataFrames of at most ``rows`` rows, so that a
  file of any length streams through bounded memory (a whole read is one block of all rows);
* ``Writer(path, name, metadata)``: writes DataFrames, block by block, with ``write(frame)``;
  ``close()`` finishes the file. ``path`` is the temporary file of ``fileio.atomic_path``.

Each format's library is an optional extra, imported only when such a file is opened.
"""

import collections
import contextlib
import importlib
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable

from fcnn_cli.core.errors import FcnnError, first_line, size_text

# format: (its module's library, the extra that installs it, the format's name in messages)
LIBRARIES = {"root": ("uproot", "root", "ROOT"),
             "hdf5": ("h5py", "hdf5", "HDF5"),
             "fits": ("astropy", "fits", "FITS")}
# A table may declare at most this many times its file's size in bytes (compressed, an HDF5
# dataset's unwritten chunks), and this many bytes whatever the file's size: beyond both, it is
# damaged or a decompression bomb, which would take memory and time without bound.
MAX_UNPACKED = 100
UNPACKED_ANYWAY = 64 << 20


@dataclass
class Source:
    """A table in a file, ready to be read block by block."""
    blocks: Callable  # rows -> iterator of pandas DataFrames
    rows: int  # how many rows the file says it holds
    fcnn: str | None = None  # fcnn's metadata as JSON text, where the file holds it
    units: dict = field(default_factory=dict)  # units the format itself records per column


def module(fmt):
    """The module that reads and writes ``fmt``."""
    return importlib.import_module(f"{__name__}.{fmt}")


def library(fmt, name):
    """Import the library of ``fmt``; without it, one line names the extra to install."""
    package, extra, what = LIBRARIES[fmt]
    try:
        return importlib.import_module(package)
    except ImportError:
        raise FcnnError(f"{name}: {what} files need the {package} package: "
                        f"pip install 'fcnn[{extra}]'") from None


@contextlib.contextmanager
def reading(name, what, plainly=()):
    """A reader's failure on a damaged or foreign file becomes one line naming the file. The
    libraries raise many kinds of exception on hostile bytes (struct, zlib, index, key and
    value errors among them), so all but fcnn's own are caught here, at the boundary.
    ``plainly`` holds (start of the library's message, what to say instead) pairs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy's and h5py's notes on odd files
            yield
    except FcnnError:
        raise
    except MemoryError:
        raise FcnnError(f"{name}: not a readable {what} file: it claims more memory than "
                        "there is") from None
    except ImportError as e:  # a compression codec the file uses, missing
        raise FcnnError(f"{name}: {first_line(e, 160)}") from None
    except PermissionError as e:
        raise FcnnError(f"{name}: cannot read: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - see the docstring
        said = first_line(e, 160)
        said = next((instead for start, instead in plainly if said.startswith(start)), said)
        raise FcnnError(f"{name}: not a readable {what} file: {said}") from None


def check_unpacked(name, what, declared, path, instead=None):
    """Refuse a file that declares ``what`` (``declared`` bytes) beyond the bounds above;
    ``instead`` says how to read such a file if it is sound."""
    size = os.path.getsize(path)
    if declared > max(UNPACKED_ANYWAY, MAX_UNPACKED * size):
        raise FcnnError(f"{name}: truncated or inconsistent: it declares {what} "
                        f"({size_text(declared)}), over {MAX_UNPACKED} times the {size:,} bytes "
                        "of the file" + (f"; {instead}" if instead else ""))


def metadata_text(value, name, where):
    """fcnn's metadata from a format's own field (``where`` names it): a JSON object as
    text, which fcnn writes; other text there is someone else's (a title, a version note) and
    is left alone, but a value that is not text at all is refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise FcnnError(f"{name}: malformed fcnn metadata: {where} holds "
                        f"{type(value).__name__} {value!r:.40}, not text")
    return value if value.lstrip().startswith("{") else None


def column_values(series):
    """A column as a writer stores it: numbers and booleans as they are, anything else as
    text (a missing value as empty text)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or (pd.api.types.is_numeric_dtype(series) and not
                                              isinstance(series.dtype, pd.CategoricalDtype)):
        values = series.to_numpy()
        if values.dtype == object:  # a nullable integer or boolean column with gaps
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return values
    text = series.astype(object).where(series.notna(), "")
    return text.map(str).to_numpy(dtype=object)


def named_columns(frame, name, what):
    """The frame's columns by name, as writers store them; these formats hold each name once."""
    names = [str(c) for c in frame.columns]
    twice = sorted(c for c, n in collections.Counter(names).items() if n > 1)
    if twice:
        raise FcnnError(f"{name}: column(s) {', '.join(map(repr, twice))} appear twice, which a "
                        f"{what} file cannot hold")
    return {c: column_values(frame.iloc[:, i]) for i, c in enumerate(names)}


def frame_of(columns):
    """A DataFrame of named 1-D arrays; a column of arrays of several values per row (a fixed
    or jagged array branch, a vector column) becomes a column of arrays, which fcnn refuses
    by name where numbers are needed."""
    import numpy as np
    import pandas as pd

    data = {}
    for name, values in columns.items():
        values = np.asarray(values)
        if values.ndim > 1:
            values = _rows_of(values)
        elif values.dtype.kind == "U":
            values = values.astype(object)
        data[name] = values
    return pd.DataFrame(data, copy=False)


def _rows_of(values):
    import numpy as np

    rows = np.empty(len(values), dtype=object)
    rows[:] = list(values)
    return rows
