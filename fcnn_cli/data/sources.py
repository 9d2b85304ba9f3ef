"""Tables larger than memory, read piece by piece: a Parquet file or directory as a *source*.

A source is the small interface a row-block reader implements (:class:`ParquetSource` here):
``name``, ``targets``, ``units``, ``pieces`` (the rows of each piece, in order), ``starts``
(the position of each piece's first row among all rows), ``arrow(piece, columns)``, one
piece as an Arrow table, and ``read(piece, columns, arrow=None)``, a
:class:`~fcnn_cli.data.tables.Table` of one piece (or of the Arrow table read of it) that names
its rows for messages. A validation or test table of its own is read in chunks on every pass
(:class:`FileChunks`). A file that is not as it was when it was opened is read no more
(:class:`~fcnn_cli.core.errors.DataChanged`).
"""

import collections
import contextlib
import logging
import os
import stat
from pathlib import Path

import numpy as np

from fcnn_cli.core.errors import DataChanged, FcnnError, first_line
from fcnn_cli.data import metadata

log = logging.getLogger(__name__)

# Names a directory's walk passes over, as pyarrow's own discovery does: the files Parquet
# writers leave beside the data (_SUCCESS, _metadata, .crc).
IGNORED_PREFIXES = (".", "_")


def open_source(path):
    """The source of a table to stream: a Parquet file or directory."""
    from fcnn_cli.data.tables import table_format

    if Path(path).is_dir() or str(path) != "-" and table_format(path) == "parquet":
        return ParquetSource(path)
    raise FcnnError(f"{path}: streaming reads Parquet (a file or a directory of files); "
                    "convert the table, or train without streaming", ("stream",))


class ParquetSource:
    """A Parquet file or a directory of them (hive-partitioned ``key=value`` folders too),
    its pieces the row groups of its files in path order. A file that cannot be read is named;
    one that is not as it was when the source was opened (:func:`_stamp`) is read no more
    (:class:`~fcnn_cli.core.errors.DataChanged`)."""

    def __init__(self, path):
        import pyarrow as pa
        import pyarrow.dataset as ds
        from pyarrow.fs import LocalFileSystem

        self.name = str(path)
        if not Path(path).exists():
            raise FcnnError(f"{self.name}: no such file or directory")
        directory = Path(path).is_dir()
        # A directory is walked here, not by pyarrow, whose walk follows links round a cycle
        # without end, and which no signal stops.
        self._stamps = _parquet_files(self.name) if directory else {self.name: _stamp(self.name)}
        if not self._stamps:
            raise FcnnError(f"{self.name}: holds no Parquet files")
        try:
            self.dataset = ds.dataset(
                list(self._stamps) if directory else self.name, format="parquet",
                partitioning="hive", partition_base_dir=self.name if directory else None,
                filesystem=LocalFileSystem())
            fragments = sorted(self.dataset.get_fragments(), key=lambda f: f.path)
        except UnicodeError:  # pyarrow's file system takes names of UTF-8 text only
            raise FcnnError(f"{self.name}: --stream reads only files and directories whose "
                            "names are UTF-8 text; rename them (one file reads without "
                            "--stream too)") from None
        except (pa.ArrowException, OSError, ValueError) as e:
            raise FcnnError(f"{self.name}: not a readable Parquet file or directory: "
                            f"{first_line(e, 160)}") from None
        self._groups = [g for f in fragments for g in _row_groups(f)]
        if not self._groups:
            raise FcnnError(f"{self.name}: holds no Parquet files")
        self.pieces = [rows for _, _, rows in self._groups]
        self.starts = np.concatenate([[0], np.cumsum(self.pieces)[:-1]]).tolist()
        self._in_file = [sum(r for f, _, r in self._groups[:k] if f is fragment)
                         for k, (fragment, _, _) in enumerate(self._groups)]
        meta = metadata.of_schema(self.dataset.schema, self.name)
        names = set(self.dataset.schema.names)
        self.targets = [t for t in meta.get("targets", []) if t in names]
        self.units = {k: v for k, v in meta.get("units", {}).items() if k in names}

    def files(self):
        """The source's files, in the order found."""
        return list(self._stamps)

    def holds(self, path):
        """Whether ``path`` is one of the source's files (through symbolic and hard links)."""
        try:
            info = os.stat(path)
        except OSError:
            return False
        return any(stamp[:2] == (info.st_dev, info.st_ino) for stamp in self._stamps.values())

    def arrow(self, piece, columns=None):
        """Piece ``piece``'s ``columns`` (all by default) as an Arrow table."""
        import pyarrow as pa

        fragment, group, _ = self._groups[piece]
        with _unchanged(fragment.path, self._stamps[fragment.path]):
            try:
                return fragment.subset(row_group_ids=[group]).to_table(
                    columns=columns, schema=self.dataset.schema)
            except (pa.ArrowException, OSError, ValueError) as e:
                raise FcnnError(f"{fragment.path}: not a readable table: "
                                f"{first_line(e, 160)}") from None

    def read(self, piece, columns=None, arrow=None):
        """Piece ``piece`` as a Table of ``columns`` (all by default), named and numbered as
        its file: messages point at the file's own rows; from ``arrow`` where it has been
        read already."""
        from fcnn_cli.data.tables import Table, _table_from_arrow

        fragment = self._groups[piece][0]
        arrow = self.arrow(piece, columns) if arrow is None else arrow
        table = _table_from_arrow(arrow, {}, fragment.path, release=True)
        return Table(table.frame, self.targets, self.units, fragment.path,
                     self._in_file[piece])


def _parquet_files(root):
    """The files in the directory ``root`` and below, each with its :func:`_stamp`, in the
    order found. Names that start with "." or "_" are passed over. Symbolic links are
    followed, but each directory and each file is taken once however many links (or hard
    links) lead to it, with a warning for each one left out, so that no row is read twice; a
    link to a directory that holds the link (a cycle) is refused."""
    files, dirs, seen = {}, {os.path.realpath(root): root}, {}
    pending = collections.deque([(root, (os.path.realpath(root),))])
    while pending:
        directory, chain = pending.popleft()
        for name in _listing(directory):
            path = os.path.join(directory, name)
            info = _stat(path)
            if stat.S_ISDIR(info.st_mode):
                real = os.path.realpath(path)
                if any(os.path.commonpath([real, up]) == real for up in chain):
                    raise FcnnError(f"{path}: a symbolic link to a directory that holds it (a "
                                    "cycle): its files would be read again and again; remove "
                                    "the link")
                if _once(dirs, real, path, "directory"):
                    pending.append((path, chain + (real,)))
            elif not stat.S_ISREG(info.st_mode):
                raise FcnnError(f"{path}: not a regular file (a FIFO, socket or device); "
                                "move it out of the directory")
            elif _once(seen, (info.st_dev, info.st_ino), path, "file"):
                files[path] = _stamp(path, info)
    return files


def _listing(directory):
    """The names in ``directory`` to look at, sorted."""
    try:
        names = os.listdir(directory)
    except OSError as e:
        raise FcnnError(f"{directory}: cannot list the directory: {e.strerror or e}") from None
    return sorted(n for n in names if not n.startswith(IGNORED_PREFIXES))


def _stat(path):
    """``os.stat(path)``, through links; what cannot be found (a link to nothing) is named."""
    try:
        return os.stat(path)
    except OSError as e:
        link = f" (a symbolic link to {os.readlink(path)!r})" if os.path.islink(path) else ""
        raise FcnnError(f"{path}{link}: {e.strerror or e}") from None


def _once(seen, key, path, what):
    """Whether ``key`` (a directory's real path, a file's device and inode) is new; a warning
    names the path that is left out, and the one taken."""
    if key in seen:
        log.warning("%s: the same %s as %s (by a link): left out, so that its rows are read "
                    "once", path, what, seen[key])
        return False
    seen[key] = path
    return True


def _stamp(path, info=None):
    """What tells that a file changed: the file (device and inode), its size and the time it
    was last written to."""
    info = info or _stat(path)
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def unchanged(path):
    """Around the reads of ``path``: a DataChanged unless the file stays as it is now."""
    return _unchanged(path, _stamp(path))


@contextlib.contextmanager
def _unchanged(path, then):
    """Around a read of ``path``: a DataChanged unless the file is still as its stamp
    ``then`` says, before the read and after it (what was read may be of the new file), also
    after a read that failed (a file cut short fails to read); a ``then`` of None checks
    nothing (stdin)."""
    _check(path, then)
    try:
        yield
    except FcnnError:
        _check(path, then)
        raise
    _check(path, then)


def _check(path, then):
    if then is None:
        return
    try:
        now = _stamp(path, os.stat(path))
    except OSError as e:
        now = "it is gone" if isinstance(e, FileNotFoundError) else e.strerror
    if now != then:
        raise DataChanged(f"{path}: changed while the run was reading it "
                          f"({_change(then, now)})")


def _change(then, now):
    """What changed between two stamps of a file (``now`` a reason where there is none)."""
    if isinstance(now, str):
        return now
    if now[:2] != then[:2]:
        return "another file took its place"
    if now[2] != then[2]:
        return f"its size went from {then[2]} to {now[2]} bytes"
    return "it was written to"


def _row_groups(fragment):
    """(fragment, row group, rows) of each row group of one file; a bad file is named."""
    import pyarrow as pa

    try:
        meta = fragment.metadata
    except (pa.ArrowException, OSError, ValueError) as e:
        raise FcnnError(f"{fragment.path}: not a readable Parquet file: "
                        f"{first_line(e, 160)}") from None
    return [(fragment, i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups)
            if meta.row_group(i).num_rows]


class FileChunks:
    """A validation or test table of its own (CSV or Parquet), streamed in chunks on every
    pass: a source whose rows all belong to one split. Stdin or a pipe, which can be read only
    once, is read now, before training, and its chunks kept in memory."""

    def __init__(self, path):
        from fcnn_cli.data.tables import is_pipe, iter_tables

        self.name, self.path = str(path), path
        chunks = iter_tables(path)  # a missing file is reported now, not at the first pass
        self.kept = list(chunks) if is_pipe(path) else None
        self.stamp = _stamp(path) if os.path.isfile(path) else None  # stdin: none

    def tables(self):
        """The file's chunks; a DataChanged once the file is not as it was."""
        from fcnn_cli.data.tables import iter_tables

        if self.kept is not None:
            yield from self.kept
            return
        with _unchanged(self.path, self.stamp):  # a file that is gone fails here
            chunks = iter_tables(self.path)
        while True:
            with _unchanged(self.path, self.stamp):
                table = next(chunks, None)
            if table is None:
                return
            yield table



class RecipeSource:
    """The Parquet files of a recipe (its samples, or DATA's several files) as one source, each
    piece through the recipe's steps (:mod:`fcnn_cli.data.recipe`): its derived columns, the
    rows that pass the selection, the class and weight columns. ``pieces`` and ``starts`` count
    the files' rows as they are; a piece read holds those that pass, numbered from its first
    (positions the split takes alike whichever way the piece is read)."""

    def __init__(self, recipe):
        self.recipe, self.parts = recipe, []
        for sample in recipe.samples:
            parts = [(sample, _recipe_part(path, sample.whole)) for path in sample.files]
            # Hashed now, once each file is stamped: a file that changes later is not read.
            sample.records = [r for _, source in parts for f in source.files()
                              if (r := sample.recorded(f)) is not None]
            self.parts += parts
        self._index = [(k, p) for k, (_, source) in enumerate(self.parts)
                       for p in range(len(source.pieces))]
        self.pieces = [self.parts[k][1].pieces[p] for k, p in self._index]
        self.starts = np.concatenate([[0], np.cumsum(self.pieces)[:-1]]).tolist()
        self.name = recipe.name()
        first = self.parts[0][1]
        self.targets = [recipe.label] if recipe.label else first.targets
        self.units = first.units
        self.classes = recipe.classes or None  # in the order given, not sorted

    def holds(self, path):
        return any(source.holds(path) for _, source in self.parts)

    def read(self, piece, columns=None, arrow=None):
        """Piece ``piece`` through the steps, as a Table of ``columns`` (all by default); from
        ``arrow``, what :meth:`arrow` gave of it, where that has been read already."""
        from fcnn_cli.data.tables import Table, _table_from_arrow

        k, p = self._index[piece]
        sample, source = self.parts[k]
        if arrow is not None:
            frame = _table_from_arrow(arrow, {}, source.name, release=True).frame
        else:
            raw = source.read(p, self._raw(source, columns))
            frame = self.recipe.apply(raw, sample).frame
            frame = (frame if columns is None else frame[columns]).reset_index(drop=True)
        return Table(frame, self.targets, self.units, source.name, source._in_file[p])

    def arrow(self, piece, columns=None):
        import pyarrow as pa

        return pa.Table.from_pandas(self.read(piece, columns).frame, preserve_index=False)

    def _raw(self, source, columns):
        """The raw columns of ``source`` that make ``columns`` (None: all of them)."""
        if columns is None:
            return None
        needed = self.recipe.to_read(columns)
        missing = [c for c in needed if c not in source.dataset.schema.names]
        if missing:
            raise FcnnError(f"{source.name}: no column {missing[0]!r}; the files must agree on "
                            "the columns used")
        return needed


def _recipe_part(path, whole):
    """The source of one file of a recipe, or of DATA's ``whole`` directory, partitions and
    files below it too."""
    from fcnn_cli.data.tables import table_format

    if not whole and table_format(path) != "parquet":
        raise FcnnError(f"{path}: stream reads Parquet files; convert it, or train without "
                        "streaming", ("stream",))
    return ParquetSource(path)


class RecipeChunks(FileChunks):
    """A validation or test table of its own, streamed in chunks, each through the recipe's
    steps."""

    def __init__(self, path, recipe):
        super().__init__(path)
        self.recipe = recipe

    def tables(self):
        for table in super().tables():
            yield self.recipe.apply(table)
