"""Ensembles trained in one vectorised pass: members equal single runs, the predictive
variance, checkpoints, predict and evaluate."""

import dataclasses
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

from forgery import in_meta, resigned
from fcnn_cli.network import checkpoint, tasks
from fcnn_cli.engine import ensemble, fastpath, prepare, train
from fcnn_cli.results import statefile
from fcnn_cli.data import simulate
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.network.model import MLP, NetConfig
from fcnn_cli.engine.prepare import split_indices
from fcnn_cli.data.preprocess import Scaler

NET = {"depth": 2, "width": 12}


@pytest.fixture(scope="module")
def splits():
    """Training, validation and test tables of their own: the split does not depend on the
    seed, so that a member can be compared with a single run of its seed."""
    return [simulate.earthquakes(n=n, seed=s) for n, s in ((256, 1), (64, 2), (64, 3))]


def _fit(splits, net=None, **options):
    data, val, test = splits
    if "order_of" in options:  # the training rows in the order a run with that seed has them
        data = _in_order_of(data, options.pop("order_of"), options["seed"])
    config = train.TrainConfig(**{"epochs": 3, "batch_size": 32, "threads": 1, **options})
    return train.fit(data, config, net={**NET, **(net or {})}, val_table=val, test_table=test)


def _in_order_of(table, seed, own_seed):
    """``table`` reordered so that a run with ``own_seed`` (given separate validation and test
    tables) trains on its rows in the order a run with ``seed`` does: a single run's split,
    even with nothing held out, shuffles the rows by its seed."""
    n = len(table.frame)
    shared = split_indices(n, 0.0, 0.0, seed)[0]
    own = split_indices(n, 0.0, 0.0, own_seed)[0]
    order = shared[np.argsort(own)]
    return dataclasses.replace(table, frame=table.frame.iloc[order].reset_index(drop=True))


@pytest.fixture(scope="module")
def gaussian_ensemble(splits):
    return _fit(splits, seed=5, ensemble=3, loss="gaussian")


@pytest.mark.parametrize("loss", ["mse", "gaussian"])
def test_each_member_equals_a_single_run_with_its_seed(splits, gaussian_ensemble, loss):
    """Member k: the initial weights and epoch orders of seed 5 + k, on the training rows of
    seed 5 (all members share the split)."""
    result = gaussian_ensemble if loss == "gaussian" else _fit(splits, seed=5, ensemble=3)
    members = result.predictor.net.members
    assert len(members) == 3
    for k, member in enumerate(members):
        single = _fit(splits, seed=ensemble.member_seed(5, k), loss=loss, order_of=5)
        assert result.predictor.info["best_epochs"][k] == single.predictor.info["best_epoch"]
        for name, value in single.predictor.net.state_dict().items():
            torch.testing.assert_close(member.state_dict()[name], value, rtol=1e-4, atol=1e-5)
    first = result.predictor.net.members[0].state_dict()
    second = result.predictor.net.members[1].state_dict()
    assert not torch.equal(first["head.weight"], second["head.weight"])


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_member_axis_step_gives_each_member_its_own_gradients(device):
    torch.manual_seed(0)
    task = tasks.Regression(["a", "b"], None, output="gaussian")
    config = NetConfig(n_in=5, n_out=4, depth=4, width=7, arch="resnet")
    nets = [MLP(config).double().to(device) for _ in range(3)]
    for net in nets:
        for p in net.parameters():
            torch.nn.init.normal_(p, 0.0, 0.5)
    x, y = (torch.randn(3, 9, n, dtype=torch.float64).to(device) for n in (5, 2))
    expected = [torch.autograd.grad(task.loss(net(x[k]), y[k]), list(net.parameters()))
                for k, net in enumerate(nets)]
    losses = [task.loss(net(x[k]), y[k]).item() for k, net in enumerate(nets)]
    step = fastpath.FastStep(nets, task)
    loss = step.gradients(x, y)
    np.testing.assert_allclose(loss.cpu().numpy(), losses, rtol=1e-12)
    for net, grads in zip(nets, expected):
        for p, g in zip(net.parameters(), grads):
            torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-12)


def test_predictive_variance_is_mean_variance_plus_variance_of_means():
    task = tasks.Regression(["a"], Scaler("standard", [10.0], [2.0]), output="gaussian")
    means = np.array([[[0.0]], [[1.0]], [[3.0]]])  # 3 members, 1 row, 1 label
    raw = np.array([[[0.5]], [[-1.0]], [[2.0]]])
    variances = np.log1p(np.exp(raw)) + tasks.MIN_VARIANCE
    mean, std = task.predictive(np.concatenate([means, raw], axis=2))
    by_hand = variances.mean() + np.mean((means - means.mean()) ** 2)
    assert mean[0, 0] == pytest.approx(10.0 + 2.0 * 4.0 / 3.0)
    assert std[0, 0] == pytest.approx(2.0 * np.sqrt(by_hand))
    plain = tasks.Regression(["a"], Scaler("standard", [0.0], [1.0]))
    _, spread = plain.predictive(means)
    assert spread[0, 0] == pytest.approx(np.sqrt(np.var([0.0, 1.0, 3.0]) + tasks.MIN_VARIANCE))
    assert plain.predictive(means[0])[1] is None  # one network without a variance head
    # Members that agree exactly (bf16's coarse outputs) keep the floor: a finite NLL.
    _, agreed = plain.predictive(np.zeros((3, 1, 1)))
    assert agreed[0, 0] == pytest.approx(np.sqrt(tasks.MIN_VARIANCE))


def test_checkpoint_round_trips_and_predicts_mean_and_std(tmp_path, gaussian_ensemble, splits):
    path = tmp_path / "ensemble.pt"
    checkpoint.save(gaussian_ensemble.predictor, path)
    loaded = checkpoint.load(path)
    assert loaded.members == 3 and loaded.task.gaussian
    table = splits[2]
    x = loaded.feature_matrix(table)
    out = loaded.outputs(x)
    assert out.shape == (3, len(x), 4)
    np.testing.assert_array_equal(out, gaussian_ensemble.predictor.outputs(x))
    frame = loaded.predict(table, members=True)
    mean, std = loaded.task.predictive(out)
    np.testing.assert_allclose(frame["x_pred"], mean[:, 0])
    np.testing.assert_allclose(frame["y_std"], std[:, 1])
    member_mean, _ = loaded.task.predictive(out[2])
    np.testing.assert_allclose(frame["x_pred_m2"], member_mean[:, 0])
    assert list(frame.columns[:4]) == ["x_pred", "x_std", "y_pred", "y_std"]
    assert "x_std_m0" in frame.columns


TAMPERING = {
    "more_members_claimed": (in_meta(lambda m: m.update(ensemble=4)), "no tensor 'members.3."),
    "fewer_members_claimed": (in_meta(lambda m: m.update(ensemble=2)),
                              "tensor 'members.2."),
    "one_member": (in_meta(lambda m: m.update(ensemble=1)), "an ensemble of 1 members"),
    "members_as_text": (in_meta(lambda m: m.update(ensemble="3")), "an ensemble of '3' members"),
    "not_an_ensemble": (in_meta(lambda m: m.pop("ensemble")), "no tensor 'body.0.0."),
    "mse_claimed": (in_meta(lambda m: m["task"].pop("output")),
                    "2 regression target(s) for a network of 4 output(s)"),
    "member_dropped": (lambda p: [p["state"].pop(k) for k in list(p["state"])
                                  if k.startswith("members.1.")], "no tensor 'members.1."),
}


@pytest.mark.parametrize("name", sorted(TAMPERING))
def test_tampered_ensemble_checkpoints_are_refused(tmp_path, gaussian_ensemble, name):
    path = tmp_path / "ensemble.pt"
    checkpoint.save(gaussian_ensemble.predictor, path)
    edit, expected = TAMPERING[name]
    resigned(path, edit)
    with pytest.raises(FcnnError, match="corrupted fcnn checkpoint") as caught:
        checkpoint.load(path)
    assert expected in str(caught.value)


def test_unsigned_edit_is_refused(tmp_path, gaussian_ensemble):
    path = tmp_path / "ensemble.pt"
    checkpoint.save(gaussian_ensemble.predictor, path)
    payload = torch.load(path, weights_only=True)
    payload["state"]["members.1.head.bias"] += 1.0
    torch.save(payload, path)
    with pytest.raises(FcnnError, match="SHA-256"):
        checkpoint.load(path)


def test_evaluate_reports_uncertainties(gaussian_ensemble, splits):
    report = gaussian_ensemble.predictor.evaluate(splits[2])
    u = report["uncertainty"]
    assert set(u) >= {"nll", "crps", "mean_sigma", "coverage_1sigma", "coverage_2sigma",
                      "calibration"}
    assert 0 <= u["coverage_1sigma"] <= u["coverage_2sigma"] <= 1
    levels = [row["observed"] for row in u["calibration"]]
    assert levels == sorted(levels)
    assert "uncertainty" in gaussian_ensemble.metrics["test"]


def test_classifier_ensemble_gives_mean_probabilities_and_entropy():
    galaxies = simulate_galaxies()
    result = train.fit(galaxies, train.TrainConfig(epochs=1, ensemble=2, threads=1),
                       net=NET)
    out = result.predictor.outputs(result.predictor.feature_matrix(galaxies))
    frame = result.predictor.predict(galaxies, members=True)
    proba = np.mean([result.predictor.task.proba(o) for o in out], axis=0)
    columns = [f"p_{c}" for c in result.predictor.task.classes]
    np.testing.assert_allclose(frame[columns].to_numpy(), proba)
    np.testing.assert_allclose(frame["rotation_entropy"],
                               -(proba * np.log(proba)).sum(axis=1))
    assert {"rotation_pred_m0", "rotation_pred_m1"} <= set(frame.columns)
    for k, member in enumerate(out):  # each member's own probabilities, and its class by them
        own = frame[[f"p_{c}_m{k}" for c in result.predictor.task.classes]].to_numpy()
        np.testing.assert_allclose(own, result.predictor.task.proba(member))
        classes = np.array(result.predictor.task.classes)
        assert (frame[f"rotation_pred_m{k}"] == classes[own.argmax(axis=1)]).all()
    assert "p_left_m0" not in result.predictor.predict(galaxies).columns
    assert 0 <= result.metrics["test"]["ece"] <= 1


def simulate_galaxies():
    from fcnn_cli.data import simulate as sim

    return sim.galaxies(n=200, size=8, seed=1)


@pytest.mark.parametrize("options, message", [
    ({"diagnostics": True}, "diagnostics"),
    ({"stream": True}, "streamed"),
])
def test_options_an_ensemble_does_not_take_are_refused_before_any_data(options, message):
    with pytest.raises(ensemble.Unsupported, match=f"ensemble=2: the members .*{message}"):
        train.TrainConfig(ensemble=2, **options)
    train.TrainConfig(ensemble=1, **options)  # a single network takes them


def test_autograd_members_refuse_the_plateau_schedule_before_training(splits, monkeypatch):
    """The autograd step takes the optimiser's one learning rate: no member's own plateau."""
    monkeypatch.setattr(ensemble._Run, "epochs", lambda *args: pytest.fail("trained"))
    with pytest.raises(ensemble.Unsupported, match="ensemble=2: members trained through "
                                                   "autograd .* not the plateau schedule"):
        _fit(splits, {"arch": "batchnorm"}, seed=5, ensemble=2, schedule="plateau")
    train.TrainConfig(ensemble=2, schedule="plateau")  # the options alone are sound


def test_a_run_in_several_processes_refuses_an_ensemble():
    class World:
        distributed = True

    with pytest.raises(ensemble.Unsupported, match="train in one process"):
        ensemble.refuse_unsupported(train.TrainConfig(ensemble=2), World(), False)


def test_gaussian_loss_is_for_regression_only():
    with pytest.raises(FcnnError, match="loss='gaussian' is for regression"):
        train.fit(simulate_galaxies(), train.TrainConfig(epochs=1, loss="gaussian"))


def test_each_member_keeps_its_best_epoch_and_patience_waits_for_all(splits, monkeypatch):
    """Validation losses scripted per member: the first is best in epoch 1, the second in
    epoch 3; with patience 2, training ends after epoch 5, when neither has improved for 2."""
    scripted = iter([1.0, 1.0, 2.0, 0.9, 2.0, 0.8] + [2.0, 2.0] * 7)
    monkeypatch.setattr(tasks.Regression, "loss", lambda self, out, y: next(scripted))
    result = _fit(splits, seed=0, ensemble=2, patience=2, epochs=10)
    assert len(result.history) == 5 and result.stopped.startswith("early stop after epoch 5")
    assert result.predictor.info["best_epochs"] == [1, 3]
    assert result.history[2]["val_loss"] == pytest.approx((2.0 + 0.8) / 2)


class _StopAt:
    """A stop that is asked for at the given step (counted over the whole run)."""

    def __init__(self, step):
        self.step, self.asked = step, 0

    def polling(self):
        import contextlib

        return contextlib.nullcontext()

    def requested(self):
        self.asked += 1
        return self.asked >= self.step


def test_an_ensemble_stopped_before_it_kept_anything_is_interrupted(splits):
    data, val, test = splits
    config = train.TrainConfig(epochs=3, batch_size=32, threads=1, ensemble=2)
    with pytest.raises(KeyboardInterrupt):  # as a single run: nothing to save
        train.fit(data, config, net=NET, val_table=val, test_table=test, stop=_StopAt(3))
    later = _StopAt(-(-len(data.frame) // 32) + 5)  # a few steps into the second epoch
    result = train.fit(data, config, net=NET, val_table=val, test_table=test, stop=later)
    assert result.stopped == "interrupted after epoch 1"  # epoch 1's weights kept
    assert result.resume_state["epoch"] == 1 and result.predictor.info["best_epochs"] == [1, 1]


def _interrupt_after(epoch):
    def on_epoch(row):
        if row["epoch"] == epoch + 1:  # the interrupt comes in the next epoch: back to this
            raise KeyboardInterrupt
    return on_epoch


def _assert_same_run(resumed, whole):
    """Bit for bit: every member's weights, the history but its seconds, the metrics."""
    for a, b in zip(whole.predictor.net.members, resumed.predictor.net.members, strict=True):
        a, b = a.state_dict(), b.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in resumed.history] == \
        [{k: v for k, v in row.items() if k != "seconds"} for row in whole.history]
    assert resumed.predictor.info["best_epochs"] == whole.predictor.info["best_epochs"]
    assert resumed.metrics == whole.metrics and resumed.members == whole.members


@pytest.mark.parametrize("options, layers", [
    ({}, {}), ({"schedule": "none", "ema": 0.0}, {}),
    ({"optimizer": "sgd", "patience": 1, "lr": 0.05}, {}),
    ({}, {"batchnorm": True, "arch": "resnet"}),  # the autograd step, with stacked statistics
], ids=["cosine-average", "plain", "sgd-patience", "batchnorm-autograd"])
def test_resume_after_an_interrupt_equals_an_uninterrupted_run(splits, options, layers):
    data, val, test = splits
    config = train.TrainConfig(epochs=4, batch_size=32, threads=1, ensemble=3, **options)
    # dropout draws from torch's generator, which is saved too
    net = {**NET, "dropout": 0.1, **layers}

    def fit(**more):
        return train.fit(data, config, net=net, val_table=val, test_table=test, **more)
    whole = fit()
    cut = fit(on_epoch=_interrupt_after(2))
    assert cut.interrupted and cut.stopped == "interrupted after epoch 2"
    assert cut.resume_state["epoch"] == 2 and len(cut.history) == 2
    assert cut.resume_state["ensemble"] == 3
    _assert_same_run(fit(resume=cut.resume_state), whole)


@pytest.fixture(scope="module")
def plateau_splits():
    """A validation table whose labels are shuffled: its loss soon stops improving, at
    different epochs for different seeds, so that their plateaus halve their rates apart."""
    data, val, test = [simulate.earthquakes(n=n, seed=s) for n, s in ((128, 1), (64, 2), (64, 3))]
    frame = val.frame.copy()
    frame[["x", "y"]] = frame[["x", "y"]].to_numpy()[
        np.random.default_rng(0).permutation(len(frame))]
    return [data, dataclasses.replace(val, frame=frame), test]


PLATEAU = {"schedule": "plateau", "lr": 0.003, "ema": 0.0, "epochs": 12}


def test_each_member_follows_its_own_plateau_as_a_single_run(plateau_splits):
    """Member k is the single run of seed 5 + k, its learning rate halved when its own
    validation loss stalls; the history's rate and losses are the members' means (the best
    epochs come before any halving here: the losses show the epochs after)."""
    result = _fit(plateau_splits, seed=5, ensemble=3, **PLATEAU)
    singles = [_fit(plateau_splits, seed=ensemble.member_seed(5, k), order_of=5, **PLATEAU)
               for k in range(3)]
    rates = np.array([[row["lr"] for row in single.history] for single in singles])
    assert rates.min() < PLATEAU["lr"]  # the plateau did halve some rates
    assert any(len(set(epoch)) > 1 for epoch in rates.T)  # the members' rates part
    np.testing.assert_allclose([row["lr"] for row in result.history], rates.mean(axis=0))
    for name in ("train_loss", "val_loss"):  # epoch by epoch, after the rates part too
        np.testing.assert_allclose([row[name] for row in result.history],
                                   np.mean([[row[name] for row in single.history]
                                            for single in singles], axis=0), rtol=1e-5)
    for member, single in zip(result.predictor.net.members, singles, strict=True):
        for name, value in single.predictor.net.state_dict().items():
            torch.testing.assert_close(member.state_dict()[name], value, rtol=1e-4, atol=1e-5)
    assert result.predictor.info["best_epochs"] == [s.predictor.info["best_epoch"]
                                                    for s in singles]


def test_a_pass_of_one_member_follows_the_plateau_as_a_single_run(plateau_splits):
    """No other member to differ from: the optimiser's own rate follows the plateau, through
    autograd too (which refuses it for several members)."""
    data, val, test = plateau_splits
    config = train.TrainConfig(batch_size=32, threads=1, seed=5, fast=False, **PLATEAU)
    [alone] = train.fit_cohorts(data, [(config, NET)], val_table=val, test_table=test)
    single = train.fit(data, config, net=NET, val_table=val, test_table=test)
    assert [row["lr"] for row in alone.history] == [row["lr"] for row in single.history]
    assert alone.history[-1]["lr"] < PLATEAU["lr"]
    np.testing.assert_allclose([row["val_loss"] for row in alone.history],
                               [row["val_loss"] for row in single.history], rtol=1e-5)


@pytest.mark.parametrize("epoch", [5, 8], ids=["before-halving", "rates-apart"])
def test_resume_under_the_plateau_schedule_equals_an_uninterrupted_run(plateau_splits, epoch):
    """Cut while the plateaus count epochs without a better loss, or once some have halved."""
    data, val, test = plateau_splits
    config = train.TrainConfig(batch_size=32, threads=1, ensemble=3, seed=5, **PLATEAU)

    def fit(**more):
        return train.fit(data, config, net=NET, val_table=val, test_table=test, **more)
    whole = fit()
    cut = fit(on_epoch=_interrupt_after(epoch))
    assert len(cut.resume_state["plateaus"]) == 3
    _assert_same_run(fit(resume=cut.resume_state), whole)
    with pytest.raises(FcnnError, match="not one entry for each of 3 members"):
        fit(resume={**cut.resume_state, "plateaus": None})


def test_a_stop_within_an_epoch_resumes_from_the_epoch_before(splits, tmp_path):
    """Stopped in the middle of epoch 3; its state saved and read back as --resume reads it."""
    data, val, test = splits
    config = train.TrainConfig(epochs=4, batch_size=32, threads=1, ensemble=2)

    def fit(**more):
        return train.fit(data, config, net=NET, val_table=val, test_table=test, **more)
    whole = fit()
    steps = -(-len(data.frame) // 32)
    cut = fit(stop=_StopAt(2 * steps + 3))
    assert cut.stopped == "interrupted after epoch 2"
    path = tmp_path / "state.pt"
    statefile.write_state(cut.resume_state, path)
    saved = statefile.read_state(path)
    _assert_same_run(fit(resume=saved), whole)


def test_resume_refuses_a_state_of_another_ensemble_or_of_one_network(splits):
    data, val, test = splits

    def cut(size):
        config = train.TrainConfig(epochs=3, batch_size=32, threads=1, ensemble=size)
        return train.fit(data, config, net=NET, val_table=val, test_table=test,
                         on_epoch=_interrupt_after(1)).resume_state
    three, single = cut(3), cut(1)
    refusals = [(2, three, "is of an ensemble of 3 members, not of an ensemble of 2 members"),
                (1, three, "is of an ensemble of 3 members, not of a single network"),
                (3, single, "is of a single network, not of an ensemble of 3 members")]
    for size, state, message in refusals:
        config = train.TrainConfig(epochs=3, batch_size=32, threads=1, ensemble=size)
        with pytest.raises(FcnnError, match=f"training state {message}; cannot resume$"):
            train.fit(data, config, net=NET, val_table=val, test_table=test, resume=state)
    config = train.TrainConfig(epochs=3, batch_size=32, threads=1, ensemble=3)
    with pytest.raises(FcnnError, match="not the data this run started with"):
        train.fit(test, config, net=NET, val_table=val, test_table=test, resume=three)
    wider = {**NET, "width": 13}
    with pytest.raises(FcnnError, match=r"of another network \(its layers differ: resized "
                                        r"body\.0\.0\.weight, .*\); cannot resume$"):
        train.fit(data, config, net=wider, val_table=val, test_table=test, resume=three)
    with pytest.raises(FcnnError, match="not one entry for each of 3 members"):
        train.fit(data, config, net=NET, val_table=val, test_table=test,
                  resume={**three, "generators": three["generators"][:2]})


def test_members_take_the_rows_of_their_own_seed_span_by_span(monkeypatch):
    """Gathered a few minibatches at a time (spans of 2 here), each member's minibatches are
    those of one permuted copy of the table in its seed's order, the last one short."""
    from types import SimpleNamespace

    monkeypatch.setattr(ensemble, "GATHER_ROWS", 50)  # 50 // (7 rows × 3 members): 2 a span
    x, y = torch.randn(100, 4), torch.randint(0, 5, (100,))
    seeds = [11, 12, 13]
    rows = SimpleNamespace(x=x, y=y, train_rows=100)
    run = SimpleNamespace(rows=rows, plan=ensemble.AllRows(rows),
                          config=SimpleNamespace(batch_size=7), members=seeds,
                          generators=[torch.Generator().manual_seed(s) for s in seeds])
    batches = list(ensemble._Run._batches(run))
    assert [b[0].shape for b in batches] == [(3, 7, 4)] * 14 + [(3, 2, 4)]
    xs, ys = (torch.cat([b[i] for b in batches], dim=1) for i in (0, 1))
    for k, seed in enumerate(seeds):
        order = torch.randperm(100, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(xs[k], x[order]) and torch.equal(ys[k], y[order])


@pytest.fixture(scope="module")
def galaxy_splits():
    return [simulate.galaxies(n=n, size=8, seed=s) for n, s in ((256, 1), (64, 2), (64, 3))]


# Networks the autograd-free step does not train: (train options, network options, table).
# batch_size 17 leaves a last minibatch of one row, which batch norm skips. With batch norm, SGD:
# the gradient of a bias before batch norm is zero but for rounding, which Adam scales up to
# steps of the learning rate, so that those biases (and the running means) part at once
# wherever two computations round differently.
THROUGH_AUTOGRAD = {
    "batchnorm": ({"batch_size": 17, "optimizer": "sgd", "lr": 0.05}, {"arch": "batchnorm"},
                  "quakes"),
    "batchnorm_resnet": ({"optimizer": "sgd", "lr": 0.05},
                         {"arch": "resnet", "batchnorm": True, "depth": 3}, "quakes"),
    "selu": ({"fast": False}, {"arch": "selu"}, "quakes"),
    "class_weights": ({"class_weight": "balanced"}, {"dropout": 0.0}, "galaxies"),
    "no_fast": ({"fast": False, "loss": "gaussian"}, {}, "quakes"),
}


@pytest.mark.parametrize("case", sorted(THROUGH_AUTOGRAD))
def test_members_trained_through_autograd_equal_single_runs(case, splits, galaxy_splits,
                                                            monkeypatch):
    """As above, the single run of seed 5 + k trains on the rows of seed 5's split, here by
    splitting with seed 5 (a classifier's split by classes cannot be undone by reordering)."""
    options, net, kind = THROUGH_AUTOGRAD[case]
    tables = splits if kind == "quakes" else galaxy_splits
    result = _fit(tables, net, seed=5, ensemble=2, **options)
    x = result.predictor.feature_matrix(tables[2])
    outputs = result.predictor.outputs(x)
    split = prepare.split_indices
    monkeypatch.setattr(prepare, "split_indices",
                        lambda n, val, test, seed, strata=None: split(n, val, test, 5, strata))
    for k, member in enumerate(result.predictor.net.members):
        single = _fit(tables, net, seed=ensemble.member_seed(5, k), **options)
        assert result.predictor.info["best_epochs"][k] == single.predictor.info["best_epoch"]
        for name, value in single.predictor.net.state_dict().items():
            torch.testing.assert_close(member.state_dict()[name], value, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(outputs[k], single.predictor.outputs(x), rtol=1e-4,
                                   atol=1e-5)


def test_with_adam_batch_norm_members_part_from_single_runs_in_the_biases_before_it(
        splits, monkeypatch):
    """Those biases' gradient is rounding noise, which Adam scales up to steps of the learning
    rate; the running means follow them. Every other tensor stays equal."""
    net = {"arch": "resnet", "batchnorm": True, "depth": 3}
    result = _fit(splits, net, seed=5, ensemble=2)
    x = result.predictor.feature_matrix(splits[2])
    split = prepare.split_indices
    monkeypatch.setattr(prepare, "split_indices",
                        lambda n, val, test, seed, strata=None: split(n, val, test, 5, strata))
    single = _fit(splits, net, seed=5)
    member = result.predictor.net.members[0].state_dict()
    parted = {name for name, value in single.predictor.net.state_dict().items()
              if not torch.allclose(member[name], value, rtol=1e-4, atol=1e-5)}
    assert parted == {"body.0.0.bias", "body.0.1.running_mean", "body.1.linear1.bias",
                      "body.1.norm1.running_mean", "body.1.linear2.bias",
                      "body.1.norm2.running_mean"}
    np.testing.assert_allclose(result.predictor.outputs(x)[0], single.predictor.outputs(x),
                               rtol=0.05, atol=0.02)


@pytest.mark.parametrize("options, net", [
    ({}, {"dropout": 0.2}),
    ({}, {"arch": "selu", "dropout": 0.1}),
    ({"precision": "bf16"}, {}),
])
def test_ensembles_with_dropout_or_bf16_train(splits, options, net):
    result = _fit(splits, net, seed=5, ensemble=2, epochs=4, **options)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.95 * losses[0]
    x = result.predictor.feature_matrix(splits[2])
    first, second = result.predictor.outputs(x)
    assert not np.allclose(first, second)


@pytest.fixture(scope="module")
def batchnorm_ensemble(splits):
    return _fit(splits, {"arch": "resnet", "batchnorm": True, "depth": 3}, seed=5, ensemble=3)


def test_batch_norm_members_keep_and_use_their_own_statistics(batchnorm_ensemble, splits):
    members = batchnorm_ensemble.predictor.net.members
    means = [member.body[0][1].running_mean for member in members]
    assert not torch.allclose(means[0], means[1])
    x = torch.from_numpy(batchnorm_ensemble.predictor.x_scaler.transform(
        batchnorm_ensemble.predictor.feature_matrix(splits[2])))
    with torch.inference_mode():
        out = batchnorm_ensemble.predictor.net(x)
        for k, member in enumerate(members):
            alone = MLP(member.config)
            alone.load_state_dict(member.state_dict())
            torch.testing.assert_close(out[k], alone.eval()(x))
            alone.load_state_dict({**member.state_dict(), **{
                name: value for name, value in members[k - 1].state_dict().items()
                if "running" in name}})
            assert not torch.allclose(out[k], alone(x), rtol=1e-3, atol=1e-4)


def test_batch_norm_ensemble_predicts_the_members_mean_from_the_command_line(
        tmp_path, batchnorm_ensemble, splits):
    from click.testing import CliRunner

    from fcnn_cli.commands import cli
    from fcnn_cli.data.writer import write_table

    predictor = batchnorm_ensemble.predictor
    model, data, out = tmp_path / "model.pt", tmp_path / "new.csv", tmp_path / "pred.csv"
    checkpoint.save(predictor, model)
    write_table(splits[2], data)
    result = CliRunner().invoke(cli, ["predict", str(model), str(data), "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    x = torch.from_numpy(predictor.x_scaler.transform(predictor.feature_matrix(splits[2])))
    with torch.inference_mode():
        members = [predictor.task.decode(member.eval()(x).numpy())
                   for member in predictor.net.members]
    mean = np.mean(members, axis=0)
    np.testing.assert_allclose(frame[["x_pred", "y_pred"]].to_numpy(), mean, rtol=1e-5,
                               atol=1e-6)


def test_the_command_line_refuses_an_ensemble_option_before_reading_data(tmp_path):
    from click.testing import CliRunner

    from fcnn_cli.commands import cli

    result = CliRunner().invoke(cli, ["train", str(tmp_path / "absent.csv"), "--ensemble", "2",
                                      "--diagnostics", "-o", str(tmp_path / "run")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--ensemble 2: the members record no diagnostics" in result.output
    assert not (tmp_path / "run").exists()


def test_batch_norm_ensembles_need_two_rows_a_minibatch(splits):
    with pytest.raises(FcnnError, match="batch normalisation needs at least 2 rows"):
        _fit(splits, {"arch": "batchnorm"}, seed=0, ensemble=2, batch_size=1)


COHORTS = [  # (train options, net options) of each cohort
    ({"lr": 1e-2, "weight_decay": 1e-3, "ema": 0.9, "ensemble": 2}, {"init": "he"}),
    ({"lr": 3e-3, "ema": 0.0, "ensemble": 1}, {"init": "lecun"}),
    ({"lr": 1e-3, "ensemble": 2}, {}),
    ({"lr": 1e-3, "ensemble": 1}, {"dropout": 0.3}),  # beside the others, which keep all units
]


@pytest.fixture(scope="module")
def cohorts(splits):
    data, val, test = splits
    configs = [(train.TrainConfig(**{"epochs": 3, "batch_size": 32, "threads": 1, "seed": 5,
                                     **options}), {**NET, **net}) for options, net in COHORTS]
    return train.fit_cohorts(data, configs, val_table=val, test_table=test)


def test_each_cohort_member_equals_a_single_run_with_its_settings(splits, cohorts):
    """Cohorts that differ in lr, weight decay, ema, init and dropout, trained in one pass:
    member k of each without dropout is the single run of seed 5 + k with that cohort's
    settings (a single run draws its dropout masks in another order)."""
    assert cohorts[3].predictor.net.config.dropout == 0.3
    for result, (options, net) in zip(cohorts[:3], COHORTS):
        count = options["ensemble"]
        nets = result.predictor.net.members if count > 1 else [result.predictor.net]
        assert len(nets) == count and result.config.lr == options["lr"]
        assert result.predictor.net.config.init == net.get("init", "glorot-normal")
        for k, member in enumerate(nets):
            settings = {key: v for key, v in options.items() if key != "ensemble"}
            data, val, test = splits
            single = train.fit(_in_order_of(data, 5, ensemble.member_seed(5, k)),
                               train.TrainConfig(epochs=3, batch_size=32, threads=1,
                                                 seed=ensemble.member_seed(5, k), **settings),
                               net={**NET, **net}, val_table=val, test_table=test)
            epochs = result.predictor.info.get("best_epochs") or \
                [result.predictor.info["best_epoch"]]
            assert epochs[k] == single.predictor.info["best_epoch"]
            for name, value in single.predictor.net.state_dict().items():
                torch.testing.assert_close(member.state_dict()[name], value, rtol=1e-4,
                                           atol=1e-5)
    assert [len(r.history) for r in cohorts] == [3, 3, 3, 3]
    assert cohorts[0].history[0]["lr"] == pytest.approx(1e-2)
    assert cohorts[2].history[-1]["lr"] == pytest.approx(1e-3 * 0.5 * (1 + np.cos(np.pi * 2 / 3)))


def test_a_cohort_of_one_member_saves_as_a_single_network(tmp_path, cohorts, splits):
    alone = cohorts[1]
    assert alone.predictor.members is None and alone.members == []
    path = tmp_path / "one.pt"
    checkpoint.save(alone.predictor, path)
    loaded = checkpoint.load(path)
    x = loaded.feature_matrix(splits[2])
    np.testing.assert_array_equal(loaded.outputs(x), alone.predictor.outputs(x))
    assert loaded.info["train_config"]["ensemble"] == 1


def test_each_cohort_stops_on_its_own_patience(splits, monkeypatch):
    """Validation losses scripted per member (the first cohort's, then the second's while
    both run): the first, with patience 2, stops after epoch 3; the second trains on."""
    scripted = iter([1.0, 1.0, 2.0, 0.9, 2.0, 0.8, 0.7, 0.6, 0.5])
    monkeypatch.setattr(tasks.Regression, "loss", lambda self, out, y: next(scripted))
    data, val, test = splits
    configs = [(train.TrainConfig(epochs=6, batch_size=32, threads=1, patience=patience),
                NET) for patience in (2, 0)]
    first, second = train.fit_cohorts(data, configs, val_table=val, test_table=test)
    assert len(first.history) == 3 and first.stopped.startswith("early stop after epoch 3")
    assert first.predictor.info["best_epoch"] == 1
    assert len(second.history) == 6 and second.stopped == "completed"
    assert second.predictor.info["best_epoch"] == 6


def test_a_cohort_that_kept_nothing_fails_alone(splits, monkeypatch):
    scripted = iter([float("nan"), 1.0, 0.9, 0.8])
    monkeypatch.setattr(tasks.Regression, "loss", lambda self, out, y: next(scripted))
    data, val, test = splits
    configs = [(train.TrainConfig(epochs=3, batch_size=32, threads=1, lr=lr), NET)
               for lr in (1.0, 1e-3)]
    lost, kept = train.fit_cohorts(data, configs, val_table=val, test_table=test)
    assert isinstance(lost, FcnnError) and "diverged at once" in str(lost)
    assert len(kept.history) == 3 and kept.predictor.info["best_epoch"] == 3


@pytest.mark.parametrize("change", [{"depth": 3}, {"batch_size": 16}, {"optimizer": "sgd"}])
def test_cohorts_of_another_shape_or_step_are_refused(change):
    net = NetConfig(n_in=2, n_out=1, **NET)
    other = NetConfig(n_in=2, n_out=1, **{**NET, **{k: v for k, v in change.items()
                                                    if k == "depth"}})
    config = train.TrainConfig(**{k: v for k, v in change.items() if k != "depth"})
    with pytest.raises(ValueError, match=f"differ in {next(iter(change))}"):
        ensemble.check_cohorts([ensemble.Cohort(train.TrainConfig(ensemble=1), net),
                                ensemble.Cohort(config, other)])
    ensemble.check_cohorts([ensemble.Cohort(train.TrainConfig(ensemble=1), net),
                            ensemble.Cohort(train.TrainConfig(lr=0.1, ensemble=3), net)])


def test_a_damaged_kept_weight_in_a_state_is_refused_before_training(splits, monkeypatch):
    data, val, test = splits
    config = train.TrainConfig(epochs=3, batch_size=32, threads=1, ensemble=2)
    cut = train.fit(data, config, net=NET, val_table=val, test_table=test,
                    on_epoch=_interrupt_after(1)).resume_state
    best = [dict(b) for b in cut["best"]]
    best[0]["weights"] = {"head.weight": torch.zeros(3, 3)}
    trained = []
    monkeypatch.setattr(ensemble._Run, "_train_epoch",
                        lambda self, *a: trained.append(1) or torch.zeros(2))
    with pytest.raises(FcnnError, match=r"of another network \(its layers differ: missing "
                                        r"body\.0\.0\.weight, .*; resized head\.weight\); "
                                        r"cannot resume$") as error:
        train.fit(data, config, net=NET, val_table=val, test_table=test,
                  resume={**cut, "best": best})
    assert "\n" not in str(error.value) and not trained


def test_an_ensemble_that_diverges_later_keeps_its_best_and_warns(splits, caplog,
                                                                  monkeypatch):
    real = ensemble._Run._train_epoch

    def blow_up(self, epoch, stop):
        loss = real(self, epoch, stop)
        return loss * float("nan") if epoch == 2 else loss
    monkeypatch.setattr(ensemble._Run, "_train_epoch", blow_up)
    with caplog.at_level("WARNING"):
        result = _fit(splits, seed=0, ensemble=2)
    assert result.stopped.startswith(ensemble.DIVERGED)
    assert len(result.history) == 2  # stopped there, of 3 epochs
    assert "keeping the best weights so far" in caplog.text


def test_cohorts_stop_at_an_interrupt_without_reporting(splits, monkeypatch):
    data, val, test = splits
    real = ensemble._Run._train_epoch
    reported = []
    monkeypatch.setattr(train, "_ensemble_result", lambda *a: reported.append(1))

    def interrupt(self, epoch, stop):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(self, epoch, stop)
    monkeypatch.setattr(ensemble._Run, "_train_epoch", interrupt)
    configs = [(train.TrainConfig(epochs=3, batch_size=32, threads=1, lr=lr), NET)
               for lr in (1e-2, 1e-3)]
    with pytest.raises(KeyboardInterrupt):
        train.fit_cohorts(data, configs, val_table=val, test_table=test)
    assert not reported


def test_members_of_one_network_warn_and_predict_it(tmp_path, splits, caplog):
    from click.testing import CliRunner

    from fcnn_cli.commands import cli

    data, val, test = splits
    result = train.fit(data, train.TrainConfig(epochs=1, threads=1), net=NET, val_table=val,
                       test_table=test)
    checkpoint.save(result.predictor, tmp_path / "one.pt")
    test.frame.to_csv(tmp_path / "new.csv", index=False)
    with caplog.at_level("WARNING"):
        out = CliRunner().invoke(cli, ["predict", str(tmp_path / "one.pt"),
                                       str(tmp_path / "new.csv"), "--members"])
    assert out.exit_code == 0, out.output
    assert "is one network, not an ensemble" in caplog.text + out.output
    assert "_m0" not in out.output


def test_a_pass_of_one_member_trains_as_its_single_run(splits):
    """A list of one network keeps the member axis (the step is the ensemble's)."""
    data, val, test = splits
    config = train.TrainConfig(epochs=2, batch_size=32, threads=1, seed=4)
    (cohort,) = train.fit_cohorts(data, [(config, NET)], val_table=val, test_table=test)
    single = train.fit(data, config, net=NET, val_table=val, test_table=test)
    for name, value in single.predictor.net.state_dict().items():
        torch.testing.assert_close(cohort.predictor.net.state_dict()[name], value, rtol=1e-4,
                                   atol=1e-5)


def _sides(table, classes):
    """The earthquakes' epicentres as east/middle/west (two classes: east/west)."""
    x = table.frame.x
    side = np.where(x > 10, "east", np.where(x < -10, "west", "middle"))
    if classes == 2:
        side = np.where(x > 0, "east", "west")
    return dataclasses.replace(table, frame=table.frame.drop(columns=["x", "y"]).assign(side=side),
                               targets=["side"], units={})


@pytest.fixture(scope="module")
def saved_ensembles(tmp_path_factory, splits, gaussian_ensemble):
    """A saved ensemble of 3 members of each kind, and a table it predicts, with a text ID."""
    folder = tmp_path_factory.mktemp("ensembles")
    kinds = {"gaussian": (gaussian_ensemble, splits[2]),
             "regressor": (_fit(splits, seed=0, ensemble=3, epochs=1), splits[2])}
    for classes in (3, 2):
        tables = [_sides(t, classes) for t in splits]
        kinds[f"classes{classes}"] = (_fit(tables, seed=0, ensemble=3, epochs=1), tables[2])
    saved = {}
    for kind, (result, table) in kinds.items():
        checkpoint.save(result.predictor, folder / f"{kind}.pt")
        frame = table.frame.assign(id=[f"ev{i:03d}" for i in range(len(table.frame))])
        saved[kind] = (folder / f"{kind}.pt", dataclasses.replace(table, frame=frame))
    return saved


ENSEMBLE_KINDS = ["regressor", "gaussian", "classes3", "classes2"]


def _predict(model, data, *options):
    from click.testing import CliRunner

    from fcnn_cli.commands import cli

    result = CliRunner().invoke(cli, ["predict", str(model), str(data), *map(str, options)])
    assert "Traceback" not in result.output, result.output
    return result


def _written(table, path):
    from fcnn_cli.data.writer import write_table

    write_table(table, path)
    return path


@pytest.mark.parametrize("kind", ENSEMBLE_KINDS)
def test_an_ensemble_predicts_with_kept_columns_its_members_and_dropped_rows(
        kind, saved_ensembles, tmp_path):
    """--keep (a text ID, and a feature), --members and --nan drop together, to Parquet."""
    model, table = saved_ensembles[kind]
    frame = table.frame.copy()
    frame.loc[4, "tp1"] = np.nan
    data = _written(dataclasses.replace(table, frame=frame), tmp_path / "new.csv")
    out = tmp_path / "pred.parquet"
    result = _predict(model, data, "--keep", "id", "--keep", "ts1", "--members", "--nan", "drop",
                      "-o", out)
    assert result.exit_code == 0, result.output
    predictor = checkpoint.load(model)
    got = pd.read_parquet(out)
    assert list(got.columns) == ["id", "ts1", *predictor.output_columns(members=True)]
    kept = table.frame.drop(index=4).reset_index(drop=True)
    assert got["id"].tolist() == kept["id"].tolist()  # "ev000", as written
    want = predictor.predict(dataclasses.replace(table, frame=kept), members=True)
    pd.testing.assert_frame_equal(got.drop(columns=["id", "ts1"]), want, check_exact=False,
                                  rtol=1e-6)
    assert any(c.endswith("_m2") for c in got.columns)


@pytest.mark.parametrize("kind", ENSEMBLE_KINDS)
@pytest.mark.parametrize("rows", [0, 1])
def test_an_ensemble_predicts_a_table_of_no_rows_or_one(kind, rows, saved_ensembles, tmp_path):
    model, table = saved_ensembles[kind]
    small = dataclasses.replace(table, frame=table.frame.iloc[:rows])
    data = _written(small, tmp_path / "new.csv")
    for members in ([], ["--members"]):
        result = _predict(model, data, "--keep", "id", *members)
        assert result.exit_code == 0, result.output
        got = pd.read_csv(io.StringIO(result.stdout), dtype={"id": str})
        predictor = checkpoint.load(model)
        assert list(got.columns) == ["id", *predictor.output_columns(members=bool(members))]
        assert got["id"].tolist() == table.frame.id.tolist()[:rows]
        want = predictor.predict(small, members=bool(members))
        assert len(got) == len(want) == rows
        numbers = want.select_dtypes("number").columns
        np.testing.assert_allclose(got[numbers].to_numpy(float), want[numbers].to_numpy(float),
                                   rtol=1e-9)


@pytest.mark.parametrize("suffix", [".parquet", ".h5", ".fits", ".root"])
def test_an_ensemble_writes_a_table_of_no_rows_in_every_format(suffix, saved_ensembles,
                                                             tmp_path):
    from fcnn_cli.data.tables import read_table

    model, table = saved_ensembles["classes3"]
    data = _written(dataclasses.replace(table, frame=table.frame.iloc[:0]), tmp_path / "new.csv")
    out = tmp_path / f"pred{suffix}"
    result = _predict(model, data, "--keep", "id", "--members", "-o", out)
    assert result.exit_code == 0, result.output
    got = read_table(out).frame
    assert list(got.columns) == ["id", *checkpoint.load(model).output_columns(members=True)]
    assert len(got) == 0


def test_an_ensemble_decides_two_classes_by_the_threshold(saved_ensembles, tmp_path):
    """The mean probability decides the ensemble's class, each member's its own; the threshold
    is the median probability of the second class, which splits the rows."""
    model, table = saved_ensembles["classes2"]
    predictor = checkpoint.load(model)
    first, second = predictor.task.classes
    threshold = float(np.median(predictor.predict(table)[f"p_{second}"]))
    result = _predict(model, _written(table, tmp_path / "new.csv"), "--threshold", threshold,
                      "--members", "--keep", "id")
    assert result.exit_code == 0, result.output
    got = pd.read_csv(io.StringIO(result.stdout), dtype={"id": str})
    for suffix in ("", "_m0", "_m1", "_m2"):
        expected = np.where(got[f"p_{second}{suffix}"] >= threshold, second, first)
        assert (got[f"side_pred{suffix}"] == expected).all()
    assert (got.side_pred == second).sum() >= len(got) // 2


@pytest.mark.parametrize("kind", ENSEMBLE_KINDS)
def test_an_ensemble_evaluates_one_row_and_refuses_none_in_one_line(kind, saved_ensembles,
                                                                   tmp_path):
    from click.testing import CliRunner

    from fcnn_cli.commands import cli

    model, table = saved_ensembles[kind]
    for rows in (1, 0):
        data = _written(dataclasses.replace(table, frame=table.frame.iloc[:rows]),
                        tmp_path / f"new{rows}.csv")
        result = CliRunner().invoke(cli, ["evaluate", str(model), str(data), "--json"])
        if rows:
            assert result.exit_code == 0, result.output
            assert json.loads(result.stdout)["rows"] == 1
        else:
            assert result.exit_code == 1 and "Traceback" not in result.output
            assert result.output.strip().endswith("new0.csv: no rows to evaluate")


def _weighted(tables):
    """Each table with a weight column of unequal weights, some negative."""
    rng = np.random.default_rng(8)
    return [dataclasses.replace(t, frame=t.frame.assign(
        w=rng.uniform(-0.3, 2.0, len(t.frame)))) for t in tables]


@pytest.mark.parametrize("case", ["fast", "no_fast", "batchnorm"])
def test_weighted_members_equal_weighted_single_runs(case, splits, monkeypatch):
    """Each member's minibatch carries its rows' weights: member k equals the weighted single
    run of seed 5 + k on the rows of seed 5's split, on the autograd-free step and through
    autograd alike."""
    options, net = {"fast": ({}, {}), "no_fast": ({"fast": False}, {}),
                    "batchnorm": THROUGH_AUTOGRAD["batchnorm"][:2]}[case]
    data, val, test = _weighted(splits)
    config = {"epochs": 3, "batch_size": 32, "threads": 1, **options}

    def fit(seed, ensemble=1):
        return train.fit(data, train.TrainConfig(**config, seed=seed, ensemble=ensemble),
                         net={**NET, **net}, val_table=val, test_table=test, weight="w")
    result = fit(5, 2)
    split = prepare.split_indices
    monkeypatch.setattr(prepare, "split_indices",
                        lambda n, val, test, seed, strata=None: split(n, val, test, 5, strata))
    for k, member in enumerate(result.predictor.net.members):
        single = fit(ensemble.member_seed(5, k))
        assert result.predictor.info["best_epochs"][k] == single.predictor.info["best_epoch"]
        for name, value in single.predictor.net.state_dict().items():
            torch.testing.assert_close(member.state_dict()[name], value, rtol=1e-4, atol=1e-5)
    unweighted = train.fit(splits[0], train.TrainConfig(**config, seed=5, ensemble=2),
                           net={**NET, **net}, val_table=splits[1], test_table=splits[2])
    assert not torch.equal(result.predictor.net.members[0].state_dict()["head.weight"],
                           unweighted.predictor.net.members[0].state_dict()["head.weight"])
