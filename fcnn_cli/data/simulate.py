"""Labelled toy data sets from simple physics."""

import math

import numpy as np
import pandas as pd

from fcnn_cli.core.config import SEED_MESSAGE, valid_seed
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import realism as real
from fcnn_cli.data import stations as network_of
from fcnn_cli.data import velocity
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
# σ_S / σ_P where only one phase's pick noise is given: S onsets, in the P coda, are picked
# about twice as badly.
S_NOISE_RATIO = 2.0


def travel_times(sources, stations, velocity):
    """First-arrival times (s) along straight rays in a uniform medium: distance / velocity.

    ``sources`` is (n, 2) and ``stations`` (k, 2), both in km; the result is (n, k).
    """
    sources = np.asarray(sources, dtype=np.float64)
    stations = np.asarray(stations, dtype=np.float64)
    distance = np.linalg.norm(sources[:, None, :] - stations[None, :, :], axis=-1)
    return distance / velocity


def earthquakes(n=20_000, seed=0, extent=50.0, stations=DEFAULT_STATIONS, vp=CRUSTAL_VP,
                vs=CRUSTAL_VS, noise=0.0, **realism):
    """Epicentres uniform over the square ±``extent`` km and P/S arrival times at each station.

    Columns: ``x, y`` (km, the labels) then ``tp1, ts1, …`` (s) for each station. ``noise`` is the
    standard deviation (s) of Gaussian timing errors added to every arrival time; ``realism``
    takes the options of :func:`earthquake_tables` that make the table realistic. The whole
    table at once: :func:`earthquake_tables` gives the same rows in chunks, for any ``n``.
    """
    (table,) = earthquake_tables(n, seed, extent, stations, vp, vs, noise, rows=n, **realism)
    return table


def earthquake_tables(n=20_000, seed=0, extent=50.0, stations=DEFAULT_STATIONS, vp=CRUSTAL_VP,
                      vs=CRUSTAL_VS, noise=0.0, rows=None, depth=None, model=None,
                      origin_unknown=False, noise_p=None, noise_s=None, missing=0.0):
    """The rows of :func:`earthquakes` as Tables of at most ``rows`` rows (by default
    ``CHUNK_ROWS``), in bounded memory; the values do not depend on ``rows``. The options are
    checked at once, before any row.

    ``stations`` is a list of X,Y pairs or a :class:`~fcnn_cli.data.stations.Network`. The
    options of a realistic table, each off by default: ``depth`` (min, max) km draws
    hypocentres (a label ``z``); ``model`` a :class:`~fcnn_cli.data.velocity.VelocityModel`
    in place of the uniform ``vp``, ``vs``; ``origin_unknown`` adds a random origin time (the
    column ``t0``, recorded as no feature) to every pick; ``noise_p``, ``noise_s`` the timing
    errors of each phase (:func:`pick_noise`); ``missing`` the fraction of picks left out
    (:mod:`fcnn_cli.data.realism`).
    """
    network = stations if isinstance(stations, network_of.Network) else (
        network_of.of_positions(stations))
    _check_count_and_seed(n, seed)
    if not (math.isfinite(extent) and extent > 0):
        raise FcnnError(f"extent must be a finite positive number of km, not {extent}",
                        ("extent",))
    model = model or velocity.uniform(vp, vs)
    sigma = pick_noise(noise, noise_p, noise_s)
    real.check(depth, missing)
    # Finite but absurd values (--extent 1e300, --vs 1e-300) would still give infinite numbers:
    # a coordinate difference is squared on the way to a distance, and 40 σ exceeds any draw.
    far = float(np.abs(network.positions).max())
    span = extent + far + (depth[1] if depth else 0.0)
    slowest = min(model.vs)
    loud = max(sigma)
    if not (math.isfinite(2 * span * span) and math.isfinite(1.5 * span / slowest + 40 * loud)):
        raise FcnnError(f"extent={extent}, station coordinates up to {far} km, vs={slowest} "
                        f"and noise={loud} give distances or arrival times beyond the range of "
                        "floating-point numbers", ("extent", "vs", "noise"))
    labels = ["x", "y"] + (["z"] if depth else [])
    units = {c: "km" for c in labels} | ({"t0": "s"} if origin_unknown else {})
    for k in range(len(network.names)):
        units[f"tp{k + 1}"] = units[f"ts{k + 1}"] = "s"
    shape = real.Shape(depth, origin_unknown, missing)
    frames = _earthquake_frames(n, seed, extent, network, model, sigma, shape,
                                rows or CHUNK_ROWS)
    extra = {"stations": network.metadata(), "velocities": model.metadata()}
    if shape.realistic or any(sigma):  # the locator weighs the picks by their noise
        extra |= real.metadata(shape, sigma)
    return (Table(frame, targets=labels, units=units, name="earthquakes", first_row=start,
                  extra=extra)
            for start, frame in frames)


def pick_noise(noise, noise_p, noise_s):
    """(σ_P, σ_S) in s: ``noise`` on both phases, or ``noise_p`` and ``noise_s``, the one not
    given ``S_NOISE_RATIO`` times the other's (S onsets, in the P coda, are picked worse)."""
    if noise and (noise_p is not None or noise_s is not None):
        raise FcnnError("noise sets both phases' timing errors: give it or noise_p and "
                        "noise_s, not both", ("noise", "noise_p", "noise_s"))
    if noise_p is None and noise_s is None:
        sigma = (noise, noise)
    elif noise_s is None:
        sigma = (noise_p, S_NOISE_RATIO * noise_p)
    elif noise_p is None:
        sigma = (noise_s / S_NOISE_RATIO, noise_s)
    else:
        sigma = (noise_p, noise_s)
    for value, name in zip(sigma, ("noise_p", "noise_s")):
        _check_noise(value, name)
    return sigma


def arrival_times(model, network, epicentres, depth=None):
    """First-arrival times (s) of P and S, each (n, k), from ``epicentres`` (n, 2) at
    ``depth`` (n,) km (None: at the surface) to the stations of ``network``: a station's
    elevation adds its height over the top layer's velocity (a vertical path above the
    model's surface, the usual station correction)."""
    r = np.linalg.norm(epicentres[:, None, :] - network.positions[None, :, :], axis=-1)
    z = None if depth is None else np.broadcast_to(depth[:, None], r.shape)
    times = []
    for phase, top_v in (("P", model.vp[0]), ("S", model.vs[0])):
        t = velocity.first_arrivals(model, phase, r, z)[0]
        times.append(t + network.elevations / top_v if network.elevations.any() else t)
    return times


def station_metadata(stations, vp, vs):
    """What the file records of its stations and medium, for maps: each station's name (the
    number in its columns tpK, tsK) and position in the label columns' coordinates, and the
    velocities."""
    return {"stations": network_of.of_positions(stations).metadata(),
            "velocities": velocity.uniform(vp, vs).metadata()}


def _earthquake_frames(n, seed, extent, network, model, sigma, shape, rows):
    # The draws lie in the random stream as when one call drew all n rows: every epicentre
    # (two draws a row), then every P timing error, then every S one. A generator per block,
    # started where its block begins, reads it chunk by chunk: whatever the chunks, the rows
    # are those of the files made before chunking. A realistic table's other draws come from
    # streams of their own (fcnn_cli.data.realism), read the same way.
    k = len(network.names)
    where = _stream(seed, 0)
    p_errors = _stream(seed, 2 * n)
    s_errors = _stream(seed, 2 * n)
    if sigma[0]:
        _skip_normals(s_errors, n * k)
    draws = real.Draws(seed, shape, k)
    for start in range(0, n, rows):
        m = min(rows, n - start)
        epicentres = where.uniform(-extent, extent, size=(m, 2))
        depth = draws.depths(start, m)
        tp, ts = arrival_times(model, network, epicentres, depth)
        if sigma[0]:
            tp = tp + p_errors.normal(0.0, sigma[0], size=tp.shape)
        if sigma[1]:
            ts = ts + s_errors.normal(0.0, sigma[1], size=ts.shape)
        columns = {"x": epicentres[:, 0], "y": epicentres[:, 1]}
        if depth is not None:
            columns["z"] = depth
        origin = draws.origins(start, m)
        if origin is not None:
            columns["t0"] = origin
            tp, ts = tp + origin[:, None], ts + origin[:, None]
        tp, ts = draws.without_missing(start, tp, ts)
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


def _check_noise(noise, name="noise"):
    if not (math.isfinite(noise) and noise >= 0):
        raise FcnnError(f"{name} must be a finite number, zero or positive, not {noise}",
                        (name,))


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
