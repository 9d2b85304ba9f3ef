"""Feature and target scaling, fitted on the training split and stored with the model."""

import logging
from dataclasses import asdict, dataclass

import numpy as np

from fcnn_cli.config import SCALINGS
from fcnn_cli.errors import FcnnError

log = logging.getLogger(__name__)


@dataclass
class Scaler:
    """``x' = (x - shift) / scale`` column by column.

    * ``standard``: shift by the mean, divide by the standard deviation of each column.
    * ``max``: divide every column by the one largest absolute value recorded in the training
      features, as is done for arrival times; one common factor keeps the ratios between columns.
    * ``minmax``: map each column's training range onto [0, 1].
    * ``none``: leave the values as they are.
    """

    method: str
    shift: list
    scale: list

    @classmethod
    def fit(cls, method, x, names=()):
        if method not in SCALINGS:
            raise FcnnError(f"unknown scaling {method!r}; choose from {', '.join(SCALINGS)}")
        x = np.asarray(x, dtype=np.float64)
        if method == "standard":
            return cls.of(method, x.mean(axis=0), x.std(axis=0), None, None, names)
        if method in ("minmax", "max"):
            return cls.of(method, None, None, x.min(axis=0), x.max(axis=0), names)
        return cls.of(method, None, None, None, None, names, x.shape[1])

    @classmethod
    def of(cls, method, mean, std, lo, hi, names=(), n=None):
        """The scaler from the training columns' moments, as a streamed pass finds them:
        ``mean`` and ``std`` for standard, ``lo`` and ``hi`` for max and minmax."""
        if method not in SCALINGS:
            raise FcnnError(f"unknown scaling {method!r}; choose from {', '.join(SCALINGS)}")
        n = len(names) if n is None else n
        if method == "none":
            shift, scale = np.zeros(n), np.ones(n)
        elif method == "standard":
            shift, scale = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        elif method == "minmax":
            shift, scale = np.asarray(lo, np.float64), np.asarray(hi) - np.asarray(lo)
        else:
            shift = np.zeros(len(lo))
            scale = np.full(len(lo), max(np.abs(lo).max(), np.abs(hi).max()))
        constant = scale == 0
        if constant.any():
            which = [names[i] if i < len(names) else str(i) for i in np.flatnonzero(constant)]
            log.warning("column(s) %s are constant in the training data: they are kept but "
                        "carry no information", ", ".join(map(repr, which)))
            scale = np.where(constant, 1.0, scale)
        return cls(method, shift.tolist(), scale.tolist())

    def transform(self, x):
        """The scaled float32 matrix, as one new array: no float64 temporaries."""
        out = np.subtract(x, np.asarray(self.shift, np.float32), dtype=np.float32)
        out /= np.asarray(self.scale, np.float32)
        return out

    def inverse(self, x):
        return x * np.asarray(self.scale) + np.asarray(self.shift)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(d["method"], list(d["shift"]), list(d["scale"]))
