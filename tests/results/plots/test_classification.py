"""Confusion matrix, ROC and rejection curves and reliability diagram."""

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.data import simulate
from fcnn_cli.data.tables import Table
from fcnn_cli.results.plots import classification, plot_run, plot_sample
from fcnn_cli.results.plots.figures import DPI, MIN_ROWS
from plotted import check, decoded, saved_run


def _three_classes(n=900, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    label = np.array(["a", "b", "c"])[np.argmax(x[:, :3] + 0.3 * rng.normal(size=(n, 3)), 1)]
    frame = pd.DataFrame(x, columns=["f1", "f2", "f3", "f4"]).assign(kind=label)
    return Table(frame, ["kind"])


@pytest.mark.slow
@pytest.mark.parametrize("classes", [2, 3])
def test_a_classification_run_draws_confusion_roc_and_reliability(tmp_path, classes):
    table = simulate.galaxies(n=300, size=8, seed=1) if classes == 2 else _three_classes()
    run = saved_run(tmp_path, table, "classes", config={"test_frac": 0.3})
    paths = plot_run(run, tmp_path / "out")
    # Two classes have a signal (the second); three without one named "signal" have none.
    # 8 × 8 galaxy images are 64 features: past the 50 whose correlations a run keeps.
    check(paths, ["learning_curves.png", "confusion.png", "roc.png", "reliability.png",
                  "overtraining.png"] + ["rejection.png"] * (classes == 2)
          + ["correlations.png"] * (classes == 3))
    size, _ = decoded(tmp_path / "out" / "confusion.png")
    side = min(5.5 + 0.25 * classes, 11.0)
    assert size == (round((2 * side + 1) * DPI), round(side * DPI))


def test_the_roc_curve_by_hand():
    fpr, tpr = classification.roc_curve([True, False, True, False], [0.9, 0.8, 0.4, 0.1])
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0, 0.5, 0.5, 1.0, 1.0]


def test_class_plots_not_drawn_are_said(tmp_path, logged):
    classes = [f"c{i}" for i in range(classification.MAX_CLASS_PLOTS + 1)]
    frame = pd.DataFrame({"k": classes, "k_pred": classes})
    assert plot_sample(Table(frame, ["k"], {}, extra={"classes": classes}), tmp_path) == []
    assert f"{len(classes)} classes: no confusion matrix" in logged.text
    assert classification.roc_plot(np.zeros(5, int), np.full((5, 2), 0.5), ["a", "b"],
                                   tmp_path / "roc.png") is None
    assert "rows are all of one class (a)" in logged.text and not (tmp_path / "roc.png").exists()


def test_reliability_bins_of_few_rows_are_marked_and_left_off_the_line(tmp_path, drawn):
    p = np.r_[np.full(50, 0.05), np.full(3, 0.55), np.full(2, 0.65), np.full(60, 0.95)]
    true = (np.random.default_rng(0).random(len(p)) < p).astype(int)
    classification.reliability_plot(true, np.column_stack([1 - p, p]), ["a", "b"],
                                    tmp_path / "r.png")
    top = drawn[0].axes[0]
    network, sparse = top.containers  # errorbar containers: points, caps, bars
    assert network.lines[0].get_xdata() == pytest.approx([0.05, 0.95])
    assert sparse.lines[0].get_xdata() == pytest.approx([0.55, 0.65])
    assert sparse.lines[0].get_markerfacecolor() == "white"
    (line,) = [line for line in top.lines if line.get_linestyle() == "-"]  # joining bins
    assert np.isfinite(line.get_xdata()).tolist() == [True] + [False] * 8 + [True]
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert legend == ["perfect", "network", f"bins of fewer than {MIN_ROWS} rows"]


def _weighted_two_classes(n=400, seed=3):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 2, n)
    p = np.clip(0.3 * true + rng.uniform(0, 0.7, n), 0, 1).round(2)  # ties, as real scores
    weight = rng.uniform(0.1, 3.0, n)
    weight[::7] *= -0.3
    return true, np.c_[1 - p, p], weight


def test_the_weighted_roc_curve_encloses_the_weighted_auc_of_the_report():
    from fcnn_cli.network.metrics import roc_auc

    true, proba, weight = _weighted_two_classes()
    fpr, tpr = classification.roc_curve(true == 1, proba[:, 1], weight)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(roc_auc(true == 1, proba[:, 1], weight), rel=1e-12)
    assert area != pytest.approx(roc_auc(true == 1, proba[:, 1]), rel=1e-6)


def test_weighted_class_plots_sum_weights_and_say_so(tmp_path, drawn):
    true, proba, weight = _weighted_two_classes()
    from fcnn_cli.network.metrics import roc_auc

    pred = proba.argmax(axis=1)
    classification.confusion_plot(true, pred, ["a", "b"], tmp_path / "c.png", weight)
    classification.roc_plot(true, proba, ["a", "b"], tmp_path / "r.png", weight)
    classification.reliability_plot(true, proba, ["a", "b"], tmp_path / "l.png",
                                    weight=weight)
    confusion, roc, reliability = drawn
    counts = confusion.axes[0].images[0].get_array()
    assert counts.sum() == pytest.approx(weight.sum())
    assert counts[1, 0] == pytest.approx(weight[(true == 1) & (pred == 0)].sum())
    assert "weights" in confusion.axes[0].get_title()
    auc = roc_auc(true == 1, proba[:, 1], weight)
    assert f"AUC {auc:.4f}" in roc.axes[0].get_legend().get_texts()[0].get_text()
    assert "Weighted" in roc.axes[0].get_title()
    bars = reliability.axes[1].patches
    assert sum(b.get_height() for b in bars) == pytest.approx(weight.sum())
    assert "weighted" in reliability.axes[0].get_title()
    assert reliability.axes[1].get_ylabel() == "sum of weights"


def test_a_weighted_run_keeps_its_weights_in_its_sample_and_plots_them(tmp_path, drawn):
    from fcnn_cli.results.plots.reading import read_sample

    table = _three_classes(n=300)
    table.frame["w"] = np.random.default_rng(4).uniform(0.5, 2.0, 300)
    run = saved_run(tmp_path, table, "classes", weight="w", config={"test_frac": 0.3})
    sample = read_sample(run / "predictions.parquet")
    assert sample.extra["weight"] == "weight" and sample.frame["weight"].between(0.5, 2).all()
    check(plot_run(run, tmp_path / "out"),
          ["learning_curves.png", "confusion.png", "roc.png", "reliability.png",
           "overtraining.png", "correlations.png"])
    assert [f.axes[0].get_title() for f in drawn[1:4]] == [
        "Confusion matrix (sums of weights)", "Weighted ROC curve (one class against the rest)",
        "Reliability of p(predicted class) (weighted)"]


def test_a_sample_whose_weight_names_no_numeric_column_is_malformed(tmp_path):
    from fcnn_cli.core.errors import FcnnError
    from fcnn_cli.results.plots.reading import check_sample

    frame = pd.DataFrame({"kind": ["a"], "kind_pred": ["a"], "weight": ["heavy"]})
    table = Table(frame, ["kind"], extra={"classes": ["a"], "weight": "weight"})
    with pytest.raises(FcnnError, match="weight 'weight' names no numeric column"):
        check_sample(table, tmp_path / "p.parquet")


def _models(n=1500, seed=5):
    """A sample of two classes with the network's and a baseline's probabilities, weights."""
    rng = np.random.default_rng(seed)
    signal = rng.random(n) < 0.4
    net = np.clip(rng.normal(0.3 + 0.4 * signal, 0.2), 0, 1).round(3).astype(np.float32)
    gbdt = np.clip(rng.normal(0.35 + 0.3 * signal, 0.2), 0, 1).round(3).astype(np.float32)
    frame = pd.DataFrame({"k": np.where(signal, "sig", "bkg"),
                          "k_pred": np.where(net >= 0.5, "sig", "bkg"),
                          "p_bkg": 1 - net, "p_sig": net, "gbdt_p_bkg": 1 - gbdt,
                          "gbdt_p_sig": gbdt, "w": rng.uniform(0.2, 3.0, n)})
    return frame, signal, net, gbdt


@pytest.mark.parametrize("weighted", [False, True])
def test_the_rejection_curve_is_scikit_learns_roc_inverted(weighted):
    from sklearn.metrics import roc_curve

    frame, signal, net, _ = _models()
    weight = frame.w.to_numpy() if weighted else None
    eff, rejection = classification.rejection_curve(net, signal, weight)
    fpr, tpr, _ = roc_curve(signal, net, sample_weight=weight, drop_intermediate=False)
    keep = (fpr > 0) & (tpr > 0)
    assert eff == pytest.approx(tpr[keep], rel=1e-12)
    assert rejection == pytest.approx(1 / fpr[keep], rel=1e-12)
    assert len(eff) > 100 and rejection.max() > 50


def test_every_model_of_the_sample_is_drawn_and_the_working_point_marked(tmp_path, drawn):
    frame, signal, net, gbdt = _models()
    meta = {"classes": ["bkg", "sig"], "baselines": ["gbdt"], "weight": "w",
            "working_point": {"asked": {"signal_efficiency": 0.7}, "cut": 0.6}}
    paths = plot_sample(Table(frame, ["k"], {}, extra=meta), tmp_path)
    check(paths, ["confusion.png", "roc.png", "rejection.png", "reliability.png"])
    roc, rejection = drawn[1].axes[0], drawn[2].axes[0]
    w = frame.w.to_numpy()
    for line, score in zip(rejection.lines, (net, gbdt)):
        eff, rej = classification.rejection_curve(score, signal, w)
        assert line.get_xdata() == pytest.approx(eff) and line.get_ydata() == pytest.approx(rej)
    passed = net >= np.float32(0.6)
    eff_s = w[signal & passed].sum() / w[signal].sum()
    eff_b = w[~signal & passed].sum() / w[~signal].sum()
    point = rejection.lines[2]
    assert point.get_xdata() == pytest.approx([eff_s]) and point.get_ydata() == pytest.approx(
        [1 / eff_b])
    assert [t.get_text()[:7] for t in rejection.get_legend().get_texts()] == [
        "network", "gbdt", "working"]
    assert rejection.get_yscale() == "log" and "Weighted" in rejection.get_title()
    labels = [t.get_text() for t in roc.get_legend().get_texts()]
    assert labels[0].startswith("network: sig (AUC") and labels[1].startswith("gbdt: sig (AUC")


def test_the_signal_class_of_the_metadata_is_the_curves_and_several_without_one_have_none(
        tmp_path, drawn, logged):
    frame, signal, net, _ = _models()
    meta = {"classes": ["bkg", "sig"], "signal": "bkg"}
    plot_sample(Table(frame, ["k"], {}, extra=meta), tmp_path)
    rejection = drawn[2].axes[0]
    eff, rej = classification.rejection_curve(1 - net, ~signal)
    assert rejection.lines[0].get_xdata() == pytest.approx(eff)
    assert "(signal: bkg)" in rejection.get_title()
    three = _three_classes(n=300)
    for c in ("a", "b", "c"):
        three.frame[f"p_{c}"] = 1 / 3
    three.frame["kind_pred"] = "a"
    paths = plot_sample(Table(three.frame, ["kind"], {}, extra={"classes": ["a", "b", "c"]}),
                        tmp_path)
    assert "rejection.png" not in [p.name for p in paths]


def test_a_baseline_without_its_columns_is_said_and_left_out(tmp_path, drawn, logged):
    frame, *_ = _models()
    meta = {"classes": ["bkg", "sig"], "baselines": ["gbdt", "lgbm"]}
    plot_sample(Table(frame, ["k"], {}, extra=meta), tmp_path)
    assert "no curves of baseline lgbm: the sample has no column 'lgbm_p_bkg'" in logged.text
    assert len(drawn[2].axes[0].lines) == 2  # network and gbdt


@pytest.mark.parametrize("meta, message", [
    ({"signal": "top"}, "signal 'top' is none of its classes"),
    ({"working_point": {"cut": "high"}}, "has no number for its cut"),
    ({"baselines": "gbdt"}, "baselines gbdt is not a list of names")])
def test_a_sample_whose_figures_of_merit_are_damaged_is_malformed(tmp_path, meta, message):
    from fcnn_cli.core.errors import FcnnError
    from fcnn_cli.results.plots.reading import check_sample

    frame = pd.DataFrame({"kind": ["a"], "kind_pred": ["a"]})
    table = Table(frame, ["kind"], extra={"classes": ["a", "b"], **meta})
    with pytest.raises(FcnnError, match=message):
        check_sample(table, tmp_path / "p.parquet")


def test_a_models_recorded_signal_and_working_point_reach_its_samples_plots(tmp_path, drawn):
    from fcnn_cli.data.writer import write_table
    from fcnn_cli.network.tasks import Classification
    from fcnn_cli.results.evaluation import sample_metadata
    from fcnn_cli.results.plots.reading import read_sample

    point = {"asked": {"signal_efficiency": 0.7}, "cut": 0.55}
    task = Classification("k", ["bkg", "sig"], signal="bkg", working_point=point)
    meta = sample_metadata(task, {}, "test")
    assert meta["signal"] == "bkg" and meta["working_point"] == point
    assert "signal" not in sample_metadata(Classification("k", ["bkg", "sig"]), {}, "test")
    frame, signal, net, _ = _models()
    write_table(Table(frame, ["k"], {}, extra=meta), tmp_path / "p.parquet")
    plot_sample(read_sample(tmp_path / "p.parquet"), tmp_path)  # as a file, checked
    rejection = drawn[2].axes[0]
    passed = (1 - net) >= np.float32(0.55)  # p(bkg): the signal is bkg
    eff_s, eff_b = passed[~signal].mean(), passed[signal].mean()
    (mark,) = [line for line in rejection.lines if line.get_label().startswith("working")]
    assert mark.get_xdata() == pytest.approx([eff_s])
    assert mark.get_ydata() == pytest.approx([1 / eff_b])
