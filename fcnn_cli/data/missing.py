"""Missing feature values filled in (``nan="fill"``): each feature's training median, and a 0/1
``<feature>_missing`` input for each feature that had missing values in the training rows.

A value is missing where it is NaN, a null (None, pandas' NA) or infinite: a network cannot
take an infinite input either, and ``nan="drop"`` treats all three alike. The filler is fitted
on the training rows alone and kept with the model, so that predict and evaluate fill new rows
exactly as training did; a feature that had no missing value in training but has some in new
rows is filled with its median too, without an indicator (the network has no input for one).
"""

import logging
from dataclasses import dataclass

import numpy as np

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.categories import is_index

log = logging.getLogger(__name__)

SUFFIX = "_missing"  # the name of a feature's indicator: <feature>_missing
# Values a feature keeps to find its median in a streamed pass: exact up to this many.
SAMPLE_VALUES = 1_000_000
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Filler:
    """The medians of ``features`` (raw names, in the model's order) and the names of those
    that get an indicator (``flagged``, in feature order)."""

    features: list
    medians: list
    flagged: list

    @classmethod
    def fit(cls, x, features, name="<table>"):
        """From the training rows' raw features ``x`` (NaN or infinite where missing)."""
        missing = ~np.isfinite(x)
        medians = [_median(x[~missing[:, i], i], feature, name)
                   for i, feature in enumerate(features)]
        flagged = [f for f, any_missing in zip(features, missing.any(axis=0)) if any_missing]
        return cls(list(features), medians, flagged)

    @property
    def indicators(self):
        """The names of the added inputs, after the raw features."""
        return [f + SUFFIX for f in self.flagged]

    @property
    def width(self):
        """The network's inputs: the features and the indicators."""
        return len(self.features) + len(self.flagged)

    def transform(self, x):
        """A new float32 matrix: ``x`` (rows × features) with its missing values filled and
        an indicator column for each flagged feature appended."""
        x = np.asarray(x, dtype=np.float32)
        missing = ~np.isfinite(x)
        out = np.empty((len(x), self.width), np.float32)
        out[:, :len(self.features)] = np.where(missing, np.asarray(self.medians, np.float32), x)
        flagged = [self.features.index(f) for f in self.flagged]
        out[:, len(self.features):] = missing[:, flagged]
        return out

    def unflagged(self, x):
        """The features with missing values in ``x`` that have no indicator: filled with their
        median alone, as training never saw one missing."""
        columns = ~np.isfinite(x).all(axis=0)
        return [f for f, m in zip(self.features, columns) if m and f not in self.flagged]

    def to_dict(self):
        return {"medians": dict(zip(self.features, self.medians)), "flagged": self.flagged}

    @classmethod
    def from_dict(cls, d, features):
        """The filler of a model whose raw features are ``features``, from its checkpoint's
        entry ``d`` (untrusted: each part checked)."""
        if not isinstance(d, dict) or set(d) != {"medians", "flagged"}:
            raise FcnnError("missing: needs exactly 'medians' and 'flagged'")
        medians, flagged = d["medians"], d["flagged"]
        if not isinstance(medians, dict) or list(medians) != list(features):
            raise FcnnError("missing: the medians do not name the features, in order")
        values = list(medians.values())
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) \
                or not all(abs(v) <= FLOAT32_MAX for v in values):  # NaN compares False
            raise FcnnError("missing: a median is not a number finite in float32")
        if not isinstance(flagged, list) or not all(isinstance(f, str) for f in flagged) \
                or flagged != [f for f in features if f in set(flagged)]:
            raise FcnnError("missing: flagged are not features of the model, once each, in "
                            "order")
        return cls(list(features), [float(v) for v in values], list(flagged))


def _median(values, feature, name):
    """The value that fills ``feature``'s missing ones: its median; a categorical feature's
    level index (never missing in training, but a caller of the exported graph may give NaN)
    takes the unknown level's, 0."""
    if is_index(feature):
        return 0.0
    if not len(values):
        raise FcnnError(f"{name}: feature {feature!r} has no value in the training rows to "
                        "fill its missing ones with", ("nan",))
    return float(np.median(values.astype(np.float64)))


class MedianSample:
    """What a streamed pass keeps to fit a :class:`Filler` (and a scaler of quantiles,
    :meth:`columns`): for each feature a seeded uniform sample (reservoir) of at most ``size``
    of its present values, whose median is the exact one while the feature has no more values
    than that, and how many values were missing."""

    def __init__(self, features, seed, size=SAMPLE_VALUES):
        self.features, self.size = list(features), size
        self.rng = np.random.default_rng(seed)
        self.kept = [np.empty(0, np.float32) for _ in features]
        self.seen = np.zeros(len(features), np.int64)
        self.missing = np.zeros(len(features), np.int64)

    def add(self, x):
        """Training rows' raw features (NaN or infinite where missing)."""
        finite = np.isfinite(x)
        self.missing += (~finite).sum(axis=0)
        for i in range(len(self.features)):
            self._offer(i, x[finite[:, i], i])

    def _offer(self, i, values):
        """Reservoir sampling, a block at a time: value k (from 0) of the stream replaces a
        random kept one with probability size / (k + 1)."""
        kept, seen = self.kept[i], int(self.seen[i])
        room = max(0, min(self.size - len(kept), len(values)))
        kept = np.concatenate([kept, values[:room]])
        rest = values[room:]
        if len(rest):
            k = seen + room + np.arange(len(rest))
            slot = (self.rng.random(len(rest)) * (k + 1)).astype(np.int64)
            chosen = slot < self.size
            slots, taken = slot[chosen], rest[chosen]
            # A later value replaces an earlier one at the same slot: the last one of each.
            last = len(slots) - 1 - np.unique(slots[::-1], return_index=True)[1]
            kept[slots[last]] = taken[last]
        self.kept[i], self.seen[i] = kept, seen + len(values)

    def filler(self, name="<source>"):
        medians = [_median(kept, f, name) for kept, f in zip(self.kept, self.features)]
        return Filler(self.features, medians,
                      [f for f, m in zip(self.features, self.missing) if m])

    def columns(self, filler=None):
        """Each input's sampled values as ``filler`` makes the inputs (None: the features as
        they are): a feature's kept values and its median in the share of its values that
        were missing, then each indicator's 0s and 1s in the same shares. While every value
        is kept these are the training rows' inputs exactly, in another order."""
        if filler is None:
            return list(self.kept)
        out = []
        for kept, seen, missing, median in zip(self.kept, self.seen, self.missing,
                                               filler.medians):
            fills = int(round(missing * len(kept) / seen))  # seen > 0: the filler has a median
            out.append(np.concatenate([kept, np.full(fills, median, np.float32)]))
        for feature in filler.flagged:
            i = self.features.index(feature)
            ones = int(round(self.missing[i] * len(out[i]) / (self.seen[i] + self.missing[i])))
            out.append(np.repeat(np.float32([1, 0]), [ones, len(out[i]) - ones]))
        return out
