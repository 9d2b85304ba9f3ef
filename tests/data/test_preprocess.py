import numpy as np
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.preprocess import Scaler

X = np.array([[1.0, -10.0], [3.0, 20.0], [5.0, 30.0]])


def test_standard():
    s = Scaler.fit("standard", X)
    z = s.transform(X)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-6)


def test_max_divides_by_the_one_largest_value():
    s = Scaler.fit("max", X)
    np.testing.assert_allclose(s.transform(X), X / 30.0, rtol=1e-6)


def test_minmax_and_none():
    np.testing.assert_allclose(Scaler.fit("minmax", X).transform(X)[:, 0], [0, 0.5, 1])
    np.testing.assert_allclose(Scaler.fit("none", X).transform(X), X)


@pytest.mark.parametrize("method", ["standard", "max", "minmax", "none"])
def test_inverse_and_dict_round_trip(method):
    s = Scaler.from_dict(Scaler.fit(method, X).to_dict())
    np.testing.assert_allclose(s.inverse(s.transform(X)), X, rtol=1e-6, atol=1e-5)


def test_constant_column_is_kept_finite(caplog):
    x = np.array([[1.0, 7.0], [2.0, 7.0]])
    z = Scaler.fit("standard", x, ["a", "b"]).transform(x)
    assert np.isfinite(z).all() and (z[:, 1] == 0).all()
    assert "'b'" in caplog.text


def test_unknown_method():
    with pytest.raises(FcnnError, match="unknown scaling"):
        Scaler.fit("robust", X)


def test_standard_statistics_are_numpy_s_bit_for_bit():
    """Summed in row blocks (no float64 copy of the features), as numpy sums them whole."""
    x = np.random.default_rng(1).normal(3.0, 50.0, size=(200_003, 3)).astype(np.float32)
    s = Scaler.fit("standard", x)
    assert s.shift == np.asarray(x, np.float64).mean(axis=0).tolist()
    assert s.scale == np.asarray(x, np.float64).std(axis=0).tolist()


def test_of_moments_matches_fit():
    for method in ("standard", "max", "minmax", "none"):
        fitted = Scaler.fit(method, X)
        given = Scaler.of(method, X.mean(axis=0), X.std(axis=0), X.min(axis=0), X.max(axis=0),
                          ["a", "b"])
        assert given == fitted
