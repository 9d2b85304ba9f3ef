"""A corpus of broken and awkward tables, each tried with train, evaluate and predict.

Every broken one must end with a non-zero exit and one error line that names the file (and
the column or row where there is one), no traceback, and no output created or overwritten;
the awkward but legitimate ones (BOM, CRLF, quoted numbers, semicolons, unicode names) must
give correct results.
"""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nodes import ZERO, make_device
from fcnn_cli.commands import cli
from fcnn_cli.data.simulate import earthquakes

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


def check_commands(runner, tmp_path, model_path, path, options, outcomes):
    """train, evaluate and predict on ``path``, each ending as ``outcomes`` says (a key per
    command, or "all"); a failed command leaves no run and the older outputs untouched.
    Returns the outcomes per command and the predictions' path."""
    outcome = {c: outcomes.get(c, outcomes.get("all")) for c in ("train", "evaluate", "predict")}
    run_dir, report, preds = tmp_path / "run", tmp_path / "report.json", tmp_path / "pred.csv"
    report.write_text("old report")
    preds.write_text("old predictions")
    expect(runner, ["train", path, *options, "--epochs", 1, "-q", "-o", run_dir],
           outcome["train"], path, [run_dir / "model.pt"])
    assert run_dir.exists() == (outcome["train"] == "ok")
    expect(runner, ["evaluate", model_path, path, "-o", report], outcome["evaluate"], path,
           [report])
    expect(runner, ["predict", model_path, path, "-o", preds], outcome["predict"], path, [preds])
    return outcome, preds


@pytest.mark.parametrize("name", sorted(ALL))
def test_bad_table(runner, tmp_path, model_path, name):
    content, outcomes = ALL[name]
    path = make(tmp_path, name, content)
    outcome, preds = check_commands(runner, tmp_path, model_path, path, LABELS, outcomes)
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


# --- Outputs that cannot be written (issue #10) --------------------------------------------
# Each is refused before any work: exit 1, one error line naming the output, nothing created.

def bad_output(tmp_path, kind, name):
    """A place for an output called ``name`` that cannot be written there."""
    path = tmp_path / name
    if kind == "missing_directory":
        path = tmp_path / "nowhere" / name
    elif kind == "directory":
        path.mkdir()
    elif kind == "a_file":
        path.write_text("a file")
    elif kind == "under_a_file":
        (tmp_path / "file").write_text("a file")
        path = tmp_path / "file" / name
    elif kind == "dangling_link":
        path.symlink_to(tmp_path / "nowhere" / "target")
    else:
        path.symlink_to(name)  # a loop
    return path


FILE_OUTPUTS = {"predict": (["predict", "{model}", "{data}", "-o"], "out.csv"),
                "evaluate": (["evaluate", "{model}", "{data}", "-o"], "report.json"),
                "earthquakes": (["simulate", "earthquakes", "-n", 5, "-o"], "q.csv"),
                "galaxies_preview": (["simulate", "galaxies", "-n", 3, "-o", "{tmp}/g.csv",
                                      "--preview"], "g.png"),
                "train": (["train", "{data}", "--epochs", 1, "-q", "-o"], "run")}
OUTPUT_CASES = {
    "missing_directory": "does not exist", "directory": "is a directory",
    "under_a_file": "ot a directory", "dangling_link": "does not exist",
    "symlink_loop": "symbolic links", "a_file": "not a directory"}


FILE_KINDS = ["missing_directory", "directory", "under_a_file", "dangling_link", "symlink_loop"]
# train makes a missing run directory (as it makes runs/...), and writes into a directory
RUN_DIR_KINDS = ["a_file", "under_a_file", "dangling_link", "symlink_loop"]


@pytest.mark.parametrize("command, kind", [
    (c, k) for c in sorted(FILE_OUTPUTS) if c != "train" for k in FILE_KINDS] +
    [("train", k) for k in RUN_DIR_KINDS])
def test_unwritable_output(runner, tmp_path, model_path, command, kind):
    args, name = FILE_OUTPUTS[command]
    data = make(tmp_path, "plain", BASE)
    out = bad_output(tmp_path, kind, name)
    before = sorted(tmp_path.rglob("*"))
    args = [str(a).format(model=model_path, data=data, tmp=tmp_path) for a in args]
    words = "is a symbolic link to" if (command, kind) == ("train", "dangling_link") else \
        OUTPUT_CASES[kind]
    expect(runner, [*args, out], words, out, [data])
    assert sorted(tmp_path.rglob("*")) == before


# Option values no simulation or training can use: exit 2 with one error line, before any
# work, nothing written.
BAD_OPTIONS = [
    *(["simulate", "earthquakes", option, value] for option, value in [
        ("--extent", "nan"), ("--extent", "inf"), ("--extent", "-inf"), ("--noise", "nan"),
        ("--noise", "inf"), ("--station", "nan,nan"), ("--station", "1,inf"),
        ("--vp", "inf"), ("--vp", "nan"), ("--vs", "nan"), ("--vs", "inf"),
        ("--seed", "-1"), ("--seed", "99999999999999999999"),
        ("--seed", "9223372036854775808"),
        # finite, but the table would not be: 2 × 1e308 km, distances squared, 1/1e-320
        ("--extent", "1e308"), ("--station", "1e160,0"), ("--vs", "1e-320"),
        ("--noise", "1e307")]),
    *(["simulate", "galaxies", option, value] for option, value in [
        ("--noise", "nan"), ("--noise", "inf"), ("--seed", "-1"),
        ("--seed", "99999999999999999999")]),
]


@pytest.mark.parametrize("args", BAD_OPTIONS, ids=" ".join)
def test_bad_simulate_option_values(runner, tmp_path, args):
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    result = runner.invoke(cli, [*args, "-n", "5", "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and args[-2].lstrip("-") in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    assert out.read_text() == "old\n"


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999", "9223372036854775808"])
def test_bad_train_seeds(runner, tmp_path, seed):
    data = make(tmp_path, "data", BASE)
    result = runner.invoke(cli, ["train", str(data), *LABELS, "--seed", seed, "-o",
                                 str(tmp_path / "run")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--seed" in errors[0] and seed in errors[0]
    assert not (tmp_path / "run").exists()


def test_largest_seed_trains(runner, tmp_path):
    data = make(tmp_path, "data", BASE)
    result = runner.invoke(cli, ["train", str(data), *LABELS, "--seed", str(2 ** 63 - 1),
                                 "--epochs", "1", "-q", "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output


# --- Damaged checkpoints and special files as the model, through fcnn predict (issue #10) ------
# The corpus lives in test_checkpoint.py, beside the library view of the same cases.
from forgery import CORRUPTIONS, SPECIAL, corrupted, special_file  # noqa: E402


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corrupted_checkpoint_through_predict(runner, tmp_path, name):
    model = corrupted(tmp_path, name)
    data = make(tmp_path, "plain", BASE)
    preds = tmp_path / "pred.csv"
    preds.write_text("old predictions")
    result = expect(runner, ["predict", model, data, "-o", preds], CORRUPTIONS[name][-1], model,
                    [preds])
    assert result.stderr.count("\n") == 1, result.stderr  # the error line and nothing else


@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_special_file_as_model_through_predict(tmp_path, kind):
    """A FIFO, a zero or random device node, or a directory named model.pt (through a symlink):
    one error line and exit 1 at once, in a real process that a hang could not hide."""
    import subprocess
    import sys

    link, _ = special_file(tmp_path, kind)
    data = make(tmp_path, "plain", BASE)
    done = subprocess.run([sys.executable, "-m", "fcnn_cli", "predict", str(link), str(data)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == "", done.stderr
    assert done.stderr.splitlines() == [f"Error: {link}: " + (
        "is a directory, not an fcnn checkpoint" if kind == "directory" else
        f"not a regular file ({SPECIAL[kind]}); an fcnn checkpoint is a file that fcnn writes")]


def test_version_1_checkpoint_predicts_with_one_warning(runner, tmp_path):
    import torch

    from fcnn_cli.network import checkpoint
    from forgery import tiny_predictor, to_version_1

    data, new, old = make(tmp_path, "plain", BASE), tmp_path / "new.pt", tmp_path / "old.pt"
    checkpoint.save(tiny_predictor("classify"), new)
    payload = torch.load(new, weights_only=True)
    to_version_1(payload)
    torch.save(payload, old)
    reference = runner.invoke(cli, ["predict", str(new), str(data)])
    result = runner.invoke(cli, ["predict", str(old), str(data)])
    assert result.exit_code == 0 and result.stdout == reference.stdout != ""
    assert result.stderr.splitlines() == [
        f"warning: {old}: a checkpoint of format version 1 carries no digest: it passed the "
        "consistency checks, but damaged weights could go unnoticed"]


# Issue #10: nested Parquet columns, cells longer than a read block, damaged runs to resume.

def nested_parquet(path, frame, nested):
    """``frame`` written as Parquet with list or struct columns added or put in its place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    n = len(frame)
    columns = {"lst": pa.array([[1.0, 2.0]] * n), "st": pa.array([{"u": 1.0, "v": "w"}] * n)}
    for name, kind in nested.items():
        column = columns[kind]
        if name in arrow.column_names:
            arrow = arrow.set_column(arrow.column_names.index(name), name, column)
        else:
            arrow = arrow.append_column(name, column)
    pq.write_table(arrow, path)
    return path


NESTED_CASES = {  # name: (nested columns, train options, outcome per command)
    "unused": ({"lst": "lst", "st": "st"}, LABELS,
               {"train": "ok", "evaluate": "ok", "predict": "ok"}),
    "list_label": ({"lst": "lst"}, ["-t", "lst"],
                   {"train": "label column 'lst' holds lists of float64"}),
    "struct_label": ({"st": "st"}, ["-t", "st"],
                     {"train": "label column 'st' holds structs (fields 'u', 'v')"}),
    "list_feature": ({"lst": "lst"}, [*LABELS, "--features", "tp1,lst"],
                     {"train": "feature column 'lst' holds lists of float64, not numbers"}),
    "struct_in_place_of_a_feature": (
        {"ts2": "st"}, LABELS,
        {"train": "ok", "evaluate": "column 'ts2' holds structs (fields 'u', 'v'), not numbers",
         "predict": "column 'ts2' holds structs (fields 'u', 'v'), not numbers"}),
    "list_in_place_of_a_label": ({"x": "lst"}, LABELS,
                                 {"train": "label column 'x' holds lists of float64",
                                  "evaluate": "column 'x' holds lists of float64, not numbers",
                                  "predict": "ok"}),
}


@pytest.mark.parametrize("name", sorted(NESTED_CASES))
def test_nested_parquet_columns(runner, tmp_path, model_path, name):
    nested, options, outcome = NESTED_CASES[name]
    path = nested_parquet(tmp_path / f"{name}.parquet", BASE, nested)
    run_dir, report, preds = tmp_path / "run", tmp_path / "report.json", tmp_path / "pred.csv"
    report.write_text("old report")
    preds.write_text("old predictions")
    expect(runner, ["train", path, *options, "--epochs", 1, "-q", "-o", run_dir],
           outcome["train"], path, [run_dir / "model.pt"])
    assert run_dir.exists() == (outcome["train"] == "ok")
    if "evaluate" in outcome:
        expect(runner, ["evaluate", model_path, path, "-o", report], outcome["evaluate"], path,
               [report])
        expect(runner, ["predict", model_path, path, "-o", preds], outcome["predict"], path,
               [preds])


@pytest.mark.parametrize("length", [5 << 19, 13 << 20], ids=["2.5MiB", "13MiB"])
def test_a_long_cell_is_read_by_train_evaluate_and_predict(runner, tmp_path, model_path,
                                                           length):
    """Over two of pyarrow's default blocks (1 MiB), and of a streamed read's (6 MiB): a row
    over a whole block fails to parse."""
    frame = BASE.assign(note="")
    frame.loc[20, "note"] = "z" * length
    path = make(tmp_path, "long_cell", frame)
    plain = make(tmp_path, "plain", BASE)
    expect(runner, ["train", path, *LABELS, "--epochs", 1, "-q", "-o", tmp_path / "r"], "ok",
           path, [])
    assert json.loads((tmp_path / "r" / "config.json").read_text())["sizes"]["train"] == 36
    report = expect(runner, ["evaluate", model_path, path, "--json"], "ok", path, []).stdout
    assert json.loads(report)["rows"] == len(BASE)
    predictions = expect(runner, ["predict", model_path, path], "ok", path, []).stdout
    assert predictions == runner.invoke(cli, ["predict", str(model_path), str(plain)]).stdout


def damage_config(change):
    def damage(run):
        config = json.loads((run / "config.json").read_text())
        change(config)
        (run / "config.json").write_text(json.dumps(config))
    return damage


def replace(name, make_it):
    def damage(run):
        (run / name).unlink()
        make_it(run / name)
    return damage


def device_node(path):
    make_device(path, ZERO)  # endless bytes


def bigger_than(limit, name):
    """``limit`` (``module.NAME`` in fcnn_cli.results) set one byte below the size of the run's
    file ``name``."""
    def damage(run, monkeypatch):
        monkeypatch.setattr(f"fcnn_cli.results.{limit}", (run / name).stat().st_size - 1)
    return damage


RESUME_DAMAGE = {  # name: (damage to the run directory, what the error line says)
    "unknown_train_key": (damage_config(lambda c: c["train"].update(bogus=1)),
                          "config.json is damaged: 'train': unknown option 'bogus'"),
    "unknown_net_key": (damage_config(lambda c: c["net"].update(colour="red")),
                        "config.json is damaged: 'net': unknown option 'colour'"),
    "no_net": (damage_config(lambda c: c.pop("net")), "config.json is damaged: it has no 'net'"),
    "no_data": (damage_config(lambda c: c.pop("data")),
                "config.json is damaged: it has no 'data'"),
    "no_n_in": (damage_config(lambda c: c["net"].pop("n_in")),
                "config.json is damaged: 'net': NetConfig.__init__() missing 1 required "
                "positional argument: 'n_in'"),
    "lr_text": (damage_config(lambda c: c["train"].update(lr="0.1")),
                "config.json is damaged: 'train': lr must be a number, not '0.1'"),
    "epochs_float": (damage_config(lambda c: c["train"].update(epochs=2.5)),
                     "config.json is damaged: 'train': epochs must be an integer or none, not 2.5"),
    "depth_list": (damage_config(lambda c: c["net"].update(depth=[3])),
                   "config.json is damaged: 'net': depth must be an integer, not [3]"),
    "decay_infinite": (damage_config(lambda c: c["train"].update(weight_decay=float("inf"))),
                       "config.json is damaged: 'train': weight_decay must be finite"),
    "targets_number": (damage_config(lambda c: c.update(targets=5)),
                       "config.json is damaged: its 'targets' is 5, not a list of column names"),
    "features_text": (damage_config(lambda c: c.update(features="abc")),
                      "its 'features' is \"abc\", not a list of column names"),
    "val_data_number": (damage_config(lambda c: c.update(val_data=3)),
                        "its 'val_data' is 3, not a file path or null"),
    "targets_twice": (damage_config(lambda c: c.update(targets=["x", "x"])),
                      "config.json is damaged: targets names column 'x' twice"),
    "from_stdin": (damage_config(lambda c: c.update(data="<stdin>")),
                   "the run read a table from stdin"),
    "config_a_list": (lambda run: (run / "config.json").write_text("[1, 2]"),
                      "config.json holds no object of options"),
    "config_not_json": (lambda run: (run / "config.json").write_text("{"),
                        "config.json is not readable JSON"),
    "config_deeply_nested": (lambda run: (run / "config.json").write_text("[" * 100_000),
                             "config.json is not readable JSON"),
    "config_missing": (lambda run: (run / "config.json").unlink(),
                       "config.json: no such file"),
    "config_fifo": (replace("config.json", os.mkfifo), "config.json: not a regular file (a FIFO)"),
    "config_device": (replace("config.json", device_node),
                      "config.json: not a regular file (a character device)"),
    "config_huge": (bigger_than("runs.MAX_TEXT_BYTES", "config.json"), "config.json: larger than"),
    "state_fifo": (replace("state.pt", os.mkfifo), "state.pt: not a regular file (a FIFO)"),
    "state_directory": (replace("state.pt", os.mkdir),
                        "state.pt: is a directory, not a training state"),
    "state_device": (replace("state.pt", device_node),
                     "state.pt: not a regular file (a character device)"),
    "state_not_zip": (lambda run: (run / "state.pt").write_bytes(b"junk"),
                      "state.pt: not a training state (not a file written by torch.save)"),
    "state_a_model": (lambda run: __import__("shutil").copy(run / "model.pt", run / "state.pt"),
                      "state.pt holds no training state of fcnn"),
    "state_a_list": (lambda run: __import__("torch").save([1, 2], run / "state.pt"),
                     "state.pt holds no training state"),
    "state_huge": (bigger_than("statefile.MAX_STATE_BYTES", "state.pt"), "state.pt: larger than"),
}


@pytest.mark.parametrize("name", sorted(RESUME_DAMAGE))
def test_damaged_run_to_resume(runner, interrupted, monkeypatch, name):
    damage, said = RESUME_DAMAGE[name]
    if name.endswith("_huge"):
        damage(interrupted, monkeypatch)
    else:
        damage(interrupted)
    before = {p.name: p.read_bytes() for p in interrupted.iterdir() if p.is_file()}
    result = runner.invoke(cli, ["train", "--resume", str(interrupted), "-q"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert errors[0].startswith(f"Error: {interrupted}: cannot resume: ") and said in errors[0], \
        errors[0]
    assert {p.name: p.read_bytes() for p in interrupted.iterdir() if p.is_file()} == before


# --- ROOT, HDF5 and FITS files (issue #17): damaged, foreign, or not holding what is asked ----

def _quakes_file(path, frame=BASE):
    from fcnn_cli.data.tables import Table
    from fcnn_cli.data.writer import write_table

    write_table(Table(frame, ["x", "y"]), path)
    return path


def _cut(path):
    """The file without its second half."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def _empty(path):
    path.write_bytes(b"")
    return path


def _text(path):
    path.write_text(csv_text(BASE))
    return path


def _root_with(path, **columns):
    """The quakes as a ROOT tree, with some columns replaced or added (jagged, text)."""
    import awkward as ak
    import uproot

    data = {c: BASE[c].to_numpy() for c in BASE.columns}
    data.update({c: ak.Array(v) for c, v in columns.items()})
    with uproot.recreate(path) as file:
        file.mktree("events", {c: v.type.content if isinstance(v, ak.Array) else v.dtype
                               for c, v in data.items()})
        file["events"].extend(data)
    return path


def _two_trees(path):
    import uproot

    with uproot.recreate(path) as file:
        for name in ("a", "b"):
            file.mktree(name, {"u": np.float64}).extend({"u": np.arange(3.0)})
    return path


def _no_tree(path):
    import uproot

    with uproot.recreate(path) as file:
        file["note"] = "only a string"
    return path


def _h5(path, **datasets):
    import h5py

    with h5py.File(path, "w") as file:
        for name, values in datasets.items():
            file[name] = values
    return path


def _fits_varying(path):
    from astropy.io import fits

    columns = [fits.Column(c, "D", array=BASE[c]) for c in BASE.columns]
    columns.append(fits.Column("hits", "PD()", array=[np.ones(i % 3 + 1) for i in BASE.index]))
    fits.BinTableHDU.from_columns(columns).writeto(path)
    return path


def _packed(path, compress):
    """The quakes as FITS, compressed by ``compress`` (bytes -> bytes), under ``path``."""
    plain = _quakes_file(path.with_name("plain.fits"))
    path.write_bytes(compress(plain.read_bytes()))
    return path


def _fits_keyword(path, value):
    from astropy.io import fits

    with fits.open(_quakes_file(path), mode="update") as hdus:
        hdus[1].header["FCNN"] = value
    return path


def _h5_foreign(path, blosc=False):
    """The quakes as HDF5 with someone else's 'fcnn' attribute, or a column compressed by a
    filter the HDF5 library lacks (Blosc)."""
    import h5py

    with h5py.File(path, "w") as file:
        for c in BASE.columns:
            file.create_dataset(c, data=BASE[c].to_numpy(), chunks=(8,), allow_unknown_filter=True,
                                compression=32001 if blosc and c == "tp2" else None)
        file.attrs["fcnn"] = "version 3 of the selection"
    return path


def _root_foreign(path):
    """The quakes as a tree titled as a person might, in a directory named with a ':'."""
    import uproot

    with uproot.recreate(path) as file:
        file.mkdir("run:1").mktree("t", {c: BASE[c].dtype for c in BASE.columns},
                                   title="fcnn inputs for the 2025 analysis").extend(
            {c: BASE[c].to_numpy() for c in BASE.columns})
    return f"{path}:run:1/t"


SECRET = b"SECRET-LINE\n"  # what a file beside the table holds: no output may show it
PULLED = {"external": "dataset '/note' keeps its values in another file ('",
          "link": "'/note' links to '/note' in the file '",
          "virtual": "virtual dataset '/note' maps values of other files ('"}


def _h5_pulling(path, how):
    """The quakes as HDF5 with a column 'note' of SECRET lines that lie in files beside it: as
    external storage, through an external link, or as a virtual dataset's source ("own": one
    mapping a dataset of the file itself, which is sound)."""
    import h5py

    rows, kind = len(BASE), f"S{len(SECRET)}"
    (path.parent / "secret.txt").write_bytes(SECRET * rows)
    with h5py.File(path.parent / "secret.h5", "w") as file:
        file["note"] = np.full(rows, SECRET, dtype=kind)
    with h5py.File(_quakes_file(path), "a") as file:
        if how == "external":
            file.create_dataset("note", (rows,), kind,
                                external=[(str(path.parent / "secret.txt"), 0, len(SECRET) * rows)])
        elif how == "link":
            file["note"] = h5py.ExternalLink(str(path.parent / "secret.h5"), "/note")
        else:
            own = how == "own"
            layout = h5py.VirtualLayout((rows,), "f8" if own else kind)
            layout[:] = h5py.VirtualSource("." if own else str(path.parent / "secret.h5"),
                                           "x" if own else "note", (rows,))
            file.create_virtual_dataset("note", layout)
    return path


def _h5_unwritten(path, rows):
    """An HDF5 table of ``rows`` rows declared and none written (a few KB): HDF5 reads the
    chunks never stored as zeros."""
    import h5py

    with h5py.File(path, "w") as file:
        for c in BASE.columns:
            file.create_dataset(c, (rows,), "f8", chunks=(4096,))
    return path


def _fits_promising(path, rows, compress=lambda data: data):
    """The quakes as FITS whose header promises ``rows`` rows, through ``compress``."""
    from astropy.io import fits

    data = bytearray(_quakes_file(path.with_name("plain.fits")).read_bytes())
    card = data.index(b"NAXIS2  =", 2880)  # the table's, after the primary header
    data[card:card + 80] = fits.Card("NAXIS2", rows).image.encode()
    path.write_bytes(compress(bytes(data)))
    return path


JAGGED = [[1.0] * (i % 3) for i in range(len(BASE))]
FORMAT_CASES = {  # name: (make the file, train options, outcome per command)
    "root_not_root": (lambda t: _text(t / "a.root"), LABELS, {"all": "not a ROOT file"}),
    "root_empty": (lambda t: _empty(t / "a.root"), LABELS, {"all": "not a ROOT file"}),
    "root_truncated": (lambda t: _cut(_quakes_file(t / "a.root")), LABELS,
                       {"all": "truncated or damaged"}),
    "root_missing_tree": (lambda t: f"{_quakes_file(t / 'a.root')}:nope", LABELS,
                          {"all": "no tree 'nope' in the file; its trees: 'events'"}),
    "root_two_trees": (lambda t: _two_trees(t / "a.root"), LABELS,
                       {"all": "holds 2 trees ('a', 'b'); choose one with"}),
    "root_no_tree": (lambda t: _no_tree(t / "a.root"), LABELS, {"all": "holds no tree"}),
    "root_jagged_feature": (lambda t: _root_with(t / "a.root", hits=JAGGED),
                            [*LABELS, "--features", "tp1,hits"],
                            {"train": "feature column 'hits' holds lists of float64, not numbers; "
                                      "flatten it to one value per row",
                             "evaluate": "ok", "predict": "ok"}),
    "root_jagged_in_place_of_a_feature": (
        lambda t: _root_with(t / "a.root", ts2=JAGGED), LABELS,
        {"train": "ok", "evaluate": "column 'ts2' holds lists of float64, not numbers",
         "predict": "column 'ts2' holds lists of float64, not numbers"}),
    "root_text_in_place_of_a_feature": (
        lambda t: _root_with(t / "a.root", ts2=["late"] * len(BASE)), LABELS,
        {"train": "ok", "evaluate": "column 'ts2' is not numeric (row 1: 'late')",
         "predict": "column 'ts2' is not numeric (row 1: 'late')"}),
    "h5_not_hdf5": (lambda t: _text(t / "a.h5"), LABELS,
                    {"all": "not a readable HDF5 file: Unable to synchronously open file "
                            "(file signature not found)"}),
    "h5_truncated": (lambda t: _cut(_quakes_file(t / "a.h5")), LABELS, {"all": "truncated file"}),
    "h5_missing_dataset": (lambda t: f"{_quakes_file(t / 'a.h5')}:/events", LABELS,
                           {"all": "no dataset or group '/events' in the file; its tables: '/'"}),
    "h5_unequal_lengths": (lambda t: _h5(t / "a.h5", x=np.ones(3), y=np.ones(4)), LABELS,
                           {"all": "the datasets of group '/' differ in length ('x': 3, 'y': 4)"}),
    "h5_no_table": (lambda t: _h5(t / "a.h5", image=np.ones((3, 3))), LABELS,
                    {"all": "holds no table"}),
    "h5_nan_feature": (lambda t: _quakes_file(t / "a.h5", with_value("tp2", 7, np.nan)), LABELS,
                       {"all": "'tp2'"}),
    "fits_not_fits": (lambda t: _text(t / "a.fits"), LABELS, {"all": "not a readable FITS file"}),
    "fits_truncated": (lambda t: _cut(_quakes_file(t / "a.fits")), LABELS,
                       {"all": "truncated: its header promises 40 rows"}),
    "fits_missing_hdu": (lambda t: f"{_quakes_file(t / 'a.fits')}:5", LABELS,
                         {"all": "no HDU '5': the file holds 2 (0 'PRIMARY', 1 'EVENTS')"}),
    "fits_not_a_table": (lambda t: f"{_quakes_file(t / 'a.fits')}:0", LABELS,
                         {"all": "HDU '0' is a PrimaryHDU, not a binary table"}),
    "fits_varying_length": (lambda t: _fits_varying(t / "a.fits"), LABELS,
                            {"all": "column(s) 'hits' hold arrays of varying length"}),
    "fits_gzip_named_fits": (lambda t: _packed(t / "a.fits", __import__("gzip").compress),
                             LABELS, {"all": "ok"}),
    "fits_bzip2_named_fits": (lambda t: _packed(t / "a.fits", __import__("bz2").compress),
                              LABELS, {"all": "not a readable FITS file: it does not start "
                                              "with 'SIMPLE  ='"}),
    "fits_fcnn_keyword_not_text": (lambda t: _fits_keyword(t / "a.fits", True), LABELS,
                                   {"all": "malformed fcnn metadata: keyword FCNN holds bool"}),
    "h5_foreign_fcnn_attribute": (lambda t: _h5_foreign(t / "a.h5"), LABELS, {"all": "ok"}),
    "h5_missing_filter": (lambda t: _h5_foreign(t / "a.h5", blosc=True), LABELS,
                          {"all": "dataset '/tp2' is compressed with HDF5 filter 32001 (Blosc)"}),
    "root_foreign_title_in_a_directory_with_a_colon": (lambda t: _root_foreign(t / "a.root"),
                                                       LABELS, {"all": "ok"}),
    "h5_virtual_dataset_of_its_own_file": (lambda t: _h5_pulling(t / "a.h5", "own"), LABELS,
                                           {"all": "ok"}),
    "h5_4e9_rows_declared_in_a_few_kb": (
        lambda t: _h5_unwritten(t / "a.h5", 4 * 10**9), LABELS,
        {"all": "truncated or inconsistent: it declares 4,000,000,000 rows (298.023 GiB), over "
                "100 times the "}),
    "fits_header_promising_1e15_rows": (
        lambda t: _fits_promising(t / "a.fits", 10**15), LABELS,
        {"all": "truncated or inconsistent: it declares data up to byte 80,000,000,000,00"}),
    "fits_gz_header_promising_1e15_rows": (
        lambda t: _fits_promising(t / "a.fits.gz", 10**15, __import__("gzip").compress), LABELS,
        {"all": "truncated or inconsistent: it declares data up to byte 80,000,000,000,00"}),
}
LIBRARY = {"root": "uproot", "h5": "h5py", "fits": "astropy"}


@pytest.mark.parametrize("name", sorted(FORMAT_CASES))
def test_bad_format_file(runner, tmp_path, model_path, name):
    pytest.importorskip(LIBRARY[name.split("_")[0]])
    make_it, options, outcomes = FORMAT_CASES[name]
    path = Path(make_it(tmp_path))
    check_commands(runner, tmp_path, model_path, path, options, outcomes)


# --- More processes than the node holds (issue #22) --------------------------------------------

def _node_of(monkeypatch, cpus, memory):
    """A node of ``cpus`` CPUs and ``memory`` bytes available, on which --nproc never starts
    torchrun: the launch is recorded instead."""
    from fcnn_cli.machine import devices, distributed

    launched = []
    monkeypatch.setattr(devices, "cpu_budget", lambda: cpus)
    monkeypatch.setattr(devices, "cpu_memory_available", lambda: memory)
    monkeypatch.setattr(distributed, "launch", lambda n, args: launched.append(n) or 0)
    return launched


def test_more_processes_than_the_memory_holds_are_refused(runner, tmp_path, quakes_csv,
                                                          monkeypatch):
    launched = _node_of(monkeypatch, 64, 2 << 30)
    result = runner.invoke(cli, ["train", str(quakes_csv), "--nproc", "6", "-o",
                                 str(tmp_path / "r")])
    assert result.exit_code == 1 and result.stderr == (
        "Error: --nproc 6: the processes need at least 2.34375 GiB (400 MiB each before any "
        "data), but 2 GiB is available on this node: room for 5 at most\n")
    assert launched == [] and not (tmp_path / "r").exists()
    assert runner.invoke(cli, ["train", str(quakes_csv), "--nproc", "5", "-o",
                               str(tmp_path / "r")]).exit_code == 0
    assert launched == [5]


@pytest.mark.parametrize("nproc, warned", [(3, True), (2, False)])
def test_more_processes_than_cpus_are_started_with_a_warning(runner, tmp_path, quakes_csv,
                                                             monkeypatch, nproc, warned):
    launched = _node_of(monkeypatch, 2, 64 << 30)
    result = runner.invoke(cli, ["train", str(quakes_csv), "--nproc", str(nproc), "-o",
                                 str(tmp_path / "r"), "-q"])
    assert result.exit_code == 0 and launched == [nproc]
    assert result.stderr == (f"warning: --nproc {nproc}: more processes than the 2 CPU(s) this "
                             "job may use: they take turns on them, and every step waits for "
                             "the slowest; 2 or fewer train faster\n" if warned else "")

# --- A run's own files: never another command's output; read only as the files fcnn wrote ---

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, trained):
    """A complete run directory, with its plots and held-out predictions."""
    from fcnn_cli.results import runs
    from fcnn_cli.results.plots import plot_run

    run = runs.save_run(trained, tmp_path_factory.mktemp("runs") / "run", "quakes.csv")
    plot_run(run)
    return run


@pytest.fixture
def run_dir(tmp_path, finished_run):
    """A private copy of ``finished_run``, which a test may see destroyed."""
    import shutil

    return shutil.copytree(finished_run, tmp_path / "run")


def contents(run):
    """Every file of the run directory, byte for byte (links as what they point to)."""
    return {str(p.relative_to(run)): os.readlink(p) if p.is_symlink() else p.read_bytes()
            for p in sorted(run.rglob("*")) if not p.is_dir()}


def one_error_line(result, code=1):
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr.strip()


def _aside(tmp_path, run, kind):
    """Another name for a file of ``run``, outside it: a link to model.pt, a hard link to
    metrics.json, or config.json through a link to the directory; and the file it names."""
    if kind == "symlink_to_model":
        (tmp_path / "model-link.pt").symlink_to(run / "model.pt")
        return tmp_path / "model-link.pt", run / "model.pt"
    if kind == "hardlink_to_metrics":
        os.link(run / "metrics.json", tmp_path / "metrics-copy.json")
        return tmp_path / "metrics-copy.json", run / "metrics.json"
    (tmp_path / "alias").symlink_to(run)
    return tmp_path / "alias" / "config.json", run / "config.json"


REPORT_ONTO = ["model.pt", "config.json", "config.toml", "metrics.json", "history.csv",
               "predictions.parquet", "plots/learning_curves.png", "state.pt",
               "symlink_to_model", "hardlink_to_metrics", "config_through_a_linked_directory"]


@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
@pytest.mark.parametrize("onto", REPORT_ONTO)
def test_report_never_writes_over_a_file_of_its_run(runner, tmp_path, run_dir, onto, force):
    if "_" in onto:
        output, source = _aside(tmp_path, run_dir, onto)
    else:
        output = source = run_dir / onto  # state.pt: a run's file, though this one has none
    before = contents(run_dir)
    result = runner.invoke(cli, ["report", str(run_dir), "-o", str(output)]
                           + ["--force"] * force)
    assert one_error_line(result) == (f"Error: {output}: is the same file as the input "
                                      f"{source}; write the output to another file")
    assert contents(run_dir) == before


def test_report_writes_its_own_page_in_the_run_and_over_another_runs_file_if_forced(
        runner, tmp_path, run_dir, finished_run):
    for _ in range(2):  # a second time over the first page: the page is no input
        result = runner.invoke(cli, ["report", str(run_dir)])
        assert result.exit_code == 0, result.output
        assert (run_dir / "report.html").read_text().startswith("<!DOCTYPE html>")
    other = finished_run  # another run: its file is refused unless --force
    before = contents(other)
    result = runner.invoke(cli, ["report", str(run_dir), "-o", str(other / "config.json")])
    assert one_error_line(result) == (
        f"Error: {other / 'config.json'}: is the config.json of the run in {str(other)!r}; "
        "write the output elsewhere, or add --force to replace it")
    assert contents(other) == before
    forced = tmp_path / "forced"
    import shutil

    shutil.copytree(other, forced)
    result = runner.invoke(cli, ["report", str(run_dir), "-o", str(forced / "config.json"),
                                 "--force"])
    assert result.exit_code == 0, result.output
    assert (forced / "config.json").read_text().startswith("<!DOCTYPE html>")


# Commands that write one file, and the run's file each is pointed at: (arguments, the file).
ONTO_A_RUN = {
    "evaluate_onto_config": (["evaluate", "{run}/model.pt", "{data}", "-o", "{run}/config.json"],
                             "config.json"),
    "evaluate_onto_metrics_through_a_link": (["evaluate", "{model}", "{data}", "-o",
                                              "{link}"], "metrics.json"),
    "predict_onto_predictions": (["predict", "{run}/model.pt", "{data}", "-o",
                                  "{run}/predictions.parquet"], "predictions.parquet"),
    "predict_onto_history_of_another_run": (["predict", "{model}", "{data}", "-o",
                                             "{run}/history.csv"], "history.csv"),
    "export_onto_another_runs_model": (["export", "{model}", "{run}/model.pt"], "model.pt"),
    "simulate_onto_diagnostics": (["simulate", "earthquakes", "-n", "5", "-o",
                                   "{run}/diagnostics.csv"], "diagnostics.csv"),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n.startswith("export")
                                  else n for n in sorted(ONTO_A_RUN)])  # onnx: seconds
def test_a_file_of_a_run_is_no_output_of_another_command_unless_forced(
        runner, tmp_path, run_dir, model_path, quakes_csv, name):
    args, target = ONTO_A_RUN[name]
    (tmp_path / "link").symlink_to(run_dir / target)
    args = [a.format(run=run_dir, data=quakes_csv, model=model_path, link=tmp_path / "link")
            for a in args]
    before = contents(run_dir)
    result = runner.invoke(cli, args)
    assert one_error_line(result) == (
        f"Error: {args[-1]}: is the {target} of the run in {str(run_dir)!r}; write the "
        "output elsewhere, or add --force to replace it")
    assert contents(run_dir) == before
    if name.startswith("export"):
        pytest.importorskip("onnxruntime")
    result = runner.invoke(cli, args + ["--force"])
    assert result.exit_code == 0, result.output
    assert (run_dir / target).read_bytes() != before.get(target)  # diagnostics.csv: none yet


def test_evaluate_never_writes_over_its_model_even_forced(runner, run_dir, quakes_csv):
    before = contents(run_dir)
    model = run_dir / "model.pt"
    result = runner.invoke(cli, ["evaluate", str(model), str(quakes_csv), "-o", str(model),
                                 "--force"])
    assert one_error_line(result) == (f"Error: {model}: is the same file as the input {model}; "
                                      "write the output to another file")
    assert contents(run_dir) == before


def test_plot_never_draws_over_a_file_of_its_run(runner, tmp_path, run_dir):
    out = tmp_path / "plots"
    out.mkdir()
    (out / "learning_curves.png").symlink_to(run_dir / "history.csv")
    before = contents(run_dir)
    for where, said in ((out, "learning_curves.png: is the same file as the input "
                              f"{run_dir / 'history.csv'}"),
                        (run_dir / "state.pt", f"is the state.pt of the run in {str(run_dir)!r}"),
                        (run_dir / "predictions.parquet" / "p",
                         f"lies inside the predictions.parquet of the run in {str(run_dir)!r}")):
        result = runner.invoke(cli, ["plot", str(run_dir), "-o", str(where)])
        assert said in one_error_line(result)
    assert contents(run_dir) == before


def _damage(run, name, kind):
    """The run's file ``name`` made a FIFO (with no writer: a read would wait for ever) or a
    sparse file of 3 GiB (read, it would exhaust the memory)."""
    path = run / name
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
        return "not a regular file (a FIFO)"
    with open(path, "wb") as f:
        os.truncate(f.fileno(), 3 << 30)
    return "larger than " + ("1 GiB" if name.endswith(".parquet") else "64 MiB")


READ_BY = [("report", "config.json"), ("report", "metrics.json"),
           ("report_unplotted", "history.csv"), ("plot", "config.json"),
           ("plot", "history.csv"), ("plot", "predictions.parquet"),
           pytest.param("plot", "diagnostics.csv", marks=pytest.mark.slow)]  # read after drawing


@pytest.mark.parametrize("kind", ["fifo", "huge"])
@pytest.mark.parametrize("command, name", READ_BY)
def test_a_run_file_that_is_a_fifo_or_huge_is_refused_unread(tmp_path, run_dir, command, name,
                                                             kind):
    """In a real process with a time limit: a hang or a MemoryError could not hide there."""
    import shutil
    import subprocess
    import sys

    if command == "report_unplotted":  # no plots to show: drawn from the run's files
        shutil.rmtree(run_dir / "plots")
    said = _damage(run_dir, name, kind)
    done = subprocess.run([sys.executable, "-m", "fcnn_cli", command.split("_")[0],
                           str(run_dir), "-o", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"Error: {run_dir / name}: {said}"]


# --- Names from files that hold terminal commands: shown escaped, never sent ------------------

ESCAPES = ("\x1b", "\x07", "\x9b")  # ESC, BEL, and CSI (C1): what a terminal would act on
FEATURE, TARGET, UNIT = "tp1\x1b]0;owned\x07", "x\x1b[2J", "k\x9b31mm"


def forged_names(meta):
    """A checkpoint's first feature, its first label and that label's unit renamed, as
    FEATURE, TARGET and UNIT."""
    meta["features"][0] = FEATURE
    meta["task"]["targets"][0] = TARGET
    units = meta["units"]
    units[FEATURE], units[TARGET] = units.pop("tp1"), UNIT
    del units["x"]


@pytest.fixture
def forged(tmp_path, model_path):
    """A checkpoint with FEATURE, TARGET and UNIT (signed anew), and a table with such
    columns."""
    import shutil

    from forgery import in_meta, resigned

    model = tmp_path / "model.pt"
    shutil.copy(model_path, model)
    resigned(model, in_meta(forged_names))
    data = tmp_path / "data.parquet"
    BASE.rename(columns={"tp1": FEATURE, "x": TARGET}).to_parquet(data)
    return model, data


def assert_escaped(text, *names):
    assert not any(c in text for c in ESCAPES), repr(text)
    for name in names:
        assert name.encode("unicode_escape").decode() in text, (name, text)


def test_info_and_evaluate_print_names_from_a_model_escaped(runner, forged):
    model, data = forged
    info = runner.invoke(cli, ["info", str(model)], terminal_width=300)
    assert info.exit_code == 0, info.output
    assert_escaped(info.stdout, FEATURE, TARGET, UNIT)
    about = json.loads(runner.invoke(cli, ["info", str(model), "--json"]).stdout)
    assert about["features"][0]["name"] == FEATURE  # JSON holds the names as they are
    evaluated = runner.invoke(cli, ["evaluate", str(model), str(data)], terminal_width=300)
    assert evaluated.exit_code == 0, evaluated.output
    assert_escaped(evaluated.stdout, TARGET, UNIT)


def test_messages_quoting_names_from_files_are_escaped(runner, forged, tmp_path):
    model, _ = forged
    far = tmp_path / "far.parquet"  # a warning names the feature; an error the label
    BASE.rename(columns={"tp1": FEATURE}).assign(**{FEATURE: 1e9}).to_parquet(far)
    warned = runner.invoke(cli, ["predict", str(model), str(far), "-o", tmp_path / "p.csv"])
    assert warned.exit_code == 0 and "far outside the training range" in warned.stderr
    assert_escaped(warned.stderr, FEATURE)
    plain = make(tmp_path, "plain", BASE)
    refused = runner.invoke(cli, ["evaluate", str(model), str(plain)])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert_escaped(one_error_line(refused), TARGET)


def test_the_report_of_a_run_shows_names_from_its_files_escaped(runner, run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    config["features"][0], config["train"]["optimizer"] = FEATURE, TARGET
    (run_dir / "config.json").write_text(json.dumps(config))
    page = runner.invoke(cli, ["report", str(run_dir), "-o", "-"])
    assert page.exit_code == 0, page.output
    assert_escaped(page.stdout, FEATURE, TARGET)


@pytest.mark.slow
def test_train_prints_label_names_from_its_data_escaped(runner, tmp_path):
    data = tmp_path / "data.parquet"
    BASE.rename(columns={"x": TARGET}).to_parquet(data)
    result = runner.invoke(cli, ["train", str(data), "-t", TARGET, "-t", "y", "--epochs", "1",
                                 "--no-plots", "-o", str(tmp_path / "run")], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert_escaped(result.stdout + result.stderr, TARGET)


# --- Issue #22: file names of bytes that are not UTF-8 (legal on Linux) -----------------------

def not_utf8(folder, name):
    """``folder / name`` with a byte 0xff after the name's first character, as Python holds such
    a name (the byte as the surrogate U+DCFF); skipped where the file system refuses it."""
    path = folder / os.fsdecode(name[0].encode() + b"\xff" + name[1:].encode())
    try:
        path.touch()
        path.unlink()
    except (OSError, UnicodeError):
        pytest.skip("this file system takes only UTF-8 names")
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".h5", ".fits", ".root"])
def test_a_file_name_not_utf8_is_written_read_and_recorded_by_every_command(
        runner, tmp_path, model_path, suffix):
    pytest.importorskip({".h5": "h5py", ".fits": "astropy", ".root": "uproot"}.get(suffix,
                                                                                 "pandas"))
    data, run = not_utf8(tmp_path, f"q{suffix}"), not_utf8(tmp_path, "run")
    predictions = not_utf8(tmp_path, f"p{suffix}")
    expect(runner, ["simulate", "earthquakes", "-n", 60, "-o", data], "ok", data, [])
    expect(runner, ["train", data, "--epochs", 1, "-q", "-o", run], "ok", data, [])
    assert json.loads((run / "config.json").read_text())["data"] == str(data)
    report = expect(runner, ["evaluate", model_path, data, "--json"], "ok", data, []).stdout
    assert json.loads(report)["rows"] == 60 and json.loads(report)["data"] == str(data)
    expect(runner, ["predict", run / "model.pt", data, "--keep", "x", "-o", predictions], "ok",
           data, [])
    from fcnn_cli.data.tables import read_table

    assert np.allclose(read_table(predictions).frame["x"], read_table(data).frame["x"])


def test_a_run_resumes_on_data_named_not_in_utf8(runner, interrupted, quakes_csv, tmp_path):
    data = not_utf8(tmp_path, "quakes.csv")
    data.write_bytes(quakes_csv.read_bytes())
    config = json.loads((interrupted / "config.json").read_text())
    (interrupted / "config.json").write_text(json.dumps({**config, "data": str(data)}))
    result = runner.invoke(cli, ["train", "--resume", str(interrupted), "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((interrupted / "config.json").read_text())["data"] == str(data)
    assert len((interrupted / "history.csv").read_text().splitlines()) == 4  # 3 epochs


def test_streaming_a_parquet_file_named_not_in_utf8_is_one_line(runner, tmp_path):
    data = not_utf8(tmp_path, "q.parquet")
    expect(runner, ["simulate", "earthquakes", "-n", 60, "-o", data], "ok", data, [])
    result = runner.invoke(cli, ["train", str(data), "--stream", "-o", str(tmp_path / "run")])
    assert result.exit_code == 1 and not (tmp_path / "run").exists()
    assert result.stderr == "Error: " + str(data).encode("utf-8", "backslashreplace").decode() + \
        ": --stream reads only files and directories whose names are UTF-8 text; rename them " \
        "(one file reads without --stream too)\n"


@pytest.mark.parametrize("how", sorted(PULLED))
def test_hdf5_values_from_other_files_reach_no_output(runner, tmp_path, model_path, how):
    path = _h5_pulling(tmp_path / "a.h5", how)
    sources = {tmp_path / "secret.txt", tmp_path / "secret.h5"}
    outputs = [tmp_path / "run", tmp_path / "report.json", tmp_path / "leak.csv"]
    for args in (["train", path, *LABELS, "-o", outputs[0]],
                 ["evaluate", model_path, path, "-o", outputs[1]],
                 ["predict", model_path, path, "--keep", "note", "-o", outputs[2]]):
        result = expect(runner, args, PULLED[how], path, [])
        assert "secret" in result.stderr and "SECRET" not in result.output
    assert not any(p.exists() for p in outputs)
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and p not in sources and
              SECRET in p.read_bytes()]
    assert not leaked
