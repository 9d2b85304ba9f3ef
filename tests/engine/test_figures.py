"""The figures of merit of a run's reports and its working point (engine/figures.py, as fit
uses it), checked against figures computed here from the split's own predictions."""

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.core.config import TrainConfig
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import Table
from fcnn_cli.engine import figures, train
from fcnn_cli.engine.prepare import prepare


def gaussians(n=1500, seed=3, weighted=False):
    """Two overlapping Gaussian classes (signal shifted by 1 in both inputs)."""
    rng = np.random.default_rng(seed)
    kind = np.where(rng.random(n) < 0.4, "signal", "background")
    x = rng.normal(size=(n, 2)) + (kind == "signal")[:, None]
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "kind": kind})
    if weighted:
        frame["w"] = rng.uniform(0.5, 2.0, n)
    return Table(frame, ["kind"], name="gauss")


def fit(table, weight=None, **options):
    config = TrainConfig(**{"epochs": 3, "batch_size": 128, "seed": 1, "val_frac": 0.3,
                            "test_frac": 0.2, **options})
    return train.fit(table, config, {"width": 16, "depth": 1}, features=["a", "b"],
                     weight=weight)


def split_scores(result, table, split, weight=None):
    """p(signal), the signal flags and the weights of a split's rows, from the predictor."""
    data = prepare(table, result.config, features=["a", "b"], weight=weight)
    x, truth, w = next(data.chunks(split))
    (_, out), = result.predictor.outputs_of([(None, x)], scaled=data.scaled(split))
    p = result.predictor.task.proba(out)
    s = result.predictor.task.classes.index("signal")
    return p[:, s], truth == s, w


def signal_at(score, is_signal, weight, target):
    """ε_S at ε_B = target, independently: the loosest cut with ε_B ≤ target, interpolated to
    the next looser one as the module documents."""
    w = np.ones(len(score)) if weight is None else weight
    cuts = np.unique(score.astype(np.float32))[::-1]
    s32 = score.astype(np.float32)
    eb = np.array([w[~is_signal & (s32 >= c)].sum() for c in cuts]) / w[~is_signal].sum()
    es = np.array([w[is_signal & (s32 >= c)].sum() for c in cuts]) / w[is_signal].sum()
    return float(np.interp(target, np.r_[0.0, eb], np.r_[0.0, es]))


@pytest.mark.parametrize("weighted", [False, True])
def test_each_split_reports_the_signal_efficiency_at_fixed_background(weighted):
    table = gaussians(weighted=weighted)
    weight = "w" if weighted else None
    result = fit(table, weight)
    for split in ("train", "val", "test"):
        merit = result.metrics[split]["merit"]
        assert merit["signal_class"] == "signal"
        at = {p["background_efficiency"]: p for p in merit["signal_efficiency_at"]}
        score, is_signal, w = split_scores(result, table, split, weight)
        assert at[0.1]["signal_efficiency"] == pytest.approx(
            signal_at(score, is_signal, w, 0.1), abs=1e-6)
        if not np.isnan(at[0.01]["signal_efficiency"]):
            assert at[0.01]["signal_efficiency"] == pytest.approx(
                signal_at(score, is_signal, w, 0.01), abs=1e-6)
