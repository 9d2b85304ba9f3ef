"""fcnn train: its options, refusals, run directories, --resume and what it prints.

Issue #10: options refused from the options alone (exit 2), and what --resume combines with.
"""

import io
import json

import numpy as np
import pandas as pd
import pytest


def test_usage_errors_exit_2(run, runner):
    assert "missing argument DATA" in run(runner, "train", code=2).output
    run(runner, "train", "x.csv", "--arch", "cnn", code=2)


def test_unknown_target_lists_columns(run, runner, quakes_csv, tmp_path):
    out = run(runner, "train", quakes_csv, "-t", "depth", "-o", tmp_path / "r", code=1).output
    assert "no label column 'depth'" in out and "'tp1'" in out
    assert not (tmp_path / "r").exists()


def test_train_from_stdin(run, runner, tmp_path):
    data = run(runner, "simulate", "earthquakes", "-n", 200, "-o", "-").stdout
    run(runner, "train", "-", "--epochs", 1, "-o", tmp_path / "r", input=data)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["data"] == "<stdin>"


def test_an_earlier_run_is_never_overwritten(run, runner, quakes_csv, tmp_path, monkeypatch):
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


def test_seed_makes_runs_repeatable(run, runner, quakes_csv, tmp_path):
    for name in ("a", "b", "c"):
        seed = 2 if name == "c" else 1
        run(runner, "train", quakes_csv, "--epochs", 2, "--seed", seed, "-o", tmp_path / name, "-q",
            "--no-plots")
    metrics = {n: (tmp_path / n / "metrics.json").read_text() for n in "abc"}
    assert metrics["a"] == metrics["b"] != metrics["c"]


@pytest.mark.parametrize("args", [["--depth", "0"], ["--lr", "-1"], ["--val-frac", "2"],
                                  ["--arch", "selu", "--activation", "relu"], ["--ema", "1"],
                                  ["--dropout", "1"]])
def test_bad_option_values_are_usage_errors(run, runner, quakes_csv, tmp_path, args):
    out = run(runner, "train", quakes_csv, "-o", tmp_path / "r", *args, code=2).output
    assert "Error:" in out
    assert not (tmp_path / "r").exists()


def test_train_with_a_test_file_holds_out_no_test_rows_and_scores_the_file(run, runner, quakes_csv,
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


def test_brackets_in_paths_are_printed_not_read_as_markup(run, runner, tmp_path, quakes_csv):
    data = tmp_path / "d[" / "]q.csv"  # rich markup would read "[/]" as a closing tag
    data.parent.mkdir()
    data.write_bytes(quakes_csv.read_bytes())
    run_dir = tmp_path / "run[bold]"
    def squeezed(text):  # the console wraps long paths
        return "".join(text.split())

    out = run(runner, "train", data, "--epochs", 1, "-o", run_dir)
    assert squeezed(f"saved run to {run_dir} (540 training, 30 validation, 30 test rows; "
                    "best epoch 1 of 1") in squeezed(out.stderr)
    out = run(runner, "evaluate", run_dir / "model.pt", data).stdout
    assert squeezed(f"{data} (600 rows)") in squeezed(out)


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
def test_bad_train_options_are_refused_before_any_data(run, runner, tmp_path, args, message):
    out = run(runner, "train", tmp_path / "missing.csv", "-o", tmp_path / "r", *args,
              code=2).output
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], out
    assert not (tmp_path / "r").exists()


def snapshot(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir()}


@pytest.mark.parametrize("args, named", [
    (["--lr", "0.5", "--width", "8", "-o", "elsewhere"], "--width, --lr, -o/--output"),
    (["--epochs", "60"], "--epochs"),
    (["--no-fast"], "--fast/--no-fast"),
    (["--force", "--nan", "drop"], "--nan, --force"),
    (["-t", "x"], "-t/--target"),
])
def test_resume_refuses_options_it_cannot_honour(run, runner, interrupted, tmp_path, args, named):
    before = snapshot(interrupted)
    out = run(runner, "train", "--resume", interrupted, *args, code=2).output
    assert (f"Error: --resume continues a run with its saved options; it does not take {named} "
            "(only -q, --threads, --device, --nproc and --no-plots)") in out
    assert snapshot(interrupted) == before and not (tmp_path / "elsewhere").exists()


def test_resume_honours_threads_and_device(run, runner, interrupted):
    run(runner, "train", "--resume", interrupted, "--threads", 1, "--device", "cpu", "-q")
    config = json.loads((interrupted / "config.json").read_text())
    assert config["train"]["threads"] == 1 and config["train"]["device"] == "cpu"
    assert pd.read_csv(interrupted / "history.csv").epoch.tolist() == [1, 2, 3]
    assert not (interrupted / "state.pt").exists()


def test_train_help_says_what_combines_with_resume(run, runner):
    out = " ".join(run(runner, "train", "--help").output.split())
    assert "combines only with -q, --threads, --device, --nproc and --no-plots" in out


def test_train_help_says_where_each_precision_runs(run, runner):
    out = " ".join(run(runner, "train", "--help").output.split())
    # tf32 is ignored on a CPU, with a warning; bf16 runs there too, by design
    assert "tf32 (GPUs only: a CPU computes fp32, with a warning)" in out
    assert "bf16 (autocast on a GPU or a CPU, with the autograd step)" in out


def test_cli_warns_of_vanishing_gradients_with_flags(run, runner, quakes_csv, tmp_path):
    result = run(runner, "train", quakes_csv, "--depth", 12, "--width", 32, "--activation",
                 "sigmoid", "--diagnostics", "--epochs", 1, "--batch-size", 128, "-q",
                 "-o", tmp_path / "r")
    vanishing = [line for line in result.stderr.splitlines() if "vanishing" in line]
    assert vanishing and all(line.startswith("warning: vanishing gradients") and line.endswith(
        "try --arch resnet, --arch batchnorm or --arch selu, or a relu-like --activation")
        for line in vanishing), result.stderr


def test_stdin_feeds_one_table_only(run, runner, quakes_csv, tmp_path):
    result = run(runner, "train", quakes_csv, "--val", "-", "--test", "-", "-o", tmp_path / "r",
                 input=quakes_csv.read_text(), code=2)
    assert "stdin ('-') can feed one table only" in result.output
    assert not (tmp_path / "r").exists()


def test_batch_norm_with_one_row_a_minibatch_is_refused_before_any_data(run, runner, tmp_path):
    result = run(runner, "train", tmp_path / "missing.csv", "--arch", "batchnorm",
                 "--batch-size", 1, code=2)
    assert "--batch-size 1 gives fewer" in result.output


def test_a_test_file_that_is_the_training_data_is_warned_of(run, runner, quakes_csv, tmp_path):
    result = run(runner, "train", quakes_csv, "--test", quakes_csv, "--epochs", 1, "-q",
                 "-o", tmp_path / "r")
    assert f"warning: --test {quakes_csv} is DATA itself" in result.stderr
    other = run(runner, "train", quakes_csv, "--epochs", 1, "-q", "-o", tmp_path / "s")
    assert "is DATA itself" not in other.stderr


def test_a_test_file_that_is_the_validation_file_is_warned_of(run, runner, quakes_csv,
                                                              tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(quakes_csv)
    result = run(runner, "train", quakes_csv, "--val", link, "--test", quakes_csv, "--epochs",
                 1, "-q", "-o", tmp_path / "r")
    assert f"warning: --test {quakes_csv} is the --val file too" in result.stderr


@pytest.mark.parametrize("flag", ["--val", "--test"])
def test_a_file_of_a_streamed_directory_is_warned_of(run, runner, quakes, tmp_path, flag):
    """Its rows are trained on, as DATA's own file's are."""
    from fcnn_cli.data.writer import write_table

    (tmp_path / "d").mkdir()
    part = tmp_path / "d" / "a.parquet"
    write_table(quakes, part)
    result = run(runner, "train", tmp_path / "d", "--stream", flag, part, "--epochs", 1, "-q",
                 "-o", tmp_path / "r")
    assert f"warning: {flag} {part} is one of DATA's files" in result.stderr


def test_ensemble_with_gaussian_loss_from_train_to_predict_and_evaluate(run, runner, tmp_path):
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


def test_gaussian_loss_on_classes_is_one_line(run, runner, tmp_path):
    data = tmp_path / "g.csv"
    run(runner, "simulate", "galaxies", "-n", 40, "--size", 8, "-o", data)
    result = run(runner, "train", data, "--loss", "gaussian", "--epochs", 1, "-o",
                 tmp_path / "r", code=1)
    assert "--loss gaussian is for regression" in result.output


@pytest.mark.parametrize("when", ["after an epoch", "before any epoch"])
def test_data_changed_names_a_file_escaped(tmp_path, runner, monkeypatch, when):
    """Exit 75: the changed file's name, read from a walked directory, is printed escaped."""
    from pieces import three_files

    from fcnn_cli.commands import cli, runjob
    from fcnn_cli.data import simulate
    from fcnn_cli.engine import stream

    d = three_files(tmp_path, simulate.earthquakes(n=3000, seed=4).frame)
    odd = d / "p\x1b[2J.parquet"
    (d / "p2.parquet").rename(odd)
    if when == "after an epoch":
        printed = runjob._EpochPrinter.__call__

        def print_and_remove(printer, row):
            printed(printer, row)
            odd.unlink(missing_ok=True)

        monkeypatch.setattr(runjob._EpochPrinter, "__call__", print_and_remove)
    else:
        prepare = stream.prepare

        def prepare_and_remove(*args, **kwargs):
            prepared = prepare(*args, **kwargs)
            odd.unlink()
            return prepared

        monkeypatch.setattr(stream, "prepare", prepare_and_remove)
    done = runner.invoke(cli, ["train", str(d), "--stream", "--epochs", "3", "--batch-size",
                               "128", "-q", "-o", str(tmp_path / "run")])
    assert done.exit_code == 75, done.output
    assert "\x1b" not in done.output and "p\\x1b[2J.parquet" in done.output


# Issue #24: samples, several DATA files, and what a run records of them.

def test_samples_train_a_classifier_of_their_names_in_the_order_given(samples_run, sample_files):
    import hashlib

    import torch

    config = json.loads((samples_run / "config.json").read_text())
    assert config["data"] is None and config["targets"] == ["sample"]
    assert config["features"] == ["x", "y", "w", "n"]
    assert config["sizes"]["train"] + config["sizes"]["val"] + config["sizes"]["test"] == 600
    recipe = config["recipe"]
    assert [s["name"] for s in recipe["samples"]] == ["signal", "background"]
    signal = recipe["samples"][0]["files"]
    assert [f["path"] for f in signal] == [str(sample_files / "sig_1.csv"),
                                          str(sample_files / "sig_2.csv")]
    data = (sample_files / "sig_2.csv").read_bytes()
    assert signal[1] == {"path": str(sample_files / "sig_2.csv"), "size": len(data),
                         "sha256": hashlib.sha256(data).hexdigest()}
    payload = torch.load(samples_run / "model.pt", weights_only=True)
    meta = json.loads(payload["meta"])
    assert meta["recipe"] == recipe
    assert meta["task"]["classes"] == ["signal", "background"]  # not sorted: as given


def test_config_toml_of_samples_repeats_the_run(run, runner, samples_run, tmp_path):
    import tomllib

    document = tomllib.loads((samples_run / "config.toml").read_text())
    assert list(document["samples"]) == ["signal", "background"]
    assert document["samples"]["background"]["scale"] == 1.0
    run(runner, "train", "--config", samples_run / "config.toml", "-o", tmp_path / "again", "-q",
        "--no-plots")
    assert (tmp_path / "again" / "metrics.json").read_text() == \
        (samples_run / "metrics.json").read_text()


def test_print_config_of_samples_reads_back_relative_to_its_file(run, runner, sample_files,
                                                                 tmp_path, monkeypatch):
    monkeypatch.chdir(sample_files)
    text = run(runner, "train", "--sample", "signal=sig_*.csv*0.5", "--sample",
               "background=bkg.csv", "--epochs", 1, "--print-config").stdout
    assert '[samples.signal]\nfiles = ["' + str(sample_files / "sig_*.csv") + '"]\nscale = 0.5' \
        in text
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "run.toml"
    path.write_text('[samples.background]\nfiles = "bkg.csv"\n[samples.signal]\n'
                    'files = ["sig_1.csv", "sig_2.csv"]\nscale = 2\nwhere = "n > 0"\n')
    monkeypatch.chdir(tmp_path)
    for name in ("bkg.csv", "sig_1.csv", "sig_2.csv"):
        (tmp_path / "sub" / name).write_bytes((sample_files / name).read_bytes())
    again = run(runner, "train", "--config", path, "--print-config").stdout
    assert '[samples.background]\nfiles = ["' + str(tmp_path / "sub" / "bkg.csv") in again
    assert again.index("[samples.background]") < again.index("[samples.signal]")
    assert 'where = "n > 0"' in again and "scale = 2.0" in again


def test_config_toml_of_relative_files_retrains_from_another_directory(run, runner,
                                                                       sample_files, tmp_path,
                                                                       monkeypatch):
    """Its files as it reads them (relative to its own directory: absolute), and DATA's glob
    as the files it found, not those added since."""
    import tomllib

    monkeypatch.chdir(sample_files)
    run(runner, "train", "--sample", "signal=sig_*.csv", "--sample", "background=bkg.csv",
        "--epochs", 1, "-q", "--no-plots", "-o", tmp_path / "ra")
    run(runner, "train", "sig_*.csv", "-t", "x", "--epochs", 1, "-q", "--no-plots", "-o",
        tmp_path / "rg")
    monkeypatch.chdir(tmp_path)
    document = tomllib.loads((tmp_path / "ra" / "config.toml").read_text())
    assert document["samples"]["background"]["files"] == [str(sample_files / "bkg.csv")]
    run(runner, "train", "--config", tmp_path / "ra" / "config.toml", "-q", "--no-plots", "-o",
        tmp_path / "again")
    data = tomllib.loads((tmp_path / "rg" / "config.toml").read_text())["data"]
    assert data == f"{sample_files / 'sig_1.csv'},{sample_files / 'sig_2.csv'}"


@pytest.mark.parametrize("args, message", [
    (["--sample", "a=x.csv"], "give two or more, one for each class"),
    (["--sample", "a=x.csv", "--sample", "b=y.csv*0"], "finite number > 0, not 0.0"),
    (["--sample", "a=x.csv", "--sample", "a=y.csv"], "sample 'a' is given twice"),
    (["--sample", "a=x.csv", "--sample", "b=y.csv", "--val", "v.csv"], "leave out --val"),
    (["--sample", "a=x.csv", "--sample", "b=y.csv", "--task", "regress"],
     "--sample: they make classes"),
    (["--sample", "a=x.csv", "--sample", "b=y.csv", "-t", "p", "-t", "q"], "one class column"),
    (["d.csv", "--sample", "a=x.csv", "--sample", "b=y.csv"], "give DATA or --sample, not both"),
    (["--sample", "a=x.csv", "--sample", "b=y.csv", "--objects", "Muon"], "write NAME:K"),
    (["d.csv", "--define", "pt"], "write NAME=EXPR"),
])
def test_bad_samples_are_refused_before_any_data(run, runner, tmp_path, args, message):
    out = run(runner, "train", *args, "-o", tmp_path / "r", code=2).output
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], out
    assert not (tmp_path / "r").exists()


def test_a_file_without_a_column_of_the_others_is_named(run, runner, sample_files, tmp_path):
    pd.read_csv(sample_files / "bkg.csv").drop(columns="y").to_csv(tmp_path / "bkg.csv",
                                                                   index=False)
    out = run(runner, "train", "--sample", f"signal={sample_files}/sig_1.csv",
              "--sample", f"background={tmp_path}/bkg.csv", "-o", tmp_path / "r", code=1).output
    assert f"{tmp_path}/bkg.csv: no column 'y' ({sample_files}/sig_1.csv has it); the files " \
        "must agree on the columns used" in out
    out = run(runner, "train", "--sample", f"signal={sample_files}/sig_1.csv",
              "--sample", f"background={tmp_path}/bkg.csv", "--features", "x,y",
              "-o", tmp_path / "r", code=1).output
    assert f"{tmp_path}/bkg.csv: no column 'y'; the files must agree" in out
    # the columns used only: without y the files agree
    run(runner, "train", "--sample", f"signal={sample_files}/sig_1.csv", "--sample",
        f"background={tmp_path}/bkg.csv", "--features", "x,n", "--epochs", 1,
        "-o", tmp_path / "r", "-q", "--no-plots")


def test_the_class_column_is_sample_unless_targets_names_another(run, runner, sample_files,
                                                                 tmp_path):
    pd.read_csv(sample_files / "bkg.csv").assign(sample=1).to_csv(tmp_path / "bkg.csv",
                                                                  index=False)
    both = ["--sample", f"s={sample_files}/sig_1.csv", "--sample", f"b={tmp_path}/bkg.csv"]
    out = run(runner, "train", *both, "-o", tmp_path / "r", code=1).output
    assert "has a column 'sample', the name of the class column the samples make; name " \
        "another with --target" in out
    run(runner, "train", *both, "-t", "process", "--features", "x,y", "--epochs", 1,
        "-o", tmp_path / "r", "-q", "--no-plots")
    assert json.loads((tmp_path / "r" / "config.json").read_text())["targets"] == ["process"]


@pytest.mark.parametrize("spelling", ["comma", "glob", "directory"])
def test_several_data_files_train_as_one_table(run, runner, quakes, tmp_path, spelling):
    from fcnn_cli.data.tables import Table
    from fcnn_cli.data.writer import write_table

    parts = tmp_path / "parts"
    parts.mkdir()
    for k, rows in enumerate((slice(0, 250), slice(250, 600))):
        write_table(Table(quakes.frame.iloc[rows], quakes.targets, quakes.units),
                    parts / f"q{k}.parquet")
    data = {"comma": f"{parts}/q0.parquet,{parts}/q1.parquet", "glob": f"{parts}/q*.parquet",
            "directory": str(parts)}[spelling]
    run(runner, "train", data, "--epochs", 1, "-o", tmp_path / "r", "-q", "--no-plots")
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert sum(config["sizes"].values()) == 600 and config["targets"] == quakes.targets
    assert [f["path"] for f in config["recipe"]["samples"][0]["files"]] == \
        [str(parts / "q0.parquet"), str(parts / "q1.parquet")]
    # trained on the same rows as one file of them all
    write_table(quakes, tmp_path / "whole.parquet")
    run(runner, "train", tmp_path / "whole.parquet", "--epochs", 1, "-o", tmp_path / "w", "-q",
        "--no-plots")
    assert (tmp_path / "r" / "metrics.json").read_text() == \
        (tmp_path / "w" / "metrics.json").read_text()


def _cut_after_two_epochs(run, runner, monkeypatch, args, out, input=None):
    """``fcnn train ARGS -o OUT`` stopped by Ctrl-C once its second epoch is printed."""
    from fcnn_cli.commands import runjob

    printed = runjob._EpochPrinter.__call__

    def stop_after_two(printer, row):
        printed(printer, row)
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(runjob._EpochPrinter, "__call__", stop_after_two)
        return run(runner, *args, "-o", out, input=input, code=130)


def test_a_run_of_stdin_stopped_says_it_cannot_be_resumed(run, runner, tmp_path, monkeypatch):
    """Resuming reads the tables again, which stdin cannot give twice: the line says so at
    once rather than how to resume, which would then be refused."""
    data = run(runner, "simulate", "earthquakes", "-n", 200, "-o", "-").stdout
    cut = tmp_path / "cut"
    out = _cut_after_two_epochs(run, runner, monkeypatch, ["train", "-", "--epochs", 3, "-q",
                                                           "--no-plots"], cut, data).output
    assert out == (f"interrupted after epoch 1: saved the best model so far in {cut}; it "
                   "cannot be resumed: it read a table from stdin, which a resumed run cannot "
                   "read again\n")
    assert not (cut / "state.pt").exists()  # no later run is told to resume it
    assert f"{cut}: nothing to resume (no state.pt: the run finished, was never interrupted, " \
        "or read a table from stdin or a pipe" in \
        run(runner, "train", "--resume", cut, code=1).output
    assert f"{cut}: already holds a run; choose another directory" in \
        run(runner, "train", "-", "-o", cut, input=data, code=1).output


def test_a_run_of_a_named_pipe_stopped_keeps_no_state(run, runner, tmp_path, monkeypatch):
    """A named pipe gives its rows once, as stdin does: resuming would wait on it for a
    writer."""
    import os
    import threading

    data = run(runner, "simulate", "earthquakes", "-n", 200, "-o", "-").stdout
    fifo, cut = tmp_path / "pipe.csv", tmp_path / "cut"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(data))
    writer.start()
    out = _cut_after_two_epochs(run, runner, monkeypatch, ["train", fifo, "--epochs", 3, "-q",
                                                           "--no-plots"], cut).output
    writer.join()
    assert out.endswith(f"in {cut}; it cannot be resumed: it read a table from {fifo}, which "
                        "a resumed run cannot read again\n")
    assert not (cut / "state.pt").exists()


def test_a_samples_run_resumes_on_its_recorded_files(run, runner, sample_files, tmp_path,
                                                     monkeypatch):
    args = ["train", "--sample", f"signal={sample_files}/sig_*.csv", "--sample",
            f"background={sample_files}/bkg.csv", "--epochs", 3, "-q", "--no-plots"]
    run(runner, *args, "-o", tmp_path / "whole")
    _cut_after_two_epochs(run, runner, monkeypatch, args, tmp_path / "cut")
    assert (tmp_path / "cut" / "state.pt").exists()
    run(runner, "train", "--resume", tmp_path / "cut", "-q", "--no-plots")
    assert (tmp_path / "cut" / "metrics.json").read_text() == \
        (tmp_path / "whole" / "metrics.json").read_text()


def test_a_run_does_not_resume_on_a_file_changed_since(run, runner, sample_files, tmp_path,
                                                       monkeypatch):
    import shutil

    files = shutil.copytree(sample_files, tmp_path / "files")
    args = ["train", "--sample", f"signal={files}/sig_*.csv", "--sample",
            f"background={files}/bkg.csv", "--epochs", 3, "-q", "--no-plots"]
    _cut_after_two_epochs(run, runner, monkeypatch, args, tmp_path / "cut")
    text = (files / "bkg.csv").read_text()
    (files / "bkg.csv").write_text(text.replace("1", "2", 1))  # as long, other content
    result = run(runner, "train", "--resume", tmp_path / "cut", "-q", "--no-plots", code=1)
    assert f"{files}/bkg.csv: not the file this run started with (its size or content " \
        "differ); cannot resume" in result.output


def test_the_recipe_round_trips_through_print_config_and_config(run, runner, sample_files,
                                                                tmp_path):
    import tomllib

    args = ["--sample", f"s={sample_files}/sig_1.csv", "--sample",
            f"b={sample_files}/bkg.csv*0.5", "--define", "r=x * y", "--define", "`a b`=r + 1",
            "--where", "n >= 1", "--weight", "w * 2", "--objects", "Muon:2",
            "--negative-weights", "abs"]
    first = run(runner, "train", *args, "--print-config").stdout
    (tmp_path / "c.toml").write_text(first)
    assert run(runner, "train", "--config", tmp_path / "c.toml", "--print-config").stdout == first
    document = tomllib.loads(first)
    assert (document["define"], document["where"], document["weight"], document["objects"]) == \
        (["r=x * y", "`a b`=r + 1"], "n >= 1", "w * 2", ["Muon:2"])
    assert document["samples"]["b"] == {"files": [str(sample_files / "bkg.csv")], "scale": 0.5}
    assert document["train"]["negative_weights"] == "abs" and "targets" not in document


def test_samples_stream_through_the_recipe(run, runner, sample_files, tmp_path):
    import torch

    for name in ("sig_1", "sig_2", "bkg"):
        pd.read_csv(sample_files / f"{name}.csv").to_parquet(tmp_path / f"{name}.parquet",
                                                             row_group_size=64)
    run(runner, "train", "--sample", f"signal={tmp_path}/sig_*.parquet*0.5", "--sample",
        f"background={tmp_path}/bkg.parquet", "--define", "r=x * y", "--where", "n >= 1",
        "--weight", "w * 2", "--stream", "--epochs", 2, "--batch-size", 64, "-o",
        tmp_path / "r", "-q", "--no-plots")
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    passing = sum(int((pd.read_csv(sample_files / f"{n}.csv").n >= 1).sum())
                  for n in ("sig_1", "sig_2", "bkg"))
    assert sum(config["sizes"].values()) == passing
    assert config["features"] == ["x", "y", "n", "r"]  # w: the weight reads it
    meta = json.loads(torch.load(tmp_path / "r" / "model.pt", weights_only=True)["meta"])
    assert meta["task"]["classes"] == ["signal", "background"]
    assert "sum_of_weights" in json.loads((tmp_path / "r" / "metrics.json").read_text())["test"]
    out = run(runner, "train", "--sample", f"signal={sample_files}/sig_1.csv", "--sample",
              f"background={tmp_path}/bkg.parquet", "--stream", "-o", tmp_path / "c",
              code=1).output
    assert f"{sample_files}/sig_1.csv: --stream reads Parquet files; convert it" in out


def test_a_selection_that_leaves_too_few_rows_is_named(run, runner, sample_files, tmp_path):
    out = run(runner, "train", "--sample", f"signal={sample_files}/sig_1.csv", "--sample",
              f"background={sample_files}/bkg.csv", "--where", "n > 100", "--epochs", 1,
              "-o", tmp_path / "run", code=1).output
    assert "Error: samples signal, background: too few rows (0) to train on: the selection " \
           "'n > 100' removed every row" in out


@pytest.mark.parametrize("weight", [[], ["--weight", "w"]])
def test_negative_weights_without_weights_warn_that_they_change_nothing(run, runner, sample_files,
                                                                        tmp_path, weight):
    result = run(runner, "train", "--sample", f"signal={sample_files}/sig_1.csv", "--sample",
                 f"background={sample_files}/bkg.csv", *weight, "--negative-weights", "zero",
                 "--epochs", 1, "-o", tmp_path / "run", "-q", "--no-plots")
    said = "warning: --negative-weights zero changes nothing: the events have no weights"
    assert (said in result.stderr) == (not weight)


def _gaussians(path, n, seed):
    rng = np.random.default_rng(seed)
    kind = np.where(rng.random(n) < 0.4, "signal", "background")
    x = rng.normal(size=(n, 2)) + (kind == "signal")[:, None]
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "kind": kind}).to_csv(path, index=False)
    return path


def test_a_working_point_from_train_to_info_and_predict(run, runner, tmp_path):
    train, val = _gaussians(tmp_path / "t.csv", 1200, 1), _gaussians(tmp_path / "v.csv", 400, 2)
    out = run(runner, "train", train, "--val", val, "-t", "kind", "--epochs", 3,
              "--working-point", "eff=0.7", "-o", tmp_path / "run", "--no-plots").output
    assert "working point: signal where p(signal) ≥" in out
    assert "(chosen at signal efficiency 0.7); on the validation split ε_S" in out
    about = json.loads(run(runner, "info", tmp_path / "run/model.pt", "--json").output)
    point = about["labels"]["working_point"]
    assert about["labels"]["signal"] == "signal"
    assert point["asked"] == {"signal_efficiency": 0.7}
    shown = run(runner, "info", tmp_path / "run/model.pt").output
    assert f"signal where p(signal) ≥ {point['cut']:.6g} (chosen at signal efficiency 0.7)" \
        in " ".join(shown.split())
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert metrics["val"]["merit"]["working_point"]["cut"] == point["cut"]
    run(runner, "predict", tmp_path / "run/model.pt", val, "-o", tmp_path / "p.parquet")
    predicted = pd.read_parquet(tmp_path / "p.parquet")
    passed = predicted.p_signal >= point["cut"]
    assert (predicted.kind_pred == np.where(passed, "signal", "background")).all()
    is_signal = pd.read_csv(val).kind == "signal"
    assert passed[is_signal].mean() >= 0.7
    assert passed[is_signal].mean() < 0.7 + 2 / is_signal.sum()  # the tightest such cut


def test_signal_that_is_no_class_is_refused_before_the_first_epoch(run, runner, tmp_path):
    data = _gaussians(tmp_path / "t.csv", 300, 1)
    out = run(runner, "train", data, "-t", "kind", "--signal", "muon", "-o", tmp_path / "run",
              code=1).output
    assert "signal 'muon' is not a class" in out and "epoch" not in out


def test_resume_keeps_the_signal_class_and_the_working_point(run, runner, tmp_path):
    from fcnn_cli.data.tables import read_table
    from fcnn_cli.engine import train
    from fcnn_cli.results import runs

    data = _gaussians(tmp_path / "t.csv", 800, 1)

    def stop(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    result = train.fit(read_table(data), train.TrainConfig(
        epochs=3, val_frac=0.3, working_point="bkg=0.1", signal="signal"), targets=["kind"],
        on_epoch=stop)
    assert result.interrupted
    cut = runs.save_run(result, tmp_path / "cut", str(data))
    run(runner, "train", "--resume", cut, "-q")
    labels = json.loads(run(runner, "info", cut / "model.pt", "--json").output)["labels"]
    assert labels["signal"] == "signal"
    assert labels["working_point"]["asked"] == {"background_efficiency": 0.1}
    metrics = json.loads((cut / "metrics.json").read_text())
    assert metrics["val"]["merit"]["working_point"]["background_efficiency"] <= 0.1


def test_a_fault_in_the_final_reports_never_loses_the_network(run, runner, tmp_path,
                                                              monkeypatch):
    from fcnn_cli.network import merit

    def broken(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(merit, "report", broken)
    rng = np.random.default_rng(2)
    data = tmp_path / "two.csv"
    pd.DataFrame({"x": rng.normal(size=200), "label": np.repeat(["background", "signal"], 100)}
                 ).to_csv(data, index=False)
    result = run(runner, "train", data, "-t", "label", "--epochs", 1, "--no-plots",
                 "-o", tmp_path / "run")
    assert (tmp_path / "run" / "model.pt").is_file()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == {}
    assert "the final reports failed (ZeroDivisionError: float division by zero): the network " \
           "is saved without its metrics" in result.stderr
    assert "saved run to" in result.output


@pytest.mark.parametrize("variable, key, flag, drawn", [
    (None, None, None, True),
    ("0", None, None, False),
    ("off", "plots = true", None, True),  # the file over the environment
    ("1", "plots = false", None, False),
    (None, "plots = false", "--plots", True),  # the command line over both
    ("1", None, "--no-plots", False),
])
def test_plots_default_from_the_file_and_the_environment(run, runner, quakes_csv, tmp_path,
                                                         monkeypatch, variable, key, flag,
                                                         drawn):
    """Plots are drawn after the run is saved and its tables printed; a configuration file's
    ``plots`` and FCNN_PLOTS set whether, beneath --plots/--no-plots."""
    from fcnn_cli.results import plots

    def noted(run_dir):  # in place of drawing: what the run had saved and said by then
        saved = all((run_dir / name).is_file() for name in
                    ("model.pt", "metrics.json", "history.csv", "config.json"))
        print(f"plots drawn, the run saved: {saved}")
        return []

    monkeypatch.setattr(plots, "plot_run", noted)
    if variable is None:
        monkeypatch.delenv("FCNN_PLOTS", raising=False)
    else:
        monkeypatch.setenv("FCNN_PLOTS", variable)
    args = []
    if key is not None:
        (tmp_path / "run.toml").write_text(f"{key}\n[train]\nepochs = 1\n")
        args = ["--config", tmp_path / "run.toml"]
    out = run(runner, "train", quakes_csv, "--epochs", 1, "-o", tmp_path / "r", *args,
              *([flag] if flag else [])).output
    if not drawn:
        assert "plots drawn" not in out
        return
    assert out.index("saved run to") < out.index("plots drawn, the run saved: True")


def test_a_bad_plots_variable_names_it(run, runner, quakes_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("FCNN_PLOTS", "maybe")
    out = run(runner, "train", quakes_csv, "-o", tmp_path / "r", code=2).output
    assert "Error: the environment variable FCNN_PLOTS='maybe': give 0 or 1" in out


def test_a_signal_while_the_plots_are_drawn_stops_them_and_keeps_the_run(run, runner,
                                                                         quakes_csv, tmp_path,
                                                                         monkeypatch):
    """The run is saved before the plots: Ctrl-C then stops them at once (not after every
    figure) and the command exits with the signal's code."""
    import os
    import signal

    from fcnn_cli.results import plots

    drawn = []

    def interrupted(run_dir):  # the first figure, a signal, then the rest
        drawn.append("first")
        os.kill(os.getpid(), signal.SIGINT)
        drawn.append("the rest")
        return []

    monkeypatch.setattr(plots, "plot_run", interrupted)
    out = run(runner, "train", quakes_csv, "--epochs", 1, "-o", tmp_path / "r", "--plots",
              code=130).output
    assert drawn == ["first"]
    assert "interrupted while drawing the plots: the run is saved; draw them with: fcnn plot" \
        in out
    assert (tmp_path / "r" / "model.pt").is_file() and "saved run to" in out


def test_a_signal_during_the_closing_report_is_said_and_no_plot_is_begun(run, runner,
                                                                          quakes_csv, tmp_path,
                                                                          monkeypatch):
    """A signal that comes while the run's tables are printed (after the save, before the
    plots) is only noted there: the plots are then not begun, and the command says why."""
    import os
    import signal

    from fcnn_cli.commands import runjob
    from fcnn_cli.results import plots

    report = runjob._report_run

    def signalled(*args):
        report(*args)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(runjob, "_report_run", signalled)
    monkeypatch.setattr(plots, "plot_run", lambda run_dir: pytest.fail("plots begun"))
    out = run(runner, "train", quakes_csv, "--epochs", 1, "-o", tmp_path / "r", "--plots",
              code=143).output
    assert "interrupted while drawing the plots: the run is saved; draw them with: fcnn plot" \
        in out
    assert (tmp_path / "r" / "model.pt").is_file()


def test_the_closing_line_says_the_members_a_small_table_chose(run, runner, tmp_path,
                                                               quakes_csv):
    small = tmp_path / "small.csv"
    small.write_text("".join(quakes_csv.read_text().splitlines(keepends=True)[:61]))
    out = run(runner, "train", small, "--batch-size", 64, "-o", tmp_path / "r")
    assert "saved run to" in out.stderr
    assert "(5 members, 53 training, 3 validation, 3 test rows; best epoch" in \
        " ".join(out.stderr.split())
    out = run(runner, "train", small, "--epochs", 2, "-o", tmp_path / "one")
    assert "(53 training, 3 validation, 3 test rows; best epoch" in " ".join(out.stderr.split())
