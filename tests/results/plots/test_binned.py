"""Bias and resolution in bins of one variable or two."""

import numpy as np

from fcnn_cli.results.binned import Binned
from fcnn_cli.results.plots.binned import binned_plot
from fcnn_cli.results.plots.figures import DPI
from plotted import decoded


def test_binned_plots_in_one_and_two_dimensions(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.uniform(-5, 5, size=(300, 2))
    pred = truth + rng.normal(scale=0.3, size=(300, 2))
    b = Binned(["x"], ["x", "y"], point=[0, 1])
    b.add(truth[:, :1], truth, pred)
    one = binned_plot(b.report(4), tmp_path / "one.png", {"x": "km", "y": "km"})
    b2 = Binned(["x", "y"], ["x", "y"])
    b2.add(truth, truth, pred)
    two = binned_plot(b2.report(3), tmp_path / "two.png", {"x": "km"})
    assert decoded(one)[0] == (round(3 * 5.2 * DPI + 60), 760)
    assert decoded(two)[0] == (2 * 660, 540)


def test_bins_that_hold_no_row_are_no_plot_and_said(tmp_path, logged):
    b = Binned(["u", "v"], ["t"])
    b.add(np.array([[5.0, 5.0]]), np.zeros(1), np.ones(1))
    assert binned_plot(b.report(2, [[0, 1], [0, 1]]), tmp_path / "b.png") is None
    assert "no plot in bins of u and v: all 1 rows are outside the bins" in logged.text


def test_counts_are_dark_on_light_cells_and_light_on_dark_ones(tmp_path):
    """The counts' colour follows each cell's drawn colour, even when a single value sets the
    scale (all drawn cells alike) and the rest are too sparse to draw (the white background)."""
    import matplotlib.pyplot as plt

    from fcnn_cli.results.plots.binned import heat

    report = {"by": [{"edges": [0, 1, 2]}, {"edges": [0, 1]}],
              "bins": [{"index": [0, 0], "count": 50, "v": 3.0},
                       {"index": [1, 0], "count": 2, "v": 3.0}]}
    fig, ax = plt.subplots()
    heat(ax, fig, report, lambda b: b["v"], "v")
    colours = {t.get_text(): t.get_color() for t in ax.texts}
    plt.close(fig)
    assert colours == {"50": "white", "2": "black"}
