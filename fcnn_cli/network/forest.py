"""Decision trees as flat node arrays, checked as untrusted input and walked with numpy: a
tree-ensemble baseline predicts without the library that grew it, and without running code
from its file.

Tree ``t`` holds the nodes ``start[t]`` to ``start[t + 1] - 1``, its root first. An internal
node ``i`` sends a row to ``left[i]`` when its feature ``feature[i]`` is at most
``threshold[i]`` (or is NaN and ``missing_left[i]``), else to ``right[i]``; a leaf points to
itself both ways and adds ``value[i]`` to the raw output ``output[t]`` of its tree, which
starts at ``offset``. Every child lies after its parent in its own tree, so a walk down any
tree that passed :meth:`Forest.check` ends, whatever the file held.
"""

from dataclasses import dataclass

import numpy as np

from fcnn_cli.core.errors import FcnnError

# The arrays and their dtypes. Thresholds are float32 like the features: a float64 threshold
# is rounded down to the float32 below it, which sends every float32 value the same way.
DTYPES = {"start": np.int64, "feature": np.int32, "threshold": np.float32,
          "missing_left": np.bool_, "left": np.int32, "right": np.int32, "value": np.float64,
          "output": np.int32, "offset": np.float64}
NODE_ARRAYS = ("feature", "threshold", "missing_left", "left", "right", "value")
# Rows × trees walked at once: the walk holds a few arrays of this many entries.
CELLS = 1 << 20


@dataclass
class Forest:
    start: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    output: np.ndarray
    offset: np.ndarray
    n_features: int

    @property
    def trees(self):
        return len(self.start) - 1

    @property
    def n_outputs(self):
        return len(self.offset)

    @classmethod
    def join(cls, trees, offset, n_features):
        """The forest of ``trees``, each a dict of its nodes' ``feature``, ``threshold``
        (float64), ``missing_left``, ``left``, ``right`` (indices within the tree), ``value``,
        ``leaf`` and its ``output``, checked as a loaded one would be."""
        sizes = [len(t["value"]) for t in trees]
        start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        own = np.arange(start[-1], dtype=np.int64)
        base = np.repeat(start[:-1], sizes)
        leaf = np.concatenate([t["leaf"] for t in trees]).astype(bool)

        def nodes(key):
            return np.concatenate([t[key] for t in trees])

        def child(key):  # within the forest; a leaf its own child
            return np.where(leaf, own, nodes(key).astype(np.int64) + base)

        forest = cls(start=start, feature=np.where(leaf, 0, nodes("feature")),
                     threshold=np.where(leaf, 0.0, float32_at_most(nodes("threshold"))),
                     missing_left=nodes("missing_left"), left=child("left"),
                     right=child("right"), value=np.where(leaf, nodes("value"), 0.0),
                     output=np.array([t["output"] for t in trees]),
                     offset=np.asarray(offset), n_features=n_features)
        return forest.typed().check()

    def arrays(self):
        return {name: getattr(self, name) for name in DTYPES}

    @classmethod
    def of_arrays(cls, arrays, n_features):
        """The forest of ``arrays`` (name: 1-D array) read from a file, once checked."""
        for name, dtype in DTYPES.items():
            a = arrays[name]
            _need(a.dtype == dtype and a.ndim == 1,
                  f"{name} is {a.dtype} of {a.ndim} dimension(s), not 1-D {np.dtype(dtype)}")
        return cls(**{name: arrays[name] for name in DTYPES}, n_features=n_features).check()

    def typed(self):
        for name, dtype in DTYPES.items():
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=dtype))
        return self

    def check(self):
        """This forest, once every array agrees with the others and every walk ends inside
        its own tree; else one line that says what is wrong."""
        n = len(self.value)
        _need(type(self.n_features) is int and self.n_features >= 1,
              f"{self.n_features!r} features")
        _need(all(len(getattr(self, k)) == n for k in NODE_ARRAYS),
              "the node arrays differ in length")
        start = self.start
        _need(len(start) >= 2 and start[0] == 0 and start[-1] == n and
              bool((np.diff(start) > 0).all()), "the trees' first nodes are out of order")
        _need(len(self.output) == self.trees, f"{len(self.output)} outputs named for "
              f"{self.trees} trees")
        _need(len(self.offset) >= 1 and bool(np.isfinite(self.offset).all()),
              "the outputs' offsets are missing or not finite")
        _need(bool(((self.output >= 0) & (self.output < self.n_outputs)).all()),
              f"a tree adds to an output beyond the {self.n_outputs} there are")
        _need(bool(((self.feature >= 0) & (self.feature < self.n_features)).all()),
              f"a node tests a feature beyond the {self.n_features} there are")
        _need(not np.isnan(self.threshold).any(), "a node's threshold is NaN")
        _need(bool(np.isfinite(self.value).all()), "a leaf's value is not finite")
        self._check_children()
        return self

    def _check_children(self):
        own = np.arange(len(self.value), dtype=np.int64)
        end = np.repeat(self.start[1:], np.diff(self.start))
        leaf = self.left == own
        inside = [(c > own) & (c < end) for c in (self.left, self.right)]
        _need(bool(np.where(leaf, self.right == own, inside[0] & inside[1]).all()),
              "a node's child lies outside its tree or before it (the walk could loop)")

    def raw(self, x):
        """Rows × outputs: each output's offset plus its trees' leaves, for float32 features."""
        rows = max(1, CELLS // self.trees)
        out = np.empty((len(x), self.n_outputs))
        for first in range(0, len(x), rows):
            out[first:first + rows] = self._raw(x[first:first + rows])
        return out

    def _raw(self, x):
        rows, width = len(x), x.shape[1]
        # One entry a (row, tree), at its tree's root; only those not yet at a leaf walk on.
        node = np.tile(self.start[:-1].astype(np.int32), rows)
        first = np.repeat(np.arange(rows, dtype=np.int64) * width, self.trees)
        flat, nan = x.reshape(-1), bool(np.isnan(x).any())
        walking = np.flatnonzero(self.left[node] != node)
        while walking.size:
            at = node[walking]
            v = flat[first[walking] + self.feature[at]]
            go_left = v <= self.threshold[at]
            if nan:
                go_left |= np.isnan(v) & self.missing_left[at]
            at = np.where(go_left, self.left[at], self.right[at])
            node[walking] = at
            walking = walking[self.left[at] != at]
        leaves = self.value[node].reshape(rows, self.trees)
        # Per output, numpy's own (pairwise) sum: the same leaves give the same total.
        return self.offset + np.stack([leaves[:, self.output == k].sum(axis=1)
                                       for k in range(self.n_outputs)], axis=1)


def float32_at_most(t):
    """The largest float32 at most each float64 of ``t``: ``x <= t`` and ``x <= result`` agree
    for every float32 ``x``."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(over="ignore"):
        down = t.astype(np.float32)
    above = down.astype(np.float64) > t
    down[above] = np.nextafter(down[above], np.float32(-np.inf))
    return down


def _need(ok, what):
    if not ok:
        raise FcnnError(what)
