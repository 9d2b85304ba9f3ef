"""Labels and features of a table, as numbers, and the rows that lack a value."""

import json
import logging

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.data.columns import numeric_matrix, select_columns
from fcnn_cli.data.categories import MAX_LEVELS
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import Table, read_table


def test_unknown_column_is_named_with_the_table_columns():
    t = Table(pd.DataFrame({"a": [1.0], "b": [2.0]}), name="t.csv")
    with pytest.raises(FcnnError, match=r"t\.csv: no label column 'z'; the table has 'a', 'b'"):
        select_columns(t, ["z"])
    with pytest.raises(FcnnError, match=r"no feature column 'q'"):
        select_columns(t, ["a"], ["q"])


def test_no_label_anywhere_asks_for_target():
    t = Table(pd.DataFrame({"a": [1.0]}), name="t.csv")
    with pytest.raises(FcnnError, match="name one with targets") as error:
        select_columns(t)
    assert error.value.options == ("targets",)


def test_text_columns_of_few_levels_are_features_others_left_out_with_a_notice(caplog):
    many = [f"event{i}" for i in range(MAX_LEVELS + 1)]
    t = Table(pd.DataFrame({"id": many, "region": ["a", "b"] * (len(many) // 2) + ["a"],
                            "f": np.arange(len(many), dtype=float), "y": 0.5}), name="t")
    with caplog.at_level(logging.INFO, logger="fcnn_cli"):
        features, targets = select_columns(t, ["y"])
    assert features == ["region", "f"] and targets == ["y"]
    assert "leaving out column(s) 'id': neither numbers nor of at most " \
        f"{MAX_LEVELS} short levels" in caplog.text


def test_a_text_column_of_numbers_alone_is_text_one_with_a_stray_word_a_typo(logged):
    t = Table(pd.DataFrame({"id": ["00123", "00124", " 77", "0099"], "f": [1.0, 2, 3, 4],
                            "y": [0.5, 0.1, 0.2, 0.3]}), name="t")
    assert select_columns(t, ["y"]) == (["id", "f"], ["y"])  # levels, as text
    with pytest.raises(FcnnError, match=r"^t: column 'id' is not numeric$"):
        numeric_matrix(t, ["id"])  # named as a feature: one line, with no row to point at
    typo = Table(pd.DataFrame({"id": [*map(str, range(12)), "n/a"], "y": np.arange(13.0)}),
                 name="t")
    with pytest.raises(FcnnError, match=r"^t: column 'id' holds numbers but not only: row 13 "
                                        r"holds 'n/a'$"):
        select_columns(typo, ["y"])


def _with_ids(frame, path):
    """``frame`` with a text column of identifiers that are digits ("00000", …), as Parquet."""
    frame.assign(id=[f"{i:05d}" for i in range(len(frame))]).to_parquet(path)
    return path


@pytest.mark.parametrize("case", ["memory", "stream", "sweep", "partitions"])
def test_digits_stored_as_text_never_end_in_a_traceback(tmp_path, runner, quakes, case):
    """In memory, streamed, in a sweep, and as a hive partition key that is digits in one
    directory and text in another: the column is text, of too many levels to be a feature;
    the key, text of two levels, is a categorical one."""
    from fcnn_cli.commands import cli

    frame = quakes.frame.iloc[:300]
    data = _with_ids(frame, tmp_path / "q.parquet")
    if case == "partitions":
        data = tmp_path / "d"
        for run, part in (("1", frame.iloc[:150]), ("abc", frame.iloc[150:])):
            (data / f"run={run}").mkdir(parents=True)
            part.to_parquet(data / f"run={run}" / "part.parquet")
    command = "sweep" if case == "sweep" else "train"
    stream = ["--stream"] if case in ("stream", "partitions") else []
    grid = ["--grid", "depth=1"] if case == "sweep" else []
    done = runner.invoke(cli, [command, str(data), "-t", "x", "-t", "y", *stream, *grid,
                               "--epochs", "1", "-q", "-o", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    configs = list((tmp_path / "out").rglob("config.json"))
    assert len(configs) == 1
    features = json.loads(configs[0].read_text())["features"]
    assert "tp1" in features and "id" not in features
    assert ("run" in features) == (case == "partitions")


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


def test_rows_keep_their_file_numbers_after_dropping_incomplete_ones():
    from fcnn_cli.data.columns import drop_incomplete

    t = Table(pd.DataFrame({"a": [1.0, np.nan, 2.0, np.nan, 3.0], "b": ["1", "2", "3", "4", "x"]}),
              name="t.csv", first_row=100)
    kept = drop_incomplete(t, ["a"])
    assert len(kept.frame) == 3 and [kept.row(i) for i in range(3)] == [101, 103, 105]
    with pytest.raises(FcnnError, match=r"column 'b' is not numeric \(row 105: 'x'\)"):
        numeric_matrix(kept, ["a", "b"])


def test_blank_text_of_a_label_is_missing_and_dropped_as_a_null():
    """An empty CSV cell of a text column is read as "": no class, of a label; a feature's
    blank text (a categorical level) is left as it is."""
    from fcnn_cli.data.columns import drop_incomplete, unlabelled

    frame = pd.DataFrame({"side": ["east", "", None, "  ", "west"],
                          "level": ["", "a", "b", "c", " "], "n": [1.0, np.nan, 0.0, 1.0, 0.0]})
    assert unlabelled(frame.side).tolist() == [False, True, True, True, False]
    assert unlabelled(frame.n).tolist() == [False, True, False, False, False]
    assert unlabelled(frame.side.astype("category")).tolist() == [False, True, True, True, False]
    t = Table(frame, ["side"], name="t.csv")
    kept = drop_incomplete(t, ["level", "side"], labels=["side"])
    assert kept.frame.side.tolist() == ["east", "west"] and kept.row(1) == 5
    assert drop_incomplete(t, ["level", "side"]).frame.side.tolist() == [
        "east", "", "  ", "west"]


@pytest.mark.parametrize("targets, features, message", [
    (["x", "x"], None, "targets names column 'x' twice"),
    (["x"], ["a", "b", "a"], "features names column 'a' twice"),
    (["x"], ["a", "x"], "column 'x' is both a label and a feature"),
])
def test_columns_named_twice_are_refused(targets, features, message):
    t = Table(pd.DataFrame({"a": [1.0], "b": [2.0], "x": [3.0]}), name="t.csv")
    with pytest.raises(FcnnError, match=f"^t\\.csv: {message}$"):
        select_columns(t, targets, features)


def test_repeated_labels_in_the_file_metadata_are_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('# fcnn {"targets": ["y", "y"]}\na,y\n1,2\n3,4\n')
    with pytest.raises(FcnnError, match=r"t\.csv: targets names column 'y' twice"):
        select_columns(read_table(path))


@pytest.fixture
def nested(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 4
    arrow = pa.table({"a": [1.0, 2.0, 3.0, 4.0], "y": [0.1, 0.2, 0.3, 0.4],
                      "lst": pa.array([[1.0, 2.0]] * n),
                      "st": pa.array([{"u": 1, "v": "w"}] * n),
                      "mp": pa.array([[("k", 1)]] * n, type=pa.map_(pa.string(), pa.int64()))})
    pq.write_table(arrow, tmp_path / "nested.parquet")
    return read_table(tmp_path / "nested.parquet")


@pytest.mark.parametrize("column, kind", [("lst", "lists of float64"),
                                          ("st", r"structs \(fields 'u', 'v'\)"),
                                          ("mp", "lists")])
def test_nested_columns_are_refused_as_labels_and_features(nested, column, kind):
    hint = "; flatten it to one value per row"
    with pytest.raises(FcnnError, match=f"^.*nested.parquet: label column '{column}' holds "
                                        f"{kind}, not numbers or class names{hint}"):
        select_columns(nested, [column])
    with pytest.raises(FcnnError, match=f"feature column '{column}' holds {kind}, not "
                                        f"numbers{hint}"):
        select_columns(nested, ["y"], ["a", column])
    with pytest.raises(FcnnError, match=f"column '{column}' holds {kind}, not numbers{hint}"):
        numeric_matrix(nested, ["a", column])


def test_unused_nested_columns_are_left_out(nested, caplog):
    with caplog.at_level(logging.INFO, logger="fcnn_cli"):
        assert select_columns(nested, ["y"]) == (["a"], ["y"])
    assert "'lst', 'st', 'mp'" in caplog.text


def test_numeric_rows_are_the_matrix_rows_and_refuse_alike():
    from fcnn_cli.data.columns import numeric_rows

    frame = pd.DataFrame({"a": np.arange(10.0) / 3, "b": np.arange(10), "c": [True, False] * 5})
    t = Table(frame, name="t.csv")
    rows = [np.array([3, 1, 7]), np.array([], dtype=np.int64), np.array([9, 0])]
    whole = numeric_matrix(t, ["a", "b", "c"])
    for part, r in zip(numeric_rows(t, ["a", "b", "c"], rows), rows):
        assert part.dtype == np.float32 and np.array_equal(part, whole[r])
    for bad, message in ((np.nan, "1 row.* hold NaN"), (1e39, "beyond float32 range")):
        broken = Table(frame.assign(a=frame["a"].where(frame.index != 4, bad)), name="t.csv")
        with pytest.raises(FcnnError, match=message):
            numeric_matrix(broken, ["a", "b"])
        with pytest.raises(FcnnError, match=message):
            numeric_rows(broken, ["a", "b"], rows)
        with pytest.raises(FcnnError, match=message) as error:  # 'b' gone when 'a' fails
            numeric_rows(Table(broken.frame[["b", "a"]], name="t.csv"), ["b", "a"], rows,
                         consume=True)
        assert "column 'a'" in str(error.value)


def test_consumed_columns_leave_the_table_and_give_the_same_rows():
    from fcnn_cli.data.columns import numeric_rows

    frame = pd.DataFrame({"a": np.arange(6.0), "b": np.arange(6) * 2, "c": list("uvwxyz")})
    t = Table(frame.copy(), name="t.csv")
    rows = [np.array([5, 0, 2]), np.array([1])]
    kept = numeric_rows(Table(frame, name="t.csv"), ["b", "a"], rows)
    taken = numeric_rows(t, ["b", "a"], rows, consume=True)
    assert all(np.array_equal(k, g) for k, g in zip(kept, taken))
    assert list(t.frame.columns) == ["c"] and list(frame.columns) == ["a", "b", "c"]


def python_calls(work):
    """How many Python function calls ``work()`` makes: a measure of its steps that no
    machine's speed or load changes."""
    import sys

    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        work()
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_wide_table_takes_steps_linear_in_its_columns_to_train_on(tmp_path, suffix):
    from fcnn_cli.engine.prepare import prepare
    from fcnn_cli.data.writer import write_table
    from fcnn_cli.engine.train import TrainConfig

    def steps(columns):
        rng = np.random.default_rng(columns)
        frame = pd.DataFrame(rng.normal(size=(50, columns + 1)),
                             columns=[f"f{i}" for i in range(columns)] + ["y"])
        path = tmp_path / f"wide{columns}{suffix}"
        write_table(Table(frame, ["y"], {"y": "m", **{f"f{i}": "s" for i in range(columns)}}),
                    path)
        return python_calls(lambda: prepare(read_table(path, narrow=()), TrainConfig(),
                                            consume=True))

    # Time quadratic in the columns shows as four times the steps at twice the columns.
    assert steps(800) < 2.5 * steps(400)


@pytest.mark.slow
def test_train_evaluate_and_predict_on_3000_columns(runner, tmp_path):
    from fcnn_cli.commands import cli

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(50, 3000)), columns=[f"f{i}" for i in range(3000)])
    frame["y"] = frame["f0"] - frame["f1"]
    frame.to_csv(tmp_path / "wide.csv", index=False)
    trained = runner.invoke(cli, ["train", str(tmp_path / "wide.csv"), "-t", "y", "--epochs", "2",
                                  "--no-plots", "-q", "-o", str(tmp_path / "run")])
    assert trained.exit_code == 0, trained.output
    model = str(tmp_path / "run" / "model.pt")
    evaluated = runner.invoke(cli, ["evaluate", model, str(tmp_path / "wide.csv"), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    predicted = runner.invoke(cli, ["predict", model, str(tmp_path / "wide.csv"), "--keep", "f2",
                                    "-o", str(tmp_path / "p.parquet")])
    assert predicted.exit_code == 0, predicted.output
    out = pd.read_parquet(tmp_path / "p.parquet")
    assert list(out.columns) == ["f2", "y_pred"] and np.array_equal(out["f2"], frame["f2"])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["features"] == \
        [f"f{i}" for i in range(3000)]


def test_the_weight_column_is_no_default_feature_but_may_be_named_one():
    t = Table(pd.DataFrame({"f": [1.0, 2.0], "w": [0.5, 2.0], "y": [0.5, 0.1]}), name="t")
    assert select_columns(t, ["y"], weight="w") == (["f"], ["y"])
    assert select_columns(t, ["y"], ["f", "w"], weight="w") == (["f", "w"], ["y"])
    with pytest.raises(FcnnError, match=r"^t: no weight column 'v'; the table has"):
        select_columns(t, ["y"], weight="v")
    with pytest.raises(FcnnError, match="'y' cannot be both the label and the events' weight"):
        select_columns(t, ["y"], weight="y")


def test_without_finite_missing_values_come_as_nan_and_bad_types_are_still_refused():
    frame = pd.DataFrame({"a": [1.0, np.nan, np.inf], "b": pd.array([1, None, 3], "Int64"),
                          "c": [True, False, True], "s": ["x", "y", "z"]})
    t = Table(frame, name="t")
    x = numeric_matrix(t, ["a", "b", "c"], finite=False)
    np.testing.assert_array_equal(x, np.array([[1, 1, 1], [np.nan, np.nan, 0], [np.inf, 3, 1]],
                                              np.float32))
    with pytest.raises(FcnnError, match="column 's' is not numeric"):
        numeric_matrix(t, ["a", "s"], finite=False)
    with pytest.raises(FcnnError, match="2 row.s. hold NaN"):
        numeric_matrix(t, ["a", "b"])
