"""bench/quakes.py's parts: the wrong Earth model is the true one 10 % slower above the Moho
(the whole medium of a uniform one), the cases are the issue's, and the locator with the true
model finds noise-free hypocentres. No test runs the benchmark."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import quakes  # noqa: E402  (bench/ is a folder of scripts, not a package)

from fcnn_cli.data import simulate, velocity  # noqa: E402
from fcnn_cli.network.locator import Locator  # noqa: E402


def test_the_wrong_crust_is_slower_above_the_moho_alone():
    layered = velocity.model_for("layered", 6.0, 3.5)
    wrong = quakes.slower(layered)
    assert wrong.top == layered.top
    assert wrong.vp == pytest.approx((0.9 * 5.8, 0.9 * 6.5, 8.04))
    assert wrong.vs == pytest.approx((0.9 * 3.36, 0.9 * 3.75, 4.47))
    uniform = quakes.slower(velocity.uniform(6.0, 3.5))
    assert uniform.vp + uniform.vs == pytest.approx((5.4, 3.15))


def test_the_cases_add_one_effect_each():
    a, b, c = (quakes.CASES[k] for k in list(quakes.CASES)[1:])
    assert quakes.CASES["lecture"] == {}
    assert len(a["stations"].names) == 12 and a["depth"] == (0.0, 30.0)
    assert b == {**a, "origin_unknown": True}
    assert c == {**b, "noise_p": 0.02, "missing": 0.2}
    sigma = simulate.pick_noise(0.0, c["noise_p"], None)
    assert sigma == pytest.approx((0.02, 0.04))


def test_distances_are_the_mean_median_and_95th_percentile():
    truth = np.zeros((4, 3))
    located = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    mean, median, p95 = quakes.distances(located, truth)
    assert (mean, median) == pytest.approx((2.0, 1.5))
    assert p95 == pytest.approx(2.0 + 0.85 * 3.0)  # between 2 and 5, numpy's linear rule


def test_the_locator_with_the_true_model_finds_noise_free_hypocentres():
    table = simulate.earthquakes(n=50, seed=1, **quakes.CASES["B: A + unknown t0"])
    picks = [c for c in table.frame.columns if c[:2] in ("tp", "ts")]
    truth = table.frame[["x", "y", "z"]].to_numpy()
    locator = Locator().bind(picks, ["x", "y", "z"], table.extra)
    locator.fit(None, truth, None, None, None, None, None)
    located = locator.predict(table.frame[picks].to_numpy(np.float32))
    assert quakes.distances(located, truth)[0] < 1e-2


def test_the_network_takes_what_fcnn_train_makes_of_each_case():
    lecture = simulate.earthquakes(n=5, seed=0)
    assert quakes.as_fcnn_train_makes(lecture, lecture)[2:] == (None, "error", {})
    c = simulate.earthquakes(n=5, seed=0, **quakes.CASES["C: B + noise, missing"])
    table, test, features, nan, net = quakes.as_fcnn_train_makes(c, c)
    assert net == {"width": 128, "depth": 4} and nan == "fill"
    assert features == [f"dt{p}{k}" for k in range(1, 13) for p in "ps"]
    first = np.fmin.reduce(c.frame[[f[1:] for f in features]].to_numpy(), axis=1)
    np.testing.assert_array_equal(test.frame["dtp3"], c.frame["tp3"] - first)
