"""Scores of a binary classifier, as the figures-of-merit tests take them."""

import numpy as np


def table(n=3000, seed=0, weighted=False, ties=False):
    """Scores of two overlapping classes, float32; with ``ties`` rounded so that many rows
    share a score; with ``weighted`` positive weights."""
    rng = np.random.default_rng(seed)
    signal = rng.random(n) < 0.4
    score = np.where(signal, rng.normal(1.2, 1.0, n), rng.normal(0.0, 1.0, n))
    score = (score.round(1) if ties else score).astype(np.float32)
    weight = rng.uniform(0.2, 3.0, n) if weighted else None
    return score, signal, weight
