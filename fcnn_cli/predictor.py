"""A trained network together with everything needed to apply it to a new table."""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from fcnn_cli.errors import FcnnError
from fcnn_cli.model import MLP
from fcnn_cli.preprocess import Scaler
from fcnn_cli.tables import numeric_matrix

CHUNK_ROWS = 65536  # rows per forward pass at inference: bounds memory, keeps BLAS busy


@dataclass
class Predictor:
    net: MLP
    features: list
    targets: list
    x_scaler: Scaler
    y_scaler: Scaler
    units: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # provenance: training config, metrics, versions

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

    def predict_array(self, x):
        """Predictions in the targets' own units for a raw (unscaled) feature matrix."""
        self.net.eval()
        xs = torch.from_numpy(self.x_scaler.transform(x))
        out = []
        with torch.inference_mode():
            for start in range(0, len(xs), CHUNK_ROWS):
                chunk = xs[start:start + CHUNK_ROWS].to(self.device)
                out.append(self.net(chunk).float().cpu().numpy())
        y = np.concatenate(out) if out else np.empty((0, len(self.targets)), np.float32)
        return self.y_scaler.inverse(y.astype(np.float64))

    def predict(self, table):
        """A frame with one ``<target>_pred`` column per target."""
        y = self.predict_array(self.feature_matrix(table))
        return pd.DataFrame({f"{t}_pred": y[:, i] for i, t in enumerate(self.targets)},
                            index=table.frame.index)
