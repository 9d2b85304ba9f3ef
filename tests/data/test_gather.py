"""The table a run trains on, gathered from its files by a recipe: each file read for the
columns the run needs alone, and a streamed directory read as the one source it is."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import gather, samples, tables
from fcnn_cli.data.recipe import Recipe


def _parquet(path, n, seed):
    rng = np.random.default_rng(seed)
    columns = {name: rng.normal(size=n) for name in ("a", "b", "c", "w", "d")}
    columns["junk"] = [f"note {i}" * 50 for i in range(n)]  # text, wide: never read
    pq.write_table(pa.table(columns), path)
    return path


@pytest.fixture
def read_columns(monkeypatch):
    """The columns of each raw table read, as the readers hand them over."""
    seen = []
    made = tables._table_from_frame

    def spy(frame, meta, name):
        seen.append(list(frame.columns))
        return made(frame, meta, name)
    monkeypatch.setattr(tables, "_table_from_frame", spy)
    return seen


def _recipe(tmp_path, **options):
    files = [_parquet(tmp_path / f"{k}.parquet", 40, seed) for seed, k in enumerate("sb")]
    recipe = Recipe.of_options([f"s={files[0]}*2", f"b={files[1]}"], label="sample",
                               **options).find()
    return recipe


def test_a_file_is_read_for_the_columns_the_run_needs_alone(tmp_path, read_columns):
    recipe = _recipe(tmp_path, define=["x=a*b"], where="c > -1", weight="abs(w)")
    (table, *_), features = gather.training_tables(recipe, [None, None, None], ["sample"],
                                                   ["x"])
    assert read_columns == [["a", "b", "c", "w"]] * 2
    assert features == ["x"] and list(table.frame.columns) == ["x", "sample", "event_weight"]


def test_a_validation_file_is_read_for_those_columns_too(tmp_path, read_columns):
    data, val = (_parquet(tmp_path / f"{k}.parquet", 20, seed) for seed, k in enumerate("dv"))
    recipe = Recipe.of_options(define=["x=a*b"], weight="w")
    recipe.samples = [samples.Sample(None, [str(data)])]
    tables_read, _ = gather.training_tables(recipe.find(), [str(data), str(val), None], ["c"],
                                            ["x"])
    assert read_columns == [["a", "b", "c", "w"]] * 2
    assert list(tables_read[1].frame.columns) == ["x", "c", "w"]


def test_default_features_read_every_column(tmp_path, read_columns):
    recipe = _recipe(tmp_path, weight="w")
    gather.training_tables(recipe, [None, None, None], ["sample"], None)
    assert all("junk" in columns and "d" in columns for columns in read_columns)


def test_named_features_without_labels_keep_the_labels_the_file_records(tmp_path):
    """Features named, labels left to the file's record and a weight expression: the recorded
    labels are kept (known only once the file is read), beside the features and the weight."""
    from fcnn_cli.data.writer import write_table

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, 0.1, 0.2], "y": [3.0, 1.0, 2.0]})
    path = tmp_path / "d.parquet"
    write_table(tables.Table(frame, ["y"]), path)
    recipe = Recipe.of_options(weight="abs(b) + 1")
    recipe.samples = [samples.Sample(None, [str(path)])]
    (table, *_), features = gather.training_tables(recipe.find(), [str(path), None, None], None,
                                                   ["a"])
    assert features == ["a"] and table.targets == ["y"]
    assert table.frame["y"].tolist() == [3.0, 1.0, 2.0]
    assert table.frame[recipe.weight_column].tolist() == pytest.approx([1.5, 1.1, 1.2], 1e-6)


def test_each_format_reads_the_columns_asked_for(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "z": [5.0, 6.0]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.parquet"):
        for narrow in (None, ()):
            table = tables.read_table(tmp_path / name, narrow, columns=["z", "a", "gone"])
            assert list(table.frame.columns) == ["a", "z"], name


def test_a_root_file_reads_the_branches_asked_for(tmp_path, read_columns):
    pytest.importorskip("uproot")
    import dimuon

    dimuon.write(tmp_path / "e.root", 20, 1)
    table = tables.read_table(tmp_path / "e.root", columns=["genWeight", "nMuon"])
    assert list(table.frame.columns) == ["nMuon", "genWeight"] == read_columns[0]
    assert len(table.frame) == 20

    lists = tables.read_table(tmp_path / "e.root", columns=["Muon_Px"])  # jagged alone
    assert list(lists.frame.columns) == ["Muon_Px"] and len(lists.frame) == 20


@pytest.mark.parametrize("features", [["Muon_Px_0", "Muon_Px_1"], ["Muon_Px_0", "genWeight"],
                                      ["pt0"]])
@pytest.mark.parametrize("suffix", ["root", "parquet"])
def test_features_made_by_objects_or_definitions_read_what_every_definition_needs(
        tmp_path, features, suffix):
    pytest.importorskip("uproot")
    import dimuon

    paths = []
    for seed in (1, 2):
        path = tmp_path / f"e{seed}.root"
        dimuon.write(path, 20, seed, mixed=seed == 2)
        if suffix == "parquet":
            frame = tables.read_table(path).frame
            path = tmp_path / f"e{seed}.parquet"
            pq.write_table(pa.Table.from_pandas(frame.map(
                lambda v: list(v) if isinstance(v, np.ndarray) else v), preserve_index=False),
                path)
        paths.append(path)
    recipe = Recipe.of_options([f"s={paths[0]}", f"b={paths[1]}"], ["pt0=hypot(Muon_Px[0], "
                               "Muon_Py[0])"], ["Muon:2"], label="sample").find()
    (table, *_), chosen = gather.training_tables(recipe, [None, None, None], ["sample"],
                                                 features)
    assert chosen == features and len(table.frame) == 40


def _partitioned(tmp_path, quake_frame):
    from pieces import write_parquet

    for k, site in enumerate(["north", "south", "west"]):
        write_parquet(quake_frame.iloc[k * 1000:(k + 1) * 1000],
                      tmp_path / "d" / f"site={site}" / "part.parquet", ["x", "y"], 250)
    return tmp_path / "d"


def test_a_streamed_directory_with_a_weight_keeps_its_partitions(tmp_path, quake_frame):
    from fcnn_cli.core.config import DataConfig

    d = _partitioned(tmp_path, quake_frame)
    recipe = gather.of_config(DataConfig(data=str(d), weight="tp2"), stream=True).find()
    (source, *_), _ = gather.streamed_tables(recipe, [str(d), None, None], None, None)
    assert sum(source.pieces) == 3000
    assert source.read(11).frame["site"].unique().tolist() == ["west"]
    assert [r["path"] for r in recipe.samples[0].records] == \
        [str(d / f"site={s}" / "part.parquet") for s in ("north", "south", "west")]


def test_files_are_recorded_as_read_and_a_changed_one_refused_on_resume(tmp_path):
    recipe = _recipe(tmp_path, weight="w")
    gather.training_tables(recipe, [None, None, None], ["sample"], ["a"])
    saved = [dict(r) for s in recipe.samples for r in s.records]
    assert [r["path"] for r in saved] == [str(tmp_path / "s.parquet"), str(tmp_path / "b.parquet")]
    resumed = Recipe.from_dict(recipe.to_dict()).find()
    gather.training_tables(resumed, [None, None, None], ["sample"], ["a"])  # as it was: taken
    _parquet(tmp_path / "b.parquet", 41, 1)
    for read in (gather.training_tables, gather.streamed_tables):
        resumed = Recipe.from_dict(recipe.to_dict()).find()
        with pytest.raises(FcnnError, match=f"^{tmp_path}/b.parquet: not the file this run "
                           r"started with \(its size or content differ\); cannot resume$"):
            read(resumed, [None, None, None], ["sample"], ["a"])


def test_a_sample_that_weighs_0_in_all_is_named(tmp_path):
    recipe = _recipe(tmp_path, weight="w * 0")
    with pytest.raises(FcnnError, match=r"^sample 's' weighs 0 in all its 40 rows \(weight "
                                        r"w \* 0\)"):
        gather.training_tables(recipe, [None, None, None], ["sample"], ["a"])
