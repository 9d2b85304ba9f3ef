"""The fingerprint of a table's rows that evaluate compares with the checkpoint's."""

import hashlib

import numpy as np

from fcnn_cli.network.digest import RowsDigest


def digest(*pieces):
    """The classification digest of rows given as (labels, ...) pieces."""
    rows = RowsDigest(["x"], ["side"], "classify")
    for labels in pieces:
        rows.update(np.zeros((len(labels), 1), np.float32), np.array(labels, dtype=object))
    return rows.hexdigest()


LABELS = ["b", "a", "b", "c", "a", "c", "d", "b"]


def test_the_same_rows_in_other_pieces_give_the_same_digest():
    whole = digest(LABELS)
    assert digest(LABELS[:1], LABELS[1:]) == whole
    assert digest(LABELS[:3], LABELS[3:6], LABELS[6:]) == whole
    assert digest(*[[name] for name in LABELS]) == whole


def test_other_labels_give_another_digest():
    whole = digest(LABELS)
    assert digest(LABELS[::-1]) != whole
    assert digest([{"a": "x"}.get(n, n) for n in LABELS]) != whole  # same pattern, other names
    assert digest(["ab", "c"]) != digest(["a", "bc"])
    assert digest(["a", "b"]) != digest(["b", "a"])


class Name(str):
    """A class name that counts its encodings."""

    encoded = 0

    def encode(self, *args):
        Name.encoded += 1
        return str.encode(self, *args)


def test_each_class_name_is_encoded_once_not_once_a_row():
    labels = [Name(n) for n in ["yes", "no"]] * 5000
    Name.encoded = 0
    assert digest(labels[:3000], labels[3000:]) == digest([str(n) for n in labels])
    assert Name.encoded == 2


def test_regression_rows_keep_the_digest_older_checkpoints_hold():
    rows = RowsDigest(["x"], ["y"], "regress")
    rows.update(np.ones((3, 1), np.float32), np.arange(3, dtype=np.float64).reshape(3, 1))
    x, y = hashlib.sha256(np.ones(3, np.float32)), hashlib.sha256(np.arange(3.0))
    assert rows.hexdigest() == hashlib.sha256(x.digest() + y.digest()).hexdigest()
