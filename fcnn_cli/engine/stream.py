"""Training on a table larger than memory: a source (:mod:`fcnn_cli.data.sources`, a Parquet
file or directory read piece by piece) prepared in one pass (after one over its categorical
columns alone, if any, for their levels), and its rows fed to the loop.

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
from fcnn_cli.engine import eventweights
from fcnn_cli.network import metrics, tasks
from fcnn_cli.data.columns import keep_rows, numeric_matrix, select_columns
from fcnn_cli.core.config import CURVES
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.categories import Categories, Levels, Unseen, announce, categorical_columns
from fcnn_cli.data.missing import Filler, MedianSample
from fcnn_cli.data.preprocess import Scaler
from fcnn_cli.engine.prepare import (SPLITS, complete_rows, inputs, require_columns,
                                     say_filled)
from fcnn_cli.engine.shuffle import ShuffleBuffer, Taker, epoch_pieces, process_rows
from fcnn_cli.network.digest import RowsDigest

log = logging.getLogger(__name__)

TRAIN, VAL, TEST = range(3)
LEFT = 3  # a training row left out: its training weight is 0
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


class _PresentMoments:
    """The moments of each feature's present values and its count of missing ones (training
    rows, ``nan="fill"``), from which those of the filled and widened inputs follow once the
    medians are known."""

    def __init__(self, k):
        self.columns, self.missing, self.n = [Moments(1) for _ in range(k)], np.zeros(k), 0

    def add(self, x):
        finite = np.isfinite(x)
        self.n += len(x)
        self.missing += (~finite).sum(axis=0)
        for i, moments in enumerate(self.columns):
            moments.add(x[finite[:, i], i:i + 1])

    def filled(self, filler):
        """The Moments of the inputs as ``filler`` makes them: each feature's present values
        and its missing ones at the median (Chan's update by a block of no spread), then each
        indicator, a 0/1 column."""
        out, k = Moments(filler.width), len(self.columns)
        out.n = self.n
        for i, (moments, median) in enumerate(zip(self.columns, filler.medians)):
            missing, median = self.missing[i], float(np.float32(median))  # as filled in
            delta = median - moments.mean[0]
            out.mean[i] = moments.mean[0] + delta * missing / self.n
            out.m2[i] = moments.m2[0] + delta ** 2 * moments.n * missing / self.n
            out.min[i], out.max[i] = moments.min[0], moments.max[0]  # the median lies within
        for j, feature in enumerate(filler.flagged):
            missing = self.missing[filler.features.index(feature)]
            out.mean[k + j], out.m2[k + j] = missing / self.n, missing * (1 - missing / self.n)
            out.min[k + j], out.max[k + j] = float(missing == self.n), 1.0
        return out


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
    filler: Filler | None = None  # nan="fill": how missing feature values are filled
    weighting: eventweights.Weighting | None = None  # the rows' event weights, if any
    # The final metrics keep a bounded sample of each split's distances for percentiles.
    distance_sample = metrics.DISTANCE_SAMPLE
    categories: Categories | None = None  # the levels of the categorical features' inputs, if any

    @property
    def separate(self):
        """The splits read from files of their own ("val", "test")."""
        return tuple(self.extra)

    @property
    def kind(self):
        return self.task.kind

    @property
    def inputs(self):
        return inputs(self.features, self.filler)

    @property
    def weights(self):
        """The weight column, as a list of the columns read besides features and labels."""
        return [self.weighting.column] if self.weighting else []

    @property
    def columns(self):
        """The feature columns read: a categorical column once for its one-hot inputs."""
        return self.categories.raw(self.features) if self.categories else self.features

    def feature_range(self):
        return {"min": self.moments.min.tolist(), "max": self.moments.max.tolist()}

    @staticmethod
    def scaled(name):
        """Whether split ``name``'s chunks come scaled: never, here."""
        return False

    def blocks(self, part, pieces=None, unseen=None):
        """(raw features (float32; with ``nan="fill"`` filled and widened), encoded labels
        (with the weights the loss takes where training is weighted), labels as metrics take
        them, event weights as given or None) of split ``part``'s rows, checked as the
        configuration asks, piece by piece (``pieces`` of the source, all by default); a split
        given as a file of its own comes in that file's chunks, its levels never seen in
        training counted in ``unseen``. A piece of numbers alone, all of them finite, goes
        from Arrow straight to numpy (:func:`_direct`); any other through a Table, which finds
        and names what is wrong or drops it, and makes the categorical columns' inputs."""
        if part != TRAIN and SPLITS[part] in self.extra:
            for table in self.extra[SPLITS[part]].tables():
                yield self.arrays(self._file_table(table, unseen), part)
            return
        c, columns = self.config, self.columns + self.targets + self.weights
        for piece in range(len(self.source.pieces)) if pieces is None else pieces:
            arrow = self.source.arrow(piece, columns)
            keep = split_of(np.arange(self.source.starts[piece],
                                      self.source.starts[piece] + arrow.num_rows),
                            c.val_frac, c.test_frac, c.seed) == part
            direct = _direct(arrow, self.features, self.targets + self.weights, keep) \
                if self.kind == "regress" and not self.categories else None
            if direct is not None:
                x, labels = direct
                n = len(self.targets)
                yield self._finish(x, labels[:, :n], labels[:, n] if self.weights else None,
                                   part)
                continue
            table = self._complete(self.source.read(piece, columns, arrow))
            yield self.arrays(_rows_of(table, self.source.starts[piece], part, c.val_frac,
                                       c.test_frac, c.seed), part)

    def _file_table(self, table, unseen=None):
        require_columns(table, self.columns + self.targets + self.weights)
        return self._complete(table, unseen)

    def _complete(self, table, unseen=None):
        """``table`` without the rows ``nan`` leaves out, its categorical columns encoded."""
        table = complete_rows(table, self.config.nan, self.columns,
                              self.targets + self.weights, piece=True, labels=self.targets)
        return self.categories.encode(table, unseen) if self.categories else table

    def arrays(self, table, part):
        """:meth:`blocks`' arrays of a Table's rows of split ``part``."""
        x = numeric_matrix(table, self.features, finite=self.filler is None)
        w = eventweights.given(table, self.weights[0]) if self.weights else None
        return self._finish(x, self.task.truth(table), w, part)

    def _finish(self, x, truth, w, part):
        """The rows' arrays for :meth:`blocks`, from their raw features, labels as metrics take
        them and weights as given: rows of weight 0 (or training weight 0) left out, missing
        values filled, the weights the loss takes packed with the labels."""
        if w is not None:
            keep = self.weighting.kept(w, part == TRAIN)
            if not keep.all():
                x, truth, w = x[keep], truth[keep], w[keep]
        if self.filler is not None:
            x = self.filler.transform(x)
        y = self.task.encoded(truth)
        if self.weighting and self.weighting.weighted and part != TEST:
            y = tasks.pack(y, self.weighting.of_loss(w, truth if self.kind == "classify"
                                                     else None, part == TRAIN))
        return x, y, truth, w

    def chunks(self, name, unseen=None):
        """(raw features, labels as metrics take them, event weights or None) of split
        ``name``, chunk by chunk (``unseen``: as :meth:`blocks` takes it)."""
        for x, _, truth, w in self.blocks(SPLITS.index(name), unseen=unseen):
            yield x, truth, w

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


def _categories(source, first, features, named, config, asked=None):
    """The levels of the categorical ``features`` (``named`` with --categorical, or of levels
    by their type in the ``first`` piece; ``asked``: the features given, None for the default
    list, whose columns of levels by type keep to one-hot) in the training rows of
    ``config``'s split, or None:
    a pass over those columns alone, bounded (:class:`~fcnn_cli.data.categories.Levels`). It
    comes before the pass that scales, which then takes each piece's one-hot inputs as
    training does: their moments, the sample of a curve's scaler and the digest of the rows
    are those of the inputs, as in memory. Under ``nan`` "drop" a missing value is no level:
    its rows are left out (a level that only rows missing another feature hold is an input
    that stays 0)."""
    columns = categorical_columns(first, features, named)
    if not columns:
        return None
    given = set(named or ()) | set(asked or ())
    levels = Levels(columns, named or (), [c for c in columns if c not in given])
    for piece in range(len(source.pieces)):
        table = source.read(piece, columns)
        part = split_of(_positions(table, source.starts[piece]), config.val_frac,
                        config.test_frac, config.seed)
        levels.add(keep_rows(table, part == TRAIN))
    return levels.categories(missing=config.nan != "drop")


def _positions(table, start):
    """Each row's position in its source, a piece's first row being at ``start`` (rows left
    out keep theirs)."""
    if table.file_rows is not None:
        return start + np.asarray(table.file_rows, dtype=np.int64) - 1 - table.first_row
    return np.arange(start, start + len(table.frame))


def prepare(source, config, targets=None, features=None, val=None, test=None, weight=None,
            categorical=None):
    """Columns, task, label encoding, scaler and split sizes of ``source`` under a
    TrainConfig, from one pass over it; ``val`` and ``test``
    (:class:`~fcnn_cli.data.sources.FileChunks`) replace the validation and the test split.
    Integer labels are told from classes (``task`` "auto") by the first piece. ``weight``
    names the column of each row's event weight (:mod:`fcnn_cli.engine.eventweights`).
    ``categorical`` names feature columns to one-hot encode, besides those of levels by type
    (:func:`_categories`: their levels come from a pass over their columns before)."""
    import dataclasses

    first = source.read(0)
    asked = features
    features, targets = select_columns(first, targets, features, weight,
                                       named=categorical or ())
    config = dataclasses.replace(config, val_frac=0.0 if val else config.val_frac,
                                 test_frac=0.0 if test else config.test_frac)
    categories = _categories(source, first, features, categorical, config, asked)
    columns = features
    if categories:
        features = announce(categories, first, features)
    kind = tasks.infer(first, targets, config.task)
    extra = {name: chunks for name, chunks in (("val", val), ("test", test)) if chunks}
    weights = [weight] if weight is not None else []
    tally = eventweights.Tally(weight, config.negative_weights) if weights else None
    scan, dropped = _Pass(features, targets, kind, config, tally), 0
    for piece in range(len(source.pieces)):
        table = source.read(piece, columns + targets + weights)
        complete = complete_rows(table, config.nan, columns, targets + weights, piece=True,
                                 labels=targets)
        dropped += len(table.frame) - len(complete.frame)
        scan.add(categories.encode(complete) if categories else complete, source.starts[piece])
    if dropped:
        log.warning("%s: leaving out %d row(s) with NaN, missing or infinite values",
                    source.name, dropped)
    scan.check(source.name, extra)
    if tally:
        for table in extra["val"].tables() if "val" in extra else ():
            w = eventweights.given(complete_rows(table, config.nan, [], targets + weights,
                                                 piece=True, labels=targets), weight)
            tally.add("val", w[w != 0])
        tally.check(source.name)
    task = scan.task(source.name, tally is not None and tally.weighted,
                     getattr(source, "classes", None))
    task.weighted = tally is not None and tally.weighted
    filler = scan.sample.filler(source.name) if scan.present else None
    if filler:
        say_filled(filler, source.name)
    moments = scan.present.filled(filler) if filler else scan.x
    used = set(features + targets)
    units = {k: v for k, v in source.units.items() if k in used}
    prepared = Prepared(features, targets, task, scan.scaler(moments, filler), units, "", {},
                        source, config, extra, moments, scan.rows.hexdigest(), filler,
                        categories=categories)
    if tally:
        val_name = extra["val"].name if "val" in extra else source.name
        prepared.weighting = tally.weighting(task, config, f"{val_name}: the validation rows")
    for name in extra:
        unseen = Unseen()
        scan.sizes[SPLITS.index(name)] = sum(len(x) for x, _, _ in prepared.chunks(name, unseen))
        unseen.say(extra[name].name)
    prepared.sizes = dict(zip(SPLITS, scan.sizes))
    prepared.digest = _digest(source, prepared)
    return prepared


class _Pass:
    """What one pass over a source learns: the training rows' feature moments and label
    moments (regression) or classes and their counts (classification), and each split's size."""

    def __init__(self, features, targets, kind, config, tally=None):
        self.features, self.targets, self.kind, self.config = features, targets, kind, config
        self.x, self.y = Moments(len(features)), Moments(len(targets))
        self.rows = RowsDigest(features, targets, kind)  # of every row, held out or not
        self.values, self.counts, self.held_out = set(), {}, set()
        self.sizes = [0, 0, 0]
        self.tally = tally  # eventweights.Tally, where rows are weighted
        fill = config.nan == "fill"
        # The sample finds the medians of the filler and the quantiles of a curve's scaler.
        sampled = fill or config.scale in CURVES
        self.sample = MedianSample(features, config.seed) if sampled else None
        self.present = _PresentMoments(len(features)) if fill else None

    def add(self, table, start):
        part, table = self._weigh(table, start)
        self.sizes = [a + int(b) for a, b in zip(self.sizes, np.bincount(part, minlength=4))]
        train = part == TRAIN
        x = numeric_matrix(table, self.features, finite=self.present is None)
        labels = self.rows.labels(table)
        self.rows.update(x, labels)
        if self.sample:
            self.sample.add(x[train])
        (self.present or self.x).add(x[train])
        if self.kind == "regress":
            self.y.add(labels[train])
            return
        self.values.update(table.frame[self.targets[0]][train].dropna().unique().tolist())
        names, counts = np.unique(labels[train], return_counts=True)
        for name, count in zip(names.tolist(), counts.tolist()):
            self.counts[name] = self.counts.get(name, 0) + count
        self.held_out.update(np.unique(labels[(part == VAL) | (part == TEST)]).tolist())

    def scaler(self, moments, filler):
        """The features' scaler: from the moments of the inputs, or for a curve from the
        sample (exact while each feature has at most :data:`~fcnn_cli.data.missing.SAMPLE_VALUES`
        values)."""
        names, method = inputs(self.features, filler), self.config.scale
        if method in CURVES:
            return Scaler.of_sample(method, self.sample.columns(filler), names)
        return moments.scaler(method, names)

    def _weigh(self, table, start):
        """Each row's split (``LEFT``: a training row of training weight 0) and the table
        without its rows of weight 0, which leave before the split; the weights tallied."""
        c, tally = self.config, self.tally
        if tally is None:
            return split_of(_positions(table, start), c.val_frac, c.test_frac, c.seed), table
        w = eventweights.given(table, tally.column)
        zero = w == 0
        if zero.any():
            tally.zeros += int(zero.sum())
            table, w = keep_rows(table, ~zero), w[~zero]
        part = split_of(_positions(table, start), c.val_frac, c.test_frac, c.seed)
        train = part == TRAIN
        trained = eventweights.for_training(w[train], tally.policy)
        left = trained == 0
        tally.negatives += int(left.sum())
        part[np.flatnonzero(train)[left]] = LEFT
        labels = None if self.kind == "regress" else \
            tasks.class_names(table, self.targets[0])[part == TRAIN]
        tally.add("train", trained[~left], labels)
        tally.add("val", w[part == VAL])
        return part, table

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

    def task(self, name, weighted=False, order=None):
        """The task the training rows make (``weighted``: class weights folded into the event
        weights, none of its own; ``order``: the classes' order, where the source gives one,
        as the samples' do)."""
        c = self.config
        if self.kind == "regress":
            if c.position is not None:
                metrics.position_of(self.targets, position=c.position)  # each one a label
            return tasks.Regression(list(self.targets), self.y.scaler("standard", self.targets),
                                    None if c.position is None else list(c.position), c.loss)
        tasks.no_position(c.position)
        tasks.no_gaussian(c.loss)
        task = tasks.Classification.of_counts(name, self.targets[0], self.values, self.counts,
                                              c.binary_output,
                                              "none" if weighted else c.class_weight, order)
        unseen = sorted(self.held_out - set(task.classes))
        if unseen:
            raise FcnnError(f"{name}: column {self.targets[0]!r} holds class {unseen[0]!r} in "
                            "validation or test rows, never in the training rows; the training "
                            f"rows hold {', '.join(map(repr, task.classes))}")
        return task


def _digest(source, prepared):
    """A fingerprint of what training sees, so a run resumes only on the data it began with:
    the pieces' sizes, the split, the encoding and the scaler (a pass over the rows)."""
    extra = tuple(part.to_dict() for part in (prepared.filler, prepared.weighting,
                                              prepared.categories) if part)
    h = hashlib.sha256(repr((source.pieces, prepared.sizes, prepared.task.to_dict(),
                             prepared.x_scaler.to_dict(), *extra)).encode())
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

        x, y, truth, weight = arrays
        x = torch.from_numpy(self.prepared.x_scaler.transform(x)).to(self.device)
        return x, torch.from_numpy(y).to(self.device), truth, weight

    def sample(self, rows):
        """The first ``rows`` training rows, scaled: the fixed batch diagnostics measure on."""
        import torch

        xs, ys, have = [], [], 0
        for arrays in self.prepared.blocks(TRAIN):
            x, y, _, _ = self._tensors(arrays)
            xs.append(x[:rows - have])
            ys.append(y[:rows - have])
            have += len(xs[-1])
            if have >= rows:
                break
        return torch.cat(xs), torch.cat(ys)

    def validation(self):
        """(scaled features, encoded labels, labels as metrics take them, event weights or
        None) of the validation rows, chunk by chunk: read in the first epoch and kept if
        there are at most VALIDATION_KEPT, else read again every epoch."""
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
