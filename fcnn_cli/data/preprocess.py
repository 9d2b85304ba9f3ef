"""Feature and target scaling, fitted on the training split and stored with the model."""

import logging
from dataclasses import asdict, dataclass

import numpy as np

from fcnn_cli.core.config import SCALINGS
from fcnn_cli.core.errors import FcnnError

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
        x = np.asarray(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        if method == "standard":
            return cls.of(method, *_mean_std(x), None, None, names)
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
            shift = np.asarray(lo, np.float64)
            scale = np.asarray(hi, np.float64) - shift
        else:
            shift = np.zeros(len(lo))
            scale = np.full(len(lo), max(np.abs(lo).max(), np.abs(hi).max()), np.float64)
        constant = scale == 0
        if constant.any():
            which = [names[i] if i < len(names) else str(i) for i in np.flatnonzero(constant)]
            log.warning("column(s) %s are constant in the training data: they are kept but "
                        "carry no information", ", ".join(map(repr, which)))
            scale = np.where(constant, 1.0, scale)
        return cls(method, shift.tolist(), scale.tolist())

    def transform(self, x, out=None):
        """The scaled float32 matrix, as one new array (or into ``out``, which may be ``x``
        itself): no float64 temporaries."""
        out = np.subtract(x, np.asarray(self.shift, np.float32), out=out, dtype=np.float32)
        out /= np.asarray(self.scale, np.float32)
        return out

    def inverse(self, x):
        return x * np.asarray(self.scale) + np.asarray(self.shift)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(d["method"], list(d["shift"]), list(d["scale"]))


MOMENT_ROWS = 1 << 16  # rows converted to float64 at once while the moments are summed


def _mean_std(x):
    """``x.mean(axis=0)`` and ``x.std(axis=0)`` in float64, bit for bit, without a float64
    copy of ``x``: numpy sums each column row after row, and so do these row blocks, each
    added onto the running sums in that order."""
    n = len(x)
    mean = _column_sums(x, lambda rows: rows) / n
    return mean, np.sqrt(_column_sums(x, lambda rows: (rows - mean) ** 2) / n)


def _column_sums(x, term):
    total = None
    for start in range(0, len(x), MOMENT_ROWS):
        part = np.asarray(term(x[start:start + MOMENT_ROWS]), np.float64)
        total = part.sum(axis=0) if total is None else \
            np.add.reduce(np.vstack([total[None], part]), axis=0)
    return total if total is not None else np.full(x.shape[1], np.nan)
