import io
import logging

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.errors import FcnnError
from fcnn_cli.tables import Table, numeric_matrix, read_table, select_columns, write_table


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_keeps_values_labels_and_units(tmp_path, quakes, suffix):
    path = tmp_path / f"q{suffix}"
    write_table(quakes, path)
    back = read_table(path)
    assert back.targets == ["x", "y"]
    assert back.units == quakes.units
    pd.testing.assert_frame_equal(back.frame, quakes.frame)


def test_plain_csv_without_metadata(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2,3\n4,5,6\n")
    t = read_table(path)
    assert t.targets == [] and list(t.frame.columns) == ["a", "b", "label"]
    assert select_columns(t, ["label"]) == (["a", "b"], ["label"])


def test_fcnn_csv_reads_in_pandas_with_comment_option(tmp_path, quakes):
    path = tmp_path / "q.csv"
    write_table(quakes, path)
    frame = pd.read_csv(path, comment="#")
    assert list(frame.columns) == list(quakes.frame.columns) and len(frame) == len(quakes.frame)


def test_unknown_column_is_named_with_the_table_columns():
    t = Table(pd.DataFrame({"a": [1.0], "b": [2.0]}), name="t.csv")
    with pytest.raises(FcnnError, match=r"t\.csv: no label column 'z'; the table has 'a', 'b'"):
        select_columns(t, ["z"])
    with pytest.raises(FcnnError, match=r"no feature column 'q'"):
        select_columns(t, ["a"], ["q"])


def test_no_label_anywhere_asks_for_target():
    t = Table(pd.DataFrame({"a": [1.0]}), name="t.csv")
    with pytest.raises(FcnnError, match="--target"):
        select_columns(t)


def test_non_numeric_columns_are_left_out_with_a_notice(caplog):
    t = Table(pd.DataFrame({"id": ["a", "b"], "f": [1.0, 2.0], "y": [0.5, 0.1]}), name="t")
    with caplog.at_level(logging.INFO, logger="fcnn_cli"):
        features, targets = select_columns(t, ["y"])
    assert features == ["f"] and targets == ["y"]
    assert "'id'" in caplog.text


def test_numeric_matrix_names_column_and_row_of_bad_values():
    t = Table(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["1", "x", "2"]}), name="t.csv")
    with pytest.raises(FcnnError, match=r"column 'b' is not numeric \(row 2: 'x'\)"):
        numeric_matrix(t, ["a", "b"])
    t = Table(pd.DataFrame({"a": [1.0, np.nan, np.inf]}), name="t.csv")
    with pytest.raises(FcnnError, match=r"2 row\(s\).*column 'a' at row 2"):
        numeric_matrix(t, ["a"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numeric_matrix_types_and_float32_range(dtype):
    t = Table(pd.DataFrame({"a": [1.5, 2.0], "b": [3, 4], "c": [True, False]}), name="t.csv")
    x = numeric_matrix(t, ["c", "a", "b"], dtype)
    assert x.dtype == dtype and x.tolist() == [[1.0, 1.5, 3.0], [0.0, 2.0, 4.0]]
    t = Table(pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, -1e39]}), name="t.csv")
    with pytest.raises(FcnnError, match=r"column 'b' holds values beyond float32 range"):
        numeric_matrix(t, ["a", "b"], dtype)


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
    from fcnn_cli.tables import iter_tables

    frame = pd.DataFrame({"a": np.arange(300.0), "b": np.ones(300)}).astype(object)
    frame.loc[250, "b"] = "oops"
    path = tmp_path / "late.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(FcnnError, match=r"late.csv: column 'b' holds 'oops', not a number "
                                        r"\(after row \d+\)"):
        list(iter_tables(path, rows=10))


def test_rows_keep_their_file_numbers_after_dropping_incomplete_ones():
    from fcnn_cli.tables import drop_incomplete

    t = Table(pd.DataFrame({"a": [1.0, np.nan, 2.0, np.nan, 3.0], "b": ["1", "2", "3", "4", "x"]}),
              name="t.csv", first_row=100)
    kept = drop_incomplete(t, ["a"])
    assert len(kept.frame) == 3 and [kept.row(i) for i in range(3)] == [101, 103, 105]
    with pytest.raises(FcnnError, match=r"column 'b' is not numeric \(row 105: 'x'\)"):
        numeric_matrix(kept, ["a", "b"])


@pytest.mark.slow
def test_a_failed_read_never_aborts_the_process(tmp_path):
    """pyarrow's read-ahead thread once called back into Python and outlived the interpreter:
    an exit became SIGABRT ("terminate called without an active exception") once in about 25
    runs reading a file, once in about 8 reading stdin. These 100 runs, two at a time (more
    at once made it rarer), miss such odds with a chance of about 1 in 200."""
    import subprocess
    import sys

    path = tmp_path / "meta.csv"
    path.write_text('# fcnn {"targets": ["x", "y"]}\n')
    command = [sys.executable, "-m", "fcnn_cli", "train", "-o", tmp_path / "r"]
    runs = [(command + ["-"], path)] * 60 + [(command + [path], None)] * 40
    for start in range(0, len(runs), 2):
        procs = [subprocess.Popen(args, stdin=open(stdin) if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for args, stdin in runs[start:start + 2]]
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert (proc.returncode, out) == (1, ""), err
            assert err.count("\n") == 1 and "Empty CSV" in err, err
    assert not (tmp_path / "r").exists()


def test_streamed_csv_keeps_rows_types_and_line_ends_across_blocks(tmp_path):
    from fcnn_cli.tables import iter_tables

    frame = pd.DataFrame({"a": np.arange(500.0) / 7, "b": np.arange(500), "c": ["x y"] * 500})
    text = '# fcnn {"targets": ["b"]}\r\n' + frame.to_csv(index=False, lineterminator="\r\n")
    path = tmp_path / "crlf.csv"
    path.write_bytes(text.encode())
    chunks = list(iter_tables(path, rows=7))
    assert len(chunks) > 10 and all(c.targets == ["b"] for c in chunks)
    sizes = [len(c.frame) for c in chunks]
    assert [c.first_row for c in chunks] == [sum(sizes[:i]) for i in range(len(sizes))]
    pd.testing.assert_frame_equal(pd.concat([c.frame for c in chunks], ignore_index=True), frame)


def test_streamed_stdin_and_a_header_longer_than_a_block(monkeypatch):
    from fcnn_cli.tables import iter_tables

    columns = [f"column_{i:04d}" for i in range(300)]
    data = ("# note\n" + ",".join(columns) + "\n" + ",".join(["1"] * 300) + "\n").encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    (chunk,) = iter_tables("-", rows=2)  # a block of 192 bytes: the header takes many
    assert list(chunk.frame.columns) == columns and chunk.frame.iloc[0].tolist() == [1] * 300
