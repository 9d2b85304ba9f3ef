"""The options and messages the commands share (options.py).

Issue #11: the library's messages spell options the Python way and name them; the command
line shows its flags in their place.
"""

import inspect
import logging
import math
from dataclasses import fields

import click
import numpy as np
import pandas as pd
import pytest

from fcnn_cli.commands import cli
from fcnn_cli.commands.options import _MessageFormatter, with_flags
from fcnn_cli.commands.simulate import QUAKE_FLAGS
from fcnn_cli.core.config import MADE_BY_DATA, NetConfig, TrainConfig
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import simulate
from fcnn_cli.data.tables import read_table
from fcnn_cli.engine import train
from fcnn_cli.engine.diagnostics import warnings
from fcnn_cli.results import runs


def command_of(*names):
    """The command of ``fcnn NAMES…``, found as fcnn finds it."""
    found, context = cli, click.Context(cli)
    for name in names:
        found = found.get_command(context, name)
    return found


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("value", ["2", "-0.5", "nan", "inf"])
def test_threshold_is_checked_before_the_model_loads(run, runner, tmp_path, command, value):
    out = run(runner, command, tmp_path / "missing.pt", tmp_path / "missing.csv",
              "--threshold", value, code=2).output
    assert f"Error: --threshold must be in [0, 1], not {float(value)}" in out


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
def test_library_messages_name_python_options_and_the_cli_its_flags(run, runner, tmp_path, name):
    call, said, options, args, code, shown = SAID_BOTH_WAYS[name]
    with pytest.raises(FcnnError) as error:
        call(tmp_path)
    assert said in str(error.value) and "--" not in str(error.value)
    assert error.value.options == options
    out = run(runner, *args(tmp_path), code=code).output
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and shown in errors[0], out


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


@pytest.mark.parametrize("text, options", [
    ("s.csv: weight column 'w' holds nan at row 6", ("nan", "weight")),
    ("expression 'x1 > 0 and', character 11: the expression ends where a number should follow",
     ("where",)),
    ("definition 'm = where(x1 > 0, depth, 1)': no column 'depth'", ("define", "depth")),
])
def test_with_flags_leaves_ordinary_words_and_quoted_texts_alone(text, options):
    assert with_flags(text, options) == text


def test_with_flags_rewrites_a_word_option_given_a_value():
    assert with_flags("where='x > 0' keeps no row; nan='fill' fills", ("where", "nan")) \
        == "--where x > 0 keeps no row; --nan fill fills"


def test_every_option_a_message_may_name_is_a_flag_of_its_command():
    def flags(command):
        return {o for p in command.params for o in p.opts + p.secondary_opts}

    net_and_training = [f.name for f in fields(NetConfig) + fields(TrainConfig)
                        if f.name not in MADE_BY_DATA]
    quakes = [p for p in inspect.signature(simulate.earthquake_tables).parameters if p != "rows"]
    galaxies = [p for p in inspect.signature(simulate.galaxy_tables).parameters if p != "rows"]
    named = [(command_of("train"), net_and_training + ["targets", "features", "force"], {}),
             (command_of("simulate", "earthquakes"), quakes, QUAKE_FLAGS),
             (command_of("simulate", "galaxies"), galaxies, {}),
             (command_of("evaluate"), ["threshold", "nan", "device", "by", "bins", "edges",
                                         "position"], {}),
             (command_of("predict"), ["threshold", "nan", "device"], {})]
    for command, names, spelling in named:
        for name in names:
            spelt = with_flags(f"{name}=1", [name], spelling).split()[0]
            assert spelt in flags(command), (command.name, name)


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
    record = logging.LogRecord("fcnn_cli.engine.train", logging.WARNING, __file__, 1, "%s",
                               (warning,), None)
    line = _MessageFormatter().format(record)
    assert line.startswith("warning: ") and line.endswith(shown)
    assert line == "warning: " + with_flags(warning, warning.options)


@pytest.mark.parametrize("command", ["info {model}", "evaluate {model} {data}"])
def test_a_reader_that_leaves_early_is_no_failure(run_dir, quakes_csv, command):
    import os
    import subprocess
    import sys

    args = command.format(model=run_dir / "model.pt", data=quakes_csv).split()
    read, write = os.pipe()
    os.close(read)  # the reader has left before the first line: every write fails
    try:
        done = subprocess.run([sys.executable, "-m", "fcnn_cli", *args], stdout=write,
                              stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
