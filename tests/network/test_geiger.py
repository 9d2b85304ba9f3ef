"""Geiger's method: exact hypocentres from noise-free picks, errors that grow with the pick
noise as least squares says (in proportion), missing picks left out, the grid's start."""

import numpy as np
import pytest

from fcnn_cli.data import simulate, stations, velocity
from fcnn_cli.network import geiger

# Stations around the region and inside it: every event has picks on all sides.
RING = stations.of_positions([(-60, -55), (0, -62), (58, -60), (63, 0), (55, 61), (0, 57),
                              (-61, 58), (-57, 0), (5, 3), (-20, 25), (30, -15)])
LAYERED = velocity.model_for("layered", 6.0, 3.5)
REGION = ((-50.0, 50.0), (-50.0, 50.0), (2.0, 30.0))
EXACT = 1e-6  # km: noise-free picks give the hypocentre to this (about 1e-10 in practice)


def realistic(n=1500, seed=2, **options):
    table = simulate.earthquakes(n=n, seed=seed, stations=RING, depth=REGION[2], model=LAYERED,
                                 origin_unknown=True, **options).frame
    k = len(RING.names)
    picks = table[[f"tp{i}" for i in range(1, k + 1)] + [f"ts{i}" for i in range(1, k + 1)]]
    return table, picks.to_numpy()


def problem(noise=(0.0, 0.0), network=RING, model=LAYERED, depth=True, origin=True,
            region=REGION):
    return geiger.Problem(network.positions, network.elevations, model, noise, depth, origin,
                          region)


def distance(hypo, table, labels=("x", "y", "z")):
    return np.linalg.norm(hypo[:, :len(labels)] - table[list(labels)].to_numpy(), axis=1)


def test_noise_free_picks_give_the_exact_hypocentre_and_origin_time():
    table, picks = realistic()
    hypo, t0 = geiger.locate(picks, problem())
    assert distance(hypo, table).max() < EXACT
    np.testing.assert_allclose(t0, table.t0, atol=1e-9)


def test_the_lecture_case_epicentres_are_exact():
    table = simulate.earthquakes(n=1000, seed=1).frame
    network = stations.of_positions(simulate.DEFAULT_STATIONS)
    picks = table[["tp1", "tp2", "tp3", "tp4", "ts1", "ts2", "ts3", "ts4"]].to_numpy()
    hypo, _ = geiger.locate(picks, problem(network=network, model=velocity.uniform(6.0, 3.5),
                                           depth=False, origin=False,
                                           region=((-50, 50), (-50, 50), (0, 0))))
    assert distance(hypo, table, ("x", "y")).max() < EXACT
    assert (hypo[:, 2] == 0).all()


def test_errors_grow_in_proportion_to_the_pick_noise():
    # Least squares is linear in the picks' errors near the answer: twice the noise, twice the
    # error (the same draws, scaled).
    rms = []
    for sigma in (0.01, 0.02):
        table, picks = realistic(n=3000, noise_p=sigma)
        hypo, _ = geiger.locate(picks, problem((sigma, 2 * sigma)))
        rms.append(np.sqrt((distance(hypo, table) ** 2).mean()))
    assert 0.05 < rms[0] < 1.0
    assert rms[1] / rms[0] == pytest.approx(2.0, rel=0.1)


def test_weights_follow_the_noise_of_each_phase():
    # S picks far noisier than P: weighting by 1/σ beats weighting the phases alike.
    table, picks = realistic(n=2000, noise_p=0.01, noise_s=0.2)
    weighted = distance(geiger.locate(picks, problem((0.01, 0.2)))[0], table)
    alike = distance(geiger.locate(picks, problem((0.1, 0.1)))[0], table)
    assert np.sqrt((weighted ** 2).mean()) < 0.7 * np.sqrt((alike ** 2).mean())


def test_missing_picks_are_left_out():
    table, picks = realistic(missing=0.3)
    seen = np.isfinite(picks).sum(axis=1)
    assert (seen < picks.shape[1]).mean() > 0.9
    hypo, _ = geiger.locate(picks, problem())
    enough = seen >= 8  # twice the unknowns: x, y, z and the origin time
    assert enough.mean() > 0.95 and np.isfinite(hypo).all()
    assert distance(hypo[enough], table[enough]).max() < EXACT


def test_the_grid_starts_next_to_each_event():
    table, picks = realistic(n=200)
    start = geiger._grid_start(picks, np.isfinite(picks), np.ones(picks.shape[1]), problem())
    cell = np.array([100 / (geiger.GRID - 1)] * 2 + [28 / (geiger.DEPTHS - 1)])
    assert (np.abs(start - table[["x", "y", "z"]].to_numpy()) <= cell).all(axis=1).mean() > 0.95
