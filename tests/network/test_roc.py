import numpy as np
import pytest
from sklearn.metrics import roc_curve

from fcnn_cli.network.roc import Curve, between, crossing
from scores import table


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_the_curve_is_scikit_learns(weighted, ties):
    score, signal, weight = table(weighted=weighted, ties=ties)
    curve = Curve(score, signal, weight)
    fpr, tpr, cut = roc_curve(signal, score, sample_weight=weight, drop_intermediate=False)
    w = np.ones(len(score)) if weight is None else weight
    np.testing.assert_array_equal(curve.cut, cut.astype(np.float64))
    np.testing.assert_allclose(curve.signal.efficiency, tpr, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.background.efficiency, fpr, rtol=1e-12, atol=1e-15)
    squares = [(w[signal & (score >= c)] ** 2).sum() for c in cut]
    np.testing.assert_allclose(curve.signal.squares, squares, rtol=1e-12)
    rows = [(~signal & (score >= c)).sum() for c in cut]
    np.testing.assert_array_equal(curve.background.rows, rows)




def test_crossing_and_between():
    eff = np.array([0.0, 0.2, 0.2, 0.6, 1.0])
    assert crossing(eff, 0.2, strict=True) == (2, 0.0)  # the top of the run at 0.2
    assert crossing(eff, 0.2, strict=False) == (0, 1.0)  # the first point that reaches it
    i, frac = crossing(eff, 0.5, strict=True)
    assert (i, frac) == (2, pytest.approx(0.75)) and between(eff, i, frac) == pytest.approx(0.5)
    assert crossing(eff, 1.0, strict=True) == (4, 0.0)  # never passed: the last point


def test_errors_of_efficiencies():
    # unit weights: binomial; weights: √(Σ_pass w² (1 − ε)² + Σ_fail w² ε²) / Σw
    curve = Curve([3, 2, 1, 0], [True, True, True, False])
    eff, error = curve.signal.at(1)
    assert eff == pytest.approx(1 / 3) and error == pytest.approx(np.sqrt(eff * (1 - eff) / 3))
    curve = Curve([3, 2, 1, 0], [True, True, True, False], [1.0, 2.0, 3.0, 1.0])
    eff, error = curve.signal.at(2)
    assert eff == pytest.approx(0.5)
    assert error == pytest.approx(np.sqrt(5 * 0.25 + 9 * 0.25) / 6)
