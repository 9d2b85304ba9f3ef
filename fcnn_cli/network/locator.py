"""The classical locator as a baseline (``baseline=locator``): Geiger's least squares
(:mod:`fcnn_cli.network.geiger`) with the stations, velocity model and pick noise that the
table records (``fcnn simulate earthquakes`` writes them), beside the network that learns the
same locations from the same picks.

It knows the Earth model and so needs no training: ``fit`` only reads the region from the
training labels (the bounds of its fallback grid and of the depth). Its inputs are the picks
``tpK``/``tsK`` among the run's features (or ``dtpK``/``dtsK``, after each event's earliest,
where the origin time is unknown), station K being the K-th the table records; a pick
that is NaN, or whose missing-value indicator (``--nan fill``) is set, is left out, and so is
a station whose columns are not features. Its file keeps what it read of the table as JSON,
read back through the same checks as the table's metadata.
"""

import copy
import logging
import re

import numpy as np

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import stations as networks
from fcnn_cli.data import velocity
from fcnn_cli.data.missing import SUFFIX
from fcnn_cli.network import baseline, geiger

log = logging.getLogger(__name__)

NAME = "locator"
# A pick, or the same after the event's earliest (``dtpK``, fcnn's features where the origin
# time is unknown: :mod:`fcnn_cli.data.arrivals`), which the fitted origin time absorbs.
PICK = re.compile(r"(d?)t([ps])([1-9][0-9]*)")
POSITION = ("x", "y", "z")
NEEDS = ("the locator baseline needs the stations and velocities that the table records "
         "(fcnn simulate earthquakes writes them)")


class Locator:
    name = NAME

    def __init__(self):
        self.info, self.labels, self.table, self.inputs, self.bounds = {}, None, None, None, None

    def check(self, task, n_features):
        if task.kind != "regress":
            raise FcnnError("the locator baseline locates earthquakes: its labels are x, y "
                            "and maybe z, not classes", ("baseline",))

    def bind(self, inputs, labels, meta):
        """Read what locating needs from the run's inputs, labels and the table's metadata
        ``meta``; refused in one line where they do not describe picks at stations."""
        if sorted(labels) not in (["x", "y"], ["x", "y", "z"]):
            raise FcnnError(f"the locator baseline's labels are x, y and maybe z, not "
                            f"{', '.join(labels)}", ("baseline",))
        network, model = networks.from_metadata(meta), velocity.from_metadata(meta)
        if network is None or model is None:
            raise FcnnError(NEEDS, ("baseline",))
        picks = meta.get("picks") if isinstance(meta.get("picks"), dict) else {}
        if picks.get("depth") and "z" not in labels:  # it would locate every source at 0 km
            raise FcnnError("the locator baseline: the table's hypocentres have depths; "
                            "train with z among the labels", ("baseline",))
        noise = (picks.get("noise_p", 0.0), picks.get("noise_s", 0.0))
        if not all(isinstance(v, (int, float)) and np.isfinite(v) and v >= 0 for v in noise):
            raise FcnnError("the table's metadata records a malformed pick noise")
        self.columns = _pick_columns(inputs, len(network.names),
                                     picks.get("origin_time") == "unknown")
        self.labels, self.inputs = list(labels), list(inputs)
        self.table = {"stations": network.metadata(), "velocities": model.metadata(),
                      "picks": {"noise_p": float(noise[0]), "noise_s": float(noise[1]),
                                "origin_time": str(picks.get("origin_time", "zero"))}}
        self.network, self.model, self.noise = network, model, noise
        return self

    def with_model(self, model):
        """This locator with another velocity model: a wrong one shows what a seismologist's
        imperfect knowledge of the Earth costs."""
        other = copy.copy(self)
        other.model, other.table = model, {**self.table, "velocities": model.metadata()}
        return other

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val, task):
        """The region of the training labels: no more is learnt."""
        y = np.asarray(y_train, dtype=np.float64)
        low, high = np.nanmin(y, axis=0), np.nanmax(y, axis=0)
        bounds = {c: (float(a), float(b)) for c, a, b in zip(self.labels, low, high)}
        self.bounds = [bounds["x"], bounds["y"], bounds.get("z", (0.0, 0.0))]
        return self

    def problem(self):
        return geiger.Problem(self.network.positions, self.network.elevations, self.model,
                              self.noise, "z" in self.labels,
                              self.table["picks"]["origin_time"] == "unknown",
                              tuple(tuple(b) for b in self.bounds))

    def predict(self, x):
        """Rows × labels: each row's hypocentre, in the labels' order."""
        if self.bounds is None:
            raise FcnnError("the locator baseline is not fitted yet")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.inputs):
            raise FcnnError(f"the locator baseline takes {len(self.inputs)} features, not "
                            f"{x.shape[-1] if x.ndim else 0}")
        picks = np.full((len(x), 2 * len(self.network.names)), np.nan)
        for feature, pick, indicator in self.columns:
            gone = x[:, indicator] > 0.5 if indicator is not None else False
            picks[:, pick] = np.where(gone, np.nan, x[:, feature])
        problem = self.problem()
        _warn_undetermined(picks, problem)
        hypo, _ = geiger.locate(picks, problem)
        return hypo[:, [POSITION.index(c) for c in self.labels]]

    def save(self, path):
        meta = {"labels": self.labels, "inputs": self.inputs, "table": self.table,
                "bounds": self.bounds, "info": self.info}
        baseline.write(path, NAME, meta, {})

    @classmethod
    def load(cls, path):
        return baseline.loaded(path, NAME, cls._of)

    @classmethod
    def _of(cls, meta, state):
        if state:
            raise ValueError(f"tensors {sorted(state)} in a locator")
        labels, inputs = meta["labels"], meta["inputs"]
        if not (isinstance(inputs, list) and all(isinstance(c, str) for c in inputs)
                and isinstance(labels, list) and all(isinstance(c, str) for c in labels)):
            raise ValueError("its inputs and labels are not lists of names")
        model = cls().bind(inputs, labels, meta["table"])
        bounds = [(float(a), float(b)) for a, b in meta["bounds"]]
        if len(bounds) != 3 or not all(np.isfinite(v).all() and v[0] <= v[1] for v in bounds):
            raise ValueError("its region is not three finite ranges")
        model.bounds = bounds
        model.info = meta["info"] if isinstance(meta["info"], dict) else {}
        return model


def _pick_columns(inputs, stations, origin_unknown):
    """(input of the pick, its column in Geiger's picks (P then S), input of its
    missing-value indicator or None) for each pick among the inputs: the absolute ones where
    there are both."""
    where = {name: i for i, name in enumerate(inputs)}
    columns, taken = [], set()
    for i, name in sorted(enumerate(inputs), key=lambda item: item[1].startswith("d")):
        found = PICK.fullmatch(name)
        if found is None or name[1:] in taken:
            continue
        if found[1] and not origin_unknown:
            raise FcnnError(f"the locator baseline: feature {name!r} is a pick after the "
                            "event's earliest, which only a table whose origin time is unknown "
                            "may give it", ("baseline",))
        taken.add(name)
        phase, k = found[2], int(found[3])
        if k > stations:
            raise FcnnError(f"the locator baseline: feature {name!r} is of station {k}, but "
                            f"the table records {stations} stations", ("baseline",))
        columns.append((i, (k - 1) + (stations if phase == "s" else 0),
                        where.get(name + SUFFIX)))
    if not columns:
        raise FcnnError("the locator baseline needs arrival times among the features (tp1, "
                        "ts1, …, or dtp1, dts1, …)", ("baseline",))
    return columns


def _warn_undetermined(picks, problem):
    """Say how many events have fewer picks than the locator has unknowns: their place is where
    the search left them (about the earliest station), not a location, and it counts in the
    locator's figures as any."""
    unknowns = 2 + problem.solve_depth + problem.origin_unknown
    few = int((np.isfinite(picks).sum(axis=1) < unknowns).sum())
    if few:
        log.warning("locator: %d of %d event(s) have fewer picks than its %d unknowns: "
                    "they are not located, only placed, and count in its figures as they are",
                    few, len(picks), unknowns)
