"""Selections and definitions with text: a column compared with texts (==, !=, in) as
categorical features take its values, numbers in a list (in), and text anywhere else refused
where it stands."""

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.expressions import definitions, derive, parse

FRAME = pd.DataFrame({
    "region": pd.Series(["barrel", "endcap", None, "fwd", "", "barrel"], dtype=object),
    "pdg": [11, 13, 211, 11, -13, 211],
    "flag": [True, False, True, True, False, False],
    "period": pd.Categorical(["A", "B", "A", None, "B", "A"]),
    "x": [1.0, 2.0, 3.0, np.nan, 5.0, 6.0],
})


def _texts(column):
    """Each value as its text, as a level is (a whole float as an integer), None if missing."""
    return [None if pd.isna(v) else str(int(v)) if isinstance(v, float) and v.is_integer()
            else str(v) for v in FRAME[column]]


@pytest.mark.parametrize("text, want", [
    ("region == 'barrel'", lambda t: t("region") == "barrel"),
    ("'barrel' == region", lambda t: t("region") == "barrel"),
    ("region != 'barrel'", lambda t: t("region") != "barrel"),  # missing: equals no text
    ("region == ''", lambda t: t("region") == ""),  # the empty text is a level, not missing
    ('region in ("barrel", "fwd",)', lambda t: np.isin(t("region"), ["barrel", "fwd"])),
    ("not region in ('barrel',)", lambda t: ~np.isin(t("region"), ["barrel"])),
    ("pdg == '11'", lambda t: t("pdg") == "11"),
    ("flag == 'True'", lambda t: t("flag") == "True"),
    ("period in ('B',) or x > 5", lambda t: (t("period") == "B") | (FRAME["x"] > 5)),
    ("pdg in (11, -13)", lambda t: FRAME["pdg"].isin([11, -13])),
    ("abs(pdg) in (13, 211) and region != 'fwd'",
     lambda t: FRAME["pdg"].abs().isin([13, 211]) & (t("region") != "fwd")),
])
def test_a_column_compares_with_texts_as_its_levels(text, want):
    def texts(column):
        return np.array(_texts(column), dtype=object)

    got = parse(text).evaluate(FRAME)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, np.asarray(want(texts), dtype=bool))


def test_a_definition_compares_with_text_and_a_later_one_reads_it_as_its_level():
    made = derive(FRAME, definitions(["barrel=region == 'barrel'", "again=barrel == '1'"]))
    assert made["barrel"].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert made["again"].tolist() == made["barrel"].tolist()


@pytest.mark.parametrize("text, problem", [
    ("x + 'a'", "character 5: the text 'a' is compared with a column alone, by ==, != or in"),
    ("'a'", "character 1: the text 'a' is compared with a column alone"),
    ("'a' == 'b'", "character 1: the text 'a' is compared with a column alone"),
    ("sqrt('a')", "character 6: sqrt takes numbers: its argument 1 is the text 'a'"),
    ("fmin(x, 'a')", "character 9: fmin takes numbers: its argument 2 is the text 'a'"),
    ("fmax(x, pdg, \"b\")", "character 14: fmax takes numbers: its argument 3 is the text 'b'"),
    ("region < 'a'", "character 10: the text 'a' is compared"),
    ("2 * region == 'a'", "character 15: the text 'a' is compared"),
    ("'a' in ('b',)", "character 1: the text 'a' is compared"),
    ("region in ('a', 1)", "the values of in (…) are texts or numbers, not both"),
    ("region in 'a'", "character 11: unexpected \"'a'\" where '(' and its values"),
    ("region in ()", "character 12: unexpected ')' where a text or a number should be"),
    ("region == 'barrel", "character 11: unexpected character \"'\": a text needs its "
                          "closing quote"),
    ("region == 'a\tb'", "character 11: unexpected character \"'\""),
    ("regoin == 'barrel'", "character 1: no column 'regoin' (did you mean 'region'?)"),
    ("x == 'a' == x", "comparisons do not chain"),
])
def test_text_anywhere_else_is_refused_in_one_line_where_it_stands(text, problem):
    with pytest.raises(FcnnError) as error:
        parse(text).evaluate(FRAME)
    assert problem in str(error.value) and "\n" not in str(error.value)


def test_a_definition_that_computes_with_a_text_column_is_refused_in_one_line():
    with pytest.raises(FcnnError, match=r"^definition 'r': expression 'region \+ 1', "
                                        r"character 1: column 'region' holds str values, "
                                        r"not numbers$"):
        derive(FRAME, definitions(["r=region + 1"]))


@pytest.mark.parametrize("text", ["region in ('barrel') + 1", "pdg in (1, 2) * 3",
                                  "pdg in (1, 2) ** 2"])
def test_arithmetic_after_in_is_refused_not_taken_on_its_zero_or_one(text):
    with pytest.raises(FcnnError, match=r"'in \(…\)' compares: put the arithmetic on its left"):
        parse(text)
    parse("pdg + 1 in (12, 14) and x > 0")  # arithmetic on its left, a looser operator after
