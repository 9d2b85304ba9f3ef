"""The package's entry points: a run's plots (plot_run) and a sample's (plot_sample)."""

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.data import simulate
from fcnn_cli.data.tables import Table
from fcnn_cli.results import plots, runs
from fcnn_cli.results.plots.positions import stations_for
from plotted import check, sample_run


@pytest.mark.slow
def test_a_regression_run_with_a_position_draws_every_plot(quake_run, tmp_path):
    paths = plots.plot_run(quake_run, tmp_path / "out")
    check(paths, ["learning_curves.png", "regression_x.png", "regression_y.png",
                  "position_map.png", "distance_map.png", "distance_cdf.png",
                  "overtraining.png", "correlations.png"])
    # the stations came from the data file's metadata into the held-out sample's
    sample = pd.read_parquet(quake_run / runs.SAMPLE_FILE)
    assert list(sample.columns) == ["x", "y", "x_pred", "y_pred"] and len(sample) == 40
    from fcnn_cli.data.tables import read_table

    meta = read_table(quake_run / runs.SAMPLE_FILE).extra
    assert meta["position"] == ["x", "y"] and meta["split"] == "test"
    assert stations_for(meta, ["x", "y"])["positions"] == \
        [list(s) for s in simulate.DEFAULT_STATIONS]


@pytest.mark.slow
def test_plots_default_to_the_run_directory(quake_run, tmp_path):
    run = shutil.copytree(quake_run, tmp_path / "copy")
    plots.plot_run(run)
    assert (run / "plots" / "learning_curves.png").is_file()


def test_a_run_without_a_sample_gets_its_learning_curves_and_says_so(tmp_path, logged):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "history.csv").write_text("epoch,train_loss,val_loss,lr\n1,1,1,0.1\n")
    assert [p.name for p in plots.plot_run(tmp_path / "run")] == ["learning_curves.png"]
    assert "predictions.parquet: none, so only the learning curves" in logged.text


def test_non_finite_rows_are_left_out_of_the_plots_and_counted(tmp_path, logged):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=50), "y": rng.normal(size=50)})
    frame = frame.assign(x_pred=frame.x + 0.1, y_pred=frame.y)
    frame.loc[:4, "x_pred"] = np.nan
    frame.loc[5:9, "y"] = np.inf
    run = sample_run(tmp_path, {"position": ["x", "y"]}, frame)
    paths = plots.plot_run(run, tmp_path / "out")
    assert {p.name for p in paths} >= {"regression_x.png", "distance_map.png",
                                       "distance_cdf.png"}
    assert "10 of 50 rows hold a non-finite label or prediction" in logged.text


def test_labels_that_map_to_one_file_name_get_their_own_plots(tmp_path):
    long = "z" * 90
    names = ["a b", "a_b", "a/b", long, long + "q"]
    assert plots.file_parts(names) == ["a_b", "a_b_2", "a_b_3", "z" * 80, "z" * 80 + "_2"]
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({n: rng.normal(size=20) for n in names[:3]})
    frame = frame.assign(**{f"{n}_pred": frame[n] for n in names[:3]})
    paths = plots.plot_sample(Table(frame, names[:3], {}, extra={}), tmp_path)
    assert sorted(p.name for p in paths) == ["regression_a_b.png", "regression_a_b_2.png",
                                             "regression_a_b_3.png"]
    assert all(p.exists() for p in paths)


def test_plotting_is_not_imported_by_training():
    assert "fcnn_cli.results.plots" not in _modules_after(
        "from fcnn_cli.engine import train; from fcnn_cli.commands import cli")
    assert "matplotlib" not in _modules_after(
        "from fcnn_cli.engine import train; from fcnn_cli.commands import cli; "
        "from fcnn_cli.results import evaluation")


def test_importing_every_plot_module_imports_no_matplotlib():
    modules = _modules_after(
        "import importlib, pkgutil; from fcnn_cli.results import plots; "
        "[importlib.import_module(f'{plots.__name__}.{m.name}') "
        "for m in pkgutil.iter_modules(plots.__path__)]")
    assert "fcnn_cli.results.plots.positions" in modules and "matplotlib" not in modules


def _modules_after(code):
    out = subprocess.run([sys.executable, "-c", f"{code}; import sys; print(*sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()
