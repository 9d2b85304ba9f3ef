import math

import pytest
import torch

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.network.model import MLP, NetConfig


def linears(net):
    return [m for m in net.modules() if isinstance(m, torch.nn.Linear)]


def test_shapes_and_layer_count():
    net = MLP(NetConfig(n_in=8, n_out=2, depth=3, width=64))
    shapes = [tuple(m.weight.shape) for m in linears(net)]
    assert shapes == [(64, 8), (64, 64), (64, 64), (2, 64)]
    assert net(torch.zeros(5, 8)).shape == (5, 2)


def test_glorot_normal_weights_and_zero_biases():
    torch.manual_seed(0)
    net = MLP(NetConfig(n_in=300, n_out=100, depth=1, width=500))
    first, head = linears(net)
    assert first.weight.std().item() == pytest.approx(math.sqrt(2 / (300 + 500)), rel=0.02)
    assert head.weight.std().item() == pytest.approx(math.sqrt(2 / (500 + 100)), rel=0.03)
    assert abs(first.weight.mean().item()) < 0.002
    assert torch.count_nonzero(first.bias) == 0 and torch.count_nonzero(head.bias) == 0


@pytest.mark.parametrize("init,expected", [("he", lambda i, o: math.sqrt(2 / i)),
                                           ("lecun", lambda i, o: math.sqrt(1 / i))])
def test_other_inits(init, expected):
    torch.manual_seed(0)
    first = linears(MLP(NetConfig(n_in=400, n_out=1, depth=1, width=600, init=init)))[0]
    assert first.weight.std().item() == pytest.approx(expected(400, 600), rel=0.02)


def test_default_activation_is_silu():
    net = MLP(NetConfig(n_in=2, n_out=1))
    assert any(isinstance(m, torch.nn.SiLU) for m in net.modules())


@pytest.mark.parametrize("kwargs,match", [
    ({"depth": 0}, "^depth must"), ({"width": 0}, "^width must"),
    ({"activation": "swish"}, "activation"), ({"init": "xavier"}, "init"),
    ({"dropout": 1.0}, "^dropout must"), ({"arch": "cnn"}, "arch"),
])
def test_config_is_validated(kwargs, match):
    with pytest.raises(FcnnError, match=match):
        NetConfig(n_in=2, n_out=1, **kwargs)


def test_config_round_trips_through_a_dict():
    cfg = NetConfig(n_in=3, n_out=2, depth=4, width=16, activation="tanh")
    assert NetConfig.from_dict(cfg.to_dict()) == cfg


def test_every_configurable_activation_is_built_and_has_a_fast_backward():
    from fcnn_cli.core import config
    from fcnn_cli.engine import fastpath
    from fcnn_cli.network import model

    assert set(model.ACTIVATIONS) == set(config.ACTIVATIONS) == set(fastpath.ACTIVATIONS)
