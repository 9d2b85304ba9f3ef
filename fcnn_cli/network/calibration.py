"""How well a network's own account of its uncertainty holds, as metric reports: predicted
Gaussians scored against the labels (NLL, CRPS, the share of labels within central intervals:
:class:`Calibration`), and a classifier's confidence against its accuracy (reliability table,
expected calibration error, mean entropy: :class:`Reliability`)."""

import math
from statistics import NormalDist

import numpy as np

from fcnn_cli.network.weighted import Weights

# Central intervals whose share of labels the calibration table compares with their level.
CALIBRATION_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.683, 0.7, 0.8, 0.9, 0.954, 0.99)
_erf = np.frompyfunc(math.erf, 1, 1)


def normal_cdf(z):
    return 0.5 * (1.0 + _erf(np.asarray(z, np.float64) / math.sqrt(2.0)).astype(np.float64))


def gaussian_nll(y, mean, std):
    """−log N(y; mean, std²) per value."""
    z = (y - mean) / std
    return 0.5 * z ** 2 + np.log(std) + 0.5 * math.log(2 * math.pi)


def gaussian_crps(y, mean, std):
    """The continuous ranked probability score of N(mean, std²) for y, in closed form:
    σ [z (2Φ(z) − 1) + 2φ(z) − 1/√π] with z = (y − mean)/σ."""
    z = (y - mean) / std
    pdf = np.exp(-0.5 * z ** 2) / math.sqrt(2 * math.pi)
    return std * (z * (2 * normal_cdf(z) - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


class Calibration:
    """How well predicted Gaussians (a mean and a standard deviation per value) describe the
    labels, over rows in chunks: mean negative log-likelihood, CRPS and σ per label, and the
    share of labels within each central interval of ``CALIBRATION_LEVELS`` (±1σ is 68.3 %,
    ±2σ 95.4 % for a calibrated model). Rows with weights (all or none) make each a weighted
    mean, the shares the weighted fraction of labels inside (see
    :mod:`~fcnn_cli.network.weighted`)."""

    def __init__(self, names):
        self.names, k = list(names), len(names)
        self.rows, self.nll, self.crps, self.sigma = 0, np.zeros(k), np.zeros(k), np.zeros(k)
        self.weights = Weights()
        self.half_widths = np.array([NormalDist().inv_cdf(0.5 + p / 2)
                                     for p in CALIBRATION_LEVELS])
        # Counts, or with weights sums of weights (the first weighted add makes them floats).
        self.within = np.zeros((len(CALIBRATION_LEVELS), k), np.int64)
        self.sigmas = np.zeros((2, k), np.int64)  # within ±1σ and ±2σ

    def add(self, y, mean, std, weight=None):
        y, mean = np.asarray(y, np.float64), np.asarray(mean, np.float64)
        std = np.maximum(np.asarray(std, np.float64), np.finfo(np.float64).tiny)
        w = self.weights.add(weight, len(y))
        self.rows += len(y)
        z = np.abs(y - mean) / std
        inside = z[None] <= self.half_widths[:, None, None]  # levels × rows × labels
        in_sigmas = z[None] <= np.array([1.0, 2.0])[:, None, None]
        if w is None:
            self.nll += gaussian_nll(y, mean, std).sum(axis=0)
            self.crps += gaussian_crps(y, mean, std).sum(axis=0)
            self.sigma += std.sum(axis=0)
            self.within += inside.sum(axis=1)
            self.sigmas += in_sigmas.sum(axis=1)
            return
        w = w[:, None]
        self.nll += (w * gaussian_nll(y, mean, std)).sum(axis=0)
        self.crps += (w * gaussian_crps(y, mean, std)).sum(axis=0)
        self.sigma += (w * std).sum(axis=0)
        self.within = self.within + (inside * w).sum(axis=1)
        self.sigmas = self.sigmas + (in_sigmas * w).sum(axis=1)

    def report(self):
        n = self.weights.total(max(self.rows, 1))

        def per_label(values):
            return {name: float(values[i]) for i, name in enumerate(self.names)}
        within = self.within / n
        return {
            "nll": float(self.nll.sum() / (n * len(self.names))),
            "crps": float(self.crps.sum() / (n * len(self.names))),
            "mean_sigma": per_label(self.sigma / n),
            "coverage_1sigma": float(self.sigmas[0].sum() / (n * len(self.names))),
            "coverage_2sigma": float(self.sigmas[1].sum() / (n * len(self.names))),
            "per_label": {name: {"nll": float(self.nll[i] / n), "crps": float(self.crps[i] / n),
                                 "coverage_1sigma": float(self.sigmas[0, i] / n),
                                 "coverage_2sigma": float(self.sigmas[1, i] / n)}
                          for i, name in enumerate(self.names)},
            "calibration": [{"level": p, "observed": float(within[j].mean())}
                            for j, p in enumerate(CALIBRATION_LEVELS)],
        }


RELIABILITY_BINS = 10  # equal bins of confidence (the probability of the class decided on)


def entropy(proba):
    """The entropy (nats) of each row's class probabilities."""
    p = np.asarray(proba, np.float64)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)


class Reliability:
    """Expected calibration error and the reliability table of a classifier: rows binned by
    their confidence, each bin's mean confidence against its accuracy; with weights, weighted
    means, each bin's gap counting its sum of weights (its size in absolute value: a bin
    may weigh less than nothing), over the sum of those sizes."""

    def __init__(self):
        self.count = np.zeros(RELIABILITY_BINS, np.int64)
        self.confidence, self.correct = np.zeros(RELIABILITY_BINS), np.zeros(RELIABILITY_BINS)
        self.entropy, self.weight = 0.0, None  # weight: each bin's sum of weights

    def add(self, y_true, proba, y_pred, weight=None):
        confidence = proba[np.arange(len(y_pred)), y_pred]
        bins = np.minimum((confidence * RELIABILITY_BINS).astype(np.int64), RELIABILITY_BINS - 1)
        right, spread = (y_pred == y_true).astype(np.float64), entropy(proba)
        if weight is not None:
            confidence, right, spread = confidence * weight, right * weight, spread * weight
            self.weight = np.bincount(bins, weight, RELIABILITY_BINS) + \
                (0.0 if self.weight is None else self.weight)
        self.count += np.bincount(bins, minlength=RELIABILITY_BINS)
        self.confidence += np.bincount(bins, confidence, RELIABILITY_BINS)
        self.correct += np.bincount(bins, right, RELIABILITY_BINS)
        self.entropy += float(spread.sum())

    def report(self):
        n = int(self.count.sum())
        amount, total = self.count, n
        if self.weight is not None:
            amount, total = self.weight, float(self.weight.sum()) or float("nan")
        used = self.count > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            confidence, accuracy = self.confidence / amount, self.correct / amount
        weighs = used & (amount != 0)
        # Each bin's gap counts by its amount's size, over the sum of those sizes: a mean of
        # the gaps, at most 1 even where negative weights make the signed total small (NaN
        # where that total is not positive, as every weighted figure is).
        sizes = np.abs(amount[weighs])
        gaps = np.abs(accuracy - confidence)[weighs] * sizes
        return {"ece": float(gaps.sum() / sizes.sum()) if total > 0 else float("nan"),
                "mean_entropy": self.entropy / total if n else float("nan"),
                "reliability": [{"low": i / RELIABILITY_BINS, "high": (i + 1) / RELIABILITY_BINS,
                                 "rows": int(self.count[i]),
                                 **({} if self.weight is None else
                                    {"sum_of_weights": float(self.weight[i])}),
                                 "confidence": float(confidence[i]),
                                 "accuracy": float(accuracy[i])}
                                for i in range(RELIABILITY_BINS) if used[i]]}
