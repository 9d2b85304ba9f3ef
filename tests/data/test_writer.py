import pandas as pd
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.writer import TableWriter, write_table


def test_fcnn_csv_reads_in_pandas_with_comment_option(tmp_path, quakes):
    path = tmp_path / "q.csv"
    write_table(quakes, path)
    frame = pd.read_csv(path, comment="#")
    assert list(frame.columns) == list(quakes.frame.columns) and len(frame) == len(quakes.frame)


def test_parquet_output_takes_a_column_empty_in_its_first_chunk(tmp_path):
    with TableWriter(tmp_path / "out.parquet") as writer:
        writer.write(pd.DataFrame({"note": [None, None], "p": [0.5, 1.5]}))
        writer.write(pd.DataFrame({"note": ["word", None], "p": [2.5, 3.5]}))
        writer.write(pd.DataFrame({"note": [7.0, None], "p": [4.5, 5.5]}))
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert back.note.isna().tolist() == [True, True, False, True, False, True]
    assert back.note[2] == "word" and float(back.note[4]) == 7.0 and back.p.tolist()[-1] == 5.5


def test_parquet_output_of_a_column_that_turns_real_is_one_clear_line(tmp_path):
    with pytest.raises(FcnnError, match="changes its type partway .* write CSV instead"):
        with TableWriter(tmp_path / "out.parquet") as writer:
            writer.write(pd.DataFrame({"id": [1, 2]}))
            writer.write(pd.DataFrame({"id": [2.5, 3.0]}))
    assert not (tmp_path / "out.parquet").exists()

