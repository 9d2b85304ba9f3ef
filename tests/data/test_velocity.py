"""First arrivals of flat-layered models against the textbook formulas of refraction
seismology (direct and head waves of two layers, the crossover distance) and against Fermat's
principle solved by brute force, each to 1e-9 s."""

import numpy as np
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import velocity

V1, V2, H = 5.0, 8.0, 10.0  # a layer of 10 km at 5 km/s over a half-space at 8 km/s
TWO = velocity.checked([(0.0, V1, V1 / 1.7), (H, V2, V2 / 1.7)], "two")
TOL = 1e-9  # s
ETA = np.sqrt(1 / V1 ** 2 - 1 / V2 ** 2)  # vertical slowness of the critical ray in layer 1


def p_times(r, z=None):
    return velocity.first_arrivals(TWO, "P", np.asarray(r, np.float64),
                                   None if z is None else np.full(np.shape(r), z))[0]


def test_surface_source_direct_then_head_wave_beyond_the_crossover():
    crossover = 2 * H * np.sqrt((V2 + V1) / (V2 - V1))  # 28.28 km
    r = np.linspace(0, 200, 2001)
    head = r / V2 + 2 * H * ETA
    direct = r / V1
    np.testing.assert_allclose(p_times(r), np.where(r < crossover, direct, head), atol=TOL)
    # At the crossover the two are equal; just before it the direct wave is first, just after
    # it the head wave.
    assert crossover / V1 == pytest.approx(crossover / V2 + 2 * H * ETA, abs=TOL)
    before, after = p_times([crossover - 0.01, crossover + 0.01])
    assert before == pytest.approx((crossover - 0.01) / V1, abs=TOL)
    assert after == pytest.approx((crossover + 0.01) / V2 + 2 * H * ETA, abs=TOL)


@pytest.mark.parametrize("z", [1.0, 4.0, 9.5])
def test_source_in_the_layer_straight_ray_or_head_wave(z):
    r = np.linspace(0, 200, 801)
    direct = np.sqrt(r ** 2 + z ** 2) / V1
    critical = (2 * H - z) * np.tan(np.arcsin(V1 / V2))  # where the head wave begins
    head = np.where(r >= critical, r / V2 + (2 * H - z) * ETA, np.inf)
    np.testing.assert_allclose(p_times(r, z), np.minimum(direct, head), atol=TOL)


def fermat(r, z):
    """The fastest path from depth z (> H) through a point ξ of the interface to the surface
    at r, by bounded minimisation over ξ."""
    optimize = pytest.importorskip("scipy.optimize")
    cost = lambda xi: np.hypot(xi, z - H) / V2 + np.hypot(r - xi, H) / V1  # noqa: E731
    return optimize.minimize_scalar(cost, bounds=(0, r), method="bounded",
                                    options={"xatol": 1e-12}).fun


@pytest.mark.parametrize("z", [10.5, 25.0, 60.0])
def test_source_below_the_interface_bends_as_fermat_says(z):
    r = np.array([0.5, 5.0, 30.0, 80.0, 150.0, 400.0])
    np.testing.assert_allclose(p_times(r, z), [fermat(x, z) for x in r], atol=TOL)


def test_head_wave_along_the_moho_of_the_built_in_crust():
    model = velocity.model_for("layered", 6.0, 3.5)
    (t1, v1, _), (t2, v2, _), (t3, v3, _) = velocity.LAYERED
    r = np.array([200.0, 300.0])
    moho = r / v3 + 2 * sum((b - a) * np.sqrt(1 / v ** 2 - 1 / v3 ** 2)
                            for a, b, v in ((t1, t2, v1), (t2, t3, v2)))
    np.testing.assert_allclose(velocity.first_arrivals(model, "P", r)[0], moho, atol=TOL)


def test_a_slower_layer_carries_no_head_wave():
    model = velocity.checked([(0.0, 6.0, 3.5), (10.0, 5.0, 3.0), (20.0, 8.0, 4.5)], "lvz")
    r = np.array([300.0])
    moho = r / 8 + 2 * (10 * np.sqrt(1 / 36 - 1 / 64) + 10 * np.sqrt(1 / 25 - 1 / 64))
    np.testing.assert_allclose(velocity.first_arrivals(model, "P", r)[0], moho, atol=TOL)


@pytest.mark.parametrize("phase", ["P", "S"])
def test_derivatives_are_those_of_the_times(phase):
    model = velocity.model_for("layered", 6.0, 3.5)
    rng = np.random.default_rng(0)
    r, z = rng.uniform(0.1, 200, 500), rng.uniform(0.1, 50, 500)
    t, dr, dz = velocity.first_arrivals(model, phase, r, z)
    e = 1e-6
    up_r = velocity.first_arrivals(model, phase, r + e, z)[0]
    down_r = velocity.first_arrivals(model, phase, r - e, z)[0]
    up_z = velocity.first_arrivals(model, phase, r, z + e)[0]
    down_z = velocity.first_arrivals(model, phase, r, z - e)[0]
    # Away from the kinks where the first arrival changes path.
    smooth = (np.abs(up_r - 2 * t + down_r) < 1e-9) & (np.abs(up_z - 2 * t + down_z) < 1e-9)
    assert smooth.mean() > 0.95
    np.testing.assert_allclose(((up_r - down_r) / (2 * e))[smooth], dr[smooth], atol=1e-6)
    np.testing.assert_allclose(((up_z - down_z) / (2 * e))[smooth], dz[smooth], atol=1e-6)


def test_uniform_model_is_straight_rays():
    model = velocity.uniform(6.0, 3.5)
    t, dr, dz = velocity.first_arrivals(model, "S", np.array([3.0, 0.0]), np.array([4.0, 0.0]))
    np.testing.assert_allclose(t, [5 / 3.5, 0.0])
    np.testing.assert_allclose(dr, [3 / 5 / 3.5, 0.0])
    np.testing.assert_allclose(dz, [4 / 5 / 3.5, 0.0])


def test_model_files_and_their_errors(tmp_path):
    path = tmp_path / "model.txt"
    path.write_text("top vp vs\n# a crust\n0 5.5 3.2\n15, 6.3, 3.6  # lower crust\n\n30 7.9 4.4\n")
    model = velocity.read_model(path)
    assert model.top == (0.0, 15.0, 30.0) and model.vs == (3.2, 3.6, 4.4)
    assert velocity.from_metadata({"velocities": model.metadata()}) == model
    for text, match in [("0 5 3\n0 6 4\n", "increase"), ("1 5 3\n", "start at 0"),
                        ("0 5 6\n", "vs < vp"), ("0 5\n", "line 1"), ("", "no layers"),
                        ("0 5 3\n10 x 4\n", "line 2")]:
        path.write_text(text)
        with pytest.raises(FcnnError, match=match):
            velocity.read_model(path)


@pytest.mark.parametrize("velocities", [
    {"top": [0, 20], "vp": [5.8, 6.5], "vs": [3.36]},  # zip would cut it to one layer
    {"top": list(range(101)), "vp": [6.0] * 101, "vs": [3.5] * 101},
    {"top": 3, "vp": 6, "vs": 3}, {"vp": "fast", "vs": 3.5}, {"vp": 3.0, "vs": 3.5}])
def test_malformed_velocities_of_a_tables_metadata_are_one_line(velocities):
    with pytest.raises(FcnnError, match="metadata records malformed velocities|0 < vs < vp"):
        velocity.from_metadata({"velocities": velocities})


@pytest.mark.parametrize("stations", [
    {"positions": [[0, 0], [1, 1]], "names": ["a"]}, {"positions": [[0, 0]], "names": 7},
    {"positions": [[0, 0]], "names": [3]}, {"positions": [[0, 0]] * 10_001},
    {"positions": [[0, "x"]]}, {"positions": [[0, 0]], "elevations": [1, 2]}])
def test_malformed_stations_of_a_tables_metadata_are_one_line(stations):
    from fcnn_cli.data import stations as networks

    with pytest.raises(FcnnError, match="metadata records malformed stations|X,Y pairs"):
        networks.from_metadata({"stations": stations})
