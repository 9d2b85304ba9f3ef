import types

import numpy as np
import pandas as pd
import pytest
import torch

from fcnn_cli.engine import train
from fcnn_cli.machine.devices import resolve_device
from fcnn_cli.engine.prepare import split_indices
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import Table


def test_split_is_disjoint_complete_and_seeded():
    tr, va, te = split_indices(100, 0.1, 0.2, seed=5)
    assert (len(tr), len(va), len(te)) == (70, 10, 20)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(100))
    again = split_indices(100, 0.1, 0.2, seed=5)
    assert all((a == b).all() for a, b in zip((tr, va, te), again))


def test_training_learns_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 3.0
    table = Table(pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}), name="lin")
    result = train.fit(table, train.TrainConfig(epochs=20, seed=1), targets=["y"])
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] / 10
    assert result.metrics["test"]["overall"]["r2"] > 0.99
    assert result.sizes == {"train": 720, "val": 40, "test": 40}


def test_scaler_is_fitted_on_the_training_split_only(quakes):
    result = train.fit(quakes, train.TrainConfig(epochs=1, val_frac=0.2, test_frac=0.3, seed=9))
    tr, _, _ = split_indices(len(quakes.frame), 0.2, 0.3, 9)
    train_x = quakes.frame[result.predictor.features].to_numpy()[tr]
    assert np.allclose(result.predictor.x_scaler.shift, train_x.mean(axis=0))
    assert not np.allclose(result.predictor.x_scaler.shift,
                           quakes.frame[result.predictor.features].to_numpy().mean(axis=0))


def test_same_seed_same_metrics_other_seed_differs(quakes):
    cfg = dict(epochs=2, batch_size=64)
    a = train.fit(quakes, train.TrainConfig(seed=4, **cfg))
    b = train.fit(quakes, train.TrainConfig(seed=4, **cfg))
    c = train.fit(quakes, train.TrainConfig(seed=5, **cfg))
    assert a.metrics == b.metrics
    assert a.metrics != c.metrics


def test_best_validation_weights_are_kept(quakes):
    result = train.fit(quakes, train.TrainConfig(epochs=6, lr=0.05, schedule="none", seed=2))
    best = min(result.history, key=lambda r: r["val_loss"])
    assert result.predictor.info["best_epoch"] == best["epoch"]
    assert result.metrics["val"]["overall"]["rmse"] == pytest.approx(best["val_rmse"], rel=1e-4)


def test_early_stopping(quakes):
    result = train.fit(quakes, train.TrainConfig(epochs=60, lr=0.05, schedule="none",
                                                 patience=3, seed=0))
    assert len(result.history) < 60 and "early stop" in result.stopped
    best = result.predictor.info["best_epoch"]
    assert len(result.history) == best + 3


def test_explicit_validation_table(quakes):
    val = Table(quakes.frame.iloc[:50].copy(), name="val.csv")
    result = train.fit(quakes, train.TrainConfig(epochs=1, test_frac=0.1), val_table=val)
    assert result.sizes == {"train": 540, "val": 50, "test": 60}


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"lr": -1.0}, {"val_frac": 1.2},
                                    {"val_frac": 0.5, "test_frac": 0.5}, {"optimizer": "lbfgs"},
                                    {"batch_size": 0}, {"device": "tpu"}])
def test_config_is_validated(kwargs):
    with pytest.raises(FcnnError):
        train.TrainConfig(**kwargs)


def test_cuda_request_without_gpu_is_a_clear_error(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(FcnnError, match="no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


@pytest.mark.slow
def test_default_training_meets_the_lecture_accuracy():
    """docs/training.md's promise: default data, default settings, test mean distance under 70 m."""
    from fcnn_cli.data import simulate

    result = train.fit(simulate.earthquakes())
    assert result.metrics["test"]["distance"]["mean"] < 0.070  # km


@pytest.mark.parametrize("options", [dict(), dict(fast=False), dict(schedule="plateau"),
                                     dict(optimizer="sgd")],
                         ids=["fast-cosine", "autograd", "plateau", "sgd"])
def test_resume_after_an_interrupt_equals_an_uninterrupted_run(quakes, options):
    import torch

    config = train.TrainConfig(epochs=4, batch_size=64, **options)
    whole = train.fit(quakes, config)

    def interrupt(row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt

    cut = train.fit(quakes, config, on_epoch=interrupt)
    assert cut.interrupted and cut.resume_state["epoch"] == 2
    resumed = train.fit(quakes, config, resume=cut.resume_state)
    a, b = whole.predictor.net.state_dict(), resumed.predictor.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["lr"] for r in resumed.history] == [r["lr"] for r in whole.history]
    assert resumed.metrics == whole.metrics


def test_a_damaged_resume_state_is_a_clear_error(quakes):
    config = train.TrainConfig(epochs=3, batch_size=64)

    def first_epoch_then_stop(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    state = train.fit(quakes, config, on_epoch=first_epoch_then_stop).resume_state
    for damage in ("average", "optimizer", "model"):
        broken = {**state}
        if damage == "model":
            broken["model"] = {"nonsense": state["model"][next(iter(state["model"]))]}
        else:
            del broken[damage]
        with pytest.raises(FcnnError, match="damaged or from another version" if damage !=
                           "model" else "of another network .its layers differ: missing "):
            train.fit(quakes, config, resume=broken)


@pytest.mark.parametrize("ensemble", [1, 2])
@pytest.mark.parametrize("net, differ", [
    ({"depth": 3, "width": 8}, "missing body.2.0.weight, body.2.0.bias"),
    ({"depth": 1, "width": 8}, "unexpected body.1.0.weight, body.1.0.bias"),
    ({"depth": 2, "width": 16}, "resized body.0.0.weight, body.0.0.bias, body.1.0.weight, …"),
])
def test_a_resume_state_of_another_network_is_refused_in_one_line(quakes, ensemble, net,
                                                                   differ):
    config = train.TrainConfig(epochs=3, batch_size=64, ensemble=ensemble, threads=1)

    def stop(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    state = train.fit(quakes, config, net={"depth": 2, "width": 8}, on_epoch=stop).resume_state
    with pytest.raises(FcnnError) as refused:
        train.fit(quakes, config, net=net, resume=state)
    assert str(refused.value) == ("the saved training state is of another network (its layers "
                                  f"differ: {differ}); cannot resume")


def test_a_test_table_takes_the_place_of_the_test_split(quakes):
    test = Table(quakes.frame.iloc[:80].copy(), name="test.csv")
    result = train.fit(quakes, train.TrainConfig(epochs=1, val_frac=0.1), test_table=test)
    assert result.sizes == {"train": 540, "val": 60, "test": 80}
    assert result.metrics["test"]["rows"] == 80
    held_out = train.fit(quakes, train.TrainConfig(epochs=1, val_frac=0.1))
    assert held_out.sizes == {"train": 510, "val": 60, "test": 30}


def test_too_small_a_split_says_what_it_left_and_why(quakes):
    tiny = Table(quakes.frame.iloc[:3].copy(), targets=["x", "y"], name="tiny.csv")
    with pytest.raises(FcnnError, match="left 1 to train on, 1 to validate and 1 to test"):
        train.fit(tiny, train.TrainConfig(val_frac=0.3, test_frac=0.3))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300),
                          "c": [f"k{i // 2}" for i in range(300)]})  # 150 classes of 2 rows
    with pytest.raises(FcnnError, match="largest of the 150 classes has 2 row.*exceed 0.25"):
        train.fit(Table(frame, name="many.csv"), train.TrainConfig(epochs=1), targets=["c"])
    result = train.fit(Table(frame, name="many.csv"), train.TrainConfig(
        epochs=1, val_frac=0.3, test_frac=0.0), targets=["c"])
    assert result.sizes == {"train": 150, "val": 150, "test": 0}
    ten = Table(quakes.frame.iloc[:10].copy(), targets=["x", "y"], name="ten.csv")
    with pytest.raises(FcnnError, match=r"round\(10 × 0.05\) is 0, so the validation fraction "
                                        "must exceed 0.05; or give a separate validation file"):
        train.fit(ten, train.TrainConfig(epochs=1))


def test_no_validation_fraction_and_no_validation_table_is_a_clear_error(quakes):
    with pytest.raises(FcnnError, match="no rows left for validation .*fraction is 0"):
        train.fit(quakes, train.TrainConfig(epochs=1, val_frac=0.0))


@pytest.mark.parametrize("nan", ["error", "drop"])
def test_a_separate_table_without_a_column_is_named(quakes, nan):
    short = Table(quakes.frame.drop(columns=["ts4"]).iloc[:50], name="short.csv")
    for role in ("val_table", "test_table"):
        with pytest.raises(FcnnError, match=r"short.csv: missing column\(s\) 'ts4'"):
            train.fit(quakes, train.TrainConfig(epochs=1, nan=nan), **{role: short})


def test_an_empty_test_table_is_refused_as_an_empty_validation_table_is(quakes):
    empty = Table(quakes.frame.iloc[:0].copy(), name="empty.csv")
    for role, verb in (("val_table", "validate"), ("test_table", "test")):
        with pytest.raises(FcnnError, match=f"empty.csv: no rows to {verb} on"):
            train.fit(quakes, train.TrainConfig(epochs=1), **{role: empty})


def test_the_training_split_is_scaled_once_in_place_and_reported_as_raw(quakes):
    from fcnn_cli.core.config import TrainConfig
    from fcnn_cli.engine.prepare import prepare

    config = TrainConfig(epochs=1, seed=4)
    data = prepare(quakes, config)
    rows = split_indices(len(quakes.frame), config.val_frac, config.test_frac, config.seed)[0]
    raw = quakes.frame[data.features].to_numpy(np.float32)[rows]
    assert data.scaled("train") and not data.scaled("val") and not data.scaled("test")
    assert np.array_equal(data.splits["train"].x, data.x_scaler.transform(raw))
    assert data.feature_range() == {"min": raw.min(axis=0).tolist(),
                                    "max": raw.max(axis=0).tolist()}
    tensors = data.on(torch.device("cpu"))
    assert np.shares_memory(tensors.x.numpy(), data.splits["train"].x)  # no second copy
    result = train.fit(quakes, config)
    report = result.predictor.task.metrics(result.predictor.units)
    result.predictor.add_to(report, raw, data.splits["train"].truth)
    assert report.report() == result.metrics["train"]


@pytest.mark.parametrize("val", [False, True])
def test_a_consumed_table_gives_up_its_columns_and_the_same_preparation(quakes, val):
    import dataclasses

    from fcnn_cli.core.config import TrainConfig
    from fcnn_cli.engine.prepare import prepare

    config = TrainConfig(epochs=1, seed=4)
    separate = Table(quakes.frame.iloc[:50].copy(), quakes.targets, quakes.units, "val") \
        if val else None
    kept = prepare(quakes, config, val_table=separate)
    handed = dataclasses.replace(quakes, frame=quakes.frame.copy())
    consumed = prepare(handed, config, val_table=separate, consume=True)
    used = kept.features + kept.targets
    assert not set(used) & set(handed.frame.columns)  # gone from the table handed over
    assert set(used) <= set(quakes.frame.columns)  # the caller's own table is untouched
    assert consumed.digest == kept.digest
    for name in kept.splits:
        for part in ("x", "y", "truth"):
            assert np.array_equal(getattr(consumed.splits[name], part),
                                  getattr(kept.splits[name], part))


def test_a_consumed_table_names_a_bad_value_as_a_kept_one_does(quakes):
    import dataclasses

    from fcnn_cli.core.config import TrainConfig
    from fcnn_cli.engine.prepare import prepare

    frame = quakes.frame.copy()
    frame.loc[frame.index[7], frame.columns[-1]] = np.inf  # in the last feature column
    messages = []
    for consume in (False, True):
        with pytest.raises(FcnnError) as error:
            prepare(dataclasses.replace(quakes, frame=frame.copy()), TrainConfig(),
                    consume=consume)
        messages.append(str(error.value))
    assert messages[0] == messages[1] and "row" in messages[0]


def test_an_epoch_gathers_every_training_row_once_in_the_seeded_order(quakes):
    from fcnn_cli.core.config import TrainConfig
    from fcnn_cli.machine.distributed import World
    from fcnn_cli.engine.prepare import prepare

    tensors = prepare(quakes, TrainConfig()).on(torch.device("cpu"))
    batches = list(tensors.batches(torch.Generator().manual_seed(7), 64, World(), None))
    order = torch.randperm(len(tensors.x), generator=torch.Generator().manual_seed(7))
    assert [size for *_, size in batches][:-1] == [64] * (len(batches) - 1)
    assert all(share == 1.0 and len(x) == size for x, _, share, size in batches)
    assert torch.equal(torch.cat([x for x, *_ in batches]), tensors.x[order])
    assert torch.equal(torch.cat([y for _, y, *_ in batches]), tensors.y[order])


def _with_missing(table, share, seed=0, columns=None):
    """``table`` with ``share`` of the values of ``columns`` (the picks, by default) blanked at
    random."""
    frame = table.frame.copy()
    rng = np.random.default_rng(seed)
    for c in columns or [c for c in frame.columns if c.startswith("t")]:
        frame.loc[rng.random(len(frame)) < share, c] = np.nan
    return Table(frame, table.targets, table.units, table.name)


def test_fill_takes_the_training_medians_and_adds_an_indicator_per_feature_that_missed(quakes):
    holey = _with_missing(quakes, 0.2, columns=["tp1", "ts2"])
    config = train.TrainConfig(epochs=2, nan="fill", seed=6)
    result = train.fit(holey, config)
    p = result.predictor
    assert p.features == [c for c in quakes.frame.columns if c not in ("x", "y")]  # raw names
    assert p.inputs == p.features + ["tp1_missing", "ts2_missing"]
    assert p.net.config.n_in == len(p.inputs) and len(p.x_scaler.shift) == len(p.inputs)
    rows, _, _ = split_indices(len(holey.frame), config.val_frac, config.test_frac, config.seed)
    raw = holey.frame[p.features].to_numpy(np.float32)[rows]
    assert p.filler.medians == [float(np.nanmedian(raw[:, i].astype(np.float64)))
                                for i in range(len(p.features))]
    assert result.sizes == {"train": 540, "val": 30, "test": 30}  # no row left out
    # predict fills a new table's rows as training did
    x = p.feature_matrix(holey)
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x[:, -2:], holey.frame[["tp1", "ts2"]].isna().to_numpy())


def test_fill_leaves_out_rows_without_a_label_with_the_notice_of_drop(quakes, logged):
    holey = _with_missing(quakes, 0.1, columns=["tp1", "x"])
    result = train.fit(holey, train.TrainConfig(epochs=1, nan="fill"))
    lost = int(holey.frame.x.isna().sum())
    assert sum(result.sizes.values()) == 600 - lost
    assert f"leaving out {lost} row(s) with NaN, missing or infinite values ('x': {lost})" \
        in logged.text
    assert result.predictor.filler.flagged == ["tp1"]


def test_a_value_missing_where_training_had_none_is_filled_with_one_warning(quakes, logged):
    result = train.fit(_with_missing(quakes, 0.2, columns=["tp1"]),
                       train.TrainConfig(epochs=1, nan="fill"))
    new = _with_missing(quakes, 0.3, seed=1, columns=["ts3"])
    frames = list(result.predictor.predict_chunks([new, new]))
    assert all(np.isfinite(f[["x_pred", "y_pred"]].to_numpy()).all() for _, f in frames)
    warned = [r for r in logged.records if "never missing in the training rows" in r.message]
    assert len(warned) == 1 and "'ts3'" in warned[0].message
    # filled with its median: as a table holding the median there
    median = result.predictor.filler.medians[result.predictor.features.index("ts3")]
    same = Table(new.frame.fillna({"ts3": median}), new.targets)
    np.testing.assert_array_equal(result.predictor.feature_matrix(new),
                                  result.predictor.feature_matrix(same))


def test_ensembles_and_sweeps_fill_too(quakes):
    holey = _with_missing(quakes, 0.2)
    config = train.TrainConfig(epochs=1, nan="fill", ensemble=2)
    assert train.fit(holey, config).predictor.filler.flagged
    results = train.fit_cohorts(holey, [(config, None), (train.TrainConfig(
        epochs=1, nan="fill", lr=0.01), None)])
    assert all(r.predictor.filler.width == 16 for r in results)


def test_filling_30_percent_missing_picks_beats_dropping_their_rows():
    """The acceptance test of nan='fill': 30 % of the pick values blanked at random leave
    about 6 % of the rows complete. Both models score the same new events, as they come (30 %
    of their picks missing too): the filled model fills them itself; the dropped one, which
    cannot take a missing value, is given them filled with the same training medians."""
    from fcnn_cli.data import simulate

    holey = _with_missing(simulate.earthquakes(n=4000, seed=4), 0.3, seed=2)
    new = _with_missing(simulate.earthquakes(n=500, seed=5), 0.3, seed=3)
    config = dict(epochs=40, seed=1)
    filled = train.fit(holey, train.TrainConfig(**config, nan="fill")).predictor
    dropped = train.fit(holey, train.TrainConfig(**config, nan="drop")).predictor
    medians = dict(zip(filled.features, filled.filler.medians))
    given = Table(new.frame.fillna(medians), new.targets, new.units, new.name)
    scores = [filled.evaluate(new)["distance"]["mean"],
              dropped.evaluate(given)["distance"]["mean"]]
    assert scores[0] < scores[1] / 3, scores  # measured: 2.4 km against 13 km


@pytest.mark.parametrize("folds, epochs", [(1, 334), (3, 500)])
def test_k_fold_plans_its_epochs_from_the_rows_each_network_trains_on(folds, epochs):
    data = types.SimpleNamespace(sizes={"train": 3000}, kind="regress")
    config = train._planned(train.TrainConfig(folds=folds), data)
    assert (config.epochs, config.best_by) == (epochs, "loss")


def test_the_progress_is_told_the_planned_epochs():
    told = []
    progress = types.SimpleNamespace(plan=told.append)
    data = types.SimpleNamespace(sizes={"train": 600}, kind="classify")
    train._planned(train.TrainConfig(), data, progress)
    assert told == [500]


def test_a_small_table_without_epochs_trains_five_members_as_asked_ones_would(quakes):
    small = Table(quakes.frame.iloc[:60], quakes.targets, quakes.units, quakes.name)
    chosen = train.fit(small, train.TrainConfig(batch_size=64, seed=2))
    assert (chosen.config.ensemble, chosen.config.epochs) == (5, 500)
    assert len(chosen.predictor.info["best_epochs"]) == 5
    asked = train.fit(small, train.TrainConfig(epochs=500, ensemble=5, batch_size=64, seed=2))
    assert chosen.metrics == asked.metrics


@pytest.mark.parametrize("options", [{"folds": 3}, {"diagnostics": True},
                                     {"schedule": "plateau"}, {"ensemble": 1}, {"epochs": 3}])
def test_a_small_table_trains_one_network_where_members_are_refused_or_not_left(quakes,
                                                                               options):
    small = Table(quakes.frame.iloc[:60], quakes.targets, quakes.units, quakes.name)
    result = train.fit(small, train.TrainConfig(batch_size=64, seed=2, patience=2, **options))
    assert result.config.ensemble == 1
    assert "best_epochs" not in result.predictor.info or options.get("folds")


@pytest.mark.parametrize("streamed, processes", [(True, False), (False, True)])
def test_a_streamed_table_or_several_processes_train_one_network(streamed, processes):
    from fcnn_cli.core.config import NetConfig

    data = object() if streamed else train.Prepared.__new__(train.Prepared)
    data = types.SimpleNamespace(sizes={"train": 60}) if streamed else data
    world = types.SimpleNamespace(distributed=processes)
    config = train.TrainConfig(epochs=500, ensemble=1)
    chosen = train._members(config, data, world, NetConfig(n_in=8, n_out=2),
                            torch.device("cpu"))
    assert chosen is config


def test_members_that_would_not_fit_in_memory_leave_one_network(quakes, monkeypatch):
    from fcnn_cli.core.config import NetConfig
    from fcnn_cli.engine import state
    from fcnn_cli.machine import devices

    config = train.TrainConfig(batch_size=64, seed=2, patience=2)
    one, _ = state.training_bytes(NetConfig(n_in=8, n_out=2), config.planned(54), 1, 54)
    monkeypatch.setattr(devices, "memory_available", lambda device: 2 * one)
    small = Table(quakes.frame.iloc[:60], quakes.targets, quakes.units, quakes.name)
    assert train.fit(small, config).config.ensemble == 1
    monkeypatch.setattr(devices, "memory_available", lambda device: 10 * one)
    assert train.fit(small, config).config.ensemble == 5
