"""Dimuon events as a collider analysis meets them, written as ROOT files with uproot: a signal
sample of Z → μμ decays and a background of the same muons paired across events (the classic
event-mixing estimate of a combinatorial background), each event with a jagged Muon collection
(``nMuon``, ``Muon_Px``, ``Muon_Py``, ``Muon_Pz``, ``Muon_E``) and a generator weight of which a
share is negative, as NLO generators give."""

import numpy as np

Z_MASS, Z_WIDTH, MUON_MASS = 91.19, 2.5, 0.1057


def _decays(rng, n):
    """Two muons a decay of a Z boosted along z and given some transverse momentum: their
    four-momenta (n × 4 each: E, px, py, pz)."""
    mass = Z_MASS + Z_WIDTH / 2 * rng.standard_cauchy(n).clip(-8, 8)
    p = np.sqrt(np.maximum(mass ** 2 / 4 - MUON_MASS ** 2, 0))
    cos, phi = rng.uniform(-1, 1, n), rng.uniform(0, 2 * np.pi, n)
    sin = np.sqrt(1 - cos ** 2)
    one = np.stack([p * sin * np.cos(phi), p * sin * np.sin(phi), p * cos], axis=1)
    energy = np.sqrt(p ** 2 + MUON_MASS ** 2)
    boost = np.stack([rng.normal(0, 15, n), rng.normal(0, 15, n), rng.normal(0, 60, n)], axis=1)
    total = np.sqrt(mass ** 2 + (boost ** 2).sum(axis=1))
    beta = boost / total[:, None]
    return [_boosted(np.column_stack([energy, s * one]), beta) for s in (1, -1)]


def _boosted(p4, beta):
    """Four-momenta (E, p) boosted by velocity ``beta`` (n × 3)."""
    b2 = (beta ** 2).sum(axis=1)
    gamma = 1 / np.sqrt(1 - b2)
    bp = (beta * p4[:, 1:]).sum(axis=1)
    energy = gamma * (p4[:, 0] + bp)
    factor = np.where(b2 > 0, (gamma - 1) * bp / np.where(b2 > 0, b2, 1), 0) + gamma * p4[:, 0]
    return np.column_stack([energy, p4[:, 1:] + factor[:, None] * beta])


def events(n, seed, mixed=False):
    """``n`` events: each the two decay muons (of one event, or with ``mixed`` of two events)
    plus 0–2 soft extra muons, in falling transverse momentum; and a generator weight."""
    rng = np.random.default_rng(seed)
    first, second = _decays(rng, n)
    if mixed:
        second = second[rng.permutation(n)]
    extra = rng.integers(0, 3, n)
    muons = []
    for i in range(n):
        soft = [_soft(rng) for _ in range(extra[i])]
        event = sorted([first[i], second[i], *soft], key=lambda m: -np.hypot(m[1], m[2]))
        muons.append(np.array(event))
    weight = rng.exponential(1.0, n) * np.where(rng.random(n) < 0.1, -1.0, 1.0)
    return muons, weight


def _soft(rng):
    p = rng.normal(0, 3, 3)
    return np.array([np.sqrt((p ** 2).sum() + MUON_MASS ** 2), *p])


def write(path, n, seed, mixed=False):
    """A ROOT file with a tree ``Events`` of ``n`` events (see :func:`events`)."""
    import awkward as ak
    import uproot

    muons, weight = events(n, seed, mixed)
    counts = np.array([len(m) for m in muons])
    flat = np.concatenate(muons)
    columns = {name: ak.unflatten(flat[:, k], counts)
               for k, name in enumerate(("E", "Px", "Py", "Pz"))}
    muon = ak.zip(columns)
    with uproot.recreate(path) as file:  # NanoAOD's naming: nMuon, Muon_Px, …
        file.mktree("Events", {"Muon": muon.type.content, "genWeight": "float64"},
                    counter_name=lambda name: "n" + name,
                    field_name=lambda outer, inner: f"{outer}_{inner}")
        file["Events"].extend({"Muon": muon, "genWeight": weight})
    return path


def pair_mass(muons):
    """The invariant mass of each event's two leading muons (for checks)."""
    p = np.array([m[0] + m[1] for m in muons])
    return np.sqrt(np.maximum(p[:, 0] ** 2 - (p[:, 1:] ** 2).sum(axis=1), 0))
