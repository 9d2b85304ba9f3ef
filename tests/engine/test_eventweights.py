"""Event weights in training: the rules of fcnn_cli.engine.eventweights, and what training with
them gives (the weighted loss, its path of no weights, the rows that leave)."""

import numpy as np
import pandas as pd
import pytest
import torch

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import simulate
from fcnn_cli.data.tables import Table
from fcnn_cli.engine import eventweights, train
from fcnn_cli.engine.prepare import prepare

CONFIG = dict(epochs=3, batch_size=64, seed=3)


@pytest.fixture(scope="module")
def weighted_quakes():
    """600 earthquakes with a weight column: positive weights between 0.2 and 3."""
    quakes = simulate.earthquakes(n=600, seed=1)
    frame = quakes.frame.assign(w=np.random.default_rng(0).uniform(0.2, 3.0, 600))
    return Table(frame, quakes.targets, quakes.units, "quakes")


def sides(n=600, seed=2):
    """A classification table: which side of x = 10 a quake is, unbalanced."""
    quakes = simulate.earthquakes(n=n, seed=seed)
    frame = quakes.frame.drop(columns=["x", "y"]).assign(
        side=np.where(quakes.frame.x > 10, "east", "west"),
        w=np.random.default_rng(1).uniform(0.2, 3.0, n))
    return Table(frame, ["side"], name="sides")


def with_weights(table, w):
    return Table(table.frame.assign(w=w), table.targets, table.units, table.name)


def same_weights(a, b):
    sa, sb = a.predictor.net.state_dict(), b.predictor.net.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def outputs(result, table):
    return result.predictor.outputs(result.predictor.feature_matrix(table))


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "autograd"])
@pytest.mark.parametrize("make", ["regress", "classify"])
def test_rows_of_weight_zero_train_exactly_as_the_other_rows_alone(weighted_quakes, make,
                                                                   fast):
    """The acceptance test of weighted training: half the rows weigh 0, the rest their own
    (unequal) weights; trained with the same seed, the network equals, bit for bit (weights
    and predictions), the one trained on the other half alone."""
    table = weighted_quakes if make == "regress" else sides()
    zero = np.arange(len(table.frame)) % 2 == 0
    halved = with_weights(table, np.where(zero, 0.0, table.frame.w))
    alone = Table(table.frame[~zero].reset_index(drop=True), table.targets, table.units,
                  table.name)
    config = train.TrainConfig(**CONFIG, fast=fast)
    a = train.fit(halved, config, weight="w")
    b = train.fit(alone, config, weight="w")
    assert a.sizes == b.sizes and sum(a.sizes.values()) == 300
    assert same_weights(a, b)
    assert np.array_equal(outputs(a, table), outputs(b, table))
    assert a.history == [{**row, "seconds": a.history[k]["seconds"]}
                         for k, row in enumerate(b.history)]


@pytest.mark.parametrize("make", ["regress", "classify"])
def test_equal_weights_train_exactly_as_no_weights(weighted_quakes, make):
    """All weights alike (2.5 here): the path of no weights, bit for bit, class weights too."""
    table = weighted_quakes if make == "regress" else sides()
    extra = {} if make == "regress" else {"class_weight": "balanced"}
    config = train.TrainConfig(**CONFIG, **extra)
    a = train.fit(with_weights(table, 2.5), config, weight="w")
    b = train.fit(Table(table.frame.drop(columns="w"), table.targets, table.units, table.name),
                  config)
    assert same_weights(a, b)
    assert a.predictor.task == b.predictor.task  # the class weights of no event weights


def test_unequal_weights_change_what_is_learned(weighted_quakes):
    a = train.fit(weighted_quakes, train.TrainConfig(**CONFIG), weight="w")
    b = train.fit(with_weights(weighted_quakes, 1.0), train.TrainConfig(**CONFIG), weight="w")
    assert not same_weights(a, b)
    assert "w" not in a.predictor.features  # never a default feature


def test_the_validation_loss_is_the_weighted_mean_of_the_weights_as_given(weighted_quakes):
    """Σ w·l / Σ w over the validation rows, l each row's squared error summed over the
    (standardised) labels, of the weights kept, computed here apart."""
    config = train.TrainConfig(**CONFIG, schedule="none")
    result = train.fit(weighted_quakes, config, weight="w")
    val = prepare(weighted_quakes, config, weight="w").splits["val"]
    out = result.predictor.outputs(val.x).astype(np.float64)
    rows = ((out - val.y[:, :-1].astype(np.float64)) ** 2).sum(axis=1)
    expected = (val.weight * rows).sum() / val.weight.sum()
    best = result.history[result.predictor.info["best_epoch"] - 1]
    assert best["val_loss"] == pytest.approx(expected, rel=1e-5)
    assert best["val_loss"] == min(row["val_loss"] for row in result.history)


def test_the_training_loss_is_the_mean_of_each_rows_loss_times_its_normalised_weight():
    """One full-batch step of plain SGD from the same start: the weighted run moves the
    weights as the gradient of mean(w'·l), w' = w / mean(w), computed by autograd here."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=64), "b": rng.normal(size=64)})
    frame["y"] = frame.a - 2 * frame.b + rng.normal(0, 0.1, 64)
    frame["w"] = rng.uniform(0.1, 4, 64)
    table = Table(frame, ["y"], name="lin")
    config = train.TrainConfig(epochs=1, batch_size=1000, val_frac=0.25, test_frac=0.0, ema=0,
                               optimizer="sgd", momentum=0.0, lr=0.1, schedule="none", seed=7)
    data = prepare(table, config, weight="w")
    trained = train.fit(table, config, weight="w").predictor.net
    torch.manual_seed(config.seed)  # as the run builds its network
    from fcnn_cli.network.model import MLP

    net = MLP(trained.config)
    x, y = (torch.from_numpy(data.splits["train"].x), torch.from_numpy(data.splits["train"].y))
    w = y[:, 1]
    assert w.mean().item() == pytest.approx(1.0, rel=1e-6)  # normalised to a mean of 1
    w_given = data.splits["train"].weight
    np.testing.assert_allclose(w.numpy(), w_given / w_given.mean(), rtol=1e-6)
    loss = (((net(x) - y[:, :1]) ** 2).sum(dim=1) * w).mean()
    loss.backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.1 * p.grad
    for a, b in zip(net.state_dict().values(), trained.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_negative_weights_keep_zero_and_abs():
    table = sides()
    w = table.frame.w.to_numpy() * np.where(np.arange(600) % 5 == 0, -1.0, 1.0)
    signed = with_weights(table, w)
    config = dict(**CONFIG)
    keep = prepare(signed, train.TrainConfig(**config), weight="w")
    zero = prepare(signed, train.TrainConfig(**config, negative_weights="zero"), weight="w")
    absolute = prepare(signed, train.TrainConfig(**config, negative_weights="abs"), weight="w")
    as_abs = prepare(with_weights(table, np.abs(w)), train.TrainConfig(**config), weight="w")
    train_w = keep.splits["train"].weight
    assert (train_w < 0).any()
    # "zero": the training rows of negative weight leave; validation and test keep theirs
    assert zero.sizes["train"] == keep.sizes["train"] - int((train_w < 0).sum())
    assert (zero.splits["train"].y[:, 1] > 0).all()
    for part in ("val", "test"):
        np.testing.assert_array_equal(zero.splits[part].weight, keep.splits[part].weight)
    # "abs" trains as the weights |w| would, and still measures with the signed ones
    np.testing.assert_array_equal(absolute.splits["train"].y, as_abs.splits["train"].y)
    assert (absolute.splits["test"].weight < 0).any()
    # "keep": the loss takes the negative weights, normalised to a mean of 1
    loss_w = keep.splits["train"].y[:, 1]
    np.testing.assert_allclose(loss_w, train_w / train_w.mean(), rtol=1e-6)


def test_balanced_classes_weigh_the_same_in_all():
    data = prepare(sides(), train.TrainConfig(**CONFIG, class_weight="balanced"), weight="w")
    y = data.splits["train"].y
    sums = np.bincount(y[:, 0].astype(int), weights=y[:, 1].astype(np.float64))
    np.testing.assert_allclose(sums, sums.mean(), rtol=1e-5)
    assert data.task.weights is None  # folded into the rows' weights, no class weights besides
    given = data.splits["train"].weight
    classes = data.splits["train"].truth
    # within a class the ratios of the event weights stay
    first = classes == 0
    np.testing.assert_allclose(y[first, 1] / y[first, 1][0], given[first] / given[first][0],
                               rtol=1e-5)


def test_weights_summing_to_nothing_are_refused_naming_the_class():
    table = sides()
    w = np.where(table.frame.side == "east", -1.0, 1.0)
    with pytest.raises(FcnnError, match="class 'east' weighs in its training rows -"):
        prepare(with_weights(table, w), train.TrainConfig(**CONFIG), weight="w")
    # as |w| it trains
    prepare(with_weights(table, w), train.TrainConfig(**CONFIG, negative_weights="abs"),
            weight="w")


def test_a_missing_class_is_named_before_the_classes_weights_are_summed():
    table = sides(n=200)
    side = table.frame.side.where(np.arange(200) != 20)
    for class_weight in ("none", "balanced"):
        with pytest.raises(FcnnError, match=r"^sides: label column 'side' is empty at row 21 "
                                            r"\(1 row\(s\) in all\)$"):
            prepare(Table(table.frame.assign(side=side), ["side"], name="sides"),
                    train.TrainConfig(**CONFIG, class_weight=class_weight), weight="w")


def test_regression_weights_summing_to_nothing_are_refused(weighted_quakes):
    w = -weighted_quakes.frame.w.to_numpy()
    with pytest.raises(FcnnError, match=r"the training rows weigh -.* \(column 'w'\)"):
        prepare(with_weights(weighted_quakes, w), train.TrainConfig(**CONFIG), weight="w")
    negative = with_weights(weighted_quakes, -1.0).frame.iloc[:50]
    with pytest.raises(FcnnError, match=r"val.csv: the validation rows weigh -50 in all"):
        prepare(weighted_quakes, train.TrainConfig(**CONFIG), weight="w",
                val_table=Table(negative, weighted_quakes.targets, name="val.csv"))


def test_a_missing_weight_is_an_error_naming_its_row_or_leaves_with_nan_drop(weighted_quakes):
    w = weighted_quakes.frame.w.to_numpy().copy()
    w[[7, 9]] = [np.nan, np.inf]
    table = with_weights(weighted_quakes, w)
    with pytest.raises(FcnnError, match=r"weight column 'w' holds nan at row 8 \(2 row"):
        prepare(table, train.TrainConfig(**CONFIG), weight="w")
    for nan in ("drop", "fill"):
        data = prepare(table, train.TrainConfig(**CONFIG, nan=nan), weight="w")
        assert sum(data.sizes.values()) == 598


def test_rows_of_weight_zero_leave_with_one_notice(weighted_quakes, logged):
    w = np.where(np.arange(600) < 100, 0.0, weighted_quakes.frame.w)
    data = prepare(with_weights(weighted_quakes, w), train.TrainConfig(**CONFIG), weight="w")
    assert sum(data.sizes.values()) == 500
    notes = [r.getMessage() for r in logged.records if "weight 0" in r.getMessage()]
    assert notes == ["quakes: leaving out 100 row(s) of weight 0 (column 'w')"]
    with pytest.raises(FcnnError, match="every row has weight 0"):
        prepare(with_weights(weighted_quakes, 0.0), train.TrainConfig(**CONFIG), weight="w")


def test_the_weight_is_no_label():
    with pytest.raises(FcnnError, match="'side' cannot be both the label and the events' weight"):
        prepare(sides(), train.TrainConfig(**CONFIG), weight="side")
    with pytest.raises(FcnnError, match="no weight column 'v'"):
        prepare(sides(), train.TrainConfig(**CONFIG), weight="v")


def test_every_split_keeps_its_weights_as_given_for_the_metrics(weighted_quakes):
    data = prepare(weighted_quakes, train.TrainConfig(**CONFIG), weight="w")
    rows = np.concatenate([data.splits[s].weight for s in ("train", "val", "test")])
    assert sorted(rows.tolist()) == sorted(weighted_quakes.frame.w.tolist())
    assert data.splits["test"].y.shape[1] == 2  # test labels are never packed
    ensemble = train.fit(weighted_quakes, train.TrainConfig(**CONFIG, ensemble=2), weight="w")
    assert ensemble.metrics["test"]["rows"] == data.sizes["test"]


def test_functions_on_their_own():
    w = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_array_equal(eventweights.for_training(w, "keep"), w)
    np.testing.assert_array_equal(eventweights.for_training(w, "zero"), [0.0, 0.5, 3.0])
    np.testing.assert_array_equal(eventweights.for_training(w, "abs"), [2.0, 0.5, 3.0])
    assert eventweights.uniform(np.full(4, 2.0), np.array([])) and \
        not eventweights.uniform(np.full(4, 2.0), w)
    balanced = eventweights.balanced(np.array([1.0, 3.0, 2.0]), np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(balanced, [0.75, 2.25, 3.0])  # each class sums to 3
    np.testing.assert_allclose(eventweights.normalised(w[1:], "rows", "w"), [2 / 7, 12 / 7])


def test_a_streamed_tally_finds_what_the_arrays_give():
    rng = np.random.default_rng(3)
    w, names = rng.uniform(-0.5, 2.0, 1000), rng.choice(["a", "b"], 1000)
    tally = eventweights.Tally("w", "keep")
    for part in np.array_split(np.arange(1000), 7):  # pieces
        tally.add("train", w[part], names[part])
    tally.add("val", np.array([1.0, 3.0]))
    tally.check("t")
    assert tally.weighted
    task = type("Task", (), {"kind": "classify", "classes": ["a", "b"]})()
    weighting = tally.weighting(task, train.TrainConfig(class_weight="balanced"), "v")
    classes = (names == "b").astype(int)
    expected = eventweights.balanced(w, classes, 2)
    np.testing.assert_allclose(weighting.of_loss(w, classes, True), expected / expected.mean())
    np.testing.assert_allclose(weighting.of_loss(np.array([1.0, 3.0]), None, False), [0.5, 1.5])


def test_every_splits_metrics_and_the_epochs_headlines_are_weighted_as_given(weighted_quakes):
    """The reports of a weighted run equal scikit-learn's with sample_weight, the weights as
    given (negatives too), on each split's rows; so does each epoch's validation headline."""
    from sklearn.metrics import accuracy_score, mean_squared_error, r2_score

    w = weighted_quakes.frame.w.to_numpy() - 0.4  # some negative
    table = with_weights(weighted_quakes, w)
    config = train.TrainConfig(**CONFIG, schedule="none")
    result = train.fit(table, config, weight="w")
    data = prepare(table, config, weight="w")
    for name in ("train", "val", "test"):
        split = data.splits[name]
        x = split.x if name != "train" else None
        if x is None:  # the training rows were scaled in place: undo for the predictor
            x = data.x_scaler.inverse(split.x).astype(np.float32)
        pred = result.predictor.task.decode(result.predictor.outputs(x))
        report = result.metrics[name]
        assert report["sum_of_weights"] == pytest.approx(split.weight.sum())
        assert report["targets"]["x"]["mse"] == pytest.approx(
            mean_squared_error(split.truth[:, 0], pred[:, 0], sample_weight=split.weight),
            rel=1e-4)
        assert report["overall"]["r2"] == pytest.approx(
            r2_score(split.truth, pred, sample_weight=split.weight), rel=1e-4)
    best = result.history[result.predictor.info["best_epoch"] - 1]
    assert best["val_rmse"] == pytest.approx(result.metrics["val"]["overall"]["rmse"], rel=1e-4)
    classes = train.fit(sides(), config, weight="w")
    data = prepare(sides(), config, weight="w")
    test = data.splits["test"]
    decided = classes.predictor.task.proba(classes.predictor.outputs(test.x)).argmax(axis=1)
    assert classes.metrics["test"]["accuracy"] == pytest.approx(
        accuracy_score(test.truth, decided, sample_weight=test.weight))


def test_a_weighted_run_resumes_as_if_uninterrupted_and_only_on_its_weights(weighted_quakes):
    config = train.TrainConfig(epochs=3, batch_size=64)
    whole = train.fit(weighted_quakes, config, weight="w")

    def interrupt(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    cut = train.fit(weighted_quakes, config, on_epoch=interrupt, weight="w")
    resumed = train.fit(weighted_quakes, config, resume=cut.resume_state, weight="w")
    assert same_weights(whole, resumed) and resumed.metrics == whole.metrics
    other = with_weights(weighted_quakes, weighted_quakes.frame.w[::-1].to_numpy())
    with pytest.raises(FcnnError, match="not the data this run started with"):
        train.fit(other, config, resume=cut.resume_state, weight="w")


def test_a_sweeps_pass_takes_the_weights(weighted_quakes):
    config = train.TrainConfig(**CONFIG)
    (cohort,) = train.fit_cohorts(weighted_quakes, [(config, None)], weight="w")
    single = train.fit(weighted_quakes, config, weight="w")
    for name, value in single.predictor.net.state_dict().items():
        torch.testing.assert_close(cohort.predictor.net.state_dict()[name], value, rtol=1e-4,
                                   atol=1e-5)
    assert cohort.metrics["test"]["sum_of_weights"] == single.metrics["test"]["sum_of_weights"]


def test_a_weighted_run_keeps_the_weight_of_each_held_out_row_it_plots(weighted_quakes):
    result = train.fit(weighted_quakes, train.TrainConfig(**CONFIG), weight="w")
    sample = result.sample
    assert sample.extra["weight"] == "weight"
    rows = weighted_quakes.frame.set_index("w").loc[sample.frame["weight"]]
    assert rows["x"].to_numpy() == pytest.approx(sample.frame["x"].to_numpy())
    assert "weight" not in train.fit(weighted_quakes, train.TrainConfig(**CONFIG)).sample.frame
