"""Learning curves and the diagnostics of each layer."""

import numpy as np
import pytest

from fcnn_cli.data import simulate
from fcnn_cli.results.plots import plot_run
from fcnn_cli.results.plots.curves import learning_curves
from plotted import check, history, saved_run


@pytest.mark.slow
def test_a_diagnostics_run_draws_gradients_and_activations(tmp_path):
    run = saved_run(tmp_path, simulate.earthquakes(n=500, seed=4), "deep",
                    net={"depth": 5, "activation": "sigmoid"}, config={"diagnostics": True})
    paths = plot_run(run, tmp_path / "out")
    assert "diagnostics.png" in [p.name for p in paths]
    check([p for p in paths if p.name == "diagnostics.png"], ["diagnostics.png"])


@pytest.mark.parametrize("train_loss, val_loss, scale", [
    ([1.09, -1.46, -2.40], [-0.32, -2.09, -2.79], "linear"),  # a Gaussian NLL crossing 0
    ([-1.0, -2.0, -3.0], [-1.5, -2.5, -3.5], "linear"),
    ([0.25, 0.0051, 0.0032], [0.0079, 0.0043, 0.0030], "log"),
    ([0.25, float("nan"), 0.0032], [0.0079, 0.0043, float("inf")], "log")])
def test_a_loss_at_or_below_zero_gets_a_linear_axis_and_no_warning(
        tmp_path, drawn, recwarn, train_loss, val_loss, scale):
    learning_curves(history(train_loss, val_loss), tmp_path / "lc.png", 2)
    loss = drawn[0].axes[0]
    assert loss.get_title() == "Loss" and loss.get_yscale() == scale
    low, high = loss.get_ylim()
    finite = [v for v in train_loss + val_loss if np.isfinite(v)]
    assert low <= min(finite) and max(finite) <= high  # every loss on the axis
    assert not recwarn.list


def test_fcnn_plot_of_a_gaussian_run_warns_of_nothing(tmp_path, recwarn):
    (tmp_path / "history.csv").write_text(
        "epoch,train_loss,val_loss,lr\n1,-0.5,-1.0,0.01\n2,-2.5,-2.0,0.01\n")
    assert [p.name for p in plot_run(tmp_path)] == ["learning_curves.png"]
    assert not recwarn.list
