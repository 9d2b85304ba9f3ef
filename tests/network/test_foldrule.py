"""The fold of a row: a value's fold is the same whatever type it was read in."""

import pandas as pd

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
