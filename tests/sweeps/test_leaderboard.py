"""The leaderboard: mean and standard deviation over seeds, best first, rows told apart by the
options in which they differ, written and printed, and other files in the directory
skipped."""

import json
import os
import statistics

import pytest

from sweeping import FIXED, never
from fcnn_cli.commands import cli
from fcnn_cli.sweeps import leaderboard, records, run
from fcnn_cli.sweeps.grid import Sweep


def test_leaderboard_is_mean_and_std_over_seeds_and_a_rerun_skips(quakes, tmp_path,
                                                                   monkeypatch):
    """cosine trains its seeds as one ensemble, plateau with batch norm (the autograd step,
    which takes no member's own plateau) one run after another, each in a run directory of its
    own."""
    spec = Sweep({"data": quakes}, {**FIXED, "arch": "batchnorm"},
                 {"schedule": ["cosine", "plateau"]}, seeds=2)
    rows = run.run(spec, tmp_path)
    assert {r["schedule"]: r["mode"] for r in rows} == {"cosine": "ensemble",
                                                        "plateau": "sequential"}
    by_schedule = {r["schedule"]: r for r in rows}
    runs = [json.loads((tmp_path / spec.key({"schedule": "plateau"}) / f"seed-{s}" /
                        "metrics.json").read_text()) for s in (0, 1)]
    for split in ("val", "test"):
        for name, values in (("mean_distance", [m[split]["distance"]["mean"] for m in runs]),
                             ("rmse", [m[split]["overall"]["rmse"] for m in runs])):
            row = by_schedule["plateau"]
            assert row[f"{split}_{name}_mean"] == pytest.approx(statistics.fmean(values))
            assert row[f"{split}_{name}_std"] == pytest.approx(statistics.stdev(values))
    assert rows[0]["metric"] == "mean_distance"  # lower is better: the best first
    assert rows[0]["val_mean_distance_mean"] <= rows[1]["val_mean_distance_mean"]
    assert (tmp_path / spec.key({"schedule": "cosine"}) / "model.pt").exists()
    leaderboard.write_leaderboard(rows, tmp_path)
    assert json.loads((tmp_path / "leaderboard.json").read_text()) == \
        json.loads(json.dumps(rows))
    assert (tmp_path / "leaderboard.csv").read_text().count("\n") == 3

    monkeypatch.setattr(run, "train_combination", never)
    assert run.run(spec, tmp_path) == rows


def test_command_line_writes_and_prints_the_leaderboard(runner, quakes, tmp_path):
    out = tmp_path / "sw"
    result = runner.invoke(cli, ["sweep", quakes, "--grid", "depth=1,2", "--epochs", "1",
                                 "--width", "8", "--threads", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Leaderboard (2 combinations" in result.output
    assert len(json.loads((out / "leaderboard.json").read_text())) == 2


def test_leaderboard_tells_apart_rows_of_other_fixed_options(runner, quakes, tmp_path):
    out = tmp_path / "sw"
    args = ["sweep", quakes, "--grid", "depth=1", "--epochs", "1", "--width", "8",
            "--threads", "1", "--no-plots", "-o", str(out)]
    assert runner.invoke(cli, [*args, "--optimizer", "sgd"]).exit_code == 0
    result = runner.invoke(cli, [*args, "--threads", "2"])  # threads do not tell rows apart
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "leaderboard.json").read_text())
    assert sorted(r["optimizer"] for r in rows) == ["adam", "sgd"]
    assert all("threads" not in r for r in rows)
    assert (out / "leaderboard.csv").read_text().splitlines()[0].startswith(
        "run,depth,optimizer,")
    header = next(line for line in result.output.splitlines() if "optimizer" in line)
    assert "depth" in header and "sgd" in result.output


def test_the_leaderboard_skips_special_and_huge_files(tmp_path):
    """Other sweeps' files in the directory: a FIFO is not opened, a (sparse) file larger
    than a result can be is not read; each is skipped with a warning."""
    import subprocess
    import sys

    for name in ("fifo", "huge", "failed"):
        (tmp_path / name).mkdir()
    os.mkfifo(tmp_path / "fifo" / records.RESULT_FILE)
    os.mkfifo(tmp_path / "failed" / records.FAILED_FILE)
    with open(tmp_path / "huge" / records.RESULT_FILE, "wb") as f:
        f.truncate(records.MAX_SAVED_BYTES + 1)
    code = ("from fcnn_cli.sweeps import leaderboard; "
            f"print(leaderboard.leaderboard({str(tmp_path)!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout == "[]\n", done.stderr
    assert sorted(done.stderr.splitlines()) == sorted([
        f"{tmp_path / 'failed' / 'failed.json'}: skipped, not a sweep's failure: failed.json: "
        "not a regular file (a FIFO)",
        f"{tmp_path / 'fifo' / 'seeds.json'}: skipped, not a sweep's result: seeds.json: not "
        "a regular file (a FIFO)",
        f"{tmp_path / 'huge' / 'seeds.json'}: skipped, not a sweep's result: seeds.json: "
        "larger than 256 MiB"])


def test_the_printed_leaderboard_escapes_what_its_files_say():
    """A run directory's name, a value and an error read from files reach the terminal
    escaped: they can neither retitle nor recolour it."""
    import io

    from rich.console import Console

    rows = [{"run": "sw/evil\x1b]0;pwned\x07-\x1b[31mRED", "depth": "\x1b[5mBLINK",
             "seeds": 1, "mode": "failed", "seconds": 1.0, "error": "bad\x1b[2J\u202e"}]
    console = Console(file=io.StringIO(), width=200)
    console.print(leaderboard.leaderboard_table(rows, ["depth"]))
    shown = console.file.getvalue()
    assert "\x1b" not in shown and "\u202e" not in shown
    assert "\\x1b[31mRED" in shown and "\\x1b[5mBLINK" in shown and "bad\\x1b[2J\\u202e" in shown


def test_a_failure_under_the_printed_leaderboard_names_flags(runner, quakes, tmp_path,
                                                             monkeypatch):
    """As train says it: lower --width, not width (failed.json keeps the names it says)."""
    from fcnn_cli.machine import devices

    monkeypatch.setattr(devices, "memory_available", lambda device: 1024)
    out = tmp_path / "sw"
    result = runner.invoke(cli, ["sweep", quakes, "--grid", "depth=1", "--epochs", "1",
                                 "--threads", "1", "--no-plots", "-o", str(out)])
    assert result.exit_code == 3, result.output
    caption = " ".join(result.output[result.output.index("#1 ("):].split())
    assert "lower --width, --depth or --batch-size" in caption, caption
    (failed,) = out.glob(f"*/{records.FAILED_FILE}")
    assert json.loads(failed.read_text())["error_options"] == ["width", "depth", "batch_size"]
