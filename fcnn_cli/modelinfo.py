"""What a checkpoint holds, as a plain dict ready for JSON or tables (``fcnn info``).

The checkpoint is loaded by :func:`fcnn_cli.checkpoint.load`, with every check predict makes.
"""


def describe(path):
    """The description of the checkpoint at ``path``."""
    from fcnn_cli import checkpoint

    return describe_predictor(checkpoint.load(path, "cpu"), str(path))


def describe_predictor(predictor, name="<model>"):
    net, task, info = predictor.net, predictor.task, predictor.info
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
        "training": info.get("train_config", {}),
        "best_epoch": info.get("best_epoch"),
        "members": predictor.members,  # None for one network; the parameters are all members'
        "best_epochs": info.get("best_epochs"),
        "output": "gaussian" if getattr(task, "gaussian", False) else None,
        "metrics": info.get("metrics", {}),
        "versions": info.get("versions", {}),
    }
    return about


def _layers(config):
    """The sizes from input to output, as text: 8 → 64 → 64 → 64 → 2."""
    sizes = [config["n_in"]] + [config["width"]] * config["depth"] + [config["n_out"]]
    return " → ".join(map(str, sizes))


def _features(predictor):
    lo = predictor.feature_range.get("min", [None] * len(predictor.features))
    hi = predictor.feature_range.get("max", [None] * len(predictor.features))
    return [{"name": f, "unit": predictor.units.get(f, ""), "min": a, "max": b}
            for f, a, b in zip(predictor.features, lo, hi)]


def _labels(predictor):
    task = predictor.task
    if task.kind == "classify":
        return {"column": task.target, "classes": list(task.classes), "output": task.output,
                "class_weights": task.weights}
    return {"columns": [{"name": t, "unit": predictor.units.get(t, "")} for t in task.targets],
            "position": task.point(predictor.units)}
