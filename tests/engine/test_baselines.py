"""train --baseline: the baseline fitted on the network's split with its training weights, its
reports equal to those of the saved file's predictions, and the refusals before any epoch."""

import json
import sys

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import Table
from fcnn_cli.engine import eventweights, train
from fcnn_cli.engine.prepare import split_indices

sklearn = pytest.importorskip("sklearn")
from sklearn import metrics as skm  # noqa: E402

ROUNDS, PATIENCE = 40, 5  # few trees: the tests check plumbing and values, not accuracy


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    """Every baseline made with few rounds."""
    from fcnn_cli.network import baseline, gbdt

    monkeypatch.setattr(baseline, "make",
                        lambda name: gbdt.GradientBoostedTrees(rounds=ROUNDS, patience=PATIENCE))


def classes(n=900, seed=0):
    """Two overlapping classes of unequal size, with varied positive weights."""
    rng = np.random.default_rng(seed)
    label = np.where(rng.random(n) < 0.3, "signal", "bkg")
    x = rng.normal(size=(n, 3)) + np.where(label == "signal", 1.0, 0.0)[:, None]
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                          "w": rng.uniform(0.2, 3.0, n), "y": label})
    return Table(frame, ["y"], name="classes")


def rows_of(table, config):
    """The training, validation and test rows of the split, found independently."""
    strata = table.frame["y"].astype(str).to_numpy() if "y" in table.frame else None
    return split_indices(len(table.frame), config.val_frac, config.test_frac, config.seed,
                         strata)


@pytest.fixture(scope="module")
def weighted_run():
    table = classes()
    config = train.TrainConfig(epochs=2, seed=3, baseline="gbdt", class_weight="balanced")
    with pytest.MonkeyPatch.context() as m:
        from fcnn_cli.network import baseline, gbdt

        m.setattr(baseline, "make",
                  lambda name: gbdt.GradientBoostedTrees(rounds=ROUNDS, patience=PATIENCE))
        result = train.fit(table, config, weight="w")
    return table, config, result


def test_the_baseline_is_fitted_with_the_networks_training_weights(weighted_run):
    from sklearn.ensemble import HistGradientBoostingClassifier

    table, config, result = weighted_run
    tr, va, te = rows_of(table, config)
    f = table.frame
    x = f[["a", "b", "c"]].to_numpy(np.float32)
    y = (f["y"] == "signal").to_numpy().astype(np.int64)
    w = f["w"].to_numpy()
    # The loss's weights: balanced by class, over their mean, carried as float32.
    w_train = eventweights.balanced(w[tr], y[tr], 2)
    w_train = (w_train * len(tr) / w_train.sum()).astype(np.float32).astype(np.float64)
    w_val = (w[va] * len(va) / w[va].sum()).astype(np.float32).astype(np.float64)
    theirs = HistGradientBoostingClassifier(
        learning_rate=0.1, max_iter=ROUNDS, max_leaf_nodes=31, early_stopping=True,
        n_iter_no_change=PATIENCE, scoring="loss", random_state=0).fit(
        x[tr], y[tr], sample_weight=w_train, X_val=x[va], y_val=y[va], sample_weight_val=w_val)
    ours = result.baselines["gbdt"]
    assert ours.rounds == [theirs.n_iter_]
    assert np.allclose(ours.predict(x[te]), theirs.predict_proba(x[te]), rtol=0, atol=1e-9)


def test_metrics_json_equals_the_saved_baselines_predictions(weighted_run, tmp_path):
    from fcnn_cli.network import baseline
    from fcnn_cli.results import runs

    table, config, result = weighted_run
    runs.save_run(result, tmp_path, "classes")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    reports = saved["baselines"]["gbdt"]
    assert reports["seconds"] > 0 and set(reports) == {"seconds", "train", "val", "test"}
    loaded = baseline.load(tmp_path / "baseline_gbdt.pt")
    f = table.frame
    y = (f["y"] == "signal").to_numpy().astype(np.int64)
    for split, rows in zip(("train", "val", "test"), rows_of(table, config)):
        p = loaded.predict(f[["a", "b", "c"]].to_numpy(np.float32)[rows])
        w = f["w"].to_numpy()[rows]
        report = reports[split]
        assert report["rows"] == len(rows)
        assert report["accuracy"] == pytest.approx(
            skm.accuracy_score(y[rows], p.argmax(axis=1), sample_weight=w), abs=1e-12)
        assert report["roc_auc"] == pytest.approx(
            skm.roc_auc_score(y[rows], p[:, 1], sample_weight=w), abs=1e-6)
        assert report["cross_entropy"] == pytest.approx(
            skm.log_loss(y[rows], p, sample_weight=w), rel=1e-9)
        assert report["merit"]["signal_class"] == "signal"
    # The checkpoint's metrics stay the network's alone.
    assert "baselines" not in result.predictor.info["metrics"]


def test_the_plots_sample_holds_the_baselines_outputs_of_its_rows(weighted_run):
    table, config, result = weighted_run
    sample = result.sample
    assert sample.extra["baselines"] == ["gbdt"]
    te = rows_of(table, config)[2]
    x = table.frame[["a", "b", "c"]].to_numpy(np.float32)[te]
    # Fewer rows than a sample keeps: every test row, in the split's order.
    assert np.array_equal(sample.frame["y"].to_numpy(), table.frame["y"].to_numpy()[te])
    assert np.array_equal(sample.frame[["gbdt_p_bkg", "gbdt_p_signal"]].to_numpy(),
                          result.baselines["gbdt"].predict(x))


def test_a_regression_baseline_reports_rmse_of_its_predictions():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(700, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "u": 2 * x[:, 0] + x[:, 1] ** 2,
                          "v": np.sin(x[:, 1])})
    table = Table(frame, ["u", "v"], {"u": "km"}, name="two labels")
    config = train.TrainConfig(epochs=2, seed=2, baseline="gbdt")
    result = train.fit(table, config)
    te = split_indices(700, config.val_frac, config.test_frac, config.seed)[2]
    model = result.baselines["gbdt"]
    pred = model.predict(x[te].astype(np.float32))
    report = result.metrics["baselines"]["gbdt"]["test"]
    for k, name in enumerate(("u", "v")):
        rmse = np.sqrt(np.mean((pred[:, k] - frame[name].to_numpy()[te]) ** 2))
        assert report["targets"][name]["rmse"] == pytest.approx(rmse, rel=1e-9)
    assert np.array_equal(result.sample.frame[["gbdt_u_pred", "gbdt_v_pred"]].to_numpy(), pred)
    assert model.info["inputs"] == ["a", "b"]


def epochs_run(table, config, **options):
    """Train, recording each epoch's row: a refusal must come before the first."""
    ran = []
    with pytest.raises(FcnnError) as caught:
        train.fit(table, config, on_epoch=ran.append, **options)
    assert ran == []
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_without_scikit_learn_the_extra_is_named_before_training(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    message = epochs_run(classes(), train.TrainConfig(epochs=2, baseline="gbdt"))
    assert message == "the gbdt baseline needs scikit-learn: pip install 'fcnn[gbdt]'"


@pytest.mark.parametrize("options, said", [
    ({"stream": True}, "baseline=gbdt: a baseline fits on a table in memory, not a streamed "
                       "one; leave out stream"),
    ({"folds": 3}, "baseline=gbdt: k-fold would need a baseline for each fold"),
])
def test_streams_and_folds_are_refused_before_training(options, said):
    assert epochs_run(classes(), train.TrainConfig(epochs=2, baseline="gbdt", **options)) \
        .startswith(said)


def test_what_the_baseline_refuses_is_refused_before_training():
    rng = np.random.default_rng(0)
    labels = np.repeat([f"c{k}" for k in range(101)], 4)
    table = Table(pd.DataFrame({"a": rng.normal(size=len(labels)), "y": labels}), ["y"],
                  name="many")
    message = epochs_run(table, train.TrainConfig(epochs=2, baseline="gbdt", val_frac=0.25,
                                                  test_frac=0.25))
    assert message == "the gbdt baseline takes at most 100 classes (a tree each per round), " \
                      "not 101"


def test_an_interrupted_run_fits_none_and_its_resumption_the_runs_own():
    config = train.TrainConfig(epochs=3, seed=5, baseline="gbdt")

    def interrupt(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    cut = train.fit(classes(), config, on_epoch=interrupt)
    assert cut.interrupted and cut.baselines == {} and "baselines" not in cut.metrics
    resumed = train.fit(classes(), config, resume=cut.resume_state)
    whole = train.fit(classes(), config)
    ours, theirs = ({split: {k: v for k, v in report.items() if k != "predict_seconds"}
                     for split, report in r.metrics["baselines"]["gbdt"].items()
                     if split != "seconds"} for r in (resumed, whole))
    assert json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True)  # NaN too
