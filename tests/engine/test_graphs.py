"""The graphed training steps compute what the eager loop computes.

On a CPU GraphedSteps runs every step eagerly (no graph): the tests here check its bookkeeping
(row order, learning rates, weight average, the last short minibatch, the loss sum) against the
eager loop; the tests marked cuda check the recorded graph against those eager steps."""

import dataclasses

import numpy as np
import pytest
import torch

from fcnn_cli.engine import fastpath, graphs, loop, train
from fcnn_cli.engine.averaging import WeightAverage
from fcnn_cli.network.model import MLP, NetConfig
from fcnn_cli.network.tasks import Regression


def _fit(quakes, graphed, device="cpu", weight=None, **options):
    """fit with the graphed steps forced on (eager on a CPU) or off."""
    usable = graphs.usable
    loop.graphs.usable = (lambda state, device, world: state.fast is not None) if graphed \
        else (lambda state, device, world: False)
    try:
        return train.fit(quakes, train.TrainConfig(epochs=3, batch_size=64, seed=3,
                                                   device=device, **options), weight=weight)
    finally:
        loop.graphs.usable = usable


def _weighted(quakes):
    """The quakes with unequal event weights, some negative, in column "w"."""
    w = np.random.default_rng(4).uniform(-0.3, 2.0, len(quakes.frame))
    return dataclasses.replace(quakes, frame=quakes.frame.assign(w=w))


def _weights(result):
    return torch.cat([p.detach().flatten() for p in result.predictor.net.parameters()]).cpu()


@pytest.mark.parametrize("options", [dict(schedule="none", ema=0.0, lr=2 ** -10),
                                     dict(optimizer="sgd", schedule="none", ema=0.0)],
                         ids=["adam", "sgd"])
def test_eager_graph_steps_equal_the_loop_to_the_bit(quakes, options):
    """With a learning rate that float32 holds exactly and no average, nothing differs: the
    same rows in the same order (the short last batch included), the same updates."""
    assert len(quakes.frame) * 0.9 % 64  # a short last minibatch
    plain, graphed = _fit(quakes, False, **options), _fit(quakes, True, **options)
    assert torch.equal(_weights(plain), _weights(graphed))
    assert [r["train_loss"] for r in plain.history] == [r["train_loss"] for r in graphed.history]


def test_eager_graph_steps_with_event_weights_equal_the_loop_to_the_bit(quakes):
    """The weights travel with the labels through the graph's gathers: the same steps."""
    options = dict(schedule="none", ema=0.0, lr=2 ** -10)
    plain, graphed = (_fit(_weighted(quakes), on, weight="w", **options) for on in (False, True))
    assert torch.equal(_weights(plain), _weights(graphed))
    assert not torch.equal(_weights(plain), _weights(_fit(quakes, False, **options)))


@pytest.mark.parametrize("options", [dict(), dict(schedule="plateau"), dict(dropout=0.2)],
                         ids=["cosine-average", "plateau", "dropout"])
def test_eager_graph_steps_equal_the_loop_within_float32(quakes, options):
    """The graph reads the learning rate and the average's weight as float32 tensors; the loop
    passes them as Python floats: the weights differ in the last bits only."""
    net = {"dropout": options.pop("dropout")} if "dropout" in options else {}
    usable = graphs.usable
    results = []
    for graphed in (False, True):
        loop.graphs.usable = lambda state, device, world, on=graphed: on and bool(state.fast)
        try:
            results.append(train.fit(quakes, train.TrainConfig(epochs=3, batch_size=64,
                                                               seed=3, device="cpu", **options),
                                     net=net))
        finally:
            loop.graphs.usable = usable
    torch.testing.assert_close(_weights(results[1]), _weights(results[0]), rtol=1e-5, atol=1e-6)
    assert results[0].predictor.info["best_epoch"] == results[1].predictor.info["best_epoch"]


def test_graphs_only_for_the_fast_path_on_a_gpu_in_one_process(quakes):
    from fcnn_cli.machine import distributed
    from fcnn_cli.engine import state as training_state
    from fcnn_cli.engine.prepare import prepare

    config = train.TrainConfig()
    data = prepare(quakes, config)
    fast = training_state.build(data, config, None, 0.0, torch.device("cpu"))
    slow = training_state.build(data, train.TrainConfig(fast=False), None, 0.0,
                                torch.device("cpu"))
    one, two = distributed.World(), distributed.World(0, 2, "nccl")
    cuda = torch.device("cuda")
    assert graphs.usable(fast, cuda, one)
    assert not graphs.usable(fast, torch.device("cpu"), one)
    assert not graphs.usable(slow, cuda, one)
    assert not graphs.usable(fast, cuda, two)


def _steps(device, capture, dropout=0.0, ema=True, optimizer="adam", weighted=False):
    """GraphedSteps on 1000 random rows, batch 64 (a short last batch of 40); ``weighted``:
    the labels carry random event weights."""
    torch.manual_seed(0)
    task = Regression(["a", "b"], None, weighted=weighted)
    net = MLP(NetConfig(n_in=5, n_out=2, width=32, depth=3, dropout=dropout)).to(device)
    fast = fastpath.FastStep(net, task)
    opt = torch.optim.Adam([fast.flat], lr=1e-2, fused=True) if optimizer == "adam" else \
        torch.optim.SGD([fast.flat], lr=1e-2, momentum=0.9, fused=True)
    average = WeightAverage([fast.flat], 0.99) if ema else None
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(1000, 5, generator=gen), torch.randn(1000, 2, generator=gen)
    if weighted:
        y = torch.cat([y, torch.rand(1000, 1, generator=gen) * 2 - 0.2], dim=1)
    return fast, average, graphs.GraphedSteps(fast, opt, average, x.to(device), y.to(device),
                                              64, capture)


def _epochs(fast, average, steps, epochs=3):
    n, batch = len(steps.x), steps.batch
    count = -(-n // batch)
    totals = []
    for epoch in range(epochs):
        lrs = [1e-2 * (1 - k / count) for k in range(count)]
        steps.begin(torch.randperm(n, generator=torch.Generator().manual_seed(epoch)), lrs,
                    average.next_weights(count) if average else None)
        for i in range(0, n, batch):
            steps.step(min(batch, n - i))
        totals.append(steps.total.item())
    return fast.flat.detach().cpu(), average.average[0].cpu() if average else None, totals


def test_eager_graph_steps_count_the_average_updates():
    fast, average, steps = _steps("cpu", capture=False)
    _epochs(fast, average, steps, epochs=2)
    assert average.updates == 2 * 16 and steps.graph is None


def test_a_step_that_cannot_be_recorded_trains_on_eagerly(monkeypatch, caplog):
    """The warm-up steps on a side stream, then a failed recording, on a CPU with CUDA's calls
    stood in for: training goes on eagerly, with a warning, to the same weights."""
    import contextlib

    class Capture:
        def __init__(self, graph):
            pass

        def __enter__(self):
            raise RuntimeError("operation not permitted when stream is capturing")

        def __exit__(self, *exc):
            pass

    class Stream:
        def wait_stream(self, other):
            pass

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "current_stream", Stream)
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", object)
    monkeypatch.setattr(torch.cuda, "graph", Capture)
    eager = _epochs(*_steps("cpu", capture=False))
    fast, average, steps = _steps("cpu", capture=False)
    steps.capture = True  # as on a GPU
    failed = _epochs(fast, average, steps)
    assert steps.graph is None and not steps.capture and steps.warmed == graphs.WARMUP_STEPS
    assert "could not be recorded as a CUDA graph (operation not permitted" in caplog.text
    assert torch.equal(failed[0], eager[0]) and torch.equal(failed[1], eager[1])
    assert failed[2] == eager[2]


@pytest.mark.cuda
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "weighted"])
def test_graphed_steps_equal_eager_steps_on_cuda(optimizer):
    """Recorded and replayed, the steps give what the same steps give eagerly (also of labels
    that carry event weights)."""
    options = {"weighted": True} if optimizer == "weighted" else {"optimizer": optimizer}
    eager = _epochs(*_steps("cuda", capture=False, **options))
    fast, average, steps = _steps("cuda", capture=True, **options)
    graphed = _epochs(fast, average, steps)
    assert steps.graph is not None
    torch.testing.assert_close(graphed[0], eager[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(graphed[1], eager[1], rtol=1e-5, atol=1e-6)
    assert graphed[2] == pytest.approx(eager[2], rel=1e-5)


@pytest.mark.cuda
def test_graphed_steps_with_dropout_draw_new_masks_each_replay():
    fast, average, steps = _steps("cuda", capture=True, dropout=0.3)
    _epochs(fast, average, steps, epochs=2)
    assert steps.graph is not None
    first = fast.flat.detach().clone()
    same_rows_twice = torch.cat([torch.arange(64), torch.arange(64), torch.arange(128, 1000)])
    steps.begin(same_rows_twice, [0.0] * 16)  # learning rate 0: nothing moves
    steps.step(64)
    once = steps.total.item()
    steps.step(64)
    assert torch.equal(fast.flat.detach(), first)
    assert steps.total.item() - once != pytest.approx(once, rel=1e-6)  # other masks


@pytest.mark.cuda
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_training_on_cuda_graphs_equals_eager_cuda_training(quakes, caplog, weighted):
    """The whole loop: graphed on the GPU against the eager loop on the GPU."""
    if weighted:
        quakes = _weighted(quakes)
    weight = "w" if weighted else None
    graphed, eager = (_fit(quakes, on, "cuda", weight) for on in (True, False))
    assert "CUDA graph" not in caplog.text  # recorded, not fallen back from
    torch.testing.assert_close(_weights(graphed), _weights(eager), rtol=1e-4, atol=1e-5)
    assert graphed.predictor.info["device"] == "cuda"
