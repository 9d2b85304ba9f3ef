"""A trained network together with everything needed to apply it to a new table."""

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from fcnn_cli.columns import numeric_matrix
from fcnn_cli.devices import inference_threads
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
    # devices.ThreadChooser, made on first use; kept across calls so that a stream of chunks
    # keeps the thread count it has measured
    threads: object = field(default=None, init=False, repr=False, compare=False)

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
        for start in range(0, len(x), step):
            report.add(truth[start:start + step], self.outputs(x[start:start + step]))
        return report

    def outputs(self, x):
        """The network's raw outputs for a raw (unscaled) feature matrix."""
        self.net.eval()
        xs = torch.from_numpy(self.x_scaler.transform(x))
        out = []
        self.threads = self.threads or inference_threads(self.device)
        with torch.inference_mode(), self.threads.in_use():
            step = self.chunk_rows
            for start in range(0, len(xs), step):
                chunk = xs[start:start + step].to(self.device)
                with self.threads.timing(len(chunk)):
                    out.append(self.net(chunk).float().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, self.task.n_outputs), np.float32)

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
            for start in range(0, max(len(x), 1), step):  # a table of no rows still has columns
                part = slice(start, start + step)
                frame = self.task.frame(self.outputs(x[part]), threshold)
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
