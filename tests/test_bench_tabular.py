"""bench/tabular.py's parts: every table has one fixed split, the summary's arithmetic (within
one standard error of the best, ranks) is right, and --fcnn option sets are read as fcnn train
reads its options. No test runs the benchmark."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import tabular_summary as summary  # noqa: E402  (bench/ is a folder of scripts, not a package)
import tabular_tables  # noqa: E402
from tabular_methods import option_set  # noqa: E402

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


def test_within_one_standard_error_and_ranks_on_made_up_scores():
    # a is the best (0.9, SE 0.01); b is 0.015 behind, more than √(0.01² + 0.01²) = 0.0141;
    # c (SE 0) is 0.01 behind, no more than a's 0.01; d ties c's mean: they share ranks 2 and 3.
    table = {"a": [0.89, 0.91], "b": [0.875, 0.895], "c": [0.89, 0.89], "d": [0.88, 0.90]}
    judged = summary.judged(table, higher=True)
    assert judged["a"][:2] == pytest.approx((0.9, 0.01))
    assert judged["b"][:2] == pytest.approx((0.885, 0.01))
    assert [judged[m][2] for m in "abcd"] == [True, False, True, True]
    assert [judged[m][3] for m in "abcd"] == [1, 4, 2.5, 2.5]


def test_lower_is_better_for_rmse():
    judged = summary.judged({"a": [2.0, 2.2], "b": [1.0, 1.0]}, higher=False)
    assert judged["b"][2:] == (True, 1) and judged["a"][2:] == (False, 2)


def test_the_summary_counts_and_averages_over_the_tables_a_method_ran_on():
    judgements = {"t1": {"a": (1, 0, True, 1), "b": (0, 0, False, 2)},
                  "t2": {"a": (1, 0, False, 3), "b": (1, 0, True, 1), "c": (1, 0, True, 2)}}
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
