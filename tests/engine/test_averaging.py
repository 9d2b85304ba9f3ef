import pytest
import torch

from fcnn_cli.engine import train
from fcnn_cli.engine.averaging import WeightAverage


def test_average_by_hand_and_swapped_in_restores():
    w = torch.nn.Parameter(torch.zeros(3))
    steps = torch.zeros(()), torch.ones(()).long()  # an integer buffer is left alone
    average = WeightAverage([w, *steps], decay=0.9)
    expected = torch.zeros(3)
    for t in range(1, 41):
        with torch.no_grad():
            w.fill_(float(t))
        average.update()
        decay = min(0.9, (1 + t) / (10 + t))
        expected = decay * expected + (1 - decay) * w.detach()
    torch.testing.assert_close(average.average[0], expected)
    assert len(average.live) == 2
    with average.swapped_in():
        torch.testing.assert_close(w.detach(), expected)
    assert torch.equal(w.detach(), torch.full((3,), 40.0))
    restored = WeightAverage([w, *steps], decay=0.9)
    restored.load_state_dict(average.state_dict())
    assert restored.updates == 40 and torch.equal(restored.average[0], average.average[0])


@pytest.mark.parametrize("fast", [True, False])
def test_the_validated_average_is_what_is_kept(quakes, fast):
    config = dict(epochs=3, batch_size=32, schedule="none", lr=3e-3, fast=fast)
    averaged = train.fit(quakes, train.TrainConfig(**config))
    last = train.fit(quakes, train.TrainConfig(ema=0.0, **config))
    best = averaged.history[averaged.predictor.info["best_epoch"] - 1]
    assert averaged.metrics["val"]["distance"]["mean"] == pytest.approx(
        best["val_mean_distance"], rel=1e-5)
    assert best["val_mean_distance"] != pytest.approx(
        last.history[best["epoch"] - 1]["val_mean_distance"], rel=1e-3)
