"""A trained network together with everything needed to apply it to a new table."""

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from fcnn_cli.errors import FcnnError
from fcnn_cli.model import MLP
from fcnn_cli.preprocess import Scaler
from fcnn_cli.tables import numeric_matrix

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
        x = numeric_matrix(table, self.features)
        self._warn_if_far_outside(x, table.name)
        return x

    def _warn_if_far_outside(self, x, name):
        """Say so when rows lie far outside the training range: predictions there extrapolate."""
        if not self.feature_range or not len(x):
            return
        lo, hi = np.asarray(self.feature_range["min"]), np.asarray(self.feature_range["max"])
        margin = FAR_OUTSIDE * (hi - lo)
        far = (x < lo - margin) | (x > hi + margin)
        rows = far.any(axis=1)
        if rows.any():
            column = self.features[int(far.sum(axis=0).argmax())]
            log.warning("%s: %d row(s) hold values far outside the training range (most in "
                        "column %r): their predictions are extrapolations", name,
                        int(rows.sum()), column)

    def outputs(self, x):
        """The network's raw outputs for a raw (unscaled) feature matrix."""
        self.net.eval()
        xs = torch.from_numpy(self.x_scaler.transform(x))
        out = []
        with torch.inference_mode():
            for start in range(0, len(xs), CHUNK_ROWS):
                chunk = xs[start:start + CHUNK_ROWS].to(self.device)
                out.append(self.net(chunk).float().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, self.task.n_outputs), np.float32)

    def predict(self, table, threshold=None):
        """A frame of predictions: ``<target>_pred`` columns, and ``p_<class>`` for classes."""
        frame = self.task.frame(self.outputs(self.feature_matrix(table)), threshold)
        frame.index = table.frame.index
        return frame

    def evaluate(self, table, threshold=None):
        """The metric report of this model on a labelled table."""
        missing = [t for t in self.targets if t not in table.frame.columns]
        if missing:
            raise FcnnError(f"{table.name}: no label column(s) {', '.join(map(repr, missing))}: "
                            "evaluate needs the true values (predict does not)")
        if table.frame.empty:
            raise FcnnError(f"{table.name}: no rows to evaluate")
        out = self.outputs(self.feature_matrix(table))
        return self.task.report(self.task.truth(table), out, self.units, threshold)
