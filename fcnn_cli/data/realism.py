"""What makes a simulated earthquake table realistic beyond its Earth model: hypocentres at
depth, an unknown origin time, missing picks; their draws and what the table records of them.

Each kind of draw has a random stream of its own (a child of the seed), read from the row a
chunk starts at, so that a table is the same whatever its chunks, and the lecture's tables,
which draw none of them, keep their rows.
"""

import math
from dataclasses import dataclass

import numpy as np

from fcnn_cli.core.errors import FcnnError

DEPTH_STREAM, ORIGIN_STREAM, MISSING_STREAM = 1, 2, 3
# Origin times are uniform over this many seconds: far more than any travel time in the region,
# so that an arrival time alone says nothing of the distance.
ORIGIN_SPAN = 60.0


@dataclass(frozen=True)
class Shape:
    depth: tuple | None  # (min, max) km, or None: epicentres at the surface
    origin_unknown: bool
    missing: float  # fraction of picks left out

    @property
    def realistic(self):
        return bool(self.depth or self.origin_unknown or self.missing)


def check(depth, missing):
    if depth is not None:
        low, high = depth
        if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high <= 1000):
            raise FcnnError(f"depth must be MIN,MAX km with 0 <= MIN <= MAX <= 1000, not "
                            f"{low},{high}", ("depth",))
    if not (math.isfinite(missing) and 0 <= missing < 1):
        raise FcnnError(f"missing must be a fraction in [0, 1), not {missing}", ("missing",))


def metadata(shape, sigma):
    """The table's record of how its picks were made (``picks``), which a locator reads for
    its weights and unknowns, and ``aside``: columns that are neither label nor feature
    unless named (the origin time, which a network must not be given by default)."""
    meta = {"picks": {"noise_p": sigma[0], "noise_s": sigma[1], "missing": shape.missing,
                      "origin_time": "unknown" if shape.origin_unknown else "zero",
                      "depth": list(shape.depth) if shape.depth else None}}
    if shape.origin_unknown:
        meta["aside"] = ["t0"]
    return meta


class Draws:
    """The realistic draws of rows ``start`` … of a table of ``seed`` with ``k`` stations."""

    def __init__(self, seed, shape, k):
        self.seed, self.shape, self.k = seed, shape, k

    def _stream(self, which, skip):
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(which,)))
        rng.bit_generator.advance(skip)  # a uniform number takes one draw
        return rng

    def depths(self, start, m):
        if not self.shape.depth:
            return None
        return self._stream(DEPTH_STREAM, start).uniform(*self.shape.depth, size=m)

    def origins(self, start, m):
        if not self.shape.origin_unknown:
            return None
        return self._stream(ORIGIN_STREAM, start).uniform(0.0, ORIGIN_SPAN, size=m)

    def without_missing(self, start, tp, ts):
        """``tp``, ``ts`` with picks set to NaN: half the fraction asked for as stations out
        for an event (both its picks gone), the rest as single picks not seen, so that a
        fraction ``missing`` of all picks is gone."""
        f = self.shape.missing
        if not f:
            return tp, ts
        m, k = tp.shape
        u = self._stream(MISSING_STREAM, 3 * k * start).random((m, 3 * k))
        outage = u[:, :k] < f / 2
        single = (f / 2) / (1 - f / 2)  # 1 - (1 - f/2)(1 - single) = f
        tp = np.where(outage | (u[:, k:2 * k] < single), np.nan, tp)
        ts = np.where(outage | (u[:, 2 * k:] < single), np.nan, ts)
        return tp, ts
