"""A trained network together with everything needed to apply it to a new table."""

import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from fcnn_cli.columns import numeric_matrix
from fcnn_cli.devices import autocast, matmul_precision
from fcnn_cli.errors import FcnnError
from fcnn_cli.model import MLP
from fcnn_cli.preprocess import Scaler
from fcnn_cli.tasks import OUTPUTS_AT_ONCE

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
    # Page-locked input and output buffers of a GPU, made once: pinning memory is slow.
    _pinned: list = field(default_factory=list, repr=False, compare=False)

    @property
    def targets(self):
        return self.task.targets

    @property
    def device(self):
        return next(self.net.parameters()).device

    def feature_matrix(self, table):
        """The table's feature columns, matched by name in any order, as float32."""
        missing = [c for c in self.features if c not in table.frame.columns]
        if missing:
            raise FcnnError(f"{table.name}: missing feature column(s) "
                            f"{', '.join(map(repr, missing))} that the model was trained on")
        return numeric_matrix(table, self.features)

    def far_outside(self, x):
        """Per feature, how many values lie far outside the training range."""
        if not self.feature_range or not len(x):
            return np.zeros(len(self.features), dtype=np.int64), 0
        lo, hi = np.asarray(self.feature_range["min"]), np.asarray(self.feature_range["max"])
        margin = FAR_OUTSIDE * (hi - lo)
        far = (x < lo - margin) | (x > hi + margin)
        return far.sum(axis=0), int(far.any(axis=1).sum())

    @property
    def chunk_rows(self):
        return max(1, min(CHUNK_ROWS, OUTPUTS_AT_ONCE // self.task.n_outputs))

    def add_to(self, report, x, truth):
        """Feed a metrics report (``task.metrics``) with these rows' outputs, slice by slice,
        so that many classes never mean one huge matrix of outputs."""
        step = self.chunk_rows
        for start, out in zip(range(0, len(x), step), self.output_chunks(x)):
            report.add(truth[start:start + step], out)
        return report

    def outputs(self, x):
        """The network's raw outputs for a raw (unscaled) feature matrix."""
        out = list(self.output_chunks(x))
        return np.concatenate(out) if out else np.empty((0, self.task.n_outputs), np.float32)

    def output_chunks(self, x):
        """:meth:`outputs` of ``x`` in slices of ``chunk_rows`` rows, one after the other."""
        self.net.eval()
        if self.device.type == "cuda":
            yield from self._cuda_chunks(x)
            return
        xs = torch.from_numpy(self.x_scaler.transform(x))
        step = self.chunk_rows
        for start in range(0, len(xs), step):
            with self._computing():
                yield self.net(xs[start:start + step]).float().cpu().numpy()

    def _cuda_chunks(self, x):
        """output_chunks on a GPU, one chunk ahead: while the GPU copies a chunk in, computes
        and copies its outputs back (all asynchronous, from page-locked memory, on a stream of
        its own), the host scales the next chunk, or the caller reads the next block of rows."""
        if not len(x):
            return
        step, device = self.chunk_rows, self.device
        stream = torch.cuda.Stream(device)
        pinned = self._pinned_buffers(min(step, len(x)))
        pending = None  # (buffer, rows, event) of the chunk on its way back
        for j, start in enumerate(range(0, len(x), step)):
            inputs, outputs = pinned[j % 2]
            part = torch.from_numpy(self.x_scaler.transform(x[start:start + step]))
            rows = len(part)
            inputs[:rows].copy_(part)
            with self._computing(), torch.cuda.stream(stream):
                out = self.net(inputs[:rows].to(device, non_blocking=True)).float()
                outputs[:rows].copy_(out, non_blocking=True)
                done = torch.cuda.Event()
                done.record(stream)
            if pending:
                yield _collect(*pending)
            pending = (outputs, rows, done)
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
            shapes = ((rows, len(self.features)), (rows, self.task.n_outputs))
            self._pinned = [tuple(torch.empty(s, dtype=torch.float32).pin_memory()
                                  for s in shapes) for _ in range(2)]
        return self._pinned

    def output_columns(self):
        """The columns :meth:`predict` makes, known before any data is read."""
        return list(self.task.frame(np.empty((0, self.task.n_outputs), np.float32)).columns)

    def predict_chunks(self, tables, threshold=None):
        """Predictions for a stream of tables (``tables.iter_tables``): (part of a table, its
        frame of predictions) in slices of ``chunk_rows``, so that many classes never make one
        huge frame; rows far outside the training range are counted over the whole stream."""
        per_feature, rows, name = np.zeros(len(self.features), dtype=np.int64), 0, None
        for table in tables:
            x = self.feature_matrix(table)
            counts, far = self.far_outside(x)
            per_feature, rows, name = per_feature + counts, rows + far, table.name
            step = self.chunk_rows
            chunks = self.output_chunks(x) if len(x) else iter([self.outputs(x)])
            # a table of no rows still has columns
            for start, out in zip(range(0, max(len(x), 1), step), chunks):
                part = slice(start, start + step)
                frame = self.task.frame(out, threshold)
                frame.index = table.frame.index[part]
                yield dataclasses.replace(table, frame=table.frame.iloc[part]), frame
        if rows:
            log.warning("%s: %d row(s) hold values far outside the training range (most in "
                        "column %r): their predictions are extrapolations", name, rows,
                        self.features[int(per_feature.argmax())])

    def predict(self, table, threshold=None):
        """A frame of predictions: ``<target>_pred`` columns, and ``p_<class>`` for classes."""
        import pandas as pd

        return pd.concat([frame for _, frame in self.predict_chunks([table], threshold)])

    def evaluate_chunks(self, tables, threshold=None):
        """The metric report of this model on a stream of labelled tables, chunk by chunk:
        memory stays bounded (but for a few bytes a row that exact percentiles and ROC AUC
        need)."""
        report, rows, name = self.task.metrics(self.units, threshold), 0, "<table>"
        for table in tables:
            missing = [t for t in self.targets if t not in table.frame.columns]
            if missing:
                raise FcnnError(f"{table.name}: no label column(s) "
                                f"{', '.join(map(repr, missing))}: evaluate needs the true "
                                "values (predict does not)")
            x = self.feature_matrix(table)
            self.add_to(report, x, self.task.truth(table))
            rows, name = rows + len(x), table.name
        if not rows:
            raise FcnnError(f"{name}: no rows to evaluate")
        return report.report()

    def evaluate(self, table, threshold=None):
        return self.evaluate_chunks([table], threshold)


def _collect(outputs, rows, done):
    """A chunk's outputs once its copy back has arrived."""
    done.synchronize()
    return outputs[:rows].numpy().copy()
