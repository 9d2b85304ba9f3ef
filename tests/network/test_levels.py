"""Embeddings of categorical features of many levels (network/levels.py): each index picks its
table's row, against a direct lookup; the widths; the network's layout and its checks."""

import numpy as np
import pytest
import torch
from members import assert_step_equals_each_alone

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.categories import Categories
from fcnn_cli.engine import fastpath
from fcnn_cli.network import embedding, levels, tasks
from fcnn_cli.network.model import MLP, NetConfig


def test_each_index_picks_its_tables_row_and_the_other_inputs_keep_their_order():
    torch.manual_seed(0)
    cfg = NetConfig(n_in=5, n_out=1, depth=1, width=4, levels=[[1, 70, 3], [4, 90, 2]])
    net = MLP(cfg)
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.normal(size=6), rng.integers(0, 70, 6), rng.normal(size=(6, 2)),
                         rng.integers(0, 90, 6)]).astype(np.float32)
    first, second = (t.detach().numpy() for t in net.embed.tables)
    want = np.column_stack([x[:, [0, 2, 3]], first[x[:, 1].astype(int)],
                            second[x[:, 4].astype(int)]])
    np.testing.assert_array_equal(net.embed(torch.from_numpy(x)).detach().numpy(), want)
    assert net.body[0][0].in_features == 3 + 3 + 2 == levels.inputs(cfg)
    assert embedding.values_per_row(cfg) == 3 + 2 - 2  # the vectors beyond their indices
    assert not fastpath.supports(net, tasks.Regression(["y"], None))


def test_the_unknown_levels_row_starts_at_zero_and_no_levels_index_is_the_unknown_level():
    torch.manual_seed(0)
    embed = levels.LevelEmbedding(NetConfig(n_in=1, n_out=1, levels=[[0, 5, 3]]))
    table = embed.tables[0].detach()
    assert not table[0].any() and table[1:].abs().min() > 0
    given = torch.tensor([[-1.0], [2.7], [float("nan")], [5.0], [1e30], [4.0], [0.0]])
    np.testing.assert_array_equal(embed(given).detach().numpy(),
                                  table[[0, 0, 0, 0, 0, 4, 0]].numpy())


def test_a_tables_width_is_fastais_rule_capped():
    assert [levels.width(n) for n in (66, 100, 204, 205, 100_001)] == \
        [round(1.6 * n ** 0.56) for n in (66, 100)] + [31, 32, 32]


def test_the_layout_is_each_index_inputs_position_rows_and_width():
    many = [f"s{i:03d}" for i in range(100)]
    categories = Categories({"region": ["a", "b"], "station": [*many, None]})
    inputs = categories.inputs(["x", "region", "station"]) + ["x_missing"]
    assert inputs == ["x", "region='a'", "region='b'", "region=<unknown>", "station=<index>",
                      "x_missing"]
    assert levels.layout(categories, inputs) == [[4, 102, levels.width(102)]]
    assert levels.layout(None, inputs) == []


@pytest.mark.parametrize("bad", [
    [[1, 70]], [[1, 70, 3.0]], [[5, 70, 3]], [[2, 70, 3], [1, 70, 3]], [[1, 70, 3], [1, 70, 3]],
    [[1, 1, 3]], [[1, 100_003, 3]], [[1, 70, 0]], [[True, 70, 3]], ["1, 70, 3"]])
def test_a_layout_that_is_not_index_inputs_of_tables_is_refused(bad):
    with pytest.raises(FcnnError, match="levels must be"):
        NetConfig(n_in=5, n_out=1, levels=bad)


def test_an_embedding_of_numbers_beside_one_of_levels_is_refused_naming_embed():
    with pytest.raises(FcnnError, match="embed applies to numerical features") as error:
        NetConfig(n_in=2, n_out=1, embed="linear", levels=[[1, 70, 3]])
    assert error.value.options == ("embed",)
    # A network without levels records none: its checkpoint as before.
    assert "levels" not in NetConfig(n_in=2, n_out=1).to_dict()
    assert NetConfig(n_in=2, n_out=1, levels=[[1, 70, 3]]).to_dict()["levels"] == [[1, 70, 3]]


def test_the_ensemble_step_gives_each_members_tables_their_own_update():
    """vmap over the members' tables: each member's loss, gradients and Adam step equal
    autograd's and torch.optim's for that member alone."""
    torch.manual_seed(0)
    cfg = NetConfig(n_in=3, n_out=1, depth=2, width=6, levels=[[1, 80, 4]])
    x = torch.randn(3, 9, 3)
    x[..., 1] = torch.randint(0, 80, (3, 9)).float()
    assert_step_equals_each_alone([MLP(cfg) for _ in range(3)], tasks.Regression(["a"], None),
                                  x, torch.randn(3, 9, 1))
