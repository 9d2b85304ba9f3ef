import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from fcnn_cli.core.config import TrainConfig
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import Table
from fcnn_cli.engine import selection, train
from fcnn_cli.network import tasks

OUT = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5], [0.3, 0.2, 0.1], [-1.0, 0.0, 3.0]])
Y = torch.tensor([0, 2, 1, 2])


def _brier_rows(out, y):
    p = np.exp(out) / np.exp(out).sum(axis=1, keepdims=True)
    onehot = np.eye(out.shape[1])[y]
    return ((p - onehot) ** 2).sum(axis=1)


def test_brier_and_accuracy_figures_equal_their_definitions():
    task = tasks.Classification("c", ["p", "q", "r"])
    brier = float(selection.figure(task, "brier", OUT, Y, None))
    assert brier == pytest.approx(_brier_rows(OUT.numpy(), Y.numpy()).mean(), rel=1e-6)
    # argmax 0, 1, 0, 2 against 0, 2, 1, 2: two misses in four
    assert float(selection.figure(task, "accuracy", OUT, Y, None)) == 0.5
    assert selection.figure(task, "loss", OUT, Y, 0.25) == 0.25


def test_the_figures_weigh_rows_as_the_loss_does():
    w = np.array([0.5, 2.0, 1.0, 0.5])
    weighted = dataclasses.replace(tasks.Classification("c", ["p", "q", "r"]), weighted=True)
    y = torch.stack([Y.float(), torch.tensor(w, dtype=torch.float32)], dim=1)
    rows = _brier_rows(OUT.numpy(), Y.numpy())
    assert float(selection.figure(weighted, "brier", OUT, y, None)) == \
        pytest.approx((rows * w).mean(), rel=1e-6)
    assert float(selection.figure(weighted, "accuracy", OUT, y, None)) == pytest.approx(
        (np.array([0, 1, 1, 0]) * w).mean())
    by_class = tasks.Classification("c", ["p", "q", "r"], "softmax", [1.0, 3.0, 0.5])
    cw = np.array([1.0, 3.0, 0.5])[Y.numpy()]
    assert float(selection.figure(by_class, "brier", OUT, Y, None)) == \
        pytest.approx((rows * cw).sum() / cw.sum(), rel=1e-6)


def test_one_sigmoid_logit_scores_as_two_classes():
    task = tasks.Classification("c", ["p", "q"], output="sigmoid")
    z, y = torch.tensor([[2.0], [-1.0], [0.5]]), torch.tensor([1, 1, 0])
    two = torch.cat([torch.zeros_like(z), z], dim=1).numpy()
    assert float(selection.figure(task, "brier", z, y, None)) == \
        pytest.approx(_brier_rows(two, y.numpy()).mean(), rel=1e-6)
    assert float(selection.figure(task, "accuracy", z, y, None)) == pytest.approx(2 / 3)


@pytest.mark.parametrize("best_by, kind, figure", [
    ("auto", "classify", "brier"), ("auto", "regress", "loss"), ("loss", "classify", "loss"),
    ("accuracy", "classify", "accuracy")])
def test_auto_is_brier_for_classes_and_the_loss_for_labels(best_by, kind, figure):
    assert selection.resolved(best_by, kind) == figure


def test_a_regression_refuses_a_figure_of_classes():
    with pytest.raises(FcnnError, match="^best_by=brier scores classes; a regression"):
        selection.resolved("brier", "regress")


def _brier_of(predictor, table):
    x = table.frame[predictor.features].to_numpy(np.float32)
    y = np.array([predictor.task.classes.index(c) for c in table.frame["kind"]])
    return _brier_rows(predictor.outputs(x).astype(np.float64), y).mean()


def _noisy_classes(n=400, seed=0):
    """Two classes of weak signal in many noise columns: a network soon predicts some
    validation rows confidently wrong, while its ranking still improves."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 40))
    x[:, 0] += 0.8 * (2 * label - 1)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(40)])
    frame["kind"] = np.where(label == 1, "b", "a")
    return Table(frame, targets=["kind"], name="noisy")


@pytest.mark.parametrize("best_by, column, sign", [("brier", "val_brier", 1),
                                                   ("accuracy", "val_accuracy", -1)])
def test_the_kept_epoch_is_the_best_of_its_figure(best_by, column, sign):
    val = _noisy_classes(100, seed=5)
    result = train.fit(_noisy_classes(), TrainConfig(epochs=25, lr=0.01, schedule="none",
                                                     best_by=best_by, seed=1), val_table=val)
    best = result.predictor.info["best_epoch"]
    assert result.config.best_by == best_by
    top = min(sign * r[column] for r in result.history)  # the first epoch of the best
    assert best == next(r["epoch"] for r in result.history if sign * r[column] == top)
    if best_by == "brier":  # recorded as the kept weights score the validation rows
        assert result.history[best - 1]["val_brier"] == pytest.approx(
            _brier_of(result.predictor, val), rel=1e-4)
    by_loss = train.fit(_noisy_classes(), TrainConfig(epochs=25, lr=0.01, schedule="none",
                                                      best_by="loss", seed=1))
    low = min(r["val_loss"] for r in by_loss.history)
    assert by_loss.predictor.info["best_epoch"] == \
        next(r["epoch"] for r in by_loss.history if r["val_loss"] == low)
    if best_by == "accuracy":
        assert best != by_loss.predictor.info["best_epoch"]  # the figures disagree here


def test_a_run_records_the_epochs_and_the_figure_it_took():
    result = train.fit(_noisy_classes(), TrainConfig(seed=1, schedule="none", patience=2))
    assert result.config.best_by == "brier"
    assert result.config.epochs == 500  # 320 training rows: the most epochs
    assert "no better validation Brier score in 2 epochs" in result.stopped
