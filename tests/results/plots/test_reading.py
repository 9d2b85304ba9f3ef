"""A run's files as the plots read them: a damaged one is one line naming it."""

import pandas as pd
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.results.plots import plot_run
from plotted import sample_run


@pytest.mark.parametrize("meta, why", [
    ({"position": ["nope", "x"]}, "position"), ({"position": 5}, "position"),
    ({"position": ["x", "x"]}, "position"), ({"classes": ["a", "b"]}, "more than one label"),
    ({"classes": "ab", "position": None}, "classes")])
def test_a_tampered_sample_is_one_line_naming_the_file(tmp_path, meta, why):
    run = sample_run(tmp_path, meta)
    with pytest.raises(FcnnError, match=rf"predictions.parquet: malformed .*{why}"):
        plot_run(run, tmp_path / "out")


def test_classes_on_a_regression_sample_are_refused(tmp_path):
    frame = pd.DataFrame({"c": [1.0, 2.0], "c_pred": [1.5, 2.5]})
    run = sample_run(tmp_path, {"classes": ["a", "b"]}, frame)
    with pytest.raises(FcnnError, match="malformed .*'c' holds '1.0', none of its classes"):
        plot_run(run, tmp_path / "out")


@pytest.mark.parametrize("history, message", [
    ("epoch,train_loss,lr\n1,1.0,0.1\n", "line 2 has no 'val_loss'"),
    ("epoch,train_loss,val_loss,lr\n1,1.0,x,0.1\n", "line 2: val_loss is 'x', not a number")])
def test_a_damaged_history_is_one_line_naming_it(tmp_path, history, message):
    (tmp_path / "history.csv").write_text(history)
    (tmp_path / "config.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    with pytest.raises(FcnnError, match=f"history.csv: malformed: {message}"):
        plot_run(tmp_path, tmp_path / "out")


def test_a_sample_declaring_more_rows_than_a_run_keeps_is_refused_unread(tmp_path, monkeypatch):
    """A small file of many compressed row groups of one value stands for far more rows than
    it weighs: its footer's count is refused before any row is read."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fcnn_cli.results import evaluation

    run = sample_run(tmp_path, {})
    monkeypatch.setattr(evaluation, "PLOT_ROWS", 1000)
    column = np.zeros(1001)
    pq.write_table(pa.table({"x": column, "x_pred": column}), run / "predictions.parquet",
                   row_group_size=10, compression="zstd")
    with pytest.raises(FcnnError, match="predictions.parquet: malformed sample of predictions: "
                                        "it declares 1,001 rows, more than the 1,000 a run keeps"):
        plot_run(run, tmp_path / "out")


@pytest.mark.parametrize("config, most", [('{"train": {"epochs": 3}}', 3), ("{}", 5)])
def test_a_history_of_more_rows_than_epochs_is_refused(tmp_path, monkeypatch, config, most):
    from fcnn_cli.results.plots import reading

    monkeypatch.setattr(reading, "MAX_HISTORY_ROWS", 5)
    (tmp_path / "config.json").write_text(config)
    rows = "".join(f"{i},1,1,1\n" for i in range(1, most + 1))
    (tmp_path / "history.csv").write_text("epoch,train_loss,val_loss,lr\n" + rows)
    assert plot_run(tmp_path, tmp_path / "out")  # as many rows as epochs: drawn
    (tmp_path / "history.csv").write_text("epoch,train_loss,val_loss,lr\n" + rows + "9,1,1,1\n")
    with pytest.raises(FcnnError, match=f"history.csv: malformed: more than {most} rows"):
        plot_run(tmp_path, tmp_path / "out")
