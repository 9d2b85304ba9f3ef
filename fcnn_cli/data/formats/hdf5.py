"""HDF5 files: a compound dataset, or a group of equal-length 1-D datasets, as a table (h5py).

``file.h5`` reads the root group's 1-D datasets, or else the file's one table; ``file.h5:/path``
picks another. A dataset's ``units`` (or ``unit``) attribute gives its column's unit; the
attribute ``fcnn`` of the table holds fcnn's metadata as JSON. fcnn writes a group of 1-D
datasets (a column each, in the root group), which reads fast column by column.
"""

import contextlib
import json
import posixpath

import numpy as np

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.formats import (Source, check_unpacked, frame_of, library, metadata_text,
                              named_columns, reading)

META_KEY = "fcnn"
UNIT_KEYS = ("units", "unit")
WRITE_CHUNK = 4096  # rows per stored chunk at most: large files read fast
MIN_CHUNK = 64
TABLES_SHOWN = 8
MAX_HOPS = 16  # soft links followed in a row, at most
SAME_FILE = "."  # a virtual dataset's source file name for its own file
OUTSIDE = "fcnn reads only the file it is given: copy those values into it"
UNCOMPRESSED = "fcnn unpacks no further: store it uncompressed (h5repack -f NONE) if it is sound"
# filters HDF5 files often use that the HDF5 library lacks unless a plugin adds them
PLUGIN_FILTERS = {307: "bzip2", 32001: "Blosc", 32004: "LZ4", 32008: "Bitshuffle",
                  32013: "ZFP", 32015: "Zstandard", 32017: "SZ", 32026: "Blosc2"}


@contextlib.contextmanager
def opened(path, selector, name):
    h5py = library("hdf5", name)
    with contextlib.suppress(ImportError):
        import hdf5plugin  # noqa: F401 - where installed, it adds the filters it names
    with reading(name, "HDF5"):
        file = h5py.File(path, "r")
    with file:
        with reading(name, "HDF5"):
            table = _table(file, selector, name)
            grouped = isinstance(table, h5py.Group)
            datasets = list(_columns(table, name).values()) if grouped else [table]
            for dataset in datasets:
                _check_dataset(dataset, name)
            source = _group(table, name) if grouped else _compound(table, name)
            check_unpacked(name, f"{source.rows:,} rows", source.rows *
                           sum(d.dtype.itemsize for d in datasets), path, UNCOMPRESSED)
        yield source


def _check_dataset(dataset, name):
    """Refuse a dataset whose values lie in other files (external storage, a virtual dataset's
    sources), or that needs a filter the HDF5 library lacks."""
    if dataset.external:
        files = ", ".join(repr(file) for file, _, _ in dataset.external)
        raise FcnnError(f"{name}: dataset {dataset.name!r} keeps its values in another file "
                        f"({files}); {OUTSIDE}")
    if dataset.is_virtual:
        files = sorted({s.file_name for s in dataset.virtual_sources()} - {SAME_FILE})
        if files:
            raise FcnnError(f"{name}: virtual dataset {dataset.name!r} maps values of other "
                            f"files ({', '.join(map(repr, files))}); {OUTSIDE}")
    _check_filters(dataset, name)


def _check_filters(dataset, name):
    """A filter the HDF5 library lacks is named as such, not as a damaged file."""
    import h5py

    plist = dataset.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code, _, _, called = plist.get_filter(i)
        if not h5py.h5z.filter_avail(code):
            what = called.decode("utf-8", "replace") or PLUGIN_FILTERS.get(code, "unknown")
            raise FcnnError(f"{name}: dataset {dataset.name!r} is compressed with HDF5 filter "
                            f"{code} ({what}), which this HDF5 library lacks; the hdf5plugin "
                            "package may provide it (pip install hdf5plugin)")


def _table(file, selector, name):
    """The group or compound dataset that ``selector`` names, or else the root group if it
    holds 1-D datasets, or else the file's only table."""
    if selector is not None:
        found = _at(file, selector, name)
        if found is None:
            raise FcnnError(f"{name}: no dataset or group {selector!r} in the file; "
                            f"its tables: {_listing(_tables(file, name))}")
        if not _is_table(found, name):
            raise FcnnError(f"{name}: {selector!r} is not a table (a compound dataset or a "
                            "group of 1-D datasets)")
        return found
    if _is_table(file, name):
        return file
    tables = _tables(file, name)
    if len(tables) != 1:
        raise FcnnError(f"{name}: holds no table (a compound dataset or a group of 1-D "
                        "datasets)" if not tables else f"{name}: holds {len(tables)} tables "
                        f"({_listing(tables)}); choose one with {name}:/PATH")
    return file[tables[0]]


def _at(file, selector, name):
    """The item at the path ``selector``, followed link by link (none into another file), or
    None where there is none."""
    return _resolved(file, posixpath.join("/", selector), name)


def _inside(group, key, name):
    """The item that ``key`` of ``group`` names (None for a dangling soft link)."""
    return _resolved(group.file, posixpath.join(group.name, key), name)


def _resolved(file, path, name):
    """The item at ``path`` (None where there is none), each soft link on the way followed by
    hand: an external link anywhere on it, however many soft links lead there, is refused
    before the other file is opened, and so is a chain of soft links too long (a loop)."""
    import h5py

    parts, at, hops = [p for p in path.split("/") if p not in ("", ".")], "/", 0
    while parts:
        part = parts.pop(0)
        group = file[at]  # reached by hard links only
        link = group.get(part, getlink=True) if isinstance(group, h5py.Group) else None
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            raise FcnnError(f"{name}: {posixpath.join(at, part)!r} links to {link.path!r} in "
                            f"the file {link.filename!r}; {OUTSIDE}")
        if isinstance(link, h5py.SoftLink):
            hops += 1
            if hops > MAX_HOPS:
                raise FcnnError(f"{name}: {path!r}: more than {MAX_HOPS} soft links in a row "
                                "(a loop): not a table")
            parts = [p for p in link.path.split("/") if p not in ("", ".")] + parts
            at = "/" if link.path.startswith("/") else at
        else:
            at = posixpath.join(at, part)
    return file[at]


def _tables(file, name):
    found = ["/"] if _is_table(file, name) else []
    # Objects reached by hard links only: neither soft nor external links are followed.
    file.visititems(lambda path, item: found.append("/" + path) if _is_table(item, name)
                    else None)
    return found


def _listing(paths):
    shown = ", ".join(map(repr, paths[:TABLES_SHOWN]))
    return (shown + (f", … ({len(paths)} in all)" if len(paths) > TABLES_SHOWN else "")) or "none"


def _is_table(item, name):
    import h5py

    if isinstance(item, h5py.Dataset):
        return item.dtype.names is not None and item.ndim == 1
    return bool(_columns(item, name))


def _columns(group, name):
    """A group's 1-D datasets of plain values, in their stored order."""
    import h5py

    items = {key: _inside(group, key, name) for key in group}
    return {key: item for key, item in items.items()
            if isinstance(item, h5py.Dataset) and item.ndim == 1 and item.dtype.names is None}


def _group(group, name):
    columns = _columns(group, name)
    lengths = {key: len(item) for key, item in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k!r}: {n}" for k, n in list(lengths.items())[:6])
        raise FcnnError(f"{name}: the datasets of group {group.name!r} differ in length "
                        f"({shown}): not one table")
    rows = next(iter(lengths.values()))
    units = {k: unit for k, item in columns.items() if (unit := _attribute(item, UNIT_KEYS))}

    def read(start, stop):
        return {key: _decoded(item, item[start:stop]) for key, item in columns.items()}

    return Source(lambda step: _blocks(read, rows, step, name), rows, _metadata(group, name),
                  units)


def _compound(dataset, name):
    def read(start, stop):
        block = dataset[start:stop]
        return {field: _decoded(dataset, block[field]) for field in block.dtype.names}

    return Source(lambda step: _blocks(read, len(dataset), step, name), len(dataset),
                  _metadata(dataset, name))


def _blocks(read, rows, step, name):
    for start in range(0, max(rows, 1), step):  # no rows: one empty block, with its columns
        with reading(name, "HDF5"):
            frame = frame_of(read(start, min(start + step, rows)))
        yield frame


def _decoded(dataset, values):
    """Text as str: fixed-length or variable-length bytes, in UTF-8."""
    if values.dtype.kind == "S" or (values.dtype == object and len(values) and
                                    isinstance(values[0], bytes)):
        return np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                         for v in values], dtype=object)
    return values


def _metadata(item, name):
    return metadata_text(_attribute(item, (META_KEY,)), name, f"attribute {META_KEY!r}")


def _attribute(item, keys):
    """The first of the attributes ``keys`` that ``item`` has, as text."""
    for key in keys:
        if key in item.attrs:
            value = item.attrs[key]
            if isinstance(value, np.ndarray) and value.size == 1:
                value = value.item()
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


class Writer:
    """A 1-D dataset per column in the root group, grown block by block; units as each
    dataset's ``units`` attribute, fcnn's metadata as the file's ``fcnn`` attribute."""

    def __init__(self, path, name, metadata):
        self.h5py = library("hdf5", name)
        self.name, self.units, self.datasets, self.rows = name, metadata.get("units", {}), None, 0
        self.file = self.h5py.File(path, "w", track_order=True)  # columns keep their order
        if metadata:
            self.file.attrs[META_KEY] = json.dumps(metadata)

    def write(self, frame):
        columns = named_columns(frame, self.name, "HDF5")
        if self.datasets is None:
            # chunks of about the first block's rows: a small file stays small
            rows = max(MIN_CHUNK, min(WRITE_CHUNK, len(frame)))
            self.datasets = {c: self._dataset(c, v.dtype, rows) for c, v in columns.items()}
        n = len(frame)
        for c, values in columns.items():
            dataset = self.datasets[c]
            if values.dtype == object and dataset.dtype != object:
                raise FcnnError(f"{self.name}: column {c!r} turns from numbers to text partway "
                                "through, which an HDF5 dataset cannot hold; write CSV instead")
            dataset.resize((self.rows + n,))
            dataset[self.rows:] = values
        self.rows += n

    def _dataset(self, column, dtype, rows):
        if "/" in column or column in (".", ""):
            raise FcnnError(f"{self.name}: column {column!r} cannot name an HDF5 dataset "
                            "(a '/' separates groups); rename it")
        kind = self.h5py.string_dtype() if dtype == object else dtype
        dataset = self.file.create_dataset(column, shape=(0,), maxshape=(None,), dtype=kind,
                                           chunks=(rows,))
        if self.units.get(column):
            dataset.attrs["units"] = self.units[column]
        return dataset

    def close(self):
        self.file.close()
