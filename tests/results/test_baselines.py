"""Baselines in a run's files and in evaluate: the report of new rows equal to one computed
independently, the side-by-side table, and the files refused in one line."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from rich.console import Console

from fcnn_cli.commands import cli
from fcnn_cli.results.report import baseline_table

sklearn = pytest.importorskip("sklearn")
from sklearn import metrics as skm  # noqa: E402

FEATURES = ["a", "b", "c"]


def frame(n, seed):
    rng = np.random.default_rng(seed)
    label = np.where(rng.random(n) < 0.4, "signal", "bkg")
    x = rng.normal(size=(n, 3)) + np.where(label == "signal", 1.2, 0.0)[:, None]
    return pd.DataFrame({**dict(zip(FEATURES, x.T)), "w": rng.uniform(0.5, 2.0, n),
                         "y": label})


def invoke(*args, code=0):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output + str(result.exception)
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run with a gbdt baseline of few rounds, and a table of new rows."""
    from fcnn_cli.network import baseline, gbdt

    where = tmp_path_factory.mktemp("baselines")
    frame(800, 0).to_csv(where / "train.csv", index=False)
    frame(400, 1).to_csv(where / "new.csv", index=False)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(baseline, "make", lambda name: gbdt.GradientBoostedTrees(rounds=30, patience=5))
        shown = invoke("train", where / "train.csv", "--target", "y", "--weight", "w",
                       "--epochs", 2, "--baseline", "gbdt", "-o", where / "run",
                       "--no-plots").output
    return where, shown


def test_train_prints_the_network_beside_the_baseline(run):
    where, shown = run
    metrics = json.loads((where / "run" / "metrics.json").read_text())
    test = metrics["baselines"]["gbdt"]["test"]
    assert "The network beside its baselines" in shown
    line = next(line for line in shown.splitlines() if "accuracy" in line and "│" in line)
    assert [c.strip() for c in line.split("│")[2:4]] == [f"{metrics['test']['accuracy']:.4g}",
                                                         f"{test['accuracy']:.4g}"]


def test_evaluate_scores_the_baseline_as_an_independent_computation(run):
    from fcnn_cli.network import baseline

    where, _ = run
    report = json.loads(invoke("evaluate", where / "run" / "model.pt", where / "new.csv",
                               "--json", "--no-weight").output)
    ours = report["baselines"]["gbdt"]
    new = frame(400, 1)
    p = baseline.load(where / "run" / "baseline_gbdt.pt").predict(
        new[FEATURES].to_numpy(np.float32))
    y = (new["y"] == "signal").to_numpy().astype(int)
    assert ours["rows"] == 400
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y, p.argmax(axis=1)), abs=1e-12)
    assert ours["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]), abs=1e-6)
    assert ours["cross_entropy"] == pytest.approx(skm.log_loss(y, p), rel=1e-9)
    assert ours["confusion_matrix"] == skm.confusion_matrix(y, p.argmax(axis=1)).tolist()


def test_evaluate_weighs_the_baseline_as_the_network_by_the_runs_weight(run):
    from fcnn_cli.network import baseline

    where, _ = run
    report = json.loads(invoke("evaluate", where / "run" / "model.pt", where / "new.csv",
                               "--json").output)
    new = frame(400, 1)
    p = baseline.load(where / "run" / "baseline_gbdt.pt").predict(
        new[FEATURES].to_numpy(np.float32))
    y, w = (new["y"] == "signal").to_numpy().astype(int), new["w"].to_numpy()
    ours = report["baselines"]["gbdt"]
    assert ours["sum_of_weights"] == pytest.approx(w.sum()) == report["sum_of_weights"]
    assert ours["accuracy"] == pytest.approx(
        skm.accuracy_score(y, p.argmax(axis=1), sample_weight=w), abs=1e-12)


def test_no_baselines_leaves_them_out(run):
    where, _ = run
    report = json.loads(invoke("evaluate", where / "run" / "model.pt", where / "new.csv",
                               "--json", "--no-baselines").output)
    assert "baselines" not in report


def test_evaluate_finds_the_working_point_asked_on_the_baselines_own_scores(run):
    from fcnn_cli.network import baseline

    where, _ = run
    report = json.loads(invoke("evaluate", where / "run" / "model.pt", where / "new.csv",
                               "--json", "--no-weight", "--working-point", "eff=0.7").output)
    point = report["baselines"]["gbdt"]["merit"]["working_point"]
    new = frame(400, 1)
    p = baseline.load(where / "run" / "baseline_gbdt.pt").predict(
        new[FEATURES].to_numpy(np.float32))[:, 1].astype(np.float32)
    signal = (new["y"] == "signal").to_numpy()
    assert point["asked"] == {"signal_efficiency": 0.7}
    assert point["signal_efficiency"] == pytest.approx((p[signal] >= point["cut"]).mean())
    assert point["signal_efficiency"] >= 0.7 and point["cut"] != \
        report["merit"]["working_point"]["cut"]


def test_a_watcher_keeps_the_working_point_asked_beside_a_threshold(run):
    """A baseline at a working point asked (eff) is at that one alone: a threshold given too
    makes no second working point."""
    from fcnn_cli.network import checkpoint
    from fcnn_cli.network.merit import Figures
    from fcnn_cli.results.baselines import beside

    where, _ = run
    predictor = checkpoint.load(where / "run" / "model.pt", "cpu")
    watcher, = beside(where / "run" / "model.pt", predictor, threshold=0.5,
                      figures=Figures(predictor.task.signal_index("signal"), eff=0.7))
    new = frame(400, 1)
    watcher.add(new, (new["y"] == "signal").to_numpy().astype(np.int64), None)
    point = watcher.report()["merit"]["working_point"]
    assert point["asked"] == {"signal_efficiency": 0.7}


def test_evaluate_plots_hold_the_baselines_outputs_of_the_same_rows(run, tmp_path, monkeypatch):
    from fcnn_cli.network import baseline
    from fcnn_cli.results import plots

    where, _ = run
    drawn = []
    monkeypatch.setattr(plots, "plot_sample", lambda table, out: drawn.append(table) or [])
    invoke("evaluate", where / "run" / "model.pt", where / "new.csv", "--plots",
           tmp_path / "plots", "--json")
    table, = drawn
    assert table.extra["baselines"] == ["gbdt"]
    new = frame(400, 1)
    p = baseline.load(where / "run" / "baseline_gbdt.pt").predict(
        new[FEATURES].to_numpy(np.float32))
    # every row is in a sample of 400: the same rows' labels and probabilities, in its order
    kept = sorted(zip(table.frame["y"], table.frame["gbdt_p_bkg"], table.frame["gbdt_p_signal"]))
    assert kept == sorted(zip(new["y"], p[:, 0], p[:, 1]))


def copy_of(run, tmp_path):
    import shutil

    where, _ = run
    shutil.copytree(where / "run", tmp_path / "run")
    return tmp_path / "run"


def test_a_damaged_baseline_file_fails_in_one_line(run, tmp_path):
    copied = copy_of(run, tmp_path)
    path = copied / "baseline_gbdt.pt"
    data = bytearray(path.read_bytes())
    at = data.index(b"threshold")  # a tensor's name: the file no longer reads as one
    data[at:at + 9] = b"xhreshold"
    path.write_bytes(bytes(data))
    out = invoke("evaluate", copied / "model.pt", run[0] / "new.csv", code=1).output
    assert out.startswith(f"Error: {path}: ") and "fcnn baseline" in out
    assert out.count("\n") == 1, out
    # --no-baselines reads no baseline file
    invoke("evaluate", copied / "model.pt", run[0] / "new.csv", "--json", "--no-baselines")


def test_a_baseline_of_other_inputs_is_refused_in_one_line(run, tmp_path):
    from fcnn_cli.network import baseline

    copied = copy_of(run, tmp_path)
    path = copied / "baseline_gbdt.pt"
    other = baseline.load(path)
    other.info = {**other.info, "inputs": ["x", "b", "c"]}
    other.save(path)
    out = invoke("evaluate", copied / "model.pt", run[0] / "new.csv", code=1).output
    assert out == (f"Error: {path}: a baseline of other inputs or labels than the model beside "
                   "it; remove it, or give --no-baselines\n")


def test_a_run_without_a_baseline_removes_an_earlier_runs(run, tmp_path):
    copied = copy_of(run, tmp_path)
    invoke("train", run[0] / "train.csv", "--target", "y", "--epochs", 1, "-o", copied,
           "--no-plots", "--force", "-q")
    assert not (copied / "baseline_gbdt.pt").exists()
    assert "baselines" not in json.loads((copied / "metrics.json").read_text())


def rendered(table):
    console = Console(file=io.StringIO(), width=200)
    console.print(table)
    return console.file.getvalue()


def rows_of(text):
    return {cells[0]: cells[1:] for cells in
            ([c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines()
             if line.startswith("│"))}


def test_the_side_by_side_table_of_a_runs_classification():
    def merit(eff, rejection, separation):
        return {"signal_efficiency_at": [{"background_efficiency": 0.001},
                                         {"background_efficiency": 0.01,
                                          "signal_efficiency": eff, "error": 0.012}],
                "rejection_at": [{"signal_efficiency": 0.7, "rejection": rejection,
                                  "error": 1.5}],
                "separation": separation}

    network = {"task": "classification", "accuracy": 0.91, "roc_auc": 0.97,
               "cross_entropy": 0.25, "merit": merit(0.4, 30.0, 0.52)}
    gbdt = {"task": "classification", "accuracy": 0.9, "roc_auc": 0.96, "cross_entropy": 0.3,
            "merit": merit(0.35, 25.0, 0.41)}
    metrics = {"test": network, "baselines": {"gbdt": {"seconds": 3.25, "test": gbdt}}}
    rows = rows_of(rendered(baseline_table(metrics, "test", 1.5)))
    assert rows == {"accuracy": ["0.91", "0.9"],
                    "ROC AUC": ["0.9700", "0.9600"], "cross-entropy": ["0.25", "0.3"],
                    "ε_S at ε_B = 0.01": ["0.4 ± 0.012", "0.35 ± 0.012"],
                    "1/ε_B at ε_S = 0.7": ["30 ± 1.5", "25 ± 1.5"],
                    "separation ⟨S²⟩": ["0.52", "0.41"], "fit (s)": ["1.5", "3.25"]}
    del gbdt["merit"]["rejection_at"], gbdt["roc_auc"]  # an edited file: "–", never a crash
    rows = rows_of(rendered(baseline_table(metrics, "test", 1.5)))
    assert rows["1/ε_B at ε_S = 0.7"] == ["30 ± 1.5", "–"] and rows["ROC AUC"][1] == "–"
    assert baseline_table({"test": network}, "test") is None


def test_the_side_by_side_table_of_an_evaluated_regression():
    def report(u, v, distance):
        return {"task": "regression",
                "targets": {"x": {"rmse": u, "unit": "km"}, "y": {"rmse": v, "unit": "km"}},
                "distance": {"mean": distance, "unit": "km"}}

    metrics = {**report(0.5, 0.25, 0.6), "baselines": {"gbdt": report(2.0, 1.0, 2.5)}}
    rows = rows_of(rendered(baseline_table(metrics)))
    assert rows == {"RMSE x (m)": ["500", "2000"],
                    "RMSE y (m)": ["250", "1000"], "mean distance (m)": ["600", "2500"]}
