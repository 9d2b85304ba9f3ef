"""Embeddings of numerical features (network/embedding.py): their values against a direct
computation from their parameters, the checkpoint, ensembles, and a table where they help."""


import numpy as np
import pandas as pd
import pytest
import torch

from forgery import in_meta, resigned, set_item
from members import assert_step_equals_each_alone

from fcnn_cli.commands import cli
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import Table
from fcnn_cli.engine import fastpath, funcstep, state, train
from fcnn_cli.network import checkpoint, embedding, modelinfo, tasks
from fcnn_cli.network.model import MLP, NetConfig


def numpy_embedding(cfg, net, x):
    """The first layer's input, from the embedding's parameters, in float64 numpy."""
    p = {name: t.detach().double().numpy() for name, t in net.embed.named_parameters()}
    if cfg.embed == "periodic":
        angles = 2 * np.pi * p["0.weight"][None] * x[:, :, None]
        periodic = np.concatenate([np.cos(angles), np.sin(angles)], axis=2)
        h = np.stack([periodic[:, f] @ p["1.weight"][f] + p["1.bias"][f]
                      for f in range(cfg.n_in)], axis=1)
    else:
        h = x[:, :, None] * p["0.weight"][None] + p["0.bias"][None]
    return np.maximum(h, 0.0).reshape(len(x), -1)  # feature by feature


@pytest.mark.parametrize("embed", ["periodic", "linear"])
def test_the_embedding_is_its_direct_computation(embed):
    torch.manual_seed(0)
    periodic = {"embed_frequencies": 6, "embed_sigma": 0.5} if embed == "periodic" else {}
    cfg = NetConfig(n_in=3, n_out=2, depth=1, width=5, embed=embed, embed_dim=4, **periodic)
    net = MLP(cfg)
    x = np.random.default_rng(1).normal(size=(7, 3))
    h = numpy_embedding(cfg, net, x)
    assert h.shape == (7, 3 * 4) and net.body[0][0].in_features == 12
    dense, head = net.body[0][0], net.head
    hidden = h @ dense.weight.detach().double().numpy().T + dense.bias.detach().double().numpy()
    hidden = hidden / (1 + np.exp(-hidden))  # silu
    want = hidden @ head.weight.detach().double().numpy().T + head.bias.detach().double().numpy()
    got = net(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_frequencies_start_within_three_sigma_and_near_it():
    torch.manual_seed(0)
    weight = embedding.Periodic(50, 48, 0.25).weight.detach()
    assert weight.abs().max() <= 0.75 and weight.std().item() == pytest.approx(0.25, rel=0.05)


def test_the_embedding_defaults_and_options_are_checked():
    assert NetConfig(n_in=1, n_out=1, embed="periodic").embed_dim == 24
    assert NetConfig(n_in=1, n_out=1, embed="linear").embed_dim == 32
    assert NetConfig(n_in=1, n_out=1).embed_dim is None
    periodic = NetConfig(n_in=1, n_out=1, embed="periodic")
    assert (periodic.embed_frequencies, periodic.embed_sigma) == (48, 0.01)
    for embed in ("none", "linear"):  # the options of periodic alone are left unset
        cfg = NetConfig(n_in=1, n_out=1, embed=embed)
        assert (cfg.embed_frequencies, cfg.embed_sigma) == (None, None)
    for options, named in [({"embed": "fourier"}, "embed"),
                           ({"embed": "periodic", "embed_dim": 0}, "embed_dim"),
                           ({"embed": "periodic", "embed_frequencies": 0}, "embed_frequencies"),
                           ({"embed": "periodic", "embed_sigma": 0.0}, "embed_sigma"),
                           ({"embed": "periodic", "embed_sigma": float("nan")}, "embed_sigma")]:
        with pytest.raises(FcnnError, match=named):
            NetConfig(n_in=1, n_out=1, **options)


@pytest.mark.parametrize("options, said", [
    ({"embed_dim": 8}, "embed_dim applies to an embedding: leave it out with embed='none'"),
    ({"embed_frequencies": 48}, "embed_frequencies applies to embed='periodic' alone: leave "
     "it out with embed='none'"),
    ({"embed": "linear", "embed_frequencies": 48}, "embed_frequencies applies to "
     "embed='periodic' alone: leave it out with embed='linear'"),
    ({"embed": "linear", "embed_sigma": 0.01}, "embed_sigma applies to embed='periodic' alone: "
     "leave it out with embed='linear'"),
])
def test_an_embedding_option_that_does_not_apply_is_refused(options, said):
    """Even at its default's value: given is given."""
    with pytest.raises(FcnnError) as refused:
        NetConfig(n_in=1, n_out=1, **options)
    assert str(refused.value) == said
    assert refused.value.options == (next(k for k in options if k != "embed"), "embed")


@pytest.mark.parametrize("flags, said", [
    (["--embed-dim", "8"], "--embed-dim applies to an embedding: leave it out with --embed none"),
    (["--embed", "linear", "--embed-sigma", "0.5"],
     "--embed-sigma applies to --embed periodic alone: leave it out with --embed linear"),
])
def test_the_command_line_refuses_an_embedding_option_that_does_not_apply(
        runner, quakes_csv, tmp_path, flags, said):
    result = runner.invoke(cli, ["train", str(quakes_csv), "-o", str(tmp_path / "run"),
                                 "--epochs", "1", *flags])
    assert result.exit_code != 0 and said in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_an_embedded_network_takes_autograd_alone_or_in_an_ensemble():
    """The autograd-free step does not write out the embedding."""
    cfg = NetConfig(n_in=3, n_out=1, depth=2, width=4, embed="periodic", embed_dim=2)
    task = tasks.Regression(["a"], None)
    assert not fastpath.applies(MLP(cfg), task, train.TrainConfig())
    step = funcstep.ensemble_step([MLP(cfg), MLP(cfg)], task, train.TrainConfig(ensemble=2))
    assert isinstance(step, funcstep.FuncStep)


def test_the_ensemble_step_gives_each_embedded_member_its_own_update():
    """vmap over the members' embeddings: each member's loss, gradients and Adam step equal
    autograd's and torch.optim's for that member alone."""
    torch.manual_seed(0)
    task = tasks.Regression(["a", "b"], None)
    cfg = NetConfig(n_in=4, n_out=2, depth=2, width=6, embed="periodic", embed_dim=3,
                    embed_frequencies=5, embed_sigma=0.3)
    assert_step_equals_each_alone([MLP(cfg) for _ in range(3)], task, torch.randn(3, 9, 4),
                                  torch.randn(3, 9, 2))


@pytest.fixture(scope="module")
def embedded(quakes):
    return train.fit(quakes, train.TrainConfig(epochs=2, batch_size=64, seed=4, ensemble=2),
                     net={"width": 16, "depth": 2, "embed": "periodic", "embed_dim": 4,
                          "embed_frequencies": 8})


def test_an_ensemble_of_embedded_networks_trains_and_is_saved(embedded, quakes, tmp_path,
                                                               runner):
    """Its members differ, and the model read back predicts what the one in memory does."""
    first, second = embedded.predictor.net.members
    assert not torch.equal(first.embed[0].weight, second.embed[0].weight)
    assert embedded.metrics["test"]["overall"]["r2"] > 0.0
    path = tmp_path / "m.pt"
    checkpoint.save(embedded.predictor, path)
    loaded = checkpoint.load(path)
    assert loaded.net.config == embedded.predictor.net.config
    pd.testing.assert_frame_equal(loaded.predict(quakes), embedded.predictor.predict(quakes))
    info = modelinfo.describe(path)
    assert info["network"]["embed"] == "periodic" and info["network"]["embed_sigma"] == 0.01
    assert info["network"]["layers"] == "8 → periodic 8×4 → 16 → 16 → 2"
    shown = runner.invoke(cli, ["info", str(path)], env={"COLUMNS": "200"})
    assert "periodic, 4 values per feature, 8 frequencies (σ 0.01 at start)" in shown.stdout


@pytest.mark.parametrize("key, value, said", [
    ("embed_dim", 5, "has shape"),  # the tensors hold 4
    ("embed_frequencies", 9, "has shape"),
    ("embed", "linear", "embed_frequencies applies to embed='periodic' alone"),
    ("embed", "none", "embed_dim applies to an embedding"),
    ("embed", "fourier", "unknown embedding"),
    ("embed_sigma", "0.01", "embed_sigma must be a number"),
    ("embed_sigma", -1.0, "embed_sigma must be above 0"),
])
def test_a_checkpoint_whose_embedding_is_forged_is_refused(embedded, tmp_path, key, value, said):
    path = tmp_path / "m.pt"
    checkpoint.save(embedded.predictor, path)
    resigned(path, in_meta(set_item("net", key, value=value)))
    with pytest.raises(FcnnError, match=f"corrupted fcnn checkpoint: .*{said}"):
        checkpoint.load(path)


def oscillating(n, seed):
    """y = sin(8x), x uniform in [-1, 1], with a second feature of noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2))
    return Table(pd.DataFrame({"x": x[:, 0], "z": x[:, 1], "y": np.sin(8 * x[:, 0])}),
                 name="oscillating")


def test_periodic_embeddings_fit_a_high_frequency_effect_better():
    """Same epochs, same table: the plain network smooths the oscillation out (an RMSE of about
    0.7, the spread of y), the periodic embedding with σ = 1 fits it (about 0.01)."""
    table = oscillating(2000, seed=0)
    config = train.TrainConfig(epochs=15, batch_size=64, seed=0)
    rmse = {}
    for embed, net in [("none", {}), ("periodic", {"embed": "periodic", "embed_sigma": 1.0})]:
        result = train.fit(table, config, net={"width": 32, "depth": 2, **net}, targets=["y"])
        rmse[embed] = result.metrics["test"]["overall"]["rmse"]
    assert rmse["periodic"] < 0.1 * rmse["none"], rmse


def test_training_memory_counts_the_embedding():
    """Its weights as every weight, and what a row keeps: for periodic embeddings of 3 features
    with k = 5 and d = 2, per feature the angles, cos, sin, the two joined (5k) and the linear
    map and its ReLU (2d)."""
    plain = NetConfig(n_in=3, n_out=1, depth=1, width=4)
    embedded = NetConfig(n_in=3, n_out=1, depth=1, width=4, embed="periodic", embed_dim=2,
                         embed_frequencies=5)
    config = train.TrainConfig(batch_size=10)
    (before, count_before), (after, count) = (state.training_bytes(c, config)
                                              for c in (plain, embedded))
    weights = 3 * 5 + 3 * 10 * 2 + 3 * 2 + (6 - 3) * 4  # frequencies, maps, first layer's more
    assert count == count_before + weights
    saved = 1 + 2 + 1 + 1  # weights, Adam's moments, average, best
    assert after - before == 4 * (weights * (1 + 3 * saved) + 10 * 3 * (5 * 5 + 2 * 2))
