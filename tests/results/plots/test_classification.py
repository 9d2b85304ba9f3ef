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
    check(paths, ["learning_curves.png", "confusion.png", "roc.png", "reliability.png"])
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
