"""The checkpoint file: weights plus JSON metadata, loaded without ever running code from it.

A checkpoint is written with ``torch.save`` and holds only tensors and strings::

    {"format": "fcnn-checkpoint", "format_version": 2, "meta": "<json>",
     "state": {name: tensor}, "sha256": "<hex digest of meta and state>"}

and is read back with ``torch.load(weights_only=True)``, whose unpickler refuses anything but
tensors and plain containers (:mod:`~fcnn_cli.network.torchfiles`): a model file is untrusted
input. Before a network is built from
it, the digest must match and the metadata and tensors must agree with each other, so that a
damaged or edited file fails with one line instead of giving wrong predictions. Version 1 files
(no digest) still load, after the same consistency checks, with a warning.
"""

import hashlib
import json
import logging
import math
import platform
from pathlib import Path

from fcnn_cli import __version__
from fcnn_cli.core.config import (BINARY_OUTPUTS, CURVES, LOSSES, PRECISIONS, SCALINGS,
                                  WORKING_POINTS, repeated)
from fcnn_cli.core.errors import FcnnError, first_line, shown
from fcnn_cli.core.fileio import open_output, writing
from fcnn_cli.network.torchfiles import contents, envelope

FORMAT = "fcnn-checkpoint"
FORMAT_VERSION = 2  # 2: a SHA-256 digest of the contents; 1: none
# What each split's metrics keep in the checkpoint; the full report (per-class tables, the
# confusion matrix, which grows with the square of the classes) stays in metrics.json.
HEADLINES = ("task", "rows", "accuracy", "cross_entropy", "roc_auc", "overall", "distance")
NET_TYPES = {"n_in": int, "n_out": int, "depth": int, "width": int, "activation": str,
             "arch": str, "batchnorm": bool, "init": str, "dropout": (int, float)}

log = logging.getLogger(__name__)


def save(predictor, path):
    import torch

    ensemble = {"ensemble": predictor.members} if predictor.members else {}
    recipe = {"recipe": predictor.recipe.to_dict()} if predictor.recipe is not None else {}
    meta = json.dumps({
        "net": predictor.net.config.to_dict(),
        **ensemble,
        "features": predictor.features,
        "task": predictor.task.to_dict(),
        "units": predictor.units,
        "feature_range": predictor.feature_range,
        "x_scaler": predictor.x_scaler.to_dict(),
        **({"missing": predictor.filler.to_dict()} if predictor.filler else {}),
        **({"categories": predictor.categories.to_dict()} if predictor.categories else {}),
        **({"folds": predictor.folds.to_dict()} if predictor.folds else {}),
        "info": {**_headlines(predictor.info), "versions": versions()},
        **recipe,
    })
    state = {k: v.detach().cpu().clone().contiguous()
             for k, v in predictor.net.state_dict().items()}
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "meta": meta, "state": state,
               "sha256": digest(meta, state)}
    # Through a file object: torch's own file writer reports a full disk as a bare RuntimeError.
    with open_output(path) as stream, writing(path):
        torch.save(payload, stream)


def load(path, device="cpu"):
    """The Predictor saved at ``path``, on ``device`` ("auto", "cpu", "cuda" or a torch.device)."""
    from fcnn_cli.machine.devices import resolve_device

    payload = _read(path)
    device = resolve_device(device)
    try:
        meta, state = _contents(payload)
        predictor = _predictor(meta, state)
    except FcnnError as e:
        raise FcnnError(f"{path}: corrupted fcnn checkpoint: {e}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as e:
        raise FcnnError(f"{path}: corrupted fcnn checkpoint: {first_line(e)}") from None
    if payload["format_version"] < 2:
        log.warning("%s: a checkpoint of format version 1 carries no digest: it passed the "
                    "consistency checks, but damaged weights could go unnoticed", path)
    predictor.net.to(device)
    return predictor


def digest(meta, state):
    """SHA-256 over the metadata JSON and every tensor's name, dtype, shape and bytes, in the
    order of the names; each field is preceded by its length, so no two contents share one."""
    import torch

    h = hashlib.sha256()

    def field(data):
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)

    field(meta.encode("utf-8", "surrogatepass"))
    for name in sorted(state):
        t = state[name]
        field(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        field(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _read(path):
    if str(path) == "-":  # stdin for data; a checkpoint is read by seeking in a file
        raise FcnnError("-: a model is not read from stdin; name its file (./- for a file of "
                        "that name)")
    return envelope(Path(path), FORMAT, "an fcnn checkpoint", "checkpoint", FORMAT_VERSION)


def _contents(payload):
    """The metadata (parsed) and the tensors, once they are what a checkpoint holds and
    (from version 2) match the digest stored with them."""
    return contents(payload, digest if payload["format_version"] >= 2 else None)


def _predictor(meta, state):
    """The Predictor that ``meta`` and ``state`` describe, once every part agrees with the
    network: shapes, dtypes and finite values of the tensors, one feature name, shift, scale
    and range per input, one target (or class) per output."""
    import torch

    from fcnn_cli.network import tasks
    from fcnn_cli.network.model import MLP, Ensemble, NetConfig
    from fcnn_cli.network.predictor import Predictor
    from fcnn_cli.data.missing import Filler
    from fcnn_cli.data.preprocess import Scaler

    config = NetConfig.from_dict(_net(_entry(meta, "net", dict)))
    members = _members(meta)
    # Built without memory first, then given the file's tensors once they fit: a checkpoint
    # that claims a huge network but carries small tensors fails the shape check instead of
    # allocating.
    with torch.device("meta"):
        net = MLP(config) if members is None else Ensemble.build(config, members)
    _tensors(net.state_dict(), state)
    net.load_state_dict(state, strict=True, assign=True)
    net.eval()
    features = _names(_entry(meta, "features", list), "features")
    filler = Filler.from_dict(meta["missing"], features) if "missing" in meta else None
    flags = f" and {len(filler.flagged)} missing-value indicator(s)" if filler else ""
    _need((filler.width if filler else len(features)) == config.n_in,
          f"{len(features)} feature name(s){flags} for a network of {config.n_in} input(s)")
    kept = _scaler(_entry(meta, "x_scaler", dict), "x_scaler", config.n_in, "float32")
    categories = _categories(meta, features)
    _levels(config, categories, features, kept)
    feature_range = _entry(meta, "feature_range", dict, {})
    if feature_range:
        _feature_range(feature_range, config.n_in)
    task = _entry(meta, "task", dict)
    _task(task, config.n_out)
    units = _entry(meta, "units", dict, {})
    _need(all(isinstance(v, str) for v in units.values()), "units are not all text")
    info = _entry(meta, "info", dict, {})
    return Predictor(net=net, features=features, x_scaler=Scaler.from_dict(meta["x_scaler"]),
                     task=tasks.from_dict(task), units=units, feature_range=feature_range,
                     info=info, precision=_precision(info), filler=filler,
                     recipe=_recipe(meta), folds=_folds(meta, members),
                     categories=categories)


def _categories(meta, features):
    """The levels of the categorical features, each column's inputs among ``features``."""
    from fcnn_cli.data.categories import Categories

    return Categories.from_dict(meta["categories"], features) if "categories" in meta else None


def _levels(config, categories, features, kept):
    """The network's embeddings of levels against the categories: a table for each index
    input, at its position, of a row per level and one for the unknown level; and the scaler
    leaves those inputs as they are."""
    from fcnn_cli.network import levels

    ours = [[p, rows] for p, rows, _ in config.levels]
    theirs = [[p, rows] for p, rows, _ in levels.layout(categories, features)]
    _need(ours == theirs, f"the network embeds the levels of inputs (position, rows) {ours}, "
          f"but the categories make {theirs}")
    _need(kept == [p for p, _ in ours], f"x_scaler leaves inputs {kept} as they are, not the "
          f"level indices {[p for p, _ in ours]}")


def _recipe(meta):
    """The recipe that made the model's columns, read as the untrusted input it is: every
    expression parsed again by the expression language, which runs no code."""
    from fcnn_cli.data.recipe import Recipe

    recipe = meta.get("recipe")
    return None if recipe is None else Recipe.from_dict(recipe)


def _precision(info):
    """The precision the network was trained in, for predictions in the same; fp32 for a
    checkpoint that names none (older ones) or none known."""
    precision = info.get("precision")
    return precision if precision in PRECISIONS else "fp32"


def _members(meta):
    """An ensemble's number of members (None for one network)."""
    from fcnn_cli.core.config import MAX_MEMBERS

    if "ensemble" not in meta:
        return None
    count = meta["ensemble"]
    _need(type(count) is int and 2 <= count <= MAX_MEMBERS,
          f"an ensemble of {count!r} members (2 to {MAX_MEMBERS})")
    return count


def _folds(meta, members):
    """k-fold's rule (:mod:`~fcnn_cli.network.foldrule`), one network a fold; None without."""
    from fcnn_cli.network.foldrule import FoldRule

    if "folds" not in meta:
        return None
    rule = FoldRule.from_dict(meta["folds"])
    _need(rule.k == members, f"{rule.k} folds for {members or 1} network(s)")
    return rule


def _net(d):
    for key, kind in NET_TYPES.items():
        value = d.get(key)
        _need(key in d, f"net: no {key!r}")
        _need(isinstance(value, kind) and (kind is bool or not isinstance(value, bool)),
              f"net: {key} is {value!r}")
    return d


def _tensors(expected, state):
    """The file's tensors against those of the network the metadata describes."""
    import torch

    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing:
        raise FcnnError(f"no tensor {missing[0]!r}, which the network needs")
    if extra:
        raise FcnnError(f"tensor {extra[0]!r} belongs to no layer of the network")
    for name, want in expected.items():
        t = state[name]
        _need(t.dtype == want.dtype, f"tensor {name!r} is {t.dtype}, not {want.dtype}")
        _need(t.shape == want.shape, f"tensor {name!r} has shape {list(t.shape)}; the network "
              f"needs {list(want.shape)}")
        if t.is_floating_point():
            _need(bool(torch.isfinite(t).all()), f"tensor {name!r} holds NaN or infinite values")
        if name.endswith("running_var"):
            _need(bool((t >= 0).all()), f"tensor {name!r} holds a negative variance")


def _scaler(d, what, n, dtype, methods=SCALINGS):
    import numpy as np

    _need(d.get("method") in methods, f"{what}: unknown method {d.get('method')!r}")
    _need(set(d) <= {"method", "shift", "scale", "quantiles", "kept"},
          f"{what}: unknown entries")
    _need((d["method"] == "quantile") == ("quantiles" in d),
          f"{what}: quantiles belong to the quantile method alone")
    if "quantiles" in d:
        _quantiles(d["quantiles"], what, n)
    _numbers(d.get("shift"), f"{what} shift", n, dtype)
    scale = _numbers(d.get("scale"), f"{what} scale", n, dtype)
    _need(all(scale), f"{what} scale holds a zero")
    # Dividing by it must stay finite too: a scale of 1e-45 turns every value infinite.
    _need(all(abs(1.0 / v) <= float(np.finfo(dtype).max) for v in scale),
          f"{what} scale holds a value too small to divide by")
    kept = d.get("kept", [])
    _need(isinstance(kept, list) and all(type(i) is int for i in kept) and
          kept == sorted(set(kept)) and all(0 <= i < n for i in kept) and
          all(d["shift"][i] == 0 and d["scale"][i] == 1 for i in kept),
          f"{what}: kept is not ascending inputs of shift 0 and scale 1")
    return kept


def _quantiles(table, what, n):
    """A quantile scaler's table: ``n`` columns of as many quantiles (2 to QUANTILES), each
    finite in float32 and ascending in float64, as the curve uses them (data/curves.py)."""
    from fcnn_cli.data.preprocess import QUANTILES

    _need(isinstance(table, list) and len(table) == n,
          f"{what} quantiles are not a list of {n} column(s)")
    count = len(table[0]) if n and isinstance(table[0], list) else 0
    _need(2 <= count <= QUANTILES, f"{what} quantiles: not 2 to {QUANTILES} a column")
    for column in table:
        _numbers(column, f"{what} quantiles", count, "float32")
        _need(all(a <= b for a, b in zip(column, column[1:])),
              f"{what} quantiles of a column are not ascending")


def _feature_range(d, n):
    _need(set(d) == {"min", "max"}, "feature_range needs exactly 'min' and 'max'")
    lo = _numbers(d["min"], "feature_range min", n, "float64")
    hi = _numbers(d["max"], "feature_range max", n, "float64")
    _need(all(a <= b for a, b in zip(lo, hi)), "feature_range has a min above its max")


def _task(d, n_out):
    kind = d.get("kind")
    if kind == "regress":
        targets = _names(_entry(d, "targets", list), "targets")
        output = d.get("output", "mse")
        _need(output in LOSSES, f"unknown regression output {output!r}")
        per_target = 2 if output == "gaussian" else 1
        what = " with a Gaussian output (two outputs each)" if per_target == 2 else ""
        _need(len(targets) * per_target == n_out,
              f"{len(targets)} regression target(s){what} for a network of {n_out} output(s)")
        _need(_scaler(_entry(d, "scaler", dict), "target scaler", len(targets), "float64",
                      [m for m in SCALINGS if m not in CURVES]) == [],
              "target scaler: kept inputs, which only the features' scaler has")
        position = d.get("position")
        if position is not None:
            _need(isinstance(position, list) and 2 <= len(position) <= 3 and
                  all(c in targets for c in position) and len(set(position)) == len(position),
                  f"position {position!r} does not name 2 or 3 of the targets")
    elif kind == "classify":
        _need(isinstance(d.get("target"), str), "no label column name in the task")
        classes = _names(_entry(d, "classes", list), "classes")
        _need(len(classes) >= 2, f"{len(classes)} class(es): a classifier needs at least two")
        output = d.get("output", "softmax")
        _need(output in BINARY_OUTPUTS, f"unknown classifier output {output!r}")
        _need(output == "softmax" or len(classes) == 2,
              f"a sigmoid output is for two classes, not {len(classes)}")
        want = len(classes) if output == "softmax" else 1
        _need(n_out == want, f"{len(classes)} classes with a {output} output need {want} "
              f"network output(s), not {n_out}")
        if d.get("weights") is not None:
            weights = _numbers(d["weights"], "class weights", len(classes), "float64")
            _need(all(w > 0 for w in weights), "class weights must be positive")
        _need(d.get("signal") is None or d["signal"] in classes,
              f"the signal class {shown(d.get('signal'))} is not one of the classes")
        if d.get("working_point") is not None:
            _working_point(d["working_point"], classes, d.get("signal"))
    else:
        raise FcnnError(f"unknown task kind {kind!r} (regress or classify)")


def _working_point(point, classes, signal):
    _need(isinstance(point, dict) and set(point) <= {"asked", "cut"} and "cut" in point,
          "the working point is not a dict with a cut")
    cut = point["cut"]
    _need(isinstance(cut, (int, float)) and not isinstance(cut, bool) and 0 <= cut <= 1,
          f"the working point's cut {shown(cut)} is not a number in [0, 1]")
    _need(signal is not None or "signal" in classes or len(classes) == 2,
          "a working point of several classes without a signal class")
    _asked(point.get("asked", {}))


def _asked(asked):
    """What the working point was chosen at, as training records it: nothing, or one target
    efficiency (``--working-point eff=E|bkg=B``), which ``fcnn info`` shows as a number."""
    _need(isinstance(asked, dict) and len(asked) <= 1 and
          set(asked) <= set(WORKING_POINTS.values()),
          f"the working point's asked {shown(asked)} is not empty or one of "
          f"{' or '.join(WORKING_POINTS.values())}")
    for key, value in asked.items():
        _need(isinstance(value, (int, float)) and not isinstance(value, bool) and
              math.isfinite(value) and 0 < value <= 1,
              f"the working point's {key} {shown(value)} is not a number in (0, 1]")


def _entry(d, key, kind, default=None):
    if default is not None and d.get(key) is None:
        return default
    _need(key in d, f"no {key!r} in the metadata")
    _need(isinstance(d[key], kind), f"{key!r} is a {type(d[key]).__name__}, not a "
          f"{kind.__name__}")
    return d[key]


def _names(values, what):
    _need(all(isinstance(v, str) for v in values), f"{what} are not all names (text)")
    twice = repeated(values)
    if twice is not None:
        raise FcnnError(f"{what} name {twice!r} more than once")
    return list(values)


def _numbers(values, what, n, dtype):
    """``values`` as floats, once they are ``n`` numbers that stay finite in ``dtype``."""
    import numpy as np

    _need(isinstance(values, list) and all(isinstance(v, (int, float)) and
                                           not isinstance(v, bool) for v in values),
          f"{what} is not a list of numbers")
    _need(len(values) == n, f"{what} holds {len(values)} value(s), not {n}")
    with np.errstate(over="ignore"):
        cast = np.asarray(values, dtype=np.float64).astype(dtype)
    _need(bool(np.isfinite(cast).all()), f"{what} holds a value that is not finite in {dtype}")
    return cast.tolist()


def _need(ok, what):
    if not ok:
        raise FcnnError(what)


def _headlines(info):
    """``info`` with each split's metrics cut to its headline numbers."""
    metrics = info.get("metrics")
    if not isinstance(metrics, dict):
        return dict(info)
    return {**info, "metrics": {
        split: {k: v for k, v in report.items() if k in HEADLINES}
        if isinstance(report, dict) else report
        for split, report in metrics.items()}}


def versions():
    import torch

    return {"fcnn": __version__, "torch": torch.__version__, "python": platform.python_version()}
