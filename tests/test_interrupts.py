"""Real processes, really stopped: SIGTERM and resume, SIGKILL and atomic outputs, locks."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from nodes import FULL, make_device
from fcnn_cli.network import checkpoint
from fcnn_cli.data.simulate import earthquakes
from fcnn_cli.data.writer import write_table

pytestmark = pytest.mark.slow


def fcnn(*args):
    return [sys.executable, "-m", "fcnn_cli", *map(str, args)]


def start(*args, cwd):
    return subprocess.Popen(fcnn(*args), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_line(proc, text, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if text in line:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"never saw {text!r}")


@pytest.fixture(scope="module")
def quakes_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "quakes.parquet"
    write_table(earthquakes(n=8000, seed=4), path)
    return path


def weights(path):
    return checkpoint.load(path).net.state_dict()


@pytest.mark.parametrize("members", [1, 3], ids=["single", "ensemble"])
def test_sigterm_saves_and_resume_matches_an_uninterrupted_run(tmp_path, quakes_file, members):
    args = [quakes_file, "--epochs", 8, "--ensemble", members, "--dropout", 0.05, "--seed", 3]
    whole = subprocess.run(fcnn("train", *args, "-q", "-o", tmp_path / "whole"),
                           capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr

    proc = start("train", *args, "-o", tmp_path / "cut", cwd=tmp_path)
    wait_for_line(proc, "epoch    3/8")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "interrupted after epoch" in err and "fcnn train --resume" in err
    cut = tmp_path / "cut"
    assert (cut / "state.pt").exists()
    # the best model so far is usable at once
    assert checkpoint.load(cut / "model.pt").members == (members if members > 1 else None)
    assert pd.read_csv(cut / "history.csv").epoch.max() < 8

    resumed = subprocess.run(fcnn("train", "--resume", cut, "-q"), capture_output=True,
                             text=True, cwd="/")
    assert resumed.returncode == 0, resumed.stderr
    assert not (cut / "state.pt").exists()
    a, b = weights(tmp_path / "whole" / "model.pt"), weights(cut / "model.pt")
    assert len(a) == len(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert (cut / "metrics.json").read_text() == (tmp_path / "whole" / "metrics.json").read_text()
    history = [pd.read_csv(run / "history.csv").drop(columns="seconds")
               for run in (cut, tmp_path / "whole")]
    pd.testing.assert_frame_equal(*history)
    assert list(history[0].epoch) == list(range(1, 9))


def test_resume_refuses_other_data_and_finished_runs(tmp_path, quakes_file):
    proc = start("train", quakes_file, "--epochs", 50, "-o", tmp_path / "r", cwd=tmp_path)
    wait_for_line(proc, "epoch    2/50")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    config = (tmp_path / "r" / "config.json")
    write_table(earthquakes(n=8000, seed=5), quakes_file.parent / "other.parquet")
    config.write_text(config.read_text().replace("quakes.parquet", "other.parquet"))
    other = subprocess.run(fcnn("train", "--resume", tmp_path / "r"), capture_output=True,
                           text=True)
    assert other.returncode == 1 and "not the data this run started with" in other.stderr
    done = subprocess.run(fcnn("train", "--resume", tmp_path), capture_output=True, text=True)
    assert done.returncode == 1 and "nothing to resume" in done.stderr


@pytest.mark.parametrize("force", [["--force"], []])
def test_a_second_process_cannot_train_into_a_locked_run(tmp_path, quakes_file, force):
    proc = start("train", quakes_file, "--epochs", 200, "-o", tmp_path / "r", cwd=tmp_path)
    try:
        wait_for_line(proc, "epoch    1/200")
        before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "r").iterdir()}
        second = subprocess.run(fcnn("train", quakes_file, "-o", tmp_path / "r", *force),
                                capture_output=True, text=True)
        assert second.returncode == 1 and "another fcnn process" in second.stderr
        # Say what is there; --force would not help.
        assert "a run is in progress" in second.stderr and "--force" not in second.stderr
        assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "r").iterdir()} == before
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("delay", [0.2, 0.6, 1.0, 1.6])
def test_sigkill_leaves_the_old_or_the_new_file_never_half_of_one(tmp_path, delay):
    out = tmp_path / "big.csv"
    out.write_text("old,complete\n1,2\n")
    proc = subprocess.Popen(fcnn("simulate", "earthquakes", "-n", 200_000, "-o", out))
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    text = out.read_text()
    if text != "old,complete\n1,2\n":
        assert len(pd.read_csv(out, comment="#")) == 200_000
    subprocess.run(fcnn("simulate", "earthquakes", "-n", 10, "-o", out), check=True)
    assert len(pd.read_csv(out, comment="#")) == 10


def test_sigkill_during_training_leaves_no_half_checkpoint(tmp_path, quakes_file):
    run = tmp_path / "r"
    subprocess.run(fcnn("train", quakes_file, "--epochs", 1, "-q", "-o", run), check=True)
    old = (run / "model.pt").read_bytes()
    proc = start("train", quakes_file, "--epochs", 2, "-o", run, "--force", cwd=tmp_path)
    wait_for_line(proc, "epoch    2/2")  # killed while it writes its outputs, or just before
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    data = (run / "model.pt").read_bytes()
    assert data == old or checkpoint.load(run / "model.pt")


@pytest.mark.parametrize("stop, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stopping_a_long_simulation_leaves_no_partial_file(tmp_path, stop, code):
    out = tmp_path / "big.csv"
    out.write_text("old,complete\n1,2\n")
    proc = start("simulate", "earthquakes", "-n", 10 ** 10, "-o", out, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".big.csv.*.tmp")) or \
                next(tmp_path.glob(".big.csv.*.tmp")).stat().st_size < 1_000_000:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(stop)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code and stderr.strip() == "interrupted: nothing saved"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]
    assert out.read_text() == "old,complete\n1,2\n"


# Two or many signals close together, broken stderr, and left-over locks (issue #10).

SMALL = ["--epochs", 6, "--width", 256, "--batch-size", 128]  # a save slow enough to aim at


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "quakes.parquet"
    write_table(earthquakes(n=3000, seed=6), path)
    return path


def send(proc, sig, count, gap=0.001):
    for _ in range(count):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        time.sleep(gap)


def wait_for_save(proc, run, timeout=120):
    """Until the run directory holds more than its lock: the save has begun."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            if set(os.listdir(run)) - {".lock"}:
                return
    raise AssertionError("never saw the save begin")


def assert_kept(run, proc, err, code):
    """The run directory holds a usable run, interrupted (True) or complete (False)."""
    assert proc.returncode == code, err
    assert "Traceback" not in err and "nothing saved" not in err, err
    checkpoint.load(run / "model.pt")
    epochs = list(pd.read_csv(run / "history.csv").epoch)
    if (run / "state.pt").exists():
        state = torch.load(run / "state.pt", weights_only=True)
        assert state["epoch"] == epochs[-1] and f"interrupted after epoch {epochs[-1]}" in err
        return True
    assert epochs == list(range(1, 7)) and "the complete run is saved" in err
    return False


def assert_resumes(run):
    resumed = subprocess.run(fcnn("train", "--resume", run, "-q"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert not (run / "state.pt").exists()
    assert list(pd.read_csv(run / "history.csv").epoch) == list(range(1, 7))


@pytest.mark.parametrize("moment", ["epoch", "last_epoch", "save", "save_after_interrupt"])
def test_two_signals_a_millisecond_apart_never_lose_the_run(tmp_path, small_file, moment):
    run = tmp_path / "r"
    proc = start("train", small_file, *SMALL, "-o", run, cwd=tmp_path)
    if moment in ("epoch", "save_after_interrupt"):
        wait_for_line(proc, "epoch    2/6")
    if moment == "save_after_interrupt":
        send(proc, signal.SIGTERM, 1)
    if moment == "last_epoch":  # the last snapshot, the result's assembly, or the save
        wait_for_line(proc, "epoch    6/6")
    if moment.startswith("save"):
        wait_for_save(proc, run)
    send(proc, signal.SIGTERM, 2)
    _, err = proc.communicate(timeout=120)
    interrupted = assert_kept(run, proc, err, 143)
    assert interrupted == (moment in ("epoch", "save_after_interrupt")) or moment == "last_epoch"
    if interrupted:
        assert_resumes(run)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_burst_of_twenty_signals_stops_once_and_saves(tmp_path, small_file, sig, code):
    run = tmp_path / "r"
    proc = start("train", small_file, *SMALL, "-o", run, cwd=tmp_path)
    wait_for_line(proc, "epoch    2/6")
    send(proc, sig, 20)
    _, err = proc.communicate(timeout=120)
    assert assert_kept(run, proc, err, code)
    assert_resumes(run)


def full_device(tmp_path):
    return open(make_device(tmp_path / "full", FULL), "w")


@pytest.mark.parametrize("sink", ["closed_pipe", "full_device"])
def test_training_goes_on_when_stderr_breaks(tmp_path, small_file, sink):
    run = tmp_path / "r"
    args = fcnn("train", small_file, "--epochs", 3, "-o", run)
    if sink == "closed_pipe":  # `fcnn train ... 2>&1 | head -1`
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        proc.stderr.readline()
        proc.stderr.close()
        proc.wait(timeout=120)
    else:
        with full_device(tmp_path) as full:
            proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=full, timeout=120)
    assert proc.returncode == 0
    checkpoint.load(run / "model.pt")
    assert list(pd.read_csv(run / "history.csv").epoch) == [1, 2, 3]
    assert {p.name for p in run.iterdir()} == {".lock", "model.pt", "metrics.json",
                                                 "history.csv", "config.json", "config.toml",
                                                 "predictions.parquet", "plots",
                                                 "correlations.json"}
    assert (run / "plots" / "learning_curves.png").stat().st_size > 0


@pytest.mark.parametrize("command, sink", [("simulate", "full_device"),
                                           ("predict", "closed_pipe"),
                                           ("evaluate", "full_device")])
def test_log_lines_on_a_broken_stderr_are_dropped(tmp_path, model_path, command, sink):
    data = tmp_path / "gaps.csv"
    frame = earthquakes(n=50, seed=8).frame
    frame.loc[3, "tp1"] = float("nan")  # --nan drop warns on stderr
    frame.to_csv(data, index=False)
    out = tmp_path / "out.csv"
    args = {"simulate": ["simulate", "earthquakes", "-n", 20, "-o", out],
            "predict": ["predict", model_path, data, "--nan", "drop", "-o", out],
            "evaluate": ["evaluate", model_path, data, "--nan", "drop", "-o", out]}[command]
    if sink == "closed_pipe":
        read, write = os.pipe()
        os.close(read)
        with open(write, "w") as stderr:
            proc = subprocess.run(fcnn(*args), stdout=subprocess.DEVNULL, stderr=stderr)
    else:
        with full_device(tmp_path) as full:
            proc = subprocess.run(fcnn(*args), stdout=subprocess.DEVNULL, stderr=full)
    assert proc.returncode == 0
    assert out.stat().st_size > 100


def test_a_lock_left_by_sigkill_is_reused_without_force(tmp_path, small_file):
    run = tmp_path / "r"
    proc = start("train", small_file, "--epochs", 200, "-o", run, cwd=tmp_path)
    wait_for_line(proc, "epoch    1/200")
    proc.kill()
    proc.communicate()
    assert os.listdir(run) == [".lock"]
    again = subprocess.run(fcnn("train", small_file, "--epochs", 1, "-q", "-o", run),
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    checkpoint.load(run / "model.pt")


def test_sigterm_stops_a_sweep_and_a_rerun_goes_on_where_it_stopped(tmp_path, quakes_file):
    """Stopped while its second combination trains, a sweep keeps the first as finished and
    nothing of the second that a rerun could take for finished."""
    args = ["sweep", quakes_file, "--grid", "depth=1,2,3", "--epochs", 20, "--no-plots",
            "-o", tmp_path / "sw"]
    proc = start(*args, cwd=tmp_path)
    try:
        wait_for_line(proc, "combination 2 of 3: depth=2-")
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    assert "interrupted: the finished combinations are kept" in stderr
    finished = sorted(p.parent.name.split("-")[0] for p in (tmp_path / "sw").glob("*/seeds.json"))
    assert finished == ["depth=1"]
    assert not list((tmp_path / "sw").glob("depth=2-*/model.pt"))
    listed = subprocess.run(fcnn(*args, "--dry-run"), capture_output=True, text=True,
                            cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "3 combinations, 2 to train" in " ".join(listed.stdout.split())
