"""The recipe: its steps on a table (objects, definitions, selection, class and weight columns)
against numpy, its round trip through a dict, and a hostile one read back refused."""

import json

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import samples
from fcnn_cli.data.applying import SELECTED, every_row, predicting
from fcnn_cli.data.recipe import WEIGHT, Recipe, in_use_order, rows_of
from fcnn_cli.data.tables import Table


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    n = 50
    return Table(pd.DataFrame({"px": rng.normal(size=n), "py": rng.normal(size=n),
                               "n": rng.integers(0, 4, n), "w": rng.uniform(-0.5, 2, n)}),
                 name="t.csv")


def recipe(**options):
    return Recipe.of_options(**{"define": ["pt=hypot(px, py)", "pt2=pt**2"],
                                "where": "n >= 2 and pt > 0.5", "weight": "w * 2",
                                **options})


def test_the_steps_on_a_table_equal_numpy(table):
    made = recipe(samples=["sig=a.csv*0.5", "bkg=b.csv"])
    sig = made.samples[0]
    out = made.apply(table, sig).frame
    f = table.frame
    pt = np.hypot(f.px, f.py)
    keep = (f.n >= 2) & (pt > 0.5)
    np.testing.assert_array_equal(out.pt, pt[keep])
    np.testing.assert_allclose(out.pt2, pt[keep] ** 2)
    np.testing.assert_array_equal(out[WEIGHT], f.w[keep] * 2 * 0.5)
    assert out["sample"].tolist() == ["sig"] * int(keep.sum())
    assert list(out["sample"].cat.categories) == ["sig", "bkg"]  # the samples' order
    assert made.weight_column == WEIGHT


def test_rows_kept_are_named_by_their_file_rows(table):
    kept = rows_of(table, (table.frame.n >= 2).to_numpy())
    first = int(np.argmax(table.frame.n >= 2))
    assert kept.row(0) == first + 1


def test_a_plain_weight_column_is_the_weight_unless_a_sample_scales_it(table):
    plain = Recipe.of_options(weight="w")
    assert plain.weight_column == "w"
    assert plain.apply(table).frame.columns.tolist() == table.frame.columns.tolist()
    scaled = Recipe.of_options(samples=["a=x.csv*3", "b=y.csv"], weight="w")
    assert scaled.weight_column == WEIGHT
    np.testing.assert_array_equal(scaled.apply(table, scaled.samples[0]).frame[WEIGHT],
                                  table.frame.w * 3)
    bad = table.frame.copy()
    bad.loc[7, "w"] = np.nan
    with pytest.raises(FcnnError, match=r"t.csv: the weight 'w' is NaN or infinite in 1 row\(s\), "
                                        "first at row 8"):
        scaled.apply(Table(bad, name="t.csv"), scaled.samples[0])


def test_the_columns_the_weight_reads_are_no_default_features(table):
    made = Recipe.of_options(define=["wt=w * 3", "pt=hypot(px, py)"], weight="wt")
    assert made.left_out() == {WEIGHT, "wt", "w"}
    derived = made.apply(table)
    assert made.features(derived, ["n"]) == ["px", "py", "pt"]
    assert made.features(derived, ["n"], ["w", "px"]) == ["w", "px"]  # named: as named


def test_a_selection_must_be_true_or_false(table):
    with pytest.raises(FcnnError, match="t.csv: where 'n' gives numbers, not true or false"):
        Recipe.of_options(where="n").apply(table)


def test_predict_scores_every_row_and_says_which_pass(table):
    made = recipe()
    (flagged,) = predicting(made, [table], ["pt"])
    pt = np.hypot(table.frame.px, table.frame.py)
    np.testing.assert_array_equal(flagged.frame[SELECTED],
                                  ((table.frame.n >= 2) & (pt > 0.5)).astype(int))
    (kept,) = predicting(made, [table], ["pt"], keep_selected=True)
    assert len(kept.frame) == flagged.frame[SELECTED].sum() and SELECTED not in kept.frame
    with pytest.raises(FcnnError, match=r"t.csv: missing column\(s\) 'py' that the model reads"
                                        r" \(a feature, or what its definitions"):
        list(predicting(made, [Table(table.frame.drop(columns="py"), name="t.csv")], ["pt"]))


def test_a_recipe_round_trips_through_json(table, tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    made = recipe(samples=[f"sig={tmp_path}/a.csv*0.25", {"name": "bkg",
                                                          "files": [str(tmp_path / "a.csv")],
                                                          "where": "px > 0"}])
    with pytest.raises(FcnnError, match="given twice"):
        made.find()
    made.samples[1].patterns = [str(tmp_path / "*.csv")]
    made.samples[1].files = [str(tmp_path / "a.csv")]
    made.samples[0].files = []
    made.record()
    again = Recipe.from_dict(json.loads(json.dumps(made.to_dict())))
    assert again.to_dict() == made.to_dict()
    assert again.samples[1].records[0]["size"] == 4
    for sample in made.samples:
        pd.testing.assert_frame_equal(again.apply(table, sample).frame,
                                      made.apply(table, sample).frame)


def test_objects_are_expanded_once_and_kept(tmp_path):
    frame = pd.DataFrame({"Muon_Px": [np.array([1.0, 2.0]), np.array([3.0])],
                          "Muon_E": [np.array([5.0, 6.0]), np.array([7.0])]})
    made = Recipe.of_options(objects=["Muon:2"], define=["s=Muon_Px_0 + Muon_Px_1"])
    out = made.apply(Table(frame, name="m")).frame
    assert out.Muon_Px_1.tolist()[0] == 2.0 and np.isnan(out.Muon_Px_1.tolist()[1])
    assert out.Muon_1_present.tolist() == [1.0, 0.0] and out.s.tolist()[0] == 3.0
    again = Recipe.from_dict(json.loads(json.dumps(made.to_dict())))
    assert [n for n, _ in again.expanded] == [n for n, _ in made.expanded]
    assert made.needs(["s"]) == ["Muon_Px"]



def test_a_collection_of_lists_of_different_lengths_is_refused_in_one_line():
    frame = pd.DataFrame({"Muon_Px": [np.array([1.0, 2.0]), np.array([3.0]), np.array([])],
                          "Muon_Q": [np.array([1.0, -1.0]), np.array([1.0, 1.0]), None]})
    made = Recipe.of_options(objects=["Muon:2"])
    with pytest.raises(FcnnError, match=r"^m: objects Muon:2: 'Muon_Px' and 'Muon_Q' differ in "
                                        "length, first at row 2$"):
        made.apply(Table(frame, name="m"))
    agree = Recipe.of_options(objects=["Muon:2"])  # a missing list is an empty one
    assert len(agree.apply(Table(frame.iloc[[0, 2]], name="m")).frame) == 2

HOSTILE = [
    "__import__('os').system('touch pwned')",
    "px.__class__",
    "(lambda: 1)()",
    "open('/etc/passwd')",
    "px" + " + px" * 5_000_000,  # 10 MB
    "(" * 500 + "px" + ")" * 500,
    "-" * 1000 + "px",
]


@pytest.mark.parametrize("text", HOSTILE, ids=["import", "attribute", "lambda", "call",
                                               "10 MB", "nested", "signs"])
@pytest.mark.parametrize("where", ["define", "where", "weight", "sample"])
def test_a_hostile_recipe_read_back_is_refused_in_one_line(text, where, tmp_path):
    d = Recipe.of_options(define=["pt=px"]).to_dict()
    if where == "define":
        d["define"] = [["pt", text]]
    elif where == "sample":
        d["samples"] = [{"name": "s", "files": [], "scale": 1.0, "where": text}]
    else:
        d[where] = text
    with pytest.raises(FcnnError) as e:
        Recipe.from_dict(d)
    assert str(e.value).startswith("recipe: ") and "\n" not in str(e.value)
    assert len(str(e.value)) < 400
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(define="pt=px"), "define is not a list"),
    (lambda d: d.update(define=[["pt", 3]]), "define is not a list of"),
    (lambda d: d.update(samples=[{"name": "s", "files": ["a.csv"], "scale": 1.0}]),
     "a file is not"),
    (lambda d: d.update(samples=[{"name": "s", "files": [], "scale": -1.0}]), "not a number > 0"),
    (lambda d: d.update(objects=["Muon:2"], expanded=None), "objects without their columns"),
    (lambda d: d.update(evil=1), "unknown entry"),
    (lambda d: d.update(weight=["w"]), "not text"),
    (lambda d: d.update(ranges=[["px", 0, 1]]), "ranges is not an object"),
    (lambda d: d.update(ranges={"px": [1.0, 0.0]}), "range of 'px' is not"),
    (lambda d: d.update(ranges={"px": [0.0, float("nan")]}), "range of 'px' is not"),
    (lambda d: d.update(ranges={"px": [0.0, True]}), "range of 'px' is not"),
    (lambda d: d.update(ranges={"px": [0.0]}), "range of 'px' is not"),
])
def test_a_recipe_of_another_shape_is_refused(change, message):
    d = Recipe.of_options(define=["pt=px"]).to_dict()
    change(d)
    with pytest.raises(FcnnError, match=message):
        Recipe.from_dict(d)


def test_samples_from_dict_keep_their_files_records():
    record = {"path": "/d/a.root", "size": 10, "sha256": "0" * 64}
    back = Recipe.from_dict({"samples": [{"name": "a", "files": [record], "scale": 2.0,
                                          "where": None}], "label": "sample"})
    assert isinstance(back.samples[0], samples.Sample)
    assert back.samples[0].files == ["/d/a.root"] and back.samples[0].records == [record]


def test_every_row_is_written_and_those_without_features_that_fail_are_not_scored(table):
    frame = table.frame.copy()
    frame.loc[[3, 4], "px"] = np.nan
    frame.loc[4, "n"] = 3  # passes (n >= 2) with a missing feature: the predictor's to refuse
    frame.loc[3, "n"] = 0  # fails, and has no px: not scored
    made = Recipe.of_options(where="n >= 2")
    seen = []

    def predict(tables):  # scores each row by its px, as a stand-in for a network
        for t in tables:
            seen.append(len(t.frame))
            for start in range(0, len(t.frame), 7):  # in slices, as predict_chunks gives them
                part = t.frame.iloc[start:start + 7]
                yield t, pd.DataFrame({"score": part.px * 2}, index=part.index)

    chunks = [Table(frame.iloc[:20], name="t"), Table(frame.iloc[20:].reset_index(drop=True),
                                                      name="t")]
    out = list(every_row(predicting(made, chunks, ["px"]), predict, ["px"]))
    assert [len(t.frame) for t, _ in out] == [20, 30] and seen == [19, 30]
    scores = pd.concat([p for _, p in out], ignore_index=True).score
    assert np.isnan(scores[3]) and np.isnan(scores[4])  # not scored; scored NaN
    np.testing.assert_array_equal(scores.drop([3, 4]), (frame.px * 2).drop([3, 4]))
    assert out[0][0].frame[SELECTED].tolist()[3:5] == [0, 1]


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_definition_is_refused_in_one_line(text):
    with pytest.raises(FcnnError, match="write NAME=EXPR") as e:
        Recipe.of_options(define=[text])
    assert e.value.options == ("define",) and "\n" not in str(e.value)


@pytest.mark.parametrize("weight, value", [("pi", np.pi), ("2", 2.0)])
def test_a_weight_that_is_a_constant_is_no_column(table, weight, value):
    made = Recipe.of_options(weight=weight)
    assert made.weight_column == WEIGHT and made.needs([]) == []
    np.testing.assert_allclose(made.apply(table).frame[WEIGHT], value)


def test_a_weight_named_by_no_identifier_of_the_language_is_evaluated(table):
    with pytest.raises(FcnnError, match="unexpected character"):
        Recipe.of_options(weight="wé")
    made = Recipe.of_options(weight="`wé`")
    frame = table.frame.rename(columns={"w": "wé"})
    np.testing.assert_array_equal(made.apply(Table(frame, name="t")).frame[WEIGHT], frame["wé"])


@pytest.mark.parametrize("spec", ["Muon:0", " :2", "Muon"])
def test_an_objects_spec_is_checked_by_one_rule(spec):
    from fcnn_cli.data.expressions import collection

    with pytest.raises(FcnnError) as alone:
        collection(spec)
    with pytest.raises(FcnnError) as recipe_error:
        Recipe.of_options(objects=[spec])
    assert str(recipe_error.value) == str(alone.value) and \
        recipe_error.value.options == ("objects",)


def test_a_name_defined_twice_is_one_message_wherever_found():
    from fcnn_cli.data.expressions import definitions, derive

    with pytest.raises(FcnnError) as given:
        Recipe.of_options(define=["x=1", "x=2"])
    with pytest.raises(FcnnError) as derived:
        derive(pd.DataFrame({"a": [1.0]}), definitions(["x=1"]) * 2)
    assert str(given.value) == str(derived.value)


def test_predict_needs_no_column_of_a_samples_own_selection(table):
    made = Recipe.of_options(samples=["sig=a.csv", {"name": "bkg", "files": ["b.csv"],
                                                    "where": "w > 0"}], define=["pt=px"])
    raw = Table(table.frame.drop(columns="w"), name="t.csv")
    (out,) = predicting(made, [raw], ["pt"])
    assert len(out.frame) == len(raw.frame)
    assert made.needs(["pt"], sample=made.samples[1]) == ["px", "w"]


def test_evaluate_cuts_a_sample_as_training_did_and_says_so(table, tmp_path):
    from fcnn_cli.data.applying import evaluating, evaluation_notes, for_evaluation

    path = tmp_path / "b.csv"
    table.frame.to_csv(path, index=False)
    model = Recipe.of_options(samples=["sig=a.csv", {"name": "bkg", "files": ["b.csv"],
                                                     "where": "n >= 2"}])
    task = type("Task", (), {"classes": ["sig", "bkg"], "target": "sample"})()
    given = samples.of_options([f"bkg={path}"])
    made = for_evaluation(model, [s.find() for s in given], task=task)
    tally = {"removed": 0, "kept": 0}
    rows = sum(len(t.frame) for t in evaluating(made, [(made.samples[0], str(path))], [],
                                                tally))
    assert rows == int((table.frame.n >= 2).sum()) == tally["kept"]
    notes = evaluation_notes(made, tally, True, False, model)
    assert notes["samples"][0]["where_of_the_model"] == "n >= 2"
    assert notes["selection"]["rows_removed"] == len(table.frame) - rows


def test_evaluate_leaves_out_rows_of_weight_0_as_training_does(table, tmp_path):
    from fcnn_cli.data.applying import evaluating, evaluation_notes

    frame = table.frame.assign(w=np.where(table.frame.n == 0, 0.0, table.frame.w))
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    made = Recipe.of_options(weight="w")
    tally = {"removed": 0, "kept": 0}
    out = pd.concat([t.frame for t in evaluating(made, [(None, str(path))], [], tally)])
    zero = int((frame.n == 0).sum())
    assert zero and len(out) == len(frame) - zero and (out.w != 0).all()
    assert evaluation_notes(made, tally, True, True)["rows_of_weight_0"] == zero


def test_a_model_that_fills_scores_the_rows_that_fail_and_miss_a_feature(table):
    frame = table.frame.copy()
    frame.loc[3, ["px", "n"]] = [np.nan, 0]  # fails the selection, and has no px
    made = Recipe.of_options(where="n >= 2")

    def predict(tables):
        for t in tables:
            yield t, pd.DataFrame({"score": t.frame.px.fillna(-1.0)}, index=t.frame.index)

    (out,) = every_row(predicting(made, [Table(frame, name="t")], ["px"]), predict, ["px"],
                       fills=True)
    assert out[1].score[3] == -1.0 and not out[1].score.isna().any()


@pytest.mark.parametrize("change", [
    lambda d: d.update(label="s" * 1_000_000),
    lambda d: d.update(objects=["M" * 1_000_000 + ":2"], expanded=[]),
    lambda d: d.update(samples=[{"name": "s" * 1_000_000, "files": [], "scale": 1.0}]),
    lambda d: d.update(define=[[f"x{k}", "1"] for k in range(1_001)]),
], ids=["label", "object", "sample name", "definitions"])
def test_a_recipe_read_back_is_bounded_in_every_text_and_count(change):
    d = Recipe.of_options(define=["pt=px"]).to_dict()
    change(d)
    with pytest.raises(FcnnError, match="^recipe: ") as e:
        Recipe.from_dict(d)
    assert len(str(e.value)) < 400

def test_training_records_the_range_of_the_raw_columns_the_definitions_read(table):
    """Over the rows that pass the selection, NaN and infinities left out, table after table;
    kept with the recipe, and none where a recipe read back has none."""
    made = recipe(define=["pt=hypot(px, py)", "pt2=pt**2", "r=n / 2"], where="n >= 2")
    assert made.ranges == {}
    f = table.frame
    kept = f[f.n >= 2]
    made.apply(table)
    assert made.ranges == {c: [kept[c].min(), kept[c].max()] for c in ("px", "py", "n")}
    wide = f.assign(px=np.where(f.index == 0, np.inf, f.px * 10), py=np.nan, n=3)
    made.apply(Table(wide, name="u.csv"))
    finite = wide.px[np.isfinite(wide.px)]
    assert made.ranges["px"] == [min(kept.px.min(), finite.min()),
                                 max(kept.px.max(), finite.max())]
    assert made.ranges["py"] == [kept.py.min(), kept.py.max()]  # NaN widens nothing
    again = Recipe.from_dict(json.loads(json.dumps(made.to_dict())))
    assert again.ranges == made.ranges
    older = made.to_dict()
    del older["ranges"]
    assert Recipe.from_dict(older).ranges == {}
    assert "w" not in made.ranges  # the weight's column: no definition reads it


def test_a_sample_of_scale_1_beside_scaled_ones_weighs_1_each(table):
    made = Recipe.of_options(samples=["a=x.csv*2", "b=y.csv"])
    out = made.apply(table, made.samples[1]).frame
    np.testing.assert_array_equal(out[WEIGHT], np.ones(len(table.frame)))
    weighted = Recipe.of_options(samples=["a=x.csv*2", "b=y.csv"], weight="w * 2")
    np.testing.assert_array_equal(weighted.apply(table, weighted.samples[1]).frame[WEIGHT],
                                  table.frame.w * 2)


def test_evaluate_refuses_a_sample_without_the_weights_column(table, tmp_path):
    """Counting events would drop every sample's weights and scales unasked."""
    from fcnn_cli.data.applying import weighs

    table.frame.to_csv(tmp_path / "s.csv", index=False)
    table.frame.drop(columns="w").to_csv(tmp_path / "b.csv", index=False)
    made = Recipe.of_options(samples=[f"sig={tmp_path / 's.csv'}",
                                      f"bkg={tmp_path / 'b.csv'}*3"], weight="abs(w)").find()
    with pytest.raises(FcnnError, match=r"^sample 'bkg': .*b.csv has no column 'w', which the "
                                        r"model's weight abs\(w\) reads; .* --no-weight"):
        weighs(made, made.files())
    data = Recipe.of_options(weight="abs(w)")  # DATA alone: its events counted, as ever
    assert weighs(data, [str(tmp_path / "b.csv")]) is False


def test_the_columns_a_defined_label_reads_are_no_default_features(table):
    made = Recipe.of_options(define=["p2=px * 2", "lab=p2 > 0"])
    derived = made.apply(table)
    assert made.features(derived, ["lab"]) == ["py", "n", "w"]
    assert made.features(derived, ["n"]) is None  # a raw label: as training chooses


def test_a_definition_made_from_a_label_is_no_default_feature_and_refused_named(table, caplog):
    """px2 reads the label px, pxy px2: neither feeds the network the label; a definition of
    another label (r) from labels stays one."""
    made = Recipe.of_options(define=["px2=px * 2", "pxy=px2 + py", "nw=n * w"])
    derived = made.apply(table)
    assert made.given_away(["px"]) == {"px2": (["px"], []), "pxy": (["px"], ["px2"])}
    assert made.features(derived, ["px"]) == ["py", "n", "w", "nw"]
    recorded = Table(derived.frame, ["px"], name="t.csv")  # the label the file records
    assert made.features(recorded) == ["py", "n", "w", "nw"]
    assert "leaving out of the features 'px2' (made from the label 'px'), 'pxy' (made from " \
        "the label 'px' through 'px2'): the network would read the label off them" in caplog.text
    with pytest.raises(FcnnError, match="t.csv: feature 'pxy' is made from the label 'px' "
                                        "through 'px2'") as e:
        made.features(derived, ["px"], ["py", "pxy"])
    assert e.value.options == ("features",)
    assert made.features(derived, ["n"], ["py", "pxy"]) == ["py", "pxy"]
    both = Recipe.of_options(define=["s=px + py", "s2=s * 2"])
    assert both.given_away(["px", "py"]) == {"s": (["px", "py"], []),
                                              "s2": (["px", "py"], ["s"])}
    assert both.features(both.apply(table), ["px", "py"]) == ["n", "w"]
    assert "'s2' (made from the labels 'px', 'py' through 's')" in caplog.text


def test_a_definition_of_what_a_defined_label_reads_is_no_default_feature_but_may_be_named(
        caplog):
    """The usual energy calibration: the label k is made of E_true and E_reco; logE reads
    the measurement E_reco, not the label: named, a feature; by default left out with a line,
    as r=E_true*1 (the label's truth) is; a definition reading p, which the label is made of,
    gives it away."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"E_true": rng.uniform(1, 9, 20), "E_reco": rng.uniform(1, 9, 20),
                          "eta": rng.normal(size=20)})
    calibration = Recipe.of_options(define=["k=E_true / E_reco", "logE=log(E_reco)"])
    derived = calibration.apply(Table(frame, name="e.csv"))
    assert calibration.given_away(["k"]) == {}
    assert calibration.given_away(["k"], sources=True) == {"logE": (["k"], ["E_reco"])}
    named = ["logE", "eta", "E_reco"]
    assert calibration.features(derived, ["k"], named) == named
    assert "leaving out" not in caplog.text
    assert calibration.features(derived, ["k"]) == ["eta"]
    assert "e.csv: leaving out of the features 'logE' (made from the label 'k' through " \
        "'E_reco'): it may give the label away: name it in --features to keep it" in caplog.text
    made = Recipe.of_options(define=["p=E_true * 2", "k=p / E_reco", "q=p + 1", "r=E_true * 1"])
    assert made.given_away(["k"]) == {"q": (["k"], ["p"])}
    assert made.given_away(["k"], sources=True) == {"q": (["k"], ["p"]),
                                                     "r": (["k"], ["E_true"])}
    assert made.features(made.apply(Table(frame, name="e.csv")), ["k"]) == ["eta"]


def test_no_leak_is_said_of_the_weight(table, caplog):
    made = Recipe.of_options(define=["wt=1 + (px > 0)"], weight="wt")
    assert made.features(made.apply(table), ["px"]) == ["py", "n", "w"]
    assert "leaving out" not in caplog.text
    assert made.given_away(["px"]) == {"wt": (["px"], [])}


def test_definitions_added_come_after_those_they_use_and_before_those_that_use_them():
    """fcnn's t_first and dtp2 added to a run's definitions that use them: each placed
    where what it uses is made, the values those of numpy."""
    tp1, tp2 = np.array([3.0, np.nan, 7.0]), np.array([5.0, 2.0, np.nan])
    made = Recipe.of_options(define=["own=tp1 - t_first", "late=dtp2 * 2"]).defined_too(
        ["t_first=fmin(tp1, tp2)", "dtp2=tp2 - t_first"])
    assert [name for name, _ in made.define] == ["t_first", "own", "dtp2", "late"]
    frame = made.derive(Table(pd.DataFrame({"tp1": tp1, "tp2": tp2}), name="t")).frame
    first = np.fmin(tp1, tp2)
    np.testing.assert_array_equal(frame["own"], tp1 - first)
    np.testing.assert_array_equal(frame["late"], 2 * (tp2 - first))


def test_texts_in_use_order_are_the_texts_as_written():
    texts = ["a = b + 1", "`b c` = 2 * x", "b=`b c`"]
    assert in_use_order(texts) == ["`b c` = 2 * x", "b=`b c`", "a = b + 1"]
    with pytest.raises(FcnnError, match="^definition 'a' uses 'b', which uses 'a'") as error:
        in_use_order(["a=b", "b=a + 1"])
    assert error.value.options == ("define",)


def test_a_recipe_reads_back_the_ranges_of_every_column_its_definitions_read():
    """One definition may read more columns than a recipe may have definitions (t_first
    those of every station); a range of a column none reads is refused."""
    names = [f"c{k}" for k in range(1200)]
    made = Recipe.of_options(define=[f"first=fmin({', '.join(names)})"])
    made.ranges = {name: [0.0, 1.0] for name in names}
    assert Recipe.from_dict(made.to_dict()).ranges == made.ranges
    made.ranges["other"] = [0.0, 1.0]
    with pytest.raises(FcnnError, match="at most 1200 columns"):
        Recipe.from_dict(made.to_dict())


def test_making_keeps_the_definitions_that_make_the_names_in_order():
    made = Recipe.of_options(define=["p2=px * 2", "other=py + 1", "lab=p2 > 0", "q=lab * 2"])
    assert [n for n, _ in made.making(["lab"]).define] == ["p2", "lab"]
    assert made.making(["px"]).define == []
