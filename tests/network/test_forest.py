import numpy as np
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.network.forest import Forest, float32_at_most


def stump(**changes):
    """Two trees, two outputs: tree 0 sends x0 <= 0.5 (and NaN) left to 1.0, else to 2.0;
    tree 1 is a single leaf 10.0 on output 1. Offsets 0.25 and -1."""
    arrays = dict(start=[0, 3, 4], feature=[0, 0, 0, 0], threshold=[0.5, 0, 0, 0],
                  missing_left=[True, False, False, False], left=[1, 1, 2, 3],
                  right=[2, 1, 2, 3], value=[0.0, 1.0, 2.0, 10.0], output=[0, 1],
                  offset=[0.25, -1.0])
    arrays.update(changes)
    forest = Forest(**{k: np.array(v) for k, v in arrays.items()}, n_features=2)
    return forest.typed().check()


def test_walk_adds_each_trees_leaf_to_its_output():
    x = np.array([[0.5, 9.0], [0.50001, 9.0], [np.nan, 0.0], [-np.inf, 0.0], [np.inf, 0.0]],
                 dtype=np.float32)
    np.testing.assert_array_equal(stump().raw(x), [[1.25, 9.0], [2.25, 9.0], [1.25, 9.0],
                                                   [1.25, 9.0], [2.25, 9.0]])
    forest = stump(missing_left=[False, False, False, False])
    assert forest.raw(x[2:3])[0, 0] == 2.25  # NaN goes right now


def test_walk_in_chunks_gives_the_same(monkeypatch):
    from fcnn_cli.network import forest as module

    x = np.random.default_rng(0).uniform(0, 1, (100, 2)).astype(np.float32)
    whole = stump().raw(x)
    monkeypatch.setattr(module, "CELLS", 3)
    np.testing.assert_array_equal(stump().raw(x), whole)


def test_float32_threshold_sends_every_float32_as_the_float64_did():
    rng = np.random.default_rng(1)
    t = np.concatenate([rng.normal(0, 10, 1000), [np.inf, -np.inf, 1e39, -1e39, 0.0, 1e-50]])
    with np.errstate(over="ignore"):
        x = t.astype(np.float32)  # values at and beside each threshold
    x = np.concatenate([x, np.nextafter(x, np.float32(np.inf)),
                        np.nextafter(x, np.float32(-np.inf))])
    down = float32_at_most(t)
    assert down.dtype == np.float32
    for shift in range(3):
        xs = x[shift * len(t):(shift + 1) * len(t)]
        np.testing.assert_array_equal(xs.astype(np.float64) <= t, xs <= down)


@pytest.mark.parametrize("change, said", [
    (dict(left=[5, 1, 2, 3]), "outside its tree"),
    (dict(left=[3, 1, 2, 3]), "outside its tree"),  # into the next tree
    (dict(right=[0, 1, 2, 3]), "outside its tree"),  # back to itself: a loop
    (dict(left=[1, 0, 2, 3], right=[2, 0, 2, 3]), "outside its tree"),  # a leaf's child
    (dict(feature=[2, 0, 0, 0]), "feature beyond the 2"),
    (dict(feature=[-1, 0, 0, 0]), "feature beyond the 2"),
    (dict(start=[0, 4, 3]), "out of order"),
    (dict(start=[0, 3, 5]), "out of order"),
    (dict(output=[0, 2]), "output beyond the 2"),
    (dict(output=[0]), "1 outputs named for 2 trees"),
    (dict(value=[0.0, np.inf, 2.0, 10.0]), "not finite"),
    (dict(threshold=[np.nan, 0, 0, 0]), "threshold is NaN"),
    (dict(offset=[np.nan, 0.0]), "offsets"),
    (dict(value=[0.0, 1.0, 2.0]), "differ in length"),
])
def test_a_forest_that_could_misread_or_loop_is_refused_in_one_line(change, said):
    with pytest.raises(FcnnError, match=said) as e:
        stump(**change)
    assert "\n" not in str(e.value)


def test_arrays_of_another_dtype_are_refused():
    arrays = {k: v.copy() for k, v in stump().arrays().items()}
    arrays["left"] = arrays["left"].astype(np.int64)
    with pytest.raises(FcnnError, match="left is int64 of 1 dimension"):
        Forest.of_arrays(arrays, 2)
