"""The scalers' curves as torch operations: the smooth clip of ``robust`` and the quantile
table of ``quantile`` (:class:`~fcnn_cli.data.preprocess.Scaler`), in float64.

They are written with the operations that torch's ONNX exporter writes as graph nodes
(gather, where, log, sqrt): the same module scales the network's inputs in fcnn and in the
exported graph. Neither ``searchsorted`` nor the normal's quantile function (``ndtri``) export,
so a fixed number of bisection steps finds each value's place in its table, and the quantile
function is Acklam's rational approximation (relative error below 1.2e-9, ±6e-9 at most in the
±5.2 the values are clipped to).
"""

import math

import numpy as np
import torch

CLIP = 3.0  # robust: x / sqrt(1 + (x / CLIP)²) tends to ±CLIP (RealMLP's choice)
# quantile, as scikit-learn's QuantileTransformer: a value within BOUNDS of the table's ends
# takes probability 0 or 1, and probabilities are kept within P_MIN of them (±5.2, not ±inf).
BOUNDS = 1e-7
P_MIN = BOUNDS - float(np.spacing(1))
# Acklam's approximation of the normal's quantile function: the central region's numerator and
# denominator, the tails' (below P_LOW and above 1 - P_LOW), highest power first.
A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
     1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
     6.680131188771972e+01, -1.328068155288572e+01, 1.0)
C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
     -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
     3.754408661907416e+00, 1.0)
P_LOW = 0.02425


class ScalerModule(torch.nn.Module):
    """A :class:`~fcnn_cli.data.preprocess.Scaler` as a module: rows × columns in, the scaled
    rows out in the input's dtype (the affine part in that dtype, a curve in float64)."""

    def __init__(self, scaler):
        super().__init__()
        self.method = scaler.method
        wide = torch.float32 if scaler.affine else torch.float64
        self.register_buffer("shift", torch.tensor(scaler.shift, dtype=wide))
        self.register_buffer("scale", torch.tensor(scaler.scale, dtype=wide))
        if scaler.quantiles is not None:  # columns × quantiles
            self.register_buffer("table", torch.tensor(scaler.quantiles, dtype=torch.float64))
            # The probabilities of its quantiles, made here: torch's exporter writes linspace
            # in float32.
            self.register_buffer("levels", torch.linspace(0.0, 1.0, len(scaler.quantiles[0]),
                                                          dtype=torch.float64))
        mask = None  # or the columns a curve leaves as they are
        if scaler.kept and not scaler.affine:
            mask = torch.zeros(len(scaler.shift), dtype=torch.bool)
            mask[scaler.kept] = True
        self.register_buffer("kept", mask)

    def forward(self, x):
        if self.method not in ("robust", "quantile"):
            return (x - self.shift) / self.scale  # kept columns: shift 0, scale 1
        curved = self._curve(x.to(torch.float64)).to(x.dtype)
        return curved if self.kept is None else torch.where(self.kept, x, curved)

    def _curve(self, wide):
        if self.method == "robust":
            y = (wide - self.shift.double()) / self.scale.double()
            return y / torch.sqrt(1.0 + (y / CLIP) ** 2)
        return normal_quantile(probability(wide, self.table.double(), self.levels.double()))


def probability(x, table, levels):
    """Each value's probability by its column's quantile table (columns × quantiles, at
    evenly spaced probabilities ``levels``, ascending): interpolated between the quantiles
    around it, from above and from below, and the mean of the two (which differ only where quantiles
    repeat), as scikit-learn; 0 and 1 within BOUNDS of the table's ends."""
    knots = table.T  # quantiles × columns, for gather along the quantiles
    above = _interpolate(x, knots, levels, _count(x, knots, strict=False) - 1)
    below = _interpolate(x, knots, levels, _count(x, knots, strict=True) - 1)
    p = 0.5 * (above + below)
    bounds = _wide(BOUNDS)
    p = torch.where(x + bounds > knots[-1], 1.0, p)
    return torch.where(x - bounds < knots[0], 0.0, p)


def _count(x, knots, strict):
    """Per value, how many of its column's quantiles lie below it (``strict``) or at most at
    it: a bisection of ceil(log2(n + 1)) steps, each a gather."""
    n = knots.shape[0]
    lo = torch.zeros_like(x, dtype=torch.long)
    hi = torch.full_like(lo, n)
    for _ in range(math.ceil(math.log2(n + 1))):
        mid = torch.div(lo + hi, 2, rounding_mode="floor").clamp(max=n - 1)
        knot = torch.gather(knots, 0, mid)
        under = knot < x if strict else knot <= x
        active = lo < hi
        lo = torch.where(active & under, mid + 1, lo)
        hi = torch.where(active & ~under, mid, hi)
    return lo


def _interpolate(x, knots, levels, left):
    """The probability of each value on the segment from quantile ``left`` to the next (the
    first or last segment beyond the table's ends, which BOUNDS overrides)."""
    left = left.clamp(0, knots.shape[0] - 2)
    x0, x1 = torch.gather(knots, 0, left), torch.gather(knots, 0, left + 1)
    p0, p1 = levels[left], levels[left + 1]
    width = x1 - x0
    step = torch.where(width > 0, (x - x0) / torch.where(width > 0, width, 1.0), 0.0)
    return p0 + step * (p1 - p0)


def normal_quantile(p):
    """The standard normal's quantile of each probability, kept within [P_MIN, 1 - P_MIN]."""
    p = torch.clamp(p, _wide(P_MIN), _wide(1.0 - P_MIN))
    q = p - 0.5
    r = q * q
    central = q * _poly(A, r) / _poly(B, r)
    tail = torch.sqrt(-2.0 * torch.log(torch.minimum(p, 1.0 - p)))
    tails = _poly(C, tail) / _poly(D, tail)
    return torch.where(q.abs() <= 0.5 - P_LOW, central, torch.where(q < 0, tails, -tails))


def _wide(value):
    """A float64 constant: torch's exporter writes a Python number as a float32 one, which
    moves the bounds and, as the polynomials cancel, the quantiles by more than float32's
    rounding of the result."""
    return torch.tensor(value, dtype=torch.float64)


def _poly(coefficients, x):
    c = _wide(coefficients)
    out = torch.zeros_like(x) + c[0]
    for k in range(1, len(coefficients)):
        out = out * x + c[k]
    return out
