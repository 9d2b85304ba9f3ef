"""Per-layer health of a network in training: weight-gradient norms and activation moments.

Deep plain networks fail in ways these numbers show: gradients that shrink layer by layer
towards the input (vanishing) or grow (exploding), and activations whose mean and variance drift
away from a healthy fixed point until they collapse or saturate.
"""

import math

import torch
from torch import nn

from fcnn_cli.core.errors import Message

# Where a layer's output counts as saturated: within 1 % of the activation's bounds.
SATURATING = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
VANISHING = 1e-2  # first layer's gradient norm below this fraction of the output layer's
EXPLODING = 1e2  # … or above this multiple
HUGE_GRADIENT = 1e3
COLLAPSED_VARIANCE = 1e-6
SATURATED_SHARE = 0.5


class Probe:
    """Measures every layer on one fixed batch, without changing the model or the RNG."""

    def __init__(self, model, x, y, loss_fn):
        self.model, self.x, self.y, self.loss_fn = model, x, y, loss_fn
        self.bounds = SATURATING.get(model.config.activation)

    def measure(self, epoch):
        model = self.model
        was_training = model.training
        buffers = {k: v.clone() for k, v in model.named_buffers()}
        # Train mode, as the optimiser sees the network (batch norm on batch statistics), but
        # with dropout off so that the numbers are not noise.
        model.train()
        for m in model.modules():
            if isinstance(m, (nn.Dropout, nn.AlphaDropout)):
                m.eval()
        captured, hooks = {}, []
        layers = model.layers()
        for k, (_, act) in enumerate(layers):
            if act is not None:
                hooks.append(act.register_forward_hook(
                    lambda m, i, o, k=k: captured.__setitem__(k, o.detach())))
        try:
            out = model(self.x)
            # Gradients returned, not accumulated: the parameters' .grad belong to training.
            grads = torch.autograd.grad(self.loss_fn(out, self.y),
                                        [linear.weight for linear, _ in layers])
        finally:
            for h in hooks:
                h.remove()
        rows = []
        for k, grad in enumerate(grads):
            a = captured.get(k, out.detach())
            row = {"epoch": epoch, "layer": k + 1 if k < len(layers) - 1 else "output",
                   "grad_norm": grad.norm().item(),
                   "act_mean": a.mean().item(), "act_var": a.var().item()}
            if self.bounds and k < len(layers) - 1:
                lo, hi = self.bounds
                margin = 0.01 * (hi - lo)
                row["saturated"] = ((a < lo + margin) | (a > hi - margin)).float().mean().item()
            rows.append(row)
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
        model.train(was_training)
        return rows


def warnings(rows):
    """Plain-language warnings for the first and the last epoch recorded."""
    found = []
    epochs = sorted({r["epoch"] for r in rows})
    for epoch, when in ((epochs[0], "at the start"), (epochs[-1], "at the end")):
        layer_rows = [r for r in rows if r["epoch"] == epoch]
        hidden = [r for r in layer_rows if r["layer"] != "output"]
        first, output = layer_rows[0], layer_rows[-1]
        norms = [r["grad_norm"] for r in layer_rows]
        if not all(math.isfinite(g) for g in norms) or max(norms) > HUGE_GRADIENT:
            found.append(Message(f"exploding gradients {when}: a weight-gradient norm of "
                                 f"{max(norms):.3g}; try a lower lr, arch='batchnorm' or "
                                 "arch='selu'", ("lr", "arch")))
        elif output["grad_norm"] > 0 and first["grad_norm"] < VANISHING * output["grad_norm"]:
            found.append(Message(f"vanishing gradients {when}: the first layer's weight "
                                 f"gradients are {first['grad_norm'] / output['grad_norm']:.1e} "
                                 "of the output layer's; try arch='resnet', arch='batchnorm' or "
                                 "arch='selu', or a relu-like activation", ("arch", "activation")))
        elif first["grad_norm"] > EXPLODING * output["grad_norm"]:
            found.append(Message(f"exploding gradients {when}: the first layer's weight "
                                 f"gradients are {first['grad_norm'] / output['grad_norm']:.1e} "
                                 "times the output layer's; try arch='batchnorm' or arch='selu'",
                                 ("arch",)))
        collapsed = [r["layer"] for r in hidden if r["act_var"] < COLLAPSED_VARIANCE]
        if collapsed:
            found.append(f"activations collapsed {when}: layer(s) {_layers(collapsed)} give "
                         "almost the same output for every row")
        saturated = [r["layer"] for r in hidden if r.get("saturated", 0) > SATURATED_SHARE]
        if saturated:
            found.append(f"activations saturated {when}: most outputs of layer(s) "
                         f"{_layers(saturated)} sit at the activation's bounds, where its "
                         "gradient is near zero")
    return list(dict.fromkeys(found))


def _layers(names):
    return ", ".join(map(str, names[:6])) + (f" … ({len(names)} layers)" if len(names) > 6 else "")
