import io

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.columns import numeric_matrix, select_columns
from fcnn_cli.data.tables import Table, read_columns, read_table
from fcnn_cli.data.writer import write_table


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_keeps_values_labels_and_units(tmp_path, quakes, suffix):
    path = tmp_path / f"q{suffix}"
    write_table(quakes, path)
    back = read_table(path)
    assert back.targets == ["x", "y"]
    assert back.units == quakes.units
    pd.testing.assert_frame_equal(back.frame, quakes.frame)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".h5"])
def test_the_columns_are_read_without_the_rows(tmp_path, quakes, suffix):
    if suffix == ".h5":
        pytest.importorskip("h5py")
    path = tmp_path / f"q{suffix}"
    write_table(quakes, path)
    assert read_columns(path) == list(quakes.frame.columns)
    path.with_suffix(".csv").write_text("a;b c\n")  # a header alone
    assert read_columns(path.with_suffix(".csv")) == ["a", "b c"]


def test_plain_csv_without_metadata(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2,3\n4,5,6\n")
    t = read_table(path)
    assert t.targets == [] and list(t.frame.columns) == ["a", "b", "label"]
    assert select_columns(t, ["label"]) == (["a", "b"], ["label"])


def test_stdin(monkeypatch):
    data = b'# fcnn {"targets": ["y"]}\nf,y\n1,2\n3,4\n'
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    t = read_table("-")
    assert t.targets == ["y"] and t.name == "<stdin>"
    assert t.frame.f.tolist() == [1, 3]


def test_missing_file_directory_and_unknown_suffix(tmp_path):
    with pytest.raises(FcnnError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(FcnnError, match="is a directory"):
        read_table(tmp_path)
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(FcnnError, match="suffix"):
        read_table(tmp_path / "t.xlsx")


def test_streamed_csv_names_the_column_of_late_text(tmp_path):
    from fcnn_cli.data.tables import iter_tables

    frame = pd.DataFrame({"a": np.arange(300.0), "b": np.ones(300)}).astype(object)
    frame.loc[250, "b"] = "oops"
    path = tmp_path / "late.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(FcnnError, match=r"late.csv: column 'b' holds 'oops', not a number "
                                        r"\(after row \d+\)"):
        list(iter_tables(path, rows=10))


def test_messages_quote_long_values_cut_short():
    t = Table(pd.DataFrame({"a": [1.0, 2.0], "b": ["1", "z" * 10_000]}), name="t.csv")
    with pytest.raises(FcnnError) as error:
        numeric_matrix(t, ["a", "b"])
    assert "row 2: 'zzz" in str(error.value) and len(str(error.value)) < 120


def test_a_table_read_to_train_holds_its_float_features_in_float32(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"a": rng.normal(size=500), "n": np.arange(500),
                          "s": ["p", "q"] * 250, "y": rng.normal(size=500),
                          "h": np.r_[rng.normal(size=499), 1e39],
                          "g": np.r_[np.nan, rng.normal(size=499)]})
    path = tmp_path / "t.parquet"
    write_table(Table(frame, ["y"]), path)
    pq.write_table(pq.read_table(path), path, row_group_size=64)  # several row groups
    plain, narrow = read_table(path), read_table(path, narrow=())
    assert list(narrow.frame.columns) == list(frame.columns) and narrow.targets == ["y"]
    assert {c: str(t) for c, t in narrow.frame.dtypes.items() if c != "s"} == \
        {"a": "float32", "n": "int64", "y": "float64", "h": "float64", "g": "float32"}
    assert narrow.frame["s"].tolist() == plain.frame["s"].tolist()
    assert np.array_equal(numeric_matrix(narrow, ["a", "n"]), numeric_matrix(plain, ["a", "n"]))
    assert np.array_equal(narrow.frame["g"].to_numpy(), plain.frame["g"].to_numpy(np.float32),
                          equal_nan=True)  # a missing value stays missing
    with pytest.raises(FcnnError, match="'h' holds values beyond float32"):
        numeric_matrix(narrow, ["a", "h"])
    assert read_table(path, narrow=["a"]).frame.dtypes["a"] == np.float64  # a label
    # the labels the file records are kept as read too (a categorical column named is so)
    assert read_table(path, narrow=["a"]).frame.dtypes["y"] == np.float64
    assert read_table(path, narrow=["a"]).frame.dtypes["g"] == np.float32
    assert pa.types.is_float64(pq.read_schema(path).field("a").type)  # the file is untouched



def test_stdin_and_pipes_are_told_from_files(tmp_path):
    """What cannot be read twice: stdin, a named pipe (not opened to tell: that would wait for
    a writer), a tree of one; a file, a directory, one not there are not."""
    import os

    from fcnn_cli.data.tables import is_pipe

    os.mkfifo(tmp_path / "f.root")
    (tmp_path / "t.csv").write_text("x\n1\n")
    assert [is_pipe(p) for p in ("-", tmp_path / "f.root", f"{tmp_path / 'f.root'}:tree")] == \
        [True] * 3
    assert [is_pipe(p) for p in (tmp_path / "t.csv", tmp_path, tmp_path / "none.csv")] == \
        [False] * 3
