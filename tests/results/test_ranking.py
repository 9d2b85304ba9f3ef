"""Permutation importance: the order of the inputs, their spread, weights, raw columns."""

import numpy as np
import pytest

from fcnn_cli.data.recipe import Recipe
from fcnn_cli.data.tables import Table
from fcnn_cli.network.metrics import roc_auc
from fcnn_cli.results import ranking
from ranked import abc_frame, abc_model


@pytest.fixture(scope="module")
def classifier():
    return abc_model()


@pytest.fixture(scope="module")
def rows():
    return Table(abc_frame(2000, seed=7), ["label"])


def names(report):
    return [e["name"] for e in report["inputs"]]


def test_a_strong_feature_outranks_a_weak_one_and_an_unused_one(classifier, rows):
    report = ranking.Ranking(classifier, rows).rank(repeats=5, seed=1)
    assert report["metric"] == "roc_auc" and report["higher_is_better"]
    assert names(report) == ["a", "b", "c"]
    a, b, c = report["inputs"]
    assert a["mean"] > b["mean"] > 0 and len(c["drops"]) == 5
    assert abs(c["mean"]) <= 2 * c["std"] + 1e-3
    assert report["baseline"] == pytest.approx(ranking.Ranking(classifier, rows).score(rows))


def test_repeats_change_the_spread_not_the_order(classifier, rows):
    few = ranking.Ranking(classifier, rows).rank(repeats=2, seed=3)
    many = ranking.Ranking(classifier, rows).rank(repeats=8, seed=3)
    assert names(few) == names(many) == ["a", "b", "c"]
    assert [e["std"] for e in few["inputs"]] != [e["std"] for e in many["inputs"]]
    again = ranking.Ranking(classifier, rows).rank(repeats=2, seed=3)
    assert again == few  # seeded


def test_regression_ranks_by_the_rise_of_the_rmse():
    model = abc_model(kind="regress")
    rows = Table(abc_frame(1500, seed=8, kind="regress"), ["label"])
    report = ranking.Ranking(model, rows).rank(repeats=3)
    assert report["metric"] == "rmse" and not report["higher_is_better"]
    assert names(report)[:2] == ["a", "b"] and report["inputs"][0]["mean"] > 0


def test_weighted_score_is_the_weighted_roc_auc_by_hand(classifier, rows):
    scored = ranking.Ranking(classifier, rows, weight="w").score(rows)
    proba = classifier.task.proba(classifier.outputs(rows.frame[["a", "b", "c"]].to_numpy(
        np.float32)))
    truth = rows.frame["label"].to_numpy() == "sig"
    by_hand = roc_auc(truth, proba[:, 1], rows.frame["w"].to_numpy())
    assert scored == pytest.approx(by_hand, rel=1e-6)
    assert scored != pytest.approx(roc_auc(truth, proba[:, 1]), rel=1e-9)
    report = ranking.Ranking(classifier, rows, weight="w").rank(repeats=2)
    assert report["weighted"] and report["baseline"] == pytest.approx(by_hand, rel=1e-6)


def test_a_definitions_raw_columns_are_ranked_too():
    from fcnn_cli.engine import train

    recipe = Recipe.of_options(define=["s=a + 0.3 * b"])
    frame = abc_frame(3000, seed=0)
    table = recipe.derive(Table(frame, ["label"]))
    model = train.fit(table, train.TrainConfig(epochs=8, batch_size=64),
                      features=["s", "c"]).predictor
    rows = recipe.derive(Table(abc_frame(1500, seed=9), ["label"]))
    ranker = ranking.Ranking(model, rows, recipe)
    assert ranker.raw_inputs() == ["a", "b"]
    report = ranker.rank(repeats=3)
    kinds = {(e["name"], e["kind"]) for e in report["inputs"]}
    assert kinds == {("s", "feature"), ("c", "feature"), ("a", "raw"), ("b", "raw")}
    assert names(report)[0] == "s" or names(report)[0] == "a"
    mean = {e["name"]: e["mean"] for e in report["inputs"]}
    assert mean["a"] > mean["b"] > mean["c"] - 0.01
    shuffled = ranker.permuted("a", np.arange(len(rows.frame))[::-1], raw=True).frame
    assert np.allclose(shuffled["s"], shuffled["a"] + 0.3 * shuffled["b"])


def test_gather_samples_rows_seeded_and_refuses_past_the_budget(rows):
    chunks = [Table(rows.frame.iloc[i:i + 300], ["label"], name="t.csv") for i in
              range(0, 2000, 300)]
    one = ranking.gather(chunks, rows=500, seed=2)
    assert len(one.frame) == 500 and one.frame.equals(ranking.gather(chunks, 500, 2).frame)
    assert not one.frame.equals(ranking.gather(chunks, 500, 3).frame)
    assert len(ranking.gather(chunks).frame) == 2000
    with pytest.raises(Exception, match=r"^t.csv: its rows take more than .* --rows N$"):
        ranking.gather(chunks, budget=1000)


def test_correlations_per_class(rows, classifier):
    matrices = ranking.correlations(rows, ["a", "b", "c"], classifier.task)
    assert [t for t, _, _ in matrices] == ["bkg", "sig"]
    assert sum(n for _, _, n in matrices) == 2000
    whole = ranking.pearson(rows.frame[["a", "b"]].to_numpy())
    assert whole[0, 1] == pytest.approx(np.corrcoef(rows.frame.a, rows.frame.b)[0, 1])
    assert np.allclose(np.diag(matrices[0][1]), 1.0)


def test_weighted_correlations_per_class_are_numpys_with_the_weights(rows, classifier):
    w = np.random.default_rng(3).uniform(0.1, 5.0, len(rows.frame))
    rows.frame["w"] = w
    matrices = ranking.correlations(rows, ["a", "b"], classifier.task, weight="w")
    sig = classifier.task.truth(rows) == 1
    x = rows.frame[["a", "b"]].to_numpy()[sig]
    c = np.cov(x.T, aweights=w[sig])
    assert matrices[1][0] == "sig"
    assert matrices[1][1][0, 1] == pytest.approx(c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]))
