"""The plan of a shard: shards, each combination's status (finished, failed, new, busy), the
dry run's table, and what is refused before anything is written: bad directories, missing or
changed data, outputs that are inputs or special files."""

import json
import os

import pytest

from sweeping import FIXED, never
from fcnn_cli.commands import cli
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import simulate
from fcnn_cli.data.writer import write_table
from fcnn_cli.sweeps import plan, records, run
from fcnn_cli.sweeps.grid import Sweep, combinations


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "", " 1/2", "1/2 ", "1 / 2",
                                  "\u0661/\u0662", "1/" + "9" * 5000])
def test_bad_shards_are_refused(text):
    with pytest.raises(FcnnError, match="shard must be I/N"):
        plan.parse_shard(text)


def test_an_empty_shard_option_is_refused(runner, quakes, tmp_path):
    result = runner.invoke(cli, ["sweep", quakes, "--grid", "depth=1", "--epochs", "1",
                                 "--shard", "", "-o", str(tmp_path / "sw")])
    assert result.exit_code == 2, result.output
    assert "--shard must be I/N with 1 ≤ I ≤ N (such as 2/8), not ''" in result.output
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("count", [1, 2, 3, 5, 7, 11])
def test_shards_cover_the_grid_exactly_once(count):
    combos = combinations({"depth": [1, 2, 3], "arch": ["plain", "resnet", "selu"]})
    shares = [plan.shard(combos, i, count) for i in range(1, count + 1)]
    taken = [json.dumps(c, sort_keys=True) for share in shares for c in share]
    assert sorted(taken) == sorted(json.dumps(c, sort_keys=True) for c in combos)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_shards_into_one_directory_fill_the_leaderboard(quakes, tmp_path):
    spec = Sweep({"data": quakes}, FIXED, {"depth": [1, 2, 3]})
    first = run.run(spec, tmp_path, (1, 2))
    assert sorted(r["depth"] for r in first) == [1, 3]
    assert sorted(r["depth"] for r in run.run(spec, tmp_path, (2, 2))) == [1, 2, 3]


def test_an_empty_shard_says_so(quakes, tmp_path, caplog):
    spec = Sweep({"data": quakes}, FIXED, {"lr": [1e-3, 1e-2]})
    with caplog.at_level("WARNING"):
        assert plan.plan(spec, tmp_path, (5, 8)) == []
        run.run(spec, tmp_path, (5, 8))
    assert "shard 5/8 of a grid of 2 combinations holds none" in caplog.text


def test_no_plots_draws_nothing_and_dry_run_trains_nothing(runner, quakes, tmp_path,
                                                           monkeypatch):
    out = tmp_path / "sw"
    args = ["sweep", quakes, "--grid", "depth=1,2", "--epochs", "1", "--width", "8",
            "--threads", "1", "-o", str(out)]
    monkeypatch.setattr(run, "train_combination", never)
    listed = runner.invoke(cli, [*args, "--dry-run", "--shard", "2/2"])
    assert listed.exit_code == 0, listed.output
    assert "shard 2/2: 1 combinations, 1 to train" in " ".join(listed.output.split())
    assert "to train" in listed.output and not out.exists()
    monkeypatch.undo()
    result = runner.invoke(cli, [*args, "--no-plots"])
    assert result.exit_code == 0, result.output
    assert list(out.glob("**/*.png")) == []


def test_the_plan_in_a_log_shows_every_value_and_run_whole(runner, quakes, tmp_path,
                                                           monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    result = runner.invoke(cli, ["sweep", quakes, "--grid", "lr=0.001,0.01", "--grid",
                                 "arch=plain,resnet", "--grid", "weight-decay=0.0001",
                                 "--grid", "dropout=0.1", "--grid", "width=16", "--dry-run",
                                 "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and "│ 0.001 │" in result.output
    spec = Sweep({"data": quakes}, {}, {"lr": [0.001], "arch": ["plain"],
                                               "weight_decay": [0.0001], "dropout": [0.1],
                                               "width": [16]})
    assert spec.key(next(iter(combinations(spec.grid)))) in result.output


def test_command_line_says_what_another_process_trains(runner, quakes, tmp_path,
                                                       held_elsewhere):
    out = tmp_path / "sw"
    args = ["sweep", quakes, "--grid", "depth=1,2", "--epochs", "1", "--width", "8",
            "--batch-size", "32", "--no-plots", "-o", str(out)]
    spec = Sweep({"data": quakes}, {"epochs": 1, "width": 8}, {"depth": [1, 2]})
    held_elsewhere(out / spec.key({"depth": 1}))
    listed = runner.invoke(cli, [*args, "--dry-run"])
    assert "training in another process" in listed.output
    assert "2 combinations, 1 to train" in " ".join(listed.output.split())
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1 of 2 combinations were training in another process" in result.output


def test_a_finished_combination_without_its_model_trains_again(quakes, tmp_path):
    spec = Sweep({"data": quakes}, FIXED, {"lr": [1e-3]})
    run.run(spec, tmp_path)
    (tmp_path / spec.key({"lr": 1e-3}) / "model.pt").unlink()
    assert [s for *_, s in plan.plan(spec, tmp_path)] == [plan.NEW]
    run.run(spec, tmp_path)
    assert (tmp_path / spec.key({"lr": 1e-3}) / "model.pt").is_file()


def test_a_rerun_on_changed_data_is_refused(own_quakes, tmp_path, monkeypatch, runner):
    out = tmp_path / "sw"
    spec = Sweep({"data": str(own_quakes)}, FIXED, {"depth": [1]})
    run.run(spec, out)
    saved = json.loads(next(out.glob(f"*/{records.RESULT_FILE}")).read_text())
    assert saved["data_files"]["data"]["path"] == str(own_quakes)
    assert saved["data_files"]["data"]["size"] == own_quakes.stat().st_size
    write_table(simulate.earthquakes(n=160, seed=9), own_quakes)
    monkeypatch.setattr(run, "train_combination", never)
    for attempt in (run.run, plan.plan):
        with pytest.raises(FcnnError, match=f"trained on other data: {own_quakes} is not"):
            attempt(spec, out)
    listed = runner.invoke(cli, ["sweep", str(own_quakes), "--grid", "depth=1", "--epochs",
                                 "1", "--batch-size", "32", "--width", "8", "-o", str(out),
                                 "--dry-run"])
    assert listed.exit_code == 1 and "trained on other data" in listed.output
    assert "give this sweep another --output directory" in listed.output


def test_a_touched_data_file_is_the_same_data_an_edited_one_is_not(quakes, tmp_path):
    import os
    import shutil

    data = tmp_path / "q.csv"
    shutil.copy(quakes, data)
    spec = Sweep({"data": str(data)}, FIXED, {"lr": [1e-3]})
    run.run(spec, tmp_path / "sw")
    os.utime(data, ns=(1, 1))  # a copy or a touch: the time changes, not the content
    assert [s for *_, s in plan.plan(spec, tmp_path / "sw")] == [plan.FINISHED]
    text = data.read_text()
    data.write_text(text.replace("1", "2", 1))  # one digit: the same size, other content
    with pytest.raises(FcnnError, match="trained on other data"):
        plan.plan(spec, tmp_path / "sw")


def test_a_data_file_with_a_selector_is_found(tmp_path):
    path = tmp_path / "q.h5"
    path.write_bytes(b"0" * 123)  # only its size is read here
    spec = Sweep({"data": f"{path}:events"}, FIXED, {"lr": [1e-3]})
    files = plan.data_files(spec)
    assert files["data"]["path"] == f"{path}:events"
    assert files["data"]["size"] == path.stat().st_size


@pytest.mark.parametrize("case", ["existing file", "under a file", "stdout", "missing data",
                                  "missing data, dry run", "missing val"])
def test_bad_directories_and_data_are_one_line_and_write_nothing(runner, quakes, tmp_path,
                                                                 monkeypatch, case):
    monkeypatch.chdir(tmp_path)  # where -o - would make a directory
    (tmp_path / "file").write_text("mine\n")
    data, extra = quakes, []
    output = {"existing file": "file", "under a file": "file/sub", "stdout": "-"}.get(case,
                                                                                     "sw")
    if case.startswith("missing data"):
        data = str(tmp_path / "gone.csv")
    if case == "missing data, dry run":
        extra = ["--dry-run"]
    if case == "missing val":
        extra = ["--val", str(tmp_path / "gone.csv")]
    before = sorted(tmp_path.rglob("*"))
    result = runner.invoke(cli, ["sweep", data, "--grid", "depth=1", "--epochs", "1",
                                 "-o", output if output == "-" else str(tmp_path / output),
                                 *extra])
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert "Error:" in result.output.splitlines()[-1]
    assert sorted(tmp_path.rglob("*")) == before
    assert (tmp_path / "file").read_text() == "mine\n"


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("case", ["data is its leaderboard", "val is its leaderboard",
                                  "test is its leaderboard", "its leaderboard links to the data",
                                  "the grid file is its leaderboard",
                                  "seeds.json links to the data",
                                  "failed.json is a hard link to the data",
                                  "a seed's run file links to the data"])
def test_a_sweepnever_writes_over_its_inputs(runner, quakes, tmp_path, case, dry_run):
    """Whatever the input (DATA, --val, --test, --grid-file) and the file of the sweep it is or
    is linked from: refused before anything is written, the input byte for byte as it was."""
    import shutil

    out = tmp_path / "sw"
    out.mkdir()
    data, extra, grid = tmp_path / "q.csv", [], ["--grid", "depth=1,2"]
    shutil.copy(quakes, data)
    victim, written = data, out / "leaderboard.csv"
    if case == "data is its leaderboard":
        data = victim = out / "leaderboard.csv"
        data.write_bytes((tmp_path / "q.csv").read_bytes())
    elif case in ("val is its leaderboard", "test is its leaderboard"):
        victim = written = out / "leaderboard.json"
        shutil.copy(data, victim)
        extra = [f"--{case.split()[0]}", str(victim)]
    elif case == "its leaderboard links to the data":
        (out / "leaderboard.csv").symlink_to(data)
    elif case == "the grid file is its leaderboard":
        victim = written = out / "leaderboard.json"
        victim.write_text("[grid]\ndepth = [1, 2]\n")
        grid = ["--grid-file", str(victim)]
    else:
        run_dir = out / Sweep({"data": str(data)}, {"epochs": 1},
                              {"depth": [1, 2]}).key({"depth": 2})
        written = {"seeds.json links to the data": run_dir / "seeds.json",
                   "failed.json is a hard link to the data": run_dir / "failed.json",
                   "a seed's run file links to the data": run_dir / "seed-0" / "history.csv",
                   }[case]
        written.parent.mkdir(parents=True)
        if "hard link" in case:
            os.link(data, written)
        else:
            written.symlink_to(data)
    before = {p: p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")}
    result = runner.invoke(cli, ["sweep", str(data), *grid, "--epochs", "1", "--no-plots",
                                 "-o", str(out), *extra, *(["--dry-run"] if dry_run else [])])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1] == (
        f"Error: {written}: is the same file as the input {victim}; write the output to "
        "another file")
    assert {p: p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")} == before


def _sweep_process(args, timeout=120):
    """fcnn sweep in a process of its own, which a hang cannot stop the tests in."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "fcnn_cli", "sweep", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("name, make", [("seeds.json", os.mkfifo), ("failed.json", os.mkfifo),
                                        ("model.pt", os.mkfifo),
                                        ("seed-1/config.json", os.mkfifo),
                                        ("seeds.json", os.mkdir)])
def test_a_special_file_among_its_own_is_refused_at_once(quakes, tmp_path, name, make,
                                                         dry_run):
    """A FIFO would block the sweep where it reads or writes it (a directory cannot be
    written): one line and exit 1 at once, the FIFO left as it was."""
    import stat

    spec = Sweep({"data": quakes}, {"epochs": 1}, {"depth": [1]})
    path = tmp_path / spec.key({"depth": 1}) / name
    path.parent.mkdir(parents=True)
    make(path)
    kind = os.lstat(path).st_mode
    done = _sweep_process([quakes, "--grid", "depth=1", "--epochs", "1", "-o", tmp_path,
                           *(["--dry-run"] if dry_run else [])])
    assert done.returncode == 1 and done.stdout == "", done.stderr
    assert done.stderr.splitlines() == [f"Error: {path}: " + (
        "is a directory; name a file to write" if make is os.mkdir else
        "is not a regular file, which the sweep would read and write as its own; remove it or "
        "choose another --output directory")]
    assert stat.S_IFMT(os.lstat(path).st_mode) == stat.S_IFMT(kind)
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        {spec.key({"depth": 1}), *name.split("/")})


@pytest.mark.parametrize("name", ["leaderboard.png", "combination/model.pt"])
def test_a_sweep_never_writes_through_a_link_onto_another_runs_file(quakes, tmp_path, name):
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.pt").write_text("the other run's model")
    (other / "config.json").write_text("{}")
    out = tmp_path / "sw"
    path = out / name.replace("combination",
                              Sweep({"data": quakes}, {"epochs": 1}, {"depth": [1]}).key(
                                  {"depth": 1}))
    path.parent.mkdir(parents=True)
    path.symlink_to(other / "model.pt")
    done = _sweep_process([quakes, "--grid", "depth=1", "--epochs", "1", "--no-plots",
                           "-o", out])
    assert done.returncode == 1, done.stderr
    assert done.stderr == (f"Error: {path}: is the model.pt of the run in {str(other)!r}; "
                           "write the output elsewhere\n")
    assert (other / "model.pt").read_text() == "the other run's model"


def test_a_sweep_into_a_directory_whose_name_is_not_utf8(quakes, tmp_path):
    out = tmp_path / os.fsdecode(b"sw\xff")
    done = _sweep_process([quakes, "--grid", "depth=1", "--epochs", "1", "--no-plots",
                           "-o", out])
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.glob("leaderboard.*")) == ["leaderboard.csv",
                                                                  "leaderboard.json"]

def test_a_pipe_as_data_is_read_once_as_stdin_is(quakes, tmp_path):
    """Its content is not hashed first: that read would leave the table's read waiting on a
    pipe whose writer has gone."""
    import subprocess

    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    with open(quakes, "rb") as table:
        writer = subprocess.Popen(["sh", "-c", f"cat > '{pipe}'"], stdin=table)
    try:
        done = _sweep_process([pipe, "--grid", "depth=1", "--epochs", "1", "--no-plots",
                               "-o", tmp_path / "sw"])
    finally:
        writer.kill()
        writer.wait()
    assert done.returncode == 0, done.stderr
    (result,) = (tmp_path / "sw").glob("*/seeds.json")
    assert "data" not in json.loads(result.read_text())["data_files"]
