"""The commands that show a run or a model: plot, report, info, evaluate --by and --plots,
train --no-plots and --position."""

import json

import pytest

from fcnn_cli.commands.cli import cli
from fcnn_cli.data.tables import read_table, write_table


def run(runner, *args, code=0):
    result = runner.invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output + str(result.exception)
    if code:
        assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, quakes_csv):
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("runs") / "run"
    run(CliRunner(), "train", quakes_csv, "--epochs", 2, "-o", out, "-q", "--no-plots")
    return out


def test_no_plots_draws_none_and_plot_draws_them(runner, run_dir, tmp_path):
    assert not (run_dir / "plots").exists()
    out = run(runner, "plot", run_dir, "-o", tmp_path / "p").output.split()
    assert sorted(p.rsplit("/", 1)[1] for p in out) == [
        "distance_cdf.png", "distance_map.png", "learning_curves.png", "position_map.png",
        "regression_x.png", "regression_y.png"]


def test_plot_of_a_directory_that_is_no_run_is_one_line(runner, tmp_path):
    assert "not a run directory" in run(runner, "plot", tmp_path, code=1).output


def test_info_as_a_table_and_as_json(runner, run_dir):
    table = run(runner, "info", run_dir / "model.pt").output
    for word in ("regression", "8 → 64 → 64 → 64 → 2", "9,026", "tp1", "position", "x, y"):
        assert word in table
    about = json.loads(run(runner, "info", run_dir / "model.pt", "--json").output)
    assert about["network"]["parameters"] == 9026 and about["labels"]["position"] == ["x", "y"]


def test_info_of_no_checkpoint_is_one_line(runner, tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_text("hello")
    assert "not an fcnn checkpoint" in run(runner, "info", bad, code=1).output


@pytest.mark.slow
def test_report_writes_one_page_into_the_run_or_where_told(runner, run_dir, tmp_path):
    run(runner, "report", run_dir, "-o", tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    assert text.startswith("<!DOCTYPE html>") and text.count("data:image/png;base64,") == 6


def test_evaluate_by_a_column_prints_bins_and_puts_them_in_json(runner, run_dir, quakes_csv,
                                                               tmp_path):
    model = run_dir / "model.pt"
    out = run(runner, "evaluate", model, quakes_csv, "--by", "tp1", "--bins", 3).output
    assert "x in bins of tp1 (s)" in out and "Distance in bins of tp1" in out
    report = json.loads(run(runner, "evaluate", model, quakes_csv, "--by", "x", "--by", "y",
                            "--edges=-50,0,50", "--edges=-50,50", "--json").stdout)
    binned = report["binned"]
    assert [a["edges"] for a in binned["by"]] == [[-50, 0, 50], [-50, 50]]
    assert sum(b["count"] for b in binned["bins"]) == report["rows"] == 600


@pytest.mark.parametrize("args, message", [
    (["--bins", "3"], "need --by"), (["--by", "x", "--bins", "3", "--edges", "0,1"],
                                      "--bins or --edges, not both"),
    (["--by", "x", "--edges", "0,a"], "numbers separated by commas"),
    (["--by", "x", "--position", "x"], "2 or 3 labels of a point")])
def test_bad_bins_are_usage_errors(runner, run_dir, quakes_csv, args, message):
    out = run(runner, "evaluate", run_dir / "model.pt", quakes_csv, *args, code=2).output
    assert message in " ".join(out.split())


def test_evaluate_position_replaces_the_models(runner, run_dir, quakes, tmp_path):
    frame = quakes.frame.assign(z=0.0)
    from fcnn_cli.data.tables import Table

    data = tmp_path / "q.parquet"
    write_table(Table(frame, ["x", "y"], quakes.units), data)
    report = json.loads(run(runner, "evaluate", run_dir / "model.pt", data, "--position",
                            "y,x", "--json").stdout)
    assert report["distance"]["of"] == ["y", "x"]


@pytest.mark.slow
def test_evaluate_plots_and_train_position_from_the_command_line(runner, quakes, tmp_path):
    from fcnn_cli.data.tables import Table

    frame = quakes.frame.rename(columns={"x": "east", "y": "north"})
    data = tmp_path / "named.csv"
    write_table(Table(frame, ["east", "north"], {"east": "km", "north": "km"},
                      extra=quakes.extra | {"stations": {**quakes.extra["stations"],
                                                          "columns": ["east", "north"]}}), data)
    out = tmp_path / "run"
    run(runner, "train", data, "--epochs", 2, "--position", "east,north", "-o", out, "-q")
    assert json.loads((out / "config.json").read_text())["train"]["position"] == ["east", "north"]
    assert "distance" in json.loads((out / "metrics.json").read_text())["test"]
    assert (out / "plots" / "position_map.png").is_file()
    report = json.loads(run(runner, "evaluate", out / "model.pt", data, "--by", "east",
                            "--plots", tmp_path / "p", "--json").stdout)
    assert "distance" in report and len(report["plots"]) == 6
    assert (tmp_path / "p" / "binned_east.png").is_file()
    assert read_table(out / "predictions.parquet").extra["stations"]["columns"] == \
        ["east", "north"]


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


def test_plots_go_into_a_directory_not_stdout_or_a_file(runner, run_dir, quakes_csv, tmp_path,
                                                       monkeypatch):
    here = tmp_path / "q.csv"
    here.write_text("a\n1\n")
    assert "--output" in run(runner, "plot", run_dir, "-o", here, code=1).output
    assert "exists and is not a directory" in run(runner, "plot", run_dir, "-o", here,
                                                  code=1).output
    monkeypatch.chdir(tmp_path)
    out = run(runner, "evaluate", run_dir / "model.pt", quakes_csv, "--plots", "-",
              code=1).output
    assert "--plots: the PNG files go into a directory" in out and not (tmp_path / "-").exists()
    assert here.read_text() == "a\n1\n"
