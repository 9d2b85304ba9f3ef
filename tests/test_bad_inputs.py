"""A corpus of broken and awkward tables, each tried with train, evaluate and predict.

Every broken one must end with a non-zero exit and one error line that names the file (and
the column or row where there is one), no traceback, and no output created or overwritten;
the awkward but legitimate ones (BOM, CRLF, quoted numbers, semicolons, unicode names) must
give correct results.
"""

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.cli import cli
from fcnn_cli.simulate import earthquakes

BASE = earthquakes(n=40, seed=11).frame
LABELS = ["-t", "x", "-t", "y"]


def csv_text(frame):
    return frame.to_csv(index=False)


def with_value(column, row, value, frame=BASE):
    frame = frame.astype({column: object}) if isinstance(value, str) else frame.copy()
    frame.loc[row, column] = value
    return frame


# name: (file content: str/bytes for CSV text or a DataFrame, expected outcome per command)
# outcome: "ok", or the text the error line must hold besides the file name.
CASES = {
    "empty": (b"", {"all": "Empty CSV"}),
    "header_only": (",".join(BASE.columns) + "\n",
                    {"train": "too few rows", "evaluate": "no rows", "predict": "ok"}),
    "one_row": (BASE.head(1), {"train": "too few rows", "evaluate": "ok", "predict": "ok"}),
    "missing_target": (BASE.drop(columns=["x"]),
                       {"train": "'x'", "evaluate": "'x'", "predict": "ok"}),
    "missing_feature": (BASE.drop(columns=["ts2"]),
                        {"train": "ok", "evaluate": "'ts2'", "predict": "'ts2'"}),
    "duplicate_columns": ("x,y,tp1,tp1\n1,2,3,4\n5,6,7,8\n", {"all": "duplicate"}),
    "text_in_numbers": (with_value("tp3", 4, "oops"), {"all": "'tp3'"}),
    "mostly_text": (with_value("ts1", slice(0, 30), "unknown"),
                    {"train": "ok", "evaluate": "'ts1'", "predict": "'ts1'"}),
    "nan_feature": (with_value("tp2", 7, np.nan), {"all": "'tp2'"}),
    "inf_feature": (with_value("ts4", 3, np.inf), {"all": "'ts4'"}),
    "minus_inf_target": (with_value("y", 9, -np.inf),
                         {"train": "'y'", "evaluate": "'y'", "predict": "ok"}),
    "nan_target": (with_value("x", 2, np.nan),
                   {"train": "'x'", "evaluate": "'x'", "predict": "ok"}),
    "huge_values": (with_value("tp1", 0, 1e300), {"all": "'tp1'"}),
    "ragged_row": (csv_text(BASE) + "1,2,3\n", {"all": "columns"}),
    "blank_header": (",".join(["x", "y", ""] + list(BASE.columns[3:])) + "\n" +
                     csv_text(BASE).split("\n", 1)[1], {"all": "no name"}),
    "bad_metadata": ('# fcnn {"targets": 5}\n' + csv_text(BASE), {"all": "metadata"}),
    "binary_csv": (bytes(range(256)) * 20, {"all": "binary"}),
    "semicolons": (BASE.to_csv(index=False, sep=";"), {"all": "ok"}),
    "tabs": (BASE.to_csv(index=False, sep="\t"), {"all": "ok"}),
    "bom_crlf": (b"\xef\xbb\xbf" + csv_text(BASE).replace("\n", "\r\n").encode(),
                 {"all": "ok"}),
    "quoted_numbers": (BASE.to_csv(index=False, quoting=1), {"all": "ok"}),
    "constant_feature": (BASE.assign(tp4=1.0), {"train": "ok", "evaluate": "ok",
                                                "predict": "ok"}),
    "unicode_names": (BASE.rename(columns={"ts3": "τₛ₃ (s)"}),
                      {"train": "ok", "evaluate": "'ts3'", "predict": "'ts3'"}),
    "metadata_only": ('# fcnn {"targets": ["x", "y"]}\n', {"all": "Empty CSV"}),
    "comments_only": ("# made by hand\n# fcnn {}\n", {"all": "Empty CSV"}),
}
PARQUET_CASES = {
    "parquet_nan_feature": (with_value("tp2", 7, np.nan), {"all": "'tp2'"}),
    "parquet_text_in_numbers": (with_value("tp3", 4, "oops", BASE.astype({"tp3": str})),
                                {"all": "'tp3'"}),
    "parquet_missing_feature": (BASE.drop(columns=["ts2"]),
                                {"train": "ok", "evaluate": "'ts2'", "predict": "'ts2'"}),
    "parquet_truncated": ("truncate", {"all": "Parquet"}),
    "parquet_empty_file": (b"", {"all": "Parquet"}),
    "parquet_duplicate_columns": ("duplicate", {"all": "duplicate"}),
}


def make(tmp_path, name, content):
    if name.startswith("parquet"):
        path = tmp_path / f"{name}.parquet"
        if isinstance(content, pd.DataFrame):
            content.to_parquet(path)
        elif content == "truncate":
            BASE.to_parquet(path)
            path.write_bytes(path.read_bytes()[:300])
        elif content == "duplicate":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table([[1.0], [2.0], [3.0]], names=["x", "y", "y"]), path)
        else:
            path.write_bytes(content)
        return path
    path = tmp_path / f"{name}.csv"
    if isinstance(content, pd.DataFrame):
        content.to_csv(path, index=False)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def expect(runner, args, outcome, path, guarded):
    """Run one command; check its outcome and that ``guarded`` outputs are untouched."""
    before = {p: p.read_bytes() if p.exists() else None for p in guarded}
    result = runner.invoke(cli, [str(a) for a in args])
    if outcome == "ok":
        assert result.exit_code == 0, result.output
        return result
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is None or \
        isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert path.name in errors[0] and outcome in errors[0], errors[0]
    for p, content in before.items():
        assert (p.read_bytes() if p.exists() else None) == content, p
    return result


ALL = {**CASES, **PARQUET_CASES}


@pytest.mark.parametrize("name", sorted(ALL))
def test_bad_table(runner, tmp_path, model_path, name):
    content, outcomes = ALL[name]
    path = make(tmp_path, name, content)
    outcome = {c: outcomes.get(c, outcomes.get("all")) for c in ("train", "evaluate", "predict")}
    run_dir, report, preds = tmp_path / "run", tmp_path / "report.json", tmp_path / "pred.csv"
    report.write_text("old report")
    preds.write_text("old predictions")
    expect(runner, ["train", path, *LABELS, "--epochs", 1, "-q", "-o", run_dir],
           outcome["train"], path, [run_dir / "model.pt"])
    if outcome["train"] != "ok":
        assert not run_dir.exists()
    expect(runner, ["evaluate", model_path, path, "-o", report], outcome["evaluate"], path,
           [report])
    expect(runner, ["predict", model_path, path, "-o", preds], outcome["predict"], path, [preds])
    if outcome["predict"] == "ok":
        rows = {"header_only": 0, "one_row": 1}.get(name, len(BASE))
        assert len(pd.read_csv(preds)) == rows


def test_corpus_size():
    assert len(ALL) >= 25


def test_awkward_but_legitimate_files_give_the_same_predictions(runner, tmp_path, model_path):
    plain = make(tmp_path, "plain", BASE)
    reference = runner.invoke(cli, ["predict", str(model_path), str(plain)]).stdout
    for name in ("semicolons", "tabs", "bom_crlf", "quoted_numbers"):
        path = make(tmp_path, name, CASES[name][0])
        assert runner.invoke(cli, ["predict", str(model_path), str(path)]).stdout == reference


def test_nan_drop_counts_and_leaves_rows_out(runner, tmp_path, model_path):
    frame = with_value("tp2", [1, 5], np.nan)
    path = make(tmp_path, "holes", frame)
    result = runner.invoke(cli, ["predict", str(model_path), str(path), "--nan", "drop",
                                 "--keep", "x"])
    assert result.exit_code == 0, result.output
    assert "leaving out 2 row(s)" in result.stderr and "'tp2': 2" in result.stderr
    out = pd.read_csv(__import__("io").StringIO(result.stdout))
    assert len(out) == len(BASE) - 2 and not out.x.isin(BASE.x[[1, 5]]).any()
    error = runner.invoke(cli, ["predict", str(model_path), str(path)])
    assert "2 row(s)" in error.stderr and "--nan drop" in error.stderr
    result = runner.invoke(cli, ["train", str(path), *LABELS, "--nan", "drop", "--epochs", "1",
                                 "-q", "-o", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    all_nan = make(tmp_path, "all_nan", BASE.assign(tp2=np.nan))
    result = runner.invoke(cli, ["predict", str(model_path), str(all_nan), "--nan", "drop"])
    assert result.exit_code == 1 and "no rows left" in result.stderr


def test_single_class_and_unseen_class(runner, tmp_path):
    frame = BASE.assign(kind=np.where(BASE.x > 0, "east", "west"))
    single = make(tmp_path, "single", frame.assign(kind="east"))
    result = runner.invoke(cli, ["train", str(single), "-t", "kind", "-o", str(tmp_path / "s")])
    assert result.exit_code == 1 and "only one class" in result.stderr
    assert "single.csv" in result.stderr
    data = make(tmp_path, "two", frame)
    assert runner.invoke(cli, ["train", str(data), "-t", "kind", "--epochs", "1", "-q", "-o",
                               str(tmp_path / "m")]).exit_code == 0
    unseen = make(tmp_path, "unseen", frame.assign(kind="north"))
    result = runner.invoke(cli, ["evaluate", str(tmp_path / "m" / "model.pt"), str(unseen)])
    assert result.exit_code == 1 and "'north'" in result.stderr and "unseen.csv" in result.stderr


def test_paths_that_are_not_tables(runner, tmp_path, model_path):
    (tmp_path / "t.xlsx").write_bytes(b"PK")
    for path, words in ((tmp_path, "directory"), (tmp_path / "none.csv", "no such file"),
                        (tmp_path / "t.xlsx", "suffix")):
        result = runner.invoke(cli, ["predict", str(model_path), str(path)])
        assert result.exit_code == 1 and words in result.stderr, result.output


def test_far_outside_training_range_warns(runner, tmp_path, model_path):
    path = make(tmp_path, "far", with_value("tp1", [0, 1, 2], 1e4))
    result = runner.invoke(cli, ["predict", str(model_path), str(path)])
    assert result.exit_code == 0
    assert "3 row(s) hold values far outside the training range" in result.stderr
    assert "'tp1'" in result.stderr
    quiet = runner.invoke(cli, ["predict", str(model_path), str(make(tmp_path, "near", BASE))])
    assert "far outside" not in quiet.stderr


def test_unicode_column_names_round_trip(runner, tmp_path):
    path = make(tmp_path, "unicode", BASE.rename(columns={"ts3": "τₛ₃ (s)", "x": "東"}))
    assert runner.invoke(cli, ["train", str(path), "-t", "東", "-t", "y", "--epochs", "1", "-q",
                               "-o", str(tmp_path / "r")]).exit_code == 0
    result = runner.invoke(cli, ["predict", str(tmp_path / "r" / "model.pt"), str(path)])
    assert result.stdout.splitlines()[0] == "東_pred,y_pred"
