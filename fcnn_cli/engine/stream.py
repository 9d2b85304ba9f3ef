"""Training on a table larger than memory: a source (:mod:`fcnn_cli.data.sources`, a Parquet
file or directory read piece by piece) prepared in one pass, and its rows fed to the loop.

From a source, :func:`prepare` makes in one pass what :func:`fcnn_cli.engine.prepare.prepare`
makes from a table in memory — columns, task, label encoding, scaler, split sizes — and
:class:`Rows` feeds the training loop: every epoch the pieces in a new seeded order, their rows
through a shuffle buffer (:mod:`fcnn_cli.engine.shuffle`), one piece read ahead; the
validation rows once, and kept (up to ``VALIDATION_KEPT``).

Which rows validate and test is decided by a hash of each row's position in the source and the
seed (:func:`split_of`): every pass, every process, finds the same rows without keeping them.

The module is one of just over 400 lines: the one pass that prepares (:class:`_Pass`) and the
rows that train (:class:`Rows`) must split, scale and digest each piece alike, which is checked
more easily when both are read side by side.
"""

import concurrent.futures
import hashlib
import logging
from dataclasses import dataclass

import numpy as np

from fcnn_cli.machine import distributed
from fcnn_cli.network import metrics, tasks
from fcnn_cli.data.columns import drop_incomplete, numeric_matrix, select_columns
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.preprocess import Scaler
from fcnn_cli.engine.prepare import SPLITS, require_columns
from fcnn_cli.engine.shuffle import ShuffleBuffer, Taker, epoch_pieces, process_rows
from fcnn_cli.network.digest import RowsDigest

log = logging.getLogger(__name__)

TRAIN, VAL, TEST = range(3)
# Validation rows up to this many are kept (about 50 bytes a row for ten columns) rather than
# found again in a pass over every piece each epoch, which costs as much reading as training.
VALIDATION_KEPT = 4_000_000


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
    TrainConfig, from one pass over it; ``val`` and ``test``
    (:class:`~fcnn_cli.data.sources.FileChunks`) replace the validation and the test split.
    Integer labels are told from classes (``task`` "auto") by the first piece."""
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
        number of steps, each over its own pieces (see
        :func:`~fcnn_cli.engine.shuffle.epoch_pieces`)."""
        import torch

        n = self.train_rows
        seed = int(torch.randint(2 ** 62, (1,), generator=generator))
        rng = np.random.default_rng(seed)
        rows = Taker(self._stream(rng, world, process_rows(n // batch, batch, world)
                                  + process_rows(1, n % batch, world)))
        for i in range(0, n, batch):
            global_rows = min(batch, n - i)
            start, end = distributed.share(n, i, global_rows, world)
            x, y = rows.take(end - start)
            yield x, y, (end - start) / global_rows if world.distributed else 1.0, global_rows

    def _stream(self, rng, world, needed):
        """Exactly ``needed`` training rows of this process's pieces in chunks, through the
        shuffle buffer; a process whose pieces hold fewer reads them again."""
        pieces = epoch_pieces(rng, self.prepared.source.pieces, world)
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
