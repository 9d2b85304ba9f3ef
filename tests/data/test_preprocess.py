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
        Scaler.fit("logarithmic", X)


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


def _awkward_columns(rows=3000, seed=1):
    """A normal, a heavy-tailed, a discrete (repeated quantiles) and a Cauchy column, and one
    whose interquartile range is 0 (a spike and a few outliers), as float32."""
    rng = np.random.default_rng(seed)
    spike = np.where(rng.random(rows) < 0.9, 2.0, rng.normal(2.0, 5.0, rows))
    return np.column_stack([rng.normal(size=rows), rng.exponential(size=rows) ** 3,
                            rng.integers(0, 5, rows), rng.standard_cauchy(rows),
                            spike]).astype(np.float32)


def test_robust_is_the_median_the_interquartile_range_and_the_smooth_clip():
    x = _awkward_columns()
    train, new = x[:2000], x
    wide = train.astype(np.float64)
    q25, median, q75 = np.quantile(wide, [0.25, 0.5, 0.75], axis=0)
    spread = np.where(q75 > q25, q75 - q25, 0.5 * (wide.max(axis=0) - wide.min(axis=0)))
    y = (new.astype(np.float64) - median) / spread
    want = y / np.sqrt(1 + (y / 3) ** 2)
    s = Scaler.fit("robust", train)
    assert q75[4] == q25[4] and s.scale[4] == spread[4]  # the fallback to half the range
    got = s.transform(new)
    assert got.dtype == np.float32 and np.abs(got).max() <= 3
    np.testing.assert_allclose(got, want, rtol=3e-7, atol=1e-7)


def test_robust_is_pytabkits_robust_scale_and_smooth_clip():
    torch = pytest.importorskip("torch")
    pipeline = pytest.importorskip("pytabkit.models.nn_models.pipeline")
    models = pytest.importorskip("pytabkit.models.nn_models.models")
    x = _awkward_columns().astype(np.float64)
    t = torch.from_numpy(x)
    quant = pipeline.torch_np_quantile
    median = quant(t, 0.5, dim=-2)
    # RobustScaleFactory's factors, with its median centring and smooth clip after
    spread = quant(t, 0.75, dim=-2) - quant(t, 0.25, dim=-2)
    flat = spread == 0
    spread[flat] = 0.5 * (t.max(dim=-2)[0] - t.min(dim=-2)[0])[flat]
    want = models.smooth_clip_func((t - median) / spread).numpy()
    np.testing.assert_allclose(Scaler.fit("robust", x).transform(x), want, rtol=3e-7,
                               atol=1e-7)


@pytest.mark.parametrize("rows", [2000, 600])  # 1000 quantiles; as many as the rows
def test_quantile_is_scikit_learns_quantile_transformer_to_a_normal(rows):
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    x = _awkward_columns()
    train = x[:rows]
    # As many quantiles as fcnn takes (scikit-learn warns where it must cut 1000 down itself).
    reference = preprocessing.QuantileTransformer(n_quantiles=min(rows, 1000),
                                                  output_distribution="normal", subsample=None)
    want = reference.fit(train.astype(np.float64)).transform(x.astype(np.float64))
    s = Scaler.fit("quantile", train)
    assert len(s.quantiles[0]) == reference.n_quantiles_ == min(rows, 1000)
    assert s.shift == [0.0] * 5 and s.scale == [1.0] * 5
    got = s.transform(x)
    assert np.abs(got - want).max() <= 1e-6
    assert np.abs(got).max() > 5.19  # the ends: ±5.2, not infinite


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_curves_are_fitted_a_column_at_a_time_as_on_the_whole_float64_matrix(dtype):
    """The same quantiles, medians and spreads to the last bit, with less memory at its peak
    than the table itself, where a float64 copy of a float32 one takes twice as much."""
    import tracemalloc

    x = np.ascontiguousarray(np.tile(_awkward_columns(50_000), 4).astype(dtype))
    Scaler.fit("quantile", x[:10])  # what a first call alone allocates
    wide = x.astype(np.float64)
    levels = np.linspace(0, 1, 1000) * 100
    q25, median, q75 = np.quantile(wide, [0.25, 0.5, 0.75], axis=0)
    spread = np.where(q75 > q25, q75 - q25, 0.5 * (wide.max(axis=0) - wide.min(axis=0)))
    del wide
    tracemalloc.start()
    try:
        quantile, robust = Scaler.fit("quantile", x), Scaler.fit("robust", x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes
    assert quantile.quantiles == np.percentile(x.astype(np.float64), levels, axis=0).T.tolist()
    assert (robust.shift, robust.scale) == (median.tolist(), spread.tolist())


def test_a_quantile_table_is_made_ascending_where_interpolation_steps_back(monkeypatch):
    """scikit-learn's np.maximum.accumulate: a quantile one ulp below the one before it (as
    linear interpolation's rounding may give) takes the one before's value."""
    monkeypatch.setattr(np, "percentile", lambda column, levels: np.array([0.0, 1.0 + 2 ** -52,
                                                                           1.0, 2.0]))
    assert Scaler.fit("quantile", X).quantiles == [[0.0, 1.0 + 2 ** -52, 1.0 + 2 ** -52, 2.0]] * 2


def test_the_normal_quantile_function_is_scipys_within_1e_8():
    stats = pytest.importorskip("scipy.stats")
    torch = pytest.importorskip("torch")
    from fcnn_cli.data.curves import P_MIN, normal_quantile

    p = np.concatenate([np.linspace(0, 1, 20001), np.logspace(-12, -1, 500),
                        1 - np.logspace(-12, -1, 500)])
    want = stats.norm.ppf(np.clip(p, P_MIN, 1 - P_MIN))
    np.testing.assert_allclose(normal_quantile(torch.from_numpy(p)).numpy(), want, rtol=0,
                               atol=1e-8)


@pytest.mark.parametrize("method", ["robust", "quantile"])
def test_curves_round_trip_their_dict_and_scale_in_place(method):
    x = _awkward_columns(500)
    s = Scaler.fit(method, x)
    again = Scaler.from_dict(s.to_dict())
    assert again == s and ("quantiles" in s.to_dict()) == (method == "quantile")
    want = s.transform(x)
    assert np.array_equal(again.transform(x, out=x), want) and np.array_equal(x, want)
    assert "quantiles" not in Scaler.fit("standard", X).to_dict()  # the affine file as before


@pytest.mark.parametrize("method", ["standard", "max", "minmax", "none", "robust", "quantile"])
def test_a_level_index_is_left_as_it_is_whatever_the_scaling(method):
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=200) * 3, rng.integers(0, 500, 200)]).astype(np.float32)
    names = ["x", "station=<index>"]
    scaler = Scaler.fit(method, x, names)
    alone = Scaler.fit(method, x[:, :1], names[:1])  # the other column, scaled on its own
    assert scaler.kept == [1] and scaler.shift[1] == 0 and scaler.scale[1] == 1
    out = scaler.transform(x)
    np.testing.assert_array_equal(out[:, 1], x[:, 1])
    np.testing.assert_allclose(out[:, 0], alone.transform(x[:, :1])[:, 0], rtol=1e-6,
                               atol=1e-6)
    again = Scaler.from_dict(scaler.to_dict())
    assert again == scaler and "kept" not in alone.to_dict()
