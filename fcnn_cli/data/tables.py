"""Tables in and out: CSV, Parquet, ROOT, HDF5 and FITS files, stdin/stdout, and the metadata
naming their labels.

fcnn records which columns are labels (and their units) inside the files it writes, so that
``fcnn train quakes.csv`` needs no flags:

* Parquet: the schema metadata key ``fcnn`` holds JSON such as ``{"targets": ["x", "y"]}``.
* CSV: a first line ``# fcnn {"targets": ["x", "y"], ...}`` before the header. Other tools read
  such a file with their comment option, e.g. ``pandas.read_csv(path, comment="#")``.
* ROOT, HDF5 and FITS (``fcnn_cli/data/formats/``): the same JSON in the tree's title, the table's
  ``fcnn`` attribute, the ``FCNN`` header keyword; units also from the format's own places.

A ROOT, HDF5 or FITS file may hold several tables: ``file.root:TREE``, ``file.h5:/PATH`` and
``file.fits:N`` or ``:EXTNAME`` choose one (an existing file of that whole name wins).
"""

import collections
import contextlib
import io
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fcnn_cli.core.errors import FcnnError, first_line, shown, size_text
from fcnn_cli.core.fileio import atomic_path, is_stream, open_output, writing

if TYPE_CHECKING:  # numpy and pandas themselves load only when a table is read
    import numpy
    import pandas

META_KEY = "fcnn"
CSV_META_PREFIX = b"# fcnn "
# suffix -> format; the formats past CSV and Parquet are read by fcnn_cli/data/formats/<format>.py
FORMATS = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".root": "root", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5", ".he5": "hdf5",
           ".fits": "fits", ".fit": "fits", ".fts": "fits"}
SELECTABLE = {"root", "hdf5", "fits"}  # formats whose files may hold several tables
# suffixes of a compressed file that its format's reader decompresses as it reads
COMPRESSED = {".gz": {"fits"}}
BOM = b"\xef\xbb\xbf"
CHUNK_ROWS = 65_536  # rows per streamed chunk: fast enough, and a bounded peak of memory
ROW_BYTES = 96  # a streamed chunk's share of text per row: about eight numbers
CSV_BLOCK = 1 << 20  # whole-file reads start at pyarrow's default block
MAX_BLOCK = 1 << 28  # the longest row fcnn reads from a file
MAX_PREAMBLE = 16 << 20  # bytes of '#' lines before the header: metadata of a million columns
PEEK = 65536  # bytes looked at to tell binary data and to guess the delimiter


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


def read_table(path, narrow=None):
    """Read a table file (``-`` reads CSV from stdin) into a :class:`Table`.

    Unlike :func:`iter_tables` this infers CSV column types from the whole file, so that a
    stray word deep in a numeric column is reported by column name and row.

    With ``narrow`` (label column names; empty for those the file records) the float columns
    of a Parquet file but the labels are read as float32, the type features are trained in,
    row group by row group: a table read for training never holds them in float64. A column
    with a value beyond float32's range stays float64.
    """
    name, fmt = _source(path)
    if fmt in SELECTABLE:
        (table,) = _format_tables(path, name, fmt, rows=None)
        return table
    with _reading(name):
        if fmt == "parquet":
            file, meta = _parquet_file(path, name)
            if narrow is not None and _unique(file.schema_arrow.names):
                table = _table_from_frame(
                    _narrowed_frame(file, set(narrow or meta.get("targets", []))), meta, name)
                _check_column_names(table)
                return table
            arrow = file.read()
        else:
            arrow, meta = _read_csv(path, name)
        table = _table_from_arrow(arrow, meta, name, release=True)
        del arrow
    _check_column_names(table)
    return table


def _unique(names):
    return len(set(names)) == len(names)


def _narrowed_frame(file, labels):
    """The frame of a Parquet file whose float columns but ``labels`` are float32, converted
    as :func:`fcnn_cli.data.columns.numeric_matrix` converts them; the other columns as read."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    narrow = [f.name for f in file.schema_arrow
              if f.name not in labels and pa.types.is_floating(f.type)]
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
    rest = [c for c in file.schema_arrow.names if c not in columns]
    others = file.read(columns=rest).to_pandas(self_destruct=True, split_blocks=True) \
        if rest else pd.DataFrame(index=pd.RangeIndex(start))
    names = [c for c in file.schema_arrow.names if c in columns or c in others.columns]
    frame = pd.DataFrame({c: columns[c] if c in columns else others[c] for c in names},
                         index=others.index, copy=False)
    pa.default_memory_pool().release_unused()  # what reading took and no column holds
    return frame


def iter_tables(path, rows=CHUNK_ROWS, text=()):
    """Read a table in chunks of about ``rows`` rows, each a :class:`Table` that knows its
    first row, so that a file of any length streams through bounded memory. CSV column types
    are inferred from the first chunk, but for the columns named in ``text``, kept as written
    (an ID such as 007). A missing file is reported at once, not on the first chunk."""
    name, fmt = _source(path)
    if fmt in SELECTABLE:
        return _format_tables(path, name, fmt, rows)
    return _chunks(path, name, fmt, rows, text)


def _format_tables(path, name, fmt, rows):
    """The Tables of a ROOT, HDF5 or FITS file in blocks of ``rows`` rows (``None``: one
    block of all). Its columns keep the types the file gives them, so ``text`` has no use."""
    from fcnn_cli.data import formats

    file, selector = split_selector(path)
    reader = formats.module(fmt)
    with reader.opened(file, selector, name) as source:
        meta = _parse_meta(source.fcnn, name) if source.fcnn else {}
        meta["units"] = {**source.units, **meta.get("units", {})}
        first = 0
        for frame in source.blocks(rows or max(source.rows, 1)):
            table = _table_from_frame(frame, meta, name)
            table.first_row = first
            _check_column_names(table)
            first += len(frame)
            yield table


def _chunks(path, name, fmt, rows, text=()):
    import pyarrow as pa

    first, columns = 0, []
    with _reading(name, lambda: first, columns), contextlib.ExitStack() as stack:
        if fmt == "parquet":
            file, meta = _parquet_file(path, name)
            schema = file.schema_arrow
            pieces = (pa.Table.from_batches([b]) for b in file.iter_batches(batch_size=rows))
        else:
            stream, meta, header = stack.enter_context(_csv_opened(path, name))
            schema, pieces = _csv_pieces(stream, header, name, rows * ROW_BYTES, text)
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
        # pre_buffer would read ahead without bound: memory then grows with the file.
        file = pq.ParquetFile(_os_file(path), pre_buffer=False)
    except (pa.ArrowException, ValueError) as e:
        raise FcnnError(f"{name}: not a readable Parquet file: {first_line(e, 160)}") from None
    raw = (file.schema_arrow.metadata or {}).get(META_KEY.encode())
    return file, _parse_meta(raw, name) if raw else {}


# pyarrow reads ahead on threads of its own. Given a Python file, such a thread calls back into
# Python: if the read stops early (a bad header, a bad value), the thread can still be in that
# call when the interpreter exits, which aborts the process ("terminate called without an active
# exception"), or when the reader is dropped, which then waits for the lock its caller holds. So
# pyarrow only ever reads a file it opened itself, or bytes already in memory; a streamed CSV is
# read here in blocks of whole rows.

def _read_csv(path, name):
    """A whole CSV as an Arrow table, and fcnn's metadata from it. pyarrow parses it in blocks,
    each of which must hold a whole row: after a longer row it is parsed again with blocks
    twice as large."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with _csv_opened(path, name) as (stream, meta, header):
        parse = _parse_options(header)
        source = _rereadable(path, name, stream, header)
    block = min(CSV_BLOCK, _longest_row(name))
    while True:
        try:
            with source() as file:
                return pacsv.read_csv(file, read_options=pacsv.ReadOptions(block_size=block),
                                      parse_options=parse), meta
        except pa.ArrowInvalid as e:
            block = _larger_block(e, block, name)


def _rereadable(path, name, stream, header):
    """A function that opens the CSV at its header for pyarrow, as often as asked: a regular
    file pyarrow opens itself; stdin or a pipe, which cannot be read twice, is read into memory
    here."""
    import pyarrow as pa

    if name != "<stdin>" and Path(path).is_file():
        start = stream.tell() - len(header)
        return lambda: _os_file(path, start)
    data = io.BytesIO()
    data.write(header)
    shutil.copyfileobj(stream, data)  # one copy in memory, however long
    return lambda: pa.BufferReader(pa.py_buffer(data.getbuffer()))


def _os_file(path, start=0):
    """The file opened by pyarrow itself (see above); by its bytes, as a name that is not
    UTF-8 (legal on Linux) is not text pyarrow takes."""
    import pyarrow as pa

    file = pa.OSFile(os.fsencode(path))
    file.seek(start)
    return file


def _csv_pieces(stream, header, name, size, text=()):
    """The schema and the Arrow tables of a CSV streamed from blocks of whole rows of about
    ``size`` bytes. The first block, header and rows, sets the column types of the later ones;
    the columns named in ``text`` are text."""
    import pyarrow as pa

    parse = _parse_options(header)
    blocks = _row_blocks(stream, header, size, name, parse.delimiter)
    types = {column: pa.string() for column in text}
    head = next(blocks, b"")
    first = _parsed(head, parse, types=types)
    while not first.num_rows and (more := next(blocks, b"")):  # types need rows to show them
        head += more
        first = _parsed(head, parse, types=types)
    return first.schema, _later_pieces(first, blocks, parse)


def _later_pieces(first, blocks, parse):
    """``first``, then the tables of the later blocks, each in the column types of those before."""
    yield first
    schema = first.schema
    for block in blocks:
        piece = _typed(block, parse, schema)
        schema = piece.schema
        yield piece


def _typed(block, parse, schema):
    """Rows without header as an Arrow table in the column types of ``schema``. A column that
    had no value so far takes the type its first values show: numbers are float64, anything
    else text as written; a column of whole numbers so far becomes float64 where a fraction
    shows up."""
    import pyarrow as pa

    known = {f.name: f.type for f in schema if not pa.types.is_null(f.type)}
    try:
        piece = _parsed(block, parse, schema.names, known)
    except pa.ArrowInvalid as e:
        # Whole numbers in the first rows, a fraction now: that column holds reals.
        column = re.match(r"In CSV column #(\d+): CSV conversion error to u?int", str(e))
        if column is None:
            raise
        known[schema.names[int(column[1])]] = pa.float64()
        return _typed(block, parse, pa.schema([(k, known.get(k, t)) for k, t in
                                               zip(schema.names, schema.types)]))
    late = {f.name: pa.float64() if _is_number_type(f.type) else pa.string()
            for f in piece.schema if f.name not in known and not pa.types.is_null(f.type)}
    return _parsed(block, parse, schema.names, {**known, **late}) if late else piece


def _parsed(data, parse, names=(), types=None):
    """Whole rows in memory as an Arrow table, parsed by pyarrow as one block: a row may be
    longer than its default block."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(block_size=len(data) + 1, column_names=list(names))
    return pacsv.read_csv(pa.BufferReader(data), read_options=read, parse_options=parse,
                          convert_options=pacsv.ConvertOptions(column_types=types))


def _is_number_type(kind):
    import pyarrow as pa

    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _row_blocks(stream, data, size, name, delimiter):
    """The bytes of ``stream``, after ``data`` read from it already, in blocks of whole rows:
    about ``size`` bytes, or one longer row."""
    while more := stream.read(max(size, len(data))):  # a long row: read twice as much
        data += more
        end = _rows_end(data, delimiter)
        if end:
            yield data[:end]
            data = data[end:]
        elif len(data) > _longest_row(name):
            raise _row_too_long(name)
    if data:
        yield data


def _rows_end(data, delimiter):
    """The length of the whole rows that ``data`` starts with: up to its last line break
    outside quotes."""
    if b'"' not in data:
        return max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
    return re.match(_rows_pattern(delimiter), data).end()


def _rows_pattern(delimiter):
    """Rows as pyarrow reads them: a quote opens a quoted value only at the start of a value,
    two quotes in a quoted value stand for one, and characters after its closing quote join it.
    Possessive: no backtracking, so that a match takes time linear in the bytes."""
    d = re.escape(delimiter.encode())
    rest = rb"[^" + d + rb"\r\n]*+"
    value = rb'(?:"[^"]*+(?:""[^"]*+)*+"' + rest + rb'|[^"' + d + rb"\r\n]" + rest + rb")?+"
    return rb"(?:" + value + rb"(?:" + d + value + rb")*+(?:\r\n?+|\n))*+"


def _longest_row(name):
    """The longest row read. From stdin less: what a streamed read holds at once, so that a
    pipe into predict or evaluate takes bounded memory; a whole read takes as much, so that
    train and predict read the same rows."""
    return CHUNK_ROWS * ROW_BYTES if name == "<stdin>" else MAX_BLOCK


def _row_too_long(name):
    if name == "<stdin>":
        return FcnnError(f"{name}: a row is longer than {size_text(_longest_row(name))}, the most "
                         "fcnn reads from stdin at once; give the file's path instead of '-'")
    return FcnnError(f"{name}: a row is longer than {size_text(MAX_BLOCK)}, the longest row fcnn "
                     "reads")


def _larger_block(error, block, name):
    """The block size to read again with after ``error``, which must be pyarrow's complaint
    about a row longer than a block; any other error passes on."""
    if "straddl" not in str(error):
        raise error
    if block >= _longest_row(name):
        raise _row_too_long(name) from None
    return min(2 * block, _longest_row(name))


def _close(stream):
    """Close a file; stdin stays open for whoever reads it next."""
    if stream is not sys.stdin.buffer:
        stream.close()


@contextlib.contextmanager
def _csv_opened(path, name):
    """A CSV's binary stream, read past its header; fcnn's metadata from the leading ``#``
    lines, and the header line, which sets the delimiter."""
    if name == "<stdin>" and sys.stdin is None:  # started with `<&-`
        raise FcnnError("<stdin>: cannot read: it is closed; give a file or pipe a table in")
    stream = sys.stdin.buffer if name == "<stdin>" else open(path, "rb", buffering=1 << 20)
    if not hasattr(stream, "peek"):  # a stand-in stdin (tests, embedding): buffer it
        stream = io.BufferedReader(io.BytesIO(stream.read()))
    try:
        if b"\0" in stream.peek(PEEK)[:PEEK]:
            raise FcnnError(f"{name}: not a CSV table: the file holds binary data")
        meta = _csv_preamble(stream, name)
        yield stream, meta, stream.readline(PEEK)
    finally:
        _close(stream)


def _parse_options(header):
    """A comma, or else the semicolon, tab or bar that the header holds, delimits; a quoted
    value may hold line breaks."""
    import pyarrow.csv as pacsv

    delimiter = ","
    if b"," not in header:
        delimiter = next((d for d in (";", "\t", "|") if d.encode() in header), ",")
    return pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)


class TableWriter:
    """Writes a table chunk by chunk — by suffix, ``-`` for CSV on stdout — into a temporary
    file that replaces ``path`` only when all of it is written (a device or FIFO is written to
    directly: see ``fileio.atomic_path``)."""

    def __init__(self, path, metadata=None):
        self.path, self.format = str(path), table_format(path)
        if Path(self.path).suffix.lower() in COMPRESSED:
            raise FcnnError(f"{path}: fcnn writes {self.format.upper()} files uncompressed; "
                            f"name the output {Path(self.path).stem!r}")
        if self.format in SELECTABLE and is_stream(self.path):
            # these files are finished by going back to their start (a row count, an index)
            raise FcnnError(f"{path}: {self.format.upper()} files cannot be written to a pipe "
                            "or device, which cannot go back to finish them; write a regular "
                            "file, or CSV or Parquet here")
        if input_file(path) != self.path:
            raise FcnnError(f"{path}: an output takes no ':' selector: fcnn writes one table "
                            "(the tree 'events', the root group's datasets, the HDU 'EVENTS'); "
                            "name the file alone")
        self.metadata = metadata or {}  # fcnn's label metadata, written with the table
        self.rows, self._header_done, self._parquet, self._writer = 0, False, None, None

    def __enter__(self):
        with contextlib.ExitStack() as stack:  # a failure here leaves no temporary file
            if self.format in SELECTABLE:
                self._open_writer(stack)
            else:
                self._stream = stack.enter_context(open_output(self.path))
                stack.push(self._close_parquet)  # runs first: the footer, then the file
            self._stack = stack.pop_all()
        return self

    def _open_writer(self, stack):
        from fcnn_cli.data import formats

        formats.library(self.format, self.path)  # a missing extra: before any file
        target = stack.enter_context(atomic_path(self.path))
        with writing(self.path):
            self._writer = formats.module(self.format).Writer(target, self.path, self.metadata)
        stack.push(self._close_writer)  # runs first: the file's end, then its rename

    def write(self, frame):
        with writing(self.path):
            self._write(frame)
        self.rows += len(frame)

    def _write(self, frame):
        if self._writer is not None:
            self._writer.write(frame)
        elif self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                # A column empty in the first chunk has no type yet: text takes any later value.
                schema = pa.schema([f.with_type(pa.large_string()) if pa.types.is_null(f.type)
                                    else f for f in arrow.schema], metadata=arrow.schema.metadata)
                if self.metadata:
                    schema = schema.with_metadata({**(schema.metadata or {}), META_KEY.encode():
                                                   json.dumps(self.metadata).encode()})
                self._parquet = pq.ParquetWriter(self._stream, schema)
            try:
                arrow = arrow.cast(self._parquet.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise FcnnError(f"{self.path}: a column changes its type partway through the "
                                f"input ({first_line(e, 120)}), which a Parquet file cannot "
                                "hold; write CSV instead") from None
            self._parquet.write_table(arrow)
        else:
            if not self._header_done and self.metadata:
                self._stream.write(CSV_META_PREFIX + json.dumps(self.metadata).encode() + b"\n")
            # float_format=None: the shortest representation that reads back to the same value.
            self._stream.write(frame.to_csv(index=False, header=not self._header_done,
                                            lineterminator="\n").encode())
            self._header_done = True

    def _close_parquet(self, kind, value, tb):
        if self._parquet is None:
            return
        if kind is None:
            with writing(self.path):
                self._parquet.close()
        else:  # the file is thrown away: its footer may fail to write, quietly
            with contextlib.suppress(Exception):
                self._parquet.close()

    def _close_writer(self, kind, value, tb):
        if kind is None:
            with writing(self.path):
                self._writer.close()
        else:  # the file is thrown away: it may fail to finish, quietly
            with contextlib.suppress(Exception):
                self._writer.close()

    def __exit__(self, kind, value, tb):
        return self._stack.__exit__(kind, value, tb)


def _csv_preamble(stream, name):
    """Read a byte-order mark and the leading ``#`` lines, whole, up to the header; fcnn's
    metadata from among them."""
    if stream.peek(len(BOM))[:len(BOM)] == BOM:
        stream.read(len(BOM))
    meta, size = {}, 0
    while stream.peek(1)[:1] == b"#":
        line = stream.readline(MAX_PREAMBLE + 1 - size)
        size += len(line)
        if size > MAX_PREAMBLE:
            raise FcnnError(f"{name}: the '#' lines before the header are longer than "
                            f"{size_text(MAX_PREAMBLE)}: not a table fcnn reads")
        if line.startswith(CSV_META_PREFIX):
            meta = _parse_meta(line[len(CSV_META_PREFIX):], name)
    return meta


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


def write_table(table, path):
    """Write a :class:`Table` in the format of its suffix, atomically, with its label metadata;
    ``-`` writes CSV to stdout."""
    with TableWriter(path, table.metadata()) as writer:
        writer.write(table.frame)
