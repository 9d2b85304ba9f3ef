"""An ensemble's training step through autograd, for the networks the autograd-free step does
not cover: batch norm, SELU's alpha-dropout, embeddings, class weights, ``fast`` off, bf16.

The members' forward passes run as one, vectorised: ``torch.vmap`` maps
``torch.func.functional_call`` of one network over the members' stacked parameters and buffers,
so that each layer is one batched product for all members. The stacked parameters share their
memory with the one flat parameter of :func:`fcnn_cli.engine.fastpath.flatten` (which lays each
parameter's members out one after the other), and their gradients with its gradient, so one
``backward`` of the members' summed losses writes every member's gradient into ``flat.grad``
(the members share nothing, so each gets its own loss's gradient) and one optimiser step, the
one a single run builds, updates them all. They are leaves of their own rather than slices of
``flat`` taken in the graph: the backward of a slice fills a zero tensor the size of ``flat``,
once per parameter and step.

Batch norm keeps its running statistics per member: each buffer of all members is one stacked
tensor, mapped over as the parameters are, and the members' own buffers are views into it, so
that a member in eval mode (validation, prediction) uses its own statistics and the weight
average covers them as it does for a single run. Dropout draws a mask per member
(``randomness="different"``), from one generator for all: with dropout a member does not equal
the single run of its seed draw for draw, as it does without.
"""

import torch
from torch.func import functional_call, vmap

from fcnn_cli.engine import fastpath
from fcnn_cli.machine.devices import autocast
from fcnn_cli.network.model import MLP


def ensemble_step(members, task, config):
    """The step that trains ``members`` (networks of one shape) with ``config``: the
    autograd-free one where a single run of each would take it (it is faster), else
    :class:`FuncStep`. Every member asks: a sweep's cohorts may differ in dropout, which SELU's
    alpha-dropout keeps from the autograd-free step."""
    if all(fastpath.applies(member, task, config) for member in members):
        return fastpath.FastStep(members, task)
    return FuncStep(members, task, config.precision)


class FuncStep:
    """``step(x, y, optimizer)``: with ``x`` and ``y`` carrying a leading member axis (each
    member's own minibatch), every member's loss (a vector), its gradient in ``flat.grad`` and
    the optimiser's update, as ``FastStep`` given a list of members does.

    ``flat`` is the one parameter the optimiser must be built on; ``buffers`` the stacked buffers
    (batch norm's statistics, members × …), which the weight average covers besides ``flat``.
    The members' parameters and buffers become views into them: they may change in place
    (``load_state_dict`` copies into them) but must not be replaced.
    """

    def __init__(self, members, task, precision="fp32"):
        self.flat = fastpath.flatten(members)
        self.task, self.precision = task, precision
        self.parameters = _stack_parameters(members, self.flat)
        self.names, self.buffers = _stack_buffers(members)
        with torch.device("meta"):  # the structure alone: the tensors come from the members
            self.shape = MLP(members[0].config)
        self.shape.train()
        self.losses = vmap(self._loss, randomness="different")

    def __call__(self, x, y, optimizer):
        self.flat.grad.zero_()  # backward adds into it, through the stacked views
        losses = self.losses(self.parameters, dict(zip(self.names, self.buffers)), x, y)
        losses.sum().backward()
        optimizer.step()
        return losses.detach()

    def _loss(self, parameters, buffers, x, y):
        """One member's loss on its minibatch (vmap maps it over the members), with its forward
        pass in the run's precision and the loss in float32, as a single run computes them."""
        with autocast(self.precision, x.device):
            out = functional_call(self.shape, (parameters, buffers), (x,))
        return self.task.loss(out.float(), y)


def _stack_parameters(members, flat):
    """{name: each parameter of all members as one (members × …) leaf}, its values a view of
    ``flat`` and its gradient a view of ``flat.grad``: :func:`fastpath.flatten` put each
    parameter's members one after the other."""
    stacked, start = {}, 0
    for name, p in members[0].named_parameters():
        end = start + len(members) * p.numel()
        shape = (len(members), *p.shape)
        leaf = flat.detach()[start:end].view(shape).requires_grad_()
        leaf.grad = flat.grad[start:end].view(shape)
        stacked[name], start = leaf, end
    return stacked


def _stack_buffers(members):
    """The names of the networks' buffers, and each buffer of all members stacked into one
    tensor, of which the members' own become views."""
    names = [name for name, _ in members[0].named_buffers()]
    stacked = [torch.stack([m.get_buffer(name) for m in members]) for name in names]
    for name, tensor in zip(names, stacked):
        owner, _, leaf = name.rpartition(".")
        for k, member in enumerate(members):
            setattr(member.get_submodule(owner), leaf, tensor[k])
    return names, stacked
