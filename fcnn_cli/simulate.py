"""Labelled toy data sets from simple physics."""

import numpy as np
import pandas as pd

from fcnn_cli.errors import FcnnError
from fcnn_cli.tables import Table

# Near the corners of the default ±50 km region, a little irregular as real networks are.
DEFAULT_STATIONS = ((-45.0, -42.0), (43.0, -46.0), (46.0, 44.0), (-41.0, 47.0))
CRUSTAL_VP = 6.0  # km/s, P waves in the upper crust
CRUSTAL_VS = 3.5  # km/s, S waves


def travel_times(sources, stations, velocity):
    """First-arrival times (s) along straight rays in a uniform medium: distance / velocity.

    ``sources`` is (n, 2) and ``stations`` (k, 2), both in km; the result is (n, k).
    """
    sources = np.asarray(sources, dtype=np.float64)
    stations = np.asarray(stations, dtype=np.float64)
    distance = np.linalg.norm(sources[:, None, :] - stations[None, :, :], axis=-1)
    return distance / velocity


def earthquakes(n=20_000, seed=0, extent=50.0, stations=DEFAULT_STATIONS, vp=CRUSTAL_VP,
                vs=CRUSTAL_VS, noise=0.0):
    """Epicentres uniform over the square ±``extent`` km and P/S arrival times at each station.

    Columns: ``x, y`` (km, the labels) then ``tp1, ts1, …`` (s) for each station. ``noise`` is the
    standard deviation (s) of Gaussian timing errors added to every arrival time.
    """
    stations = np.asarray(stations, dtype=np.float64)
    if n < 1:
        raise FcnnError(f"--n must be at least 1, not {n}")
    if extent <= 0:
        raise FcnnError(f"--extent must be positive, not {extent}")
    if stations.ndim != 2 or stations.shape[1] != 2 or len(stations) < 1:
        raise FcnnError("stations must be given as X,Y pairs in km")
    if not 0 < vs < vp:
        raise FcnnError(f"velocities must satisfy 0 < vs < vp (got vp={vp}, vs={vs})")
    if noise < 0:
        raise FcnnError(f"--noise must be zero or positive, not {noise}")
    rng = np.random.default_rng(seed)
    epicentres = rng.uniform(-extent, extent, size=(n, 2))
    tp = travel_times(epicentres, stations, vp)
    ts = travel_times(epicentres, stations, vs)
    if noise:
        tp = tp + rng.normal(0.0, noise, size=tp.shape)
        ts = ts + rng.normal(0.0, noise, size=ts.shape)
    columns = {"x": epicentres[:, 0], "y": epicentres[:, 1]}
    units = {"x": "km", "y": "km"}
    for k in range(len(stations)):
        columns[f"tp{k + 1}"] = tp[:, k]
        columns[f"ts{k + 1}"] = ts[:, k]
        units[f"tp{k + 1}"] = units[f"ts{k + 1}"] = "s"
    return Table(pd.DataFrame(columns), targets=["x", "y"], units=units, name="earthquakes")
