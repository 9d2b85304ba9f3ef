"""Seismic networks: a seeded irregular one, or one read from a file of stations."""

import csv
import math
from dataclasses import dataclass

import numpy as np

from fcnn_cli.core.errors import FcnnError

# The seed of irregular networks: one of its own, not the table's, so that the tables of one
# network drawn with different seeds (for training, for testing) share its stations.
NETWORK_SEED = 20_260_101


@dataclass(frozen=True)
class Network:
    """Station names, positions (k, 2) and elevations (k,) in km, above the model's surface."""

    names: tuple
    positions: np.ndarray
    elevations: np.ndarray

    def metadata(self):
        """What a table records of its stations, for maps and the locator; elevations only
        where some station has one, so that the lecture's tables keep their metadata."""
        meta = {"columns": ["x", "y"], "unit": "km", "names": list(self.names),
                "positions": [[float(x), float(y)] for x, y in self.positions]}
        if self.elevations.any():
            meta["elevations"] = [float(e) for e in self.elevations]
        return meta


# Stations a table's metadata may record: a file's metadata is read as untrusted input, and
# the locator's work grows with their number.
MAX_STATIONS = 10_000


def of_positions(positions):
    """Stations numbered 1, 2, … at ``positions`` (X,Y pairs in km), at elevation 0."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 2 or len(positions) < 1:
        raise FcnnError("stations must be given as X,Y pairs in km")
    for x, y in positions:
        if not (math.isfinite(x) and math.isfinite(y)):
            raise FcnnError(f"stations must be X,Y in finite km, not {x},{y}",
                            ("stations",))
    names = tuple(str(k + 1) for k in range(len(positions)))
    return Network(names, positions, np.zeros(len(positions)))


def irregular(count, extent):
    """``count`` stations uniform over the square ±``extent`` km: as irregular as a real
    network, the same for every table of that count and extent."""
    if not 1 <= count <= 10_000:
        raise FcnnError(f"--stations takes 1 to 10000 stations, not {count}", ("network",))
    rng = np.random.default_rng(NETWORK_SEED)
    return of_positions(rng.uniform(-extent, extent, size=(count, 2)))


def read_network(path):
    """A CSV of stations, one a line: ``name,x,y`` or ``name,x,y,elevation`` (km); a first
    line of column names is skipped, as are blank lines."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [(n, row) for n, row in enumerate(csv.reader(f), 1) if any(row)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise FcnnError(f"--stations {path}: cannot read it: {e}", ("network",)) from None
    if rows and not _number(rows[0][1][1:2]):
        rows = rows[1:]  # a header
    names, values = [], []
    for n, row in rows:
        if len(row) not in (3, 4) or not all(_number([v]) for v in row[1:]):
            raise FcnnError(f"--stations {path}, line {n}: expected name,x,y[,elevation] in "
                            f"km, got {','.join(row)!r}", ("network",))
        names.append(row[0].strip())
        values.append([float(v) for v in row[1:]] + [0.0] * (4 - len(row)))
    if not names:
        raise FcnnError(f"--stations {path}: no stations", ("network",))
    if len(set(names)) < len(names):
        raise FcnnError(f"--stations {path}: station names repeat", ("network",))
    values = np.asarray(values)
    network = of_positions(values[:, :2])
    return Network(tuple(names), network.positions, values[:, 2])


def network_for(spec, extent):
    """The network ``--stations`` names: a count, or a file."""
    if spec.isascii() and spec.isdigit():  # "²" is a digit too, and no count
        return irregular(int(spec), extent)
    return read_network(spec)


def from_metadata(meta):
    """The network a table's metadata records (``stations``); None where it records none."""
    s = meta.get("stations")
    if not isinstance(s, dict):
        return None
    try:
        if len(s["positions"]) > MAX_STATIONS:
            raise ValueError
        network = of_positions(s["positions"])
        elevations = np.asarray(s.get("elevations", np.zeros(len(network.names))), np.float64)
        names = s.get("names", list(network.names))
        if (elevations.shape != (len(network.names),) or not np.isfinite(elevations).all()
                or not isinstance(names, list) or len(names) != len(network.names)
                or not all(isinstance(n, str) for n in names)):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise FcnnError("the table's metadata records malformed stations") from None
    return Network(tuple(names), network.positions, elevations)


def _number(fields):
    try:
        return bool(fields) and math.isfinite(float(fields[0]))
    except ValueError:
        return False
