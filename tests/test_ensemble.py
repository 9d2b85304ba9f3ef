"""Ensembles trained in one vectorised pass: members equal single runs, the predictive
variance, checkpoints, predict and evaluate."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from fcnn_cli import checkpoint, ensemble, fastpath, simulate, tasks, train
from fcnn_cli.errors import FcnnError
from fcnn_cli.model import MLP, NetConfig
from fcnn_cli.prepare import split_indices
from fcnn_cli.preprocess import Scaler

NET = {"depth": 2, "width": 12}


@pytest.fixture(scope="module")
def splits():
    """Training, validation and test tables of their own: the split does not depend on the
    seed, so that a member can be compared with a single run of its seed."""
    return [simulate.earthquakes(n=n, seed=s) for n, s in ((256, 1), (64, 2), (64, 3))]


def _fit(splits, **options):
    data, val, test = splits
    if "order_of" in options:  # the training rows in the order a run with that seed has them
        data = _in_order_of(data, options.pop("order_of"), options["seed"])
    config = train.TrainConfig(**{"epochs": 3, "batch_size": 32, "threads": 1, **options})
    return train.fit(data, config, net=NET, val_table=val, test_table=test)


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
    assert spread[0, 0] == pytest.approx(np.std([0.0, 1.0, 3.0]))
    assert plain.predictive(means[0])[1] is None  # one network without a variance head


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


def _resigned(path, edit):
    payload = torch.load(path, weights_only=True)
    edit(payload)
    payload["sha256"] = checkpoint.digest(payload["meta"], payload["state"])
    torch.save(payload, path)


def _meta(change):
    def edit(payload):
        meta = json.loads(payload["meta"])
        change(meta)
        payload["meta"] = json.dumps(meta)
    return edit


TAMPERING = {
    "more_members_claimed": (_meta(lambda m: m.update(ensemble=4)), "no tensor 'members.3."),
    "fewer_members_claimed": (_meta(lambda m: m.update(ensemble=2)),
                              "tensor 'members.2."),
    "one_member": (_meta(lambda m: m.update(ensemble=1)), "an ensemble of 1 members"),
    "members_as_text": (_meta(lambda m: m.update(ensemble="3")), "an ensemble of '3' members"),
    "not_an_ensemble": (_meta(lambda m: m.pop("ensemble")), "no tensor 'body.0.0."),
    "mse_claimed": (_meta(lambda m: m["task"].pop("output")),
                    "2 regression target(s) for a network of 4 output(s)"),
    "member_dropped": (lambda p: [p["state"].pop(k) for k in list(p["state"])
                                  if k.startswith("members.1.")], "no tensor 'members.1."),
}


@pytest.mark.parametrize("name", sorted(TAMPERING))
def test_tampered_ensemble_checkpoints_are_refused(tmp_path, gaussian_ensemble, name):
    path = tmp_path / "ensemble.pt"
    checkpoint.save(gaussian_ensemble.predictor, path)
    edit, expected = TAMPERING[name]
    _resigned(path, edit)
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
    assert 0 <= result.metrics["test"]["ece"] <= 1


def simulate_galaxies():
    from fcnn_cli import simulate as sim

    return sim.galaxies(n=200, size=8, seed=1)


@pytest.mark.parametrize("options, net, message", [
    ({"schedule": "plateau"}, {}, "plateau"),
    ({"fast": False}, {}, "autograd-free"),
    ({}, {"arch": "batchnorm"}, "batch normalisation"),
])
def test_unsupported_ensembles_are_refused_with_the_reason(splits, options, net, message):
    data, val, test = splits
    config = train.TrainConfig(epochs=1, ensemble=2, **options)
    with pytest.raises(FcnnError, match=message):
        train.fit(data, config, net={**NET, **net}, val_table=val, test_table=test)


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
    assert result.stopped.startswith("interrupted in epoch 2")  # epoch 1's weights kept


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
        ensemble.check_cohorts([ensemble.Cohort(train.TrainConfig(), net),
                                ensemble.Cohort(config, other)])
    ensemble.check_cohorts([ensemble.Cohort(train.TrainConfig(), net),
                            ensemble.Cohort(train.TrainConfig(lr=0.1, ensemble=3), net)])
