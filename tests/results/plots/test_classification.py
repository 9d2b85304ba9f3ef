"""Confusion matrix, ROC curves and reliability diagram."""

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
    check(paths, ["learning_curves.png", "confusion.png", "roc.png", "reliability.png",
                  "overtraining.png"] + (["correlations.png"] if classes == 3 else []))
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
