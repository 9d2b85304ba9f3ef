"""The autograd step of ensembles (funcstep.py): which networks take it, and that it gives each
member what autograd and torch.optim give that member alone."""

import copy

import pytest
import torch

from fcnn_cli.engine import fastpath, funcstep, train
from fcnn_cli.network import tasks
from fcnn_cli.network.model import MLP, NetConfig


@pytest.mark.parametrize("options, net, task, fast", [
    ({}, {}, "regress", True),
    ({"fast": False}, {}, "regress", False),
    ({"precision": "bf16"}, {}, "regress", False),
    ({}, {"arch": "batchnorm"}, "regress", False),
    ({}, {"arch": "selu"}, "regress", True),
    ({}, {"arch": "selu", "dropout": 0.1}, "regress", False),
    ({}, {}, "weighted", False),
])
def test_the_fast_step_trains_what_it_can_autograd_the_rest(options, net, task, fast):
    config = NetConfig(n_in=3, n_out=2, depth=2, width=4, **net)
    task = tasks.Regression(["a", "b"], None) if task == "regress" else \
        tasks.Classification("c", ["p", "q"], "softmax", [0.5, 1.5])
    step = funcstep.ensemble_step([MLP(config), MLP(config)], task,
                                  train.TrainConfig(ensemble=2, **options))
    assert isinstance(step, fastpath.FastStep if fast else funcstep.FuncStep)


def test_every_member_chooses_the_step():
    """A sweep's cohorts may differ in dropout: SELU members of which one drops units take
    autograd (alpha-dropout), whichever comes first."""
    plain, dropping = (MLP(NetConfig(n_in=3, n_out=1, depth=2, width=4, arch="selu",
                                     dropout=rate)) for rate in (0.0, 0.1))
    task = tasks.Regression(["a"], None)
    for members in ([plain, dropping], [dropping, plain]):
        step = funcstep.ensemble_step(members, task, train.TrainConfig())
        assert isinstance(step, funcstep.FuncStep)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_func_step_gives_each_member_its_gradients_statistics_and_update(device):
    """Against each member alone through autograd and torch.optim: batch norm in residual
    blocks with a projector, and class weights."""
    torch.manual_seed(0)
    task = tasks.Classification("c", ["p", "q", "r"], "softmax", [0.5, 1.0, 2.0])
    config = NetConfig(n_in=5, n_out=3, depth=3, width=7, arch="resnet", batchnorm=True)
    nets = [MLP(config).to(device) for _ in range(3)]
    alone = [copy.deepcopy(net) for net in nets]
    x = torch.randn(3, 9, 5).to(device)
    y = torch.randint(0, 3, (3, 9)).to(device)
    step = funcstep.FuncStep(nets, task)
    optimizer = torch.optim.SGD([step.flat], lr=0.1, momentum=0.9)
    losses = step(x, y, optimizer)
    for k, net in enumerate(alone):
        net.train()
        single = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        loss = task.loss(net(x[k]), y[k])
        loss.backward()
        single.step()
        assert losses[k].item() == pytest.approx(loss.item(), rel=1e-6)
        for (name, p), q in zip(net.named_parameters(), nets[k].parameters()):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
        for (name, b), c in zip(net.named_buffers(), nets[k].buffers()):
            torch.testing.assert_close(c, b, rtol=1e-5, atol=1e-6)


def test_dropout_draws_a_mask_per_member():
    """Two members with the same weights and rows: with one mask for both they would have one
    loss. Their masks cannot be a single run's, so members with dropout equal no single run."""
    torch.manual_seed(0)
    first = MLP(NetConfig(n_in=5, n_out=1, depth=2, width=16, dropout=0.5))
    step = funcstep.FuncStep([first, copy.deepcopy(first)], tasks.Regression(["a"], None))
    x, y = torch.randn(1, 8, 5).expand(2, 8, 5), torch.randn(1, 8, 1).expand(2, 8, 1)
    losses = step(x, y, torch.optim.SGD([step.flat], lr=0.0))
    assert losses[0] != losses[1]
