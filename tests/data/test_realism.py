"""The realistic earthquake tables: depth, origin time, pick noise by phase, missing picks, and
networks of stations."""

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import simulate, stations, velocity
from fcnn_cli.data.columns import select_columns
from fcnn_cli.data.realism import ORIGIN_SPAN

SQUARE = [(-40.0, -40.0), (40.0, -40.0), (40.0, 40.0), (-40.0, 40.0), (0.0, 10.0)]


def frame_of(**options):
    return simulate.earthquakes(n=4000, seed=3, stations=SQUARE, **options)


def test_depth_and_origin_time_shift_straight_rays():
    table = frame_of(depth=(2.0, 30.0), origin_unknown=True)
    f = table.frame
    assert list(f.columns[:4]) == ["x", "y", "z", "t0"] and table.targets == ["x", "y", "z"]
    assert f.z.between(2, 30).all() and f.t0.between(0, ORIGIN_SPAN).all()
    assert f.t0.std() > 10  # uniform over a minute
    sx, sy = SQUARE[1]
    d = np.sqrt((f.x - sx) ** 2 + (f.y - sy) ** 2 + f.z ** 2)
    np.testing.assert_allclose(f.tp2 - f.t0, d / 6.0, rtol=1e-12)
    np.testing.assert_allclose(f.ts2 - f.t0, d / 3.5, rtol=1e-12)
    # The origin time is recorded aside: no feature unless named.
    assert table.extra["aside"] == ["t0"]
    assert table.extra["picks"]["origin_time"] == "unknown"
    features, _ = select_columns(table)
    assert "t0" not in features and len(features) == 2 * len(SQUARE)


def test_events_are_those_of_the_seed_whatever_the_options():
    plain = frame_of().frame
    real = frame_of(depth=(0.0, 20.0), origin_unknown=True, missing=0.3).frame
    np.testing.assert_array_equal(plain[["x", "y"]], real[["x", "y"]])


def test_s_picks_are_noisier_by_the_stated_ratio():
    clean = frame_of().frame
    noisy = frame_of(noise_p=0.02).frame
    p, s = (noisy.tp1 - clean.tp1).std(), (noisy.ts1 - clean.ts1).std()
    assert 0.018 < p < 0.022 and 0.036 < s < 0.044
    assert simulate.pick_noise(0.0, None, 0.1) == (0.1 / simulate.S_NOISE_RATIO, 0.1)
    assert simulate.pick_noise(0.05, None, None) == (0.05, 0.05)
    with pytest.raises(FcnnError, match="noise_p"):
        simulate.pick_noise(0.05, 0.01, None)


def test_missing_picks_are_the_fraction_asked_half_as_outages():
    f = frame_of(missing=0.2).frame
    tp = f[[f"tp{k}" for k in range(1, 6)]].isna().to_numpy()
    ts = f[[f"ts{k}" for k in range(1, 6)]].isna().to_numpy()
    assert abs(np.concatenate([tp, ts]).mean() - 0.2) < 0.01
    # Both picks of a station go together in outages (0.1) and by chance (single² ≈ 0.012).
    assert abs((tp & ts).mean() - (0.1 + 0.9 * (0.1 / 0.9) ** 2)) < 0.01
    assert not f[["x", "y"]].isna().any().any()


@pytest.mark.parametrize("rows", [1, 333, 4000])
def test_realistic_tables_in_chunks_equal_all_at_once(rows):
    options = dict(n=700, seed=5, stations=SQUARE, depth=(0.0, 30.0),
                   model=velocity.model_for("layered", 6, 3.5), origin_unknown=True,
                   noise_p=0.03, missing=0.25)
    whole = simulate.earthquakes(**options).frame
    chunks = simulate.earthquake_tables(**options, rows=rows)
    pd.testing.assert_frame_equal(pd.concat([t.frame for t in chunks], ignore_index=True),
                                  whole, check_exact=True)


def test_layered_tables_hold_the_solvers_first_arrivals_and_record_the_model():
    model = velocity.model_for("layered", 6, 3.5)
    table = frame_of(depth=(0.0, 40.0), model=model)
    f = table.frame
    r = np.hypot(f.x - SQUARE[0][0], f.y - SQUARE[0][1])
    np.testing.assert_allclose(f.tp1, velocity.first_arrivals(model, "P", r, f.z)[0], rtol=1e-14)
    assert velocity.from_metadata(table.extra) == model
    assert table.extra["velocities"]["top"] == [0.0, 20.0, 35.0]


def test_irregular_networks_are_one_per_count_and_in_the_region():
    a, b = stations.irregular(15, 50.0), stations.irregular(15, 50.0)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert a.positions.shape == (15, 2) and np.abs(a.positions).max() <= 50
    spread = np.linalg.norm(a.positions[:, None] - a.positions[None], axis=-1)
    assert len(np.unique(spread.round(6))) > 50  # no square: irregular
    with pytest.raises(FcnnError, match="--stations"):
        stations.irregular(0, 50.0)


def test_a_network_file_with_elevations_delays_by_height_over_velocity(tmp_path):
    path = tmp_path / "net.csv"
    path.write_text("name,x,y,elevation\nHILL,10,0,1.2\nLOW,-10,5\n")
    network = stations.read_network(path)
    assert network.names == ("HILL", "LOW")
    table = simulate.earthquakes(n=50, seed=1, stations=network)
    f = table.frame
    np.testing.assert_allclose(f.tp1, np.hypot(f.x - 10, f.y) / 6.0 + 1.2 / 6.0, rtol=1e-12)
    np.testing.assert_allclose(f.ts2, np.hypot(f.x + 10, f.y - 5) / 3.5, rtol=1e-12)
    again = stations.from_metadata(table.extra)
    assert again.names == network.names
    np.testing.assert_array_equal(again.elevations, network.elevations)
    assert table.extra["stations"]["elevations"] == [1.2, 0.0]


@pytest.mark.parametrize("text, match", [("a,1\n", "line 1"), ("a,1,2\na,3,4\n", "repeat"),
                                         ("", "no stations"), ("a,x,2\nb,1,y\n", "line 2")])
def test_bad_network_files_are_one_line(tmp_path, text, match):
    path = tmp_path / "net.csv"
    path.write_text(text)
    with pytest.raises(FcnnError, match=match):
        stations.read_network(path)


@pytest.mark.parametrize("options", [dict(depth=(5.0, 1.0)), dict(depth=(-1.0, 3.0)),
                                     dict(missing=1.0), dict(noise_s=-0.1)])
def test_bad_realistic_options_are_user_errors(options):
    with pytest.raises(FcnnError):
        frame_of(**options)
