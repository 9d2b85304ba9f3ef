"""The significance scan plot: of a run's metrics.json and of evaluate's report."""

import json

import numpy as np
import pytest

from fcnn_cli.network import merit
from fcnn_cli.results.plots import plot_run
from fcnn_cli.results.plots.significance import (signal_meta, significance_plot,
                                                 significance_plots)
from plotted import check, sample_run
from scores import table


def _merit(seed=0):
    score, signal, weight = table(n=2000, seed=seed, weighted=True)
    return {"signal_class": "sig", **merit.report(score, signal, weight * 5, yields=True)}


def test_the_scan_is_drawn_as_the_report_has_it_the_best_cuts_marked(tmp_path, drawn):
    figures = _merit()
    scan, best = figures["significance"]["scan"], figures["significance"]["best"]
    assert significance_plot(figures["significance"], "sig", tmp_path / "s.png", "test split")
    top, bottom = drawn[0].axes
    ratio = top.lines[0]
    assert ratio.get_xdata() == pytest.approx(scan["cut"])
    assert ratio.get_ydata() == pytest.approx(scan["s_over_sqrt_b"])
    # Independently: S and B that pass each cut, and the Asimov formula.
    score, signal, weight = table(n=2000, seed=0, weighted=True)
    cut = np.asarray(scan["cut"])
    s = np.array([(weight * 5)[signal & (score >= c)].sum() for c in cut])
    b = np.array([(weight * 5)[~signal & (score >= c)].sum() for c in cut])
    assert bottom.lines[0].get_ydata() == pytest.approx(s, rel=1e-9)
    assert bottom.lines[1].get_ydata() == pytest.approx(b, rel=1e-9)
    asimov = np.sqrt(2 * ((s + b) * np.log(1 + s / b) - s))
    z_line = [line for line in top.lines if line.get_label() == "Z_Asimov"][0]
    assert z_line.get_ydata() == pytest.approx(asimov, rel=1e-9)
    marks = [line for line in top.lines if line.get_label().startswith("best")]
    assert [m.get_xdata()[0] for m in marks] == pytest.approx(
        [best["s_over_sqrt_b"]["cut"], best["z_asimov"]["cut"]])
    assert marks[1].get_ydata()[0] == pytest.approx(asimov.max(), rel=1e-9)
    assert "(signal: sig), test split" in top.get_title()


def _run(tmp_path, metrics):
    run = sample_run(tmp_path, {"targets": ["x", "y"]})
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def test_a_run_draws_the_test_splits_scan_else_the_validation_splits(tmp_path, drawn):
    val, test = _merit(1), _merit(2)
    run = _run(tmp_path, {"val": {"merit": val}, "test": {"merit": test}})
    paths = plot_run(run, tmp_path / "out")
    check([p for p in paths if p.name == "significance.png"], ["significance.png"])
    top = drawn[-1].axes[0]
    assert top.lines[0].get_ydata() == pytest.approx(test["significance"]["scan"]
                                                     ["s_over_sqrt_b"])
    assert top.get_title().endswith("test split")
    (run / "metrics.json").write_text(json.dumps({"val": {"merit": val}, "test": {}}))
    plot_run(run, tmp_path / "out2")
    assert drawn[-1].axes[0].get_title().endswith("validation split")


def test_no_scan_no_plot(tmp_path):
    without = {k: v for k, v in _merit().items() if k != "significance"}
    run = _run(tmp_path, {"test": {"merit": without}})
    assert "significance.png" not in [p.name for p in plot_run(run, tmp_path / "out")]
    assert significance_plots(without, tmp_path) == [] == significance_plots(None, tmp_path)


def test_a_damaged_scan_in_metrics_json_is_said_and_only_its_plot_left_out(tmp_path, logged):
    figures = _merit()
    figures["significance"]["scan"]["cut"] = figures["significance"]["scan"]["cut"][:-1]
    run = _run(tmp_path, {"test": {"merit": figures}})
    paths = plot_run(run, tmp_path / "out")
    assert "significance.png" not in [p.name for p in paths]
    assert "learning_curves.png" in [p.name for p in paths]  # the others are drawn
    assert "metrics.json: damaged (test significance: its scan is not lists of numbers of " \
           "one length (cut, signal, background, s_over_sqrt_b, z_asimov)): its plot is left " \
           "out" in logged.text
    figures["signal_class"] = None
    (run / "metrics.json").write_text(json.dumps({"test": {"merit": figures}}))
    assert "significance.png" not in [p.name for p in plot_run(run, tmp_path / "out")]
    assert "damaged (test significance: no signal class)" in logged.text


def test_evaluate_reports_figures_give_the_plots_signal_and_working_point(tmp_path):
    score, signal, weight = table(n=500, seed=3, weighted=True)
    figures = {"signal_class": "sig",
               **merit.report(score, signal, weight, eff=0.7, yields=True)}
    assert signal_meta(figures) == {"signal": "sig", "working_point": {
        "cut": figures["working_point"]["cut"]}}
    assert [p.name for p in significance_plots(figures, tmp_path)] == ["significance.png"]
    figures["working_point"]["cut"] = float("nan")
    assert signal_meta(figures) == {"signal": "sig"} and signal_meta(None) == {}
