"""The overtraining plot: a panel a class or label, the held-out rows filled, the training
rows as points with errors, on one density scale, the KS p-value in the legend; drawn by
plot_run from metrics.json, with the correlations from correlations.json."""

import json

import numpy as np
import pytest

from fcnn_cli.network import overtraining
from fcnn_cli.results.plots import plot_run
from fcnn_cli.results.plots.overtraining import PANELS, overtraining_plot
from plotted import decoded


def _check(classes=2, shift=0.0):
    rng = np.random.default_rng(0)
    train_class, test_class = rng.integers(0, classes, 400), rng.integers(0, classes, 300)
    train, test = rng.uniform(size=400), rng.uniform(size=300) ** (1 + shift)
    names = [f"c{k}" for k in range(classes)]
    found = overtraining.per_class(train, train_class, test, test_class, names)
    return {**found, "classes_left_out": 0, "splits": ["train", "test"]}


def test_a_panel_a_class_with_points_on_the_filled_held_out_histogram(tmp_path, drawn):
    check = _check(shift=2.0)
    overtraining_plot(check, tmp_path / "overtraining.png")
    axes = [ax for ax in drawn[0].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["class c0", "class c1"]
    for ax, (name, group) in zip(axes, check["groups"].items()):
        legend = ax.get_legend()
        assert legend.get_title().get_text() == f"KS p = {group['p_value']:.3g}"
        assert [t.get_text() for t in legend.get_texts()] == ["test", "train"]
        filled = ax.patches[0]  # the held-out histogram: its heights the densities
        heights = filled.get_path().vertices[:, 1]
        assert np.isclose(heights.max(), max(group["histograms"]["test"]["density"]))
        points = ax.lines[0].get_ydata()
        np.testing.assert_allclose(points, group["histograms"]["train"]["density"])
        assert ax.get_xlabel() == "p(c1)"  # two classes: the second class's probability
        red = ax.title.get_color() not in ("black", "k")
        assert red == (name in check["overtrained"])
    assert check["overtrained"]  # the shifted held-out scores are flagged and shown so


def test_many_classes_draw_the_first_panels_and_say_how_many_more(tmp_path, drawn):
    check = _check(classes=PANELS + 2)
    del check["groups"]["c1"]["histograms"]  # kept for the first classes alone: not drawn
    overtraining_plot(check, tmp_path / "o.png")
    shown = [ax for ax in drawn[0].axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["class c0", "class c2", "class c3", "class c4"]
    assert shown[0].get_xlabel() == "p(true class)"
    assert f"the first {PANELS} classes; the p-values of 2 more in metrics.json" in \
        drawn[0]._suptitle.get_text()


def test_a_regression_panel_shows_the_residual_in_the_labels_unit(tmp_path, drawn):
    rng = np.random.default_rng(1)
    check = overtraining.per_label(rng.normal(size=(200, 2)), rng.normal(size=(100, 2)),
                                   ["x", "y"])
    overtraining_plot(check, tmp_path / "o.png", {"x": "km"})
    assert [ax.get_xlabel() for ax in drawn[0].axes] == [
        "residual: predicted − true x (km)", "residual: predicted − true y"]
    assert [ax.get_title() for ax in drawn[0].axes] == ["x", "y"]


@pytest.mark.slow
def test_plot_run_draws_them_from_the_runs_files_and_leaves_out_a_damaged_one(
        quake_run, tmp_path, logged):
    paths = {p.name: p for p in plot_run(quake_run, tmp_path / "out")}
    assert decoded(paths["overtraining.png"])[0] == (920, 380)  # two panels: x, y
    assert "correlations.png" in paths
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in quake_run.iterdir():
        if p.is_file():
            (copy / p.name).write_bytes(p.read_bytes())
    metrics = json.loads((copy / "metrics.json").read_text())
    del metrics["overtraining"]["groups"]["x"]["histograms"]["train"]["sum_of_weights"]
    (copy / "metrics.json").write_text(json.dumps(metrics))
    names = {p.name for p in plot_run(copy, tmp_path / "out2")}
    assert "overtraining.png" not in names and {"learning_curves.png", "correlations.png"} <= names
    assert "metrics.json: damaged (KeyError 'sum_of_weights')" in logged.text
