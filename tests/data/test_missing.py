"""Missing feature values filled with training medians, with 0/1 indicators of those that had
any; the bounded sample a streamed pass finds medians in."""

import numpy as np
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.missing import Filler, MedianSample

NAMES = ["a", "b", "c"]


def matrix():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    x[::7, 0] = np.nan
    x[3, 0] = np.inf  # infinite counts as missing
    x[5, 2] = -np.inf
    return x


def test_medians_of_the_present_values_and_indicators_of_the_features_that_missed_any():
    x = matrix()
    filler = Filler.fit(x, NAMES)
    present = [x[np.isfinite(x[:, i]), i].astype(np.float64) for i in range(3)]
    assert filler.medians == [float(np.median(p)) for p in present]
    assert filler.flagged == ["a", "c"] and filler.indicators == ["a_missing", "c_missing"]
    filled = filler.transform(x)
    assert filled.dtype == np.float32 and filled.shape == (200, 5)
    missing = ~np.isfinite(x)
    for i in range(3):
        np.testing.assert_array_equal(filled[missing[:, i], i], np.float32(filler.medians[i]))
        np.testing.assert_array_equal(filled[~missing[:, i], i], x[~missing[:, i], i])
    np.testing.assert_array_equal(filled[:, 3:], missing[:, [0, 2]].astype(np.float32))
    assert np.isfinite(x).sum() < x.size  # the input is left as it was


def test_new_rows_fill_alike_and_a_feature_never_missing_in_training_has_no_indicator():
    x = matrix()
    filler = Filler.fit(x, NAMES)
    new = np.array([[np.nan, np.nan, 1.0], [1.0, 2.0, 3.0]], np.float32)
    assert filler.unflagged(new) == ["b"]
    filled = filler.transform(new)
    np.testing.assert_array_equal(filled[0], np.float32([filler.medians[0], filler.medians[1],
                                                         1.0, 1.0, 0.0]))
    np.testing.assert_array_equal(filled[1], np.float32([1, 2, 3, 0, 0]))


def test_a_feature_without_any_value_in_the_training_rows_is_named():
    x = matrix()
    x[:, 1] = np.nan
    with pytest.raises(FcnnError, match="t.csv: feature 'b' has no value in the training rows"):
        Filler.fit(x, NAMES, "t.csv")


def test_the_checkpoint_entry_round_trips():
    filler = Filler.fit(matrix(), NAMES)
    d = filler.to_dict()
    assert list(d["medians"]) == NAMES
    assert Filler.from_dict(d, NAMES) == filler


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("flagged"), "exactly 'medians' and 'flagged'"),
    (lambda d: d.update(code="x"), "exactly 'medians' and 'flagged'"),
    (lambda d: d.update(medians={"b": 1.0, "a": 1.0, "c": 1.0}), "do not name the features"),
    (lambda d: d.update(medians=[1.0, 2.0, 3.0]), "do not name the features"),
    (lambda d: d["medians"].update(b=float("nan")), "not a number finite in float32"),
    (lambda d: d["medians"].update(b=1e39), "not a number finite in float32"),
    (lambda d: d["medians"].update(b=True), "not a number finite"),
    (lambda d: d["medians"].update(b="1"), "not a number finite"),
    (lambda d: d.update(flagged=["z"]), "flagged are not features"),
    (lambda d: d.update(flagged=["c", "a"]), "flagged are not features"),
    (lambda d: d.update(flagged=["a", "a"]), "flagged are not features"),
    (lambda d: d.update(flagged="a"), "flagged are not features"),
], ids=["no-flagged", "extra-key", "order", "list", "nan", "huge", "bool", "text", "unknown",
        "unordered", "twice", "not-a-list"])
def test_a_damaged_entry_is_refused(change, message):
    d = Filler.fit(matrix(), NAMES).to_dict()
    change(d)
    with pytest.raises(FcnnError, match=message):
        Filler.from_dict(d, NAMES)


def test_a_streamed_sample_finds_the_exact_medians_below_its_size():
    x = matrix()
    sample = MedianSample(NAMES, seed=1)
    for part in np.array_split(x, 9):
        sample.add(part)
    assert sample.filler() == Filler.fit(x, NAMES)


def test_above_its_size_the_sample_is_uniform_seeded_and_bounded():
    rng = np.random.default_rng(2)
    x = rng.exponential(size=(200_000, 1)).astype(np.float32)  # median log 2
    medians = []
    for seed in (1, 1, 2):
        sample = MedianSample(["a"], seed=seed, size=20_000)
        for part in np.array_split(x, 13):
            sample.add(part)
        assert len(sample.kept[0]) == 20_000 and sample.seen[0] == 200_000
        medians.append(sample.filler().medians[0])
    assert medians[0] == medians[1] != medians[2]  # repeatable for a seed
    # the median of 20 000 uniformly drawn of the values: within a few of its standard errors
    assert medians[0] == pytest.approx(np.log(2), abs=0.03)
    # the kept values are spread over the whole stream, not its first rows alone
    late = np.isin(sample.kept[0], x[150_000:, 0])
    assert late.mean() == pytest.approx(0.25, abs=0.03)


def test_a_levels_index_is_filled_with_the_unknown_levels_not_a_median():
    """A level index is never missing in training; a NaN one (the exported graph's caller's)
    must pick the unknown level's row, 0, not the row of whatever level is the median."""
    x = np.array([[1.0, 5.0], [np.nan, 7.0], [3.0, 9.0]])
    filler = Filler.fit(x, ["x", "station=<index>"])
    assert filler.medians == [2.0, 0.0] and filler.flagged == ["x"]
    filled = filler.transform(np.array([[np.nan, np.nan]]))
    np.testing.assert_array_equal(filled, [[2.0, 0.0, 1.0]])
