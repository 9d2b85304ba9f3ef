"""The figures of merit of a run's reports and its working point (engine/figures.py, as fit
uses it), checked against figures computed here from the split's own predictions."""

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.core.config import TrainConfig
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import Table
from fcnn_cli.engine import figures, train
from fcnn_cli.engine.prepare import prepare


def gaussians(n=1500, seed=3, weighted=False):
    """Two overlapping Gaussian classes (signal shifted by 1 in both inputs)."""
    rng = np.random.default_rng(seed)
    kind = np.where(rng.random(n) < 0.4, "signal", "background")
    x = rng.normal(size=(n, 2)) + (kind == "signal")[:, None]
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "kind": kind})
    if weighted:
        frame["w"] = rng.uniform(0.5, 2.0, n)
    return Table(frame, ["kind"], name="gauss")


def fit(table, weight=None, **options):
    config = TrainConfig(**{"epochs": 3, "batch_size": 128, "seed": 1, "val_frac": 0.3,
                            "test_frac": 0.2, **options})
    return train.fit(table, config, {"width": 16, "depth": 1}, features=["a", "b"],
                     weight=weight)


def split_scores(result, table, split, weight=None):
    """p(signal), the signal flags and the weights of a split's rows, from the predictor."""
    data = prepare(table, result.config, features=["a", "b"], weight=weight)
    x, truth, w = next(data.chunks(split))
    (_, out), = result.predictor.outputs_of([(None, x)], scaled=data.scaled(split))
    p = result.predictor.task.proba(out)
    s = result.predictor.task.classes.index("signal")
    return p[:, s], truth == s, w


def signal_at(score, is_signal, weight, target):
    """ε_S at ε_B = target, independently: the loosest cut with ε_B ≤ target, interpolated to
    the next looser one as the module documents."""
    w = np.ones(len(score)) if weight is None else weight
    cuts = np.unique(score.astype(np.float32))[::-1]
    s32 = score.astype(np.float32)
    eb = np.array([w[~is_signal & (s32 >= c)].sum() for c in cuts]) / w[~is_signal].sum()
    es = np.array([w[is_signal & (s32 >= c)].sum() for c in cuts]) / w[is_signal].sum()
    return float(np.interp(target, np.r_[0.0, eb], np.r_[0.0, es]))


@pytest.mark.parametrize("weighted", [False, True])
def test_each_split_reports_the_signal_efficiency_at_fixed_background(weighted):
    table = gaussians(weighted=weighted)
    weight = "w" if weighted else None
    result = fit(table, weight)
    for split in ("train", "val", "test"):
        merit = result.metrics[split]["merit"]
        assert merit["signal_class"] == "signal"
        at = {p["background_efficiency"]: p for p in merit["signal_efficiency_at"]}
        score, is_signal, w = split_scores(result, table, split, weight)
        assert at[0.1]["signal_efficiency"] == pytest.approx(
            signal_at(score, is_signal, w, 0.1), abs=1e-6)
        if not np.isnan(at[0.01]["signal_efficiency"]):
            assert at[0.01]["signal_efficiency"] == pytest.approx(
                signal_at(score, is_signal, w, 0.01), abs=1e-6)


def test_a_working_point_is_found_on_the_validation_split_and_every_report_cuts_there():
    table = gaussians()
    result = fit(table, working_point="eff=0.7")
    task = result.predictor.task
    assert task.signal == "signal"
    assert task.working_point["asked"] == {"signal_efficiency": 0.7}
    cut = task.working_point["cut"]
    score, is_signal, _ = split_scores(result, table, "val")
    assert (score[is_signal] >= cut).mean() >= 0.7
    # the tightest such cut: one signal row fewer would miss the target
    assert (score[is_signal] > np.sort(score[is_signal & (score >= cut)])[0]).mean() < 0.7
    for split in ("val", "test"):
        score, is_signal, _ = split_scores(result, table, split)
        report = result.metrics[split]
        predicted = score >= cut
        assert report["accuracy"] == pytest.approx((predicted == is_signal).mean())
        point = report["merit"]["working_point"]
        assert point["cut"] == cut
        assert point["signal_efficiency"] == pytest.approx(predicted[is_signal].mean())
        assert point["background_efficiency"] == pytest.approx(predicted[~is_signal].mean())


def test_a_k_fold_working_point_is_found_out_of_fold():
    table = gaussians(600)
    result = fit(table, working_point="bkg=0.2", folds=3, test_frac=0.0, val_frac=0.05)
    cut = result.predictor.task.working_point["cut"]
    point = result.metrics["val"]["merit"]["working_point"]
    assert point["cut"] == cut and point["background_efficiency"] <= 0.2
    assert result.metrics["folds"]["merit"]["signal_class"] == "signal"
    # Each row scored here by its own fold's network alone (the member that never saw it).
    data = prepare(table, result.config, features=["a", "b"])
    x, truth, _ = next(data.chunks("val"))
    fold = data.folds.of_val()
    (_, out), = result.predictor.outputs_of([(None, x)], scaled=data.scaled("val"))
    task = result.predictor.task
    own = np.stack([task.proba(member) for member in out])[fold, np.arange(len(fold))]
    score = own[:, task.classes.index("signal")].astype(np.float32)
    background = score[truth != task.classes.index("signal")]
    # the loosest cut with ε_B ≤ 0.2: it passes at most 20 % of the background, and the next
    # looser score passes more
    assert (background >= cut).mean() <= 0.2
    looser = score[score < cut].max()
    assert (background >= looser).mean() > 0.2


def test_a_background_efficiency_no_cut_meets_leaves_the_run_without_a_working_point(caplog):
    from fcnn_cli.network import merit

    data = prepare(gaussians(300), TrainConfig(), features=["a", "b"])
    # the best-scored row is background: every cut passes half the background or more
    found = merit.report(np.array([0.9, 0.5, 0.1]), np.array([False, True, False]), bkg=0.1)
    task = figures.chosen(data.task, TrainConfig(working_point="bkg=0.1"), found)
    assert task.working_point is None and task.signal == "signal"
    assert data.task.signal is None  # the data's task is left as it was
    assert "saved without a working point" in caplog.text


@pytest.mark.parametrize("options, weight, message", [
    ({"working_point": "eff=0.7", "val_frac": 0.0}, None, "holds none"),
    ({"yields": True}, None, "needs event weights"),
    ({"lumi": 10.0}, None, "needs event weights"),
    ({"signal": "muon"}, None, "signal 'muon' is not a class"),
])
def test_the_figures_options_are_refused_before_training(options, weight, message, monkeypatch):
    monkeypatch.setattr(train.loop, "run", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(FcnnError, match=message):
        fit(gaussians(200), weight, **options)


def test_regression_refuses_the_figures_options(monkeypatch):
    monkeypatch.setattr(train.loop, "run", lambda *a, **k: pytest.fail("trained"))
    frame = gaussians(200).frame.assign(y=lambda f: f.a + f.b)
    with pytest.raises(FcnnError, match="working_point is for classification"):
        train.fit(Table(frame, ["y"], name="reg"), TrainConfig(epochs=1, working_point="eff=0.5"),
                  features=["a", "b"])


def test_yields_scale_a_split_to_the_whole_table():
    table = gaussians(weighted=True)
    config = TrainConfig(yields=True, val_frac=0.3, test_frac=0.2, seed=1)
    data = prepare(table, config, features=["a", "b"], weight="w")
    got = figures.for_split(data, config, "val")
    whole = table.frame.groupby("kind")["w"].sum()
    _, truth, w = next(data.chunks("val"))
    s = data.task.classes.index("signal")
    assert got.signal == s
    for k, name in enumerate(data.task.classes):
        assert got.yields[k] == pytest.approx(whole[name] / w[truth == k].sum())
    assert figures.for_split(data, TrainConfig(lumi=2.0), "val").yields[s] == \
        pytest.approx(2 * got.yields[s])


def test_yields_of_a_separate_file_are_its_own_and_data_scales_only_its_splits():
    table, other = gaussians(weighted=True), gaussians(500, seed=8, weighted=True)
    config = TrainConfig(yields=True, val_frac=0.3, seed=1)
    data = prepare(table, config, features=["a", "b"], weight="w", test_table=other)
    assert data.separate == ("test",)
    # the test file is its own whole sample: its weights (× lumi) are the yields
    assert figures.for_split(data, config, "test").yields == (1.0, 1.0)
    assert figures.for_split(data, TrainConfig(lumi=3.0), "test").yields == (3.0, 3.0)
    # the validation split is scaled to DATA's sums alone, not the test file's
    got = figures.for_split(data, config, "val")
    whole = table.frame.groupby("kind")["w"].sum()
    _, truth, w = next(data.chunks("val"))
    for k, name in enumerate(data.task.classes):
        assert got.yields[k] == pytest.approx(whole[name] / w[truth == k].sum())


def test_a_streamed_test_file_is_its_own_whole_sample(tmp_path):
    from fcnn_cli.data import sources
    from fcnn_cli.data.writer import write_table
    from fcnn_cli.engine import stream

    write_table(gaussians(weighted=True), tmp_path / "data.parquet")
    write_table(gaussians(500, seed=8, weighted=True), tmp_path / "test.parquet")
    config = TrainConfig(lumi=2.0, val_frac=0.3, seed=1)
    data = stream.prepare(sources.open_source(tmp_path / "data.parquet"), config,
                          features=["a", "b"], test=sources.FileChunks(tmp_path / "test.parquet"),
                          weight="w")
    assert data.separate == ("test",)
    assert figures.for_split(data, config, "test").yields == (2.0, 2.0)
