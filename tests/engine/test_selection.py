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
    # argmax 0, 1, 0, 2 against 0, 2, 1, 2: two misses in four, ties to the lower Brier score
    assert float(selection.figure(task, "accuracy", OUT, Y, None)) == pytest.approx(
        0.5 + selection.TIE * brier, rel=1e-7)
    assert selection.figure(task, "loss", OUT, Y, 0.25) == 0.25


def test_the_figures_weigh_rows_as_the_loss_does():
    w = np.array([0.5, 2.0, 1.0, 0.5])
    weighted = dataclasses.replace(tasks.Classification("c", ["p", "q", "r"]), weighted=True)
    y = torch.stack([Y.float(), torch.tensor(w, dtype=torch.float32)], dim=1)
    rows = _brier_rows(OUT.numpy(), Y.numpy())
    assert float(selection.figure(weighted, "brier", OUT, y, None)) == \
        pytest.approx((rows * w).mean(), rel=1e-6)
    assert float(selection.figure(weighted, "accuracy", OUT, y, None)) == pytest.approx(
        ((np.array([0, 1, 1, 0]) + selection.TIE * rows) * w).mean(), rel=1e-7)
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
    assert float(selection.figure(task, "accuracy", z, y, None)) == pytest.approx(2 / 3, abs=1e-5)


@pytest.mark.parametrize("best_by, kind, figure", [
    ("auto", "classify", "brier"), ("auto", "regress", "loss"), ("loss", "classify", "loss"),
    ("accuracy", "classify", "accuracy")])
def test_auto_is_brier_for_classes_and_the_loss_for_labels(best_by, kind, figure):
    assert selection.resolved(best_by, kind) == figure


def test_a_regression_refuses_a_figure_of_classes():
    with pytest.raises(FcnnError, match="^best_by=brier scores classes; a regression"):
        selection.resolved("brier", "regress")


def _table(labels):
    return Table(pd.DataFrame({"x": np.arange(len(labels), dtype=float), "y": labels}), ["y"])


@pytest.mark.parametrize("best_by", ["brier", "accuracy"])
def test_a_table_of_numbers_refuses_a_figure_of_classes_before_training(best_by):
    with pytest.raises(FcnnError, match=f"^best_by={best_by} scores classes") as caught:
        selection.check_table(TrainConfig(best_by=best_by), _table(np.linspace(0, 1, 30)))
    assert caught.value.options == ("best_by", "task")  # the task the table made


@pytest.mark.parametrize("best_by, labels, targets", [
    ("brier", ["a", "b"] * 15, None),  # text labels: classes
    ("accuracy", np.linspace(0, 1, 30), ["missing"]),  # training says why
    ("brier", np.arange(30) % 3, None),  # ambiguous integers: training asks which task
    ("loss", np.linspace(0, 1, 30), None), ("auto", np.linspace(0, 1, 30), None)])
def test_what_training_takes_or_refuses_itself_passes(best_by, labels, targets):
    selection.check_table(TrainConfig(best_by=best_by), _table(labels), targets)


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


def test_each_figure_keeps_its_own_best_epoch():
    """One trajectory (the figure changes what is kept, not how the network trains), three
    kept epochs: the lowest loss, the lowest Brier score, and of the epochs tied at the top
    accuracy the one of the lower Brier score."""
    val = _noisy_classes(100, seed=5)
    runs = {best_by: train.fit(_noisy_classes(), TrainConfig(
        epochs=25, lr=0.03, schedule="none", best_by=best_by, seed=2), val_table=val)
        for best_by in ("loss", "brier", "accuracy")}
    kept = {best_by: run.predictor.info["best_epoch"] for best_by, run in runs.items()}
    history = runs["brier"].history
    assert [r["val_loss"] for r in history] == [r["val_loss"] for r in runs["loss"].history]
    assert kept["loss"] == min(history, key=lambda r: r["val_loss"])["epoch"]
    assert kept["brier"] == min(history, key=lambda r: r["val_brier"])["epoch"]
    top = max(r["val_accuracy"] for r in history)
    tied = [r for r in history if r["val_accuracy"] == top]
    assert len(tied) > 1 and kept["accuracy"] == min(tied, key=lambda r: r["val_brier"])["epoch"]
    assert kept["accuracy"] != tied[0]["epoch"]  # the tie-break, not the first of the best
    assert len(set(kept.values())) > 1 and kept["loss"] != kept["brier"]
    # recorded as the kept weights score the validation rows
    assert history[kept["brier"] - 1]["val_brier"] == pytest.approx(
        _brier_of(runs["brier"].predictor, val), rel=1e-4)
    assert runs["accuracy"].config.best_by == "accuracy"


def test_a_tie_in_accuracy_goes_to_the_lower_brier_score_in_float64():
    """1 000 rows, equal misses, Brier scores 0.003 apart: float32 could not tell them apart."""
    task = tasks.Classification("c", ["p", "q"])
    y = torch.zeros(1000, dtype=torch.long)
    y[::2] = 1  # half the rows of class q, all predicted p: a miss rate of 0.5 in both
    sure = torch.tensor([[1.0, 0.0]]).repeat(1000, 1)
    surer = sure * 1.01
    a, b = (float(selection.figure(task, "accuracy", out, y, None)) for out in (sure, surer))
    assert a != b
    brier = [float(selection.figure(task, "brier", out, y, None)) for out in (sure, surer)]
    assert (a < b) == (brier[0] < brier[1]) and abs(brier[0] - brier[1]) < 0.01


def test_a_run_records_the_epochs_and_the_figure_it_took():
    result = train.fit(_noisy_classes(), TrainConfig(seed=1, schedule="none", patience=2,
                                                      ensemble=1))
    assert result.config.best_by == "brier"
    assert result.config.epochs == 500  # 320 training rows: the most epochs
    assert "no better validation Brier score in 2 epochs" in result.stopped



class _Chunks:
    """Validation rows as a streamed run gives them: chunk by chunk."""

    def __init__(self, chunks):
        self.chunks = chunks

    def validation(self):
        for x, y in self.chunks:
            yield x, y, y.numpy(), None


@pytest.mark.parametrize("weights", [None, [1.0, 3.0, 0.5]], ids=["plain", "class-weighted"])
@pytest.mark.parametrize("best_by", ["brier", "accuracy"])
def test_a_streamed_validation_combines_its_chunks_as_one_would(best_by, weights):
    from fcnn_cli.engine import loop

    task = tasks.Classification("c", ["p", "q", "r"], "softmax", weights)
    whole, _ = loop._validation_pass(lambda x: x, task, best_by, _Chunks([(OUT, Y)]), None)
    parts, _ = loop._validation_pass(lambda x: x, task, best_by,
                                     _Chunks([(OUT[:1], Y[:1]), (OUT[1:], Y[1:])]), None)
    assert float(parts[0]) == pytest.approx(float(whole[0]), rel=1e-6)  # the loss, float32
    assert float(parts[1]) == pytest.approx(float(whole[1]), rel=1e-12)  # the figure
    rows = _brier_rows(OUT.numpy().astype(np.float64), Y.numpy())
    w = np.ones(4) if weights is None else np.array(weights)[Y.numpy()]
    if best_by == "brier":
        assert float(whole[1]) == pytest.approx((rows * w).sum() / w.sum(), rel=1e-12)
