import inspect
import io
import json
import logging
import math
import re
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.results import runs
from fcnn_cli.data import simulate
from fcnn_cli.engine import train
from fcnn_cli.commands.cli import _MessageFormatter, cli, with_flags
from fcnn_cli.core.config import NetConfig, TrainConfig
from fcnn_cli.machine.devices import resolve_device
from fcnn_cli.engine.diagnostics import warnings
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import Table, read_table


def run(runner, *args, input=None, code=0):
    result = runner.invoke(cli, [str(a) for a in args], input=input)
    assert result.exit_code == code, result.output + str(result.exception)
    if code:
        assert "Traceback" not in result.output
    return result


def test_version_and_help(runner):
    assert "fcnn, version" in run(runner, "--version").output
    for command in (["train"], ["evaluate"], ["predict"], ["simulate", "earthquakes"]):
        out = run(runner, *command, "--help").output
        assert "Example" in out and "[default:" in out


def test_usage_errors_exit_2(runner):
    assert "missing argument DATA" in run(runner, "train", code=2).output
    run(runner, "train", "x.csv", "--arch", "cnn", code=2)


def test_simulate_writes_csv_parquet_and_stdout(runner, tmp_path):
    run(runner, "simulate", "earthquakes", "-n", 10, "-o", tmp_path / "q.csv")
    run(runner, "simulate", "earthquakes", "-n", 10, "-o", tmp_path / "q.parquet")
    a = pd.read_csv(tmp_path / "q.csv", comment="#")
    b = pd.read_parquet(tmp_path / "q.parquet")
    pd.testing.assert_frame_equal(a, b)
    out = run(runner, "simulate", "earthquakes", "-n", 3, "-o", "-").stdout
    assert out.startswith('# fcnn {"targets": ["x", "y"]')
    assert len(out.strip().splitlines()) == 5


def test_round_trip_simulate_train_evaluate_predict(runner, tmp_path):
    data, new = tmp_path / "quakes.parquet", tmp_path / "new.csv"
    run(runner, "simulate", "earthquakes", "-n", 400, "--seed", 1, "-o", data)
    run(runner, "simulate", "earthquakes", "-n", 30, "--seed", 2, "-o", new)
    run_dir = tmp_path / "run"
    out = run(runner, "train", data, "--epochs", 3, "-o", run_dir).output
    assert "epoch    3/3" in out and "saved run" in out
    assert {p.name for p in run_dir.iterdir()} == {"model.pt", "metrics.json", "history.csv",
                                                   "config.json", "config.toml",
                                                   "predictions.parquet",
                                                   "plots", ".lock"}
    assert (run_dir / "plots" / "learning_curves.png").is_file()
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history.epoch) == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_rmse", "lr", "seconds"} <= set(history.columns)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["targets"] == ["x", "y"] and config["sizes"] == {"train": 360, "val": 20,
                                                                   "test": 20}
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert set(saved) == {"train", "val", "test"}

    report = json.loads(run(runner, "evaluate", run_dir / "model.pt", new, "--json").stdout)
    assert report["rows"] == 30 and report["distance"]["unit"] == "km"
    assert report["targets"]["x"]["rmse"] > 0
    table = run(runner, "evaluate", run_dir / "model.pt", new).stdout
    assert "RMSE" in table and "68th pct" in table

    preds = pd.read_csv(io.StringIO(run(runner, "predict", run_dir / "model.pt", new,
                                        "--keep", "x,y").stdout))
    assert list(preds.columns) == ["x", "y", "x_pred", "y_pred"] and len(preds) == 30
    # the predictions are the ones evaluate scored
    rmse_x = ((preds.x_pred - preds.x) ** 2).mean() ** 0.5
    assert rmse_x == pytest.approx(report["targets"]["x"]["rmse"], rel=1e-5)


def test_evaluate_writes_report_file(runner, model_path, quakes_csv, tmp_path):
    out = tmp_path / "report.json"
    run(runner, "evaluate", model_path, quakes_csv, "-o", out)
    assert json.loads(out.read_text())["rows"] == 600


def test_predict_without_labels_and_to_parquet(runner, model_path, quakes, tmp_path):
    features = tmp_path / "features.csv"
    quakes.frame.drop(columns=["x", "y"]).head(7).to_csv(features, index=False)
    out = tmp_path / "p.parquet"
    run(runner, "predict", model_path, features, "-o", out)
    assert list(pd.read_parquet(out).columns) == ["x_pred", "y_pred"]


def test_predict_missing_feature_is_named(runner, model_path, quakes, tmp_path):
    path = tmp_path / "partial.csv"
    quakes.frame.drop(columns=["ts3"]).to_csv(path, index=False)
    out = run(runner, "predict", model_path, path, code=1).output
    assert "missing feature column(s) 'ts3'" in out and "partial.csv" in out


def test_unknown_target_lists_columns(runner, quakes_csv, tmp_path):
    out = run(runner, "train", quakes_csv, "-t", "depth", "-o", tmp_path / "r", code=1).output
    assert "no label column 'depth'" in out and "'tp1'" in out
    assert not (tmp_path / "r").exists()


def test_stdin_to_stdout_pipeline(runner, model_path):
    data = run(runner, "simulate", "earthquakes", "-n", 4, "--seed", 9, "-o", "-").stdout
    out = run(runner, "predict", model_path, "-", input=data).stdout
    assert out.splitlines()[0] == "x_pred,y_pred" and len(out.splitlines()) == 5


def test_train_from_stdin(runner, tmp_path):
    data = run(runner, "simulate", "earthquakes", "-n", 200, "-o", "-").stdout
    run(runner, "train", "-", "--epochs", 1, "-o", tmp_path / "r", input=data)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["data"] == "<stdin>"


def test_an_earlier_run_is_never_overwritten(runner, quakes_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(runner, "train", quakes_csv, "--epochs", 1, "-q", "--no-plots")
    run(runner, "train", quakes_csv, "--epochs", 1, "-q", "--no-plots")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["quakes", "quakes-2"]
    before = (tmp_path / "runs/quakes/model.pt").read_bytes()
    out = run(runner, "train", quakes_csv, "--epochs", 1, "-o", "runs/quakes", code=1).output
    assert "already holds a run" in out
    assert (tmp_path / "runs/quakes/model.pt").read_bytes() == before
    run(runner, "train", quakes_csv, "--epochs", 1, "-o", "runs/quakes", "--force", "-q",
        "--no-plots")


def test_seed_makes_runs_repeatable(runner, quakes_csv, tmp_path):
    for name in ("a", "b", "c"):
        seed = 2 if name == "c" else 1
        run(runner, "train", quakes_csv, "--epochs", 2, "--seed", seed, "-o", tmp_path / name, "-q",
            "--no-plots")
    metrics = {n: (tmp_path / n / "metrics.json").read_text() for n in "abc"}
    assert metrics["a"] == metrics["b"] != metrics["c"]


def test_not_a_checkpoint(runner, quakes_csv):
    out = run(runner, "predict", quakes_csv, quakes_csv, code=1).output
    assert "not an fcnn checkpoint" in out


@pytest.mark.parametrize("args", [["--depth", "0"], ["--lr", "-1"], ["--val-frac", "2"],
                                  ["--arch", "selu", "--activation", "relu"], ["--ema", "1"],
                                  ["--dropout", "1"]])
def test_bad_option_values_are_usage_errors(runner, quakes_csv, tmp_path, args):
    out = run(runner, "train", quakes_csv, "-o", tmp_path / "r", *args, code=2).output
    assert "Error:" in out
    assert not (tmp_path / "r").exists()


def test_predict_and_evaluate_take_a_device(runner, model_path, quakes_csv):
    out = run(runner, "predict", model_path, quakes_csv, "--device", "cpu").stdout
    assert len(out.splitlines()) == 601
    run(runner, "evaluate", model_path, quakes_csv, "--device", "cpu", "--json")


LOADED = """
import sys
from click.testing import CliRunner
from fcnn_cli.commands.cli import cli
result = CliRunner().invoke(cli, sys.argv[1:])
heavy = sorted(m for m in ("torch", "pandas", "pyarrow", "numpy") if m in sys.modules)
print(result.exit_code, ",".join(heavy) or "-")
"""


@pytest.mark.parametrize("args, code", [
    (["--help"], 0), (["train", "--help"], 0),
    (["train", "{data}", "--lr", "-1"], 2), (["train", "{data}", "--depth", "0"], 2),
    (["train", "{data}", "--ema", "1"], 2), (["train", "missing.csv"], 1),
    (["predict", "missing.pt", "{data}"], 1), (["predict", "{model}", "missing.csv"], 1),
    (["evaluate", "{model}", "missing.parquet"], 1),
    (["evaluate", "{model}", "{data}", "--bins", "3"], 2), (["plot", "missing"], 1),
    (["report", "missing"], 1), (["info", "missing.pt"], 1), (["info", "--help"], 0),
    (["train", "{data}", "--print-config"], 0), (["train", "{data}", "--config", "x.toml"], 2),
    (["export", "missing.pt", "m.onnx"], 1), (["export", "--help"], 0)])
def test_help_and_argument_errors_load_no_heavy_library(quakes_csv, model_path, args, code,
                                                        tmp_path):
    """They answer before torch, pandas or numpy load: at once (bench/speed.py times it)."""
    import os
    import subprocess
    import sys

    args = [a.format(data=quakes_csv, model=model_path) for a in args]
    # In a directory of its own: a regression that trains after all must not write elsewhere.
    out = subprocess.run([sys.executable, "-c", LOADED, *args], capture_output=True, text=True,
                         check=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": os.getcwd()}).stdout.split()
    assert out == [str(code), "-"]


def test_train_with_a_test_file_holds_out_no_test_rows_and_scores_the_file(runner, quakes_csv,
                                                                           tmp_path):
    test = tmp_path / "test.csv"
    run(runner, "simulate", "earthquakes", "-n", 120, "--seed", 5, "-o", test)
    out = run(runner, "train", quakes_csv, "--test", test, "--epochs", 1,
              "-o", tmp_path / "r").output
    assert "Test metrics of" in out and "(120 rows)" in out
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["test_data"] == str(test) and config["sizes"] == {"train": 570, "val": 30,
                                                                   "test": 120}
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["test"]["rows"] == 120


# --- --keep that would duplicate a column (issue #10) ---------------------------------------

@pytest.mark.parametrize("keep", [["--keep", "x", "--keep", "x"], ["--keep", "x,y,x"],
                                  ["--keep", "y,x", "--keep", "y"]])
def test_keep_twice_is_a_usage_error(runner, model_path, quakes_csv, tmp_path, keep):
    out = tmp_path / "p.csv"
    result = run(runner, "predict", model_path, quakes_csv, *keep, "-o", out, code=2)
    assert "given more than once" in result.stderr and "--keep" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_keep_that_names_a_prediction_column_is_refused(runner, model_path, quakes, tmp_path,
                                                        suffix):
    data, out = tmp_path / "d.csv", tmp_path / f"p{suffix}"
    quakes.frame.assign(x_pred=1.0).head(5).to_csv(data, index=False)
    out.write_bytes(b"old")
    result = run(runner, "predict", model_path, data, "--keep", "y,x_pred", "-o", out, code=1)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--keep 'x_pred'" in errors[0]
    assert out.read_bytes() == b"old"
    kept = run(runner, "predict", model_path, data, "--keep", "y", "-o", out)
    assert kept.exit_code == 0


def test_keep_that_names_a_class_probability_is_refused(runner, quakes, tmp_path):
    data = tmp_path / "d.csv"
    frame = quakes.frame.head(200).assign(side=lambda f: (f.x > 0).map({True: "east",
                                                                        False: "west"}))
    frame.assign(p_east=0.5).to_csv(data, index=False)
    run(runner, "train", data, "-t", "side", "--features", "tp1,ts1,tp2", "--epochs", 1, "-q",
        "-o", tmp_path / "run")
    result = run(runner, "predict", tmp_path / "run" / "model.pt", data, "--keep", "p_east",
                 code=1)
    assert "--keep 'p_east'" in result.stderr and result.stdout == ""


def test_brackets_in_paths_are_printed_not_read_as_markup(runner, tmp_path, quakes_csv):
    data = tmp_path / "d[" / "]q.csv"  # rich markup would read "[/]" as a closing tag
    data.parent.mkdir()
    data.write_bytes(quakes_csv.read_bytes())
    run_dir = tmp_path / "run[bold]"
    def squeezed(text):  # the console wraps long paths
        return "".join(text.split())

    out = run(runner, "train", data, "--epochs", 1, "-o", run_dir)
    assert squeezed(f"saved run to {run_dir} (best epoch 1") in squeezed(out.stderr)
    out = run(runner, "evaluate", run_dir / "model.pt", data).stdout
    assert squeezed(f"{data} (600 rows)") in squeezed(out)


# Issue #10: options refused from the options alone (exit 2), and what --resume combines with.

@pytest.mark.parametrize("args, message", [
    (["--weight-decay", "inf"], "--weight-decay must be finite"),
    (["--weight-decay", "nan"], "--weight-decay must be finite"),
    (["--lr", "inf"], "--lr must be finite and > 0, not inf"),
    (["--epochs", str(10 ** 20)], "--epochs must be at most 2147483647"),
    (["--momentum", "-inf"], "--momentum must be in"),
    (["--ema", "nan"], "--ema must be in"),
    (["--test-frac", "inf"], "--test-frac must be in"),
    (["--dropout", "nan"], "--dropout must be in"),
    (["--seed", "-1"], "--seed"),
    (["--threads", "0"], "--threads must be between"),
    (["-t", "x", "-t", "x"], "--target names column 'x' twice"),
    (["--features", "tp1,ts1,tp1"], "--features names column 'tp1' twice"),
    (["-t", "x", "--features", "tp1,x"], "column 'x' is both a label and a feature"),
])
def test_bad_train_options_are_refused_before_any_data(runner, tmp_path, args, message):
    out = run(runner, "train", tmp_path / "missing.csv", "-o", tmp_path / "r", *args,
              code=2).output
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], out
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("value", ["2", "-0.5", "nan", "inf"])
def test_threshold_is_checked_before_the_model_loads(runner, tmp_path, command, value):
    out = run(runner, command, tmp_path / "missing.pt", tmp_path / "missing.csv",
              "--threshold", value, code=2).output
    assert f"Error: --threshold must be in [0, 1], not {float(value)}" in out


def test_predict_refuses_a_column_kept_twice(runner, model_path, quakes_csv, tmp_path):
    out = tmp_path / "p.csv"
    result = run(runner, "predict", model_path, quakes_csv, "--keep", "x,y", "--keep", "x",
                 "-o", out, code=2)
    assert "'x' given more than once" in result.output and not out.exists()


def snapshot(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir()}


@pytest.mark.parametrize("args, named", [
    (["--lr", "0.5", "--width", "8", "-o", "elsewhere"], "--width, --lr, -o/--output"),
    (["--epochs", "60"], "--epochs"),
    (["--no-fast"], "--fast/--no-fast"),
    (["--force", "--nan", "drop"], "--nan, --force"),
    (["-t", "x"], "-t/--target"),
])
def test_resume_refuses_options_it_cannot_honour(runner, interrupted, tmp_path, args, named):
    before = snapshot(interrupted)
    out = run(runner, "train", "--resume", interrupted, *args, code=2).output
    assert (f"Error: --resume continues a run with its saved options; it does not take {named} "
            "(only -q, --threads, --device, --nproc and --no-plots)") in out
    assert snapshot(interrupted) == before and not (tmp_path / "elsewhere").exists()


def test_resume_honours_threads_and_device(runner, interrupted):
    run(runner, "train", "--resume", interrupted, "--threads", 1, "--device", "cpu", "-q")
    config = json.loads((interrupted / "config.json").read_text())
    assert config["train"]["threads"] == 1 and config["train"]["device"] == "cpu"
    assert pd.read_csv(interrupted / "history.csv").epoch.tolist() == [1, 2, 3]
    assert not (interrupted / "state.pt").exists()


def test_train_help_says_what_combines_with_resume(runner):
    out = " ".join(run(runner, "train", "--help").output.split())
    assert "combines only with -q, --threads, --device, --nproc and --no-plots" in out


def test_train_help_says_where_each_precision_runs(runner):
    out = " ".join(run(runner, "train", "--help").output.split())
    # tf32 is ignored on a CPU, with a warning; bf16 runs there too, by design
    assert "tf32 (GPUs only: a CPU computes fp32, with a warning)" in out
    assert "bf16 (autocast on a GPU or a CPU, with the autograd step)" in out


@pytest.mark.parametrize("args", [
    ["train", "{data}", "--weight-decay", "inf"], ["train", "{data}", "-t", "x", "-t", "x"],
    ["train", "--resume", "{data}", "--lr", "1"],
    ["predict", "{model}", "{data}", "--threshold", "nan"],
    ["predict", "{model}", "{data}", "--keep", "x,x"]])
def test_issue_10_refusals_load_no_heavy_library(quakes_csv, model_path, args, tmp_path):
    test_help_and_argument_errors_load_no_heavy_library(quakes_csv, model_path, args, 2,
                                                        tmp_path)


# Issue #11: the library's messages spell options the Python way and name them; the command
# line shows its flags in their place.

def integer_labels(tmp_path):
    path = tmp_path / "ints.csv"
    pd.DataFrame({"a": np.arange(40.0), "k": np.arange(40) % 3}).to_csv(path, index=False)
    return path


def holding_a_run(tmp_path):
    (tmp_path / "r").mkdir(exist_ok=True)
    (tmp_path / "r" / "model.pt").write_bytes(b"an earlier run")
    return tmp_path / "r"


# name: (the library call, its message and the options it names; the command line for the
# same mistake, its exit code and its message)
SAID_BOTH_WAYS = {
    "depth": (lambda tmp: NetConfig(n_in=1, n_out=1, depth=0),
              "depth must be between 1 and 1000, not 0", ("depth",),
              lambda tmp: ["train", tmp / "missing.csv", "--depth", "0"], 2,
              "--depth must be between 1 and 1000, not 0"),
    "fractions": (lambda tmp: TrainConfig(val_frac=0.5, test_frac=0.5),
                  "val_frac plus test_frac must be below 1", ("val_frac", "test_frac"),
                  lambda tmp: ["train", tmp / "missing.csv", "--val-frac", "0.5",
                               "--test-frac", "0.5"], 2,
                  "--val-frac plus --test-frac must be below 1"),
    "count": (lambda tmp: simulate.earthquake_tables(n=0), "n must be at least 1, not 0", ("n",),
              lambda tmp: ["simulate", "earthquakes", "-n", "0", "-o", tmp / "q.csv"], 2,
              "-n must be at least 1, not 0"),
    "station": (lambda tmp: simulate.earthquake_tables(stations=[(1.0, math.inf)]),
                "stations must be X,Y in finite km, not 1.0,inf", ("stations",),
                lambda tmp: ["simulate", "earthquakes", "--station", "1,inf", "-o",
                             tmp / "q.csv"], 2,
                "--station must be X,Y in finite km, not 1.0,inf"),
    "task": (lambda tmp: train.fit(read_table(integer_labels(tmp)), targets=["k"]),
             "holds 3 distinct integers: say task='classify' or task='regress'", ("task",),
             lambda tmp: ["train", integer_labels(tmp), "-t", "k", "-o", tmp / "r"], 1,
             "holds 3 distinct integers: say --task classify or --task regress"),
    "force": (lambda tmp: runs.check_run_dir(holding_a_run(tmp)),
              "already holds a run; choose another directory or add force=True", ("force",),
              lambda tmp: ["train", tmp / "missing.csv", "-o", holding_a_run(tmp)], 1,
              "already holds a run; choose another directory or add --force"),
}


@pytest.mark.parametrize("name", sorted(SAID_BOTH_WAYS))
def test_library_messages_name_python_options_and_the_cli_its_flags(runner, tmp_path, name):
    call, said, options, args, code, shown = SAID_BOTH_WAYS[name]
    with pytest.raises(FcnnError) as error:
        call(tmp_path)
    assert said in str(error.value) and "--" not in str(error.value)
    assert error.value.options == options
    out = run(runner, *args(tmp_path), code=code).output
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and shown in errors[0], out


def test_nan_policy_is_named_both_ways(runner, tmp_path, trained, model_path, quakes):
    holes = Table(quakes.frame.copy(), name="holes.csv")
    holes.frame.loc[[1, 5], "tp2"] = np.nan
    with pytest.raises(FcnnError, match="; nan='drop' leaves such rows out$") as error:
        trained.predictor.predict(holes)
    assert error.value.options == ("nan",)
    path = tmp_path / "holes.csv"
    holes.frame.to_csv(path, index=False)
    out = run(runner, "predict", model_path, path, code=1).stderr
    assert out.startswith("Error: ") and out.endswith("; --nan drop leaves such rows out\n")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA GPU is here")
def test_missing_gpu_is_named_both_ways(runner, model_path, quakes_csv):
    with pytest.raises(FcnnError, match=r"^device='cuda': .* \(try device='cpu'\)$"):
        resolve_device("cuda")
    out = run(runner, "evaluate", model_path, quakes_csv, "--device", "cuda", code=1).stderr
    assert out == ("Error: --device cuda: no CUDA GPU is available here (try --device cpu)\n")


@pytest.mark.parametrize("text, options, shown", [
    ("depth must be between 1 and 1000, not 0", ("depth",),
     "--depth must be between 1 and 1000, not 0"),
    ("depth must be between 1 and 1000, not 0", (), "depth must be between 1 and 1000, not 0"),
    ("batch_size must be at least 1", ("batch_size",), "--batch-size must be at least 1"),
    ("n must be at least 1, not 0", ("n",), "-n must be at least 1, not 0"),
    ("runs/depth: depth must be", ("depth",), "runs/depth: --depth must be"),
    ("targets.csv: no label column: name one with targets", ("targets",),
     "targets.csv: no label column: name one with --target"),
    ("t.csv: column 'targets' is empty; targets names it", ("targets",),
     "t.csv: column 'targets' is empty; --target names it"),
    ("3 row(s) hold NaN ('nan': 3); nan='drop' leaves such rows out", ("nan",),
     "3 row(s) hold NaN ('nan': 3); --nan drop leaves such rows out"),
    ("choose another directory or add force=True", ("force",),
     "choose another directory or add --force"),
    ("extent=1e+300, vs=3.5 and noise=0.0 give", ("extent", "vs", "noise"),
     "--extent 1e+300, --vs 3.5 and --noise 0.0 give"),
    ("arch='selu' takes selu activations only; leave out activation='leaky-relu'",
     ("arch", "activation"),
     "--arch selu takes selu activations only; leave out --activation leaky-relu"),
])
def test_with_flags_rewrites_whole_option_names_only(text, options, shown):
    assert with_flags(text, options) == shown


def test_every_option_a_message_may_name_is_a_flag_of_its_command():
    def flags(command):
        return {o for p in command.params for o in p.opts + p.secondary_opts}

    net_and_training = [f.name for f in fields(NetConfig) + fields(TrainConfig)
                        if f.name not in ("n_in", "n_out")]
    quakes = [p for p in inspect.signature(simulate.earthquake_tables).parameters if p != "rows"]
    galaxies = [p for p in inspect.signature(simulate.galaxy_tables).parameters if p != "rows"]
    named = [(cli.commands["train"], net_and_training + ["targets", "features", "force"]),
             (cli.commands["simulate"].commands["earthquakes"], quakes),
             (cli.commands["simulate"].commands["galaxies"], galaxies),
             (cli.commands["evaluate"], ["threshold", "nan", "device", "by", "bins", "edges",
                                         "position"]),
             (cli.commands["predict"], ["threshold", "nan", "device"])]
    for command, names in named:
        for name in names:
            assert with_flags(name, [name]) in flags(command), (command.name, name)


def diagnostic_rows(first, output):
    return [{"epoch": 0, "layer": 1, "grad_norm": first, "act_mean": 0, "act_var": 1},
            {"epoch": 0, "layer": "output", "grad_norm": output, "act_mean": 0, "act_var": 1}]


@pytest.mark.parametrize("first, output, said, shown", [
    (1e-6, 1.0, "try arch='resnet', arch='batchnorm' or arch='selu', or a relu-like activation",
     "try --arch resnet, --arch batchnorm or --arch selu, or a relu-like --activation"),
    (1e4, 1.0, "try a lower lr, arch='batchnorm' or arch='selu'",
     "try a lower --lr, --arch batchnorm or --arch selu"),
    (1e2, 1e-3, "try arch='batchnorm' or arch='selu'", "try --arch batchnorm or --arch selu"),
])
def test_logged_diagnostics_warnings_show_flags(first, output, said, shown):
    warning = warnings(diagnostic_rows(first, output))[0]
    assert warning.endswith(said) and "--" not in warning
    record = logging.LogRecord("fcnn_cli.engine.train", logging.WARNING, __file__, 1, "%s", (warning,),
                               None)
    line = _MessageFormatter().format(record)
    assert line.startswith("warning: ") and line.endswith(shown)
    assert line == "warning: " + with_flags(warning, warning.options)


def test_cli_warns_of_vanishing_gradients_with_flags(runner, quakes_csv, tmp_path):
    result = run(runner, "train", quakes_csv, "--depth", 12, "--width", 32, "--activation",
                 "sigmoid", "--diagnostics", "--epochs", 1, "--batch-size", 128, "-q",
                 "-o", tmp_path / "r")
    vanishing = [line for line in result.stderr.splitlines() if "vanishing" in line]
    assert vanishing and all(line.startswith("warning: vanishing gradients") and line.endswith(
        "try --arch resnet, --arch batchnorm or --arch selu, or a relu-like --activation")
        for line in vanishing), result.stderr


def test_stdin_feeds_one_table_only(runner, quakes_csv, tmp_path):
    result = run(runner, "train", quakes_csv, "--val", "-", "--test", "-", "-o", tmp_path / "r",
                 input=quakes_csv.read_text(), code=2)
    assert "stdin ('-') can feed one table only" in result.output
    assert not (tmp_path / "r").exists()


def test_batch_norm_with_one_row_a_minibatch_is_refused_before_any_data(runner, tmp_path):
    result = run(runner, "train", tmp_path / "missing.csv", "--arch", "batchnorm",
                 "--batch-size", 1, code=2)
    assert "--batch-size 1 gives fewer" in result.output


def test_a_test_file_that_is_the_training_data_is_warned_of(runner, quakes_csv, tmp_path):
    result = run(runner, "train", quakes_csv, "--test", quakes_csv, "--epochs", 1, "-q",
                 "-o", tmp_path / "r")
    assert f"warning: --test {quakes_csv} is DATA itself" in result.stderr
    other = run(runner, "train", quakes_csv, "--epochs", 1, "-q", "-o", tmp_path / "s")
    assert "is DATA itself" not in other.stderr


def test_kept_columns_are_copied_as_written(runner, model_path, quakes, tmp_path):
    frame = quakes.frame.head(4).copy()
    frame.insert(0, "run", ["007", "0010", "0x1A", "1e3"])
    path = tmp_path / "ids.csv"
    frame.to_csv(path, index=False)
    out = run(runner, "predict", model_path, path, "--keep", "run,tp1").stdout
    lines = out.splitlines()
    assert lines[0].startswith("run,tp1,")
    assert [line.split(",")[0] for line in lines[1:]] == ["007", "0010", "0x1A", "1e3"]
    kept = pd.read_csv(io.StringIO(out))
    assert np.allclose(kept.tp1, frame.tp1)  # a feature kept is still read as a number


# Conventions: --version, shell completion, NO_COLOR.

COMPLETE = """
import atexit, sys
atexit.register(lambda: print("heavy:", *[m for m in ("torch", "pandas", "numpy")
                                         if m in sys.modules]))
from fcnn_cli.commands.cli import main
main()
"""


@pytest.mark.parametrize("words, cword, expected", [
    ("fcnn train --acti", 2, "plain,--activation"),
    ("fcnn train --activation se", 3, "plain,selu"),
    ("fcnn exp", 1, "plain,export"),
    # Paths: the shell completes them itself, from what click asks for.
    ("fcnn train qu", 2, "file,qu"),
    ("fcnn train q.csv --config ", 4, "file,"),
    ("fcnn train q.csv --val ", 4, "file,"),
    ("fcnn train q.csv --test ", 4, "file,"),
    ("fcnn train q.csv -o ", 4, "dir,"),
    ("fcnn train --resume ", 3, "dir,"),
    ("fcnn predict ", 2, "file,"),
    ("fcnn predict m.pt ", 3, "file,"),
    ("fcnn predict m.pt d.csv --output ", 5, "file,"),
    ("fcnn evaluate m.pt d.csv --plots ", 5, "dir,"),
    ("fcnn report ", 2, "dir,"),
    ("fcnn plot r -o ", 4, "dir,"),
    ("fcnn info ", 2, "file,"),
    ("fcnn export m.pt ", 3, "file,"),
    ("fcnn simulate galaxies --preview ", 4, "file,"),
])
def test_shell_completion_answers_without_heavy_libraries(words, cword, expected, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.getcwd(), "_FCNN_COMPLETE": "bash_complete",
           "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    out = subprocess.run([sys.executable, "-c", COMPLETE], capture_output=True, text=True,
                         env=env, cwd=tmp_path).stdout.splitlines()
    assert expected in out and out[-1] == "heavy:"


def test_completion_scripts_for_bash_zsh_and_fish(tmp_path):
    import os
    import subprocess
    import sys

    for shell in ("bash", "zsh", "fish"):
        env = {**os.environ, "PYTHONPATH": os.getcwd(), "_FCNN_COMPLETE": f"{shell}_source"}
        out = subprocess.run([sys.executable, "-c", COMPLETE], capture_output=True, text=True,
                             env=env, cwd=tmp_path).stdout
        assert "_FCNN_COMPLETE" in out and f"{shell}_complete" in out, shell


SGR_COLOR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")


def test_no_color_is_respected(runner, model_path, quakes_csv, monkeypatch):
    from fcnn_cli.commands.cli import _console

    monkeypatch.setenv("FORCE_COLOR", "1")  # as on a terminal
    monkeypatch.delenv("NO_COLOR", raising=False)
    console = _console()
    with console.capture() as coloured:
        console.print("[red]x[/]")
    assert SGR_COLOR.search(coloured.get())
    monkeypatch.setenv("NO_COLOR", "1")
    console = _console()
    with console.capture() as plain:
        console.print("[red]x[/]")
    assert "x" in plain.get() and not SGR_COLOR.search(plain.get())
    for args in (["evaluate", model_path, quakes_csv], ["train", "--depth", "0", "x.csv"]):
        result = runner.invoke(cli, [str(a) for a in args], color=True)
        assert not SGR_COLOR.search(result.stdout + result.stderr)


def test_version_is_the_package_version(runner):
    from fcnn_cli import __version__

    for flag in ("--version", "-V"):
        assert run(runner, flag).output == f"fcnn, version {__version__}\n"


def test_ensemble_with_gaussian_loss_from_train_to_predict_and_evaluate(runner, tmp_path):
    data, new, run_dir = tmp_path / "q.csv", tmp_path / "new.csv", tmp_path / "run"
    run(runner, "simulate", "earthquakes", "-n", 300, "--seed", 1, "--noise", 0.05, "-o", data)
    run(runner, "simulate", "earthquakes", "-n", 20, "--seed", 2, "-o", new)
    out = run(runner, "train", data, "--epochs", 2, "--depth", 2, "--width", 16, "--ensemble",
              3, "--loss", "gaussian", "--no-plots", "-o", run_dir).output
    assert "saved run" in out and "within ±1σ" in out
    model = run_dir / "model.pt"
    preds = pd.read_csv(io.StringIO(run(runner, "predict", model, new, "--members").stdout))
    assert list(preds.columns[:4]) == ["x_pred", "x_std", "y_pred", "y_std"]
    assert {"x_pred_m2", "y_std_m0"} <= set(preds.columns) and (preds["x_std"] > 0).all()
    np.testing.assert_allclose(preds["x_pred"], preds[[f"x_pred_m{k}" for k in range(3)]]
                               .mean(axis=1), rtol=1e-6, atol=1e-9)
    report = json.loads(run(runner, "evaluate", model, new, "--json").stdout)
    assert report["uncertainty"]["per_label"]["x"]["crps"] > 0
    assert "Calibration" in run(runner, "evaluate", model, new).stdout


def test_gaussian_loss_on_classes_is_one_line(runner, tmp_path):
    data = tmp_path / "g.csv"
    run(runner, "simulate", "galaxies", "-n", 40, "--size", 8, "-o", data)
    result = run(runner, "train", data, "--loss", "gaussian", "--epochs", 1, "-o",
                 tmp_path / "r", code=1)
    assert "--loss gaussian is for regression" in result.output
