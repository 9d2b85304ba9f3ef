"""The autograd-free training step must compute exactly what autograd computes."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from fcnn_cli.engine import fastpath, train
from fcnn_cli.network import tasks
from fcnn_cli.network.model import MLP, NetConfig
from fcnn_cli.data.tables import Table

ACTIVATIONS = sorted(fastpath.ACTIVATIONS)
TASKS = {
    "regress": (tasks.Regression(["a", "b"], None), lambda n: torch.randn(n, 2), 2),
    "gaussian": (tasks.Regression(["a", "b"], None, output="gaussian"),
                 lambda n: torch.randn(n, 2), 4),
    "softmax": (tasks.Classification("c", ["p", "q", "r"]), lambda n: torch.randint(0, 3, (n,)),
                3),
    "sigmoid": (tasks.Classification("c", ["p", "q"], output="sigmoid"),
                lambda n: torch.randint(0, 2, (n,)), 1),
}


# plain; resnet whose first block projects 5 inputs onto 7; resnet led by one plain layer
NETS = {"plain": dict(depth=3), "resnet": dict(arch="resnet", depth=4),
        "resnet-odd": dict(arch="resnet", depth=5)}


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", sorted(TASKS))
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("arch", sorted(NETS))
def test_gradients_equal_autograd(activation, kind, dropout, arch):
    _check_gradients(activation, kind, dropout, arch, "cpu")


@pytest.mark.cuda
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", sorted(TASKS))
@pytest.mark.parametrize("arch", sorted(NETS))
def test_gradients_equal_autograd_on_cuda(activation, kind, arch):
    """As on the CPU, without dropout: a GPU's dropout draws its masks in another order."""
    _check_gradients(activation, kind, 0.0, arch, "cuda")


def _check_gradients(activation, kind, dropout, arch, device):
    task, labels, n_out = TASKS[kind]
    torch.manual_seed(0)
    net = MLP(NetConfig(n_in=5, n_out=n_out, width=7, activation=activation, dropout=dropout,
                        **NETS[arch])).double().to(device)
    for p in net.parameters():  # non-zero biases, so that every term is exercised
        torch.nn.init.normal_(p, 0.0, 0.5)
    x, y = torch.randn(33, 5, dtype=torch.float64).to(device), labels(33).to(device)
    if kind in ("regress", "gaussian"):
        y = y.double()
    torch.manual_seed(1)  # the same dropout masks for both
    loss = task.loss(net(x), y)
    expected = torch.autograd.grad(loss, list(net.parameters()))
    assert fastpath.supports(net, task)
    step = fastpath.FastStep(net, task)
    still = torch.optim.SGD([step.flat], lr=0.0)  # gradients only: the update moves nothing
    torch.manual_seed(1)
    fast_loss = step(x, y, still)
    assert fast_loss.item() == pytest.approx(loss.item(), rel=1e-10)
    for p, g in zip(net.parameters(), expected):
        torch.testing.assert_close(p.grad, g, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("arch", sorted(NETS))
@pytest.mark.parametrize("members, dropout", [(None, 0.0), (None, 0.3), (3, 0.0)])
def test_steps_of_other_sizes_in_turn_equal_autograd(arch, members, dropout):
    """The gradient of each layer's pre-activation goes into a tensor made once per shape:
    minibatches of other sizes in turn (an epoch's last one is smaller) must each be right,
    of one network (with dropout too) and of members at once."""
    task, labels, n_out = TASKS["regress"]
    torch.manual_seed(0)
    nets = [MLP(NetConfig(n_in=5, n_out=n_out, width=7, dropout=dropout, **NETS[arch])).double()
            for _ in range(members or 1)]
    step = fastpath.FastStep(nets if members else nets[0], task)
    still = torch.optim.SGD([step.flat], lr=0.0)
    for k, rows in enumerate((32, 7, 32, 7, 1)):
        x = torch.randn(len(nets), rows, 5, dtype=torch.float64)
        y = torch.stack([labels(rows).double() for _ in nets])
        torch.manual_seed(k)  # the same dropout masks for both
        expected = [torch.autograd.grad(task.loss(net(x[m]), y[m]), list(net.parameters()))
                    for m, net in enumerate(nets)]
        torch.manual_seed(k)
        step(x if members else x[0], y if members else y[0], still)
        for net, grads in zip(nets, expected):
            for p, g in zip(net.parameters(), grads):
                torch.testing.assert_close(p.grad, g, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("optimizer", [
    lambda ps: torch.optim.Adam(ps, lr=1e-2, fused=True),
    lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, weight_decay=0.1, fused=True),
    lambda ps: torch.optim.SGD(ps, lr=1e-2)], ids=["adam", "adam-options", "sgd", "sgd-plain"])
def test_updates_equal_torch_optim(optimizer):
    task = TASKS["regress"][0]
    torch.manual_seed(0)
    nets = [MLP(NetConfig(n_in=5, n_out=2, depth=2, width=6)).double() for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    reference = optimizer(nets[0].parameters())
    step = fastpath.FastStep(nets[1], task)
    fast = optimizer([step.flat])
    for _ in range(5):
        x, y = torch.randn(16, 5, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
        reference.zero_grad()
        task.loss(nets[0](x), y).backward()
        reference.step()
        step(x, y, fast)
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert not torch.equal(nets[1].head.bias, torch.zeros(2, dtype=torch.float64))
    # the state is kept in torch's own layout, so state_dict() and resuming work as ever
    ours, theirs = (o.state_dict()["state"].get(0, {}) for o in (fast, reference))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if k == "step")


@pytest.mark.parametrize("net", [dict(arch="batchnorm"), dict(arch="resnet", batchnorm=True),
                                 dict(arch="selu", dropout=0.1)])
def test_other_networks_fall_back_to_autograd(net):
    model = MLP(NetConfig(n_in=4, n_out=1, depth=2, width=4, **net))
    assert not fastpath.supports(model, tasks.Regression(["y"], None))


def test_weighted_classes_fall_back_to_autograd():
    model = MLP(NetConfig(n_in=4, n_out=2))
    assert not fastpath.supports(model, tasks.Classification("c", ["a", "b"], weights=[1, 3]))


def test_fast_and_autograd_training_agree(quakes):
    cfg = dict(epochs=3, batch_size=64, seed=1)
    fast = train.fit(quakes, train.TrainConfig(fast=True, **cfg))
    slow = train.fit(quakes, train.TrainConfig(fast=False, **cfg))
    a, b = fast.predictor.net.state_dict(), slow.predictor.net.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4)
    assert fast.history[-1]["train_loss"] == pytest.approx(slow.history[-1]["train_loss"],
                                                           rel=1e-3)


def test_fast_path_still_trains_with_diagnostics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2))
    table = Table(pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": x[:, 0] - 2 * x[:, 1]}))
    result = train.fit(table, train.TrainConfig(epochs=5, diagnostics=True), targets=["y"])
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] / 5


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_members_with_their_own_lr_and_weight_decay_update_as_torch_optim(kind, monkeypatch):
    """Members 0 and 2 share one lr and weight decay, member 1 has its own: each updates as
    torch.optim would with its settings, and the state keeps torch's layout."""
    task = TASKS["regress"][0]
    settings = [(1e-2, 0.1), (1e-3, 0.0), (1e-2, 0.1)]
    torch.manual_seed(0)
    nets = [MLP(NetConfig(n_in=5, n_out=2, depth=2, width=6)).double() for _ in range(3)]
    references = [MLP(NetConfig(n_in=5, n_out=2, depth=2, width=6)).double() for _ in range(3)]
    make = (lambda ps, lr, wd: torch.optim.Adam(ps, lr=lr, weight_decay=wd, fused=True)) \
        if kind == "adam" else \
        (lambda ps, lr, wd: torch.optim.SGD(ps, lr=lr, momentum=0.9, weight_decay=wd,
                                            fused=True))
    optimizers = []
    for net, reference, (lr, wd) in zip(nets, references, settings):
        reference.load_state_dict(net.state_dict())
        optimizers.append(make(reference.parameters(), lr, wd))
    step = fastpath.FastStep(nets, task)
    assert step.spans([0, 2]) == [s for n, offset in _blocks(step) for s in
                                  ((offset, offset + n), (offset + 2 * n, offset + 3 * n))]
    step.rates = fastpath.MemberRates(step, *zip(*settings))
    fast = make([step.flat], 0.5, 0.5)  # the members' settings replace the group's
    calls, real = [], torch._fused_adam_ if kind == "adam" else torch._fused_sgd_
    name = "_fused_adam_" if kind == "adam" else "_fused_sgd_"
    monkeypatch.setattr(torch, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    for _ in range(4):
        x, y = torch.randn(3, 16, 5, dtype=torch.float64), torch.randn(3, 16, 2,
                                                                        dtype=torch.float64)
        for k, (reference, optimizer) in enumerate(zip(references, optimizers)):
            optimizer.zero_grad()
            task.loss(reference(x[k]), y[k]).backward()
            optimizer.step()
        before = len(calls)
        step(x, y, fast)
        assert len(calls) == before + 1  # one kernel call a step for all settings
    for net, reference in zip(nets, references):
        for a, b in zip(net.parameters(), reference.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(nets[0].head.weight, nets[1].head.weight)
    assert fast.state_dict()["state"][0].keys() == optimizers[0].state_dict()["state"][0].keys()


def test_member_values_follow_the_flat_layout():
    nets = [MLP(NetConfig(n_in=5, n_out=2, depth=2, width=6)) for _ in range(3)]
    step = fastpath.FastStep(nets, TASKS["regress"][0])
    values = step.member_values([1.0, 2.0, 3.0])
    for k, net in enumerate(nets):
        for p in net.parameters():  # member k's parameters are views into flat
            start = p.data_ptr() - step.flat.data_ptr()
            offset = start // p.element_size()
            assert torch.all(values[offset:offset + p.numel()] == k + 1.0)


def _blocks(step):
    """(numel of one member's parameter, offset of its block of all members) in flat."""
    offsets = np.cumsum([0] + [n * step.count for n in step.sizes])
    return list(zip(step.sizes, offsets[:-1].tolist()))


def test_members_with_their_own_dropout_rate_draw_their_own_masks():
    """One hidden layer, members keeping all, half and a quarter of its units: the step's
    gradients are autograd's with the masks it draws, each member's at its own rate."""
    task = TASKS["regress"][0]
    torch.manual_seed(0)
    nets = [MLP(NetConfig(n_in=5, n_out=2, depth=1, width=64, dropout=rate)).double()
            for rate in (0.0, 0.5, 0.75)]
    x, y = torch.randn(3, 40, 5, dtype=torch.float64), torch.randn(3, 40, 2,
                                                                    dtype=torch.float64)
    step = fastpath.FastStep(nets, task)
    torch.manual_seed(1)
    step.gradients(x, y)
    torch.manual_seed(1)  # the step's one draw, redone
    keep = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64).view(3, 1, 1)
    mask = torch.empty(3, 40, 64, dtype=torch.float64).bernoulli_(keep).div_(keep)
    kept = (mask[1:] != 0).double().mean(dim=(1, 2))
    assert torch.all(mask[0] == 1) and abs(kept[0] - 0.5) < 0.05 and abs(kept[1] - 0.25) < 0.05
    for k, net in enumerate(nets):
        hidden = net.body[0][1](net.body[0][0](x[k])) * mask[k]
        expected = torch.autograd.grad(task.loss(net.head(hidden), y[k]),
                                       list(net.parameters()))
        for p, g in zip(net.parameters(), expected):
            torch.testing.assert_close(p.grad, g, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(TASKS))
@pytest.mark.parametrize("members", [None, 3])
def test_weighted_gradients_equal_autograd(kind, members):
    """Labels packed with each row's weight (some negative): the step's loss and gradients
    are autograd's of the weighted task loss, mean(w · row loss), member by member."""
    task, labels, n_out = TASKS[kind]
    task = dataclasses.replace(task, weighted=True)
    torch.manual_seed(0)
    nets = [MLP(NetConfig(n_in=5, n_out=n_out, width=7, depth=2, activation="silu")).double()
            for _ in range(members or 1)]
    for net in nets:
        for p in net.parameters():
            torch.nn.init.normal_(p, 0.0, 0.5)
    rows = [(torch.randn(33, 5, dtype=torch.float64),
             torch.from_numpy(tasks.pack(labels(33).numpy(), np.random.default_rng(k).uniform(
                 -0.5, 2.0, 33))).double()) for k in range(len(nets))]
    expected = [torch.autograd.grad(task.loss(net(x), y), list(net.parameters()))
                for net, (x, y) in zip(nets, rows)]
    losses = [task.loss(net(x), y).item() for net, (x, y) in zip(nets, rows)]
    # by hand: the unweighted per-row losses times the weights, averaged
    plain = dataclasses.replace(task, weighted=False)
    for net, (x, y), loss in zip(nets, rows, losses):
        target = y[:, :-1] if kind in ("regress", "gaussian") else y[:, 0].long()
        per_row = torch.stack([plain.loss(net(x[i:i + 1]), target[i:i + 1]).detach()
                               for i in range(33)])
        assert loss == pytest.approx((per_row * y[:, -1]).mean().item(), rel=1e-10)
    step = fastpath.FastStep(nets if members else nets[0], task)
    still = torch.optim.SGD([step.flat], lr=0.0)
    if members:
        x, y = torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])
    else:
        (x, y), = rows
    fast_loss = step(x, y, still)
    assert fast_loss.reshape(-1).tolist() == pytest.approx(losses, rel=1e-10)
    for net, grads in zip(nets, expected):
        for p, g in zip(net.parameters(), grads):
            torch.testing.assert_close(p.grad, g, rtol=1e-9, atol=1e-12)


def test_the_per_row_constants_are_made_once_a_shape():
    per_row = fastpath._per_row()
    out = torch.zeros(8, 3)
    inverse, twice, minus_ones = per_row(out)
    assert per_row(torch.ones(8, 3))[0] is inverse and per_row(torch.zeros(4, 3))[0] is not inverse
    assert (inverse.item(), twice.item(), minus_ones.shape) == (1 / 8, 2 / 8, (8, 1))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", sorted(TASKS))
def test_the_straight_pass_of_a_plain_network_equals_the_general_one_bit_for_bit(activation,
                                                                                  kind):
    """A plain network on the CPU takes a pass of its own: its loss and gradients must be the
    general pass's to the last bit, minibatch sizes in turn (its scratch is made per size)."""
    task, labels, n_out = TASKS[kind]
    torch.manual_seed(0)
    nets = [MLP(NetConfig(n_in=5, n_out=n_out, width=7, depth=3, activation=activation))
            for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    straight, general = (fastpath.FastStep(net, task) for net in nets)
    assert straight.plain is not None
    general.plain = None
    for rows in (32, 7, 32, 1):
        x, y = torch.randn(rows, 5), labels(rows)
        losses = [step.gradients(x.clone(), y.clone()) for step in (straight, general)]
        assert torch.equal(*losses)
        assert torch.equal(straight.flat.grad, general.flat.grad)


@pytest.mark.parametrize("activation", ["silu", "relu", "tanh"])
def test_float32_gradients_of_the_default_step_are_autograds_bit_for_bit(activation):
    """The default regression's step calls the very products and kernels autograd calls, so in
    float32 its gradients are autograd's to the last bit (the loss is one dot product, not
    autograd's sum of squares: equal within rounding)."""
    task = TASKS["regress"][0]
    torch.manual_seed(0)
    net = MLP(NetConfig(n_in=8, n_out=2, width=64, depth=3, activation=activation))
    x, y = torch.randn(32, 8), torch.randn(32, 2)
    loss = task.loss(net(x), y)
    expected = torch.autograd.grad(loss, list(net.parameters()))
    step = fastpath.FastStep(net, task)
    assert step.gradients(x, y).item() == pytest.approx(loss.item(), rel=1e-6)
    assert all(torch.equal(p.grad, g) for p, g in zip(net.parameters(), expected))


def test_networks_the_straight_pass_leaves_to_the_general_one():
    task = TASKS["regress"][0]
    for net in (dict(dropout=0.2), dict(arch="resnet")):
        model = MLP(NetConfig(n_in=5, n_out=2, width=7, depth=3, **net))
        assert fastpath.FastStep(model, task).plain is None
    members = [MLP(NetConfig(n_in=5, n_out=2, width=7, depth=3)) for _ in range(2)]
    assert fastpath.FastStep(members, task).plain is None
