"""Tables in and out: CSV and Parquet files, stdin/stdout, and the metadata naming their labels.

fcnn records which columns are labels (and their units) inside the files it writes, so that
``fcnn train quakes.csv`` needs no flags:

* Parquet: the schema metadata key ``fcnn`` holds JSON such as ``{"targets": ["x", "y"]}``.
* CSV: a first line ``# fcnn {"targets": ["x", "y"], ...}`` before the header. Other tools read
  such a file with their comment option, e.g. ``pandas.read_csv(path, comment="#")``.
"""

import contextlib
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fcnn_cli.errors import FcnnError
from fcnn_cli.fileio import atomic_path

if TYPE_CHECKING:  # numpy and pandas themselves load only when a table is read
    import numpy
    import pandas

log = logging.getLogger(__name__)

META_KEY = "fcnn"
CSV_META_PREFIX = b"# fcnn "
PARQUET_SUFFIXES = {".parquet", ".pq"}
CSV_SUFFIXES = {".csv", ".txt"}
BOM = b"\xef\xbb\xbf"
HEAD_BYTES = 65_536  # the leading `#` lines and the header are looked for in these
CHUNK_ROWS = 65_536  # rows per streamed chunk: fast enough, and a bounded peak of memory
MOSTLY_NUMERIC = 0.9  # share of values that parse as numbers for a text column to be a typo


@dataclass
class Table:
    frame: "pandas.DataFrame"
    targets: list[str] = field(default_factory=list)  # label columns recorded in the file
    units: dict[str, str] = field(default_factory=dict)
    name: str = "<table>"  # how messages refer to it: the file name, or "<stdin>"
    first_row: int = 0  # data rows before this one in its file: a chunk's messages count from it
    file_rows: "numpy.ndarray | None" = None  # with rows left out: file row of each one kept

    def row(self, i):
        """The 1-based data row of the file that position ``i`` of this table holds."""
        return int(self.file_rows[i]) if self.file_rows is not None else self.first_row + i + 1

    def metadata(self):
        meta = {}
        if self.targets:
            meta["targets"] = list(self.targets)
        if self.units:
            meta["units"] = dict(self.units)
        return meta


def table_format(path):
    """'csv' or 'parquet', from the file name; '-' (stdin/stdout) is CSV."""
    if str(path) == "-":
        return "csv"
    suffix = Path(path).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise FcnnError(f"{path}: cannot tell the table format from the suffix {suffix!r}; "
                    "use .csv or .parquet")


def read_table(path):
    """Read a CSV or Parquet file (``-`` reads CSV from stdin) into a :class:`Table`.

    Unlike :func:`iter_tables` this infers CSV column types from the whole file, so that a
    stray word deep in a numeric column is reported by column name and row.
    """
    name, fmt = _source(path)
    import pyarrow.csv as pacsv

    with _reading(name):
        if fmt == "parquet":
            file, meta = _parquet_file(path, name)
            arrow = file.read()
        else:
            source, meta, read, parse = _csv_source(path, name)
            arrow = pacsv.read_csv(source, read_options=read, parse_options=parse)
        table = _table_from_arrow(arrow, meta, name)
    _check_column_names(table)
    return table


def iter_tables(path, rows=CHUNK_ROWS):
    """Read a table in chunks of about ``rows`` rows, each a :class:`Table` that knows its
    first row, so that a file of any length streams through bounded memory. CSV column types
    are inferred from the first chunk. A missing file is reported at once, not on the first
    chunk."""
    name, fmt = _source(path)
    return _chunks(path, name, fmt, rows)


def _chunks(path, name, fmt, rows):
    import pyarrow as pa

    first, columns = 0, []
    with _reading(name, lambda: first, columns):
        if fmt == "parquet":
            file, meta = _parquet_file(path, name)
            pieces = (pa.Table.from_batches([b]) for b in file.iter_batches(batch_size=rows))
            schema = file.schema_arrow
        else:
            meta, schema, pieces = _csv_pieces(path, name, rows * 96)  # rows of eight numbers
            columns += schema.names
        for piece in pieces:
            if not piece.num_rows:
                continue
            table = _table_from_arrow(piece, meta, name)
            table.first_row = first
            _check_column_names(table)
            first += len(table.frame)
            yield table
        if not first:  # a header alone: still a table, with columns and no rows
            table = _table_from_arrow(schema.empty_table(), meta, name)
            _check_column_names(table)
            yield table


def _source(path):
    """The name messages use for ``path``, and its format; a missing path is an error."""
    name = "<stdin>" if str(path) == "-" else str(path)
    if name != "<stdin>":
        if not Path(path).exists():
            raise FcnnError(f"{name}: no such file")
        if Path(path).is_dir():
            raise FcnnError(f"{name}: is a directory, not a table")
    return name, table_format(path)


@contextlib.contextmanager
def _reading(name, rows_read=lambda: 0, columns=()):
    """Turn the reader's failures into one-line errors that name the file (and the column,
    where a streamed CSV meets text in a column its first chunk showed to be numeric)."""
    import pyarrow as pa

    try:
        yield
    except (pa.ArrowInvalid, ValueError) as e:
        where = f" (after row {rows_read()})" if rows_read() else ""
        detail = _first_line(e)
        bad = re.match(r"In CSV column #(\d+): CSV conversion error to \w+: invalid value '(.*)'",
                       detail)
        if bad and int(bad[1]) < len(columns):
            raise FcnnError(f"{name}: column {columns[int(bad[1])]!r} holds {bad[2]!r}, not a "
                            f"number{where}") from None
        raise FcnnError(f"{name}: not a readable table{where}: {detail}") from None
    except OSError as e:
        raise FcnnError(f"{name}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise FcnnError(f"{name}: not a table of UTF-8 text") from None


def _parquet_file(path, name):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pre_buffer would read ahead without bound: memory then grows with the file.
        file = pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowException, ValueError) as e:
        raise FcnnError(f"{name}: not a readable Parquet file: {_first_line(e)}") from None
    raw = (file.schema_arrow.metadata or {}).get(META_KEY.encode())
    return file, _parse_meta(raw, name) if raw else {}


# pyarrow reads ahead on threads of its own. Given a Python file, such a thread calls back into
# Python: if the read stops early (a bad header, a bad value), the thread can still be in that
# call when the interpreter exits, which aborts the process ("terminate called without an active
# exception"), or when the reader is dropped, which then waits for the lock its caller holds. So
# pyarrow only ever reads a file it opened itself, or bytes already in memory.

def _csv_source(path, name):
    """A pyarrow input for the whole CSV at ``path``, its fcnn metadata and the options to parse
    it. A regular file is opened by pyarrow; stdin or a pipe, which it cannot open, is read into
    memory first."""
    import pyarrow as pa

    if name != "<stdin>" and Path(path).is_file():
        with open(path, "rb") as file:
            head = file.read(HEAD_BYTES)
        source = pa.OSFile(str(path))
    else:
        with _open_bytes(path, name) as stream:
            data = stream.read()
        head, source = data[:HEAD_BYTES], pa.BufferReader(data)
    return (source, *_csv_options(head, name))


def _csv_pieces(path, name, size):
    """The fcnn metadata, the schema and the Arrow tables of the CSV at ``path``: blocks of
    lines of about ``size`` bytes are read here and parsed from memory, each later one with the
    columns and types of the first."""
    import itertools

    import pyarrow as pa
    import pyarrow.csv as pacsv

    blocks = _line_blocks(path, name, size)
    head = next(blocks, b"")
    while _past_header(head) <= 0 and (more := next(blocks, b"")):
        head += more  # the first piece's rows set the types: it must hold some
    meta, read, parse = _csv_options(head[:HEAD_BYTES], name)
    first = pacsv.read_csv(pa.py_buffer(head), read_options=read, parse_options=parse)
    read = pacsv.ReadOptions(column_names=first.column_names)
    convert = pacsv.ConvertOptions(column_types=first.schema)
    later = (pacsv.read_csv(pa.py_buffer(block), read_options=read, parse_options=parse,
                            convert_options=convert) for block in blocks)
    return meta, first.schema, itertools.chain([first], later)


def _line_blocks(path, name, size):
    """The bytes of ``path`` in blocks of about ``size`` that end at a line break."""
    with _open_bytes(path, name) as stream:
        rest = b""
        while block := stream.read(size):
            block = rest + block
            cut = max(block.rfind(b"\n"), block.rfind(b"\r")) + 1
            if cut:
                yield block[:cut]
            rest = block[cut:]
        if rest:
            yield rest


def _past_header(head):
    """How many bytes of ``head`` follow its leading ``#`` lines and its header; -1 if it does
    not reach that far."""
    text = head[len(BOM):] if head.startswith(BOM) else head
    header = re.search(rb"^[^#\r\n].*\n", text, re.MULTILINE)
    return len(text) - header.end() if header else -1


def _open_bytes(path, name):
    return sys.stdin.buffer if name == "<stdin>" else open(path, "rb")


def _csv_options(head, name):
    """The fcnn metadata of a CSV starting with ``head``, and the options to parse it: leading
    ``#`` lines skipped, the delimiter guessed from the header."""
    import pyarrow.csv as pacsv

    if b"\0" in head:
        raise FcnnError(f"{name}: not a CSV table: the file holds binary data")
    meta, skip, delimiter = _csv_preamble(head, name)
    return meta, pacsv.ReadOptions(skip_rows=skip), pacsv.ParseOptions(delimiter=delimiter)


class TableWriter:
    """Writes a table chunk by chunk — CSV or Parquet by suffix, ``-`` for CSV on stdout —
    into a temporary file that replaces ``path`` only when all of it is written."""

    def __init__(self, path, metadata=None):
        self.path, self.format = str(path), table_format(path)
        self.metadata = metadata or {}  # fcnn's label metadata, written with the table
        self.rows, self._header_done, self._parquet = 0, False, None

    def __enter__(self):
        self._stack = contextlib.ExitStack()
        if self.path == "-":
            self._stream = sys.stdout.buffer
        else:
            tmp = self._stack.enter_context(atomic_path(self.path))
            self._stream = self._stack.enter_context(open(tmp, "wb"))
        return self

    def write(self, frame):
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                schema = arrow.schema
                if self.metadata:
                    schema = schema.with_metadata({**(schema.metadata or {}), META_KEY.encode():
                                                   json.dumps(self.metadata).encode()})
                self._parquet = pq.ParquetWriter(self._stream, schema)
            self._parquet.write_table(arrow.cast(self._parquet.schema))
        else:
            if not self._header_done and self.metadata:
                self._stream.write(CSV_META_PREFIX + json.dumps(self.metadata).encode() + b"\n")
            # float_format=None: the shortest representation that reads back to the same value.
            self._stream.write(frame.to_csv(index=False, header=not self._header_done,
                                            lineterminator="\n").encode())
            self._header_done = True
        self.rows += len(frame)

    def __exit__(self, kind, value, tb):
        if self._parquet is not None:
            self._parquet.close()
        if self.path == "-":
            sys.stdout.flush()
        return self._stack.__exit__(kind, value, tb)


def _csv_preamble(head, name):
    """Parse the leading ``#`` lines (fcnn's metadata, how many lines to skip) and guess the
    delimiter from the header: a comma, or else the semicolon, tab or bar it holds."""
    text = head[len(BOM):] if head.startswith(BOM) else head
    meta, skip, header = {}, 0, b""
    for line in text.splitlines():
        if not line.startswith(b"#"):
            header = line
            break
        skip += 1
        if line.startswith(CSV_META_PREFIX):
            meta = _parse_meta(line[len(CSV_META_PREFIX):], name)
    delimiter = ","
    if b"," not in header:
        delimiter = next((d for d in (";", "\t", "|") if d.encode() in header), ",")
    return meta, skip, delimiter


def _table_from_arrow(arrow, meta, name):
    names = arrow.column_names
    duplicates = sorted({c for c in names if names.count(c) > 1})
    if duplicates:
        raise FcnnError(f"{name}: duplicate column name(s): {', '.join(map(repr, duplicates))}")
    frame = arrow.to_pandas()
    targets = [t for t in meta.get("targets", []) if t in frame.columns]
    units = {k: v for k, v in meta.get("units", {}).items() if k in frame.columns}
    return Table(frame, targets, units, name)


def _parse_meta(raw, name):
    try:
        meta = json.loads(raw)
        if not isinstance(meta, dict):
            raise ValueError("not an object")
        targets = meta.get("targets", [])
        units = meta.get("units", {})
        if not (isinstance(targets, list) and all(isinstance(t, str) for t in targets)):
            raise ValueError("'targets' is not a list of column names")
        if not (isinstance(units, dict) and all(isinstance(v, str) for v in units.values())):
            raise ValueError("'units' is not a mapping of column to unit")
    except ValueError as e:
        raise FcnnError(f"{name}: malformed fcnn metadata: {e}") from None
    return meta


def _check_column_names(table):
    blank = [i for i, c in enumerate(table.frame.columns) if not str(c).strip()]
    if blank:
        raise FcnnError(f"{table.name}: column {blank[0] + 1} has no name in the header")


def _first_line(exc):
    """The first line of an exception's message, printable and short."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 160 else text[:157] + "..."


def write_table(table, path):
    """Write a :class:`Table` as CSV or Parquet by suffix, atomically, with its label metadata;
    ``-`` writes CSV to stdout."""
    with TableWriter(path, table.metadata()) as writer:
        writer.write(table.frame)


def is_numeric(series):
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def select_columns(table, targets=None, features=None):
    """Resolve which columns are labels and which are features.

    ``targets`` defaults to the labels recorded in the file. Features default to every other
    numeric column; non-numeric columns left over are dropped with a notice.
    Returns ``(features, targets)`` as lists of column names.
    """
    columns = list(table.frame.columns)
    targets = list(targets or table.targets)
    if not targets:
        raise FcnnError(f"{table.name}: no label column: name one with --target "
                        f"(columns: {_listing(columns)})")
    _require(table, targets, "label")
    if features:
        features = list(features)
        _require(table, features, "feature")
        both = [c for c in features if c in targets]
        if both:
            raise FcnnError(f"{table.name}: column {both[0]!r} is both a label and a feature")
    else:
        rest = [c for c in columns if c not in targets]
        features = [c for c in rest if is_numeric(table.frame[c])]
        dropped = [c for c in rest if c not in features]
        for c in dropped:
            _refuse_mostly_numeric(table, c)
        if dropped:
            log.info("%s: leaving out non-numeric column(s) %s", table.name, _listing(dropped))
        if not features:
            raise FcnnError(f"{table.name}: no numeric feature columns besides the labels "
                            f"{_listing(targets)}")
    return features, targets


def _refuse_mostly_numeric(table, column):
    """A column of numbers with a stray word is a typo, not a text column to leave out."""
    import pandas as pd

    series = table.frame[column].dropna()
    if series.empty or pd.api.types.is_bool_dtype(series):
        return
    numbers = pd.to_numeric(series.astype(str).str.strip(), errors="coerce").notna()
    if numbers.mean() >= MOSTLY_NUMERIC:
        bad = _first_non_numeric(table.frame[column])
        raise FcnnError(f"{table.name}: column {column!r} holds numbers but not only: row "
                        f"{table.row(bad[0])} holds {bad[1]!r}")


def _require(table, names, role):
    columns = list(table.frame.columns)
    missing = [c for c in names if c not in columns]
    if missing:
        raise FcnnError(f"{table.name}: no {role} column {_listing(missing)}; "
                        f"the table has {_listing(columns)}")


def _listing(names, limit=12):
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def numeric_matrix(table, columns, dtype="float32"):
    """The named columns as a float array; non-numeric or non-finite values are errors."""
    import numpy as np
    import pandas as pd

    if table.frame.empty:  # a header alone has no types to check
        return np.empty((0, len(columns)), dtype)
    for c in columns:
        series = table.frame[c]
        if not is_numeric(series) and not pd.api.types.is_bool_dtype(series):
            bad = _first_non_numeric(series)
            where = f" (row {table.row(bad[0])}: {bad[1]!r})" if bad else ""
            raise FcnnError(f"{table.name}: column {c!r} is not numeric{where}")
    # Straight to float32, one copy; a value beyond its range turns infinite, and only then is
    # the float64 original looked at, to tell such a value from a NaN or inf in the file.
    with np.errstate(over="ignore"):
        x = table.frame[columns].to_numpy(dtype=dtype)
        if np.isfinite(x.astype(np.float32, copy=False)).all():
            return x
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
                        f"{table.row(row)}; --nan drop leaves such rows out")
    col = columns[int(np.argmax((np.abs(x) > np.finfo(np.float32).max).any(axis=0)))]
    raise FcnnError(f"{table.name}: column {col!r} holds values beyond float32 range "
                    f"(|x| > 3.4e38)")


def drop_incomplete(table, columns):
    """The table without rows that hold NaN, missing or infinite values in these columns."""
    import numpy as np

    frame = table.frame
    bad = np.zeros(len(frame), dtype=bool)
    counts = {}
    for c in columns:
        series = frame[c]
        missing = series.isna().to_numpy().copy()
        if is_numeric(series):
            missing |= ~np.isfinite(series.to_numpy(dtype=np.float64, na_value=np.nan))
        if missing.any():
            counts[c] = int(missing.sum())
            bad |= missing
    if not bad.any():
        return table
    detail = ", ".join(f"{c!r}: {n}" for c, n in counts.items())
    log.warning("%s: leaving out %d row(s) with NaN, missing or infinite values (%s)",
                table.name, int(bad.sum()), detail)
    if bad.all():
        raise FcnnError(f"{table.name}: no rows left after leaving out those with NaN, missing "
                        f"or infinite values ({detail})")
    return Table(frame[~bad].reset_index(drop=True), table.targets, table.units, table.name,
                 table.first_row, _file_rows(table)[~bad])


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
