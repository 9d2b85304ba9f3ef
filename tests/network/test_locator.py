"""The locator baseline: what it reads of a table, its predictions, its file read back as
untrusted input, and a run that reports it beside the network."""

import json

import numpy as np
import pytest
import torch

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import simulate
from fcnn_cli.data.preprocess import Scaler
from fcnn_cli.network import baseline, tasks
from fcnn_cli.network.locator import Locator

SQUARE = [(-60.0, -60.0), (60.0, -60.0), (60.0, 60.0), (-60.0, 60.0), (0.0, 0.0), (20, -30)]
FLOAT32 = 1e-3  # km: picks of 60 s in float32 are good to about 4 µs


def table(n=400, **options):
    return simulate.earthquakes(n=n, seed=3, stations=SQUARE, depth=(2.0, 30.0),
                                model=simulate.velocity.model_for("layered", 6, 3.5),
                                origin_unknown=True, **options)


def regression(labels=("x", "y", "z")):
    return tasks.Regression(list(labels), Scaler("standard", [0.0] * len(labels),
                                                 [1.0] * len(labels)))


def fitted(t, inputs=None):
    inputs = inputs or [c for c in t.frame.columns if c.startswith("t") and c != "t0"]
    labels = t.frame[["x", "y", "z"]].to_numpy()
    model = Locator().bind(inputs, ["x", "y", "z"], t.extra)
    model.check(regression(), len(inputs))
    return model.fit(None, labels, None, None, None, None, regression()), inputs


def test_it_locates_from_the_features_in_any_order_and_leaves_out_missing_picks():
    t = table(missing=0.2)
    model, inputs = fitted(t, None)
    shuffled = inputs[::-1]
    x = t.frame[shuffled].to_numpy(np.float32)
    out = model.__class__().bind(shuffled, ["x", "y", "z"], t.extra)
    out.bounds = model.bounds
    located = out.predict(x)
    truth = t.frame[["x", "y", "z"]].to_numpy()
    enough = np.isfinite(x).sum(axis=1) >= 8
    assert np.linalg.norm(located - truth, axis=1)[enough].max() < FLOAT32


def test_events_of_fewer_picks_than_unknowns_are_counted_in_one_line(caplog):
    t = table(n=50)
    model, inputs = fitted(t)
    x = t.frame[inputs].to_numpy(np.float64, copy=True)
    x[:3, 3:] = np.nan  # 3 picks left: 4 unknowns (x, y, z, the origin time)
    x[3, 4:] = np.nan  # 4 picks: enough
    with caplog.at_level("WARNING"):
        model.predict(x)
    said = [r.getMessage() for r in caplog.records if "fewer picks" in r.getMessage()]
    assert said == ["locator: 3 of 50 event(s) have fewer picks than its 4 unknowns: they are "
                    "not located, only placed, and count in its figures as they are"]


def test_picks_after_the_earliest_locate_as_the_picks_themselves():
    """fcnn's features where the origin time is unknown (dtpK = tpK - the event's earliest):
    the origin time fitted absorbs the shift; beside the absolute picks, those are taken."""
    t = table(missing=0.2)
    model, picks = fitted(t, None)
    frame = t.frame[picks]
    relative = frame.sub(np.fmin.reduce(frame.to_numpy(), axis=1), axis=0).add_prefix("d")
    shifted, _ = fitted(t, list(relative.columns))
    both, _ = fitted(t, [*picks, *relative.columns])
    x = frame.to_numpy()
    np.testing.assert_allclose(shifted.predict(relative.to_numpy()), model.predict(x),
                               atol=1e-6)
    np.testing.assert_array_equal(both.predict(np.hstack([x, relative.to_numpy() + 5.0])),
                                  model.predict(x))


def test_picks_after_the_earliest_need_an_unknown_origin_time():
    known = simulate.earthquakes(n=5, seed=3, stations=SQUARE)
    with pytest.raises(FcnnError, match="'dtp1' is a pick after the event's earliest"):
        Locator().bind(["dtp1", "dts1"], ["x", "y"], known.extra)


def test_indicators_of_filled_picks_leave_them_out():
    t = table(missing=0.2)
    picks = [c for c in t.frame.columns if c.startswith("t") and c != "t0"]
    frame = t.frame.copy()
    for c in picks:
        frame[c + "_missing"] = frame[c].isna().astype(np.float32)
        frame[c] = frame[c].fillna(frame[c].median())  # as --nan fill does
    inputs = picks + [c + "_missing" for c in picks]
    model, _ = fitted(t, inputs)
    located = model.predict(frame[inputs].to_numpy(np.float32))
    enough = (frame[[c + "_missing" for c in picks]] == 0).sum(axis=1).to_numpy() >= 8
    truth = frame[["x", "y", "z"]].to_numpy()
    assert np.linalg.norm(located - truth, axis=1)[enough].max() < FLOAT32


def test_its_file_reads_back_and_refuses_damage(tmp_path):
    t = table(n=100)
    model, inputs = fitted(t)
    model.info = {"inputs": inputs}
    path = tmp_path / "baseline_locator.pt"
    model.save(path)
    again = baseline.load(path)
    x = t.frame[inputs].to_numpy(np.float32)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    assert again.info == {"inputs": inputs} and again.labels == ["x", "y", "z"]
    # An edited file whose digest was made again still fails the locator's own checks.
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["meta"])
    meta["table"]["velocities"]["vs"] = [9.0, 9.0, 9.0]
    from fcnn_cli.network.checkpoint import digest

    payload["meta"] = json.dumps(meta)
    payload["sha256"] = digest(payload["meta"], payload["state"])
    torch.save(payload, path)
    with pytest.raises(FcnnError, match="corrupted fcnn baseline.*vs < vp"):
        baseline.load(path)


def test_a_wrong_model_costs_accuracy():
    t = table()
    model, inputs = fitted(t)
    right = model.problem().model
    slower = simulate.velocity.checked(
        [(top, 0.9 * vp, 0.9 * vs) for top, vp, vs in zip(right.top, right.vp, right.vs)],
        "slower")
    x = t.frame[inputs].to_numpy(np.float32)
    truth = t.frame[["x", "y", "z"]].to_numpy()
    wrong = model.with_model(slower)
    assert wrong.table["velocities"]["vp"][0] == pytest.approx(0.9 * 5.8)
    assert np.linalg.norm(model.predict(x) - truth, axis=1).mean() < FLOAT32
    assert np.linalg.norm(wrong.predict(x) - truth, axis=1).mean() > 1.0


@pytest.mark.parametrize("labels, meta, inputs, match", [
    (["x", "y"], {}, ["tp1"], "records"),
    (["x", "e"], None, ["tp1"], "labels are x, y"),
    (["x", "y", "z"], None, ["a", "b"], "arrival times"),
    (["x", "y", "z"], None, ["tp9"], "station 9"),
])
def test_refusals_are_one_line(labels, meta, inputs, match):
    extra = table(n=5).extra if meta is None else meta
    with pytest.raises(FcnnError, match=match):
        Locator().bind(inputs, labels, extra)


def test_classification_is_refused():
    task = tasks.Classification("kind", ["a", "b"])
    with pytest.raises(FcnnError, match="not classes"):
        Locator().check(task, 3)


def test_a_run_reports_the_locator_beside_the_network(runner, tmp_path):
    from fcnn_cli.commands import cli

    data = tmp_path / "quakes.parquet"
    result = runner.invoke(cli, ["simulate", "earthquakes", "-n", "1500", "--stations", "8",
                                 "--depth", "0,20", "--origin-time", "unknown", "-o",
                                 str(data)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["train", str(data), "-o", str(tmp_path / "run"), "--epochs",
                                 "1", "--baseline", "locator", "--no-plots"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    test = metrics["baselines"]["locator"]["test"]
    assert test["distance"]["mean"] < FLOAT32
    assert (tmp_path / "run" / "baseline_locator.pt").exists()


def test_the_time_to_locate_each_split_is_reported_in_train_and_evaluate(runner, tmp_path,
                                                                         monkeypatch):
    """The locator's work is done where it predicts, not in its fit: each split's seconds of
    predicting are in metrics.json and beside the network in the printed tables, as the
    seconds a slowed predict took (it sleeps PAUSE a call)."""
    import time

    from fcnn_cli.commands import cli

    pause, spent, original = 0.05, [], Locator.predict

    def slow(self, x):
        began = time.perf_counter()
        time.sleep(pause)
        out = original(self, x)
        spent.append(time.perf_counter() - began)
        return out

    monkeypatch.setattr(Locator, "predict", slow)
    data = tmp_path / "quakes.parquet"
    assert runner.invoke(cli, ["simulate", "earthquakes", "-n", "600", "-o", str(data)]
                         ).exit_code == 0
    result = runner.invoke(cli, ["train", str(data), "-o", str(tmp_path / "run"), "--epochs",
                                 "1", "--baseline", "locator", "--no-plots"])
    assert result.exit_code == 0, result.output
    reports = json.loads((tmp_path / "run" / "metrics.json").read_text())["baselines"]["locator"]
    seconds = [reports[split]["predict_seconds"] for split in ("train", "val", "test")]
    assert all(s >= pause for s in seconds) and sum(seconds) <= sum(spent) + 0.01
    (row,) = [line for line in result.output.splitlines() if "predict (s)" in line]
    assert [c.strip() for c in row.split("│")[2:4]] == ["–", f"{seconds[-1]:.3g}"]
    spent.clear()
    new = tmp_path / "new.parquet"
    assert runner.invoke(cli, ["simulate", "earthquakes", "-n", "300", "--seed", "1", "-o",
                               str(new)]).exit_code == 0
    result = runner.invoke(cli, ["evaluate", str(tmp_path / "run" / "model.pt"), str(new),
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert pause <= report["baselines"]["locator"]["predict_seconds"] <= sum(spent) + 0.01


def test_a_table_with_depths_and_no_depth_label_is_refused_not_located_at_the_surface():
    t = table(n=20)
    with pytest.raises(FcnnError, match="hypocentres have depths; train with z among"):
        Locator().bind(["tp1", "ts1"], ["x", "y"], t.extra)
    flat = simulate.earthquakes(n=20, seed=3, stations=SQUARE)  # no depths: x and y are all
    assert Locator().bind(["tp1", "ts1"], ["x", "y"], flat.extra).labels == ["x", "y"]
