"""The importance bars and the correlation matrices."""

import numpy as np

from fcnn_cli.results.plots import ranking as plots
from plotted import decoded


def _report(n=3, raw=1):
    inputs = [{"name": f"f{i}", "kind": "feature", "mean": 0.1 / (i + 1), "std": 0.01,
               "drops": [0.1 / (i + 1)] * 3} for i in range(n)]
    inputs += [{"name": f"r{i}", "kind": "raw", "mean": -0.001, "std": 0.002,
                "drops": [0.0] * 3} for i in range(raw)]
    return {"metric": "roc_auc", "higher_is_better": True, "baseline": 0.9, "rows": 100,
            "weighted": True, "repeats": 3, "seed": 0, "inputs": inputs}


def test_the_bars_are_drawn_one_an_input_with_error_bars(tmp_path, drawn):
    path = plots.importance_plot(_report(), tmp_path / "importance.png")
    size, _ = decoded(path)
    assert size == (700, round((2.0 + 0.3 * 4) * 100))
    ax = drawn[0].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["f0", "f1", "f2", "r0 [raw]"]
    assert "ROC AUC drop" in ax.get_xlabel() and "weighted" in ax.get_title()
    assert len(ax.patches) == 4 and ax.containers  # the bars, and their error bars


def test_a_long_ranking_shows_its_most_important_inputs(tmp_path, drawn):
    plots.importance_plot(_report(n=plots.MAX_BARS + 5, raw=0), tmp_path / "i.png")
    ax = drawn[0].axes[0]
    assert len(ax.patches) == plots.MAX_BARS and "5 least important not shown" in \
        ax.get_title()


def test_correlations_draw_a_panel_a_class_up_to_four(tmp_path, drawn):
    matrix = np.array([[1.0, 0.5], [0.5, 1.0]])
    matrices = [(f"class {i}", matrix, 10) for i in range(6)]
    plots.correlation_plot(matrices, ["a", "b"], tmp_path / "correlations.png")
    fig = drawn[0]
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == [f"class {i} (10 rows)" for i in range(4)]
    assert "first 4 classes of 6" in fig._suptitle.get_text()
    assert (tmp_path / "correlations.png").is_file()


def test_one_panel_for_regression_with_nan_cells(tmp_path, drawn):
    matrix = np.array([[1.0, np.nan], [np.nan, np.nan]])
    plots.correlation_plot([("all rows", matrix, 5)], ["a", "constant"], tmp_path / "c.png")
    texts = [t.get_text() for t in drawn[0].axes[0].texts]
    assert texts.count("–") == 3 and "1.00" in texts
