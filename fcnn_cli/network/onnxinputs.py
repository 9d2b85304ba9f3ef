"""What a model's ONNX graph takes, the part of the graph that makes the network's inputs of it,
and the rows the graph is checked on.

The input is the raw feature columns (``features``, float32; a categorical feature's one-hot
inputs, or the index of its level where it has many, 0 for the unknown level, which a Gather
of its embedding's rows takes in the graph), or, where definitions make features, the raw
columns they are made from (``columns``, float64): the definitions then run
in the graph in float64 (:mod:`fcnn_cli.network.onnxexpr`) and their values become float32
features, as :meth:`~fcnn_cli.data.recipe.Recipe.derive` and the predictor compute them. A
model trained with ``--nan fill`` fills its features in the graph as predict does
(:class:`~fcnn_cli.data.missing.Filler`): a NaN or infinite value takes the training median,
and each feature that had missing values gets its 0/1 indicator after the features.

The rows the graph is checked on are drawn across the training range, of the features or of the
raw columns (the range the recipe recorded in training); for a model that fills, some values
of the features that had missing ones are NaN or infinite. fcnn's own path (derive, features,
fill) makes the network's inputs of them, for the reference the graph must equal.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from fcnn_cli.core.errors import FcnnError

CHECK_ROWS = 512
MARGIN = 0.1  # of the range, drawn beyond either end of it
MISSING = 0.15  # of the values of a feature that had missing ones: NaN in the check rows
INFINITE = 0.03  # and as many again ±inf (missing too, as predict takes them)
ROUNDS = 8  # draws of raw columns, for rows whose features are all numbers
UNKNOWN = (-1.0, 1.0)  # a raw column whose range training did not record


@dataclass
class GraphInput:
    """The graph's input: its ``name``, its ``columns`` (names, in order), their dtype, and the
    definitions it computes (``steps``, ``[(name, Expression)]`` in order)."""

    name: str
    columns: list
    steps: list = field(default_factory=list)

    @property
    def dtype(self):
        return np.float64 if self.name == "columns" else np.float32


def of(predictor):
    """What the graph of ``predictor`` takes: the raw columns where definitions make one of its
    features, else the features; a definition it cannot compute is refused here."""
    recipe = predictor.recipe
    if recipe is None or not recipe.made(predictor.features):
        return GraphInput("features", list(predictor.features))
    from fcnn_cli.network import onnxexpr

    raw, steps = onnxexpr.plan(recipe.definitions(), predictor.features)
    return GraphInput("columns", raw, steps)


def front(predictor, graph_input):
    """The module that makes the network's inputs (float32) of the graph's input."""
    from fcnn_cli.network import onnxexpr

    derived = None if not graph_input.steps else \
        onnxexpr.Derived(graph_input.columns, graph_input.steps, predictor.features)
    return Front(derived, predictor.filler)


class Front(torch.nn.Module):
    def __init__(self, derived, filler):
        super().__init__()
        self.derived = derived
        self.fills = filler is not None
        if self.fills:
            self.register_buffer("medians", torch.tensor(filler.medians, dtype=torch.float32))
            flagged = [filler.features.index(f) for f in filler.flagged]
            self.register_buffer("flagged", torch.tensor(flagged, dtype=torch.long))

    def forward(self, x):
        # Definitions in float64, their values as float32 features: the predictor's cast.
        features = x if self.derived is None else self.derived(x).float()
        if not self.fills:
            return features
        missing = ~torch.isfinite(features)  # NaN or ±inf, as Filler.transform
        filled = torch.where(missing, self.medians, features)
        if not len(self.flagged):
            return filled
        return torch.cat([filled, missing[:, self.flagged].float()], dim=1)


def check_rows(predictor, graph_input, seed):
    """Rows of the graph's input to check it on: across the training range and a little beyond
    it, some values missing where the model fills them; rows whose features are not all
    numbers are left out where it does not (predict refuses them)."""
    rng = np.random.default_rng(seed)
    x = _draw(rng, predictor, graph_input)
    if predictor.filler is not None:  # every row is scored: what is missing is filled
        _blank(rng, x, _flagged(predictor, graph_input))
        return x
    if graph_input.name == "features":
        return x
    # Raw columns drawn one by one make features that are not numbers (the mass of a pair
    # whose energy is less than its momentum): more rows, until enough are.
    kept = []
    for draw in range(ROUNDS):
        if draw:
            x = _draw(rng, predictor, graph_input)
        kept.append(x[np.isfinite(features(predictor, graph_input, x)).all(axis=1)])
        if sum(map(len, kept)) >= CHECK_ROWS:
            break
    x = np.concatenate(kept)[:CHECK_ROWS]
    if not len(x):
        raise FcnnError("no rows to check the ONNX graph on: its definitions gave a feature "
                        "that is not a number on every row drawn across the raw columns' "
                        "training range")
    return x


def _draw(rng, predictor, graph_input):
    """CHECK_ROWS rows of the graph's input across its columns' ranges, each level index a
    whole number of its embedding's rows (0, the unknown level's, among them)."""
    if graph_input.name == "features":
        x = _uniform(rng, *feature_bounds(predictor), CHECK_ROWS).astype(np.float32)
    else:
        x = _uniform(rng, *_raw_bounds(predictor, graph_input), CHECK_ROWS)
    rows = predictor.categories.index_rows() if predictor.categories else {}
    for name, count in rows.items():
        if name in graph_input.columns:
            x[:, graph_input.columns.index(name)] = rng.integers(0, count, len(x))
    return x


def feature_bounds(predictor):
    """Each feature's training range, or where the model has none its mean ± 2 standard
    deviations (the scaler's shift and scale)."""
    n = len(predictor.features)
    if predictor.feature_range:
        return tuple(np.asarray(predictor.feature_range[k][:n], np.float64)
                     for k in ("min", "max"))
    shift, scale = (np.asarray(v, np.float64)[:n] for v in (predictor.x_scaler.shift,
                                                            predictor.x_scaler.scale))
    return shift - 2 * scale, shift + 2 * scale


def _raw_bounds(predictor, graph_input):
    """Each raw column's range recorded in training; a feature's own where it is not recorded
    (a model trained before fcnn recorded them), else UNKNOWN."""
    ranges = predictor.recipe.ranges
    lo, hi = feature_bounds(predictor)
    bounds = []
    for name in graph_input.columns:
        if name in ranges:
            bounds.append(ranges[name])
        elif name in predictor.features:
            k = predictor.features.index(name)
            bounds.append((lo[k], hi[k]))
        else:
            bounds.append(UNKNOWN)
    return np.asarray(bounds, np.float64).T.reshape(2, -1)


def _uniform(rng, lo, hi, rows):
    margin = MARGIN * (hi - lo)
    return rng.uniform(lo - margin, hi + margin, size=(rows, len(lo)))


def _flagged(predictor, graph_input):
    """The columns of the graph's input that the features with missing values are made of."""
    flagged = predictor.filler.flagged
    if graph_input.name == "features":
        return [graph_input.columns.index(f) for f in flagged]
    from fcnn_cli.data import expressions

    raw = expressions.raw_columns(graph_input.steps, flagged)
    return [graph_input.columns.index(c) for c in raw]


def _blank(rng, x, columns):
    """Some values of ``columns`` NaN, some ±inf, in place."""
    for c in columns:
        draw = rng.random(len(x))
        x[draw < MISSING, c] = np.nan
        infinite = (draw >= MISSING) & (draw < MISSING + INFINITE)
        x[infinite, c] = np.where(rng.random(infinite.sum()) < 0.5, -np.inf, np.inf)


def features(predictor, graph_input, x):
    """The features (float32, NaN where missing) of rows ``x`` of the graph's input as fcnn
    makes them: the definitions derived in float64, then cast."""
    if graph_input.name == "features":
        return np.asarray(x, np.float32)
    import pandas as pd

    from fcnn_cli.data import expressions
    from fcnn_cli.data.columns import numeric_matrix
    from fcnn_cli.data.tables import Table

    frame = pd.DataFrame(np.asarray(x, np.float64), columns=graph_input.columns)
    derived = expressions.derive(frame, graph_input.steps)
    return numeric_matrix(Table(derived, name="check rows"), predictor.features, finite=False)


def network_inputs(predictor, graph_input, x):
    """(the network's inputs of rows ``x`` as fcnn computes them: the features, filled where
    the model fills them; whether each is a defined feature's value, whose float32 rounding
    the graph may make on the other side of its float64 value)."""
    values = features(predictor, graph_input, x)
    defined = np.isin(predictor.features, [name for name, _ in graph_input.steps])
    computed = np.isfinite(values) & defined
    if predictor.filler is None:
        return values, computed
    flags = np.zeros((len(values), len(predictor.filler.flagged)), bool)
    return predictor.filler.transform(values), np.concatenate([computed, flags], axis=1)
