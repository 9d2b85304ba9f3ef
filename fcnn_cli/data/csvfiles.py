"""CSV text read by pyarrow in blocks of whole rows: a whole file, or a stream of pieces that
each take the column types of those before. The leading ``#`` lines may hold fcnn's metadata
(:mod:`fcnn_cli.data.metadata`); a comma, or else the semicolon, tab or bar of the header,
delimits. How long a row may be is the caller's to say (``longest``, in bytes).

pyarrow reads ahead on threads of its own. Given a Python file, such a thread calls back into
Python: if the read stops early (a bad header, a bad value), the thread can still be in that
call when the interpreter exits, which aborts the process ("terminate called without an active
exception"), or when the reader is dropped, which then waits for the lock its caller holds. So
pyarrow only ever reads a file it opened itself (:func:`arrow_file`), or bytes already in
memory; a streamed CSV is read here in blocks of whole rows.
"""

import contextlib
import io
import os
import re
import shutil
import sys
from pathlib import Path

from fcnn_cli.core.errors import FcnnError, size_text
from fcnn_cli.data import metadata

BOM = b"\xef\xbb\xbf"
CSV_BLOCK = 1 << 20  # whole-file reads start at pyarrow's default block
MAX_PREAMBLE = 16 << 20  # bytes of '#' lines before the header: metadata of a million columns
PEEK = 65536  # bytes looked at to tell binary data and to guess the delimiter


@contextlib.contextmanager
def opened(path, name):
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
        meta = _preamble(stream, name)
        yield stream, meta, stream.readline(PEEK)
    finally:
        _close(stream)


def _preamble(stream, name):
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
        if line.startswith(metadata.CSV_META_PREFIX):
            meta = metadata.parse(line[len(metadata.CSV_META_PREFIX):], name)
    return meta


def _parse_options(header):
    """A comma, or else the semicolon, tab or bar that the header holds, delimits; a quoted
    value may hold line breaks."""
    import pyarrow.csv as pacsv

    delimiter = ","
    if b"," not in header:
        delimiter = next((d for d in (";", "\t", "|") if d.encode() in header), ",")
    return pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)


def _close(stream):
    """Close a file; stdin stays open for whoever reads it next."""
    if stream is not sys.stdin.buffer:
        stream.close()


def read(path, name, longest):
    """A whole CSV as an Arrow table, and fcnn's metadata from it. pyarrow parses it in blocks,
    each of which must hold a whole row: after a longer row it is parsed again with blocks
    twice as large, up to ``longest`` bytes."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with opened(path, name) as (stream, meta, header):
        parse = _parse_options(header)
        source = _rereadable(path, name, stream, header)
    block = min(CSV_BLOCK, longest)
    while True:
        try:
            with source() as file:
                return pacsv.read_csv(file, read_options=pacsv.ReadOptions(block_size=block),
                                      parse_options=parse), meta
        except pa.ArrowInvalid as e:
            block = _larger_block(e, block, name, longest)


def _rereadable(path, name, stream, header):
    """A function that opens the CSV at its header for pyarrow, as often as asked: a regular
    file pyarrow opens itself; stdin or a pipe, which cannot be read twice, is read into memory
    here."""
    import pyarrow as pa

    if name != "<stdin>" and Path(path).is_file():
        start = stream.tell() - len(header)
        return lambda: arrow_file(path, start)
    data = io.BytesIO()
    data.write(header)
    shutil.copyfileobj(stream, data)  # one copy in memory, however long
    return lambda: pa.BufferReader(pa.py_buffer(data.getbuffer()))


def arrow_file(path, start=0):
    """The file opened by pyarrow itself (see the top); by its bytes, as a name that is not
    UTF-8 (legal on Linux) is not text pyarrow takes."""
    import pyarrow as pa

    file = pa.OSFile(os.fsencode(path))
    file.seek(start)
    return file


def pieces(stream, header, name, size, longest):
    """The schema and the Arrow tables of a CSV streamed from blocks of whole rows of about
    ``size`` bytes (none longer than ``longest``), ``stream`` read past ``header`` by
    :func:`opened`. The first block, header and rows, sets the column types of the later
    ones."""

    parse = _parse_options(header)
    blocks = _row_blocks(stream, header, size, name, parse.delimiter, longest)
    head = next(blocks, b"")
    first = _parsed(head, parse)
    while not first.num_rows and (more := next(blocks, b"")):  # types need rows to show them
        head += more
        first = _parsed(head, parse)
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


def _row_blocks(stream, data, size, name, delimiter, longest):
    """The bytes of ``stream``, after ``data`` read from it already, in blocks of whole rows:
    about ``size`` bytes, or one longer row."""
    while more := stream.read(max(size, len(data))):  # a long row: read twice as much
        data += more
        end = _rows_end(data, delimiter)
        if end:
            yield data[:end]
            data = data[end:]
        elif len(data) > longest:
            raise _row_too_long(name, longest)
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


def _row_too_long(name, longest):
    if name == "<stdin>":
        return FcnnError(f"{name}: a row is longer than {size_text(longest)}, the most "
                         "fcnn reads from stdin at once; give the file's path instead of '-'")
    return FcnnError(f"{name}: a row is longer than {size_text(longest)}, the longest row fcnn "
                     "reads")


def _larger_block(error, block, name, longest):
    """The block size to read again with after ``error``, which must be pyarrow's complaint
    about a row longer than a block; any other error passes on."""
    if "straddl" not in str(error):
        raise error
    if block >= longest:
        raise _row_too_long(name, longest) from None
    return min(2 * block, longest)

