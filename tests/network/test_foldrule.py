"""The fold of a row: a value's fold is the same whatever type it was read in; folds by
position stratified by class."""

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.data.tables import Table
from fcnn_cli.network.foldrule import FoldRule


def test_numbers_written_as_text_fall_in_the_folds_of_the_numbers():
    """An event number stored as text (a Parquet string column, a CSV read as text) hashes
    as the number that a CSV or integer column holds."""
    rule = FoldRule(7, "event")
    numbers = pd.Series([0, 7, -1, 100_000, 2**63 - 1, 123_456_789_012])
    folds = rule.of_values(numbers).tolist()
    assert rule.of_values(numbers.astype(str)).tolist() == folds
    assert rule.of_values(pd.Series(["0", "007", "-1", "1e5", " 9223372036854775807",
                                     "123456789012.0"])).tolist() == folds
    fractions = pd.Series([0.5, -2.25, 1e300])
    assert rule.of_values(fractions.astype(str)).tolist() == rule.of_values(fractions).tolist()
    assert rule.of_values(pd.Series(["18446744073709551615"])).tolist() == \
        rule.of_values(pd.Series([-1])).tolist()  # 2**64 - 1 and -1 share a fold


def test_other_text_hashes_by_its_digest():
    """Words, hexadecimal and non-finite text are text, in the folds they had (pinned)."""
    rule = FoldRule(64, "event")
    words = pd.Series(["a", "b", "0x1A", "nan", "inf", "run-7"])
    assert rule.of_values(words).tolist() == [14, 16, 0, 21, 24, 23]
    assert rule.of_values(words.astype("category")).tolist() == rule.of_values(words).tolist()


def test_stratified_folds_deal_each_class_evenly():
    """Each fold holds each class's rows to one and the table's to one, a class of 7 rows
    among 1 000 included; the seed alone moves rows between folds, deterministically."""
    rng = np.random.default_rng(0)
    classes = rng.choice(np.array(["a", "b", "rare"], dtype=object), 1000, p=[0.7, 0.293, 0.007])
    rows = np.arange(1000) + 5
    rule = FoldRule(5, seed=3, strata="label")
    fold = rule.of_positions(rows, classes)
    for c in np.unique(classes):
        n = int((classes == c).sum())
        counts = np.bincount(fold[classes == c], minlength=5)
        assert counts.min() == n // 5 and counts.max() == -(-n // 5)
    assert np.ptp(np.bincount(fold, minlength=5)) <= 1
    assert (rule.of_positions(rows, classes) == fold).all()
    other = FoldRule(5, seed=4, strata="label").of_positions(rows, classes)
    assert not (other == fold).all()
    for c in np.unique(classes):  # reseeding moves a class's rows, never its counts
        assert (np.bincount(other[classes == c], minlength=5)
                == np.bincount(fold[classes == c], minlength=5)).all()


def test_a_table_s_stratified_folds_hold_each_class_s_share():
    """Dealt by the classes training gives (the label column's), each fold of a table holds
    its share of each class's rows to one, and of all rows; a rule without strata takes no
    classes."""
    frame = pd.DataFrame({"label": ["s", "b"] * 10 + ["s"] * 7, "f": np.arange(27.0)})
    table, classes = Table(frame, ["label"], name="t"), frame["label"].to_numpy()
    fold = FoldRule(5, strata="label").of_table(table, classes)
    for c, n in (("s", 17), ("b", 10)):
        counts = np.bincount(fold[classes == c], minlength=5)
        assert counts.sum() == n and (np.abs(counts - n / 5) < 1).all(), c
    assert (np.abs(np.bincount(fold, minlength=5) - 27 / 5) < 1).all()
    plain = FoldRule(5)
    assert (plain.of_table(table, classes) == plain.of_table(table)).all()


@pytest.mark.parametrize("d, ok", [
    ({"k": 5, "by": None, "seed": 2}, True),  # recorded before folds were stratified
    ({"k": 5, "by": None, "seed": 2, "strata": "side"}, True),
    ({"k": 5, "by": "event", "seed": 2, "strata": "side"}, False),  # a column's are not
    ({"k": 5, "by": None, "seed": 2, "strata": ""}, False),
    ({"k": 5, "by": None, "seed": 2, "other": 1}, False),
])
def test_a_recorded_rule_with_or_without_strata(d, ok):
    if not ok:
        with pytest.raises(ValueError, match="folds: "):
            FoldRule.from_dict(d)
        return
    rule = FoldRule.from_dict(d)
    assert rule.to_dict() == d and rule.strata == d.get("strata")
    assert ("stratified by 'side'" in rule.describe()) == ("strata" in d)
