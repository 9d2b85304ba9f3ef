
import pandas as pd
import pytest
import torch

from fcnn_cli.engine import train
from fcnn_cli.commands import cli
from fcnn_cli.engine.diagnostics import Probe, warnings
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.network.model import MLP, NetConfig


def test_probe_measures_gradient_norms_and_moments_without_side_effects():
    torch.manual_seed(0)
    net = MLP(NetConfig(n_in=3, n_out=1, depth=2, width=4, arch="batchnorm", dropout=0.5))
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    loss = lambda p, t: ((p - t) ** 2).sum(1).mean()  # noqa: E731
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    net.eval()
    rows = Probe(net, x, y, loss).measure(3)
    assert not net.training and torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert [r["layer"] for r in rows] == [1, 2, "output"] and {r["epoch"] for r in rows} == {3}
    # the numbers are autograd's, with dropout off and batch norm on batch statistics
    net.train()
    for m in net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    net.zero_grad()
    loss(net(x), y).backward()
    assert rows[0]["grad_norm"] == pytest.approx(net.body[0][0].weight.grad.norm().item())
    assert rows[-1]["grad_norm"] == pytest.approx(net.head.weight.grad.norm().item())


def test_warnings_name_the_problem():
    def rows(first, out, var=1.0, saturated=0.0):
        return [{"epoch": 0, "layer": 1, "grad_norm": first, "act_mean": 0, "act_var": var,
                 "saturated": saturated},
                {"epoch": 0, "layer": "output", "grad_norm": out, "act_mean": 0, "act_var": 1}]
    assert "vanishing" in warnings(rows(1e-6, 1.0))[0]
    assert "exploding" in warnings(rows(1e3, 1.0))[0]
    assert "exploding" in warnings(rows(float("nan"), 1.0))[0]
    assert "collapsed" in warnings(rows(1.0, 1.0, var=1e-9))[0]
    assert "saturated" in warnings(rows(1.0, 1.0, saturated=0.9))[0]
    assert warnings(rows(0.5, 1.0)) == []


def test_deep_plain_sigmoid_warns_of_vanishing_gradients_and_selu_does_not(quakes):
    cfg = train.TrainConfig(epochs=1, diagnostics=True, batch_size=128)
    deep = dict(depth=12, width=32)
    sig = train.fit(quakes, cfg, net=dict(activation="sigmoid", **deep))
    assert any("vanishing" in w for w in sig.warnings)
    selu = train.fit(quakes, cfg, net=dict(arch="selu", **deep))
    assert not any("vanishing" in w for w in selu.warnings)
    first = [r["grad_norm"] for r in sig.diagnostics if r["epoch"] == 0]
    assert first[0] < 1e-3 * first[-1]
    assert len(sig.diagnostics) == 2 * 13  # epochs 0 and 1, 12 hidden layers and the output


def test_cli_writes_diagnostics_csv(runner, quakes_csv, tmp_path):
    result = runner.invoke(cli, ["train", str(quakes_csv), "--depth", "4", "--epochs", "2",
                                 "--diagnostics", "-o", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "r" / "diagnostics.csv")
    assert list(frame.epoch.unique()) == [0, 1, 2]
    assert {"layer", "grad_norm", "act_mean", "act_var"} <= set(frame.columns)
    assert "Diagnostics" in result.output


def test_divergence_stops_training_with_advice(quakes, caplog):
    with pytest.raises(FcnnError, match="lower learning rate"):
        train.fit(quakes, train.TrainConfig(epochs=5, lr=1e8, optimizer="sgd", schedule="none"))


def test_weight_decay_reaches_the_optimizer(quakes, monkeypatch):
    seen = {}
    original = torch.optim.Adam.__init__

    def spy(self, params, **kwargs):
        seen.update(kwargs)
        original(self, params, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "__init__", spy)
    train.fit(quakes, train.TrainConfig(epochs=1, weight_decay=0.01))
    assert seen["weight_decay"] == 0.01
