import numpy as np
import pytest

from fcnn_cli import simulate
from fcnn_cli.errors import FcnnError


def test_travel_time_is_distance_over_velocity():
    t = simulate.travel_times([[3.0, 4.0], [0.0, 0.0]], [[0.0, 0.0], [6.0, 8.0]], 2.0)
    np.testing.assert_allclose(t, [[2.5, 2.5], [0.0, 5.0]])


def test_columns_and_arrival_times_match_the_formula():
    stations = [(-10.0, 0.0), (10.0, 0.0)]
    table = simulate.earthquakes(n=50, seed=4, extent=20, stations=stations, vp=6.0, vs=3.5)
    f = table.frame
    assert list(f.columns) == ["x", "y", "tp1", "ts1", "tp2", "ts2"]
    assert table.targets == ["x", "y"]
    assert table.units["x"] == "km" and table.units["tp1"] == "s"
    d1 = np.hypot(f.x + 10.0, f.y)
    np.testing.assert_allclose(f.tp1, d1 / 6.0)
    np.testing.assert_allclose(f.ts1, d1 / 3.5)
    assert f[["x", "y"]].abs().max().max() <= 20.0


def test_default_stations_near_corners_and_region():
    f = simulate.earthquakes(n=2000, seed=0).frame
    assert f.x.between(-50, 50).all() and f.y.between(-50, 50).all()
    # uniform: the mean is near zero and each quadrant gets about a quarter
    assert abs(f.x.mean()) < 3 and abs(f.y.mean()) < 3
    assert 0.2 < ((f.x > 0) & (f.y > 0)).mean() < 0.3
    for sx, sy in simulate.DEFAULT_STATIONS:
        assert 35 < abs(sx) <= 50 and 35 < abs(sy) <= 50


def test_seed_repeats_and_differs():
    a = simulate.earthquakes(n=20, seed=7).frame
    b = simulate.earthquakes(n=20, seed=7).frame
    c = simulate.earthquakes(n=20, seed=8).frame
    assert a.equals(b)
    assert not a.equals(c)


def test_noise_has_the_requested_spread():
    clean = simulate.earthquakes(n=5000, seed=2).frame
    noisy = simulate.earthquakes(n=5000, seed=2, noise=0.05).frame
    diff = (noisy.tp3 - clean.tp3).to_numpy()
    assert np.allclose(noisy.x, clean.x)
    assert 0.045 < diff.std() < 0.055


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"vs": 7.0}, {"noise": -1.0}, {"extent": 0.0}])
def test_invalid_options_are_user_errors(kwargs):
    with pytest.raises(FcnnError):
        simulate.earthquakes(**kwargs)
