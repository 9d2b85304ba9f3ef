"""The three cures for deep networks, checked against the mathematics."""

import numpy as np
import pytest
import torch
from torch import nn

from fcnn_cli.engine.diagnostics import Probe
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.network.model import MLP, NetConfig, ResidualBlock


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_residual_block_matches_hand_computation_with_identity_shortcut():
    net = MLP(NetConfig(n_in=2, n_out=1, depth=2, width=2, arch="resnet", activation="sigmoid"))
    block = net.body[0]
    assert isinstance(block, ResidualBlock) and isinstance(block.shortcut, nn.Identity)
    w1, b1 = np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([0.1, -0.2])
    w2, b2 = np.array([[1.5, 0.0], [-0.5, 1.0]]), np.array([0.3, 0.0])
    with torch.no_grad():
        for lin, w, b in ((block.linear1, w1, b1), (block.linear2, w2, b2)):
            lin.weight.copy_(torch.tensor(w))
            lin.bias.copy_(torch.tensor(b))
    x = np.array([[1.0, 2.0], [-3.0, 0.5]])
    expected = sigmoid(sigmoid(x @ w1.T + b1) @ w2.T + b2 + x)
    got = net.body(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_projector_replaces_identity_where_widths_differ():
    net = MLP(NetConfig(n_in=3, n_out=1, depth=4, width=2, arch="resnet", activation="tanh"))
    first, second = net.body
    assert isinstance(first.shortcut, nn.Linear) and first.shortcut.bias is None
    assert tuple(first.shortcut.weight.shape) == (2, 3)
    assert isinstance(second.shortcut, nn.Identity)
    x = torch.randn(5, 3)
    with torch.no_grad():
        h = torch.tanh(first.linear1(x))
        expected = torch.tanh(first.linear2(h) + x @ first.shortcut.weight.T)
        torch.testing.assert_close(first(x), expected)


def test_shortcuts_add_no_parameters_where_widths_match():
    for depth in (2, 4, 20):
        plain = MLP(NetConfig(n_in=16, n_out=2, depth=depth, width=16))
        resnet = MLP(NetConfig(n_in=16, n_out=2, depth=depth, width=16, arch="resnet"))
        assert n_params(plain) == n_params(resnet)
    # where the input is narrower, only the projector's n_in × width weights are added
    plain = MLP(NetConfig(n_in=8, n_out=2, depth=4, width=16))
    resnet = MLP(NetConfig(n_in=8, n_out=2, depth=4, width=16, arch="resnet"))
    assert n_params(resnet) - n_params(plain) == 8 * 16


def test_odd_resnet_depth_starts_with_a_plain_layer():
    net = MLP(NetConfig(n_in=8, n_out=2, depth=5, width=16, arch="resnet"))
    assert [type(b).__name__ for b in net.body] == ["Dense", "ResidualBlock", "ResidualBlock"]
    assert len(net.layers()) == 6  # 5 hidden layers and the output


def test_batchnorm_normalises_over_the_batch_in_training():
    torch.manual_seed(0)
    net = MLP(NetConfig(n_in=4, n_out=1, depth=1, width=8, arch="batchnorm"))
    linear, norm = net.body[0][0], net.body[0][1]
    assert isinstance(norm, nn.BatchNorm1d)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 8))
        norm.bias.copy_(torch.linspace(-1.0, 1.0, 8))
    x = torch.randn(64, 4) * 3 + 1
    h = linear(x)
    mu, var = h.mean(0), h.var(0, unbiased=False)
    expected = norm.weight * (h - mu) / torch.sqrt(norm.eps + var) + norm.bias
    net.train()
    torch.testing.assert_close(norm(h), expected, rtol=1e-5, atol=1e-5)


def test_batchnorm_uses_running_statistics_in_evaluation():
    torch.manual_seed(0)
    net = MLP(NetConfig(n_in=4, n_out=2, depth=3, width=8, arch="batchnorm"))
    net.train()
    for _ in range(20):
        net(torch.randn(32, 4) * 2 + 3)  # moves the running statistics
    net.eval()
    batch = torch.randn(100, 4) * 2 + 3
    with torch.no_grad():
        together = net(batch)
        alone = torch.cat([net(batch[i:i + 1]) for i in range(len(batch))])
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-5)
    net.train()
    with torch.no_grad():
        assert not torch.allclose(net(batch), together, atol=1e-3)


def test_resnet_with_batchnorm_normalises_inside_blocks():
    net = MLP(NetConfig(n_in=4, n_out=1, depth=4, width=8, arch="resnet", batchnorm=True))
    assert all(isinstance(b.norm1, nn.BatchNorm1d) and isinstance(b.norm2, nn.BatchNorm1d)
               for b in net.body)


def test_selu_constants_and_network():
    lam, alpha = 1.0507009873554805, 1.6732632423543772
    selu = nn.SELU()
    assert selu(torch.tensor(1.0)).item() == pytest.approx(lam)
    assert selu(torch.tensor(-50.0)).item() == pytest.approx(-lam * alpha)
    assert selu(torch.tensor(-1.0)).item() == pytest.approx(lam * alpha * (np.exp(-1) - 1))
    cfg = NetConfig(n_in=4, n_out=1, arch="selu", dropout=0.1)
    assert cfg.activation == "selu" and cfg.init == "lecun"
    net = MLP(cfg)
    assert any(isinstance(m, nn.AlphaDropout) for m in net.modules())
    assert not any(type(m) is nn.Dropout for m in net.modules())


@pytest.mark.parametrize("arch", ["plain", "resnet", "batchnorm"])
def test_dropout_for_every_architecture(arch):
    net = MLP(NetConfig(n_in=4, n_out=1, depth=4, width=8, arch=arch, dropout=0.2))
    assert any(type(m) is nn.Dropout and m.p == 0.2 for m in net.modules())


@pytest.mark.parametrize("kwargs,match", [
    ({"arch": "selu", "batchnorm": True}, "batch normalisation"),
    ({"arch": "selu", "activation": "relu"}, "leave out activation='relu'"),
])
def test_meaningless_combinations_are_refused(kwargs, match):
    with pytest.raises(FcnnError, match=match):
        NetConfig(n_in=2, n_out=1, **kwargs)


def layer_moments(arch, activation=None, depth=30, width=256):
    torch.manual_seed(0)
    net = MLP(NetConfig(n_in=width, n_out=1, depth=depth, width=width, arch=arch,
                        activation=activation))
    x = torch.randn(1024, width)
    rows = Probe(net, x, torch.zeros(1024, 1), lambda p, t: ((p - t) ** 2).mean()).measure(0)
    return [(r["act_mean"], r["act_var"]) for r in rows if r["layer"] != "output"]


def test_selu_keeps_the_fixed_point_layer_after_layer():
    for mean, var in layer_moments("selu"):
        assert abs(mean) < 0.1 and 0.8 < var < 1.2


def test_plain_sigmoid_activations_drift_away_from_it():
    moments = layer_moments("plain", "sigmoid")
    assert all(abs(mean - 0.5) < 0.1 for mean, _ in moments[5:])  # the mean drifts to 1/2
    assert all(var < 0.05 for _, var in moments[5:])  # the variance shrinks far below 1
