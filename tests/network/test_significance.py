import math

import numpy as np
import pytest

from fcnn_cli.network import merit
from fcnn_cli.network.significance import asimov
from scores import table


def brute_force_scan(score, signal, w):
    """The best cut of S/√B and of Z_A by a loop over the distinct scores (with the rows that
    pass it), and the cuts with B ≤ 0."""
    best, skipped = {}, 0
    for cut in np.unique(score):
        s, b = w[signal & (score >= cut)].sum(), w[~signal & (score >= cut)].sum()
        if b <= 0:
            skipped += 1
            continue
        z = math.sqrt(2 * ((s + b) * math.log(1 + s / b) - s)) if s > 0 else 0.0
        for name, value in (("s_over_sqrt_b", s / math.sqrt(b)), ("z_asimov", z)):
            if name not in best or value > best[name]["value"]:
                best[name] = {"cut": float(cut), "signal": s, "background": b, "value": value,
                              "signal_rows": int((signal & (score >= cut)).sum()),
                              "background_rows": int((~signal & (score >= cut)).sum())}
    return best, skipped


def test_significance_scan_by_a_loop_over_cuts():
    rng = np.random.default_rng(5)
    signal = rng.random(80) < 0.3
    score = np.where(signal, rng.normal(1.5, 1, 80), rng.normal(0, 1, 80)).astype(np.float32)
    yields = np.where(signal, 0.05, 2.0) * rng.uniform(0.5, 1.5, 80)
    yields[np.flatnonzero(~signal)[:3]] *= -0.2  # a few negative weights
    scan = merit.report(score, signal, yields, yields=True)["significance"]
    best, skipped = brute_force_scan(score.astype(np.float64), signal, yields)
    assert scan["skipped_cuts"] == skipped > 0 and "left out" in scan["note"]
    assert scan["cuts"] + skipped == len(np.unique(score))
    for name, want in best.items():
        got = scan["best"][name]
        assert got["cut"] == want["cut"]
        assert got["signal"] == pytest.approx(want["signal"], rel=1e-12)
        assert got["background"] == pytest.approx(want["background"], rel=1e-12)
        assert got[name] == pytest.approx(want["value"], rel=1e-12)
        assert (got["signal_rows"], got["background_rows"]) == \
            (want["signal_rows"], want["background_rows"])
    assert len(scan["scan"]["cut"]) == scan["cuts"]  # fewer cuts than the points kept
    assert all(np.diff(scan["scan"]["cut"]) < 0)


def test_the_scan_kept_is_bounded_and_holds_the_best():
    score, signal, weight = table(n=5000, weighted=True)
    scan = merit.report(score, signal, weight, yields=True)["significance"]
    kept = scan["scan"]
    assert len(kept["cut"]) <= 202
    # the highest scores are signal alone: B = 0 there
    assert scan["skipped_cuts"] == 5 and scan["cuts"] == len(np.unique(score)) - 5
    for name in ("s_over_sqrt_b", "z_asimov"):
        assert scan["best"][name]["cut"] in kept["cut"]
        assert max(kept[name]) == scan["best"][name][name]


def test_asimov_significance():
    assert asimov(5.0, 10.0) == pytest.approx(
        math.sqrt(2 * (15 * math.log(1.5) - 5)))
    assert asimov(1e-6, 1e4) == pytest.approx(1e-6 / 100, rel=1e-6)  # → S/√B for S ≪ B
    assert asimov(-1.0, 4.0) == 0


def test_the_classes_the_docstrings_name_are_named_where_they_are_defined():
    import importlib
    import inspect
    import re

    from fcnn_cli.network import significance

    named = re.findall(r":class:`~?([\w.]+)`", inspect.getsource(significance))
    assert named
    for path in named:
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name).__module__ == module, path


def test_the_note_counts_one_cut_in_the_singular():
    # the one signal row tops the scores: its cut alone passes no background
    score = np.array([3.0, 2.0, 1.0, 0.0])
    signal = np.array([True, False, False, False])
    scan = merit.report(score, signal, np.ones(4), yields=True)["significance"]
    assert scan["note"] == "1 cut with a background of 0 or less is left out of the scan"
    score = np.array([3.0, 2.5, 2.0, 1.0])
    signal = np.array([True, True, False, False])
    assert merit.report(score, signal, np.ones(4), yields=True)["significance"]["note"] == \
        "2 cuts with a background of 0 or less are left out of the scan"
