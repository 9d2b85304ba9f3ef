"""The tables of the tabular benchmark (bench/tabular.py), one registry entry each, and the one
fixed split every method of the benchmark shares.

Three kinds: fcnn's two simulators at several sizes and two noise levels; scikit-learn's bundled
real tables (read from the package, no download); and physics tables simulated here with a
structure known exactly (a two-class Gaussian mixture whose Bayes optimum is computed, the
invariant mass of two four-vectors, a calorimeter's energy sum with noise). Each is made from a
fixed random seed, so the table, and with it the split, is the same in every run.
"""

import dataclasses
import functools

import numpy as np
import pandas as pd

from fcnn_cli.data import simulate
from fcnn_cli.engine.prepare import split_indices

# The shares of the fixed split: validation (the early stopping of every method that takes it)
# and test (the figures). The rest trains.
VAL_FRAC, TEST_FRAC = 0.15, 0.25
SPLIT_SEED = 0  # the split's; the methods' seeds vary, the split never does
# Galaxies of 16 × 16 pixels (256 columns), not fcnn's default 32 × 32 (1 024): the trees and
# RealMLP on 20 000 rows of 1 024 columns would take most of the benchmark's time.
GALAXY_SIZE = 16
# The noisy level of each simulator: timing errors of 50 ms (about 0.3 km at the crust's P
# velocity), and pixel noise five times the default 0.02.
QUAKE_NOISE, GALAXY_NOISE = 0.05, 0.1


@dataclasses.dataclass(frozen=True)
class Split:
    """A table split once for all methods: features and labels of train, val and test.

    ``y_*`` are class indices 0 … classes - 1 (classification) or rows × labels in the labels'
    own units (regression); ``x_*`` float32 rows × features, unscaled."""

    name: str
    kind: str  # "classify" or "regress"
    features: list
    targets: list
    frames: dict  # "train", "val", "test": the rows of the table, as fcnn reads them
    x: dict  # the same names: float32 feature matrices
    y: dict  # the same names: labels

    @property
    def classes(self):
        return int(self.y["train"].max()) + 1 if self.kind == "classify" else 0


@dataclasses.dataclass(frozen=True)
class Source:
    """One table of the registry: ``make()`` returns (frame, targets, kind); ``optimum`` what
    no method can beat, where it is known (a function of the test split's frame)."""

    make: object
    note: str
    optimum: object = None


def split(name, source):
    """The fixed split of ``source`` (stratified by class for classification)."""
    frame, targets, kind = source.make()
    strata = frame[targets[0]].to_numpy() if kind == "classify" else None
    rows = split_indices(len(frame), VAL_FRAC, TEST_FRAC, SPLIT_SEED, strata)
    features = [c for c in frame.columns if c not in targets]
    frames = {part: frame.iloc[r].reset_index(drop=True)
              for part, r in zip(("train", "val", "test"), rows)}
    x = {part: f[features].to_numpy(np.float32) for part, f in frames.items()}
    if kind == "classify":
        y = {part: f[targets[0]].to_numpy(np.int64) for part, f in frames.items()}
    else:
        y = {part: f[targets].to_numpy(np.float64) for part, f in frames.items()}
    return Split(name, kind, features, list(targets), frames, x, y)


# ---- fcnn's simulators ----

def _quakes(n, noise):
    table = simulate.earthquakes(n=n, seed=0, noise=noise)
    return table.frame, list(table.targets), "regress"


def _galaxies(n, noise):
    table = simulate.galaxies(n=n, seed=0, size=GALAXY_SIZE, noise=noise)
    frame = table.frame.copy()
    frame["rotation"] = (frame["rotation"] == "right").astype(np.int64)  # left 0, right 1
    return frame, ["rotation"], "classify"


def _simulated():
    entries = {}
    for n, size in ((1000, "1k"), (5000, "5k"), (20_000, "20k")):
        for noisy in (False, True):
            tail = "-noisy" if noisy else ""
            entries[f"quakes-{size}{tail}"] = Source(
                functools.partial(_quakes, n, QUAKE_NOISE if noisy else 0.0),
                f"epicentre x, y (km) from 8 arrival times, {n} events"
                + (f", {QUAKE_NOISE * 1000:.0f} ms timing noise" if noisy else ""))
            entries[f"galaxies-{size}{tail}"] = Source(
                functools.partial(_galaxies, n, GALAXY_NOISE if noisy else 0.02),
                f"spiral rotation from {GALAXY_SIZE}×{GALAXY_SIZE} pixels, {n} images, "
                f"pixel noise {GALAXY_NOISE if noisy else 0.02}")
    return entries


# ---- scikit-learn's bundled real tables ----

def _sklearn(loader, kind):
    from sklearn import datasets

    data = getattr(datasets, loader)()
    frame = pd.DataFrame(data.data, columns=[f"f{i:02d}" for i in range(data.data.shape[1])])
    frame["label"] = data.target if kind == "regress" else data.target.astype(np.int64)
    return frame, ["label"], kind


REAL = {
    "breast-cancer": Source(functools.partial(_sklearn, "load_breast_cancer", "classify"),
                            "malignant or benign from 30 cell measurements, 569 rows"),
    "wine": Source(functools.partial(_sklearn, "load_wine", "classify"),
                   "3 cultivars from 13 chemical measurements, 178 rows"),
    "digits": Source(functools.partial(_sklearn, "load_digits", "classify"),
                     "10 handwritten digits from 8×8 pixels, 1 797 rows"),
    "diabetes": Source(functools.partial(_sklearn, "load_diabetes", "regress"),
                       "disease progression after a year from 10 measurements, 442 rows"),
}


# ---- physics of known structure ----

# Each class a mixture of two Gaussians with diagonal covariance in MIXTURE_DIMS dimensions:
# (weight, mean, standard deviation) per component. The classes overlap, so the optimum is
# well below 100 %.
MIXTURE_DIMS = 8
MIXTURE = {
    0: ((0.5, -0.6, 1.0), (0.5, 0.8, 0.7)),
    1: ((0.6, 0.0, 1.3), (0.4, -0.9, 0.5)),
}
MIXTURE_ROWS = 5000


def _mixture_mean(component, dims):
    # A mean that differs between features, so that every feature carries some of the
    # information and no one carries it all.
    return component[1] * np.cos(np.arange(dims))


def mixture_log_density(x, label):
    """log p(x | class ``label``) of the simulated mixture: the Bayes optimum's input."""
    logs = []
    for component in MIXTURE[label]:
        weight, _, sigma = component
        z = (x - _mixture_mean(component, x.shape[1])) / sigma
        logs.append(np.log(weight) - 0.5 * (z ** 2).sum(1)
                    - x.shape[1] * np.log(sigma * np.sqrt(2 * np.pi)))
    return np.logaddexp(*logs)


def _mixture():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, MIXTURE_ROWS)
    x = np.empty((MIXTURE_ROWS, MIXTURE_DIMS))
    for label, components in MIXTURE.items():
        rows = np.flatnonzero(labels == label)
        which = rng.random(len(rows)) < components[0][0]
        for part, component in ((which, components[0]), (~which, components[1])):
            mean = _mixture_mean(component, MIXTURE_DIMS)
            x[rows[part]] = mean + component[2] * rng.standard_normal((part.sum(), MIXTURE_DIMS))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(MIXTURE_DIMS)])
    frame["label"] = labels
    return frame, ["label"], "classify"


def _mixture_optimum(test):
    """The Bayes classifier's scores (equal priors): the log-likelihood ratio of class 1."""
    x = test[[f"x{i}" for i in range(MIXTURE_DIMS)]].to_numpy(np.float64)
    ratio = mixture_log_density(x, 1) - mixture_log_density(x, 0)
    p1 = 1.0 / (1.0 + np.exp(-ratio))
    return np.stack([1 - p1, p1], 1)


def _isotropic(rng, n):
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _boost(energy, momentum, beta):
    """Four-vectors (``energy``, ``momentum``) boosted by velocity ``beta`` (n × 3)."""
    speed = np.linalg.norm(beta, axis=1, keepdims=True)
    unit = beta / np.maximum(speed, 1e-12)
    gamma = 1.0 / np.sqrt(1.0 - speed ** 2)
    along = (momentum * unit).sum(1, keepdims=True)
    boosted_energy = gamma[:, 0] * (energy + speed[:, 0] * along[:, 0])
    boosted = momentum + ((gamma - 1) * along + gamma * speed * energy[:, None]) * unit
    return boosted_energy, boosted


def _mass(n=5000):
    """A parent of mass 20–200 GeV and momentum up to 200 GeV decays isotropically to two
    massless daughters; the features are their four-vectors (E, px, py, pz in GeV), the label
    the invariant mass, an exact function of the features."""
    rng = np.random.default_rng(0)
    mass = rng.uniform(20.0, 200.0, n)
    momentum = rng.uniform(0.0, 200.0, n)[:, None] * _isotropic(rng, n)
    beta = momentum / np.sqrt((momentum ** 2).sum(1) + mass ** 2)[:, None]
    direction = _isotropic(rng, n)
    columns = {}
    for k, sign in ((1, 1.0), (2, -1.0)):
        energy, p = _boost(mass / 2, sign * (mass / 2)[:, None] * direction, beta)
        columns.update({f"E{k}": energy, f"px{k}": p[:, 0], f"py{k}": p[:, 1],
                        f"pz{k}": p[:, 2]})
    frame = pd.DataFrame(columns)
    frame["mass"] = mass
    return frame, ["mass"], "regress"


# A sampling calorimeter of CALO_LAYERS layers: a shower's energy shares follow a longitudinal
# profile that starts at a random depth; each layer sees its share times its own sampling
# fraction, with the sampling fluctuation (CALO_STOCHASTIC · √E) and electronic noise
# (CALO_NOISE GeV) on top. The label is the particle's energy.
CALO_LAYERS = 12
CALO_FRACTIONS = np.linspace(0.8, 1.2, CALO_LAYERS)  # each layer's sampling fraction
CALO_STOCHASTIC, CALO_NOISE = 0.1, 0.3


def _calorimeter(n=5000):
    rng = np.random.default_rng(0)
    energy = rng.uniform(1.0, 100.0, n)
    start = rng.uniform(0.0, 3.0, n)[:, None]
    depth = np.arange(CALO_LAYERS)[None, :] + 0.5 - start
    # A gamma-like profile t^a e^(-t/b) that reaches deeper for more energy, as showers do.
    shape = 2.0 + 0.5 * np.log(energy)[:, None]
    profile = np.where(depth > 0, np.maximum(depth, 1e-9) ** shape * np.exp(-depth / 1.2), 0.0)
    shares = profile / profile.sum(1, keepdims=True)
    deposit = energy[:, None] * shares
    seen = deposit * CALO_FRACTIONS + CALO_STOCHASTIC * np.sqrt(deposit) * \
        rng.standard_normal(deposit.shape) + CALO_NOISE * rng.standard_normal(deposit.shape)
    frame = pd.DataFrame(seen, columns=[f"layer{k:02d}" for k in range(CALO_LAYERS)])
    frame["energy"] = energy
    return frame, ["energy"], "regress"


PHYSICS = {
    "mixture": Source(_mixture, f"two classes, each a mixture of two Gaussians in "
                      f"{MIXTURE_DIMS} dimensions, {MIXTURE_ROWS} rows; optimum: the Bayes "
                      "classifier", _mixture_optimum),
    "mass": Source(_mass, "invariant mass (GeV) from two four-vectors, 5 000 decays"),
    "calorimeter": Source(_calorimeter, f"energy (GeV) from {CALO_LAYERS} calorimeter layers "
                          "with sampling fluctuations and noise, 5 000 showers"),
}

SIMULATED = _simulated()
TABLES = {**SIMULATED, **REAL, **PHYSICS}
# The summary's families of tables, each also judged on its own.
FAMILIES = {"simulators": tuple(SIMULATED), "real tables": tuple(REAL),
            "physics tables": tuple(PHYSICS)}
# A run without --tables: the simulators at 1 000 rows only, so that five seeds of every method
# fit in 20 minutes on 2 cores (docs/speed.md reckons the times); --tables names the larger.
DEFAULT = tuple(name for name in TABLES if name in REAL or name in PHYSICS or "-1k" in name)
# The --quick subset: small tables of each kind, a few seconds a method each.
QUICK = ("quakes-1k", "galaxies-1k", "breast-cancer", "wine", "mixture")
