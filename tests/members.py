"""Checks shared by the tests of ensembles' steps."""

import copy

import pytest
import torch


def assert_step_equals_each_alone(nets, task, x, y):
    """One vectorised step (funcstep.FuncStep) of ``nets`` on their minibatches ``x``, ``y``
    (a leading member axis) gives each member the loss, gradients and Adam step that autograd
    and torch.optim give it alone."""
    from fcnn_cli.engine import funcstep

    alone = [copy.deepcopy(net) for net in nets]
    step = funcstep.FuncStep(nets, task)
    losses = step(x, y, torch.optim.Adam([step.flat], lr=0.01))
    for k, net in enumerate(alone):
        single = torch.optim.Adam(net.parameters(), lr=0.01)
        loss = task.loss(net(x[k]), y[k])
        loss.backward()
        single.step()
        assert losses[k].item() == pytest.approx(loss.item(), rel=1e-6)
        for p, q in zip(net.parameters(), nets[k].parameters()):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
