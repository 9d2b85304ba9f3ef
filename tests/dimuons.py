"""Dimuon events as a CMS analysis meets them, written as ROOT files with uproot: a signal of
muon pairs from the decay of a resonance (a mass near 91), and a background of pairs mixed
between events (the same muons, no resonance). Each event has a jagged Muon collection
(Muon_Px, Muon_Py, Muon_Pz, Muon_E), its count nMuon, and a generator weight genWeight of which
some are negative; a few events hold one muon only, which a selection nMuon >= 2 removes."""

import numpy as np

MASS, WIDTH = 91.0, 2.5


def _decays(rng, n):
    """(muon 1, muon 2) four-momenta (px, py, pz, E) of n resonance decays, boosted."""
    mass = rng.normal(MASS, WIDTH, n)
    cos, phi = rng.uniform(-1, 1, n), rng.uniform(0, 2 * np.pi, n)
    sin = np.sqrt(1 - cos ** 2)
    p = mass / 2
    rest = np.stack([p * sin * np.cos(phi), p * sin * np.sin(phi), p * cos, p], axis=1)
    beta = rng.uniform(0, 0.6, n)[:, None] * _unit(rng, n)  # a boost of the resonance
    return _boost(rest, beta), _boost(rest * [-1, -1, -1, 1], beta)


def _unit(rng, n):
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _boost(p, beta):
    b2 = (beta ** 2).sum(axis=1)
    gamma = 1 / np.sqrt(1 - b2)
    bp = (beta * p[:, :3]).sum(axis=1)
    factor = np.where(b2 > 0, (gamma - 1) * bp / np.where(b2 > 0, b2, 1), 0)
    space = p[:, :3] + (factor + gamma * p[:, 3])[:, None] * beta
    return np.concatenate([space, (gamma * (p[:, 3] + bp))[:, None]], axis=1)


def events(rng, n, mixed):
    """The columns of n events: resonance pairs, or (``mixed``) pairs whose second muon is
    another event's; 5 % hold their first muon only."""
    first, second = _decays(rng, n)
    if mixed:
        second = second[rng.permutation(n)]
    count = np.where(rng.random(n) < 0.05, 1, 2)
    muons = [np.stack([first[i], second[i]])[:count[i]] for i in range(n)]
    weight = np.where(rng.random(n) < 0.15, -1.0, 1.0) * rng.uniform(0.5, 1.5, n)
    return count, muons, weight


def write(path, count, muons, weight, first_event=0):
    import awkward as ak
    import uproot

    muon = ak.zip({name: ak.Array([m[:, k] for m in muons])
                   for k, name in enumerate(("Px", "Py", "Pz", "E"))})
    columns = {"event": np.arange(first_event, first_event + len(count)),
               "genWeight": weight, "Muon": muon}
    with uproot.recreate(path) as file:  # branches nMuon, Muon_Px, … as NanoAOD names them
        file.mktree("Events", {k: v.type if k == "Muon" else v.dtype for k, v in columns.items()},
                    counter_name=lambda counted: "n" + counted,
                    field_name=lambda outer, inner: f"{outer}_{inner}")
        file["Events"].extend(columns)
    return path


def write_dimuons(directory, n=600, seed=0):
    """sig.root, and the background in two files bkg_1.root and bkg_2.root, in ``directory``."""
    rng = np.random.default_rng(seed)
    write(directory / "sig.root", *events(rng, n, mixed=False))
    half = n // 2
    count, muons, weight = events(rng, 2 * half, mixed=True)
    write(directory / "bkg_1.root", count[:half], muons[:half], weight[:half])
    write(directory / "bkg_2.root", count[half:], muons[half:], weight[half:], half)
    return directory


def mass(px, py, pz, e):
    """The invariant mass of muon pairs, as numpy computes it."""
    return np.sqrt((e[:, 0] + e[:, 1]) ** 2 - (px[:, 0] + px[:, 1]) ** 2
                   - (py[:, 0] + py[:, 1]) ** 2 - (pz[:, 0] + pz[:, 1]) ** 2)
