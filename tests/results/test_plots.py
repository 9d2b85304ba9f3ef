import json
import sys

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.results import plots, runs
from fcnn_cli.data import simulate
from fcnn_cli.engine import train
from fcnn_cli.data.tables import Table

PIL = pytest.importorskip("PIL.Image")

# Each plot's pixel size: its figure size in inches × plots.DPI.
SIZES = {"learning_curves.png": (1400, 420), "regression_x.png": (1100, 440),
         "regression_y.png": (1100, 440), "position_map.png": (740, 660),
         "distance_map.png": (740, 620), "distance_cdf.png": (640, 480),
         "diagnostics.png": (1500, 440), "roc.png": (640, 600), "reliability.png": (640, 700),
         "regression_east_km.png": (1100, 440), "regression_north_km.png": (1100, 440),
         "regression_energy.png": (1100, 440)}


def _decoded(path):
    with PIL.open(path) as image:
        image.load()
        return image.size, image.getextrema()


def _check(paths, expected):
    names = sorted(p.name for p in paths)
    assert names == sorted(expected)
    for path in paths:
        size, extrema = _decoded(path)
        if path.name in SIZES:
            assert size == SIZES[path.name], path.name
        assert any(lo != hi for lo, hi in extrema), f"{path.name} is blank"


def _run(tmp_path, table, name, **options):
    result = train.fit(table, train.TrainConfig(epochs=3, batch_size=64, seed=1,
                                                **options.pop("config", {})), **options)
    return runs.save_run(result, tmp_path / name, "data.csv")


@pytest.fixture(scope="module")
def quake_run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("runs"), simulate.earthquakes(n=800, seed=2), "quakes")


@pytest.mark.slow
def test_a_regression_run_with_a_position_draws_every_plot(quake_run, tmp_path):
    paths = plots.plot_run(quake_run, tmp_path / "out")
    _check(paths, ["learning_curves.png", "regression_x.png", "regression_y.png",
                   "position_map.png", "distance_map.png", "distance_cdf.png"])
    # the stations came from the data file's metadata into the held-out sample's
    sample = pd.read_parquet(quake_run / runs.SAMPLE_FILE)
    assert list(sample.columns) == ["x", "y", "x_pred", "y_pred"] and len(sample) == 40
    from fcnn_cli.data.tables import read_table

    meta = read_table(quake_run / runs.SAMPLE_FILE).extra
    assert meta["position"] == ["x", "y"] and meta["split"] == "test"
    assert plots.stations_for(meta, ["x", "y"])["positions"] == \
        [list(s) for s in simulate.DEFAULT_STATIONS]


@pytest.mark.slow
def test_plots_default_to_the_run_directory(quake_run, tmp_path):
    import shutil

    run = shutil.copytree(quake_run, tmp_path / "copy")
    plots.plot_run(run)
    assert (run / "plots" / "learning_curves.png").is_file()


def test_drawing_leaves_the_callers_warning_filters_and_backend_alone(quake_run, tmp_path):
    import warnings

    import matplotlib

    backend, filters = matplotlib.get_backend(), list(warnings.filters)
    plots.plot_run(quake_run, tmp_path / "out")
    assert (tmp_path / "out" / "learning_curves.png").is_file()
    assert warnings.filters == filters and matplotlib.get_backend() == backend


@pytest.mark.slow
def test_position_by_option_for_labels_not_named_as_axes(tmp_path):
    frame = simulate.earthquakes(n=600, seed=3).frame.rename(columns={"x": "east_km",
                                                                      "y": "north_km"})
    table = Table(frame, ["east_km", "north_km"], {"east_km": "km", "north_km": "km"})
    plain = train.fit(table, train.TrainConfig(epochs=1, batch_size=64))
    assert "distance" not in plain.metrics["test"]
    run = _run(tmp_path, table, "named", config={"position": ["east_km", "north_km"]})
    assert "distance" in json.loads((run / "metrics.json").read_text())["test"]
    paths = plots.plot_run(run, tmp_path / "out")
    _check(paths, ["learning_curves.png", "regression_east_km.png", "regression_north_km.png",
                   "position_map.png", "distance_map.png", "distance_cdf.png"])


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
    run = _run(tmp_path, table, "classes", config={"test_frac": 0.3})
    paths = plots.plot_run(run, tmp_path / "out")
    _check(paths, ["learning_curves.png", "confusion.png", "roc.png", "reliability.png"])
    size, _ = _decoded(tmp_path / "out" / "confusion.png")
    side = min(5.5 + 0.25 * classes, 11.0)
    assert size == (round((2 * side + 1) * plots.DPI), round(side * plots.DPI))


@pytest.mark.slow
def test_a_diagnostics_run_draws_gradients_and_activations(tmp_path):
    run = _run(tmp_path, simulate.earthquakes(n=500, seed=4), "deep",
               net={"depth": 5, "activation": "sigmoid"}, config={"diagnostics": True})
    paths = plots.plot_run(run, tmp_path / "out")
    assert "diagnostics.png" in [p.name for p in paths]
    _check([p for p in paths if p.name == "diagnostics.png"], ["diagnostics.png"])


@pytest.mark.slow
def test_a_regression_label_that_is_no_position_gets_its_own_plot(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    table = Table(pd.DataFrame(x, columns=list("abc")).assign(energy=x.sum(axis=1)),
                  ["energy"], {"energy": "GeV"})
    paths = plots.plot_run(_run(tmp_path, table, "energy"), tmp_path / "out")
    _check(paths, ["learning_curves.png", "regression_energy.png"])


def test_binned_plots_in_one_and_two_dimensions(tmp_path):
    from fcnn_cli.results.binned import Binned

    rng = np.random.default_rng(0)
    truth = rng.uniform(-5, 5, size=(300, 2))
    pred = truth + rng.normal(scale=0.3, size=(300, 2))
    b = Binned(["x"], ["x", "y"], point=[0, 1])
    b.add(truth[:, :1], truth, pred)
    one = plots.binned_plot(b.report(4), tmp_path / "one.png", {"x": "km", "y": "km"})
    b2 = Binned(["x", "y"], ["x", "y"])
    b2.add(truth, truth, pred)
    two = plots.binned_plot(b2.report(3), tmp_path / "two.png", {"x": "km"})
    assert _decoded(one)[0] == (round(3 * 5.2 * plots.DPI + 60), 760)
    assert _decoded(two)[0] == (2 * 660, 540)


def test_arrows_are_magnified_by_a_round_factor():
    assert plots.magnification(np.array([0.2]), 100.0) == 10
    assert plots.magnification(np.array([0.04]), 100.0) == 50
    assert plots.magnification(np.array([10.0]), 100.0) == 1
    assert plots.magnification(np.array([0.0]), 100.0) == 1


def test_stations_from_untrusted_metadata_are_checked():
    good = {"stations": {"columns": ["x", "y"], "names": ["A"], "positions": [[1, 2]]}}
    assert plots.stations_for(good, ["x", "y"]) == {"names": ["A"], "positions": [[1.0, 2.0]]}
    assert plots.stations_for(good, ["e", "n"]) is None
    for bad in ({"stations": "x"}, {"stations": {"columns": ["x", "y"], "positions": [[1]]}},
                {"stations": {"columns": ["x", "y"], "positions": [["a", 1]]}},
                {"stations": {"columns": ["x", "y"], "positions": [[float("nan"), 1]]}}, {},
                {"stations": {"columns": ["x", "y"], "positions": []}}):
        assert plots.stations_for(bad, ["x", "y"]) is None


def test_the_roc_curve_by_hand():
    fpr, tpr = plots.roc_curve([True, False, True, False], [0.9, 0.8, 0.4, 0.1])
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0, 0.5, 0.5, 1.0, 1.0]


def test_plotting_is_not_imported_by_training():
    assert "fcnn_cli.results.plots" not in _modules_after("from fcnn_cli import train, cli")
    assert "matplotlib" not in _modules_after("from fcnn_cli import train, cli, evaluation")


def _modules_after(code):
    import subprocess

    out = subprocess.run([sys.executable, "-c", f"{code}; import sys; print(*sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def _sample(tmp_path, meta, frame=None):
    from fcnn_cli.data.tables import write_table

    rng = np.random.default_rng(0)
    frame = frame if frame is not None else pd.DataFrame(
        {"x": rng.normal(size=50), "y": rng.normal(size=50)}).assign(
        x_pred=lambda f: f.x + 0.1, y_pred=lambda f: f.y - 0.1)
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "history.csv").write_text("epoch,train_loss,val_loss,lr\n1,1.0,1.0,0.01\n")
    table = Table(frame, ["x", "y"] if "x" in frame else ["c"], {}, extra=meta)
    write_table(table, run / runs.SAMPLE_FILE)
    return run


@pytest.mark.parametrize("meta, why", [
    ({"position": ["nope", "x"]}, "position"), ({"position": 5}, "position"),
    ({"position": ["x", "x"]}, "position"), ({"classes": ["a", "b"]}, "more than one label"),
    ({"classes": "ab", "position": None}, "classes")])
def test_a_tampered_sample_is_one_line_naming_the_file(tmp_path, meta, why):
    from fcnn_cli.core.errors import FcnnError

    run = _sample(tmp_path, meta)
    with pytest.raises(FcnnError, match=rf"predictions.parquet: malformed .*{why}"):
        plots.plot_run(run, tmp_path / "out")


def test_classes_on_a_regression_sample_are_refused(tmp_path):
    from fcnn_cli.core.errors import FcnnError

    frame = pd.DataFrame({"c": [1.0, 2.0], "c_pred": [1.5, 2.5]})
    run = _sample(tmp_path, {"classes": ["a", "b"]}, frame)
    with pytest.raises(FcnnError, match="malformed .*'c' holds '1.0', none of its classes"):
        plots.plot_run(run, tmp_path / "out")


def test_non_finite_rows_are_left_out_of_the_plots_and_counted(tmp_path, logged):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=50), "y": rng.normal(size=50)})
    frame = frame.assign(x_pred=frame.x + 0.1, y_pred=frame.y)
    frame.loc[:4, "x_pred"] = np.nan
    frame.loc[5:9, "y"] = np.inf
    run = _sample(tmp_path, {"position": ["x", "y"]}, frame)
    paths = plots.plot_run(run, tmp_path / "out")
    assert {p.name for p in paths} >= {"regression_x.png", "distance_map.png",
                                       "distance_cdf.png"}
    assert "10 of 50 rows hold a non-finite label or prediction" in logged.text


def test_many_stations_are_capped(logged):
    many = 60_000
    meta = {"stations": {"columns": ["x", "y"], "positions": [[i, i] for i in range(many)]}}
    stations = plots.stations_for(meta, ["x", "y"])
    assert len(stations["positions"]) == len(stations["names"]) == plots.MAX_STATIONS
    assert stations["names"][:2] == ["1", "2"]
    assert f"records {many} stations" in logged.text
    meta["stations"]["names"] = ["a"] * (many - 1)
    assert plots.stations_for(meta, ["x", "y"]) is None


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


@pytest.mark.parametrize("history, message", [
    ("epoch,train_loss,lr\n1,1.0,0.1\n", "line 2 has no 'val_loss'"),
    ("epoch,train_loss,val_loss,lr\n1,1.0,x,0.1\n", "line 2: val_loss is 'x', not a number")])
def test_a_damaged_history_is_one_line_naming_it(tmp_path, history, message):
    from fcnn_cli.core.errors import FcnnError

    (tmp_path / "history.csv").write_text(history)
    (tmp_path / "config.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    with pytest.raises(FcnnError, match=f"history.csv: malformed: {message}"):
        plots.plot_run(tmp_path, tmp_path / "out")


def test_what_is_not_drawn_is_said(tmp_path, logged):
    from fcnn_cli.results import binned

    classes = [f"c{i}" for i in range(plots.MAX_CLASS_PLOTS + 1)]
    frame = pd.DataFrame({"k": classes, "k_pred": classes})
    assert plots.plot_sample(Table(frame, ["k"], {}, extra={"classes": classes}), tmp_path) == []
    assert f"{len(classes)} classes: no confusion matrix" in logged.text
    assert plots.roc_plot(np.zeros(5, int), np.full((5, 2), 0.5), ["a", "b"],
                          tmp_path / "roc.png") is None
    assert "rows are all of one class (a)" in logged.text and not (tmp_path / "roc.png").exists()
    b = binned.Binned(["u", "v"], ["t"])
    b.add(np.array([[5.0, 5.0]]), np.zeros(1), np.ones(1))
    assert plots.binned_plot(b.report(2, [[0, 1], [0, 1]]), tmp_path / "b.png") is None
    assert "no plot in bins of u and v: all 1 rows are outside the bins" in logged.text
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "history.csv").write_text("epoch,train_loss,val_loss,lr\n1,1,1,0.1\n")
    assert [p.name for p in plots.plot_run(tmp_path / "run")] == ["learning_curves.png"]
    assert "predictions.parquet: none, so only the learning curves" in logged.text


def _leaderboard_row(k, mean, failed=False):
    row = {"run": f"/s/depth={k}-0123456789", "depth": k, "seeds": 3, "seconds": 1.0}
    if failed:
        return {**row, "mode": "failed", "error": "diverged"}
    return {**row, "metric": "rmse", "val_rmse_mean": mean, "val_rmse_std": 0.1,
            "test_rmse_mean": mean + 0.05, "test_rmse_std": 0.2}


def test_leaderboard_figure_shows_the_best_finished_combinations(tmp_path, monkeypatch):
    assert plots.leaderboard_plot([_leaderboard_row(1, 0, failed=True)],
                                  tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
    monkeypatch.setattr(plots, "MAX_LEADERBOARD_ROWS", 3)
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    rows = [_leaderboard_row(k, 1.0 + k) for k in range(5)] + [_leaderboard_row(9, 0, True)]
    plots.leaderboard_plot(rows, tmp_path / "leaderboard.png")
    ax = drawn[0].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["depth=0", "depth=1", "depth=2"]
    assert ax.get_title() == "Leaderboard: 5 combinations (the best 3 shown; 1 failed, not shown)"
    validation = ax.containers[0]  # an errorbar's points and the ± std bars
    assert list(validation.lines[0].get_xdata()) == [1.0, 2.0, 3.0]
    bars = validation.lines[2][0].get_segments()
    assert [tuple(s[:, 0]) for s in bars] == [pytest.approx((m - 0.1, m + 0.1))
                                             for m in (1.0, 2.0, 3.0)]
    plots._pyplot().close(drawn[0])


def test_leaderboard_figure_is_a_png(tmp_path):
    path = plots.leaderboard_plot([_leaderboard_row(k, 1.0 + k) for k in range(2)],
                                  tmp_path / "leaderboard.png")
    size, _ = _decoded(path)
    assert size[0] > 400 and size[1] > 200


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plots draw, each still saved (and so laid out and rendered)."""
    figures, save = [], plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or save(fig, path))
    return figures


def _history(train_loss, val_loss, distance=None):
    rows = [{"epoch": i + 1, "train_loss": t, "val_loss": v, "lr": 0.01}
            for i, (t, v) in enumerate(zip(train_loss, val_loss))]
    for row, d in zip(rows, distance or []):
        row["val_mean_distance"] = d
    return rows


@pytest.mark.parametrize("train_loss, val_loss, scale", [
    ([1.09, -1.46, -2.40], [-0.32, -2.09, -2.79], "linear"),  # a Gaussian NLL crossing 0
    ([-1.0, -2.0, -3.0], [-1.5, -2.5, -3.5], "linear"),
    ([0.25, 0.0051, 0.0032], [0.0079, 0.0043, 0.0030], "log"),
    ([0.25, float("nan"), 0.0032], [0.0079, 0.0043, float("inf")], "log")])
def test_a_loss_at_or_below_zero_gets_a_linear_axis_and_no_warning(
        tmp_path, drawn, recwarn, train_loss, val_loss, scale):
    plots.learning_curves(_history(train_loss, val_loss), tmp_path / "lc.png", 2)
    loss = drawn[0].axes[0]
    assert loss.get_title() == "Loss" and loss.get_yscale() == scale
    low, high = loss.get_ylim()
    finite = [v for v in train_loss + val_loss if np.isfinite(v)]
    assert low <= min(finite) and max(finite) <= high  # every loss on the axis
    assert not recwarn.list


def test_fcnn_plot_of_a_gaussian_run_warns_of_nothing(tmp_path, recwarn):
    (tmp_path / "history.csv").write_text(
        "epoch,train_loss,val_loss,lr\n1,-0.5,-1.0,0.01\n2,-2.5,-2.0,0.01\n")
    assert [p.name for p in plots.plot_run(tmp_path)] == ["learning_curves.png"]
    assert not recwarn.list


# Metre-size errors in a km region: what a well-trained network of earthquakes gives.
def _metre_errors(n=500, seed=0):
    rng = np.random.default_rng(seed)
    true = rng.uniform(-50, 50, size=(n, 2))
    return true, true + rng.normal(scale=0.008, size=(n, 2))


def test_metre_size_errors_are_shown_in_metres_in_every_plot(tmp_path, drawn):
    from fcnn_cli.results.binned import Binned

    true, pred = _metre_errors()
    distance = np.hypot(*(pred - true).T)
    plots.regression_plot(true[:, 0], pred[:, 0], "x", "km", tmp_path / "r.png")
    plots.distance_cdf(distance, "km", tmp_path / "cdf.png")
    plots.distance_map(true, pred, ["x", "y"], "km", tmp_path / "map.png")
    history = _history([0.1, 0.05], [0.1, 0.05], distance=[0.02, 0.0098])
    plots.learning_curves(history, tmp_path / "lc.png", 2, "km")
    b = Binned(["x"], ["x", "y"], point=[0, 1])
    b.add(true[:, :1], true, pred)
    plots.binned_plot(b.report(3), tmp_path / "b.png", {"x": "km", "y": "km"})
    regression, cdf, heat, curves, binned = drawn
    scatter, hist = regression.axes[:2]
    assert scatter.get_ylabel() == hist.get_xlabel() == "residual: predicted − true x (m)"
    assert scatter.get_xlabel() == "true x (km)"  # positions stay in the data's unit
    stats = plots.residual_summary(1000 * (pred[:, 0] - true[:, 0]))
    assert f"resolution (σ) {stats['resolution']:.3g} m" in hist.texts[0].get_text()
    assert 5 < stats["resolution"] < 12
    median = np.percentile(1000 * distance, 50)
    assert cdf.axes[0].get_legend().get_texts()[0].get_text() == f"50 %: {median:.3g} m"
    assert heat.axes[1].get_ylabel() == "mean distance (m)"  # the colour bar
    metric = curves.axes[1]
    assert metric.get_ylabel() == "mean distance (m)"
    assert metric.lines[0].get_ydata() == pytest.approx([20.0, 9.8])
    assert [ax.get_ylabel() for ax in binned.axes[:2]] == ["bias x (m)", "bias y (m)"]
    assert binned.axes[2].get_ylabel() == "distance (m)"


def test_errors_of_many_rows_are_binned_as_finely_as_the_residuals(tmp_path, drawn):
    rng = np.random.default_rng(1)
    true = rng.uniform(-50, 50, plots.HEXBIN_ROWS + 1000)
    residual = rng.uniform(-0.09, 0.09, len(true))  # km: the largest is 0.09 km
    plots.regression_plot(true, true + residual, "x", "km", tmp_path / "r.png")
    ax = drawn[0].axes[0]
    cells = ax.collections[0].get_offsets()  # the 2-D histogram's cell centres
    assert len(cells) > 1000 and ax.get_ylabel().endswith("(m)")
    height = np.diff(np.unique(cells[:, 1])).min()  # between rows of cells
    assert height < 10  # m: the cells are finer than the residuals
    assert np.abs(cells[:, 1]).max() <= 90 + height  # no cell beyond the largest residual
    assert ax.get_ylim()[1] - ax.get_ylim()[0] < 250  # m, not the label's 100 km


def test_a_residual_of_one_value_is_drawn(tmp_path, recwarn):
    true = np.linspace(0, 1, plots.HEXBIN_ROWS + 1)
    for pred in (true + 0.1, true):  # rounding makes the first one a range of 1e-16
        assert plots.regression_plot(true, pred, "e", "GeV", tmp_path / "r.png").is_file()
    assert not recwarn.list


def test_every_arrow_head_station_and_name_is_inside_the_map(tmp_path, drawn):
    true = np.array([[-50.0, -50], [50, 50], [0, 50], [50, 0], [10, 10]])
    pred = true + [[-10, -10], [10, 10], [0, 12], [12, 0], [0.1, 0]]  # out of the region
    stations = {"names": ["far corner", "B", "C"], "positions": [[52, -52], [-55, 48], [0, 0]]}
    plots.position_map(true, pred, ["x", "y"], "km", tmp_path / "p.png", stations)
    fig = drawn[0]
    ax = fig.axes[0]
    (xlo, xhi), (ylo, yhi) = ax.get_xlim(), ax.get_ylim()
    quiver = next(c for c in ax.collections if hasattr(c, "U"))
    heads = quiver.get_offsets() + np.column_stack([quiver.U, quiver.V])
    ends = np.concatenate([quiver.get_offsets(), heads, stations["positions"]])
    assert (ends[:, 0] > xlo).all() and (ends[:, 0] < xhi).all()
    assert (ends[:, 1] > ylo).all() and (ends[:, 1] < yhi).all()
    assert heads.max() == 62 and heads.min() == -60  # out of the region
    box = ax.get_window_extent()
    names = [t for t in ax.texts if t.get_text() in stations["names"]]
    assert len(names) == 3
    for name in names:
        extent = name.get_window_extent()  # as drawn
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, name.get_text()
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, name.get_text()
        assert name.get_zorder() > quiver.get_zorder()  # drawn over the arrows


def test_the_distance_map_leaves_sparse_cells_out_and_counts_the_rows(tmp_path, drawn):
    rng = np.random.default_rng(2)
    true = rng.uniform(0, 30, size=(300, 2))  # 3 × 3 cells of 10 km
    true[:, 0][true[:, 0] > 20] = rng.uniform(0, 20, (true[:, 0] > 20).sum())
    true[:3] = [[25, 5], [25, 15], [25, 25]]  # a cell of one event each, on the right
    true[3:5] = [[30, 30], [20.5, 29]]
    pred = true + rng.normal(scale=0.1, size=true.shape)
    pred[0] += 40  # one outlier, alone in its cell
    assert plots.map_bins(len(true)) == 3
    plots.distance_map(true, pred, ["x", "y"], "km", tmp_path / "m.png")
    ax = drawn[0].axes[0]
    mesh = ax.collections[0]
    values = mesh.get_array()  # rows: y, columns: x
    counts = np.histogram2d(true[:, 1], true[:, 0], bins=3,
                            range=[[true[:, 1].min(), true[:, 1].max()],
                                   [true[:, 0].min(), true[:, 0].max()]])[0].astype(int)
    assert (counts[:, 2] < plots.MIN_ROWS).all() and (counts[:, :2] >= plots.MIN_ROWS).all()
    assert np.ma.getmaskarray(values).tolist() == (counts < plots.MIN_ROWS).tolist()
    assert values.max() < 1000  # m: the outlier's 40 km is in no drawn cell
    numbers = sorted(int(t.get_text()) for t in ax.texts)
    assert numbers == sorted(counts.ravel().tolist())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"fewer than {plots.MIN_ROWS} rows: not drawn"]
    assert ax.get_title().endswith("(numbers: rows in each cell)")


def test_map_cells_hold_about_thirty_events():
    assert [plots.map_bins(n) for n in (40, 150, 1000, 3000, 10**6)] == [3, 3, 5, 10, 20]


def test_a_map_of_many_cells_states_their_rows_and_draws_no_numbers(tmp_path, drawn):
    true, pred = _metre_errors(n=30 * 15 * 15, seed=3)
    plots.distance_map(true, pred, ["x", "y"], "km", tmp_path / "m.png")
    ax = drawn[0].axes[0]
    low, high = (int(v) for v in ax.get_title().split("(")[1].split(" ")[0].split("–"))
    assert 0 < low < 30 < high and not ax.texts


def test_reliability_bins_of_few_rows_are_marked_and_left_off_the_line(tmp_path, drawn):
    p = np.r_[np.full(50, 0.05), np.full(3, 0.55), np.full(2, 0.65), np.full(60, 0.95)]
    true = (np.random.default_rng(0).random(len(p)) < p).astype(int)
    plots.reliability_plot(true, np.column_stack([1 - p, p]), ["a", "b"], tmp_path / "r.png")
    top = drawn[0].axes[0]
    network, sparse = top.containers  # errorbar containers: points, caps, bars
    assert network.lines[0].get_xdata() == pytest.approx([0.05, 0.95])
    assert sparse.lines[0].get_xdata() == pytest.approx([0.55, 0.65])
    assert sparse.lines[0].get_markerfacecolor() == "white"
    (line,) = [line for line in top.lines if line.get_linestyle() == "-"]  # joining bins
    assert np.isfinite(line.get_xdata()).tolist() == [True] + [False] * 8 + [True]
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert legend == ["perfect", "network", f"bins of fewer than {plots.MIN_ROWS} rows"]
