"""The significance scan of a score whose weights are expected yields: at each cut on the score
(a row passes when its score is ≥ the cut) the signal S and background B that pass, S/√B and
the Asimov significance

    Z_A = √(2 ((S + B) ln(1 + S/B) − S)),

the median significance of discovery of a counting experiment with known B (Cowan, Cranmer,
Gross and Vitells, 2011); and the cut that maximises each. Cuts where B ≤ 0 (no background
passes, or negative weights outweigh it) have neither figure: they are skipped and counted.
Where S ≤ 0, Z_A is 0 (no excess to discover)."""

import numpy as np

# The scan a report keeps for a plot: at most this many cuts, spread evenly over the cuts
# that count; the best cuts are found among all of them.
SCAN_POINTS = 200


def scan(curve, min_background=0.0, points=SCAN_POINTS):
    """The scan of a :class:`~fcnn_cli.network.roc.Curve` as a plain dict: ``best`` (for
    ``s_over_sqrt_b`` and ``z_asimov`` each the cut, S, B, both figures and the signal and
    background rows that pass there, None where no cut counts); ``skipped_cuts``, how many
    cuts had B ≤ ``min_background`` (and a ``note`` saying so where any did); ``cuts``, how
    many counted; ``scan``, lists ``cut``, ``signal``, ``background``, ``s_over_sqrt_b`` and
    ``z_asimov`` at up to ``points`` cuts."""
    cut = curve.cut[1:]  # the first, +inf, passes nothing
    s, b = curve.signal.passed[1:], curve.background.passed[1:]
    counts = b > min_background
    cut, s, b = cut[counts], s[counts], b[counts]
    # The rows behind S and B: a best cut on a few background rows is a fluctuation.
    rows = curve.signal.rows[1:][counts], curve.background.rows[1:][counts]
    ratio, z = s / np.sqrt(b), asimov(s, b)
    out = {"best": {name: _best(figure, cut, s, b, ratio, z, rows)
                    for name, figure in (("s_over_sqrt_b", ratio), ("z_asimov", z))},
           "cuts": int(counts.sum()), "skipped_cuts": int((~counts).sum())}
    skipped = out["skipped_cuts"]
    if skipped:
        cuts = "1 cut with a background" if skipped == 1 else f"{skipped} cuts with a background"
        out["note"] = (f"{cuts} of {min_background:g} or less "
                       f"{'is' if skipped == 1 else 'are'} left out of the scan")
    kept = _spread(len(cut), points, [np.argmax(ratio), np.argmax(z)] if len(cut) else [])
    out["scan"] = {name: values[kept].tolist() for name, values in (
        ("cut", cut), ("signal", s), ("background", b), ("s_over_sqrt_b", ratio),
        ("z_asimov", z))}
    return out


def asimov(s, b):
    """Z_A of signal ``s`` over background ``b`` > 0, elementwise; 0 where s ≤ 0. log1p keeps
    the small-S/B end exact, where Z_A → S/√B."""
    s, b = np.asarray(s, np.float64), np.asarray(b, np.float64)
    excess = np.maximum(s, 0.0)
    inner = (excess + b) * np.log1p(excess / b) - excess
    return np.sqrt(2 * np.maximum(inner, 0.0))


def _best(figure, cut, s, b, ratio, z, rows):
    if not len(figure):
        return None
    i = int(np.argmax(figure))
    return {"cut": float(cut[i]), "signal": float(s[i]), "background": float(b[i]),
            "s_over_sqrt_b": float(ratio[i]), "z_asimov": float(z[i]),
            "signal_rows": int(rows[0][i]), "background_rows": int(rows[1][i])}


def _spread(n, points, keep):
    """Up to ``points`` indices of n, evenly spread, with those of ``keep``, in order."""
    chosen = np.unique(np.linspace(0, n - 1, min(n, points)).round().astype(np.int64))
    return np.union1d(chosen, np.asarray(keep, np.int64))
