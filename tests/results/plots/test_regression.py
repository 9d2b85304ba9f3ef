"""One label's residuals."""

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.data.tables import Table
from fcnn_cli.results.plots import plot_run
from fcnn_cli.results.plots.regression import HEXBIN_ROWS, regression_plot
from plotted import check, saved_run


@pytest.mark.slow
def test_a_regression_label_that_is_no_position_gets_its_own_plot(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    table = Table(pd.DataFrame(x, columns=list("abc")).assign(energy=x.sum(axis=1)),
                  ["energy"], {"energy": "GeV"})
    paths = plot_run(saved_run(tmp_path, table, "energy"), tmp_path / "out")
    check(paths, ["learning_curves.png", "regression_energy.png", "overtraining.png",
                  "correlations.png"])


def test_errors_of_many_rows_are_binned_as_finely_as_the_residuals(tmp_path, drawn):
    rng = np.random.default_rng(1)
    true = rng.uniform(-50, 50, HEXBIN_ROWS + 1000)
    residual = rng.uniform(-0.09, 0.09, len(true))  # km: the largest is 0.09 km
    regression_plot(true, true + residual, "x", "km", tmp_path / "r.png")
    ax = drawn[0].axes[0]
    cells = ax.collections[0].get_offsets()  # the 2-D histogram's cell centres
    assert len(cells) > 1000 and ax.get_ylabel().endswith("(m)")
    height = np.diff(np.unique(cells[:, 1])).min()  # between rows of cells
    assert height < 10  # m: the cells are finer than the residuals
    assert np.abs(cells[:, 1]).max() <= 90 + height  # no cell beyond the largest residual
    assert ax.get_ylim()[1] - ax.get_ylim()[0] < 250  # m, not the label's 100 km


def test_a_residual_of_one_value_is_drawn(tmp_path, recwarn):
    true = np.linspace(0, 1, HEXBIN_ROWS + 1)
    for pred in (true + 0.1, true):  # rounding makes the first one a range of 1e-16
        assert regression_plot(true, pred, "e", "GeV", tmp_path / "r.png").is_file()
    assert not recwarn.list


def test_a_weighted_residual_histogram_sums_the_weights_and_says_so(tmp_path, drawn):
    from fcnn_cli.results.binned import residual_stats

    rng = np.random.default_rng(2)
    true, residual = rng.uniform(-5, 5, 300), rng.normal(0.2, 1.0, 300)
    weight = rng.uniform(0.1, 3.0, 300)
    regression_plot(true, true + residual, "e", "", tmp_path / "r.png", weight=weight)
    hist = drawn[0].axes[1]
    assert sum(p.get_height() for p in hist.patches) == pytest.approx(weight.sum())
    assert "weighted" in hist.get_title() and hist.get_ylabel() == "sum of weights"
    want = residual_stats(residual, np.zeros(300, np.int64), 1, weight)
    text = hist.texts[0].get_text()
    assert f"bias {want['bias'][0, 0]:.3g}" in text
    assert f"resolution (σ) {want['resolution'][0, 0]:.3g}" in text
