"""FITS files: a binary-table HDU as a table (astropy reads the headers; the rows are read
here, block by block, straight from the file).

``file.fits`` reads the first binary table, ``file.fits:N`` HDU number N (the primary HDU is
0) and ``file.fits:EXTNAME`` the HDU of that name. Column units come from ``TUNITn``; the header
keyword ``FCNN`` holds fcnn's metadata as JSON.
"""

import contextlib
import gzip
import io
import json
import os

import numpy as np

from fcnn_cli.core.errors import FcnnError, first_line
from fcnn_cli.data.formats import (Source, check_unpacked, frame_of, library, metadata_text,
                              named_columns, reading)

META_KEY = "FCNN"
BLOCK = 2880  # FITS files come in blocks of this many bytes
EXTNAME = "EVENTS"  # the table fcnn writes, named as fcnn's ROOT trees are
SIGNATURE = b"SIMPLE  ="  # a FITS file's first bytes
GZIP = b"\x1f\x8b"  # a gzip file's: astropy reads such a file whatever its name, and so does fcnn
MIN_TEXT = 32  # bytes of a text column at least: its width is fixed by the first block
# dtype kind and size: (FITS TFORM letter, how the rows store it)
CODES = {"b1": ("L", "i1"), "u1": ("B", "u1"), "i1": ("I", ">i2"), "i2": ("I", ">i2"),
         "u2": ("J", ">i4"), "i4": ("J", ">i4"), "u4": ("K", ">i8"), "i8": ("K", ">i8"),
         "u8": ("K", ">i8"), "f2": ("E", ">f4"), "f4": ("E", ">f4"), "f8": ("D", ">f8")}
UNSIGNED = 1 << 63  # the TZERO of unsigned 64-bit integers: FITS stores them sign bit flipped
GUNZIP = "fcnn unpacks no further: gunzip it first if it is sound"


def _fits(name):
    library("fits", name)
    from astropy.io import fits

    return fits


@contextlib.contextmanager
def opened(path, selector, name):
    fits = _fits(name)
    with reading(name, "FITS"):
        packed = _compressed(path, name)
        file = _bounded(path, name, packed)
    with file:
        with reading(name, "FITS"):
            hdus = fits.open(file, memmap=False, lazy_load_hdus=True)
        with hdus:
            with reading(name, "FITS"):
                hdu = _hdu(fits, hdus, selector, name)
                source = _source(path, hdu, name, packed)
            yield source


class _Bounded:
    """A file that astropy may not seek beyond what ``check_unpacked`` allows: it seeks past
    each HDU's data to the next header (from the file's start), wherever a header says that
    lies, and a header may say 10**15 rows (a seek the system refuses) or, compressed, rows
    that would unpack for ever."""

    def seek(self, offset, whence=os.SEEK_SET):
        if whence == os.SEEK_SET:
            check_unpacked(self.shown, f"data up to byte {offset:,}", offset, self.path,
                           GUNZIP if isinstance(self, gzip.GzipFile) else None)
        return super().seek(offset, whence)


class _BoundedFile(_Bounded, io.FileIO):
    pass


class _BoundedGzip(_Bounded, gzip.GzipFile):
    pass


def _bounded(path, name, packed):
    """The file for astropy to read the headers from, through gzip where ``packed``."""
    file = (_BoundedGzip if packed else _BoundedFile)(path, "rb")
    file.path, file.shown = path, name
    return file


def _compressed(path, name):
    """Whether the file is gzip-compressed (its rows are then read through gzip); a file that
    is neither FITS nor gzip is refused before astropy, which opens bzip2 and zip files too."""
    with open(path, "rb") as file:
        head = file.read(len(SIGNATURE))
    if head.startswith(GZIP):
        return True
    if head != SIGNATURE:
        raise FcnnError(f"{name}: not a readable FITS file: it does not start with "
                        f"{SIGNATURE.decode()!r} (nor is it gzip-compressed FITS)")
    return False


def _hdu(fits, hdus, selector, name):
    """The HDU that ``selector`` names (a number or an EXTNAME), or else the first binary
    table."""
    if selector is None:
        for hdu in hdus:
            if isinstance(hdu, fits.BinTableHDU):
                return hdu
        raise FcnnError(f"{name}: holds no binary table (HDUs: "
                        f"{', '.join(repr(h.name) for h in hdus) or 'none'})")
    try:
        hdu = hdus[int(selector) if selector.isdigit() else selector]
    except (IndexError, KeyError):
        raise FcnnError(f"{name}: no HDU {selector!r}: the file holds {len(hdus)} (" +
                        ", ".join(f"{i} {h.name!r}" for i, h in enumerate(hdus)) + ")") from None
    if not isinstance(hdu, fits.BinTableHDU):
        raise FcnnError(f"{name}: HDU {selector!r} is a {type(hdu).__name__}, not a binary "
                        "table")
    return hdu


def _source(path, hdu, name, packed):
    columns = hdu.columns
    varying = [c.name for c in columns if getattr(c.format, "p_format", None)]
    if varying:
        raise FcnnError(f"{name}: column(s) {', '.join(map(repr, varying))} hold arrays of "
                        "varying length, which fcnn does not read; flatten them to one number "
                        "per row, or write the table without them")
    dtype = columns.dtype.newbyteorder(">")
    if dtype.itemsize != hdu.header["NAXIS1"]:
        raise FcnnError(f"{name}: its rows are {hdu.header['NAXIS1']} bytes, but its columns "
                        f"make {dtype.itemsize}: not a table fcnn reads")
    rows, start = int(hdu.header["NAXIS2"]), hdu.fileinfo()["datLoc"]
    held = max(0, (os.path.getsize(path) - start) // max(dtype.itemsize, 1))
    if rows > held and dtype.itemsize and not packed:  # a compressed one: known as it is read
        raise FcnnError(f"{name}: truncated: its header promises {rows} rows, the file holds "
                        f"{held}")
    units = {c.name: c.unit for c in columns if c.unit}
    opener = gzip.open if packed else open
    return Source(lambda step: _blocks(opener(path, "rb"), start, dtype, rows, columns, step,
                                       name), rows,
                  metadata_text(hdu.header.get(META_KEY), name, f"keyword {META_KEY}"), units)


def _blocks(file, start, dtype, rows, columns, step, name):
    with file:
        for first in range(0, max(rows, 1), step):  # no rows: one empty block, with columns
            count = min(step, rows - first)
            with reading(name, "FITS"):
                file.seek(start + first * dtype.itemsize)  # in a gzip file: read up to there
                raw = _rows(file, dtype, count)
            if len(raw) < count:
                raise FcnnError(f"{name}: truncated: its header promises {rows} rows, the file "
                                f"ends after {first + len(raw)}")
            yield frame_of({c.name: _values(c, raw[c.name]) for c in columns})


def _rows(file, dtype, count):
    """Up to ``count`` rows from the file's position (fewer where it ends)."""
    if not dtype.itemsize:  # a table of no columns
        return np.zeros(count, dtype)
    data = file.read(count * dtype.itemsize)
    return np.frombuffer(data, dtype=dtype, count=len(data) // dtype.itemsize)


def _values(column, raw):
    """A column's stored values as what they stand for: booleans, text, scaled numbers, the
    TNULL value as missing."""
    code = column.format.format
    if code == "L":
        return raw == ord("T")
    if code == "A":
        text = np.char.rstrip(np.char.decode(raw, "utf-8", errors="replace"), " ")
        return text.astype(object)
    values = raw.astype(raw.dtype.newbyteorder("="))
    if column.null is None or values.dtype.kind not in "iuf":
        return _scaled(column, values)
    # A column that may hold nulls is read as floats, NaN for null, in every block alike (as
    # pandas reads integers with gaps): its type does not change partway through a file.
    missing = values == _number(column.null)
    return np.where(missing, np.nan, _scaled(column, values).astype(np.float64))


def _number(null):
    try:
        return float(null) if isinstance(null, float) else int(null)
    except (TypeError, ValueError):
        return np.nan  # a TNULL that is no number marks nothing


def _scaled(column, values):
    zero, scale = column.bzero or 0, column.bscale or 1
    bits = 8 * values.dtype.itemsize
    if scale == 1 and values.dtype.kind in "iu" and abs(zero) == 1 << (bits - 1):
        # the FITS way of storing the other signedness: flip the sign bit
        flipped = values.view(f"u{bits // 8}") ^ np.array(1 << (bits - 1), f"u{bits // 8}")
        return flipped.view(("i" if values.dtype.kind == "u" else "u") + str(bits // 8))
    return values * scale + zero if (zero, scale) != (0, 1) else values


class Writer:
    """A primary HDU and one binary table, streamed: the header first, with the row count
    filled in at the end. A text column is as wide as its longest value in the first block
    (at least ``MIN_TEXT`` bytes): FITS fixes widths before the rows."""

    def __init__(self, path, name, metadata):
        self.fits = _fits(name)
        self.name, self.metadata, self.dtype, self.rows = name, metadata, None, 0
        self.stream = open(path, "wb")

    def write(self, frame):
        columns = named_columns(frame, self.name, "FITS")
        if self.dtype is None:
            self._start(columns)
        record = np.zeros(len(frame), self.dtype)
        for c, values in columns.items():
            record[c] = self._stored(c, values)
        self.stream.write(record.tobytes())
        self.rows += len(frame)

    def _start(self, columns):
        fits, units = self.fits, self.metadata.get("units", {})
        layout = {c: self._layout(c, v) for c, v in columns.items()}
        try:
            hdu = fits.BinTableHDU.from_columns(
                [fits.Column(name=c, format=code, unit=units.get(c),
                             bzero=UNSIGNED if columns[c].dtype == np.uint64 else None)
                 for c, (code, _) in layout.items()], nrows=0, name=EXTNAME)
            if self.metadata:
                hdu.header[META_KEY] = json.dumps(self.metadata)
            header = hdu.header.tostring().encode("ascii")
        except (ValueError, KeyError, UnicodeEncodeError) as e:  # a name FITS cannot hold
            raise FcnnError(f"{self.name}: cannot write it as a FITS table: "
                            f"{first_line(e, 160)}") from None
        primary = fits.PrimaryHDU().header.tostring().encode("ascii")
        self.rows_card = len(primary) + header.index(b"NAXIS2  =")
        self.rows_comment = hdu.header.comments["NAXIS2"]
        self.stream.write(primary + header)
        self.dtype = np.dtype([(c, stored) for c, (_, stored) in layout.items()])

    def _layout(self, column, values):
        if values.dtype == object:
            width = max([MIN_TEXT] + [len(v.encode("utf-8")) for v in values])
            return f"{width}A", f"S{width}"
        key = f"{values.dtype.kind}{values.dtype.itemsize}"
        if key not in CODES:
            raise FcnnError(f"{self.name}: column {column!r} holds {values.dtype} values, "
                            "which fcnn does not write to FITS; write Parquet instead")
        return CODES[key]

    def _stored(self, column, values):
        kind = self.dtype[column]
        if kind.kind == "S":
            if values.dtype != object:
                values = values.astype(str).astype(object)
            encoded = [v.encode("utf-8") for v in values]
            if encoded and max(map(len, encoded)) > kind.itemsize:
                raise FcnnError(f"{self.name}: column {column!r} holds a value longer than "
                                f"{kind.itemsize} bytes, the width its first rows set; write "
                                "HDF5 or Parquet instead")
            return np.array(encoded, dtype=kind)
        if values.dtype == object:
            raise FcnnError(f"{self.name}: column {column!r} turns from numbers to text partway "
                            "through, which a FITS column cannot hold; write CSV instead")
        if kind == np.dtype("i1"):  # only booleans are stored so: FITS has no signed byte
            return np.where(values, ord("T"), ord("F")).astype("i1")
        if values.dtype == np.uint64:  # stored less TZERO = 2**63: its sign bit flipped
            return (values ^ np.uint64(UNSIGNED)).view(np.int64)
        return values.astype(kind)

    def close(self):
        if self.dtype is None:  # nothing written: a table of no columns
            self._start({})
        self.stream.write(b"\0" * (-self.rows * self.dtype.itemsize % BLOCK))
        self.stream.seek(self.rows_card)
        self.stream.write(self.fits.Card("NAXIS2", self.rows, self.rows_comment).image
                          .encode("ascii"))
        self.stream.close()
