"""Categorical features streamed: the levels of every piece, bounded, and each piece's one-hot
inputs as a table in memory makes them."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fcnn_cli.core.config import TrainConfig
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import categories
from fcnn_cli.data.preprocess import Scaler
from fcnn_cli.data.sources import open_source
from fcnn_cli.data.tables import Table
from fcnn_cli.engine import stream
from fcnn_cli.engine.prepare import prepare


def _parquet(path, frame, rows=100):
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path,
                   row_group_size=rows)
    return str(path)


def _frame(n=600, seed=0):
    rng = np.random.default_rng(seed)
    region = rng.choice(["barrel", "endcap"], n).astype(object)
    region[n - 7] = "forward"  # in the last piece alone: the first piece's levels are not all
    region[3] = None
    return pd.DataFrame({"x": rng.normal(size=n), "region": region,
                         "pdg": rng.choice([11, 13, 211], n), "y": rng.normal(size=n)})


@pytest.mark.parametrize("scale, nan", [("standard", "error"), ("quantile", "fill"),
                                        ("minmax", "drop")])
def test_streamed_levels_inputs_and_rows_are_those_of_the_table_in_memory(tmp_path, scale, nan):
    path = _parquet(tmp_path / "t.parquet", _frame())
    config = TrainConfig(scale=scale, nan=nan)
    streamed = stream.prepare(open_source(path), config, ["y"], categorical=["pdg"])
    memory = prepare(Table(pd.read_parquet(path), ["y"], name=path), config, ["y"],
                     categorical=["pdg"])
    missing = [] if nan == "drop" else [None]
    assert streamed.categories.levels == memory.categories.levels == {
        "region": ["barrel", "endcap", "forward", *missing], "pdg": ["11", "13", "211"]}
    assert streamed.features == memory.features and streamed.columns == ["x", "region", "pdg"]
    assert streamed.rows_digest == memory.rows_digest  # every row's inputs, bit for bit
    # The streamed split differs from memory's; its scaler is that of its own training rows.
    x = np.concatenate([block[0] for block in streamed.blocks(stream.TRAIN)])
    onehot = x[:, 1:]
    assert set(np.unique(onehot)) <= {0.0, 1.0} and (onehot.sum(axis=1) == 2).all()
    fitted, got = Scaler.fit(scale, x, streamed.inputs).to_dict(), streamed.x_scaler.to_dict()
    for key in ("shift", "scale", "quantiles"):
        if key in fitted:
            np.testing.assert_allclose(np.asarray(got[key], float),
                                       np.asarray(fitted[key], float), atol=1e-12)


def test_a_column_of_too_many_levels_over_the_pieces_is_refused_naming_its_option(
        tmp_path, monkeypatch):
    monkeypatch.setattr(categories, "MAX_EMBEDDED", 66)  # the bound, made small to reach
    frame = _frame(700).assign(id=[f"run{i // 10}" for i in range(700)])  # 10 a piece
    path = _parquet(tmp_path / "t.parquet", frame)
    with pytest.raises(FcnnError) as error:
        stream.prepare(open_source(path), TrainConfig(), ["y"], ["x", "id"],
                       categorical=["id"])
    assert str(error.value).endswith("categorical column 'id' has at least 70 levels, past "
                                     "the 66 a column may take (one-hot up to 64, a "
                                     "learned embedding beyond); leave it out of --categorical "
                                     "and --features")
    assert error.value.options == ("categorical",)


def test_a_text_column_not_named_that_later_pieces_take_past_64_levels_is_refused(tmp_path):
    """In memory such a column is left out (its levels counted first); a stream chose it by
    its first piece, and must not embed it unasked: one line says what to do."""
    frame = _frame(700).assign(note=[f"n{i // 100}" if i < 100 else f"n{i}"
                                     for i in range(700)])  # 1 level in the first piece
    path = _parquet(tmp_path / "t.parquet", frame)
    with pytest.raises(FcnnError, match=r"t\.parquet: column 'note' has at least \d+ levels, "
                       "more than the 64 one-hot inputs of a column taken by its type; name "
                       "it with --categorical for a learned embedding, or leave it out of "
                       "--features$"):
        stream.prepare(open_source(path), TrainConfig(), ["y"])
    named = stream.prepare(open_source(path), TrainConfig(), ["y"], categorical=["note"])
    assert "note=<index>" in named.features
    given = stream.prepare(open_source(path), TrainConfig(), ["y"], ["x", "note"])
    assert given.features == ["x", "note=<index>"]  # named in --features: embedded too


@pytest.mark.parametrize("scale", ["standard", "robust"])
def test_a_streamed_column_of_many_levels_is_the_index_the_table_in_memory_makes(tmp_path,
                                                                                  scale):
    frame = _frame(700).assign(id=[f"run{i % 90:02d}" for i in range(700)])
    path = _parquet(tmp_path / "t.parquet", frame)
    config = TrainConfig(scale=scale)
    streamed = stream.prepare(open_source(path), config, ["y"], ["x", "id"], categorical=["id"])
    memory = prepare(Table(pd.read_parquet(path), ["y"], name=path), config, ["y"],
                     ["x", "id"], categorical=["id"])
    assert streamed.categories.levels == memory.categories.levels == {
        "id": [f"run{i:02d}" for i in range(90)]}
    assert streamed.features == memory.features == ["x", "id=<index>"]
    assert streamed.rows_digest == memory.rows_digest
    assert streamed.x_scaler.kept == memory.x_scaler.kept == [1]
    x = np.concatenate([block[0] for block in streamed.blocks(stream.TRAIN)])
    # Index 0 is the unknown level's: run07 is the eighth level, index 8.
    want = np.array([int(v[3:]) + 1 for v in frame["id"]], np.float32)
    assert set(x[:, 1]) <= set(want) and len(set(x[:, 1])) == 90


def test_a_level_of_a_separate_validation_file_never_seen_is_counted(tmp_path, caplog):
    from fcnn_cli.data.sources import FileChunks

    path = _parquet(tmp_path / "t.parquet", _frame())
    val = _frame(50, 1).assign(region="overlap")
    val.to_csv(tmp_path / "val.csv", index=False)
    streamed = stream.prepare(open_source(path), TrainConfig(), ["y"],
                              val=FileChunks(str(tmp_path / "val.csv")))
    assert streamed.sizes["val"] == 50
    assert "val.csv: 50 row(s) of level(s) never seen in training" in caplog.text


def test_a_level_that_only_held_out_rows_hold_is_no_level_of_the_network(tmp_path):
    """Levels are the training rows', in memory and streamed: a held-out row's own level is
    an unseen one (the unknown input), not an input whose weight never trained."""
    from fcnn_cli.engine.prepare import split_indices

    frame, config = _frame(), TrainConfig(val_frac=0.1, test_frac=0.2, seed=4)
    _, val, test = split_indices(len(frame), 0.1, 0.2, 4)
    streamed_out = stream.split_of(np.arange(len(frame)), 0.1, 0.2, 4) != stream.TRAIN
    held = [int(r) for r in np.concatenate([val, test]) if streamed_out[r]][:2]
    assert len(held) == 2  # held out by both splits
    frame.loc[held, "region"] = "overlap"
    path = _parquet(tmp_path / "t.parquet", frame)
    memory = prepare(Table(pd.read_parquet(path), ["y"], name=path), config, ["y"])
    streamed = stream.prepare(open_source(path), config, ["y"])
    for prepared in (memory, streamed):
        levels = prepared.categories.levels["region"]
        assert "overlap" not in levels and {"barrel", "endcap"} <= set(levels)
