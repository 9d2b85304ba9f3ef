"""A trained model as an ONNX graph, for C++, triggers and services: raw features in, the labels
in their own units (or the class probabilities) out, as ``fcnn predict`` gives them.

The graph holds the feature scaling, the network and the mapping back: input ``features``
(float32, rows × features, in the order of the ``features`` metadata entry; any number of rows),
output ``predictions`` (float64, rows × labels, in their units) for regression or
``probabilities`` (float64, rows × classes) for classification. The metadata holds the feature,
label and class names and units as JSON. Before the file is written, onnxruntime runs the graph
on rows drawn across the training range, and its outputs must equal the model's own.

numpy, torch and the ONNX libraries load only to export: the command checks its arguments first.
"""

import contextlib
import dataclasses
import importlib.util
import json
import logging
import warnings

from fcnn_cli import __version__
from fcnn_cli.core.errors import FcnnError, first_line

INSTALL = ("fcnn export needs onnx, onnxscript and onnxruntime: pip install 'fcnn[onnx]' "
           "(from a clone: pip install -e '.[onnx]')")
# Outputs agree to this share of each value, or where a value is near 0 of a floor: for labels
# their standard deviation (a float32 network is good to about 1e-7 of it, not of a value near
# 0), for probabilities PROBABILITY_FLOOR (a probability of 1e-9 comes from a large logit, whose
# last float32 digits, summed in another order, move it by some 1e-5 of itself).
TOLERANCE = 1e-5
PROBABILITY_FLOOR = 1e-3
CHECK_ROWS = 512


def require():
    """Refuse at once, in one line, where the optional libraries are missing (found, not
    imported: they load only to export)."""
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            missing = importlib.util.find_spec(name) is None
        except ValueError:  # set aside in sys.modules: not importable either
            missing = True
        if missing:
            raise FcnnError(INSTALL)


def export(predictor, path, seed=0):
    """Write ``predictor`` (on the CPU) to ``path`` as an ONNX model, checked against
    ``predictor.outputs`` first; returns the largest relative difference found."""
    from fcnn_cli.core.fileio import open_output, writing

    if predictor.members:
        raise FcnnError("export writes one network; this checkpoint holds an ensemble of "
                        f"{predictor.members}")
    if getattr(predictor.task, "gaussian", False):
        raise FcnnError("export writes a network's predictions; this one (loss gaussian) "
                        "predicts a variance too, which the ONNX graph does not map yet")
    require()
    # The graph computes in float32, as predict does but for a bf16-trained network, which it
    # is compared with in float32 too (predict itself differs from the graph by bf16 rounding).
    predictor = dataclasses.replace(predictor, precision="fp32")
    model = _onnx_model(predictor)
    data = model.SerializeToString()
    x = _check_rows(predictor, seed)
    difference = _difference(_run(data, x), _expected(predictor, x), _spread(predictor))
    if not difference <= TOLERANCE:
        raise FcnnError(f"the ONNX graph's outputs differ from the model's by {difference:.3g} "
                        f"(relative; at most {TOLERANCE:g} is right): not written")
    with open_output(path) as stream, writing(path):
        stream.write(data)
    return difference


def _graph(predictor):
    import torch

    task = predictor.task

    class Graph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = predictor.net.cpu().eval()
            scaler = predictor.x_scaler
            self.register_buffer("shift", torch.tensor(scaler.shift, dtype=torch.float32))
            self.register_buffer("scale", torch.tensor(scaler.scale, dtype=torch.float32))
            if task.kind == "regress":
                self.register_buffer("y_shift", torch.tensor(task.scaler.shift,
                                                             dtype=torch.float64))
                self.register_buffer("y_scale", torch.tensor(task.scaler.scale,
                                                             dtype=torch.float64))

        def forward(self, features):
            # As predict: scaled in float32, the network in float32, the rest in float64.
            out = self.net((features - self.shift) / self.scale).double()
            if task.kind == "regress":
                return out * self.y_scale + self.y_shift
            if task.output == "sigmoid":
                p = torch.sigmoid(out)
                return torch.cat([1.0 - p, p], dim=1)
            return torch.softmax(out, dim=1)

    return Graph().eval()


def _onnx_model(predictor):
    import torch

    output = "predictions" if predictor.task.kind == "regress" else "probabilities"
    example = torch.zeros(2, len(predictor.features))
    with _quiet(), torch.no_grad():
        try:
            program = torch.onnx.export(
                _graph(predictor), (example,), dynamo=True, verbose=False,
                input_names=["features"], output_names=[output],
                dynamic_shapes=({0: torch.export.Dim("rows")},))
        except Exception as e:  # the exporter's own failures: one line, not its traceback
            raise FcnnError(f"the ONNX export failed: {first_line(e)}") from None
    model = program.model_proto
    _forget_the_exporter(model)
    model.producer_name, model.producer_version = "fcnn", __version__
    for key, value in _metadata(predictor).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model


def _forget_the_exporter(model):
    """Drop what torch's exporter notes on every node, value and graph (the Python stack that
    made it, with this machine's paths, its module names, its own graph's signature): the file
    is meant to be shared, and the graph runs the same without them. The model's own metadata,
    written after, stays."""
    for graph in _graphs(model):
        del graph.metadata_props[:]
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
        for value in (*getattr(graph, "value_info", ()), *getattr(graph, "input", ()),
                      *getattr(graph, "output", ()), *getattr(graph, "initializer", ())):
            del value.metadata_props[:]


def _graphs(model):
    """The model's graph, the graphs inside its nodes (loops, branches) and its functions."""
    todo = [model.graph, *model.functions]
    while todo:
        graph = todo.pop()
        yield graph
        for node in graph.node:
            for attribute in node.attribute:
                todo += ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs)


def _metadata(predictor):
    task = predictor.task
    meta = {"task": task.kind, "features": predictor.features, "targets": predictor.targets,
            "units": predictor.units}
    if task.kind == "classify":
        meta["classes"] = task.classes
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}


@contextlib.contextmanager
def _quiet():
    """The exporter's notes (optional libraries it skips, deprecations) are not the user's."""
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def _check_rows(predictor, seed):
    """Rows of features across the training range (and a little beyond it)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(predictor.features)
    if predictor.feature_range:
        lo = np.asarray(predictor.feature_range["min"], np.float64)
        hi = np.asarray(predictor.feature_range["max"], np.float64)
    else:
        shift, scale = (np.asarray(v, np.float64) for v in (predictor.x_scaler.shift,
                                                              predictor.x_scaler.scale))
        lo, hi = shift - 2 * scale, shift + 2 * scale
    margin = 0.1 * (hi - lo)
    return rng.uniform(lo - margin, hi + margin, size=(CHECK_ROWS, n)).astype(np.float32)


def _run(data, x):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    return session.run(None, {"features": x})[0]


def _expected(predictor, x):
    out = predictor.outputs(x)
    task = predictor.task
    return task.decode(out) if task.kind == "regress" else task.proba(out)


def _spread(predictor):
    """What "near 0" means for each output (see TOLERANCE)."""
    import numpy as np

    task = predictor.task
    return np.asarray(task.scaler.scale) if task.kind == "regress" else PROBABILITY_FLOOR


def _difference(got, want, spread):
    """The largest difference between two output matrices, relative to each value or to its
    floor, whichever is larger."""
    import numpy as np

    if got.shape != want.shape:
        return np.inf
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), spread), initial=0.0))
