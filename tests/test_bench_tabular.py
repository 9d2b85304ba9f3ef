"""bench/tabular.py's parts: every table has one fixed split, the summary's arithmetic (the
paired bootstrap, within one standard error of the best, ranks) is right, --fcnn option sets
are read as fcnn train reads its options, and every method fits and returns the test split's
outputs in the labels' order. No test runs the benchmark."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import tabular_summary as summary  # noqa: E402  (bench/ is a folder of scripts, not a package)
import tabular_tables  # noqa: E402
import trees  # noqa: E402
from tabular_methods import METHODS, option_set  # noqa: E402

from fcnn_cli.core.errors import FcnnError  # noqa: E402

SMALL = [name for name in tabular_tables.TABLES if "-5k" not in name and "-20k" not in name]
LARGE = [name for name in tabular_tables.TABLES if name not in SMALL]


def _check_fixed_split(name):
    source = tabular_tables.TABLES[name]
    first, again = tabular_tables.split(name, source), tabular_tables.split(name, source)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(first.x[part], again.x[part])
        np.testing.assert_array_equal(first.y[part], again.y[part])
    frame, targets, kind = source.make()
    sizes = {part: len(first.y[part]) for part in ("train", "val", "test")}
    assert sum(sizes.values()) == len(frame) and kind == first.kind
    assert sizes["test"] == pytest.approx(tabular_tables.TEST_FRAC * len(frame), abs=12)
    assert sizes["val"] == pytest.approx(tabular_tables.VAL_FRAC * len(frame), abs=12)
    # Disjoint and complete: the parts' rows, put together, are the table's rows.
    parts = np.concatenate([first.frames[p].to_numpy() for p in ("train", "val", "test")])
    whole = frame.to_numpy()
    np.testing.assert_array_equal(parts[np.lexsort(parts.T)], whole[np.lexsort(whole.T)])
    if kind == "classify":  # every class in every part
        classes = set(np.unique(first.y["train"]))
        assert classes == set(range(first.classes))
        assert set(np.unique(first.y["test"])) == set(np.unique(first.y["val"])) == classes


@pytest.mark.parametrize("name", SMALL)
def test_every_table_has_one_fixed_split(name):
    _check_fixed_split(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGE)
def test_every_large_table_has_one_fixed_split(name):
    _check_fixed_split(name)


def test_the_mixture_optimum_is_the_likelihood_ratio_of_its_densities():
    from scipy.stats import multivariate_normal

    x = np.random.default_rng(1).standard_normal((5, tabular_tables.MIXTURE_DIMS))
    for label, components in tabular_tables.MIXTURE.items():
        density = sum(weight * multivariate_normal(
            tabular_tables._mixture_mean((weight, mean, sigma), x.shape[1]),
            sigma ** 2).pdf(x) for weight, mean, sigma in components)
        np.testing.assert_allclose(tabular_tables.mixture_log_density(x, label),
                                   np.log(density))


def test_the_mass_label_is_the_invariant_mass_of_the_features():
    frame, _, _ = tabular_tables._mass(50)
    energy = frame["E1"] + frame["E2"]
    momentum = [frame[f"p{a}1"] + frame[f"p{a}2"] for a in "xyz"]
    mass = np.sqrt(energy ** 2 - sum(p ** 2 for p in momentum))
    np.testing.assert_allclose(mass, frame["mass"], rtol=1e-6)
    for k in (1, 2):  # massless daughters
        p2 = sum(frame[f"p{a}{k}"] ** 2 for a in "xyz")
        np.testing.assert_allclose(frame[f"E{k}"] ** 2, p2, rtol=1e-6)


def _made_up(rows=400, seed=0):
    """Two-class truth and the scores of a good classifier of it."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, rows)
    signal = np.clip(truth + rng.normal(0, 0.6, rows), -1, 2)
    return truth, signal


def _proba(signal):
    p1 = 1 / (1 + np.exp(-3 * (signal - 0.5)))
    return np.stack([1 - p1, p1], 1)


def test_a_copy_of_the_best_is_within_and_one_worse_on_every_resample_is_not():
    truth, signal = _made_up()
    best = _proba(signal)
    worse = _proba(signal + np.random.default_rng(5).normal(0, 1.5, len(signal)))
    outputs = {"best": [best, best], "copy": [best, best], "worse": [worse, worse]}
    seed_scores = {m: [summary.scores("classify", truth, o)["auc"] for o in runs]
                   for m, runs in outputs.items()}
    judged = summary.judged("auc", truth, outputs, seed_scores)
    assert judged["copy"].within and judged["copy"].behind == 0
    assert judged["copy"].behind_se == 0 and judged["copy"].rank == 1.5
    # Behind on every resample: the gap exceeds its bootstrap standard error many times over.
    counts = summary.resamples(len(truth))
    gap = summary.resampled("auc", truth, best, counts) - \
        summary.resampled("auc", truth, worse, counts)
    assert (gap > 0).all()
    assert not judged["worse"].within and judged["worse"].rank == 3
    assert judged["worse"].behind_se == pytest.approx(gap.std(ddof=1))
    assert judged["worse"].behind > 3 * judged["worse"].behind_se


def test_the_standard_error_averages_each_resample_over_the_seeds():
    # Per resample, each method's score is the mean of its seeds' scores on that resample.
    truth = np.array([1.0, 2.0, 3.0, 4.0])[:, None]
    outputs = {"a": [truth + 0.1, truth - 0.3], "b": [truth + 1.0, truth + 2.0]}
    seed_scores = {m: [trees.rmse(truth, o) for o in runs] for m, runs in outputs.items()}
    judged = summary.judged("rmse", truth, outputs, seed_scores)
    assert judged["a"].mean == pytest.approx(0.2) and judged["a"].behind == 0
    # Constant errors: every resample scores a seed as the whole test split does.
    assert judged["b"].behind == pytest.approx(1.3)
    assert judged["b"].behind_se == pytest.approx(0, abs=1e-12) and not judged["b"].within


def test_the_resamples_draw_every_row_as_often_as_the_test_split_has_rows():
    counts = summary.resamples(7, count=2000, seed=3)
    assert counts.shape == (2000, 7) and (counts.sum(1) == 7).all()
    assert counts.mean() == pytest.approx(1, abs=0.03)
    np.testing.assert_array_equal(counts, summary.resamples(7, count=2000, seed=3))


@pytest.mark.parametrize("score", ["auc", "accuracy", "rmse"])
def test_resampled_scores_are_scikit_learns_with_the_counts_as_weights(score):
    from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score

    truth, signal = _made_up(60, seed=2)
    signal = np.round(signal, 1)  # ties, which count half
    counts = summary.resamples(60, count=5, seed=1)
    if score == "rmse":
        out, truth = signal[:, None], truth[:, None] * 1.0
        expected = [np.sqrt(mean_squared_error(truth, out, sample_weight=w)) for w in counts]
    elif score == "auc":
        out = _proba(signal)
        expected = [roc_auc_score(truth, out[:, 1], sample_weight=w) for w in counts]
    else:
        out = _proba(signal)
        expected = [accuracy_score(truth, out.argmax(1), sample_weight=w) for w in counts]
    np.testing.assert_allclose(summary.resampled(score, truth, out, counts), expected)


def test_lower_is_better_for_rmse():
    truth = np.zeros((3, 1))
    outputs = {"a": [truth + 2.0, truth + 2.2], "b": [truth + 1.0, truth + 1.0]}
    judged = summary.judged("rmse", truth, outputs,
                            {m: [trees.rmse(truth, o) for o in r] for m, r in outputs.items()})
    assert (judged["b"].within, judged["b"].rank) == (True, 1)
    assert (judged["a"].within, judged["a"].rank) == (False, 2)


def test_the_summary_counts_and_averages_over_the_tables_a_method_ran_on():
    def row(within, rank):
        return summary.Judged(1, 0, 0, 0, within, rank)

    judgements = {"t1": {"a": row(True, 1), "b": row(False, 2)},
                  "t2": {"a": row(False, 3), "b": row(True, 1), "c": row(True, 2)}}
    assert summary.summary(judgements) == {"a": (1, 2, 2.0), "b": (1, 2, 1.5),
                                           "c": (1, 1, 2.0)}


def test_the_standard_error_of_one_seed_is_zero():
    assert summary.mean_se([3.0]) == (3.0, 0.0)
    assert summary.mean_se([1.0, 2.0, 6.0]) == pytest.approx((3.0, math.sqrt(7 / 3)))


def test_scores_against_their_definitions():
    truth = np.array([0, 1, 1, 0])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1]])
    # Positives score 0.7 and 0.4, negatives 0.2 and 0.1: every pair ordered, AUC 1.
    assert summary.scores("classify", truth, proba) == {"accuracy": 0.75, "auc": 1.0}
    out = np.array([[1.0, 2.0], [3.0, 5.0]])
    assert summary.scores("regress", np.zeros((2, 2)), out)["rmse"] == \
        pytest.approx(math.sqrt((1 + 4 + 9 + 25) / 4))
    assert [summary.score_name(k, c) for k, c in
            (("classify", 2), ("classify", 3), ("regress", 0))] == ["auc", "accuracy", "rmse"]


def test_an_option_set_splits_into_network_and_training_options():
    name, method = option_set("wide=width=128,lr=3e-3,arch=resnet,scale=max")
    assert name == "fcnn wide"
    assert method.net == {"width": 128, "arch": "resnet"}
    assert method.train == {"lr": 0.003, "scale": "max"}


@pytest.mark.parametrize("text", ["wide", "wide=", "x=nonsense=1", "x=seed=3", "x=lr=-1",
                                  "x=width=wide", "x=arch=none-such"])
def test_a_bad_option_set_is_refused(text):
    with pytest.raises(FcnnError):
        option_set(text)


# Each method family once, small: fcnn for 2 epochs; the slow peers marked so.
ADAPTERS = [pytest.param("fcnn", option_set("short=epochs=2")[1], id="fcnn"),
            pytest.param("recipe", option_set("short=epochs=2,ensemble=2,scale=robust")[1],
                         id="fcnn-ensemble"),
            pytest.param("sklearn", METHODS["scikit-learn MLP"][0], id="sklearn-mlp"),
            pytest.param("lightgbm", METHODS["LightGBM"][0], id="lightgbm"),
            pytest.param("sklearn", METHODS["HistGradientBoosting"][0], id="hgb",
                         marks=pytest.mark.slow),
            pytest.param("pytabkit", METHODS["RealMLP"][0], id="realmlp",
                         marks=pytest.mark.slow)]


@pytest.mark.parametrize("table", ["wine", "diabetes"])
@pytest.mark.parametrize(("library", "method"), ADAPTERS)
def test_every_method_returns_the_test_outputs_in_the_labels_order(library, method, table):
    if library not in ("fcnn", "recipe"):
        pytest.importorskip(library)
    data = tabular_tables.split(table, tabular_tables.TABLES[table])
    out, seconds = method(data, 0, 1)
    truth = data.y["test"]
    assert seconds > 0
    if data.kind == "classify":
        assert out.shape == (len(truth), 3)
        np.testing.assert_allclose(out.sum(1), 1, rtol=1e-5)
        # Classes in another order would score far below a third of the rows.
        assert trees.accuracy(truth, out) > 0.6
    else:
        assert out.shape == (len(truth), 1)
        # In the label's units: better than predicting the training mean.
        assert trees.rmse(truth, out) < trees.rmse(truth, np.full_like(truth, truth.mean()))
