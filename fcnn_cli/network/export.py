"""A trained model as an ONNX graph, for C++, triggers and services: raw columns in, what
``fcnn predict`` writes out.

The graph holds what makes the network's inputs (:mod:`fcnn_cli.network.onnxinputs`: the
definitions of a model's recipe and the filling of missing values), the feature scaling, the
network (or an ensemble's members) and the mapping back: input ``features`` (float32, rows ×
features, in the order of the ``features`` metadata entry; any number of rows) or, where
definitions make features, ``columns`` (float64, rows × the raw columns of the ``columns``
entry); for regression output ``predictions`` (float64, rows × labels, in their units) and,
where predict writes ``<label>_std`` (a Gaussian head, an ensemble), ``std``; for classification
``probabilities`` (float64, rows × classes: an ensemble's mean) and, for an ensemble,
``entropy`` (rows). The metadata holds the names, units, definitions, medians and selection as
JSON. k-fold's networks are an ensemble's members here: the graph gives their mean, as predict
does for a table without the fold column (always, with folds by row position), and never a
row's own fold's network, which takes the fold column's hash; the metadata's ``folds`` says so.
Before the file is written, onnxruntime runs the graph on rows drawn across the training range,
and its outputs must equal the model's, computed in float64 from the inputs fcnn makes of those
rows, within what float32 rounding allows (:func:`reference`). The graph and that check
are one idea, the export, kept in one module.

numpy, torch and the ONNX libraries load only to export: the command checks its arguments first.
"""

import contextlib
import importlib.util
import json
import logging
import warnings

from fcnn_cli import __version__
from fcnn_cli.core.errors import FcnnError, first_line

log = logging.getLogger(__name__)

INSTALL = ("fcnn export needs onnx, onnxscript and onnxruntime: pip install 'fcnn[onnx]' "
           "(from a clone: pip install -e '.[onnx]')")
# The check of the graph (:func:`reference`). One float32 rounding moves a value by at most UNIT
# of it; a step that is not a sum (an activation, batch norm, a residual sum) by ELEMENTWISE of
# the size of its input and output, and near 0 of 1: onnxruntime's exp, tanh and erf are
# approximations good to a few units in the last place, and elu's exp(x) - 1 is good to the
# last place of 1, not of its value. The graph agrees with the model within MARGIN times the
# first-order bound (for the terms of second order), and within FLOAT64 of each output's largest
# value (the mapping back to labels and probabilities, in float64 in both).
UNIT = 2.0 ** -24
ELEMENTWISE = 8 * UNIT
MARGIN = 2.0
FLOAT64 = 1e-12
COLUMNS_AT_ONCE = 16  # of an output, whose gradients are taken together
EXACT_COLUMNS = 32  # outputs that reference() bounds one by one


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
    """Write ``predictor`` (on the CPU) to ``path`` as an ONNX model, checked against the model
    first; returns the largest difference found, as a share of what float32 rounding allows
    (at most 1). The graph computes in float32, as predict does but for a bf16-trained network
    (whose predictions differ from the graph's by bf16's rounding)."""
    from fcnn_cli.core.fileio import open_output, writing

    require()
    from fcnn_cli.network import onnxinputs

    graph_input = onnxinputs.of(predictor)  # a definition it cannot compute: refused first
    where = predictor.recipe.where if predictor.recipe is not None else None
    if where:
        log.warning("the graph scores every row: select the rows where %s yourself (the "
                    "'selection' entry of its metadata)", where)
    _say_folds(predictor.folds)
    model = _onnx_model(predictor)
    data = model.SerializeToString()
    x = onnxinputs.check_rows(predictor, graph_input, seed)
    share = worst(_run(data, x), reference(predictor, x))
    if not share <= 1.0:
        raise FcnnError(f"the ONNX graph's outputs differ from the model's by {share:.3g} times "
                        "what float32 rounding allows: not written")
    with open_output(path) as stream, writing(path):
        stream.write(data)
    return share


def _say_folds(rule):
    """Where predict would score a table with the fold column out of fold, the graph does not:
    its outputs on the rows the networks trained on are in fold, optimistic."""
    if rule is not None and rule.by is not None:
        log.warning("the graph scores every row by the mean of the %d k-fold networks, as "
                    "predict scores a table without the fold column %r; predict scores one "
                    "with it out of fold, each row by the network that did not train on it: "
                    "score the events trained on with fcnn predict", rule.k, rule.by)


def output_names(predictor):
    """The graph's outputs: what predict writes (but the class names and each member's)."""
    task = predictor.task
    if task.kind == "regress":
        return ["predictions", "std"] if predictor.members or task.gaussian else ["predictions"]
    return ["probabilities", "entropy"] if predictor.members else ["probabilities"]


def _graph(predictor):
    """The network's inputs (float32, rows × inputs) in, the outputs out."""
    import torch

    from fcnn_cli.network.tasks import MIN_VARIANCE

    task, labels = predictor.task, len(predictor.targets)

    class Graph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = predictor.net.cpu().eval()
            self.scaler = predictor.x_scaler.module()
            if task.kind == "regress":
                self.register_buffer("y_shift", torch.tensor(task.scaler.shift,
                                                             dtype=torch.float64))
                self.register_buffer("y_scale", torch.tensor(task.scaler.scale,
                                                             dtype=torch.float64))

        def forward(self, inputs):
            # As predict: scaled as the scaler's module, the network in float32, the rest in
            # float64.
            out = self.net(self.scaler(inputs)).double()
            return self.labels(out) if task.kind == "regress" else self.classes(out)

        def labels(self, out):
            """As tasks.Regression.predictive: an ensemble's outputs are members × rows ×
            outputs."""
            if out.dim() == 2 and not task.gaussian:
                return out * self.y_scale + self.y_shift
            members = out if out.dim() == 3 else out[None]
            means, var = members[..., :labels], None
            if task.gaussian:  # softplus as numpy's logaddexp(0, x), whatever x
                raw = members[..., labels:]
                var = (raw.clamp(min=0) + torch.log1p(torch.exp(-raw.abs()))).mean(0) \
                    + MIN_VARIANCE
            if len(members) > 1:
                var = means.var(0, correction=0) + (MIN_VARIANCE if var is None else var)
            return means.mean(0) * self.y_scale + self.y_shift, var.sqrt() * self.y_scale.abs()

        def classes(self, out):
            """As tasks.Classification.proba, and an ensemble's entropy as calibration.entropy."""
            members = out if out.dim() == 3 else out[None]
            if task.output == "sigmoid":
                p = torch.sigmoid(members)
                proba = torch.cat([1.0 - p, p], dim=-1).mean(0)
            else:
                proba = torch.softmax(members, dim=-1).mean(0)
            if out.dim() == 2:
                return proba
            return proba, -(proba * torch.log(torch.where(proba > 0, proba, 1.0))).sum(1)

    return Graph().eval()


def _onnx_model(predictor):
    import numpy as np
    import torch

    from fcnn_cli.network import onnxinputs

    graph_input = onnxinputs.of(predictor)
    whole = torch.nn.Sequential(onnxinputs.front(predictor, graph_input), _graph(predictor))
    example = torch.from_numpy(np.zeros((2, len(graph_input.columns)), graph_input.dtype))
    with _quiet(), torch.no_grad():
        try:
            program = torch.onnx.export(
                whole.eval(), (example,), dynamo=True, verbose=False,
                input_names=[graph_input.name], output_names=output_names(predictor),
                dynamic_shapes=({0: torch.export.Dim("rows")},))
        except Exception as e:  # the exporter's own failures: one line, not its traceback
            raise FcnnError(f"the ONNX export failed: {first_line(e)}") from None
    model = program.model_proto
    _forget_the_exporter(model)
    model.producer_name, model.producer_version = "fcnn", __version__
    for key, value in _metadata(predictor, graph_input).items():
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


def _metadata(predictor, graph_input):
    task = predictor.task
    meta = {"task": task.kind, "features": predictor.features, "targets": predictor.targets,
            "units": predictor.units}
    if task.kind == "classify":
        meta["classes"] = task.classes
    if predictor.members:
        meta["members"] = predictor.members
    if predictor.folds is not None:  # as predict's metadata says how its rows were scored
        meta["folds"] = {**predictor.folds.to_dict(), "applied": "mean"}
    if graph_input.steps:
        meta["columns"] = graph_input.columns
        meta["definitions"] = [[name, e.text] for name, e in graph_input.steps]
    if predictor.filler is not None:
        meta["missing"] = predictor.filler.to_dict()
    # The graph takes their one-hot inputs, or the index of the level (0: unknown, then
    # 1, 2, … in the order of its levels) where a column has an embedding.
    if predictor.categories is not None:
        meta["categories"] = predictor.categories.to_dict()
    if predictor.recipe is not None and predictor.recipe.where:
        meta["selection"] = predictor.recipe.where  # not in the graph: the caller applies it
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
    """The rows of the graph's input that it is checked on (onnxinputs.check_rows)."""
    from fcnn_cli.network import onnxinputs

    return onnxinputs.check_rows(predictor, onnxinputs.of(predictor), seed)


def _run(data, x):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def reference(predictor, x):
    """For rows ``x`` of the graph's input (features, or raw columns), each output of the
    graph as the model gives it: the network's inputs as fcnn makes them (the definitions
    derived in float64, the features in float32, filled), the network and predict's mapping of
    its outputs in float64; with how far from it a float32 graph may be: MARGIN times the
    first-order bound of its rounding errors, and FLOAT64 of the output's largest value. A list
    of (expected, allowed difference) arrays, one per output.

    The bound: each step of the network rounds its outputs by at most :func:`_step_error`,
    which moves an output by that error times the output's sensitivity to the step (autograd's,
    one column of the output at a time). Many outputs (classes) would take as many passes: for
    more than EXACT_COLUMNS, the bound goes through the input of each output layer instead
    (:func:`_wide_bounds`), looser but as quick for any number of classes."""
    import copy

    import numpy as np
    import torch

    from fcnn_cli.network import onnxinputs

    inputs, computed = onnxinputs.network_inputs(predictor, onnxinputs.of(predictor), x)
    inputs = torch.tensor(inputs, dtype=torch.float64)
    graph = copy.deepcopy(_graph(predictor)).double().requires_grad_(False)
    # A defined feature's float64 value, computed by other code, may round to the float32 next
    # to fcnn's: one float32 step, 2 UNIT of it, times the scaler's slope there.
    computed = 2 * UNIT * inputs.abs() * torch.from_numpy(computed) * _slope(graph.scaler,
                                                                             inputs)
    with _traced(graph.net, computed) as trace:
        outputs = graph(inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    wants = _expected(predictor.task, trace.raw.detach().numpy())
    if sum(np.prod(w.shape[1:], dtype=int) for w in wants) <= EXACT_COLUMNS:
        bounds = [_bound(out, trace.zeros, trace.errors) for out in outputs]
    else:
        bounds = _wide_bounds(predictor.task, trace, outputs, wants)
    return [(want, MARGIN * bound + FLOAT64 * np.abs(want).max(initial=np.finfo(float).tiny))
            for want, bound in zip(wants, bounds)]


def _slope(scaler, inputs):
    """The derivative of each scaled input by its input (1 / scale where it is affine)."""
    import torch

    x = inputs.clone().requires_grad_(True)
    with torch.enable_grad():
        (slope,) = torch.autograd.grad(scaler(x).sum(), x)
    return slope.abs()


def _expected(task, raw):
    """The outputs of the graph as predict maps the network's ``raw`` outputs."""
    from fcnn_cli.network.calibration import entropy

    if task.kind == "regress":
        return [v for v in task.predictive(raw) if v is not None]
    proba = task.proba(raw)
    return [proba, entropy(proba)] if raw.ndim == 3 else [proba]


@contextlib.contextmanager
def _traced(net, computed):
    """Hooks that add a zero tensor to the input of ``net``, to the output of each of its steps
    and to its output (their gradients: the sensitivity of what follows to each), noting each
    step's rounding error and each output layer's input and output; ``computed``: the error of
    each input of ``net`` that the graph's own definitions may add."""
    import types

    import torch

    from fcnn_cli.network.model import MLP

    trace = types.SimpleNamespace(zeros=[], errors=[], heads=[], raw=None, raw_zero=None)
    heads = {id(m.head) for m in net.modules() if isinstance(m, MLP)}

    def add(value, error):
        zero = torch.zeros_like(value, requires_grad=True)
        trace.zeros.append(zero)
        trace.errors.append(error)
        return value + zero

    def scaled(module, args):  # the features less their shift, over their scale: two roundings
        return (add(args[0], 2 * UNIT * args[0].abs() + computed),)

    def step(module, args, out):
        if id(module) in heads:
            trace.heads.append((module, args[0], out))
        error = _step_error(module, args[0], out)
        return out if error is None else add(out, error)

    def output(module, args, out):  # an ensemble's members × rows × outputs: rows first
        trace.raw = out
        rows_first = out.movedim(0, 1) if out.dim() == 3 else out
        trace.raw_zero = torch.zeros_like(rows_first, requires_grad=True)
        return out + (trace.raw_zero.movedim(0, 1) if out.dim() == 3 else trace.raw_zero)

    hooks = [net.register_forward_pre_hook(scaled), net.register_forward_hook(output)]
    hooks += [m.register_forward_hook(step) for m in net.modules() if not list(m.children())]
    try:
        yield trace
    finally:
        for hook in hooks:
            hook.remove()


def _wide_bounds(task, trace, outputs, wants):
    """The bounds of many outputs: that of the network's outputs (:func:`_output_error`) taken
    through the mapping to labels by autograd, or to probabilities by :func:`_class_bounds`."""
    error = _output_error(trace)
    if task.kind == "classify":
        return _class_bounds(task, trace.raw.detach().numpy(), error.numpy(), wants)
    rows_first = error.movedim(0, 1) if error.dim() == 3 else error
    return [_bound(out, [trace.raw_zero], [rows_first]) for out in outputs]


def _output_error(trace):
    """The bound of the rounding error of the network's outputs, as the network gives them: the
    bound of each output layer's input (a column at a time: the layers are narrow) through the
    layer's weights, plus the layer's own error."""
    import torch

    errors = []
    for head, x, out in trace.heads:
        inputs = torch.from_numpy(_bound(x, trace.zeros, trace.errors))
        errors.append(inputs @ head.weight.abs().T + _step_error(head, x, out))
    return torch.stack(errors) if trace.raw.dim() == 3 else errors[0]


def _class_bounds(task, raw, error, wants):
    """The bounds of the probabilities (and an ensemble's entropy) from that of the outputs:
    moving every output of a member by at most d moves the log of each of its probabilities by
    at most 2d (softmax; d for a sigmoid), whatever the number of classes; the entropy moves by
    |log p + 1| times each probability's move, to first order."""
    import numpy as np

    members = raw if raw.ndim == 3 else raw[None]
    moves = np.expm1(2 * (error if error.ndim == 3 else error[None]).max(axis=-1))
    proba = np.mean([task.proba(m) * d[:, None] for m, d in zip(members, moves)], axis=0)
    if len(wants) == 1:
        return [proba]
    logs = np.log(np.where(wants[0] > 0, wants[0], 1.0))
    return [proba, (np.abs(logs + 1) * proba).sum(axis=1)]


def _step_error(module, x, out):
    """The most float32 rounding moves each output of one step of the network, to first order
    (None: the step does no arithmetic). A sum of n products and a bias: (n + 1) units of the
    sum of the terms' sizes, in any order of summation, so on any number of threads."""
    import torch
    from torch import nn

    from fcnn_cli.network import embedding

    with torch.no_grad():
        if isinstance(module, (nn.Identity, nn.Dropout, nn.AlphaDropout, nn.Flatten)):
            return None  # evaluating, or a view
        if isinstance(module, (embedding.Periodic, embedding.FeatureLinear,
                               embedding.FeatureAffine)):
            return _embedding_error(module, x)
        if isinstance(module, nn.Linear):
            terms = x.abs() @ module.weight.abs().T
            if module.bias is not None:
                terms += module.bias.abs()
            return (x.shape[-1] + 1) * UNIT * terms
        if isinstance(module, nn.BatchNorm1d):  # x·s + (bias - mean·s), or in another order
            s = module.weight / torch.sqrt(module.running_var + module.eps)
            return ELEMENTWISE * ((x * s).abs() + (module.running_mean * s).abs()
                                  + module.bias.abs())
        return ELEMENTWISE * (x.abs() + out.abs() + 1.0)


def _embedding_error(module, x):
    """:func:`_step_error` of a step of an embedding. Periodic: the angle 2π f x, three
    products, then cos and sin good to a few units of 1, which move by at most the angle's
    error. A feature's linear map: a sum of n products and a bias, as nn.Linear. A feature's
    x·w + b: two roundings."""
    import torch

    from fcnn_cli.network import embedding

    if isinstance(module, embedding.Periodic):
        error = ELEMENTWISE * (module.angles(x).abs() + 1.0)
        return torch.cat([error, error], dim=-1)
    if isinstance(module, embedding.FeatureLinear):
        n, terms = x.shape[-1], torch.einsum("...fi,fio->...fo", x.abs(), module.weight.abs())
    else:
        n, terms = 1, x[..., None].abs() * module.weight.abs()
    return (n + 1) * UNIT * (terms + module.bias.abs())


def _bound(out, perturbations, errors):
    """Per element of ``out``, the sum over the steps of |∂out/∂step| times the step's error:
    the gradients of COLUMNS_AT_ONCE columns at a time (rows are independent: the gradient of a
    column's sum is each row's)."""
    import torch

    columns = out.reshape(len(out), -1)
    bound = torch.zeros_like(columns)
    for first in range(0, columns.shape[1], COLUMNS_AT_ONCE):
        picked = range(first, min(first + COLUMNS_AT_ONCE, columns.shape[1]))
        seeds = torch.zeros((len(picked), *columns.shape), dtype=columns.dtype)
        for i, k in enumerate(picked):
            seeds[i, :, k] = 1.0
        grads = torch.autograd.grad(columns, perturbations, seeds, retain_graph=True,
                                    allow_unused=True, is_grads_batched=True)
        for grad, error in zip(grads, errors):
            if grad is not None:  # columns × rows × …
                bound[:, picked.start:picked.stop] += \
                    (grad.abs() * error).reshape(*grad.shape[:2], -1).sum(2).T
    return bound.reshape(out.shape).numpy()


def worst(got, reference):
    """The largest difference of a graph's outputs ``got`` from the model's, as a share of the
    difference allowed (:func:`reference`); NaN or infinite where they cannot be compared."""
    import numpy as np

    if len(got) != len(reference) or any(np.shape(g) != w.shape
                                         for g, (w, _) in zip(got, reference)):
        return np.inf
    return float(np.max([np.max(np.abs(g - w) / allowed, initial=0.0)
                         for g, (w, allowed) in zip(got, reference)]))
