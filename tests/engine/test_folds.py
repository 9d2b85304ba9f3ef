"""k-fold training: every row trained on by the other folds' networks and scored by its own
fold's, which never saw it; the fold rule; metrics out of fold and per fold; the checkpoint
and predict; weights, filled values and resume."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from forgery import in_meta, resigned
from fcnn_cli.commands import cli
from fcnn_cli.core.config import TrainConfig, Unsupported
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import simulate
from fcnn_cli.data.tables import Table
from fcnn_cli.engine import folds, train
from fcnn_cli.engine.prepare import prepare
from fcnn_cli.network import checkpoint
from fcnn_cli.network.foldrule import FoldRule

NET = {"depth": 2, "width": 12}
CONFIG = dict(epochs=3, batch_size=32, threads=1, seed=2)
FEATURES = ["tp1", "ts1", "tp2", "ts2", "tp3", "ts3", "tp4", "ts4"]


def events(n=500, seed=1, repeat=1):
    """Earthquakes with an event number, each number on ``repeat`` rows in a row."""
    quakes = simulate.earthquakes(n=n, seed=seed)
    frame = quakes.frame.assign(event=7_000_000 + np.arange(n) // repeat * 13)
    return Table(frame, quakes.targets, quakes.units, "events", extra=quakes.extra)


def sides(n=600, seed=2):
    """A classification table: which side of x = 10 a quake is."""
    quakes = simulate.earthquakes(n=n, seed=seed)
    frame = quakes.frame.drop(columns=["x", "y"]).assign(
        side=np.where(quakes.frame.x > 10, "east", "west"), event=np.arange(n))
    return Table(frame, ["side"], name="sides")


def fit(table, net=None, weight=None, **options):
    config = TrainConfig(**{**CONFIG, "folds": 5, **options})
    return train.fit(table, config, net={**NET, **(net or {})}, weight=weight)


@pytest.fixture(scope="module")
def by_event():
    table = events()
    return table, fit(table, fold_by="event")


def fold_of_training_rows(data):
    """The fold of each row of the training split, from the spans of each fold."""
    return np.repeat(np.arange(data.folds.k), np.diff(data.folds.train))


def test_each_network_trains_outside_its_fold_and_validates_on_it(monkeypatch):
    """Member k's rows of every epoch are the training rows outside fold k, each at least
    once; it is validated on fold k's rows; and the folds are those of the rule: the event
    number, a feature here too, read back from the rows of each fold's span."""
    table = events(n=300)
    seen, judged = [], []
    orders, validation = folds.MemberRows.orders, folds.MemberRows.validation_rows
    monkeypatch.setattr(folds.MemberRows, "orders",
                        lambda self, g, kind: seen.append(orders(self, g, kind)) or seen[-1])
    monkeypatch.setattr(folds.MemberRows, "validation_rows",
                        lambda self, m: judged.append((m, validation(self, m))) or judged[-1][1])
    config = TrainConfig(**{**CONFIG, "folds": 5, "fold_by": "event", "epochs": 2})
    train.fit(table, config, net=NET, features=FEATURES + ["event"])
    data = prepare(table, config, features=FEATURES + ["event"])
    fold = fold_of_training_rows(data)
    most = max(len(fold) - n for n in np.bincount(fold))  # every member takes as many rows
    assert len(seen) == 2 and all(order.shape == (5, most) for order in seen)
    for order in seen:
        for k, rows in enumerate(order.numpy()):
            assert set(rows) == set(np.flatnonzero(fold != k))
    assert sorted({(m, (s.start, s.stop)) for m, s in judged}) == \
        [(k, (int(data.folds.val[k]), int(data.folds.val[k + 1]))) for k in range(5)]
    raw = data.x_scaler.inverse(data.splits["val"].x)[:, -1]
    event = np.round(raw).astype(np.int64)
    assert (FoldRule(5, "event").of_values(pd.Series(event)) == data.folds.of_val()).all()


def test_every_row_is_scored_by_the_network_that_did_not_see_it(by_event):
    """Given the table with its fold column, the predictor scores each row by its fold's
    network; "val" is those scores' report, "train" that of the other networks' mean."""
    table, result = by_event
    predictor = result.predictor
    each = predictor.outputs(predictor.feature_matrix(table))  # 5 × rows × outputs
    fold = predictor.folds.of_table(table)
    own = each[fold, np.arange(len(fold))]
    pd.testing.assert_frame_equal(predictor.predict(table),
                                  predictor.task.frame(own).set_axis(table.frame.index))
    truth = table.frame[["x", "y"]].to_numpy()
    mse = ((predictor.task.decode(own) - truth) ** 2).mean()
    assert result.metrics["val"]["overall"]["mse"] == pytest.approx(mse, rel=1e-5)
    others = np.stack([np.delete(each[:, i], fold[i], axis=0) for i in range(len(fold))], 1)
    inside = predictor.task.decode(others).mean(axis=0)
    assert result.metrics["train"]["overall"]["mse"] == pytest.approx(
        ((inside - truth) ** 2).mean(), rel=1e-5)
    assert result.metrics["folds"]["rows"] == result.metrics["val"]["rows"] == len(truth)


@pytest.mark.parametrize("make, figure", [(events, ("overall", "mse")), (sides, ("accuracy",))])
def test_out_of_fold_metrics_lie_within_the_folds_spread(make, figure):
    result = fit(make())
    def at(report):
        for key in figure:
            report = report[key]
        return report
    each = [at(r) for r in result.metrics["folds"]["each"]]
    summary = result.metrics["folds"]
    assert min(each) <= at(result.metrics["val"]) <= max(each)
    assert at(summary) == pytest.approx(np.mean(each))
    assert at(summary["std"]) == pytest.approx(np.std(each, ddof=1))
    assert abs(at(result.metrics["val"]) - at(summary)) <= 2 * at(summary["std"])
    stratified = {"strata": "side"} if make is sides else {}  # a classification's
    assert summary["rule"] == {"k": 5, "by": None, "seed": 2, **stratified}


def test_fold_by_puts_equal_event_numbers_in_one_fold():
    """Rows of one event share a fold in training; the fold of an event number is the same
    whatever the file, its type, its order or the seed, and stays what it is (pinned)."""
    table = events(n=300, repeat=3)
    config = TrainConfig(**CONFIG, folds=5, fold_by="event")
    data = prepare(table, config, features=FEATURES + ["event"])
    raw = np.round(data.x_scaler.inverse(data.splits["val"].x)[:, -1]).astype(np.int64)
    spans = [set(raw[a:b]) for a, b in zip(data.folds.val, data.folds.val[1:])]
    assert sum(len(s) for s in spans) == len(set(raw)) == 100  # no event in two folds
    rule = FoldRule(5, "event")
    numbers = pd.Series(np.arange(10))
    assert rule.of_values(numbers).tolist() == [4, 2, 2, 0, 2, 1, 3, 1, 3, 3]  # pinned
    for same in (numbers.astype(float), numbers.astype("Int64"), numbers.astype("int32"),
                 numbers.astype("category"), numbers.astype(np.uint16)):
        assert rule.of_values(same).tolist() == rule.of_values(numbers).tolist()
    assert FoldRule(5, "event", seed=9).of_values(numbers).tolist() == \
        rule.of_values(numbers).tolist()
    other = table.frame.iloc[::-7].reset_index(drop=True)  # another file: other rows, order
    mine = dict(zip(table.frame.event, rule.of_table(table)))
    assert all(mine[e] == f for e, f in zip(other.event, rule.of_values(other.event)))
    assert rule.of_values(pd.Series(["a", "b", "a"])).tolist()[0::2] == [
        rule.of_values(pd.Series(["a"]))[0]] * 2
    with pytest.raises(FcnnError, match="2 row.s. have no value in the fold column 'event'"):
        rule.of_values(pd.Series([1.0, np.nan, np.inf]), "t")


def test_the_position_rule_depends_on_the_seed_and_the_rows_in_the_file():
    rule = FoldRule(4, seed=3)
    table = events(n=400)
    assert not (rule.of_table(table) == FoldRule(4, seed=4).of_table(table)).all()
    kept = Table(table.frame.iloc[1::2].reset_index(drop=True), file_rows=np.arange(2, 401, 2))
    assert (rule.of_table(kept) == rule.of_table(table)[1::2]).all()


def test_a_classification_s_folds_by_position_hold_each_class_evenly(tmp_path):
    """Stratified: each fold's rows hold each class's rows to one, a class of 8 rows in 600
    among them, so that every fold validates it; the run's metrics record the label column,
    the checkpoint the rule as older fcnn reads it (k, by and seed: predict deals no rows, it
    scores the training table by the mean, as with any rule by position)."""
    table = sides()
    table.frame.loc[::75, "side"] = "rare"
    config = TrainConfig(**CONFIG, folds=5)
    data = prepare(table, config)
    assert data.folds.rule == FoldRule(5, seed=2, strata="side")
    fold, truth = data.folds.of_val(), data.splits["val"].truth
    for c, n in enumerate(np.bincount(truth)):
        counts = np.bincount(fold[truth == c], minlength=5)
        assert counts.min() == n // 5 and counts.max() == -(-n // 5), data.task.classes[c]
    assert np.bincount(truth)[data.task.classes.index("rare")] == 8
    assert np.ptp(np.bincount(fold)) <= 1
    assert prepare(table, config, features=FEATURES).folds.of_val().tolist() == fold.tolist()
    assert prepare(table, dataclasses.replace(config, fold_by="event")).folds.rule.strata is None
    assert prepare(events(), config).folds.rule == FoldRule(5, seed=2)  # regression: unchanged
    result = fit(table, folds=3, epochs=1)
    assert result.metrics["folds"]["rule"] == {"k": 3, "by": None, "seed": 2, "strata": "side"}
    path = tmp_path / "model.pt"
    checkpoint.save(result.predictor, path)
    meta = json.loads(torch.load(path, weights_only=True)["meta"])
    assert meta["folds"] == {"k": 3, "by": None, "seed": 2}
    predictor = checkpoint.load(path)
    assert predictor.folds == result.predictor.folds == FoldRule(3, seed=2)
    assert predictor.fold_metadata([table])[1] == {"folds": {
        "k": 3, "by": None, "seed": 2, "applied": "mean"}}


def _frame_of(path):
    return pd.read_csv(path, comment="#")


def test_predict_with_and_without_the_fold_column(by_event, tmp_path, logged):
    """With the fold column, each row's own fold's network (its training rows out of fold);
    without, the mean of the networks: said in the output's metadata and once on stderr."""
    table, result = by_event
    model = tmp_path / "model.pt"
    checkpoint.save(result.predictor, model)
    predictor = checkpoint.load(model)
    assert predictor.folds == FoldRule(5, "event", 2)
    with_column, without = tmp_path / "with.csv", tmp_path / "without.csv"
    table.frame.to_csv(with_column, index=False)
    table.frame.drop(columns=["event"]).to_csv(without, index=False)
    runner = CliRunner()
    for data, applied in ((with_column, "out-of-fold"), (without, "mean")):
        out = tmp_path / f"{applied}.parquet"
        done = runner.invoke(cli, ["predict", str(model), str(data), "-o", str(out)])
        assert done.exit_code == 0, done.output
        import pyarrow.parquet as pq

        meta = json.loads(pq.read_schema(out).metadata[b"fcnn"])
        assert meta == {"folds": {"k": 5, "by": "event", "seed": 2, "applied": applied}}
        said = [line for line in done.stderr.splitlines() if "k-fold networks" in line]
        assert len(said) == 1 and ("did not train on it" in said[0]) == (applied != "mean")
        written = pd.read_parquet(out)
        each = predictor.outputs(predictor.feature_matrix(table))
        if applied == "mean":
            expected = predictor.task.frame(each)
        else:
            fold = predictor.folds.of_table(table)
            expected = predictor.task.frame(each[fold, np.arange(len(fold))])
        pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    members = runner.invoke(cli, ["predict", str(model), str(with_column), "--members"])
    assert members.exit_code == 0 and "x_pred_m4" in members.stdout.splitlines()[1]


def test_evaluate_scores_the_training_table_out_of_fold_without_a_warning(by_event, tmp_path):
    table, result = by_event
    model = tmp_path / "model.pt"
    checkpoint.save(result.predictor, model)
    data = tmp_path / "events.csv"
    table.frame.to_csv(data, index=False)
    done = CliRunner().invoke(cli, ["evaluate", str(model), str(data), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["overall"]["rmse"] == pytest.approx(result.metrics["val"]["overall"]["rmse"],
                                                      rel=1e-5)
    assert report["warnings"] == []
    rows = tmp_path / "rows.csv"  # the very rows without their folds: the mean, optimistic
    table.frame.drop(columns=["event"]).to_csv(rows, index=False)
    done = CliRunner().invoke(cli, ["evaluate", str(model), str(rows), "--json"])
    assert "the very rows" in json.loads(done.stdout)["warnings"][0]


def test_a_weighted_k_fold_run():
    """Weights as everywhere: equal ones train as none, bit for bit; the out-of-fold report
    is the weighted one of the rows' own networks; each fold's validation weights average 1;
    rows of negative weight under negative_weights='zero' train nowhere but are scored."""
    table = events(n=400)
    w = np.random.default_rng(0).uniform(0.2, 3.0, 400)
    plain = fit(table, fold_by="event")
    equal = fit(Table(table.frame.assign(w=2.0), table.targets, table.units, "events"),
                fold_by="event", weight="w")
    a, b = plain.predictor.net.state_dict(), equal.predictor.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    weighted = Table(table.frame.assign(w=w - 0.5), table.targets, table.units, "events")
    config = TrainConfig(**CONFIG, folds=5, fold_by="event", negative_weights="zero")
    result = train.fit(weighted, config, net=NET, weight="w")
    data = prepare(weighted, config, weight="w")
    assert data.sizes["val"] == 400 and data.sizes["train"] == int((w - 0.5 > 0).sum())
    packed = data.splits["val"].y[:, -1]
    for a_, b_ in zip(data.folds.val, data.folds.val[1:]):
        assert packed[a_:b_].mean() == pytest.approx(1.0, rel=1e-5)
    predictor = result.predictor
    each = predictor.outputs(predictor.feature_matrix(weighted))
    fold = predictor.folds.of_table(weighted)
    pred = predictor.task.decode(each[fold, np.arange(400)])
    truth = weighted.frame[["x", "y"]].to_numpy()
    mse = np.average(((pred - truth) ** 2).mean(axis=1), weights=w - 0.5)
    assert result.metrics["val"]["overall"]["mse"] == pytest.approx(mse, rel=1e-4)
    assert result.metrics["val"]["sum_of_weights"] == pytest.approx((w - 0.5).sum())


def test_missing_values_filled_with_the_medians_of_all_rows():
    table = events(n=400)
    frame = table.frame.copy()
    frame.loc[frame.index[::5], "tp2"] = np.nan
    filled = Table(frame, table.targets, table.units, "gappy")
    result = fit(filled, fold_by="event", nan="fill")
    filler = result.predictor.filler
    assert filler.flagged == ["tp2"]
    assert filler.to_dict()["medians"]["tp2"] == pytest.approx(
        np.nanmedian(frame.tp2), rel=1e-6)
    assert np.isfinite(result.metrics["val"]["overall"]["rmse"])


def _interrupt_after(epoch):
    def on_epoch(row):
        if row["epoch"] == epoch + 1:
            raise KeyboardInterrupt
    return on_epoch


def test_an_interrupted_k_fold_run_resumes_as_if_uninterrupted(tmp_path):
    """Cut after epoch 2 of 4, its state saved and read back as --resume reads it."""
    from fcnn_cli.results import statefile

    table = events(n=300)
    table = Table(table.frame.assign(w=np.random.default_rng(3).uniform(0.5, 2, 300)),
                  table.targets, table.units, "events")
    config = TrainConfig(**{**CONFIG, "epochs": 4}, folds=3, fold_by="event")

    def run(**more):
        return train.fit(table, config, net={**NET, "dropout": 0.1}, weight="w", **more)
    whole = run()
    cut = run(on_epoch=_interrupt_after(2))
    assert cut.interrupted and cut.resume_state["ensemble"] == 3
    statefile.write_state(cut.resume_state, tmp_path / "state.pt")
    saved = statefile.read_state(tmp_path / "state.pt")
    statefile.check_progress(saved, 4)
    resumed = run(resume=saved)
    a, b = whole.predictor.net.state_dict(), resumed.predictor.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in whole.history]
    assert resumed.metrics == whole.metrics
    with pytest.raises(FcnnError, match="not the data this run started with"):
        train.fit(table, TrainConfig(**{**CONFIG, "epochs": 4}, folds=3), net=NET,
                  weight="w", resume=cut.resume_state)


def test_a_state_saved_before_folds_were_stratified_resumes_unstratified(tmp_path,
                                                                          monkeypatch):
    """A k-fold classification cut short by fcnn that dealt its folds unstratified, whose
    state records no fold rule, resumes and ends as that fcnn's uninterrupted run would; a
    state of today records the stratified rule."""
    from fcnn_cli.results import statefile

    table, config = sides(n=300), TrainConfig(**{**CONFIG, "epochs": 4}, folds=3)

    def run(**more):
        return train.fit(table, config, net=NET, **more)
    stratified = {"k": 3, "by": None, "seed": 2, "strata": "side"}
    assert run(on_epoch=_interrupt_after(2)).resume_state["folds"] == stratified
    with monkeypatch.context() as older:
        older.setattr(folds, "stratified", lambda rule, kind, targets: rule)
        whole, cut = run(), run(on_epoch=_interrupt_after(2))
    state = {k: v for k, v in cut.resume_state.items() if k != "folds"}
    statefile.write_state(state, tmp_path / "state.pt")
    resumed = run(resume=statefile.read_state(tmp_path / "state.pt"))
    a, b = whole.predictor.net.state_dict(), resumed.predictor.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.dumps(resumed.metrics) == json.dumps(whole.metrics)  # NaN figures: alike as JSON
    assert resumed.metrics["folds"]["rule"] == {"k": 3, "by": None, "seed": 2}
    with pytest.raises(FcnnError, match=r"not the data this run started with \(its rows, "
                                        r"columns, options or folds differ\)"):
        run(resume={**state, "folds": stratified})  # dealt unstratified, said stratified
    with pytest.raises(FcnnError, match="the saved training state's folds: k is 0"):
        run(resume={**state, "folds": {**stratified, "k": 0}})


@pytest.mark.parametrize("options, message", [
    ({"folds": 0}, "folds must be 1 .off. or from 2 to 64, not 0"),
    ({"folds": 65}, "folds must be 1 .off. or from 2 to 64, not 65"),
    ({"fold_by": "event"}, "fold_by needs folds=K of 2 or more"),
    ({"folds": 3, "fold_by": ""}, "fold_by must name a column"),
    ({"folds": 3, "stream": True}, "folds=3: the networks train together on a table in memory"),
    ({"folds": 3, "diagnostics": True}, "folds=3: the networks train together and record no"),
])
def test_options_that_folds_do_not_take_are_refused(options, message):
    with pytest.raises(FcnnError, match=message):
        TrainConfig(**options)


def test_folds_and_an_ensemble_are_refused_as_a_sweep_falls_back_on():
    with pytest.raises(Unsupported, match="folds=3 trains its networks as the members of one"):
        TrainConfig(folds=3, ensemble=2)
    with pytest.raises(Unsupported, match="folds=3"):
        train.fit_cohorts(events(n=100), [(TrainConfig(folds=3), NET)])


def test_what_the_data_must_give_folds():
    table = events(n=200)
    config = TrainConfig(**CONFIG, folds=5, fold_by="event")
    with pytest.raises(FcnnError, match="give no validation table"):
        prepare(table, config, val_table=table)
    with pytest.raises(FcnnError, match="no fold column 'run'"):
        prepare(table, TrainConfig(**CONFIG, folds=5, fold_by="run"))
    with pytest.raises(FcnnError, match="column 'x' cannot be both a label and the fold"):
        prepare(table, TrainConfig(**CONFIG, folds=5, fold_by="x"))
    assert prepare(table, config).features == FEATURES  # the event number is no feature
    few = Table(table.frame.assign(event=np.arange(200) % 2), table.targets, name="few")
    with pytest.raises(FcnnError, match="fold [0-9] of 5 holds no rows .5 folds by column"):
        prepare(few, config)
    gaps = Table(table.frame.assign(event=np.where(np.arange(200) < 3, np.nan, 1.0 *
                                                   np.arange(200))), table.targets, name="gaps")
    with pytest.raises(FcnnError, match="3 row.s. have no value in the fold column 'event' "
                                        r"\(NaN, empty or infinite\): such a row has no fold; "
                                        "nan='drop' leaves such rows out$") as e:
        prepare(gaps, config)
    assert e.value.options == ("nan",)
    assert prepare(gaps, TrainConfig(**CONFIG, folds=5, fold_by="event", nan="drop")) \
        .sizes["val"] == 197


@pytest.mark.parametrize("label", ["text", "numbers", "blank"])
def test_a_classification_missing_labels_is_refused_before_its_folds_are_dealt(label, tmp_path):
    """A row without a class has no stratum: the label check names it, as without folds,
    before the folds are dealt by class (Parquet's nulls in text, empty CSV cells in numbers,
    and in text, read as "", or blank), weighted or by a fold column too; "drop" leaves the
    rows out and deals the others."""
    table = sides(n=200)
    side = (table.frame.side == "east") * 1.0 if label == "numbers" else table.frame.side
    gaps = np.where(np.arange(200) % 80 == 20, "", " ") if label == "blank" else np.nan
    missing = Table(table.frame.assign(side=side.where(np.arange(200) % 40 != 20, gaps)),
                    ["side"], name="sides")
    for weight, options in ((None, {}), ("w", {}), (None, {"fold_by": "event"})):
        config = TrainConfig(**CONFIG, folds=5, task="classify", **options)
        frame = missing.frame.assign(w=np.linspace(0.5, 2, 200))
        with pytest.raises(FcnnError, match=r"^sides: label column 'side' is empty at row 21 "
                                            r"\(5 row\(s\) in all\)$"):
            prepare(Table(frame, ["side"], name="sides"), config, weight=weight)
    dropped = prepare(missing, TrainConfig(**CONFIG, folds=5, task="classify", nan="drop"))
    assert dropped.sizes["val"] == 195 and np.ptp(np.bincount(dropped.folds.of_val())) == 0
    data = tmp_path / ("sides.parquet" if label == "text" else "sides.csv")
    missing.frame.to_parquet(data) if label == "text" else missing.frame.to_csv(data, index=False)
    done = CliRunner().invoke(cli, ["train", str(data), "-t", "side", "--task", "classify",
                                    "--folds", "3", "--epochs", "1", "-o", str(tmp_path / "r")])
    assert done.exit_code == 1
    assert done.output == f"Error: {data}: label column 'side' is empty at row 21 (5 row(s) in " \
        "all)\n"


def test_several_processes_are_refused():
    class World:
        distributed = True
    with pytest.raises(FcnnError, match="folds=3: the folds' networks train together in one"):
        folds.refuse_processes(TrainConfig(folds=3), World())


def test_autograd_networks_take_folds_but_not_the_plateau_schedule():
    result = fit(sides(n=300), net={"batchnorm": True}, folds=3)
    assert len(result.predictor.net) == 3
    with pytest.raises(FcnnError, match="^folds=3: members trained through autograd"):
        fit(sides(n=300), net={"batchnorm": True}, folds=3, schedule="plateau")


def test_a_checkpoint_keeps_the_rule_and_refuses_one_of_another_count(by_event, tmp_path):
    _, result = by_event
    path = tmp_path / "model.pt"
    checkpoint.save(result.predictor, path)
    assert checkpoint.load(path).folds == result.predictor.folds
    for change, message in [(lambda m: m["folds"].update(k=4), "4 folds for 5 network"),
                            (lambda m: m["folds"].update(by=3), "folds: by is 3"),
                            (lambda m: m["folds"].pop("seed"), "not an object of k, by, seed")]:
        resigned(path, in_meta(change))
        with pytest.raises(FcnnError, match=f"corrupted fcnn checkpoint: .*{message}"):
            checkpoint.load(path)
        checkpoint.save(result.predictor, path)


def test_the_command_line_trains_folds_and_reports_them(tmp_path, by_event):
    table, _ = by_event
    data = tmp_path / "events.csv"
    table.frame.to_csv(data, index=False)
    runner = CliRunner()
    out = tmp_path / "run"
    done = runner.invoke(cli, ["train", str(data), "--folds", "4", "--fold-by", "event",
                               "--epochs", "2", "--no-plots", "-o", str(out), "-t", "x",
                               "-t", "y"])
    assert done.exit_code == 0, done.output
    assert "Each fold's network on its own fold (4 folds by column 'event')" in done.output
    assert "Out-of-fold metrics (500 rows)" in done.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"train", "val", "folds", "overtraining"}
    assert len(metrics["folds"]["each"]) == 4
    assert "k-fold" in runner.invoke(cli, ["info", str(out / "model.pt")]).output
    assert runner.invoke(cli, ["report", str(out)]).exit_code == 0
    weighted = tmp_path / "weighted.csv"  # a weight expression: read through the recipe
    table.frame.assign(w=np.linspace(0.5, 2, len(table.frame))).to_csv(weighted, index=False)
    done = runner.invoke(cli, ["train", str(weighted), "-t", "x", "-t", "y", "--weight", "w*2",
                               "--folds", "3", "--fold-by", "event", "--epochs", "1",
                               "--no-plots", "-q", "-o", str(tmp_path / "weighted")])
    assert done.exit_code == 0, done.output
    saved = json.loads((tmp_path / "weighted" / "config.json").read_text())
    assert saved["features"] == FEATURES  # neither the event number nor the weight
    metrics = json.loads((tmp_path / "weighted" / "metrics.json").read_text())
    assert metrics["val"]["sum_of_weights"] == pytest.approx(2 * np.linspace(0.5, 2, 500).sum())
    refused = runner.invoke(cli, ["train", str(data), "--folds", "4", "--stream"])
    assert refused.exit_code == 2 and "--folds 4: the networks train together on a table in " \
        "memory, not a streamed one; leave out --stream" in refused.output


@pytest.mark.parametrize("make, columns", [
    (events, ["fold", "rows", "RMSE", "MAE", "R²", "mean distance (km)"]),
    (sides, ["fold", "rows", "accuracy", "cross-entropy", "ROC AUC"])])
def test_the_folds_table_shows_each_fold_and_their_mean_and_spread(make, columns):
    from rich.console import Console
    from fcnn_cli.results.report import folds_table

    folds_summary = fit(make(), folds=3).metrics["folds"]
    table = folds_table(folds_summary)
    assert [str(c.header) for c in table.columns] == columns
    assert table.row_count == 4
    console = Console(width=200, record=True)
    console.print(table)
    shown = console.export_text()
    stratified = ", stratified by 'side'" if make is sides else ""
    title = " ".join(shown.split("┏")[0].split())  # the title, wrapped to the table's width
    assert title.endswith(f"(3 folds by row position with seed 2{stratified})")
    assert "mean ± std" in shown
    assert str(folds_summary["rows"]) in shown.splitlines()[-2]  # the mean's row: all rows
