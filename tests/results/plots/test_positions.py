"""The maps and the distance of a point, and the stations drawn on them."""

import json

import numpy as np
import pytest

from fcnn_cli.data import simulate
from fcnn_cli.data.tables import Table
from fcnn_cli.engine import train
from fcnn_cli.results.plots import plot_run, positions
from fcnn_cli.results.plots.figures import MIN_ROWS
from plotted import check, metre_errors, saved_run


@pytest.mark.slow
def test_position_by_option_for_labels_not_named_as_axes(tmp_path):
    frame = simulate.earthquakes(n=600, seed=3).frame.rename(columns={"x": "east_km",
                                                                      "y": "north_km"})
    table = Table(frame, ["east_km", "north_km"], {"east_km": "km", "north_km": "km"})
    plain = train.fit(table, train.TrainConfig(epochs=1, batch_size=64))
    assert "distance" not in plain.metrics["test"]
    run = saved_run(tmp_path, table, "named", config={"position": ["east_km", "north_km"]})
    assert "distance" in json.loads((run / "metrics.json").read_text())["test"]
    paths = plot_run(run, tmp_path / "out")
    check(paths, ["learning_curves.png", "regression_east_km.png", "regression_north_km.png",
                  "position_map.png", "distance_map.png", "distance_cdf.png",
                  "overtraining.png", "correlations.png"])


def test_arrows_are_magnified_by_a_round_factor():
    assert positions.magnification(np.array([0.2]), 100.0) == 10
    assert positions.magnification(np.array([0.04]), 100.0) == 50
    assert positions.magnification(np.array([10.0]), 100.0) == 1
    assert positions.magnification(np.array([0.0]), 100.0) == 1


def test_stations_from_untrusted_metadata_are_checked():
    good = {"stations": {"columns": ["x", "y"], "names": ["A"], "positions": [[1, 2]]}}
    assert positions.stations_for(good, ["x", "y"]) == {"names": ["A"],
                                                        "positions": [[1.0, 2.0]]}
    assert positions.stations_for(good, ["e", "n"]) is None
    assert positions.stations_for(good, ["x", "y", "z"]) == {"names": ["A"],  # at the surface
                                                             "positions": [[1.0, 2.0]]}
    three = {"stations": {"columns": ["x", "y", "z"], "positions": [[1, 2]]}}
    assert positions.stations_for(three, ["x", "y", "z"]) is None  # a position of 2 values
    for bad in ({"stations": "x"}, {"stations": {"columns": ["x", "y"], "positions": [[1]]}},
                {"stations": {"columns": ["x", "y"], "positions": [["a", 1]]}},
                {"stations": {"columns": ["x", "y"], "positions": [[float("nan"), 1]]}}, {},
                {"stations": {"columns": ["x", "y"], "positions": []}}):
        assert positions.stations_for(bad, ["x", "y"]) is None


def test_many_stations_are_capped(logged):
    many = 60_000
    meta = {"stations": {"columns": ["x", "y"], "positions": [[i, i] for i in range(many)]}}
    stations = positions.stations_for(meta, ["x", "y"])
    assert len(stations["positions"]) == len(stations["names"]) == positions.MAX_STATIONS
    assert stations["names"][:2] == ["1", "2"]
    assert f"records {many} stations" in logged.text
    meta["stations"]["names"] = ["a"] * (many - 1)
    assert positions.stations_for(meta, ["x", "y"]) is None


def test_every_arrow_head_station_and_name_is_inside_the_map(tmp_path, drawn):
    true = np.array([[-50.0, -50], [50, 50], [0, 50], [50, 0], [10, 10]])
    pred = true + [[-10, -10], [10, 10], [0, 12], [12, 0], [0.1, 0]]  # out of the region
    stations = {"names": ["far corner", "B", "C"], "positions": [[52, -52], [-55, 48], [0, 0]]}
    positions.position_map(true, pred, ["x", "y"], "km", tmp_path / "p.png", stations)
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
    assert positions.map_bins(len(true)) == 3
    positions.distance_map(true, pred, ["x", "y"], "km", tmp_path / "m.png")
    ax = drawn[0].axes[0]
    mesh = ax.collections[0]
    values = mesh.get_array()  # rows: y, columns: x
    counts = np.histogram2d(true[:, 1], true[:, 0], bins=3,
                            range=[[true[:, 1].min(), true[:, 1].max()],
                                   [true[:, 0].min(), true[:, 0].max()]])[0].astype(int)
    assert (counts[:, 2] < MIN_ROWS).all() and (counts[:, :2] >= MIN_ROWS).all()
    assert np.ma.getmaskarray(values).tolist() == (counts < MIN_ROWS).tolist()
    assert values.max() < 1000  # m: the outlier's 40 km is in no drawn cell
    numbers = sorted(int(t.get_text()) for t in ax.texts)
    assert numbers == sorted(counts.ravel().tolist())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"fewer than {MIN_ROWS} rows: not drawn"]
    assert ax.get_title().endswith("(numbers: rows in each cell)")


def test_map_cells_hold_about_thirty_events():
    assert [positions.map_bins(n) for n in (40, 150, 1000, 3000, 10**6)] == [3, 3, 5, 10, 20]


def test_a_map_of_many_cells_states_their_rows_and_draws_no_numbers(tmp_path, drawn):
    true, pred = metre_errors(n=30 * 15 * 15, seed=3)
    positions.distance_map(true, pred, ["x", "y"], "km", tmp_path / "m.png")
    ax = drawn[0].axes[0]
    low, high = (int(v) for v in ax.get_title().split("(")[1].split(" ")[0].split("–"))
    assert 0 < low < 30 < high and not ax.texts


def test_the_nearer_map_is_the_baselines_mean_distance_less_the_networks(tmp_path, drawn):
    rng = np.random.default_rng(4)
    true = rng.uniform(0, 30, size=(270, 2))  # 3 × 3 cells of about 30 events
    pred = true + rng.normal(scale=0.5, size=true.shape)  # the network: about 0.6 km off
    other = true + rng.normal(scale=3.0, size=true.shape)
    left = true[:, 0] < 10
    other[left] = true[left] + rng.normal(scale=0.01, size=(left.sum(), 2))  # nearer there
    positions.nearer_map(true, pred, other, "locator", ["x", "y"], "km", tmp_path / "n.png")
    ax = drawn[0].axes[0]
    values = ax.collections[0].get_array()  # rows: y, columns: x
    edges = [np.linspace(true[:, k].min(), true[:, k].max(), 4) for k in (1, 0)]
    cell = [np.clip(np.searchsorted(e, true[:, k], side="right") - 1, 0, 2)
            for e, k in zip(edges, (1, 0))]
    gap = np.hypot(*(other - true).T) - np.hypot(*(pred - true).T)
    expected = np.array([[gap[(cell[0] == i) & (cell[1] == j)].mean() for j in range(3)]
                         for i in range(3)])
    np.testing.assert_allclose(np.ma.getdata(values), expected, rtol=1e-9)
    assert (values[:, 0] < 0).all() and (values[:, 1:] > 0).all()  # red on the left only
    assert ax.collections[0].norm.vcenter == 0
    assert "the network" in ax.get_title() and "locator" in ax.get_title()
    assert drawn[0].axes[1].get_ylabel() == "locator's mean distance − the network's (km)"


def test_plots_of_a_sample_with_a_baselines_positions_show_where_each_is_nearer(tmp_path):
    from fcnn_cli.results.plots import plot_sample

    true, pred = metre_errors(n=400, seed=5)
    frame = {"x": true[:, 0], "y": true[:, 1], "x_pred": pred[:, 0], "y_pred": pred[:, 1],
             "grid search_x_pred": true[:, 0] + 1, "grid search_y_pred": true[:, 1]}
    import pandas as pd

    table = Table(pd.DataFrame(frame), ["x", "y"], {"x": "km", "y": "km"},
                  extra={"position": ["x", "y"], "baselines": ["grid search", "absent"]})
    names = {p.name for p in plot_sample(table, tmp_path)}
    assert "nearer_grid_search.png" in names
    assert not any("absent" in n for n in names)  # a baseline without its columns: no map
