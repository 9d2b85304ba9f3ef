"""Tables in: a :class:`Table` read whole or in chunks from CSV (:mod:`~fcnn_cli.data.csvfiles`),
Parquet, ROOT, HDF5 and FITS files (:mod:`~fcnn_cli.data.formats`) or stdin, with the labels and
units that fcnn's metadata in the file names (:mod:`~fcnn_cli.data.metadata`); the format of a
file from its name. :mod:`~fcnn_cli.data.writer` writes them.

A ROOT, HDF5 or FITS file may hold several tables: ``file.root:TREE``, ``file.h5:/PATH`` and
``file.fits:N`` or ``:EXTNAME`` choose one (an existing file of that whole name wins).
"""

import collections
import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fcnn_cli.core import collector
from fcnn_cli.core.errors import FcnnError, first_line, shown
from fcnn_cli.core.fileio import is_stream
from fcnn_cli.data import csvfiles, metadata

if TYPE_CHECKING:  # numpy and pandas themselves load only when a table is read
    import numpy
    import pandas

# suffix -> format; the formats past CSV and Parquet are read by fcnn_cli/data/formats/<format>.py
FORMATS = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".root": "root", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5", ".he5": "hdf5",
           ".fits": "fits", ".fit": "fits", ".fts": "fits"}
SELECTABLE = {"root", "hdf5", "fits"}  # formats whose files may hold several tables
# suffixes of a compressed file that its format's reader decompresses as it reads
COMPRESSED = {".gz": {"fits"}}
CHUNK_ROWS = 65_536  # rows per streamed chunk: fast enough, and a bounded peak of memory
ROW_BYTES = 96  # a streamed chunk's share of text per row: about eight numbers
MAX_BLOCK = 1 << 28  # the longest row fcnn reads from a file


@dataclass
class Table:
    frame: "pandas.DataFrame"
    targets: list[str] = field(default_factory=list)  # label columns recorded in the file
    units: dict[str, str] = field(default_factory=dict)
    name: str = "<table>"  # how messages refer to it: the file name, or "<stdin>"
    first_row: int = 0  # data rows before this one in its file: a chunk's messages count from it
    file_rows: "numpy.ndarray | None" = None  # with rows left out: file row of each one kept
    extra: dict = field(default_factory=dict)  # the file's other metadata (stations, say)

    def row(self, i):
        """The 1-based data row of the file that position ``i`` of this table holds."""
        return int(self.file_rows[i]) if self.file_rows is not None else self.first_row + i + 1

    def metadata(self):
        meta = {}
        if self.targets:
            meta["targets"] = list(self.targets)
        if self.units:
            meta["units"] = dict(self.units)
        return {**meta, **{k: v for k, v in self.extra.items() if k not in meta}}


def table_format(path):
    """The format of a table file, from its name (see FORMATS; a ``:selector`` after the file
    name aside); '-' (stdin/stdout) is CSV, and so is a pipe or device without a known suffix
    (/dev/stdout, a shell's <(...))."""
    if str(path) == "-":
        return "csv"
    file = input_file(path)
    fmt = _suffix_format(file)
    if fmt:
        return fmt
    suffix = Path(file).suffix.lower()
    if is_stream(file):
        return "csv"
    raise FcnnError(f"{path}: cannot tell the table format from the suffix {suffix!r}; use "
                    f"{', '.join(sorted(FORMATS))} (.fits.gz too)")


def split_selector(path):
    """``(file, selector)``: ``events.root:tree`` is ``("events.root", "tree")``; a name without
    a selector, or an existing file of that whole name (a colon is a legal character), is
    ``(path, None)``. The file part is the first one that ends in a suffix of a format whose
    files hold several tables (C:/data/x.root:tree has its file's colon kept)."""
    text = str(path)
    if text == "-" or os.path.lexists(text):
        return text, None
    for at, char in enumerate(text):
        if char == ":" and _suffix_format(text[:at]) in SELECTABLE:
            return text[:at], text[at + 1:]
    return text, None


def _suffix_format(file):
    """The format that a file's suffix names (``.fits.gz`` too), or ``None``."""
    path = Path(file)
    suffix = path.suffix.lower()
    if suffix in COMPRESSED:
        fmt = FORMATS.get(Path(path.stem).suffix.lower())
        return fmt if fmt in COMPRESSED[suffix] else None
    return FORMATS.get(suffix)


def input_file(path):
    """The file that ``path`` reads, a selector left out: the one an output must not replace."""
    return split_selector(path)[0]


def is_pipe(path):
    """Whether ``path`` is stdin (``-``) or a pipe, device or socket (a named pipe, a shell's
    <(...)): read once, it cannot be read again, to resume or to look at before training."""
    return str(path) == "-" or is_stream(input_file(path))


def read_table(path, narrow=None, columns=None):
    """Read a table file (``-`` reads CSV from stdin) into a :class:`Table`.

    Unlike :func:`iter_tables` this infers CSV column types from the whole file, so that a
    stray word deep in a numeric column is reported by column name and row.

    With ``narrow`` (the names of columns to keep as they are: the labels, the categorical
    features, whose levels are their exact values; the labels the file records are kept too)
    the other float columns of a Parquet file are read as float32, the type features are
    trained in, row group by row group: a table read for training never holds them in float64.
    A column with a value beyond float32's range stays float64.

    With ``columns`` only those of them the file has are read (Parquet and ROOT files leave
    the others unread; CSV, HDF5 and FITS drop them once read): a tree of a thousand branches
    of which a run takes ten.
    """
    name, fmt = _source(path)
    if fmt in SELECTABLE:
        (table,) = _format_tables(path, name, fmt, rows=None, columns=columns)
        return table
    with _reading(name):
        if fmt == "parquet":
            file, meta = _parquet_file(path, name)
            kept = _kept(file.schema_arrow.names, columns)
            if narrow is not None and _unique(file.schema_arrow.names):
                frame = _narrowed_frame(file, {*narrow, *meta.get("targets", [])}, kept)
                table = _table_from_frame(frame, meta, name)
                _check_column_names(table)
                return table
            arrow = file.read(columns=kept)
        else:
            arrow, meta = csvfiles.read(path, name, _longest_row(name))
            if columns is not None:  # all of them: duplicate names are told of by name below
                arrow = arrow.select(_kept(arrow.column_names, columns))
        table = _table_from_arrow(arrow, meta, name, release=True)
        del arrow
    _check_column_names(table)
    return table


def read_metadata(path):
    """fcnn's metadata of the table file ``path`` without reading its rows: ``{}`` where it
    records none. Not of stdin, which cannot be read twice."""
    name, fmt = _source(path)
    with _reading(name):
        if fmt == "parquet":
            return _parquet_file(path, name)[1]
        if fmt in SELECTABLE:
            from fcnn_cli.data import formats

            file, selector = split_selector(path)
            with formats.module(fmt).opened(file, selector, name) as source:
                return metadata.parse(source.fcnn, name) if source.fcnn else {}
        with csvfiles.opened(path, name) as (_, meta, _):
            return meta


def read_columns(path):
    """The names of the columns of the table file ``path``: a Parquet file's from its schema,
    another's from its first row. Not of stdin, which cannot be read twice."""
    name, fmt = _source(path)
    if fmt == "parquet":
        with _reading(name):
            return [str(c) for c in _parquet_file(path, name)[0].schema_arrow.names]
    with contextlib.closing(iter_tables(path, rows=1)) as tables:
        first = next(tables, None)
    return [] if first is None else [str(c) for c in first.frame.columns]


def _unique(names):
    return len(set(names)) == len(names)


def _kept(names, columns):
    """The names of a file's columns to read: those among ``columns`` (None: all of them)."""
    if columns is None:
        return list(names)
    wanted = set(columns)
    return [c for c in names if c in wanted]


def _narrowed_frame(file, wide, kept):
    """The frame of the columns ``kept`` of a Parquet file, its float columns but those in
    ``wide`` float32, converted as :func:`fcnn_cli.data.columns.numeric_matrix` converts
    them; the other columns as read."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    narrow = [f.name for f in file.schema_arrow
              if f.name in kept and f.name not in wide and pa.types.is_floating(f.type)]
    columns = {c: np.empty(file.metadata.num_rows, np.float32) for c in narrow}
    start = 0
    for i in range(file.num_row_groups):
        group = file.read_row_group(i, columns=list(columns))
        for c in list(columns):
            values = group.column(c).to_numpy()
            part = columns[c][start:start + len(values)]
            with np.errstate(over="ignore"):
                part[:] = values
            if np.isinf(part).sum() != np.isinf(values).sum():
                del columns[c]  # beyond float32: read as it is, for numeric_matrix to name
        start += group.num_rows
    rest = [c for c in kept if c not in columns]
    others = file.read(columns=rest).to_pandas(self_destruct=True, split_blocks=True) \
        if rest else pd.DataFrame(index=pd.RangeIndex(start))
    names = [c for c in kept if c in columns or c in others.columns]
    frame = pd.DataFrame({c: columns[c] if c in columns else others[c] for c in names},
                         index=others.index, copy=False)
    pa.default_memory_pool().release_unused()  # what reading took and no column holds
    return frame


def iter_tables(path, rows=CHUNK_ROWS):
    """Read a table in chunks of about ``rows`` rows, each a :class:`Table` that knows its
    first row, so that a file of any length streams through bounded memory. CSV column types
    are inferred from the first chunk. A missing file is reported at once, not on the first
    chunk."""
    name, fmt = _source(path)
    if fmt in SELECTABLE:
        return _format_tables(path, name, fmt, rows)
    return _chunks(path, name, fmt, rows)


def _format_tables(path, name, fmt, rows, columns=None):
    """The Tables of a ROOT, HDF5 or FITS file in blocks of ``rows`` rows (``None``: one
    block of all), of the ``columns`` the file has (None: all), in the types the file gives
    them."""
    from fcnn_cli.data import formats

    file, selector = split_selector(path)
    reader = formats.module(fmt)
    # ROOT reads the branches asked for alone: a NanoAOD tree has some 1 500
    chosen = {"columns": columns} if fmt == "root" and columns is not None else {}
    with reader.opened(file, selector, name, **chosen) as source:
        meta = metadata.parse(source.fcnn, name) if source.fcnn else {}
        meta["units"] = {**source.units, **meta.get("units", {})}
        first = 0
        for frame in source.blocks(rows or max(source.rows, 1)):
            frame = frame if columns is None else frame[_kept(frame.columns, columns)]
            table = _table_from_frame(frame, meta, name)
            table.first_row = first
            _check_column_names(table)
            first += len(frame)
            yield table


def _chunks(path, name, fmt, rows):
    import pyarrow as pa

    first, columns = 0, []
    with _reading(name, lambda: first, columns), contextlib.ExitStack() as stack:
        if fmt == "parquet":
            file, meta = _parquet_file(path, name)
            schema = file.schema_arrow
            pieces = (pa.Table.from_batches([b]) for b in file.iter_batches(batch_size=rows))
        else:
            stream, meta, header = stack.enter_context(csvfiles.opened(path, name))
            schema, pieces = csvfiles.pieces(stream, header, name, rows * ROW_BYTES,
                                             _longest_row(name))
            columns += schema.names
        for piece in pieces:
            if not piece.num_rows:  # a header alone, or blank lines
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
        file = Path(input_file(path))
        if not file.exists():
            raise FcnnError(f"{file}: no such file")
        if file.is_dir():
            raise FcnnError(f"{file}: is a directory, not a table")
    fmt = table_format(path)
    if fmt in SELECTABLE and is_stream(input_file(path)):
        # their readers seek about the file: opening a pipe would wait, reading would fail
        raise FcnnError(f"{input_file(path)}: {fmt.upper()} files cannot be read from a pipe or "
                        "device; copy it to a regular file, or send CSV or Parquet through it")
    return name, fmt


@contextlib.contextmanager
def _reading(name, rows_read=lambda: 0, columns=()):
    """Turn the reader's failures into one-line errors that name the file (and the column,
    where a streamed CSV meets text in a column its first chunk showed to be numeric)."""
    collector.imported("pyarrow", "pandas")  # where a command loads them: the collector paused
    import pyarrow as pa

    try:
        yield
    except UnicodeDecodeError:  # a ValueError: caught before those
        raise FcnnError(f"{name}: not a table of UTF-8 text") from None
    except (pa.ArrowInvalid, ValueError) as e:
        where = f" (after row {rows_read()})" if rows_read() else ""
        bad = re.match(r"In CSV column #(\d+): CSV conversion error to \w+: invalid value "
                       r"'(.*)'$", str(e).strip().split("\n")[0])
        if bad and int(bad[1]) < len(columns):
            raise FcnnError(f"{name}: column {columns[int(bad[1])]!r} holds {shown(bad[2])}, not "
                            f"a number{where}") from None
        raise FcnnError(f"{name}: not a readable table{where}: {first_line(e, 160)}") from None
    except OSError as e:
        raise FcnnError(f"{name}: cannot read: {e.strerror or e}") from None


def _parquet_file(path, name):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pyarrow opens the file itself (csvfiles says why); pre_buffer would read ahead
        # without bound: memory then grows with the file.
        file = pq.ParquetFile(csvfiles.arrow_file(path), pre_buffer=False)
    except (pa.ArrowException, ValueError) as e:
        raise FcnnError(f"{name}: not a readable Parquet file: {first_line(e, 160)}") from None
    _check_unpacked(file, path, name)
    return file, metadata.of_schema(file.schema_arrow, name)


def parquet_rows(path):
    """The rows that a Parquet file's footer says it holds, read before any of them."""
    return _parquet_file(path, str(path))[0].metadata.num_rows


def _check_unpacked(file, path, name):
    """Refuse a Parquet file that declares more bytes unpacked than
    :func:`~fcnn_cli.data.formats.check_unpacked` allows: by its row groups' sizes, or by its
    rows times the widths of its fixed-width columns, whichever is more."""
    import pyarrow as pa

    from fcnn_cli.data import formats

    rows = file.metadata.num_rows
    widths = sum(f.type.bit_width // 8 for f in file.schema_arrow
                 if pa.types.is_primitive(f.type))
    declared = max(rows * widths, sum(file.metadata.row_group(i).total_byte_size
                                      for i in range(file.num_row_groups)))
    formats.check_unpacked(name, f"{rows:,} rows", declared, path,
                           "fcnn unpacks no further: write it uncompressed if it is sound")


def _longest_row(name):
    """The longest row read. From stdin less: what a streamed read holds at once, so that a
    pipe into predict or evaluate takes bounded memory; a whole read takes as much, so that
    train and predict read the same rows."""
    return CHUNK_ROWS * ROW_BYTES if name == "<stdin>" else MAX_BLOCK


def _table_from_arrow(arrow, meta, name, release=False):
    """The Table of an Arrow table; with ``release`` each Arrow column is freed once
    converted (``arrow`` must not be used after), so that the whole table is never held
    twice."""
    names = arrow.column_names
    duplicates = sorted({c for c, n in collections.Counter(names).items() if n > 1})
    if duplicates:
        raise FcnnError(f"{name}: duplicate column name(s): {', '.join(map(repr, duplicates))}")
    frame = arrow.to_pandas(self_destruct=True, split_blocks=True) if release else \
        arrow.to_pandas()
    return _table_from_frame(frame, meta, name)


def _table_from_frame(frame, meta, name):
    targets = [t for t in meta.get("targets", []) if t in frame.columns]
    units = {k: v for k, v in meta.get("units", {}).items() if k in frame.columns}
    extra = {k: v for k, v in meta.items() if k not in ("targets", "units")}
    return Table(frame, targets, units, name, extra=extra)


def _check_column_names(table):
    blank = [i for i, c in enumerate(table.frame.columns) if not str(c).strip()]
    if blank:
        raise FcnnError(f"{table.name}: column {blank[0] + 1} has no name in the header")
