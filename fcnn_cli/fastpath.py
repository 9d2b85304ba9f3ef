"""A training step without autograd for the common networks: forward and backward written out
with torch matrix products, then the optimiser's (fused) step.

For a small MLP most of an eager step's time is autograd's bookkeeping, not arithmetic; here
each layer costs its three matrix products and a few elementwise operations. It covers plain
networks (no batch norm, no dropout) with the activations below, for regression and for
unweighted classification; everything else trains through autograd. Tests check that its
gradients equal autograd's.
"""

import math

import torch
import torch.nn.functional as F

from fcnn_cli.model import Dense

SELU_LAMBDA, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772


def _derivatives():
    """activation name -> d(activation)/dz from the pre-activation z and the output h."""
    return {
        "relu": lambda z, h: (z > 0).to(z.dtype),
        "leaky-relu": lambda z, h: torch.where(z > 0, torch.ones_like(z),
                                               torch.full_like(z, 0.01)),
        "elu": lambda z, h: torch.where(z > 0, torch.ones_like(z), h + 1.0),
        "selu": lambda z, h: torch.where(z > 0, torch.full_like(z, SELU_LAMBDA),
                                         h + SELU_LAMBDA * SELU_ALPHA),
        "silu": lambda z, h: torch.addcmul(s := torch.sigmoid(z), h, 1.0 - s),  # s + h(1 - s)
        "gelu": lambda z, h: 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
        + z * torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi),
        "tanh": lambda z, h: 1.0 - h * h,
        "sigmoid": lambda z, h: h * (1.0 - h),
        "softplus": lambda z, h: torch.sigmoid(z),
    }


DERIVATIVES = _derivatives()


def supports(model, task):
    cfg = model.config
    return (all(isinstance(block, Dense) for block in model.body) and not cfg.batchnorm
            and not cfg.dropout and cfg.activation in DERIVATIVES
            and getattr(task, "weights", None) is None)


class FastStep:
    """Computes the loss and writes every parameter's ``.grad``, as ``loss.backward()`` would."""

    def __init__(self, model, task):
        pairs = model.layers()
        self.linears = [linear for linear, _ in pairs]
        self.acts = [act for _, act in pairs[:-1]]
        self.derivative = DERIVATIVES[model.config.activation]
        self.output_grad = _output_grad(task)
        self.params = list(model.parameters())

    @torch.no_grad()
    def __call__(self, x, y):
        for p in self.params:  # written in place below; someone may have set them to None
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        inputs, pre = [x], []
        h = x
        for linear, act in zip(self.linears[:-1], self.acts):
            z = F.linear(h, linear.weight, linear.bias)
            h = act(z)
            pre.append(z)
            inputs.append(h)
        head = self.linears[-1]
        out = F.linear(h, head.weight, head.bias)
        loss, g = self.output_grad(out, y)
        for k in range(len(self.linears) - 1, -1, -1):
            linear = self.linears[k]
            torch.mm(g.t(), inputs[k], out=linear.weight.grad)
            torch.sum(g, dim=0, out=linear.bias.grad)
            if k:
                g = (g @ linear.weight) * self.derivative(pre[k - 1], inputs[k])
        return loss


def _output_grad(task):
    """(loss, d loss / d output) for the task's loss on a minibatch."""
    if task.kind == "regress":
        def mse(out, y):  # squared error summed over outputs, mean over the batch
            diff = out - y
            return (diff * diff).sum() / len(y), diff * (2.0 / len(y))
        return mse
    if task.output == "sigmoid":
        def bce(out, y):
            z, t = out[:, 0], y.to(out.dtype)
            loss = F.binary_cross_entropy_with_logits(z, t)
            return loss, ((torch.sigmoid(z) - t) / len(y)).unsqueeze(1)
        return bce

    def cross_entropy(out, y):
        log_p = torch.log_softmax(out, dim=1)
        loss = -log_p.gather(1, y.unsqueeze(1)).mean()
        g = log_p.exp()
        g[torch.arange(len(y), device=y.device), y] -= 1.0
        return loss, g / len(y)
    return cross_entropy
