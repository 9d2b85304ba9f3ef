"""The figures of merit of a binary score, as an analysis quotes them: the signal efficiency ε_S
at fixed background efficiencies ε_B and the background rejection 1/ε_B at fixed ε_S, each with
its error and cut; a working point; the separation ⟨S²⟩; and, for weights that are expected
yields, the significance scan (:mod:`~fcnn_cli.network.significance`). Several classes are one
against the rest: which rows are signal is the caller's choice (``is_signal``).

The figures stand on the ROC curve of :mod:`~fcnn_cli.network.roc` (a row passes a cut when
its score is ≥ the cut; weights taken as they are, negative ones included) and its errors of
efficiencies: the weighted σ_ε = √(Σ_pass w² (1 − ε)² + Σ_fail w² ε²) / |Σw|, the binomial
√(ε(1 − ε)/N) for unit weights. Between two cuts a figure is read on the straight line that
joins their points of the curve (what a random choice between the two cuts would give on
average); a figure the rows cannot resolve is NaN with a ``reason``."""

from dataclasses import dataclass

import numpy as np

from fcnn_cli.network.roc import Curve, as_flags, as_weights, between, crossing
from fcnn_cli.network.significance import scan

BACKGROUND_POINTS = (0.001, 0.01, 0.1, 0.3)
SIGNAL_POINTS = (0.5, 0.7, 0.9)
# TMVA's histograms of a classifier's output have 40 bins; its separation is quoted on them.
SEPARATION_BINS = 40
# The slope of the curve that carries one efficiency's error into the other's is taken as the
# secant over ± this many errors: over ± 1 it rests on a few rows of a steep curve and scatters;
# ± 2 gave errors whose pulls had a spread of 1.0 ± 0.06 at ε_B = 0.01 and 0.001 on 20 000 rows.
SLOPE_WINDOW = 2


@dataclass(frozen=True)
class Figures:
    """What a classification report's figures of merit are asked for: the index of the signal
    class (the others are background; its probability is the score), at most one working point
    (``eff``, ``bkg`` or ``threshold``), and ``yields``: None where the weights are not
    expected yields, else a factor a class (in the classes' order) that makes each row's weight
    its expected yield (the luminosity; or a split's rows scaled up to the whole table's) —
    which adds the significance scan. ``chosen_at``: what a ``threshold`` that is a model's
    working point was chosen at (``{"signal_efficiency": 0.7}``), which the working point
    records as asked, beside its cut."""

    signal: int
    eff: float | None = None
    bkg: float | None = None
    threshold: float | None = None
    yields: tuple | None = None
    chosen_at: dict | None = None

    def report(self, labels, scores, weight, classes):
        """The figures of rows of class indices ``labels``, with the signal's ``scores`` (for
        two classes the second's probability, one a row, else one a class), and weights or
        None: :func:`report` with ``signal_class`` (its name) first."""
        score = scores if scores.ndim == 2 else np.stack([1 - scores, scores], axis=1)
        score = score[:, self.signal]
        is_signal = labels == self.signal
        if self.yields is not None:
            factor = np.asarray(self.yields, np.float64)[labels]
            weight = factor if weight is None else weight * factor
        out = {"signal_class": classes[self.signal],
               **report(score, is_signal, weight, eff=self.eff, bkg=self.bkg,
                        threshold=self.threshold, yields=self.yields is not None)}
        if self.chosen_at and "working_point" in out:
            out["working_point"]["asked"] = dict(self.chosen_at)
        return out


class Scores:
    """A binary score over rows that arrive in chunks (``add``), kept as a float32 score, a
    signal flag and, where given, a float64 weight a row (13 bytes, 5 without weights) — the
    float32 scores that ROC AUC ranks in :mod:`~fcnn_cli.network.metrics`, so that both
    figures see the same ties. ``report`` gives :func:`report` of all of them."""

    def __init__(self):
        self.scores, self.signal, self.weights, self.given = [], [], [], None

    def add(self, score, is_signal, weight=None):
        given = weight is not None
        if self.given is not None and given != self.given:
            raise ValueError("rows with weights and rows without in one report")
        self.given = given
        score = np.asarray(score, np.float32).reshape(-1)
        self.scores.append(score)
        self.signal.append(as_flags(is_signal, len(score)))
        if given:
            self.weights.append(as_weights(weight, len(score)))

    def arrays(self):
        """(scores, signal flags, weights or None), all rows."""
        if not self.scores:
            return np.zeros(0, np.float32), np.zeros(0, bool), None
        weight = np.concatenate(self.weights) if self.given else None
        return np.concatenate(self.scores), np.concatenate(self.signal), weight

    def report(self, **options):
        return report(*self.arrays(), **options)


def signal_at_background(curve, target):
    """ε_S where ε_B = ``target``, on the straight line between the loosest cut whose ε_B is
    ≤ target and the next looser one; ``cut`` is that loosest cut (applied, it keeps
    ε_B ≤ target). ``error`` is ε_S's own (see the module); ``error_with_cut`` adds, in
    quadrature, how much ε_S moves as ε_B moves by its own error (σ_B times the slope
    dε_S/dε_B of the curve, :func:`_shift`): the cut is found on these rows too, and where
    the curve is steep that term is the larger — ``error`` alone then understates the
    scatter of ε_S from sample to sample (by 2.4 times at ε_B = 0.01 on two Gaussian
    classes). NaN with a ``reason`` where the target is below the first step of the
    background (no background row passes the tighter cut: the rows cannot resolve it)."""
    sig, bkg = curve.signal, curve.background
    out = {"background_efficiency": _target(target)}
    keys = ("signal_efficiency", "error", "error_with_cut", "cut")
    if _undefined(curve):
        return {**out, **_missing(*keys), "reason": _undefined(curve)}
    i, frac = crossing(bkg.efficiency, target, strict=True)
    if bkg.rows[i] == 0:
        step = bkg.efficiency[np.flatnonzero(bkg.rows)[0]] if bkg.rows[-1] else np.nan
        return {**out, **_missing(*keys),
                "reason": f"below the first step of the background (ε_B = {step:.3g}, "
                          f"{int(bkg.rows[-1])} background rows)"}
    eff, error = sig.at(i, frac)
    shift = _shift(bkg, sig, target, bkg.at(i, frac)[1], strict=True)
    return {**out, "signal_efficiency": eff, "error": error,
            "error_with_cut": float(np.hypot(error, shift)), "cut": float(curve.cut[i])}


def rejection_at_signal(curve, target):
    """1/ε_B where ε_S = ``target``, ε_B on the straight line between the tightest cut whose
    ε_S is ≥ target and the next tighter one; ``cut`` is that tightest cut (applied, it keeps
    ε_S ≥ target). ``error`` is σ_B/ε_B², ``error_with_cut`` the same with σ_B grown as in
    :func:`signal_at_background`, by how much ε_B moves as ε_S moves by its error. NaN with a
    ``reason`` where no background row passes the tighter cut: 1/ε_B is then beyond what the
    rows resolve."""
    sig, bkg = curve.signal, curve.background
    out = {"signal_efficiency": _target(target)}
    keys = ("background_efficiency", "background_efficiency_error", "rejection", "error",
            "error_with_cut", "cut")
    i, frac = crossing(sig.efficiency, target, strict=False)
    reason = _undefined(curve) or (
        "the signal efficiency never reaches it" if not sig.efficiency[-1] >= target
        else _unresolved(curve) if bkg.rows[i] == 0 else None)
    if reason:
        return {**out, **_missing(*keys), "reason": reason}
    eff, error = bkg.at(i, frac)
    shift = _shift(sig, bkg, target, sig.at(i, frac)[1], strict=False)
    cut = curve.cut[i + 1] if frac > 0 else curve.cut[i]
    return {**out, "background_efficiency": eff, "background_efficiency_error": error,
            "rejection": divide(1, eff), "error": _over_squared(error, eff),
            "error_with_cut": _over_squared(np.hypot(error, shift), eff), "cut": float(cut)}


def _unresolved(curve):
    """Why no background row passes the cut that 1/ε_B at some ε_S needs."""
    if len(curve.cut) == 2:  # +inf and one score: every row passes the only cut
        return "the scores do not separate: every row has the same score, a single cut"
    return ("no background row passes the tighter cut: the rejection is beyond what the "
            f"{int(curve.background.rows[-1])} background rows resolve")


def divide(numerator, denominator):
    """numerator / denominator as a float, ±inf or NaN where the denominator is 0 (as numpy
    divides: a Python float division would raise, and a tiny weighted ε is not 0)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return float(np.float64(numerator) / np.float64(denominator))


def _over_squared(error, eff):
    """error / eff², divided twice: eff² underflows to 0 for an ε as small as 1e-170, which a
    huge weight in the other rows gives, where error / eff / eff is still finite."""
    return divide(divide(error, eff), eff)


def _shift(along, other, target, sigma, strict):
    """How much the other class's ε moves as this one's moves by σ about ``target``: σ times
    the slope of the curve, the secant over ± ``SLOPE_WINDOW`` σ (cut at 0 and 1)."""
    reach = SLOPE_WINDOW * sigma
    low, high = max(target - reach, 0.0), min(target + reach, 1.0)
    if not high > low:
        return 0.0
    ends = [between(other.efficiency, *crossing(along.efficiency, t, strict))
            for t in (high, low)]
    return abs(ends[0] - ends[1]) / (high - low) * sigma


def _target(target):
    if not 0 < target <= 1:
        raise ValueError(f"an efficiency of {target} is not in (0, 1]")
    return target


def _undefined(curve):
    """Why no efficiency is defined on ``curve`` (a class without rows or sum of weights), or
    None."""
    for name, side in (("signal", curve.signal), ("background", curve.background)):
        if not side.rows[-1]:
            return f"no {name} rows"
        if not side.total:
            return f"the {name}'s sum of weights is 0"
    return None


def _missing(*keys):
    return dict.fromkeys(keys, float("nan"))


def working_point(score, is_signal, weight=None, eff=None, bkg=None, threshold=None,
                  curve=None):
    """The cut for one of: signal efficiency ``eff`` (the tightest cut with ε_S ≥ eff),
    background efficiency ``bkg`` (the loosest with ε_B ≤ bkg) or the cut ``threshold``
    itself; and every figure there (:func:`at_cut`). ``curve`` spares building it again."""
    if sum(x is not None for x in (eff, bkg, threshold)) != 1:
        raise ValueError("a working point is one of eff, bkg or threshold")
    curve = curve or Curve(score, is_signal, weight)
    if threshold is not None:
        i = int(np.searchsorted(-curve.cut, -threshold, side="right")) - 1
        return {"asked": {"threshold": threshold}, **at_cut(curve, i), "cut": threshold}
    asked = {"signal_efficiency": _target(eff)} if eff is not None \
        else {"background_efficiency": _target(bkg)}
    reason = _undefined(curve)
    if not reason and eff is not None:
        passed = np.flatnonzero(curve.signal.efficiency >= eff)
        i = int(passed[0]) if len(passed) else 0
    elif not reason:
        over = np.flatnonzero(curve.background.efficiency > bkg)
        i = int(over[0]) - 1 if len(over) else len(curve.cut) - 1
    if reason or i == 0:  # the cut +inf passes nothing: no cut meets the target
        return {"asked": asked, **_missing("cut", *_FIGURES),
                "reason": reason or "no cut meets it"}
    return {"asked": asked, **at_cut(curve, i)}


_FIGURES = ("signal_efficiency", "signal_efficiency_error", "background_efficiency",
            "background_efficiency_error", "rejection", "rejection_error", "purity")


def at_cut(curve, i):
    """The figures at point ``i`` of the curve: ε_S and ε_B with their errors, 1/ε_B (NaN
    where ε_B is 0) with σ_B/ε_B², the rows and sums of weights that pass, and the purity
    S/(S + B) of what passes (of sums of weights where weights are given)."""
    sig, bkg = curve.signal, curve.background
    (eff_s, err_s), (eff_b, err_b) = sig.at(i), bkg.at(i)
    s, b = sig.passed[i], bkg.passed[i]
    zero = not eff_b  # 1/ε_B is NaN, not inf, where no background passes
    return {"cut": float(curve.cut[i]), "signal_efficiency": eff_s,
            "signal_efficiency_error": err_s, "background_efficiency": eff_b,
            "background_efficiency_error": err_b,
            "rejection": float("nan") if zero else divide(1, eff_b),
            "rejection_error": float("nan") if zero else _over_squared(err_b, eff_b),
            "purity": divide(s, s + b) if s + b else float("nan"),
            "signal_rows": int(sig.rows[i]), "background_rows": int(bkg.rows[i]),
            "signal_passed": float(s), "background_passed": float(b)}


def separation(score, is_signal, weight=None, bins=SEPARATION_BINS):
    """TMVA's separation ⟨S²⟩ = ½ Σ_bins (ŝ − b̂)² / (ŝ + b̂), ŝ and b̂ each class's share
    of its sum of weights in each of ``bins`` equal bins between the lowest and the highest
    score (bins where ŝ + b̂ ≤ 0 left out, as TMVA does): 0 for identical distributions, 1
    for disjoint ones. Binned, it grows with the bins on few rows. NaN where a class's sum
    of weights is not positive."""
    score = np.asarray(score, np.float32).astype(np.float64).reshape(-1)
    signal = as_flags(is_signal, len(score))
    weight = np.ones(len(score)) if weight is None else as_weights(weight, len(score))
    masks = (signal, ~signal)
    totals = [weight[mask].sum() for mask in masks]
    finite = score[np.isfinite(score)]
    if not (min(totals) > 0 and len(finite)):
        return float("nan")
    if finite.min() == finite.max():
        return 0.0  # one bin, which holds all of each class
    edges = np.linspace(finite.min(), finite.max(), bins + 1)
    shares = [np.histogram(np.clip(score[mask], edges[0], edges[-1]), edges,
                           weights=weight[mask])[0] / total
              for mask, total in zip(masks, totals)]
    s, b = shares
    keep = s + b > 0
    return float(0.5 * ((s[keep] - b[keep]) ** 2 / (s[keep] + b[keep])).sum())


def report(score, is_signal, weight=None, background_points=BACKGROUND_POINTS,
           signal_points=SIGNAL_POINTS, eff=None, bkg=None, threshold=None, yields=False,
           bins=SEPARATION_BINS):
    """All the figures as a plain dict: ``rows``; ``signal`` and ``background`` (``rows``, and
    with weights ``sum_of_weights`` and ``effective_rows``); ``signal_efficiency_at`` (a
    :func:`signal_at_background` a point of ``background_points``); ``rejection_at`` (a
    :func:`rejection_at_signal` a point of ``signal_points``); ``separation`` and
    ``separation_bins``; with one of ``eff``, ``bkg``, ``threshold`` the ``working_point``;
    with ``yields`` (the weights are expected yields) the ``significance`` scan."""
    weighted = weight is not None
    if yields and not weighted:
        raise ValueError("a significance scan needs weights that are expected yields")
    curve = Curve(score, is_signal, weight)
    out = {"rows": int(curve.signal.rows[-1] + curve.background.rows[-1]),
           "signal": curve.signal.summary(weighted),
           "background": curve.background.summary(weighted)}
    sums = [curve.signal.total, curve.background.total]
    if weighted and not min(sums) > 0:
        out["weights_warning"] = ("a class's sum of weights is not positive: its "
                                  "efficiencies divide by it and mean little")
    out["signal_efficiency_at"] = [signal_at_background(curve, t) for t in background_points]
    out["rejection_at"] = [rejection_at_signal(curve, t) for t in signal_points]
    out["separation"] = separation(score, is_signal, weight, bins)
    out["separation_bins"] = bins
    if any(x is not None for x in (eff, bkg, threshold)):
        out["working_point"] = working_point(score, is_signal, weight, eff, bkg, threshold,
                                             curve=curve)
    if yields:
        out["significance"] = scan(curve)
    return out
