"""Feature and target scaling, fitted on the training split and stored with the model.

A scaler is affine (``x' = (x - shift) / scale``) or, for features alone, one of two curves
fitted on the training values: ``robust`` (RealMLP's: the affine part from the median and the
interquartile range, then a smooth clip of outliers) and ``quantile`` (each feature through a
table of its training quantiles onto a normal's). The affine path stays in float32 numpy; the
curves are computed once, in float64 torch, by :meth:`Scaler.module`, which the network's input
and the ONNX graph both use, so that the two cannot differ.
"""

import logging
from dataclasses import asdict, dataclass

import numpy as np

from fcnn_cli.core.config import CURVES, SCALINGS
from fcnn_cli.core.errors import FcnnError, listed
from fcnn_cli.data.categories import is_index, is_unknown

log = logging.getLogger(__name__)

QUANTILES = 1000  # quantile: training quantiles per feature, at most (scikit-learn's default)
CURVE_ROWS = 1 << 14  # rows through a curve at once: bounds the float64 temporaries


@dataclass
class Scaler:
    """``x' = (x - shift) / scale`` column by column.

    * ``standard``: shift by the mean, divide by the standard deviation of each column.
    * ``max``: divide every column by the one largest absolute value recorded in the training
      features, as is done for arrival times; one common factor keeps the ratios between columns.
    * ``minmax``: map each column's training range onto [0, 1].
    * ``none``: leave the values as they are.
    * ``robust``: shift by the median, divide by the interquartile range (where it is 0, by
      half the training range), then clip smoothly, ``x / sqrt(1 + (x / 3)²)``: pytabkit's
      RobustScaleSmoothClipTransform, but a constant column keeps a scale of 1.
    * ``quantile``: no affine part (shift 0, scale 1); each value's place among the column's
      training quantiles (``quantiles``: per column, those at evenly spaced probabilities),
      interpolated, becomes the normal's quantile of that probability, as scikit-learn's
      QuantileTransformer(output_distribution="normal") computes it.

    Whatever the method, the ``kept`` columns (the level indices of categorical features of
    many levels, which pick rows of an embedding) are left as they are: shift 0, scale 1, no
    curve, and no part in ``max``'s common factor.
    """

    method: str
    shift: list
    scale: list
    quantiles: list | None = None  # quantile: per column, its training quantiles
    kept: list | None = None  # the columns left as they are, by position

    @property
    def affine(self):
        return self.method not in CURVES

    @classmethod
    def fit(cls, method, x, names=()):
        if method not in SCALINGS:
            raise FcnnError(f"unknown scaling {method!r}; choose from {', '.join(SCALINGS)}")
        x = np.asarray(x)
        if method in CURVES:  # in float64 a column at a time (of_sample)
            return cls.of_sample(method, x.T, names)
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
        kept = _kept(names)
        if method == "none":
            shift, scale = np.zeros(n), np.ones(n)
        elif method == "standard":
            shift, scale = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        elif method == "minmax":
            shift = np.asarray(lo, np.float64)
            scale = np.asarray(hi, np.float64) - shift
        else:  # one factor, of the columns not kept
            shift = np.zeros(len(lo))
            lo, hi = (np.delete(np.asarray(v, np.float64), kept) for v in (lo, hi))
            factor = max(np.abs(lo).max(), np.abs(hi).max()) if len(lo) else 1.0
            scale = np.full(len(shift), factor, np.float64)
        return cls(method, shift.tolist(), _nonzero(scale, names).tolist()).keeping(kept)

    @classmethod
    def of_sample(cls, method, columns, names=()):
        """The scaler of a curve (``robust``, ``quantile``) from each column's training values:
        all of them, or the bounded sample a streamed pass keeps
        (:class:`~fcnn_cli.data.missing.MedianSample`). Each column is made float64 alone:
        all at once would take twice the memory of a float32 table."""
        n = len(columns)
        if method == "quantile":
            # As scikit-learn, to the last bit (a quantile that falls on a repeated value must
            # equal it): np.percentile (linear) at these percentages, then made ascending where
            # the interpolation's rounding steps back.
            levels = np.linspace(0, 1, min(QUANTILES, min(map(len, columns)))) * 100
            table = [np.maximum.accumulate(np.percentile(_wide(c), levels)).tolist()
                     for c in columns]
            return cls(method, [0.0] * n, [1.0] * n, table).keeping(_kept(names))
        median, spread = np.array([_centre_and_spread(_wide(c)) for c in columns]).reshape(n, 2).T
        return cls(method, median.tolist(), _nonzero(spread, names).tolist()).keeping(
            _kept(names))

    def keeping(self, kept):
        """Itself with the columns ``kept`` (positions) left as they are."""
        for i in kept:
            self.shift[i], self.scale[i] = 0.0, 1.0
        self.kept = list(kept) or None
        return self

    def transform(self, x, out=None):
        """The scaled float32 matrix, as one new array (or into ``out``, which may be ``x``
        itself). The affine path makes no float64 temporaries; a curve computes CURVE_ROWS
        rows at a time in float64 (:meth:`module`)."""
        if not self.affine:
            return self._curve(x, out)
        out = np.subtract(x, np.asarray(self.shift, np.float32), out=out, dtype=np.float32)
        out /= np.asarray(self.scale, np.float32)
        return out

    def _curve(self, x, out):
        import torch

        out = np.empty(np.shape(x), np.float32) if out is None else out
        module = self.module()
        with torch.no_grad():
            for start in range(0, len(x), CURVE_ROWS):
                rows = np.ascontiguousarray(x[start:start + CURVE_ROWS], np.float32)
                out[start:start + len(rows)] = module(torch.from_numpy(rows)).numpy()
        return out

    def module(self):
        """The scaler as a torch module (for the ONNX graph too): inputs in, scaled inputs of
        the same dtype out; the affine part in that dtype, a curve in float64."""
        from fcnn_cli.data.curves import ScalerModule

        return ScalerModule(self)

    def inverse(self, x):
        return x * np.asarray(self.scale) + np.asarray(self.shift)

    def to_dict(self):
        return {k: v for k, v in asdict(self).items()
                if v is not None or k not in ("quantiles", "kept")}

    @classmethod
    def from_dict(cls, d):
        table = d.get("quantiles")
        return cls(d["method"], list(d["shift"]), list(d["scale"]),
                   None if table is None else [list(q) for q in table],
                   list(d["kept"]) if d.get("kept") else None)


def _kept(names):
    """The positions of the level indices among the inputs ``names``."""
    return [i for i, name in enumerate(names) if is_index(name)]


def _wide(column):
    return np.asarray(column, np.float64)


def _centre_and_spread(column):
    """robust's median and interquartile range of one column; where the range is 0,
    pytabkit's fallback: half the training range."""
    q25, median, q75 = np.quantile(column, [0.25, 0.5, 0.75])
    spread = q75 - q25
    return median, spread if spread != 0 else 0.5 * (column.max() - column.min())


def _nonzero(scale, names):
    """``scale`` with 1 for each constant column (of no spread in the training rows), which
    is kept, with a warning."""
    constant = scale == 0
    # The unknown level's input of a categorical feature is 0 in training by design.
    which = [names[i] if i < len(names) else str(i) for i in np.flatnonzero(constant)
             if i >= len(names) or not is_unknown(names[i])]
    if which:
        log.warning("column(s) %s are constant in the training data: they are kept but "
                    "carry no information", listed(map(repr, which)))
    return np.where(constant, 1.0, scale)


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
