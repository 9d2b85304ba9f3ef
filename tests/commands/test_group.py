"""The fcnn group (fcnn_cli/commands/__init__.py): its table of commands, each module loaded
only when asked for; help, version, shell completion, NO_COLOR; and a whole session."""

import io
import json
import re

import click
import pandas as pd
import pytest

from fcnn_cli.commands import COMMANDS, cli


def test_version_and_help(run, runner):
    assert "fcnn, version" in run(runner, "--version").output
    for command in (["train"], ["evaluate"], ["predict"], ["simulate", "earthquakes"]):
        out = run(runner, *command, "--help").output
        assert "Example" in out and "[default:" in out


def test_round_trip_simulate_train_evaluate_predict(run, runner, tmp_path):
    data, new = tmp_path / "quakes.parquet", tmp_path / "new.csv"
    run(runner, "simulate", "earthquakes", "-n", 400, "--seed", 1, "-o", data)
    run(runner, "simulate", "earthquakes", "-n", 30, "--seed", 2, "-o", new)
    run_dir = tmp_path / "run"
    out = run(runner, "train", data, "--epochs", 3, "-o", run_dir).output
    assert "epoch    3/3" in out and "saved run" in out
    assert {p.name for p in run_dir.iterdir()} == {"model.pt", "metrics.json", "history.csv",
                                                   "config.json", "config.toml",
                                                   "predictions.parquet",
                                                   "correlations.json", "plots", ".lock"}
    assert (run_dir / "plots" / "learning_curves.png").is_file()
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history.epoch) == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_rmse", "lr", "seconds"} <= set(history.columns)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["targets"] == ["x", "y"] and config["sizes"] == {"train": 360, "val": 20,
                                                                   "test": 20}
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert set(saved) == {"train", "val", "test", "overtraining"}

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


LOADED = """
import sys
from click.testing import CliRunner
from fcnn_cli.commands import cli
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


@pytest.mark.parametrize("args", [
    ["train", "{data}", "--weight-decay", "inf"], ["train", "{data}", "-t", "x", "-t", "x"],
    ["train", "--resume", "{data}", "--lr", "1"],
    ["predict", "{model}", "{data}", "--threshold", "nan"],
    ["predict", "{model}", "{data}", "--keep", "x,x"]])
def test_issue_10_refusals_load_no_heavy_library(quakes_csv, model_path, args, tmp_path):
    test_help_and_argument_errors_load_no_heavy_library(quakes_csv, model_path, args, 2,
                                                        tmp_path)


COMPLETE = """
import atexit, sys
atexit.register(lambda: print("heavy:", *[m for m in ("torch", "pandas", "numpy")
                                         if m in sys.modules]))
from fcnn_cli.commands import main
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
    from fcnn_cli.core.console import rich_console

    monkeypatch.setenv("FORCE_COLOR", "1")  # as on a terminal
    monkeypatch.delenv("NO_COLOR", raising=False)
    console = rich_console()
    with console.capture() as coloured:
        console.print("[red]x[/]")
    assert SGR_COLOR.search(coloured.get())
    monkeypatch.setenv("NO_COLOR", "1")
    console = rich_console()
    with console.capture() as plain:
        console.print("[red]x[/]")
    assert "x" in plain.get() and not SGR_COLOR.search(plain.get())
    for args in (["evaluate", model_path, quakes_csv], ["train", "--depth", "0", "x.csv"]):
        result = runner.invoke(cli, [str(a) for a in args], color=True)
        assert not SGR_COLOR.search(result.stdout + result.stderr)


def test_version_is_the_package_version(run, runner):
    from fcnn_cli import __version__

    for flag in ("--version", "-V"):
        assert run(runner, flag).output == f"fcnn, version {__version__}\n"


# The table of commands: each module is imported only when its command is asked for.

# Arguments: the modules to watch, "--", those of fcnn.
IMPORTED = """
import atexit, sys
split = sys.argv.index("--")
watched, sys.argv = sys.argv[1:split], ["fcnn", *sys.argv[split + 1:]]
atexit.register(lambda: print("imported:", *sorted(m for m in sys.modules if m in watched),
                              file=sys.stderr))
from fcnn_cli.commands import main
main()
"""
COMMAND_MODULES = [f"fcnn_cli.commands.{entry.module}" for entry in COMMANDS.values()]


@pytest.mark.parametrize("args, imported", [
    (["--help"], []), (["--version"], []), (["trian"], []),
    (["info", "--help"], ["fcnn_cli.commands.info"]),
    (["info", "missing.pt"], ["fcnn_cli.commands.info"]),
    (["train", "--help"], ["fcnn_cli.commands.train"]),
    (["simulate", "galaxies", "--help"], ["fcnn_cli.commands.simulate"])])
def test_a_command_imports_its_module_alone_and_help_imports_none(args, imported, tmp_path):
    import os
    import subprocess
    import sys

    watched = [*COMMAND_MODULES, "torch", "pandas", "numpy"]
    done = subprocess.run([sys.executable, "-c", IMPORTED, *watched, "--", *args],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.stderr.splitlines()[-1].split() == ["imported:", *imported], done.stderr


def test_every_command_of_the_table_is_in_its_module_under_its_name():
    import importlib

    for name, entry in COMMANDS.items():
        command = getattr(importlib.import_module(f"fcnn_cli.commands.{entry.module}"), name)
        assert isinstance(command, click.Command) and command.name == name
        assert cli.get_command(click.Context(cli), name) is command


def test_help_lists_every_command_in_the_tables_order_with_its_whole_summary(run, runner):
    out = run(runner, "--help").output
    listed = out[out.index("Commands:"):].splitlines()[1:]
    assert [line.split()[0] for line in listed] == list(COMMANDS)
    for line, entry in zip(listed, COMMANDS.values(), strict=True):
        assert line.endswith(f"  {entry.summary}") and len(line) <= 80  # one line, not cut


@pytest.mark.skipif(not hasattr(click.exceptions, "NoSuchCommand"),
                    reason="click before 8.4 names no close command")
def test_a_misspelt_command_is_told_its_close_name(run, runner):
    assert "No such command 'evalute'. Did you mean 'evaluate'?" in \
        run(runner, "evalute", code=2).output


# Arguments: those of fcnn. An object freed in the interpreter's teardown says so.
TORN_DOWN = """
import atexit, sys
class Freed:
    def __del__(self):
        print("torn down", file=sys.stderr)
kept = Freed()
atexit.register(lambda: print("exit handlers ran", file=sys.stderr))
sys.argv = ["fcnn", *sys.argv[1:]]
from fcnn_cli.commands import main
main()
"""


@pytest.mark.parametrize("args, code, line", [
    (["info", "missing.pt"], 1, "Error: missing.pt: no such file"),
    (["predict", "{model}", "{data}"], 0, None), (["--version"], 0, None)])
def test_a_command_ends_without_the_interpreters_teardown(args, code, line, quakes_csv,
                                                          model_path, tmp_path):
    """After the command the exit handlers and the output's flush run, the interpreter's slow
    teardown of every object does not (bench/startup.py measures it)."""
    import os
    import subprocess
    import sys

    args = [a.format(data=quakes_csv, model=model_path) for a in args]
    done = subprocess.run([sys.executable, "-c", TORN_DOWN, *args], capture_output=True,
                          text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == code, done.stderr
    assert "exit handlers ran" in done.stderr and "torn down" not in done.stderr
    assert line is None or line in done.stderr
    if args[0] == "predict":  # every row written through the pipe before the process ended
        assert len(done.stdout.splitlines()) == 1 + 600  # the header and the table's rows
