"""Labelled toy data sets from simple physics."""

import math

import numpy as np
import pandas as pd

from fcnn_cli.core.config import SEED_MESSAGE, valid_seed
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import CHUNK_ROWS, Table

# Numbers drawn or computed at a time in float64 work arrays: bounds their memory.
CHUNK_VALUES = 4_000_000
# Pixels of the galaxies in one chunk of galaxy_tables (128 MiB of float32): enough for the
# default 20 000 images of 32 × 32 at once, so that their Parquet file keeps one row group.
GALAXY_CHUNK_PIXELS = 1 << 25

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
    standard deviation (s) of Gaussian timing errors added to every arrival time. The whole
    table at once: :func:`earthquake_tables` gives the same rows in chunks, for any ``n``.
    """
    (table,) = earthquake_tables(n, seed, extent, stations, vp, vs, noise, rows=n)
    return table


def earthquake_tables(n=20_000, seed=0, extent=50.0, stations=DEFAULT_STATIONS, vp=CRUSTAL_VP,
                      vs=CRUSTAL_VS, noise=0.0, rows=None):
    """The rows of :func:`earthquakes` as Tables of at most ``rows`` rows (by default
    ``CHUNK_ROWS``), in bounded memory; the values do not depend on ``rows``. The options are
    checked at once, before any row."""
    stations = np.asarray(stations, dtype=np.float64)
    _check_count_and_seed(n, seed)
    if not (math.isfinite(extent) and extent > 0):
        raise FcnnError(f"extent must be a finite positive number of km, not {extent}",
                        ("extent",))
    if stations.ndim != 2 or stations.shape[1] != 2 or len(stations) < 1:
        raise FcnnError("stations must be given as X,Y pairs in km")
    for x, y in stations:
        if not (math.isfinite(x) and math.isfinite(y)):
            raise FcnnError(f"stations must be X,Y in finite km, not {x},{y}",
                            ("stations",))
    if not (math.isfinite(vp) and 0 < vs < vp):
        raise FcnnError(f"velocities must be finite and satisfy 0 < vs < vp (got vp={vp}, "
                        f"vs={vs})")
    _check_noise(noise)
    # Finite but absurd values (--extent 1e300, --vs 1e-300) would still give infinite numbers:
    # a coordinate difference is squared on the way to a distance, and 40 σ exceeds any draw.
    far = float(np.abs(stations).max())
    span = extent + far
    if not (math.isfinite(2 * span * span) and math.isfinite(1.5 * span / vs + 40 * noise)):
        raise FcnnError(f"extent={extent}, station coordinates up to {far} km, vs={vs} and "
                        f"noise={noise} give distances or arrival times beyond the range of "
                        "floating-point numbers", ("extent", "vs", "noise"))
    units = {"x": "km", "y": "km"}
    for k in range(len(stations)):
        units[f"tp{k + 1}"] = units[f"ts{k + 1}"] = "s"
    frames = _earthquake_frames(n, seed, extent, stations, vp, vs, noise, rows or CHUNK_ROWS)
    extra = station_metadata(stations, vp, vs)
    return (Table(frame, targets=["x", "y"], units=units, name="earthquakes", first_row=start,
                  extra=extra)
            for start, frame in frames)


def station_metadata(stations, vp, vs):
    """What the file records of its stations and medium, for maps: each station's name (the
    number in its columns tpK, tsK) and position in the label columns' coordinates, and the
    velocities."""
    return {"stations": {"columns": ["x", "y"], "unit": "km",
                         "names": [str(k + 1) for k in range(len(stations))],
                         "positions": [[float(x), float(y)] for x, y in stations]},
            "velocities": {"vp": float(vp), "vs": float(vs), "unit": "km/s"}}


def _earthquake_frames(n, seed, extent, stations, vp, vs, noise, rows):
    # The draws lie in the random stream as when one call drew all n rows: every epicentre
    # (two draws a row), then every P timing error, then every S one. A generator per block,
    # started where its block begins, reads it chunk by chunk: whatever the chunks, the rows
    # are those of the files made before chunking.
    k = len(stations)
    where = _stream(seed, 0)
    p_errors = _stream(seed, 2 * n)
    s_errors = _stream(seed, 2 * n)
    if noise:
        _skip_normals(s_errors, n * k)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        epicentres = where.uniform(-extent, extent, size=(m, 2))
        tp = travel_times(epicentres, stations, vp)
        ts = travel_times(epicentres, stations, vs)
        if noise:
            tp = tp + p_errors.normal(0.0, noise, size=tp.shape)
            ts = ts + s_errors.normal(0.0, noise, size=ts.shape)
        columns = {"x": epicentres[:, 0], "y": epicentres[:, 1]}
        for j in range(k):
            columns[f"tp{j + 1}"] = tp[:, j]
            columns[f"ts{j + 1}"] = ts[:, j]
        yield start, pd.DataFrame(columns)


def _stream(seed, skip):
    """The random stream of ``seed``, ``skip`` draws in (a uniform number takes one draw)."""
    rng = np.random.default_rng(seed)
    rng.bit_generator.advance(skip)
    return rng


def _skip_normals(rng, count):
    """Move ``rng`` past ``count`` normal numbers; how many draws each takes varies, so they
    are drawn and dropped, a bounded batch at a time."""
    for start in range(0, count, CHUNK_VALUES):
        rng.standard_normal(min(CHUNK_VALUES, count - start))


def _check_count_and_seed(n, seed):
    if n < 1:
        raise FcnnError(f"n must be at least 1, not {n}", ("n",))
    if not valid_seed(seed):
        raise FcnnError(SEED_MESSAGE.format(seed=seed), ("seed",))


def _check_noise(noise):
    if not (math.isfinite(noise) and noise >= 0):
        raise FcnnError(f"noise must be a finite number, zero or positive, not {noise}",
                        ("noise",))


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
    The whole table at once: :func:`galaxy_tables` gives the same rows in chunks, for any ``n``.
    """
    (table,) = galaxy_tables(n, seed, size, noise, rows=n)
    return table


# The parameters of each galaxy, in the order their draws lie in the random stream: each takes
# one draw a galaxy (the centre two), and all n galaxies' draws of one come before the next's.
GALAXY_PARAMETERS = (
    ("right", lambda rng, m: rng.random(m) < 0.5),
    ("arms", lambda rng, m: rng.choice([1, 2, 3, 4], size=m, p=[0.1, 0.5, 0.25, 0.15])),
    ("pitch", lambda rng, m: np.radians(rng.uniform(12.0, 35.0, m))),
    ("phase", lambda rng, m: rng.uniform(0.0, 2 * np.pi, m)),
    ("bulge_radius", lambda rng, m: rng.uniform(0.04, 0.12, m)),
    ("bulge_brightness", lambda rng, m: rng.uniform(0.2, 0.8, m)),
    ("disk_scale", lambda rng, m: rng.uniform(0.3, 0.55, m)),
    ("arm_sharpness", lambda rng, m: rng.uniform(1.5, 4.0, m)),
    ("axis_ratio", lambda rng, m: rng.uniform(0.6, 1.0, m)),
    ("position_angle", lambda rng, m: rng.uniform(0.0, np.pi, m)),
    ("centre", lambda rng, m: rng.uniform(-0.06, 0.06, (m, 2))),
    ("brightness", lambda rng, m: rng.uniform(0.7, 1.0, m)),
)


def galaxy_tables(n=20_000, seed=0, size=32, noise=0.02, rows=None):
    """The rows of :func:`galaxies` as Tables of at most ``rows`` rows (by default as many as
    make ``GALAXY_CHUNK_PIXELS`` pixels), in bounded memory; the values do not depend on
    ``rows``. The options are checked at once, before any row."""
    _check_count_and_seed(n, seed)
    if not 8 <= size <= 256:
        raise FcnnError(f"size must be between 8 and 256 pixels, not {size}", ("size",))
    _check_noise(noise)
    rows = rows or max(1, GALAXY_CHUNK_PIXELS // (size * size))
    frames = _galaxy_frames(n, seed, size, noise, rows)
    return (Table(frame, targets=["rotation"], name="galaxies", first_row=start)
            for start, frame in frames)


def _galaxy_frames(n, seed, size, noise, rows):
    # The draws lie in the random stream as when one call drew all n galaxies: each
    # parameter's block in turn (GALAXY_PARAMETERS), then the pixel noise. A generator per
    # block, started where its block begins, reads it chunk by chunk: whatever the chunks, the
    # rows are those of the files made before chunking.
    streams, skip = [], 0
    for name, _ in GALAXY_PARAMETERS:
        streams.append(_stream(seed, skip))
        skip += n * (2 if name == "centre" else 1)
    pixel_noise = _stream(seed, skip)
    width = len(str(size * size - 1))
    columns = [f"p{i:0{max(width, 4)}d}" for i in range(size * size)]
    work = max(1, CHUNK_VALUES // (size * size))  # bounds the float64 work arrays
    for start in range(0, n, rows):
        m = min(rows, n - start)
        params = {name: draw(rng, m) for (name, draw), rng in zip(GALAXY_PARAMETERS, streams)}
        right = params.pop("right")
        params["direction"] = np.where(right, 1.0, -1.0)  # clockwise: arms wind anticlockwise
        pixels = np.empty((m, size * size), dtype=np.float32)
        for first in range(0, m, work):
            part = slice(first, first + work)
            images = galaxy_images(size, **{k: v[part] for k, v in params.items()})
            images += pixel_noise.normal(0.0, noise, images.shape) if noise else 0.0
            pixels[part] = np.clip(images, 0.0, 1.0).reshape(len(images), -1)
        frame = pd.DataFrame(pixels.round(4), columns=columns)
        frame["rotation"] = np.where(right, GALAXY_LABELS[1], GALAXY_LABELS[0])
        yield start, frame
