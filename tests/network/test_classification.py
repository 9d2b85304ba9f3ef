import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

from fcnn_cli.network import checkpoint, metrics, tasks
from fcnn_cli.data import simulate
from fcnn_cli.engine import train
from fcnn_cli.commands import cli
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.engine.prepare import split_indices
from fcnn_cli.data.tables import Table


def three_classes(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    label = np.where(x[:, 0] + x[:, 1] > 0.5, "up", np.where(x[:, 0] < -0.5, "left", "rest"))
    return Table(pd.DataFrame({"f1": x[:, 0], "f2": x[:, 1], "kind": label}), name="three.csv")


def test_softmax_and_cross_entropy_by_hand():
    task = tasks.Classification("c", ["a", "b", "c"])
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(task.proba(logits), [e / e.sum(), [1 / 3] * 3])
    loss = task.loss(torch.tensor(logits), torch.tensor([2, 0])).item()
    # cross-entropy on one-hot targets: -mean(log p_true)
    assert loss == pytest.approx(-(np.log(e[2] / e.sum()) + np.log(1 / 3)) / 2)


def test_single_sigmoid_node_by_hand():
    task = tasks.Classification("c", ["no", "yes"], output="sigmoid")
    assert task.n_outputs == 1
    p = 1 / (1 + np.exp(-0.7))
    np.testing.assert_allclose(task.proba(np.array([[0.7]])), [[1 - p, p]])
    loss = task.loss(torch.tensor([[0.7], [0.7]]), torch.tensor([1, 0])).item()
    assert loss == pytest.approx(-(np.log(p) + np.log(1 - p)) / 2)


def test_balanced_class_weights():
    table = Table(pd.DataFrame({"y": ["a"] * 30 + ["b"] * 10}), name="t")
    task = tasks.Classification.fit(table, "y", np.arange(40), class_weight="balanced")
    assert task.weights == pytest.approx([40 / (2 * 30), 40 / (2 * 10)])


def test_metrics_by_hand():
    y = np.array([0, 0, 1, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2], [0.1, 0.9]])
    r = metrics.classification(y, proba, ["n", "p"])
    assert r["accuracy"] == pytest.approx(3 / 5)
    assert r["confusion_matrix"] == [[1, 1], [1, 2]]
    assert r["per_class"]["p"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3,
                                                 "f1": 2 / 3, "support": 3})
    # positives score 0.7, 0.2, 0.9; negatives 0.1, 0.6: 5 of 6 pairs ordered right
    assert r["roc_auc"] == pytest.approx(5 / 6)
    assert r["cross_entropy"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.7, 0.2, 0.9])))


def test_auc_ties_count_half():
    assert metrics.roc_auc([True, False], [0.5, 0.5]) == pytest.approx(0.5)
    assert np.isnan(metrics.roc_auc([True, True], [0.1, 0.2]))


def test_string_labels_three_classes_and_checkpoint_round_trip(tmp_path):
    table = three_classes()
    result = train.fit(table, train.TrainConfig(epochs=15, seed=1), targets=["kind"])
    task = result.predictor.task
    assert task.kind == "classify" and task.classes == ["left", "rest", "up"]
    assert result.metrics["test"]["accuracy"] > 0.9
    assert len(result.metrics["test"]["confusion_matrix"]) == 3
    checkpoint.save(result.predictor, tmp_path / "m.pt")
    loaded = checkpoint.load(tmp_path / "m.pt")
    assert loaded.task.classes == ["left", "rest", "up"]
    features_only = Table(table.frame.drop(columns=["kind"]), name="new")
    pd.testing.assert_frame_equal(loaded.predict(features_only),
                                  result.predictor.predict(table))
    pred = loaded.predict(features_only)
    assert list(pred.columns) == ["kind_pred", "p_left", "p_rest", "p_up"]
    np.testing.assert_allclose(pred[["p_left", "p_rest", "p_up"]].sum(axis=1), 1.0, rtol=1e-6)


def test_stratified_split_keeps_class_shares():
    labels = np.array(["a"] * 900 + ["b"] * 100)
    tr, va, te = split_indices(1000, 0.1, 0.2, seed=0, strata=labels)
    assert (labels[te] == "b").sum() == 20 and (labels[va] == "b").sum() == 10
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(1000))


def test_sigmoid_output_and_threshold():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    table = Table(pd.DataFrame({"x": x, "on": x > 0}), name="t")
    result = train.fit(table, train.TrainConfig(epochs=10, binary_output="sigmoid"),
                       targets=["on"])
    assert result.predictor.net.head.out_features == 1
    assert result.predictor.task.classes == ["False", "True"]
    everything = result.predictor.predict(table, threshold=0.0)
    assert (everything["on_pred"] == "True").all()
    assert result.metrics["test"]["accuracy"] > 0.9


@pytest.mark.parametrize("frame,match", [
    (pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a"] * 4}), "only one class"),
    (pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40) % 3}), "task='classify'"),
])
def test_unlearnable_labels_are_clear_errors(frame, match):
    with pytest.raises(FcnnError, match=match):
        train.fit(Table(frame, name="t.csv"), targets=["y"])


def test_integer_labels_with_task_classify():
    frame = pd.DataFrame({"x": np.arange(60.0), "y": (np.arange(60) >= 30).astype(int)})
    result = train.fit(Table(frame, name="t"), train.TrainConfig(epochs=1, task="classify"),
                       targets=["y"])
    assert result.predictor.task.classes == ["0", "1"]


def test_unseen_class_at_evaluation_is_named(tmp_path):
    result = train.fit(three_classes(), train.TrainConfig(epochs=1), targets=["kind"])
    other = Table(pd.DataFrame({"f1": [0.0, 1.0], "f2": [0.0, 1.0], "kind": ["up", "down"]}),
                  name="new.csv")
    with pytest.raises(FcnnError, match=r"new\.csv: column 'kind' holds class 'down' \(row 2\)"):
        result.predictor.evaluate(other)


def test_cli_classification_round_trip(runner, tmp_path):
    data = tmp_path / "three.parquet"
    frame = three_classes().frame
    frame.to_parquet(data)
    out = runner.invoke(cli, ["train", str(data), "-t", "kind", "--epochs", "5", "-o",
                              str(tmp_path / "r")])
    assert out.exit_code == 0, out.output
    assert "val_acc" in out.output and "Confusion matrix" in out.output
    model = str(tmp_path / "r" / "model.pt")
    report = json.loads(runner.invoke(cli, ["evaluate", model, str(data), "--json"]).stdout)
    assert report["task"] == "classification" and report["classes"] == ["left", "rest", "up"]
    assert sum(map(sum, report["confusion_matrix"])) == len(frame)
    table = runner.invoke(cli, ["evaluate", model, str(data)]).stdout
    assert "Confusion matrix" in table and "precision" in table
    pred = pd.read_csv(io.StringIO(runner.invoke(cli, ["predict", model, str(data)]).stdout))
    assert pred.kind_pred.isin(["left", "rest", "up"]).all()
    assert (pred.kind_pred == frame.kind).mean() == pytest.approx(report["accuracy"])


def test_galaxy_pixels_are_row_major():
    size = 12
    table = simulate.galaxies(n=3, size=size, noise=0.0, seed=5)
    pixels = table.frame.drop(columns=["rotation"])
    assert list(pixels.columns[:2]) == ["p0000", "p0001"] and pixels.shape[1] == size * size
    image = pixels.iloc[0].to_numpy().reshape(size, size)
    r, c = 3, 7
    assert table.frame[f"p{r * size + c:04d}"].iloc[0] == image[r, c]
    assert set(table.frame.rotation) <= {"left", "right"}
    assert table.targets == ["rotation"]


def test_mirrored_galaxy_turns_the_other_way():
    common = dict(size=24, arms=[2], pitch=[0.4], bulge_radius=[0.08], bulge_brightness=[0.5],
                  disk_scale=[0.4], arm_sharpness=[2.0], axis_ratio=[1.0],
                  position_angle=[0.0], centre=[[0.0, 0.0]], brightness=[1.0])
    right = simulate.galaxy_images(direction=[1.0], phase=[0.3], **common)[0]
    left = simulate.galaxy_images(direction=[-1.0], phase=[np.pi - 0.3], **common)[0]
    np.testing.assert_allclose(right[:, ::-1], left, atol=1e-9)
    assert not np.allclose(right, left, atol=1e-3)


def test_cli_simulate_galaxies_with_preview(runner, tmp_path):
    out, png = tmp_path / "g.csv", tmp_path / "g.png"
    result = runner.invoke(cli, ["simulate", "galaxies", "-n", "40", "--size", "16", "--noise",
                                 "0.1", "--preview", str(png), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frame = pd.read_csv(out, comment="#")
    assert frame.shape == (40, 16 * 16 + 1)
    assert frame.drop(columns=["rotation"]).to_numpy().min() >= 0.0
    result = runner.invoke(cli, ["train", str(out), "--epochs", "1", "-q", "-o",
                                 str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["targets"] == ["rotation"]


@pytest.mark.parametrize("net, expected", [(None, 0.1), (dict(dropout=None), 0.1),
                                           (dict(dropout=0.0), 0.0), (dict(dropout=0.3), 0.3)])
def test_dropout_defaults_by_task(quakes, net, expected):
    config = train.TrainConfig(epochs=1)
    classified = train.fit(three_classes(), config, net=net, targets=["kind"])
    assert classified.predictor.net.config.dropout == expected
    regressed = train.fit(quakes, config, net=net)
    assert regressed.predictor.net.config.dropout == (0.0 if expected == 0.1 else expected)


def test_cli_dropout_default_and_override(runner, tmp_path):
    from fcnn_cli.data.writer import write_table

    data = tmp_path / "three.csv"
    write_table(three_classes(), data)
    for extra, expected in (([], 0.1), (["--dropout", "0"], 0.0)):
        out = tmp_path / f"run{len(extra)}"
        result = runner.invoke(cli, ["train", str(data), "--target", "kind", "--epochs", "1",
                                     "-q", "-o", str(out), *extra])
        assert result.exit_code == 0, result.output
        assert checkpoint.load(out / "model.pt").net.config.dropout == expected


def test_cli_many_classes_keep_reports_small(runner, tmp_path):
    rng = np.random.default_rng(0)
    k, n = 300, 1500
    label = rng.integers(0, k, n)
    frame = pd.DataFrame({"f1": label + rng.normal(0, 0.5, n), "f2": rng.normal(size=n),
                          "kind": [f"k{i:03d}" for i in label]})
    data = tmp_path / "many.csv"
    frame.to_csv(data, index=False)
    run_dir = tmp_path / "r"
    out = runner.invoke(cli, ["train", str(data), "--val", str(data), "-t", "kind", "--epochs",
                              "1", "--test-frac", "0", "-o", str(run_dir)])
    assert out.exit_code == 0, out.output
    assert sum(line.startswith("│ k") for line in out.stderr.splitlines()) <= 40
    assert "are not kept" in " ".join(out.stderr.split())
    assert (run_dir / "metrics.json").stat().st_size < 60_000  # dense: 2 × 300² counts
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["val"]["n_classes"] == len(set(label)) and "confusion_matrix" not in saved["val"]
    text = runner.invoke(cli, ["evaluate", str(run_dir / "model.pt"), str(data), "--json"])
    report = json.loads(text.stdout)
    assert len(text.stdout) < 30_000 and report["rows"] == n
    assert sum(report["per_class"][c]["support"] for c in report["per_class"]) <= n
    assert len(report["top_confusions"]) == metrics.LISTED


def test_pack_takes_a_block_of_no_rows():
    """A streamed piece may hold no rows of a split (its selection removed them, say)."""
    assert tasks.pack(np.zeros(0, np.int64), np.zeros(0)).shape == (0, 2)
    assert tasks.pack(np.zeros((0, 3)), np.zeros(0)).shape == (0, 4)
    np.testing.assert_array_equal(tasks.pack(np.array([2, 0]), [0.5, -1.0]),
                                  [[2, 0.5], [0, -1.0]])


def test_the_signal_class_is_named_else_signal_else_the_second_of_two():
    from fcnn_cli.network.tasks import Classification

    assert Classification("y", ["bkg", "sig"]).signal_index() == 1
    assert Classification("y", ["signal", "bkg"]).signal_index() == 0
    assert Classification("y", ["a", "signal", "c"]).signal_index() == 1
    assert Classification("y", ["a", "b", "c"]).signal_index() is None
    assert Classification("y", ["a", "b", "c"]).signal_index("c") == 2
    assert Classification("y", ["a", "b", "c"], signal="a").signal_index() == 0
    with pytest.raises(FcnnError, match="signal 'd' is not a class of the model; its classes "
                                        "are 'a', 'b', 'c'"):
        Classification("y", ["a", "b", "c"]).signal_index("d")


def test_the_plots_and_the_task_choose_the_signal_class_by_one_rule():
    from fcnn_cli.network.tasks import signal_index

    assert signal_index(["a", "signal", "c"]) == 1
    assert signal_index(["a", "b", "c"]) is None
    assert signal_index(["bkg", "sig"]) == 1
    assert signal_index(["bkg", "sig", "x"], "bkg") == 0
    with pytest.raises(FcnnError, match="signal 'd' is not a class of the model"):
        signal_index(["a", "b"], "d")


def test_a_cut_decides_signal_where_its_probability_passes_else_the_likeliest_other():
    from fcnn_cli.network.tasks import Classification

    proba = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.6, 0.1, 0.3], [0.3, 0.45, 0.25]])
    three = Classification("y", ["a", "b", "c"], signal="c")
    np.testing.assert_array_equal(three.decide(proba, 0.25), [0, 2, 2, 2])  # ≥ passes
    np.testing.assert_array_equal(three.decide(proba, 0.26), [0, 2, 2, 1])
    three.working_point = {"asked": {"signal_efficiency": 0.7}, "cut": 0.2}
    np.testing.assert_array_equal(three.decide(proba), [2, 2, 2, 2])
    np.testing.assert_array_equal(three.decide(proba, 0.9), [0, 1, 0, 1])  # given wins
    with pytest.raises(FcnnError, match="threshold is for two classes or a signal class"):
        Classification("y", ["a", "b", "c"]).decide(proba, 0.5)
    two = Classification("y", ["signal", "bkg"])  # the signal is the first class here
    np.testing.assert_array_equal(two.decide(np.array([[0.3, 0.7], [0.6, 0.4]]), 0.3), [0, 0])
    assert Classification.from_dict(three.to_dict()) == three


def test_a_report_asked_for_figures_holds_those_of_its_signal_class_against_the_rest():
    from fcnn_cli.network import merit
    from fcnn_cli.network.metrics import Classification as Report

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 3000)
    proba = rng.dirichlet(np.ones(3), 3000)
    proba[labels == 2, 2] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    weight = rng.uniform(0.5, 2.0, 3000)
    figures = merit.Figures(2, eff=0.6, yields=(2.0, 3.0, 4.0))
    report = Report(["a", "b", "c"], figures)
    for part in np.array_split(np.arange(3000), 3):
        report.add(labels[part], proba[part], weight=weight[part])
    got = report.report()["merit"]
    yields = np.array([2.0, 3.0, 4.0])[labels] * weight
    want = merit.report(proba[:, 2].astype(np.float32), labels == 2, yields, eff=0.6,
                        yields=True)
    assert got == {"signal_class": "c", **want}
    assert "merit" not in Report(["a", "b", "c"]).report()
