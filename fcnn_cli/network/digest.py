"""Fingerprints of rows: the training data a run resumes on, the rows a model was trained on."""

import hashlib

import numpy as np
import pandas as pd

from fcnn_cli.data.columns import numeric_matrix
from fcnn_cli.network import tasks


def hash_arrays(digest, *parts):
    """Add to the fingerprint of the training data (so that a run resumes only on the data it
    began with) the bytes of each part's arrays (a part is a list of arrays, or of blocks of
    rows), in order."""
    for part in parts:
        for a in part:
            digest.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8))  # no copy


class RowsDigest:
    """SHA-256 of a table's rows as a model takes them: its features (float32) and labels
    (float64, or class names), columns in the model's order. The same whatever file format
    holds the rows and in whatever pieces they come, so that evaluate can tell the rows a
    model was trained on."""

    def __init__(self, features, targets, kind):
        self.features, self.targets, self.kind = features, targets, kind
        self.x, self.y, self.names = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
        self.codes = {}  # class name: its number, in the order the names first came

    @classmethod
    def of(cls, tables, features, targets, kind):
        """The hex digest of the rows of ``tables``."""
        digest = cls(features, targets, kind)
        for table in tables:
            digest.add(table)
        return digest.hexdigest()

    def add(self, table):
        # Missing values as NaN: a model that fills them was trained on such rows.
        self.update(numeric_matrix(table, self.features, finite=False), self.labels(table))

    def labels(self, table):
        """The table's labels as the digest takes them."""
        if self.kind == "classify":
            return tasks.class_names(table, self.targets[0])
        return numeric_matrix(table, self.targets, np.float64)

    def update(self, x, labels):
        """Add rows: their features (float32) and :meth:`labels`."""
        hash_arrays(self.x, [x])
        if self.kind != "classify":
            hash_arrays(self.y, [labels])
            return
        # Each row's class number, and each name once, length first (no two lists alike):
        # a loop over the classes, not the rows, and the same in whatever pieces rows come.
        local, names = pd.factorize(np.asarray(labels, dtype=object))
        for name in names:
            if name not in self.codes:
                self.codes[name] = len(self.codes)
                data = name.encode("utf-8", "surrogatepass")
                self.names.update(len(data).to_bytes(8, "little") + data)
        codes = np.array([self.codes[name] for name in names], dtype=np.int64)
        hash_arrays(self.y, [codes[local]])

    def hexdigest(self):
        names = self.names.digest() if self.kind == "classify" else b""
        return hashlib.sha256(self.x.digest() + self.y.digest() + names).hexdigest()
