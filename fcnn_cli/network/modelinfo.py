"""What a checkpoint holds, as a plain dict ready for JSON or tables (``fcnn info``).

The checkpoint is loaded by :func:`fcnn_cli.network.checkpoint.load`, with every check predict
makes. Those leave the training record in its metadata (metrics, options, versions) free: a value
of another shape there is left out, with a warning, so that the description keeps its own.
"""

import logging

log = logging.getLogger(__name__)


def describe(path):
    """The description of the checkpoint at ``path``."""
    from fcnn_cli.network import checkpoint

    return describe_predictor(checkpoint.load(path, "cpu"), str(path))


def describe_predictor(predictor, name="<model>"):
    net, task = predictor.net, predictor.task
    info = _record(predictor.info, name)
    config = net.config.to_dict()
    about = {
        "model": name,
        "network": {**config, "parameters": sum(p.numel() for p in net.parameters()),
                    "layers": _layers(config)},
        "task": "classification" if task.kind == "classify" else "regression",
        "features": _features(predictor),
        "labels": _labels(predictor),
        "preprocessing": {"features": predictor.x_scaler.to_dict()["method"],
                          "labels": "standard" if task.kind == "regress" else None},
        "training": info["train_config"],
        "best_epoch": info.get("best_epoch"),
        "members": predictor.members,  # None for one network; the parameters are all members'
        "best_epochs": info.get("best_epochs"),
        "folds": predictor.folds.to_dict() if predictor.folds else None,  # k-fold's rule
        "output": "gaussian" if getattr(task, "gaussian", False) else None,
        "nan_fill": _filling(predictor.filler),
        # Each categorical column's levels (None: missing), in the order of its inputs, and
        # the width of the embedding of each of more than 64 levels (None: none is embedded).
        "categories": predictor.categories.to_dict() if predictor.categories else None,
        "embedded": _embedded(predictor),
        "metrics": info["metrics"],
        "versions": info["versions"],
    }
    if predictor.recipe is not None:
        about["recipe"] = _recipe(predictor.recipe)
    return about


def _recipe(recipe):
    """What the model makes of raw tables, in the recipe's saved form (its samples with their
    files, the objects and their columns, the definitions, the selection and the weight), and
    the column the weight is read from."""
    return {**recipe.to_dict(), "weight_column": recipe.weight_column}


# The training record's values that the description shows as they are, and their shapes.
RECORD = {"train_config": (dict, {}, "an object"), "metrics": (dict, {}, "an object"),
          "versions": (dict, {}, "an object"), "best_epochs": (list, None, "a list")}


def _record(info, name):
    """The checkpoint's training record with each value of RECORD of its shape, and each
    split's metrics an object; another is left out."""
    from fcnn_cli.core.errors import shown

    info = dict(info)
    for key, (kind, empty, said) in RECORD.items():
        value = info.get(key)
        if value is not None and not isinstance(value, kind):
            log.warning("%s: its %s is %s, not %s: left out", name, key, shown(value), said)
            value = None
        info[key] = empty if value is None else value
    metrics = info["metrics"] = dict(info["metrics"])
    for split in [k for k, report in metrics.items() if not isinstance(report, dict)]:
        log.warning("%s: its metrics of %r are %s, not an object: left out", name, split,
                    shown(metrics.pop(split)))
    return info


def _layers(config):
    """The sizes from input to output, as text: 8 → 64 → 64 → 64 → 2, with an embedding of
    each feature 8 → periodic 8×24 → 64 → 64 → 64 → 2, with one of a categorical feature's
    levels 8 → 7 + levels 32 → 64 → 64 → 64 → 2."""
    embed, tables = config["embed"], config.get("levels", [])
    embedded = [] if embed == "none" else [f"{embed} {config['n_in']}×{config['embed_dim']}"]
    if tables:
        embedded = [f"{config['n_in'] - len(tables)} + levels "
                    f"{' + '.join(str(w) for _, _, w in tables)}"]
    sizes = [config["n_in"], *embedded] + [config["width"]] * config["depth"] + [config["n_out"]]
    return " → ".join(map(str, sizes))


def _embedded(predictor):
    """{column: its embedding's width} of the categorical columns of many levels; None where
    no column is embedded, as ``categories`` is None where there is no categorical column (a
    model whose categorical columns are all one-hot has no embedded one either)."""
    if not predictor.categories or not predictor.net.config.levels:
        return None
    owner = {n: c for c in predictor.categories.columns
             for n in predictor.categories.names(c)}
    return {owner[predictor.features[p]]: w for p, _, w in predictor.net.config.levels}


def _features(predictor):
    lo = predictor.feature_range.get("min", [None] * len(predictor.features))
    hi = predictor.feature_range.get("max", [None] * len(predictor.features))
    return [{"name": f, "unit": predictor.units.get(f, ""), "min": a, "max": b}
            for f, a, b in zip(predictor.features, lo, hi)]


def _filling(filler):
    """A model trained with nan='fill': each feature's training median, which fills its missing
    values, and the 0/1 input that says a value was missing (None where it has none)."""
    if filler is None:
        return None
    indicators = dict(zip(filler.flagged, filler.indicators))
    return [{"feature": f, "median": m, "indicator": indicators.get(f)}
            for f, m in zip(filler.features, filler.medians)]


def _labels(predictor):
    task = predictor.task
    if task.kind == "classify":
        signal = task.signal_index()
        return {"column": task.target, "classes": list(task.classes), "output": task.output,
                "class_weights": task.weights,
                "signal": None if signal is None else task.classes[signal],
                "working_point": task.working_point}
    return {"columns": [{"name": t, "unit": predictor.units.get(t, "")} for t in task.targets],
            "position": task.point(predictor.units)}
