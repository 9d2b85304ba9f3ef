"""The overtraining check at the end of a training: the values compared (true class's
probability, residuals), the held-out split, the bounded seeded sample, weights, k-fold's
pair, the correlations; and that every kind of training runs it."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from fcnn_cli.core.config import TrainConfig
from fcnn_cli.data import simulate, sources
from fcnn_cli.data.preprocess import Scaler
from fcnn_cli.data.tables import Table
from fcnn_cli.engine import overtrain, train
from fcnn_cli.network import overtraining
from fcnn_cli.network.tasks import Classification, Regression


class Known:
    """A predictor whose outputs are its rows' features (an ensemble's: ``members`` copies,
    member m's shifted by m), so that each split's outputs are known."""

    chunk_rows = 7  # outputs come in many blocks, as a large split's do

    def __init__(self, members=None):
        self.members = members

    def outputs_of(self, blocks, scaled=False):
        for key, x in blocks:
            x = np.asarray(x, np.float64)
            yield key, x if self.members is None else \
                np.stack([x + m for m in range(self.members)])


class Data:
    """Prepared rows: each split given as (x, truth, weight), served in chunks of 13 rows."""

    def __init__(self, task, features, train, val, test=None, folds=None):
        self.task, self.features, self.folds = task, features, folds
        empty = (np.zeros((0, train[0].shape[1])), train[1][:0], None)
        self.splits = {"train": train, "val": val, "test": test or empty}
        self.sizes = {name: len(s[0]) for name, s in self.splits.items()}

    def chunks(self, name):
        x, truth, weight = self.splits[name]
        for i in range(0, len(x), 13):
            yield x[i:i + 13], truth[i:i + 13], None if weight is None else weight[i:i + 13]

    @staticmethod
    def scaled(name):
        return False


def regression(train_residual, held_residual, weights=(None, None), test=False):
    """Data whose network predicts its feature and whose labels are 0: the residuals are the
    features."""
    task = Regression(["t"], Scaler.fit("none", np.zeros((2, 1)), ["t"]))
    sides = [(np.asarray(r, np.float64)[:, None], np.zeros((len(r), 1)), w)
             for r, w in zip((train_residual, held_residual), weights)]
    if test:  # a validation split beside the test split: the check must not take it
        return Data(task, ["f"], sides[0], (np.full((5, 1), 99.0), np.zeros((5, 1)), None),
                    sides[1])
    return Data(task, ["f"], *sides)


def checked(data, rows=overtrain.ROWS):
    """The check as a run makes it (:func:`overtrain.check`, which ``attach`` calls)."""
    return overtrain.check(Known(), data, seed=1, rows=rows)[0]


def scipy_p(statistic, n, m):
    """The asymptotic p-value, from scipy's Kolmogorov distribution."""
    return special.kolmogorov(statistic * np.sqrt(n * m / (n + m)))


def test_regression_residuals_against_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=400), rng.normal(0.1, 1.0, size=300)
    found = checked(regression(a, b))
    group = found["groups"]["t"]
    expected = stats.ks_2samp(a, b)
    assert group["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert group["p_value"] == pytest.approx(scipy_p(expected.statistic, 400, 300), rel=1e-9)
    assert found["splits"] == ["train", "val"] and found["rows"] == [400, 300]
    assert found["overtrained"] == [] and "warning" not in found


def test_a_shifted_held_out_distribution_warns_and_names_the_label():
    rng = np.random.default_rng(1)
    found = checked(regression(rng.normal(size=500), rng.normal(0.5, 1.0, size=500)))
    assert found["overtrained"] == ["t"]
    assert found["groups"]["t"]["p_value"] < 1e-6
    assert "label 't'" in found["warning"]


def test_the_held_out_rows_are_the_test_split_where_there_is_one():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=200), rng.normal(size=150)
    found = checked(regression(a, b, test=True))
    assert found["splits"] == ["train", "test"] and found["rows"] == [200, 150]
    assert found["groups"]["t"]["statistic"] == pytest.approx(stats.ks_2samp(a, b).statistic)


def test_integer_weights_count_as_repeated_rows():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=120), rng.normal(size=90)
    wa, wb = rng.integers(1, 4, size=120).astype(float), rng.integers(1, 4, size=90) * 1.0
    found = checked(regression(a, b, (wa, wb)))["groups"]["t"]
    repeated = stats.ks_2samp(np.repeat(a, wa.astype(int)), np.repeat(b, wb.astype(int)))
    assert found["statistic"] == pytest.approx(repeated.statistic, abs=1e-12)
    n_eff = [w.sum() ** 2 / (w * w).sum() for w in (wa, wb)]
    assert found["effective_rows"] == pytest.approx(n_eff)
    assert found["p_value"] == pytest.approx(scipy_p(repeated.statistic, *n_eff), rel=1e-9)


def classification(classes, train_logits, train_class, held_logits, held_class):
    task = Classification("c", list(classes))
    return Data(task, [f"f{j}" for j in range(len(classes))],
                (train_logits, np.asarray(train_class), None),
                (held_logits, np.asarray(held_class), None))


def test_two_classes_compare_the_second_class_probability_class_by_class():
    rng = np.random.default_rng(4)
    logits = [rng.normal(size=(n, 2)) for n in (300, 200)]
    truth = [rng.integers(0, 2, size=n) for n in (300, 200)]
    found = checked(classification("ab", logits[0], truth[0], logits[1], truth[1]))
    p_b = [1 / (1 + np.exp(x[:, 0] - x[:, 1])) for x in logits]  # softmax's second column
    for k, name in enumerate("ab"):
        expected = stats.ks_2samp(p_b[0][truth[0] == k], p_b[1][truth[1] == k]).statistic
        assert found["groups"][name]["statistic"] == pytest.approx(expected, abs=1e-12)
    assert found["classes_left_out"] == 0
    hist = found["groups"]["a"]["histograms"]  # kept as sums of weights, the densities left
    expected = np.histogram(p_b[0][truth[0] == 0], hist["edges"])[0]
    np.testing.assert_array_equal(hist["train"]["content"], expected)
    assert set(hist["train"]) == {"content", "error", "below", "above", "sum_of_weights"}


def test_histograms_are_kept_for_the_first_classes_alone():
    rng = np.random.default_rng(9)
    k = overtrain.HISTOGRAMS + 3
    logits = [rng.normal(size=(n, k)) for n in (400, 300)]
    truth = [np.arange(n) % k for n in (400, 300)]
    found = checked(classification([f"c{j}" for j in range(k)], logits[0], truth[0],
                                   logits[1], truth[1]))
    kept = [name for name, g in found["groups"].items() if "histograms" in g]
    assert kept == [f"c{j}" for j in range(overtrain.HISTOGRAMS)]
    assert all("p_value" in g for g in found["groups"].values()) and len(found["groups"]) == k


def test_several_classes_compare_each_rows_true_class_probability():
    rng = np.random.default_rng(5)
    logits = [rng.normal(size=(n, 3)) for n in (300, 240)]
    truth = [rng.integers(0, 3, size=n) for n in (300, 240)]
    found = checked(classification("abc", logits[0], truth[0], logits[1], truth[1]))
    proba = [np.exp(x) / np.exp(x).sum(axis=1, keepdims=True) for x in logits]
    for k, name in enumerate("abc"):
        expected = stats.ks_2samp(proba[0][truth[0] == k, k], proba[1][truth[1] == k, k])
        assert found["groups"][name]["statistic"] == pytest.approx(expected.statistic,
                                                                   abs=1e-12)


def test_the_sample_is_uniform_bounded_seeded_and_read_across_chunks():
    x = np.arange(1000, dtype=np.float64)[:, None]  # each row's feature: its position
    data = regression(x[:, 0], x[:50, 0])
    first, truth, weight, picked = overtrain.sample(data, "train", 100, seed=(7, 0))
    assert len(first) == 100 and len(np.unique(picked)) == 100 and weight is None
    np.testing.assert_array_equal(first[:, 0], picked)  # the rows at those positions
    again = overtrain.sample(data, "train", 100, seed=(7, 0))[0]
    np.testing.assert_array_equal(again, first)
    other = overtrain.sample(data, "train", 100, seed=(8, 0))[0]
    assert not np.array_equal(other, first)
    # Uniform: 200 draws of 100 of 1000 rows put each tenth of the rows near 10 a draw.
    tenths = np.bincount(np.concatenate([
        overtrain.sample(data, "train", 100, seed=(s, 0))[3] // 100 for s in range(200)]))
    assert stats.chisquare(tenths).pvalue > 0.001
    assert checked(data, rows=60)["rows"] == [60, 50]


def test_rows_of_non_finite_outputs_are_left_out_and_counted():
    a = np.r_[np.random.default_rng(6).normal(size=100), np.nan, np.inf]
    found = checked(regression(a, np.zeros(10)))
    assert found["rows"] == [100, 10] and found["non_finite"] == [2, 0]


def test_folds_compare_a_network_that_trained_on_a_row_with_its_own_fold(monkeypatch):
    """Member m's output is the feature + m; rows in fold f: the trained-on side takes member
    (f + 1) mod K, the out-of-fold side member f, on two disjoint halves of the rows."""
    k, n = 3, 90
    fold = np.repeat(np.arange(k), n // k)
    data = regression(np.zeros(n), np.zeros(n))
    data.splits["val"] = (np.zeros((n, 1)), np.zeros((n, 1)), None)
    data.folds = type("Folds", (), {"k": k, "of_val": lambda self: fold})()
    seen = {}

    def record(a, b, names, wa=None, wb=None, alarm=None):
        seen.update(a=a[:, 0], b=b[:, 0])
        return overtraining.summary({}, "label")
    monkeypatch.setattr(overtraining, "per_label", record)
    found, train_sample = overtrain.check(Known(members=k), data, seed=1)
    assert found["splits"] == ["trained on (in fold)", "out of fold"]
    assert len(seen["a"]) + len(seen["b"]) == n and abs(len(seen["a"]) - len(seen["b"])) <= 1
    # Each side's values are members' indices; together they hold every row once.
    assert np.bincount(seen["a"].astype(int), minlength=k).sum() == len(seen["a"])
    counts = np.bincount(np.r_[(seen["a"] - 1) % k, seen["b"]].astype(int), minlength=k)
    np.testing.assert_array_equal(counts, [n // k] * k)
    assert len(train_sample[0]) == n  # the correlations take every sampled row


def numpy_correlations(x, weight=None):
    """Pearson's correlations as numpy gives them: ``np.cov`` with ``aweights``."""
    cov = np.cov(x.T, aweights=weight)
    scale = np.sqrt(np.diag(cov))
    return cov / np.outer(scale, scale)


def as_array(matrix):
    return np.array(matrix["matrix"], dtype=np.float64)  # None: NaN


def correlated(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    x[:, 1] += x[:, 0]
    x[:, 2] = 5.0  # constant: no correlation
    return x, rng.integers(0, 2, size=n)


def test_correlations_per_class_as_numpy_gives_them():
    x, truth = correlated(400, 8)
    task = Classification("c", ["a", "b"])
    found = overtrain.correlations((x, truth, None), task, ["u", "v", "w"])
    assert found["features"] == ["u", "v", "w"] and found["weighted"] is False
    for k, matrix in enumerate(found["matrices"]):
        assert matrix["title"] == "ab"[k] and matrix["rows"] == (truth == k).sum()
        m = as_array(matrix)
        np.testing.assert_allclose(m[:2, :2], numpy_correlations(x[truth == k][:, :2]),
                                   atol=1e-12)
        assert np.isnan(m[2]).all() and np.isnan(m[:, 2]).all()
    many = [f"f{j}" for j in range(overtrain.MAX_FEATURES + 1)]
    assert overtrain.correlations((np.zeros((5, len(many))), truth[:5], None), task,
                                  many) is None


def test_a_levels_index_is_left_out_of_the_correlations():
    x, truth = correlated(400, 8)
    task = Classification("c", ["a", "b"])
    found = overtrain.correlations((x[:, [2, 0, 1]], truth, None), task,
                                   ["station=<index>", "u", "v"])
    assert found["features"] == ["u", "v"]
    for k, matrix in enumerate(found["matrices"]):
        np.testing.assert_allclose(as_array(matrix), numpy_correlations(x[truth == k][:, :2]),
                                   atol=1e-12)
    assert overtrain.correlations((x[:, 1:2], truth, None), task, ["station=<index>"]) is None


def test_weighted_correlations_are_numpys_with_the_event_weights():
    """Weights that grow with the first feature change its correlation with the second: the
    matrices are numpy's weighted ones, not the counted ones."""
    x, truth = correlated(600, 10)
    weight = np.exp(x[:, 0])
    task = Classification("c", ["a", "b"])
    found = overtrain.correlations((x, truth, weight), task, ["u", "v", "w"])
    assert found["weighted"] is True
    for k, matrix in enumerate(found["matrices"]):
        rows = truth == k
        assert matrix["sum_of_weights"] == pytest.approx(weight[rows].sum())
        expected = numpy_correlations(x[rows][:, :2], weight[rows])
        np.testing.assert_allclose(as_array(matrix)[:2, :2], expected, atol=1e-12)
        assert abs(expected[0, 1] - numpy_correlations(x[rows][:, :2])[0, 1]) > 0.01
        assert np.isnan(as_array(matrix)[2]).all()  # constant, weighted or not


def test_negative_weights_count_as_they_are_and_no_sum_above_zero_gives_no_matrix():
    """A row of weight −1 takes away its copy of weight +1: rows and cancelling pairs give
    the rows' own correlations. A class whose weights sum to 0 or less has no matrix."""
    x, _ = correlated(300, 11)
    extra = np.random.default_rng(12).normal(size=(50, 3)) * [1.0, -3.0, 0.0] + [0, 0, 5.0]
    rows = np.concatenate([x, extra, extra])
    weight = np.r_[np.ones(300), np.ones(50), -np.ones(50)]
    truth = np.zeros(len(rows), np.int64)
    truth[-20:] = 1  # class b: weights −1 alone
    task = Classification("c", ["a", "b"])
    found = overtrain.correlations((rows, truth, weight), task, ["u", "v", "w"])
    a, b = found["matrices"]
    kept = np.r_[x, extra[30:]]  # class a: the last 20 −1 rows are b's, their copies stay
    np.testing.assert_allclose(as_array(a)[:2, :2], numpy_correlations(kept[:, :2]),
                               atol=1e-12)
    assert b["sum_of_weights"] == -20 and np.isnan(as_array(b)).all()


def test_the_check_hands_its_weighted_training_sample_to_the_correlations():
    rng = np.random.default_rng(13)
    a, wa = rng.normal(size=80), rng.uniform(0.5, 2.0, size=80)
    found, (x, truth, weight) = overtrain.check(
        Known(), regression(a, rng.normal(size=40), (wa, None)), seed=1)
    assert found["rows"] == [80, 40]
    np.testing.assert_array_equal(x[:, 0], a)  # every row sampled, in order
    np.testing.assert_array_equal(weight, wa)


def quakes(n=600):
    return simulate.earthquakes(n=n, seed=3)


def test_a_single_network_an_ensemble_and_folds_each_check_at_the_end():
    config = dict(epochs=2, batch_size=64, threads=1, seed=2)
    net = {"depth": 2, "width": 16}
    for options, splits in (({}, ["train", "test"]),
                            ({"ensemble": 2}, ["train", "test"]),
                            ({"folds": 3}, ["trained on (in fold)", "out of fold"])):
        result = train.fit(quakes(), TrainConfig(**config, **options), net=net)
        assert result.overtraining["splits"] == splits, options
        assert set(result.overtraining["groups"]) == {"x", "y"}
        assert result.correlations["features"] == result.predictor.features
    assert sum(result.overtraining["rows"]) == 600  # k-fold's halves: every row once


def test_a_streamed_run_checks_its_rows(quake_file):
    result = train.fit(sources.open_source(quake_file), TrainConfig(
        epochs=1, batch_size=256, stream=True, threads=1))
    held = "test" if result.sizes["test"] else "val"
    assert result.overtraining["rows"] == [result.sizes["train"], result.sizes[held]]
    assert 0 <= result.overtraining["groups"]["x"]["p_value"] <= 1


def test_the_warning_is_logged_and_kept_among_the_runs_warnings(monkeypatch, caplog):
    def alarming(predictor, data, seed, rows=overtrain.ROWS):
        return overtraining.summary({"x": {"p_value": 1e-5}}, "label"), None
    monkeypatch.setattr(overtrain, "check", alarming)
    caplog.set_level(logging.WARNING, logger="fcnn_cli")
    table = Table(quakes(200).frame, ["x", "y"], name="q")
    result = train.fit(table, TrainConfig(epochs=1, threads=1), net={"depth": 1, "width": 8})
    assert result.warnings == [result.overtraining["warning"]]
    assert result.overtraining["warning"] in caplog.text


def _run(tmp_path, *args):
    from click.testing import CliRunner

    from fcnn_cli.commands import cli

    out = CliRunner().invoke(cli, ["train", *map(str, args), "-o", str(tmp_path / "run")])
    assert out.exit_code == 0, out.output
    return out.output, json.loads((tmp_path / "run" / "metrics.json").read_text())


@pytest.mark.slow
def test_a_network_made_to_overfit_gets_the_warning(tmp_path):
    """Two overlapping Gaussian classes, 200 training rows, a wide deep net without dropout
    trained for many epochs. The run keeps the epoch of the best validation loss, which
    stops an overfit as early stopping would; so the validation rows are the training rows
    themselves (the kept network is the last, the most overfit) and the test rows are held
    out."""
    rng = np.random.default_rng(0)
    c = rng.integers(0, 2, 400)
    frame = pd.DataFrame(rng.normal(size=(400, 5)) + 0.5 * c[:, None],
                         columns=[f"f{j}" for j in range(5)])
    frame["label"] = np.where(c, "signal", "background")
    frame.iloc[:200].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[200:].to_csv(tmp_path / "test.csv", index=False)
    output, metrics = _run(tmp_path, tmp_path / "train.csv", "--val", tmp_path / "train.csv",
                           "--test", tmp_path / "test.csv", "-t", "label", "--width", 256,
                           "--depth", 4, "--dropout", 0, "--ema", 0, "--patience", 0,
                           "--epochs", 200, "--threads", 1)
    check = metrics["overtraining"]
    assert check["overtrained"] == ["background", "signal"]
    assert all(g["p_value"] < 1e-3 for g in check["groups"].values())
    assert check["warning"] in " ".join(output.split())  # the line, as the console wraps it


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["earthquakes", "galaxies"])
def test_the_default_run_of_each_simulator_stays_silent(tmp_path, simulator):
    """``fcnn simulate <simulator>`` and ``fcnn train`` with their defaults, but for the
    epochs: the default 60 take minutes on two cores (both default runs stay silent with them
    too, as docs/training.md records); 15 keep the test short."""
    from click.testing import CliRunner

    from fcnn_cli.commands import cli

    data = tmp_path / f"{simulator}.parquet"
    made = CliRunner().invoke(cli, ["simulate", simulator, "-o", str(data)])
    assert made.exit_code == 0, made.output
    output, metrics = _run(tmp_path, data, "--epochs", 15)
    check = metrics["overtraining"]
    assert check["overtrained"] == [] and "warning" not in check
    assert "overtraining" not in output
    assert min(g["p_value"] for g in check["groups"].values()) >= overtraining.ALARM_P_VALUE


@pytest.mark.parametrize("scale, weighted", [("standard", False), ("minmax", False),
                                             ("standard", True)])
def test_the_runs_correlations_are_those_of_its_raw_training_rows(scale, weighted):
    """Every row of the table trains (validation from another table, no test rows): the
    correlations are numpy's of the table's features, weighted by the run's event weights,
    whatever the scaler did to them."""
    table, val = quakes(400), simulate.earthquakes(n=100, seed=9)
    for t in (table, val) if weighted else ():  # weights favouring a corner move them
        t.frame["w"] = np.exp(t.frame["tp1"] / t.frame["tp1"].std())
    result = train.fit(table, TrainConfig(epochs=1, test_frac=0.0, threads=1, scale=scale),
                       net={"depth": 1, "width": 8}, val_table=val,
                       weight="w" if weighted else None)
    features = result.correlations["features"]
    (matrix,) = result.correlations["matrices"]
    assert matrix["rows"] == 400 and matrix["title"] == "all rows"
    assert result.correlations["weighted"] is weighted
    assert "w" not in features
    weight = table.frame["w"] if weighted else None
    np.testing.assert_allclose(matrix["matrix"],
                               numpy_correlations(table.frame[features].to_numpy(), weight),
                               atol=1e-6)
