"""Categorical features: levels, one-hot inputs, unseen levels, the checkpoint's entry."""

import logging

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.core.config import MAX_EMBEDDED
from fcnn_cli.data.categories import (MAX_LEVELS, MAX_TEXT, Categories, Unseen, encode_tables,
                                      is_categorical)
from fcnn_cli.data.tables import Table


def _table(**columns):
    return Table(pd.DataFrame(columns), name="t")


def test_levels_are_sorted_texts_whole_floats_as_integers_missing_last():
    t = _table(pdg=[11.0, 13.0, np.nan, 11.0], mixed=pd.Series([1, "1", "b", ""], dtype=object),
               flag=[True, False, True, True])
    got = Categories.fit(t, ["pdg", "mixed", "flag"]).levels
    assert got == {"pdg": ["11", "13", None], "mixed": ["", "1", "b"], "flag": ["False", "True"]}


def test_one_hot_inputs_match_the_levels_row_by_row():
    t = _table(x=[0.5, 1.5, 2.5, 3.5], region=["endcap", "barrel", None, "endcap"])
    categories = Categories.fit(t, ["region"])
    names = categories.names("region")
    assert names == ["region='barrel'", "region='endcap'", "region=<missing>",
                     "region=<unknown>"]
    encoded = categories.encode(t).frame
    assert list(encoded.columns) == ["x", *names]
    want = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0]], np.float32)
    np.testing.assert_array_equal(encoded[names].to_numpy(), want)
    assert categories.inputs(["x", "region", "y"]) == ["x", *names, "y"]
    assert categories.raw(["x", *names, "y"]) == ["x", "region", "y"]


def test_unseen_levels_take_the_unknown_input_and_are_counted_in_one_line(caplog):
    categories = Categories({"region": ["barrel", "endcap"]})
    new = _table(region=["barrel", "forward", "\x1b[31mred", None, "forward", ""])
    unseen = Unseen()
    x = categories.encode(new, unseen).frame.to_numpy()
    assert x.argmax(axis=1).tolist() == [0, 2, 2, 2, 2, 2]  # missing unseen too: no such level
    with caplog.at_level(logging.WARNING, logger="fcnn_cli"):
        unseen.say("new.csv")
    line = caplog.records[-1].getMessage()
    assert line == ("new.csv: 5 row(s) of level(s) never seen in training, each given the "
                    "unknown level's input: 'region': 'forward', '\\x1b[31mred', <missing>, ''")
    assert "\x1b" not in line and "\n" not in line


def test_a_million_levels_are_refused_in_one_line_naming_the_option():
    t = _table(id=np.arange(1_000_001).astype(str))
    with pytest.raises(FcnnError) as error:
        Categories.fit(t, ["id"], named=["id"])
    assert str(error.value) == ("t: categorical column 'id' has more than 100000 levels, past "
                                "the 100000 a column may take (one-hot up to 64, a learned "
                                "embedding beyond); leave it out of --categorical and --features")
    assert error.value.options == ("categorical",)


def test_unseen_values_keep_only_the_first_few_however_many():
    categories = Categories({"id": ["a"]})
    unseen = Unseen()
    categories.encode(_table(id=np.arange(200_000).astype(str)), unseen)
    assert unseen.rows == 200_000 and len(unseen.values["id"]) == 5


def test_training_tables_fitted_on_the_first_and_text_columns_by_default():
    train = _table(x=[1.0, 2.0, 3.0], region=["a", "b", "a"], pdg=[11, 13, 11])
    val = _table(x=[1.0], region=["c"], pdg=[15])
    (t, v, none), inputs, categories = encode_tables([train, val, None], ["x", "region", "pdg"],
                                                     ["pdg"])
    assert none is None and categories.levels == {"region": ["a", "b"], "pdg": ["11", "13"]}
    assert inputs == ["x", "region='a'", "region='b'", "region=<unknown>", "pdg='11'",
                      "pdg='13'", "pdg=<unknown>"]
    assert v.frame[inputs].to_numpy().tolist() == [[1, 0, 0, 1, 0, 0, 1]]
    with pytest.raises(FcnnError, match="--categorical 'q': not a feature column of t"):
        encode_tables([train], ["x"], ["q"])
    assert encode_tables([train], ["x", "pdg"])[1] == ["x", "pdg"]  # integers: numbers


def test_what_counts_as_levels_by_type():
    assert is_categorical(pd.Series(["a"])) and is_categorical(pd.Series([True]))
    assert is_categorical(pd.Series(["a"], dtype="category"))
    assert not is_categorical(pd.Series([1.0])) and not is_categorical(pd.Series([1]))


@pytest.mark.parametrize("levels, why", [
    ({"r": ["b", "a"]}, "not distinct and sorted"),
    ({"r": ["a", "a"]}, "not distinct and sorted"),
    ({"r": [1, 2]}, "not texts"),
    ({"r": [None, "a"]}, "not texts"),
    ({"r": "ab"}, "not a list"),
    ({"r": [str(i) for i in range(MAX_EMBEDDED + 2)]}, "not a list of at most"),
    ({"q": ["a"]}, "not among the features"),
    ({"x": ["a"]}, "a feature of its own"),
    ({"r": [f"{i:06d}" for i in range(MAX_EMBEDDED + 1)]}, "more than 100000 levels"),
    # Past MAX_LEVELS one index input, r=<index>, which the features lack.
    ({"r": [f"{i:02d}" for i in range(MAX_LEVELS + 1)]}, "not among the features"),
    ([], "not a table of columns"),
])
def test_a_checkpoints_levels_are_checked_as_untrusted_input(levels, why):
    features = ["x", "r='a'", "r=<unknown>"]
    with pytest.raises(FcnnError, match=why):
        Categories.from_dict(levels, features)
    assert Categories.from_dict({"r": ["a"]}, features).levels == {"r": ["a"]}


def test_a_feature_of_numbers_with_a_stray_word_is_a_typo_not_levels():
    from fcnn_cli.data.columns import select_columns

    t = _table(e=[*map(str, range(12)), "n/a"], y=np.arange(13.0))
    with pytest.raises(FcnnError, match="column 'e' holds numbers but not only: row 13"):
        select_columns(t, ["y"], ["e"])


def test_an_input_name_that_is_a_column_already_is_refused():
    t = _table(region=["a", "b"], **{"region='a'": [1.0, 2.0]})
    with pytest.raises(FcnnError, match="column \"region='a'\" is also the name of a "):
        encode_tables([t], ["region"])


def test_a_long_text_is_a_note_not_a_level():
    from fcnn_cli.data.columns import select_columns

    t = _table(note=["", "z" * (MAX_TEXT + 1)], f=[1.0, 2.0], y=[0.0, 1.0])
    assert select_columns(t, ["y"]) == (["f"], ["y"])
    with pytest.raises(FcnnError, match=f"'note' has a level of {MAX_TEXT + 1} characters "
                                        r"\('zzz.*\), longer than the"):
        Categories.fit(t, ["note"])
    with pytest.raises(FcnnError, match="not texts of at most"):
        Categories.from_dict({"r": ["z" * (MAX_TEXT + 1)]}, ["r='a'"])


@pytest.mark.parametrize("name", ["region=<unknown>", "a=<index>"])
def test_a_feature_of_numbers_named_as_an_input_of_levels_is_refused(name):
    """The scaling leaves an index input as it is, and the checkpoint checks the unknown
    level's inputs, by these names: a column of numbers so named must not pass for one."""
    t = _table(region=["a", "b"], **{name: [1.0, 2.0]})
    with pytest.raises(FcnnError, match=f"^t: column '{name}' is named as fcnn names a "
                                        "categorical feature's input; rename it$"):
        encode_tables([t], ["region", name])
    with pytest.raises(FcnnError, match="is named as fcnn names"):
        encode_tables([t], [name])  # without any categorical feature too


def test_a_column_named_categorical_is_a_feature_whatever_its_levels():
    from fcnn_cli.data.columns import select_columns

    t = _table(note=["", "z" * (MAX_TEXT + 1)], f=[1.0, 2.0], y=[0.0, 1.0])
    assert select_columns(t, ["y"], named=["note"]) == (["note", "f"], ["y"])
    assert select_columns(t, ["y"]) == (["f"], ["y"])  # left out, not named


def test_levels_shown_to_people_are_escaped_once():
    from fcnn_cli.core.errors import printable_all

    shown = Categories(printable_all({"r": ["esc\x1b[31mred", "new\nline", None]})).describe()
    assert shown == {"r": ["one-hot", "'esc\\x1b[31mred'", "'new\\nline'", "<missing>",
                           "<unknown>"]}


def test_levels_are_counted_as_texts_and_a_float32_is_its_own_shortest_text():
    import numpy as np
    import pandas as pd

    from fcnn_cli.data.categories import count_levels, factorized

    mixed = pd.Series([*range(MAX_LEVELS), *map(str, range(MAX_LEVELS))], dtype=object)
    assert count_levels(mixed) == MAX_LEVELS  # 11 and "11": one level each
    assert factorized(pd.Series(np.array([0.1, 11.0], np.float32)))[1] == ["0.1", "11"]


def test_a_column_of_many_levels_is_its_levels_index_zero_for_the_unknown():
    from fcnn_cli.data.categories import INDEX

    many = [f"s{i:03d}" for i in range(MAX_LEVELS + 6)]
    categories = Categories({"station": [*many, None]})
    values = ["s003", None, "s000", "new", many[-1], "s003"]
    unseen = Unseen()
    encoded = categories.encode(_table(station=values), unseen).frame
    assert list(encoded.columns) == [f"station={INDEX}"] and encoded.dtypes.iloc[0] == np.float32
    want = [many.index(v) + 1 if v in many else len(many) + 1 if v is None else 0
            for v in values]
    assert encoded.iloc[:, 0].tolist() == want == [4, 71, 1, 0, 70, 4]
    assert unseen.rows == 1 and unseen.values == {"station": ["'new'"]}


def test_a_million_levels_piece_by_piece_are_refused_holding_at_most_one_piece_beyond():
    from fcnn_cli.data.categories import Levels

    piece = 40_000
    levels = Levels(["id"], named=["id"])
    pieces = (_table(id=np.arange(start, start + piece).astype(str))
              for start in range(0, 1_000_001, piece))  # made one at a time
    with pytest.raises(FcnnError, match="'id' has at least 120000 levels, past the "
                                        "100000 a column may take"):
        for table in pieces:
            levels.add(table)
    assert len(levels.texts["id"]) == 120_000 <= MAX_EMBEDDED + piece
