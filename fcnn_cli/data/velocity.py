"""1-D velocity models (flat layers over a half-space) and their first-arrival travel times.

A model is a list of layers, each a top depth (km, the first at 0) with its P and S velocities
(km/s); the last layer goes on downwards. A ray from a source at depth z to a receiver on the
surface at horizontal distance r arrives first along one of two kinds of path, in flat layers
of constant velocity (no turning rays):

* the direct ray, up through the layers above the source, bent at each interface (Snell). Its
  ray parameter p (horizontal slowness) solves X(p) = Σ hᵢ p vᵢ / √(1 − p²vᵢ²) = r over the
  thicknesses hᵢ it crosses; it is solved for q, the tangent of the ray's angle in the fastest
  layer it crosses, in which X is increasing and concave, so that Newton's method from X's
  lower bound climbs to the root without overshooting it (:func:`_direct`). The time is
  stationary in p (Fermat), so it is exact to rounding once X is r to 1e-9 km;
* a head wave along the top of a deeper layer faster than every layer above it, which exists
  beyond its critical distance: t = r / v + Σ hᵢ √(1/vᵢ² − 1/v²), the sum over the layers the
  ray crosses down from the source and up to the receiver.

Both give their derivatives for free: ∂t/∂r is the ray parameter and ∂t/∂z the vertical
slowness at the source (upwards for the direct ray, downwards for a head wave), which is what
a locator needs. Everything is vectorised over whole arrays of distances and depths.
"""

import math
from dataclasses import dataclass

import numpy as np

from fcnn_cli.core.errors import FcnnError

# A standard continental crust over the mantle, after IASP91's upper crust (Kennett & Engdahl
# 1991): 5.8 / 3.36 km/s to 20 km, 6.5 / 3.75 km/s to 35 km (the Moho), then 8.04 / 4.47 km/s.
LAYERED = ((0.0, 5.8, 3.36), (20.0, 6.5, 3.75), (35.0, 8.04, 4.47))
TOLERANCE = 1e-9  # km: how close X(p) comes to r
MAX_STEPS = 100  # Newton steps at most; it takes a few
MIN_DISTANCE = 1e-12  # km: below, a ray is vertical (avoids 0/0 in the derivatives)


@dataclass(frozen=True)
class VelocityModel:
    """Layers from the surface down: their tops (km) and P and S velocities (km/s)."""

    top: tuple
    vp: tuple
    vs: tuple
    name: str = "uniform"

    @property
    def uniform(self):
        return len(self.top) == 1

    def velocities(self, phase):
        return np.asarray(self.vp if phase == "P" else self.vs, dtype=np.float64)

    def metadata(self):
        """What a table records of its model; a uniform one as the lecture's tables always
        have, ``{"vp", "vs", "unit"}``."""
        if self.uniform:
            return {"vp": self.vp[0], "vs": self.vs[0], "unit": "km/s"}
        return {"model": self.name, "top": list(self.top), "vp": list(self.vp),
                "vs": list(self.vs), "unit": "km/s"}


MAX_LAYERS = 100  # layers a table's metadata may record (read as untrusted input)


def uniform(vp, vs):
    """The uniform medium of ``vp``, ``vs`` (km/s), checked as the options --vp and --vs."""
    if not (math.isfinite(vp) and math.isfinite(vs) and 0 < vs < vp):
        raise FcnnError(f"velocities must be finite and satisfy 0 < vs < vp (got vp={vp}, "
                        f"vs={vs})", ("vp", "vs"))
    return checked([(0.0, vp, vs)], "uniform")


def checked(layers, name):
    """The model of ``layers`` (top, vp, vs), each checked: finite, tops from 0 increasing,
    0 < vs < vp."""
    if not layers:
        raise FcnnError(f"velocity_model {name}: no layers", ("velocity_model",))
    for i, (top, vp, vs) in enumerate(layers):
        if not all(math.isfinite(v) for v in (top, vp, vs)):
            raise FcnnError(f"velocity_model {name}: layer {i + 1} has a value that is not a "
                            "finite number", ("velocity_model",))
        if not 0 < vs < vp:
            raise FcnnError(f"velocity_model {name}: layer {i + 1} needs 0 < vs < vp (got "
                            f"vp={vp}, vs={vs})", ("velocity_model",))
        if (i == 0 and top != 0) or (i and top <= layers[i - 1][0]):
            raise FcnnError(f"velocity_model {name}: layer tops must start at 0 km and "
                            f"increase (layer {i + 1} at {top})", ("velocity_model",))
    top, vp, vs = (tuple(float(v) for v in c) for c in zip(*layers))
    return VelocityModel(top, vp, vs, name)


def read_model(path):
    """A model file: one layer a line, ``top,vp,vs`` (km, km/s; commas or blanks), from the
    surface down; blank lines and lines from ``#`` on are skipped, and so is a first line of
    column names."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise FcnnError(f"velocity_model {path}: cannot read it: {e}",
                        ("velocity_model",)) from None
    layers = []
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].replace(",", " ").split()
        if not fields:
            continue
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if not layers and number == 1:
                continue  # a header
            values = []
        if len(values) != 3:
            raise FcnnError(f"velocity_model {path}, line {number}: expected top,vp,vs "
                            f"numbers, got {line.strip()!r}", ("velocity_model",))
        layers.append(tuple(values))
    return checked(layers, str(path))


def model_for(spec, vp, vs):
    """The model ``--velocity-model`` names: ``uniform`` (``vp``, ``vs``), ``layered`` (the
    built-in crust and mantle) or a model file."""
    if spec == "uniform":
        return uniform(vp, vs)
    if spec == "layered":
        return checked(LAYERED, "layered")
    return read_model(spec)


def from_metadata(meta):
    """The model a table's metadata records (``velocities``); None where it records none."""
    v = meta.get("velocities")
    if not isinstance(v, dict):
        return None
    try:
        if "top" in v:
            columns = [list(v[k]) for k in ("top", "vp", "vs")]
            if len({len(c) for c in columns}) != 1 or len(columns[0]) > MAX_LAYERS:
                raise ValueError
            return checked(list(zip(*columns)), str(v.get("model")))
        return uniform(float(v["vp"]), float(v["vs"]))
    except (KeyError, TypeError, ValueError):
        raise FcnnError("the table's metadata records malformed velocities") from None


def first_arrivals(model, phase, r, z=None):
    """First-arrival times of ``phase`` ("P" or "S") from sources at depth ``z`` (km, None: at
    the surface) to surface receivers at horizontal distance ``r`` (km), arrays of one shape.
    Returns (t, ∂t/∂r, ∂t/∂z)."""
    v = model.velocities(phase)
    r = np.asarray(r, dtype=np.float64)
    if model.uniform:  # straight rays: the lecture's tables, r / v exactly at the surface
        if z is None:
            return r / v[0], np.full_like(r, 1 / v[0]), np.zeros_like(r)
        z = np.broadcast_to(z, r.shape)
        d = np.sqrt(r * r + z * z)
        safe = np.maximum(d, MIN_DISTANCE)
        return d / v[0], r / (v[0] * safe), z / (v[0] * safe)
    z = np.zeros_like(r) if z is None else np.broadcast_to(np.asarray(z, np.float64), r.shape)
    t, dr, dz = _direct(model.top, v, r, z)
    for j in range(1, len(v)):
        if v[j] > v[:j].max():
            head, dr_head, dz_head = _head_wave(model.top, v, j, r, z)
            first = head < t
            t, dr, dz = (np.where(first, a, b) for a, b in
                         ((head, t), (dr_head, dr), (dz_head, dz)))
    return t, dr, dz


def _layer_of(top, z):
    """Index of the layer holding depth ``z`` (a source on an interface is in the lower)."""
    return np.searchsorted(np.asarray(top), z, side="right") - 1


def _crossed(top, z, bottom):
    """Thickness (…, layers) of each layer between depths ``z`` and ``bottom`` (≥ z)."""
    top = np.asarray(top, dtype=np.float64)
    below = np.append(top[1:], np.inf)
    return np.clip(np.minimum(bottom[..., None], below) - np.maximum(z[..., None], top), 0, None)


def _direct(top, v, r, z):
    """The direct ray's (t, ∂t/∂r, ∂t/∂z): up from depth z to the surface.

    Solved for q = tan of the ray's angle in the fastest layer it crosses, where X(q) =
    Σ hᵢ aᵢ q / √(1 + bᵢq²), aᵢ = vᵢ / v_max, bᵢ = 1 − aᵢ², has no cancellation however
    flat the ray and is increasing and concave: Newton's method from X's lower bound q = r /
    Σ hᵢaᵢ climbs to the root without overshooting it.
    """
    h = _crossed(top, np.zeros_like(z), z)  # (…, layers)
    crossed = h > 0
    flat = ~crossed.any(axis=-1)  # a source at the surface: a ray along it, p = 1 / v
    fastest = np.where(crossed, v, 0.0).max(axis=-1, keepdims=True)
    fastest[flat] = 1.0
    a = v / fastest
    b = 1 - a * a
    weight = h * a
    q = r / np.where(flat, 1.0, weight.sum(axis=-1))
    for _ in range(MAX_STEPS):
        root = np.where(crossed, np.sqrt(np.abs(1 + b * q[..., None] ** 2)), 1.0)
        miss = np.where(flat, 0.0, r - (weight * q[..., None] / root).sum(axis=-1))
        # Only rays not yet there move: each ray's steps, and so its time to the last bit, do
        # not depend on the others solved with it (a table is the same whatever its chunks).
        going = np.abs(miss) > TOLERANCE
        if not going.any():
            break
        q = q + np.where(going, miss, 0.0) / np.where(flat, 1.0, (weight / root ** 3).sum(-1))
    source_v = v[_layer_of(top, z)]
    fastest = fastest[..., 0]
    secant = np.sqrt(1 + q * q)
    p = np.where(flat, 1 / source_v, q / (fastest * secant))
    eta = np.sqrt(np.clip(1 + b * q[..., None] ** 2, 0, None)) / (v * secant[..., None])
    t = p * r + (h * eta).sum(axis=-1)
    return t, p, np.sqrt(np.clip(1 / source_v ** 2 - p * p, 0, None))


def _head_wave(top, v, j, r, z):
    """The head wave along the top of layer ``j`` (t, ∂t/∂r, ∂t/∂z); infinite where it does
    not exist: a source at or below that top, or a receiver within the critical distance."""
    depth = np.full_like(z, top[j])
    p = 1 / v[j]
    above = v[:j]  # the layers the ray crosses, down from the source and up to the receiver
    h = (_crossed(top, np.zeros_like(z), depth) + _crossed(top, np.minimum(z, depth), depth))
    h = h[..., :j]
    eta = np.sqrt(1 / above ** 2 - p * p)
    reach = (h * p * above / np.sqrt(1 - (p * above) ** 2)).sum(axis=-1)
    t = np.where((z < depth) & (r >= reach), r * p + (h * eta).sum(axis=-1), np.inf)
    return t, np.full_like(t, p), -eta[np.minimum(_layer_of(top, z), j - 1)]
