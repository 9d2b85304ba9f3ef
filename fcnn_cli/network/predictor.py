"""A trained network together with everything needed to apply it to a new table."""

import contextlib
import dataclasses
import itertools
import logging
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from fcnn_cli.data.categories import Categories, Unseen
from fcnn_cli.data.columns import numeric_matrix
from fcnn_cli.data.missing import Filler
from fcnn_cli.machine.devices import autocast, inference_threads, matmul_precision
from fcnn_cli.core.errors import FcnnError, listed
from fcnn_cli.network.model import MLP
from fcnn_cli.data.preprocess import Scaler
from fcnn_cli.network import foldrule
from fcnn_cli.network.tasks import OUTPUTS_AT_ONCE

CHUNK_ROWS = 65536  # rows per forward pass at inference: bounds memory, keeps BLAS busy
FAR_OUTSIDE = 0.25  # beyond the training range by more than this share of it

log = logging.getLogger(__name__)


@dataclass
class Predictor:
    net: MLP
    features: list
    x_scaler: Scaler
    task: object  # tasks.Regression or tasks.Classification
    units: dict = field(default_factory=dict)
    feature_range: dict = field(default_factory=dict)  # training "min" and "max" per feature
    info: dict = field(default_factory=dict)  # provenance: training config, metrics, versions
    precision: str = "fp32"  # of the matrix products, as in training (config.PRECISIONS)
    filler: Filler | None = None  # trained with nan="fill": how missing values are filled
    recipe: object = None  # data.recipe.Recipe that made its columns from the raw data, or None
    folds: foldrule.FoldRule | None = None  # k-fold's networks: the rule of each one's fold
    categories: Categories | None = None  # the levels of categorical features: their inputs
    # Page-locked input and output buffers of a GPU, made once: pinning memory is slow.
    _pinned: list = field(default_factory=list, repr=False, compare=False)
    # devices.ThreadChooser, made on first use; kept across calls so that a stream of chunks
    # keeps the thread count it has measured
    threads: object = field(default=None, init=False, repr=False, compare=False)
    # The tables warned of missing values in a feature that training never saw missing.
    _unflagged_warned: set = field(default_factory=set, init=False, repr=False, compare=False)
    _folds_said: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def targets(self):
        return self.task.targets

    @property
    def device(self):
        return next(self.net.parameters()).device

    @property
    def columns(self):
        """The table columns the network's features are made from: a categorical column
        once, in place of its one-hot inputs."""
        return self.categories.raw(self.features) if self.categories else self.features

    def encoded(self, table, unseen=None):
        """``table`` with its categorical columns one-hot, as the network's features name
        them (itself for a model without); ``unseen``: see :meth:`feature_matrix`."""
        return self.categories.encode(table, unseen) if self.categories else table

    @property
    def inputs(self):
        """The network's inputs: the features, then the indicators of missing values of a
        model that fills them."""
        return self.features + (self.filler.indicators if self.filler else [])

    def feature_matrix(self, table, unseen=None):
        """The table's feature columns, matched by name in any order, as float32; of a model
        that fills missing values, filled as in training and widened by the indicators; its
        categorical columns one-hot, levels never seen in training counted in ``unseen``."""
        missing = [c for c in self.columns if c not in table.frame.columns]
        if missing:
            raise FcnnError(f"{table.name}: missing feature column(s) "
                            f"{', '.join(map(repr, missing))} that the model was trained on")
        table = self.encoded(table, unseen)
        if self.filler is None:
            return numeric_matrix(table, self.features)
        x = numeric_matrix(table, self.features, finite=False)
        unflagged = self.filler.unflagged(x)
        if unflagged and table.name not in self._unflagged_warned:
            self._unflagged_warned.add(table.name)
            log.warning("%s: missing values in %s, never missing in the training rows: filled "
                        "with the training median, without an indicator", table.name,
                        listed(map(repr, unflagged)))
        return self.filler.transform(x)

    def check_units(self, table, columns, warned):
        """Warn, once per table name (``warned``: those warned of), of the ``columns`` whose
        unit the table declares other than the model's: their values are used unconverted."""
        differ = [f"{c!r} in {table.units[c]} (the model's: {self.units[c]})" for c in columns
                  if table.units.get(c) and self.units.get(c) and
                  table.units[c] != self.units[c]]
        if differ and table.name not in warned:
            warned.add(table.name)
            log.warning("%s: units other than the model's: %s; the values are used as they "
                        "are, not converted", table.name, ", ".join(differ))

    def far_outside(self, x):
        """Per input, how many values lie far outside the training range."""
        if not self.feature_range or not len(x):
            return np.zeros(len(self.inputs), dtype=np.int64), 0
        lo, hi = np.asarray(self.feature_range["min"]), np.asarray(self.feature_range["max"])
        margin = FAR_OUTSIDE * (hi - lo)
        far = (x < lo - margin) | (x > hi + margin)
        if self.categories:  # a new level is no extrapolation: Unseen counts it
            far[:, np.asarray(self.categories.of_levels(self.inputs))] = False
        return far.sum(axis=0), int(far.any(axis=1).sum())

    @property
    def members(self):
        """The networks of an ensemble (:class:`fcnn_cli.network.model.Ensemble`), or None."""
        return len(self.net) if hasattr(self.net, "members") else None

    @property
    def width(self):
        """Outputs per row, of all members together."""
        return self.task.n_outputs * (self.members or 1)

    @property
    def chunk_rows(self):
        return max(1, min(CHUNK_ROWS, OUTPUTS_AT_ONCE // self.width))

    def _forward(self, x):
        """The outputs of rows ``x``, an ensemble's members side by side in each row."""
        out = self.net(x)
        # Sizes, not -1: a block of no rows has no size to infer.
        return out if out.dim() == 2 else out.transpose(0, 1).reshape(len(x), self.width)

    def _shaped(self, out):
        """Outputs as the task takes them: an ensemble's as members × rows × outputs."""
        if not self.members:
            return out
        return out.reshape(len(out), self.members, self.task.n_outputs).transpose(1, 0, 2)

    def add_to(self, report, x, truth, scaled=False, weight=None):
        """Feed a metrics report (``task.metrics``) with these rows' outputs, slice by slice,
        so that many classes never mean one huge matrix of outputs; ``scaled``: ``x`` has
        been through the scaler already; ``weight``: each row's event weight, or None."""
        for (_, part), out in self.outputs_of(self._slices(x), scaled):
            report.add(truth[part], out, weight=None if weight is None else weight[part])
        return report

    def outputs(self, x):
        """The network's raw outputs for a raw (unscaled) feature matrix."""
        out = [o for _, o in self.outputs_of(self._slices(x))]
        return np.concatenate(out, axis=-2) if out else \
            self._shaped(np.empty((0, self.width), np.float32))

    def _slices(self, x, owner=None):
        """((owner, slice), rows of ``x``) in slices of ``chunk_rows``, for :meth:`outputs_of`."""
        step = self.chunk_rows
        for start in range(0, len(x), step):
            part = slice(start, start + step)
            yield (owner, part), x[part]

    def outputs_of(self, blocks, scaled=False):
        """(key, outputs) for each (key, raw feature rows) of ``blocks``, in order; a block has
        at most ``chunk_rows`` rows. ``scaled``: the rows have been through the scaler. An
        ensemble's outputs are members × rows × outputs."""
        for key, out in self._wide_outputs(blocks, scaled):
            yield key, self._shaped(out)

    def _wide_outputs(self, blocks, scaled):
        self.net.eval()
        scale = (lambda x: x) if scaled else self.x_scaler.transform
        if self.device.type == "cuda":
            yield from self._cuda_outputs(blocks, scale)
            return
        self.threads = self.threads or inference_threads(self.device)
        for key, x in blocks:
            xs = torch.from_numpy(scale(x))
            with self._computing(), self.threads.in_use(), self.threads.timing(len(xs)):
                out = self._forward(xs).float().cpu().numpy()
            yield key, out

    def _cuda_outputs(self, blocks, scale=None):
        """outputs_of on a GPU, one block ahead: while the GPU copies a block in, computes and
        copies its outputs back (all asynchronous, from page-locked memory, on a stream of its
        own), the host scales the next block, and the caller reads the next rows of its table
        or writes the predictions of the block before."""
        stream, device = torch.cuda.Stream(self.device), self.device
        scale = scale or self.x_scaler.transform
        pending, sent = None, 0  # (key, buffer, rows, event) of the block on its way back
        for key, x in blocks:
            if not len(x):
                if pending:
                    yield _collect(*pending)
                    pending = None
                yield key, np.empty((0, self.width), np.float32)
                continue
            inputs, outputs = self._pinned_buffers(len(x))[sent % 2]
            rows = len(x)
            inputs[:rows].copy_(torch.from_numpy(scale(x)))
            with self._computing(), torch.cuda.stream(stream):
                out = self._forward(inputs[:rows].to(device, non_blocking=True)).float()
                outputs[:rows].copy_(out, non_blocking=True)
                done = torch.cuda.Event()
                done.record(stream)
            sent += 1
            if pending:
                yield _collect(*pending)
            pending = (key, outputs, rows, done)
        if pending:
            yield _collect(*pending)

    @contextlib.contextmanager
    def _computing(self):
        """Inference in the precision the network was trained in; entered per chunk, never
        held while the caller has a chunk."""
        with torch.inference_mode(), matmul_precision(self.precision, self.device), \
                autocast(self.precision, self.device):
            yield

    def _pinned_buffers(self, rows):
        """Two (input, output) pairs of page-locked buffers of at least ``rows`` rows: one
        chunk fills one pair while the other is in flight."""
        if not self._pinned or len(self._pinned[0][0]) < rows:
            shapes = ((rows, len(self.inputs)), (rows, self.width))
            self._pinned = [tuple(torch.empty(s, dtype=torch.float32).pin_memory()
                                  for s in shapes) for _ in range(2)]
        return self._pinned

    def output_columns(self, members=False):
        """The columns :meth:`predict` makes, known before any data is read."""
        empty = self._shaped(np.empty((0, self.width), np.float32))
        return list(self.task.frame(empty, members=members).columns)

    def predict_chunks(self, tables, threshold=None, members=False):
        """Predictions for a stream of tables (``tables.iter_tables``): (part of a table, its
        frame of predictions) in slices of ``chunk_rows``, so that many classes never make one
        huge frame; rows far outside the training range are counted over the whole stream."""
        far = {"per_feature": np.zeros(len(self.inputs), dtype=np.int64), "rows": 0}
        warned, unseen = set(), Unseen()

        def blocks():
            for table in tables:
                x = self.feature_matrix(table, unseen)
                self.check_units(table, self.columns, warned)
                counts, rows = self.far_outside(x)
                far.update(per_feature=far["per_feature"] + counts, rows=far["rows"] + rows,
                           name=table.name)
                owner = (table, self._own_folds(table))
                if not len(x):  # a table of no rows still has columns
                    yield (owner, slice(0, 0)), x
                yield from self._slices(x, owner)

        for ((table, fold), part), out in self.outputs_of(blocks()):
            frame = self._frame(out, _own(out, fold, part), threshold, members)
            frame.index = table.frame.index[part]
            yield dataclasses.replace(table, frame=table.frame.iloc[part]), frame
        unseen.say(far.get("name", "<table>"))
        if far["rows"]:
            log.warning("%s: %d row(s) hold values far outside the training range (most in "
                        "column %r): their predictions are extrapolations", far["name"],
                        far["rows"], self.inputs[int(far["per_feature"].argmax())])

    def predict(self, table, threshold=None, members=False):
        """A frame of predictions: ``<target>_pred`` columns, and ``p_<class>`` for classes
        (see the task's ``frame``; ``members``: each ensemble member's too)."""
        import pandas as pd

        return pd.concat([frame for _, frame in
                          self.predict_chunks([table], threshold, members)])

    def evaluate_chunks(self, tables, threshold=None, position=None, watchers=(),
                        weight=None, figures=None):
        """The metric report of this model on a stream of labelled tables, chunk by chunk:
        memory stays bounded (but for a few bytes a row that exact percentiles and ROC AUC
        need). ``position`` names the labels that form a point, instead of the model's; each
        of ``watchers`` (see :mod:`fcnn_cli.results.evaluation`) is given every slice of rows
        too, as ``add(frame, truth, outputs)``. ``weight``: a function of a slice's frame
        that gives its rows' event weights, to weigh the report by. ``figures``: the figures
        of merit a classification report adds (:class:`fcnn_cli.network.merit.Figures`)."""
        report = self.task.metrics(self.units, threshold, position, figures=figures)
        seen, warned, unseen = {"rows": 0, "name": "<table>"}, set(), Unseen()

        def blocks():
            for table in tables:
                missing = [t for t in self.targets if t not in table.frame.columns]
                if missing:
                    raise FcnnError(f"{table.name}: no label column(s) "
                                    f"{', '.join(map(repr, missing))}: evaluate needs the "
                                    "true values (predict does not)")
                x = self.feature_matrix(table, unseen)
                self.check_units(table, [*self.columns, *self.targets], warned)
                seen.update(rows=seen["rows"] + len(x), name=table.name)
                yield from self._slices(x, (table.frame, self.task.truth(table),
                                            self._own_folds(table)))

        for ((frame, truth, fold), part), out in self.outputs_of(blocks()):
            own = _own(out, fold, part)
            out = out if own is None else own
            rows = frame.iloc[part]
            report.add(truth[part], out, None if weight is None else weight(rows))
            for watcher in watchers:
                watcher.add(rows, truth[part], out)
        if not seen["rows"]:
            raise FcnnError(f"{seen['name']}: no rows to evaluate")
        unseen.say(seen["name"])
        return report.report()

    def evaluate(self, table, threshold=None):
        return self.evaluate_chunks([table], threshold)

    # k-fold networks (:mod:`fcnn_cli.network.foldrule`): a table that has the fold column is
    # scored row by row by the network of the row's fold, the one that never trained on it
    # (its own training rows included, they are then scored out of fold); any other by the
    # mean of the networks, as an ensemble.

    def _own_folds(self, table):
        """Each row's fold where the table has this model's fold column, else None."""
        rule = self.folds
        if rule is None:
            return None
        own = rule.by is not None and rule.by in table.frame.columns
        folds = rule.of_values(table.frame[rule.by], table.name) if own else None
        self._say_folds(table.name, own)  # once the folds are known: an error comes alone
        return folds

    def fold_metadata(self, tables):
        """(``tables``, what the output's metadata says of how its rows were scored): the
        first table looked at, and put back."""
        if self.folds is None:
            return tables, {}
        tables = iter(tables)
        first = next(tables, None)
        if first is None:
            return tables, {}
        own = self.folds.by is not None and self.folds.by in first.frame.columns
        applied = "out-of-fold" if own else "mean"
        return itertools.chain([first], tables), {"folds": {**self.folds.to_dict(),
                                                            "applied": applied}}

    def out_of_fold(self, name):
        """Whether the table ``name`` was scored row by row by its own folds' networks."""
        return self._folds_said.get(name, False)

    def _say_folds(self, name, own):
        if name in self._folds_said:
            return
        self._folds_said[name] = own
        rule = self.folds
        if own:
            log.info("%s: each row scored by the one of %d k-fold networks that did not train on "
                     "it (its fold by column %r)", name, rule.k, rule.by)
        else:
            why = f"no fold column {rule.by!r} in it" if rule.by else \
                "folds by row position, which a new table does not share"
            log.info("%s: rows scored by the mean of the %d k-fold networks (%s)", name, rule.k,
                     why)

    def _frame(self, out, own, threshold, members):
        """The frame of predictions: of each row's own network where ``own`` (k-fold's), with
        each member's columns beside it where ``members``."""
        if own is None:
            return self.task.frame(out, threshold, members)
        frame = self.task.frame(own, threshold)
        if not members:
            return frame
        import pandas as pd

        every = self.task.frame(out, threshold, members=True)
        each = [c for c in every.columns if MEMBER_COLUMN.search(c)]
        return pd.concat([frame, every[each]], axis=1)


MEMBER_COLUMN = re.compile(r"_m[0-9]+$")  # a member's prediction column (task.frame)


def _own(out, fold, part):
    """Each row's outputs of its own fold's network (rows × outputs), or None (``fold``
    None: no fold column)."""
    if fold is None:
        return None
    return out[fold[part], np.arange(len(out[0]))]


def _collect(key, outputs, rows, done):
    """(key, a block's outputs) once their copy back has arrived."""
    done.synchronize()
    return key, outputs[:rows].numpy().copy()
