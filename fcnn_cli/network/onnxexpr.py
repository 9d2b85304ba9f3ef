"""A model's definitions (``--define``) as torch operations in float64, which torch's ONNX
exporter writes as graph nodes: the features computed from the raw columns in the graph, as
:mod:`fcnn_cli.data.evaluator` computes them with numpy.

Each expression's program (postfix, see :mod:`fcnn_cli.data.expressions`) is run on a stack of
tensors while the exporter traces it; its constant parts are computed by the evaluator itself
(:func:`~fcnn_cli.data.evaluator.fold`), so that ``x ** 0.5`` is a square root here too.
Arithmetic, comparisons, logic, abs, sqrt, minimum, maximum, fmin, fmax, clip, where, isnan,
``??`` and ``%`` give numpy's values bit for bit; exp, log, tanh and ``**`` are onnxruntime's
own, within a few units in the last place, and its sin and cos are good to about 1e-16 of 1
rather than of their value. onnxruntime has no float64 kernel of tan, arcsin, arccos, arctan,
sinh and cosh, and ONNX no arctan2, hypot, log10 or numpy's remainder: those are made of
operations it has (arctan as Cephes computes it), within a few units in the last place of
numpy's, with numpy's NaN and infinities at the edges. A zero's sign may differ: onnxruntime's
Where gives 0.0 for a -0.0 that it picks.

A list column (``NAME[i]``, ``len``/``sum``/``max``/``min``, the columns of ``--objects``) and
a comparison of a column with text (``region == 'barrel'``) are refused: an ONNX graph's input
holds one number a column. ``a in (1, 2)`` is ``a == 1 or a == 2``.
"""

import functools
import math

import numpy as np
import torch

from fcnn_cli.core.errors import FcnnError, printable
from fcnn_cli.data import evaluator, expressions

PI, PI_2, PI_4 = math.pi, math.pi / 2, math.pi / 4
MOREBITS = 6.123233995736765886130e-17  # π/2 less PI_2: Cephes' correction of its sums
T3P8 = 2.41421356237309504880  # tan(3π/8)
# Cephes' rational approximation of arctan on [0, 0.66]: x + x·z·P(z)/Q(z), z = x²
ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1, -7.500855792314704667340e1,
          -1.228866684490136173410e2, -6.485021904942025371773e1)
ATAN_Q = (2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2,
          4.853903996359136964868e2, 1.945506571482613964425e2)
LN10 = math.log(10)
COMPARE = {"<": torch.lt, "<=": torch.le, ">": torch.gt, ">=": torch.ge, "==": torch.eq,
           "!=": torch.ne}
ARITHMETIC = {"+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div}


def plan(definitions, names):
    """(the raw columns, the definitions ``[(name, Expression)]`` that make ``names``, in
    their order): those that ``names`` need, through the definitions before each. A needed
    definition that reads a list column is refused in one line naming it."""
    raw = expressions.raw_columns(definitions, names)
    needed, wanted = [], set(names)
    for name, expression in reversed(definitions):  # a definition sees those before it
        if name in wanted:
            wanted.discard(name)
            wanted.update(expression.names)
            needed.append((name, expression))
    needed.reverse()
    for name, expression in needed:
        _refuse_not_numbers(name, expression)
    return raw, needed


def _refuse_not_numbers(name, expression):
    """Refuse a definition that reads a list column, or a column's values as texts."""
    for kind, argument, _ in expression.program:
        if kind in ("item", "reduce", "text"):
            column = printable(repr(argument[1] if kind == "reduce" else argument[0]))
            what = f"the column {column} as text" if kind == "text" else \
                f"the list column {column}"
            text = expression.text if len(expression.text) <= 60 else \
                expression.text[:57] + "..."
            raise FcnnError(
                f"definition {printable(repr(name))} = {printable(text)} reads {what}, and an "
                "ONNX graph takes one number a column: to export, write such columns into the "
                "table (numbers, flat) and train on them")


class Derived(torch.nn.Module):
    """Raw columns in (float64, rows × ``raw``), the ``features`` out (float64, rows ×
    features): raw ones as they are, defined ones by their definitions ``steps`` (those of
    :func:`plan`), each seeing the raw columns and the definitions before it."""

    def __init__(self, raw, steps, features):
        super().__init__()
        self.raw, self.features = list(raw), list(features)
        self.steps = [(name, e.program) for name, e in steps]

    def forward(self, columns):
        known = {name: columns[:, i] for i, name in enumerate(self.raw)}
        for name, program in self.steps:
            known[name] = _column(run(program, known), columns)
        return torch.stack([known[f] for f in self.features], dim=1)


def run(program, known):
    """The value of ``program`` on the tensors ``known`` (name → float64 column): a tensor
    (float64, or bool for comparisons and logic), or a numpy scalar where it reads no
    column."""
    stack = []
    for kind, argument, _ in program:
        if kind == "number":
            stack.append(np.float64(argument))
        elif kind == "column":
            stack.append(known[argument])
        else:
            count = evaluator.arity(kind, argument)
            values = stack[len(stack) - count:]
            del stack[len(stack) - count:]
            stack.append(_apply(kind, argument, values))
    (value,) = stack
    return value


def _column(value, columns):
    """A definition's value as derive makes it: float64, one a row (a constant repeated)."""
    if isinstance(value, torch.Tensor):
        return value.double()
    return _number(value).expand(columns.shape[0])


def _apply(kind, argument, values):
    if not any(isinstance(v, torch.Tensor) for v in values):
        return evaluator.fold(kind, argument, values)  # numpy's own, constants alike
    if kind == "call":
        return _call(argument[0], values)
    if kind == "isin":
        a = _number(values[0])
        return functools.reduce(torch.logical_or, [a == value for value in argument])
    if argument in ("and", "or"):
        both = [_truth(v) for v in values]
        return torch.logical_and(*both) if argument == "and" else torch.logical_or(*both)
    if argument in ("not", "!"):
        return torch.logical_not(_truth(values[0]))
    if kind == "unary":
        return -_number(values[0]) if argument == "-" else _number(values[0])
    if argument == "**":
        return _power(*values)
    a, b = (_number(v) for v in values)
    if argument == "??":
        return torch.where(torch.isnan(a), b, a)
    if argument == "%":
        return _remainder(a, b)
    return COMPARE[argument](a, b) if argument in COMPARE else ARITHMETIC[argument](a, b)


def _call(name, values):
    if name == "where":
        return torch.where(_truth(values[0]), _number(values[1]), _number(values[2]))
    args = [_number(v) for v in values]
    if name == "clip":  # numpy's: minimum(maximum(x, lo), hi)
        return _minimum(_maximum(args[0], args[1]), args[2])
    if name in evaluator.FOLDED:  # as the evaluator folds numpy's function of two
        return functools.reduce(FUNCTIONS[name], args)
    return FUNCTIONS[name](*args)


def _number(value):
    """A float64 tensor: booleans as 0 and 1, constants as 0-d tensors. Every constant of an
    operation goes through here: torch's exporter writes a Python number as a float32 constant
    (ln 10 or π good to 1e-8 only)."""
    if isinstance(value, torch.Tensor):
        return value.double() if value.dtype == torch.bool else value
    return torch.tensor(float(value), dtype=torch.float64)


def _truth(value):
    """True unless 0, NaN true, as the evaluator's truth values."""
    if isinstance(value, torch.Tensor):
        return value if value.dtype == torch.bool else value != 0
    return torch.tensor(bool(value != 0))


def _power(base, exponent):
    """numpy's ``**``: a constant exponent 2 or 0.5 is a square or a square root."""
    if not isinstance(exponent, torch.Tensor) and float(exponent) in evaluator.POWERS:
        base = _number(base)
        return base * base if float(exponent) == 2.0 else torch.sqrt(base)
    return torch.pow(_number(base), _number(exponent))


def _remainder(a, b):
    """numpy's remainder: C's fmod, moved by b where its sign is not b's; a zero takes b's
    sign (ONNX's Mod of floats is fmod alone)."""
    mod = torch.fmod(a, b)
    moved = torch.where((mod != 0) & ((b < 0) != (mod < 0)), mod + b, mod)
    return torch.where(mod == 0, _number(0.0) * torch.sign(b), moved)


def _minimum(a, b):
    """numpy's: a where a < b or a is NaN, else b (NaN in, NaN out; of 0.0 and -0.0 the
    second)."""
    return torch.where((a < b) | torch.isnan(a), a, b)


def _maximum(a, b):
    return torch.where((a > b) | torch.isnan(a), a, b)


def _fmin(a, b):
    """numpy's fmin: the smaller, NaN skipped (NaN where both are)."""
    return torch.where((a <= b) | torch.isnan(b), a, b)


def _fmax(a, b):
    return torch.where((a >= b) | torch.isnan(b), a, b)


def _infinite(x):
    """torch.isinf, which torch's exporter makes of a float32 copy (1e300 is infinite there)."""
    return torch.abs(x) == _number(math.inf)


def _pick(condition, a, b):
    """torch.where in float64 (of two Python numbers it would give float32)."""
    return torch.where(condition, _number(a), _number(b))


def _negative(x):
    """Whether x's sign bit is set: -0.0 too (1 / -0.0 is -inf)."""
    return (x < 0) | ((x == 0) & (_number(1.0) / x < 0))


def _arctan(x):
    """Cephes' atan: |x| reduced to [0, 0.66] by π/2 - atan(1/x) or π/4 + atan((x-1)/(x+1)),
    and a rational approximation there; exact at ±0 and ±inf."""
    a = torch.abs(x)
    big = a > _number(T3P8)
    middle = (a > _number(0.66)) & ~big
    one = _number(1.0)
    t = torch.where(big, -one / a, torch.where(middle, (a - one) / (a + one), a))
    z = t * t
    p, q = _number(0.0), _number(0.0)
    for c in ATAN_P:
        p = p * z + _number(c)
    for c in (1.0, *ATAN_Q):
        q = q * z + _number(c)
    r = t * (z * p / q) + t
    r = r + _pick(big, MOREBITS, _pick(middle, 0.5 * MOREBITS, 0.0))
    r = r + _pick(big, PI_2, _pick(middle, PI_4, 0.0))
    r = torch.where(x < 0, -r, r)
    return torch.where(x == 0, x, r)


def _arctan2(y, x):
    """C's atan2: arctan(y / x), moved by ±π where x < 0; the zeros and infinities that the
    quotient loses set apart."""
    r = _arctan(y / x)
    r = torch.where(x < 0, r + _pick(_negative(y), -PI, PI), r)  # -0.0 stays where x > 0
    present = ~torch.isnan(x) & ~torch.isnan(y)
    pi_or_zero = _pick(_negative(x), PI, 0.0)
    r = torch.where((y == 0) & present, torch.where(_negative(y), -pi_or_zero, pi_or_zero), r)
    half = _pick(_negative(y), -PI_2, PI_2)
    r = torch.where((x == 0) & (y != 0) & present, half, r)
    corner = _pick(x < 0, 3 * PI_4, PI_4)  # both infinite
    return torch.where(_infinite(x) & _infinite(y), torch.where(y < 0, -corner, corner), r)


def _arcsin(x):
    return _arctan2(x, _cosine_of_sine(x))


def _arccos(x):
    return _arctan2(_cosine_of_sine(x), x)


def _cosine_of_sine(x):
    """sqrt(1 - x²) as (1 - x)(1 + x): 1 - x is exact near 1."""
    one = _number(1.0)
    return torch.sqrt((one - x) * (one + x))


def _tan(x):
    return torch.sin(x) / torch.cos(x)


def _halves(x):
    """exp(|x|)/2 and exp(-|x|)/2 as h·h/2 and 1/(2h·h), h = exp(|x|/2): finite as far as
    numpy's sinh and cosh are (past exp's overflow at 709.78)."""
    half = _number(0.5)
    h = torch.exp(torch.abs(x) * half)
    return h * half * h, half / h / h


def _sinh(x):
    """Below 1, 2t / (1 - t²), t = tanh(x/2): the difference of exponentials would cancel."""
    t = torch.tanh(x * _number(0.5))
    up, down = _halves(x)
    large = torch.where(x < 0, down - up, up - down)
    return torch.where(torch.abs(x) < 1, _number(2.0) * t / (_number(1.0) - t * t), large)


def _cosh(x):
    up, down = _halves(x)
    return up + down


def _log10(x):
    """log(x) / ln 10, then a step of Newton's method where |log10 x| ≥ 1, so that a power of
    10 gives its exponent exactly, as numpy's does (10^y is good to a unit in its last place
    there; below 1 it would not be, of y)."""
    ln10 = _number(LN10)
    y = torch.log(x) / ln10
    step = y + (x / torch.pow(_number(10.0), y) - _number(1.0)) / ln10
    usable = (torch.abs(y) >= 1) & (torch.abs(y) < 300)
    return torch.where(usable, step, y)


def _hypot(x, y):
    """C's hypot: the larger times sqrt(1 + r²), r = the smaller over it (no overflow); inf
    where either is infinite, NaN or not."""
    a, b = torch.abs(x), torch.abs(y)
    big, small = torch.maximum(a, b), torch.minimum(a, b)
    r = small / big
    h = torch.where(big == 0, big, big * torch.sqrt(_number(1.0) + r * r))
    return torch.where(_infinite(a) | _infinite(b), _number(math.inf), h)


FUNCTIONS = {
    "abs": torch.abs, "sqrt": torch.sqrt, "exp": torch.exp, "log": torch.log, "log10": _log10,
    "sin": torch.sin, "cos": torch.cos, "tan": _tan, "arcsin": _arcsin, "arccos": _arccos,
    "arctan": _arctan, "arctan2": _arctan2, "sinh": _sinh, "cosh": _cosh, "tanh": torch.tanh,
    "hypot": _hypot, "minimum": _minimum, "maximum": _maximum, "fmin": _fmin, "fmax": _fmax,
    "isnan": torch.isnan,
}
