"""Labelled toy data sets from simple physics."""

import numpy as np
import pandas as pd

from fcnn_cli.config import check_seed
from fcnn_cli.errors import FcnnError
from fcnn_cli.tables import Table

# Near the corners of the default ±50 km region, a little irregular as real networks are.
DEFAULT_STATIONS = ((-45.0, -42.0), (43.0, -46.0), (46.0, 44.0), (-41.0, 47.0))
CRUSTAL_VP = 6.0  # km/s, P waves in the upper crust
CRUSTAL_VS = 3.5  # km/s, S waves
MAX_EXTENT = 1e6  # km: beyond any planet, and far from where numpy's uniform draw overflows


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
    check_seed(seed)
    if not 0 < extent <= MAX_EXTENT:  # also refuses NaN
        raise FcnnError(f"--extent must be above 0 and at most {MAX_EXTENT:g} km, not {extent}")
    if stations.ndim != 2 or stations.shape[1] != 2 or len(stations) < 1:
        raise FcnnError("stations must be given as X,Y pairs in km")
    if not np.isfinite(stations).all():
        raise FcnnError("station positions must be finite numbers of km")
    if not (0 < vs < vp and np.isfinite(vp)):
        raise FcnnError(f"velocities must satisfy 0 < vs < vp < inf (got vp={vp}, vs={vs})")
    _check_noise(noise)
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


GALAXY_LABELS = ("left", "right")


def galaxy_images(size, direction, arms, pitch, phase, bulge_radius, bulge_brightness,
                  disk_scale, arm_sharpness, axis_ratio, position_angle, centre, brightness):
    """Noise-free images (n, size, size) of logarithmic spirals, one galaxy per row of the
    parameter arrays; row 0 of an image is its top.

    In the disk's plane an arm lies along θ = phase + direction · ln(r) / tan(pitch): with
    direction +1 the arms turn anticlockwise going outward, with -1 clockwise. An inclined disk
    (axis_ratio < 1) is squashed along the position angle, which never mirrors the image, so
    the winding sense survives.
    """
    p = {k: np.asarray(v, dtype=np.float64)[:, None, None] for k, v in dict(
        direction=direction, arms=arms, pitch=pitch, phase=phase, bulge_radius=bulge_radius,
        bulge_brightness=bulge_brightness, disk_scale=disk_scale, arm_sharpness=arm_sharpness,
        axis_ratio=axis_ratio, position_angle=position_angle, brightness=brightness).items()}
    centre = np.asarray(centre, dtype=np.float64)
    half = size / 2.0
    coords = (np.arange(size) + 0.5 - half) / half  # pixel centres on [-1, 1]
    x = coords[None, None, :] - centre[:, 0, None, None]
    y = -coords[None, :, None] - centre[:, 1, None, None]  # y grows upwards
    cos, sin = np.cos(p["position_angle"]), np.sin(p["position_angle"])
    u = x * cos + y * sin
    v = (-x * sin + y * cos) / p["axis_ratio"]
    r = np.hypot(u, v) + 1e-6
    theta = np.arctan2(v, u)
    winding = p["direction"] * np.log(r) / np.tan(p["pitch"])
    arm = ((1.0 + np.cos(p["arms"] * (theta - winding - p["phase"]))) / 2.0) ** p["arm_sharpness"]
    disk = np.exp(-r / p["disk_scale"]) * (0.15 + 0.85 * arm)
    bulge = p["bulge_brightness"] * np.exp(-(r ** 2) / (2.0 * p["bulge_radius"] ** 2))
    image = disk + bulge
    return p["brightness"] * image / image.max(axis=(1, 2), keepdims=True)


def galaxies(n=20_000, seed=0, size=32, noise=0.02):
    """Toy spiral galaxies, flattened row-major to columns p0000 … (size² of them), with the
    label ``rotation``: ``left`` (anticlockwise on the image; trailing arms wind clockwise going
    outward) or ``right`` (clockwise).

    Each galaxy draws its number of arms, pitch angle, orientation, bulge, disk size, arm
    contrast, inclination, centre and brightness; ``noise`` is the standard deviation of
    Gaussian pixel noise on a peak brightness of at most 1, and pixels are clipped to [0, 1].
    """
    if n < 1:
        raise FcnnError(f"--n must be at least 1, not {n}")
    if not 8 <= size <= 256:
        raise FcnnError(f"--size must be between 8 and 256 pixels, not {size}")
    check_seed(seed)
    _check_noise(noise)
    rng = np.random.default_rng(seed)
    right = rng.random(n) < 0.5
    params = dict(
        direction=np.where(right, 1.0, -1.0),  # clockwise rotation: arms wind anticlockwise out
        arms=rng.choice([1, 2, 3, 4], size=n, p=[0.1, 0.5, 0.25, 0.15]),
        pitch=np.radians(rng.uniform(12.0, 35.0, n)),
        phase=rng.uniform(0.0, 2 * np.pi, n),
        bulge_radius=rng.uniform(0.04, 0.12, n),
        bulge_brightness=rng.uniform(0.2, 0.8, n),
        disk_scale=rng.uniform(0.3, 0.55, n),
        arm_sharpness=rng.uniform(1.5, 4.0, n),
        axis_ratio=rng.uniform(0.6, 1.0, n),
        position_angle=rng.uniform(0.0, np.pi, n),
        centre=rng.uniform(-0.06, 0.06, (n, 2)),
        brightness=rng.uniform(0.7, 1.0, n),
    )
    pixels = np.empty((n, size * size), dtype=np.float32)
    chunk = max(1, 4_000_000 // (size * size))  # bounds the float64 work arrays
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        images = galaxy_images(size, **{k: v[rows] for k, v in params.items()})
        images += rng.normal(0.0, noise, images.shape) if noise else 0.0
        pixels[rows] = np.clip(images, 0.0, 1.0).reshape(len(images), -1)
    width = len(str(size * size - 1))
    columns = [f"p{i:0{max(width, 4)}d}" for i in range(size * size)]
    frame = pd.DataFrame(pixels.round(4), columns=columns)
    frame["rotation"] = np.where(right, "right", "left")
    return Table(frame, targets=["rotation"], name="galaxies")


def _check_noise(noise):
    if not (np.isfinite(noise) and noise >= 0):
        raise FcnnError(f"--noise must be zero or positive and finite, not {noise}")
