"""Training on a table larger than memory: a Parquet file or directory read piece by piece.

A *source* is the small interface a row-block reader implements (:class:`ParquetSource` here):
``name``, ``targets``, ``units``, ``pieces`` (the rows of each piece, in order), ``starts``
(the position of each piece's first row among all rows), ``arrow(piece, columns)``, one
piece as an Arrow table, and ``read(piece, columns, arrow=None)``, a
:class:`~fcnn_cli.data.tables.Table` of one piece (or of the Arrow table read of it) that names
its rows for messages. From a
source, :func:`prepare` makes in one pass what :func:`fcnn_cli.engine.prepare.prepare` makes from a
table in memory — columns, task, label encoding, scaler, split sizes — and :class:`Rows`
feeds the training loop: every epoch the pieces in a new seeded order, their rows through a
shuffle buffer, one piece read ahead; the validation rows once, and kept (up to
``VALIDATION_KEPT``).

Which rows validate and test is decided by a hash of each row's position in the source and the
seed (:func:`split_of`): every pass, every process, finds the same rows without keeping them.
"""

import collections
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fcnn_cli.machine import distributed
from fcnn_cli.network import metrics, tasks
from fcnn_cli.data.columns import drop_incomplete, numeric_matrix, select_columns
from fcnn_cli.core.errors import DataChanged, FcnnError, first_line
from fcnn_cli.data.preprocess import Scaler
from fcnn_cli.engine.prepare import SPLITS, require_columns
from fcnn_cli.network.digest import RowsDigest

log = logging.getLogger(__name__)

TRAIN, VAL, TEST = range(3)
# Validation rows up to this many are kept (about 50 bytes a row for ten columns) rather than
# found again in a pass over every piece each epoch, which costs as much reading as training.
VALIDATION_KEPT = 4_000_000
# Names a directory's walk passes over, as pyarrow's own discovery does: the files Parquet
# writers leave beside the data (_SUCCESS, _metadata, .crc).
IGNORED_PREFIXES = (".", "_")


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
        meta = _fcnn_meta(self.dataset.schema, self.name)
        names = set(self.dataset.schema.names)
        self.targets = [t for t in meta.get("targets", []) if t in names]
        self.units = {k: v for k, v in meta.get("units", {}).items() if k in names}

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


def _fcnn_meta(schema, name):
    from fcnn_cli.data.tables import META_KEY, _parse_meta

    raw = (schema.metadata or {}).get(META_KEY.encode())
    return _parse_meta(raw, name) if raw else {}


class FileChunks:
    """A validation or test table of its own (CSV or Parquet), streamed in chunks on every
    pass: a source whose rows all belong to one split."""

    def __init__(self, path):
        from fcnn_cli.data.tables import iter_tables

        self.name, self.path = str(path), path
        iter_tables(path)  # a missing file is reported now, not at the first validation
        self.stamp = _stamp(path) if os.path.isfile(path) else None  # stdin: none

    def tables(self):
        """The file's chunks; a DataChanged once the file is not as it was."""
        from fcnn_cli.data.tables import iter_tables

        with _unchanged(self.path, self.stamp):  # a file that is gone fails here
            chunks = iter_tables(self.path)
        while True:
            with _unchanged(self.path, self.stamp):
                table = next(chunks, None)
            if table is None:
                return
            yield table


def open_source(path):
    """The source of a table to stream: a Parquet file or directory."""
    from fcnn_cli.data.tables import table_format

    if Path(path).is_dir() or str(path) != "-" and table_format(path) == "parquet":
        return ParquetSource(path)
    raise FcnnError(f"{path}: streaming reads Parquet (a file or a directory of files); "
                    "convert the table, or train without streaming", ("stream",))


def split_of(positions, val_frac, test_frac, seed):
    """TRAIN, VAL or TEST for each row position: a hash of the position and the seed, taken
    as a number in [0, 1), below ``test_frac`` tests and below ``test_frac + val_frac``
    validates. The same in every pass and every process, with no list of rows to keep."""
    z = np.asarray(positions, dtype=np.uint64) + np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64)
    with np.errstate(over="ignore"):  # splitmix64: arithmetic modulo 2**64 on purpose
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    u = (z >> np.uint64(11)).astype(np.float64) / 2.0 ** 53
    return np.where(u < test_frac, TEST, np.where(u < test_frac + val_frac, VAL, TRAIN))


class Moments:
    """Count, mean, variance (Chan's update), minimum and maximum of columns, fed in chunks."""

    def __init__(self, k):
        self.n, self.mean, self.m2 = 0, np.zeros(k), np.zeros(k)
        self.min, self.max = np.full(k, np.inf), np.full(k, -np.inf)

    def add(self, x):
        x = np.asarray(x, dtype=np.float64)
        if not len(x):
            return
        n, mean = len(x), x.mean(axis=0)
        delta, total = mean - self.mean, self.n + n
        self.m2 += ((x - mean) ** 2).sum(axis=0) + delta ** 2 * self.n * n / total
        self.mean += delta * n / total
        self.n = total
        self.min, self.max = np.minimum(self.min, x.min(axis=0)), np.maximum(self.max,
                                                                             x.max(axis=0))

    def scaler(self, method, names):
        return Scaler.of(method, self.mean, np.sqrt(self.m2 / self.n), self.min, self.max,
                         names)


@dataclass
class Prepared:
    """A source made ready to train on, as :class:`fcnn_cli.engine.prepare.Prepared` is for a table
    in memory: the same attributes, and its rows in chunks instead of arrays."""

    features: list
    targets: list
    task: object
    x_scaler: Scaler
    units: dict
    digest: str
    sizes: dict
    source: object
    config: object
    extra: dict  # "val", "test": a FileChunks that replaces that split
    moments: Moments
    rows_digest: str = ""  # RowsDigest of the source, all its splits
    # The final metrics keep a bounded sample of each split's distances for percentiles.
    distance_sample = metrics.DISTANCE_SAMPLE

    @property
    def kind(self):
        return self.task.kind

    def feature_range(self):
        return {"min": self.moments.min.tolist(), "max": self.moments.max.tolist()}

    @staticmethod
    def scaled(name):
        """Whether split ``name``'s chunks come scaled: never, here."""
        return False

    def blocks(self, part, pieces=None):
        """(raw features (float32), encoded labels, labels as metrics take them) of split
        ``part``'s rows, checked as the configuration asks, piece by piece (``pieces`` of the
        source, all by default); a split given as a file of its own comes in that file's
        chunks. A piece of numbers alone, all of them finite, goes from Arrow straight to
        numpy (:func:`_direct`); any other through a Table, which finds and names what is
        wrong or drops it."""
        if part != TRAIN and SPLITS[part] in self.extra:
            for table in self.extra[SPLITS[part]].tables():
                yield self.arrays(self._file_table(table))
            return
        c, columns = self.config, self.features + self.targets
        for piece in range(len(self.source.pieces)) if pieces is None else pieces:
            arrow = self.source.arrow(piece, columns)
            keep = split_of(np.arange(self.source.starts[piece],
                                      self.source.starts[piece] + arrow.num_rows),
                            c.val_frac, c.test_frac, c.seed) == part
            direct = _direct(arrow, self.features, self.targets, keep) \
                if self.kind == "regress" else None
            if direct is not None:
                x, truth = direct
                yield x, self.task.encoded(truth), truth
                continue
            table = self._complete(self.source.read(piece, columns, arrow))
            yield self.arrays(_rows_of(table, self.source.starts[piece], part, c.val_frac,
                                       c.test_frac, c.seed))

    def _file_table(self, table):
        require_columns(table, self.features + self.targets)
        return self._complete(table)

    def _complete(self, table):
        return drop_incomplete(table, self.features + self.targets, piece=True) \
            if self.config.nan == "drop" else table

    def arrays(self, table):
        """A Table's raw features (float32), encoded labels and labels as metrics take them."""
        return (numeric_matrix(table, self.features), self.task.encode(table),
                self.task.truth(table))

    def chunks(self, name):
        """(raw features, labels as metrics take them) of split ``name``, chunk by chunk."""
        for x, _, truth in self.blocks(SPLITS.index(name)):
            yield x, truth

    def on(self, device):
        return Rows(self, device)


def _direct(arrow, features, targets, keep):
    """(features as float32, labels as float64) of the rows ``keep`` of an Arrow table, each
    column converted as :func:`fcnn_cli.data.columns.numeric_matrix` converts the column pandas
    makes of it; None unless every column holds integers or floats, none missing, and every
    value is finite in float32 (else the Table's path says what is wrong, or drops it)."""
    import pyarrow as pa

    for name in features + targets:
        column = arrow.column(name)
        kind = column.type
        if column.null_count or not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            return None
    rows = int(keep.sum())
    parts = [np.empty((rows, len(features)), np.float32),
             np.empty((rows, len(targets)), np.float64)]
    with np.errstate(over="ignore"):
        for part, names in zip(parts, (features, targets)):
            for i, name in enumerate(names):
                part[:, i] = arrow.column(name).to_numpy()[keep]
            if not np.isfinite(part.astype(np.float32, copy=False)).all():
                return None
    return tuple(parts)


def _rows_of(table, start, part, val_frac, test_frac, seed):
    """The rows of ``table``, one piece whose first row is at position ``start`` of its
    source, that belong to split ``part``."""
    from fcnn_cli.data.tables import Table

    keep = split_of(_positions(table, start), val_frac, test_frac, seed) == part
    if keep.all():
        return table
    rows = np.arange(table.first_row + 1, table.first_row + 1 + len(table.frame)) \
        if table.file_rows is None else table.file_rows
    return Table(table.frame[keep].reset_index(drop=True), table.targets, table.units,
                 table.name, table.first_row, np.asarray(rows)[keep])


def _positions(table, start):
    """Each row's position in its source, a piece's first row being at ``start`` (rows left
    out keep theirs)."""
    if table.file_rows is not None:
        return start + np.asarray(table.file_rows, dtype=np.int64) - 1 - table.first_row
    return np.arange(start, start + len(table.frame))


def prepare(source, config, targets=None, features=None, val=None, test=None):
    """Columns, task, label encoding, scaler and split sizes of ``source`` under a
    TrainConfig, from one pass over it; ``val`` and ``test`` (:class:`FileChunks`) replace
    the validation and the test split. Integer labels are told from classes (``task``
    "auto") by the first piece."""
    import dataclasses

    first = source.read(0)
    features, targets = select_columns(first, targets, features)
    kind = tasks.infer(first, targets, config.task)
    extra = {name: chunks for name, chunks in (("val", val), ("test", test)) if chunks}
    config = dataclasses.replace(config, val_frac=0.0 if val else config.val_frac,
                                 test_frac=0.0 if test else config.test_frac)
    scan, dropped = _Pass(features, targets, kind, config), 0
    for piece in range(len(source.pieces)):
        table = source.read(piece, features + targets)
        if config.nan == "drop":
            complete = drop_incomplete(table, features + targets, piece=True)
            dropped += len(table.frame) - len(complete.frame)
            table = complete
        scan.add(table, source.starts[piece])
    if dropped:
        log.warning("%s: leaving out %d row(s) with NaN, missing or infinite values",
                    source.name, dropped)
    scan.check(source.name, extra)
    task = scan.task(source.name)
    used = set(features + targets)
    units = {k: v for k, v in source.units.items() if k in used}
    prepared = Prepared(features, targets, task, scan.x.scaler(config.scale, features), units,
                        "", {}, source, config, extra, scan.x, scan.rows.hexdigest())
    for name in extra:
        scan.sizes[SPLITS.index(name)] = sum(len(x) for x, _ in prepared.chunks(name))
    prepared.sizes = dict(zip(SPLITS, scan.sizes))
    prepared.digest = _digest(source, prepared)
    return prepared


class _Pass:
    """What one pass over a source learns: the training rows' feature moments and label
    moments (regression) or classes and their counts (classification), and each split's size."""

    def __init__(self, features, targets, kind, config):
        self.features, self.targets, self.kind, self.config = features, targets, kind, config
        self.x, self.y = Moments(len(features)), Moments(len(targets))
        self.rows = RowsDigest(features, targets, kind)  # of every row, held out or not
        self.values, self.counts, self.held_out = set(), {}, set()
        self.sizes = [0, 0, 0]

    def add(self, table, start):
        c = self.config
        part = split_of(_positions(table, start), c.val_frac, c.test_frac, c.seed)
        self.sizes = [a + int(b) for a, b in zip(self.sizes, np.bincount(part, minlength=3))]
        train = part == TRAIN
        x, labels = numeric_matrix(table, self.features), self.rows.labels(table)
        self.rows.update(x, labels)
        self.x.add(x[train])
        if self.kind == "regress":
            self.y.add(labels[train])
            return
        self.values.update(table.frame[self.targets[0]][train].dropna().unique().tolist())
        names, counts = np.unique(labels[train], return_counts=True)
        for name, count in zip(names.tolist(), counts.tolist()):
            self.counts[name] = self.counts.get(name, 0) + count
        self.held_out.update(np.unique(labels[~train]).tolist())

    def check(self, name, extra):
        train, val, test = self.sizes
        left = f"of its {sum(self.sizes)} rows the split left {train} to train on, {val} " \
               f"to validate and {test} to test"
        if train < 2:
            raise FcnnError(f"{name}: too few rows to train on: {left}; lower the validation "
                            "and test fractions, or give separate validation and test files")
        if not val and "val" not in extra:
            raise FcnnError(f"{name}: no rows left for validation ({left}); raise the "
                            "validation fraction or give a separate validation file")

    def task(self, name):
        c = self.config
        if self.kind == "regress":
            if c.position is not None:
                metrics.position_of(self.targets, position=c.position)  # each one a label
            return tasks.Regression(list(self.targets), self.y.scaler("standard", self.targets),
                                    None if c.position is None else list(c.position), c.loss)
        tasks.no_position(c.position)
        tasks.no_gaussian(c.loss)
        task = tasks.Classification.of_counts(name, self.targets[0], self.values, self.counts,
                                              c.binary_output, c.class_weight)
        unseen = sorted(self.held_out - set(task.classes))
        if unseen:
            raise FcnnError(f"{name}: column {self.targets[0]!r} holds class {unseen[0]!r} in "
                            "validation or test rows, never in the training rows; the training "
                            f"rows hold {', '.join(map(repr, task.classes))}")
        return task


def _digest(source, prepared):
    """A fingerprint of what training sees, so a run resumes only on the data it began with:
    the pieces' sizes, the split, the encoding and the scaler (a pass over the rows)."""
    h = hashlib.sha256(repr((source.pieces, prepared.sizes, prepared.task.to_dict(),
                             prepared.x_scaler.to_dict())).encode())
    return h.hexdigest()


class Rows:
    """A prepared source's rows for the training loop (as :class:`fcnn_cli.engine.loop.Tensors` are
    for rows in memory): shuffled minibatches every epoch, validation chunk by chunk."""

    def __init__(self, prepared, device):
        self.prepared, self.device = prepared, device
        self.train_rows = prepared.sizes["train"]
        self._validation = None

    def _tensors(self, arrays):
        import torch

        x, y, truth = arrays
        x = torch.from_numpy(self.prepared.x_scaler.transform(x)).to(self.device)
        return x, torch.from_numpy(y).to(self.device), truth

    def sample(self, rows):
        """The first ``rows`` training rows, scaled: the fixed batch diagnostics measure on."""
        import torch

        xs, ys, have = [], [], 0
        for arrays in self.prepared.blocks(TRAIN):
            x, y, _ = self._tensors(arrays)
            xs.append(x[:rows - have])
            ys.append(y[:rows - have])
            have += len(xs[-1])
            if have >= rows:
                break
        return torch.cat(xs), torch.cat(ys)

    def validation(self):
        """(scaled features, encoded labels, labels as metrics take them) of the validation
        rows, chunk by chunk: read in the first epoch and kept if there are at most
        VALIDATION_KEPT, else read again every epoch."""
        if self._validation is not None:
            yield from self._validation
            return
        keep = self.prepared.sizes["val"] <= VALIDATION_KEPT
        chunks = []
        for arrays in self.prepared.blocks(VAL):
            if len(arrays[0]):
                chunk = self._tensors(arrays)
                chunks += [chunk] if keep else []
                yield chunk
        self._validation = chunks if keep else None

    def batches(self, generator, batch, world, task):
        """This process's part of each global minibatch of one epoch, as (features, labels,
        its share of the batch, rows of the global batch): every process makes the same
        number of steps, each over its own pieces (see :func:`_order`)."""
        import torch

        n = self.train_rows
        seed = int(torch.randint(2 ** 62, (1,), generator=generator))
        rng = np.random.default_rng(seed)
        rows = _Taker(self._stream(rng, world, _part(n // batch, batch, world)
                                   + _part(1, n % batch, world)))
        for i in range(0, n, batch):
            global_rows = min(batch, n - i)
            start, end = distributed.share(n, i, global_rows, world)
            x, y = rows.take(end - start)
            yield x, y, (end - start) / global_rows if world.distributed else 1.0, global_rows

    def _stream(self, rng, world, needed):
        """Exactly ``needed`` training rows of this process's pieces in chunks, through the
        shuffle buffer; a process whose pieces hold fewer reads them again."""
        pieces = _order(rng, self.prepared.source.pieces, world)
        buffer = ShuffleBuffer(min(self.prepared.config.shuffle_buffer, needed), rng)
        given = 0
        while given < needed:
            got = 0
            for x, y in self._read_ahead(pieces):
                for chunk in buffer.add(x, y):
                    yield chunk
                    got += len(chunk[0])
            for chunk in buffer.drain():
                yield chunk
                got += len(chunk[0])
            if not got:
                raise FcnnError(f"{self.prepared.source.name}: process {world.rank} of "
                                f"{world.size} found no training rows in its pieces")
            given += got

    def _read_ahead(self, pieces):
        """(scaled features, labels) of the training rows of each piece, the next piece
        read in a thread while this one trains."""
        def load(piece):
            (arrays,) = self.prepared.blocks(TRAIN, [piece])
            return self._tensors(arrays)[:2]

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            ahead = pool.submit(load, pieces[0]) if pieces else None
            for k in range(len(pieces)):
                current = ahead.result()
                ahead = pool.submit(load, pieces[k + 1]) if k + 1 < len(pieces) else None
                if len(current[0]):
                    yield current


def _part(batches, rows, world):
    """The rows this process takes of ``batches`` global minibatches of ``rows`` rows each."""
    share, extra = divmod(rows, world.size)
    return batches * (share + (world.rank < extra))


def _order(rng, pieces, world):
    """This process's pieces for one epoch: all of them in a random order, dealt out in turn
    so that each process gets its own (a process left without any takes one of another's)."""
    order = rng.permutation(len(pieces)).tolist()
    mine = order[world.rank::world.size]
    return mine or [order[world.rank % len(order)]]


class _Taker:
    """Exactly ``rows`` rows at a time from a stream of (features, labels) chunks, as views
    where a chunk holds them all."""

    def __init__(self, chunks):
        self.chunks, self.x, self.y = chunks, None, None

    def take(self, rows):
        import torch

        xs, ys = [], []
        while rows:
            if self.x is None or not len(self.x):
                self.x, self.y = next(self.chunks)
            xs.append(self.x[:rows])
            ys.append(self.y[:rows])
            self.x, self.y = self.x[rows:], self.y[rows:]
            rows -= len(xs[-1])
        if len(xs) == 1:
            return xs[0], ys[0]
        if not xs:
            return self.x[:0], self.y[:0]
        return torch.cat(xs), torch.cat(ys)


class ShuffleBuffer:
    """Mixes rows across pieces. It holds up to ``size`` rows in a random order and gives
    them out in turn, each replaced by a row coming in; once all have been given out, the
    rows held (by then all new) are put in a new random order. A row thus leaves between
    one and two buffers' worth of rows after it came, at a random place among them, and each
    row costs a copy in, a copy out and its share of one permutation. With ``size`` 0 each
    piece's rows are only mixed among themselves."""

    def __init__(self, size, rng):
        self.size, self.rng = size, rng
        self.x = self.y = None
        self.held = self.cursor = 0

    def add(self, x, y):
        """The rows given out in exchange for ``x``, ``y``: a list of (features, labels)."""
        if not self.size:
            order = self._order(len(x), x.device)
            return [(x[order], y[order])]
        out = []
        while len(x):
            if self.held < self.size:
                x, y = self._fill(x, y)
                continue
            seg = slice(self.cursor, self.cursor + min(self.size - self.cursor, len(x)))
            k = seg.stop - seg.start
            out.append((self.x[seg].clone(), self.y[seg].clone()))
            self.x[seg], self.y[seg] = x[:k], y[:k]
            x, y, self.cursor = x[k:], y[k:], seg.stop
            if self.cursor == self.size:
                self._mix()
        return out

    def _fill(self, x, y):
        """Take rows in until full (then mix them); the rows left over."""
        if self.x is None:
            self.x = x.new_empty((self.size, *x.shape[1:]))
            self.y = y.new_empty((self.size, *y.shape[1:]))
        k = min(self.size - self.held, len(x))
        self.x[self.held:self.held + k], self.y[self.held:self.held + k] = x[:k], y[:k]
        self.held += k
        if self.held == self.size:
            self._mix()
        return x[k:], y[k:]

    def _order(self, n, device):
        import torch

        return torch.from_numpy(self.rng.permutation(n)).to(device)

    def _mix(self):
        order = self._order(self.size, self.x.device)
        self.x, self.y, self.cursor = self.x[order], self.y[order], 0

    def drain(self):
        """The rows still held, in a random order; the buffer is empty after."""
        if not self.held:
            return []
        order = self._order(self.held, self.x.device)
        out = self.x[:self.held][order], self.y[:self.held][order]
        self.x = self.y = None
        self.held = self.cursor = 0
        return [out]
