"""Real processes, really stopped: SIGTERM and resume, SIGKILL and atomic outputs, locks."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from fcnn_cli import checkpoint
from fcnn_cli.simulate import earthquakes
from fcnn_cli.tables import write_table

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


def test_sigterm_saves_and_resume_matches_an_uninterrupted_run(tmp_path, quakes_file):
    args = [quakes_file, "--epochs", 8, "--dropout", 0.05, "--seed", 3]
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
    checkpoint.load(cut / "model.pt")  # the best model so far is usable at once
    assert pd.read_csv(cut / "history.csv").epoch.max() < 8

    resumed = subprocess.run(fcnn("train", "--resume", cut, "-q"), capture_output=True,
                             text=True, cwd="/")
    assert resumed.returncode == 0, resumed.stderr
    assert not (cut / "state.pt").exists()
    a, b = weights(tmp_path / "whole" / "model.pt"), weights(cut / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (cut / "metrics.json").read_text() == (tmp_path / "whole" / "metrics.json").read_text()
    assert list(pd.read_csv(cut / "history.csv").epoch) == list(range(1, 9))


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


def test_a_second_process_cannot_train_into_a_locked_run(tmp_path, quakes_file):
    proc = start("train", quakes_file, "--epochs", 200, "-o", tmp_path / "r", cwd=tmp_path)
    try:
        wait_for_line(proc, "epoch    1/200")
        before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "r").iterdir()}
        second = subprocess.run(fcnn("train", quakes_file, "-o", tmp_path / "r", "--force"),
                                capture_output=True, text=True)
        assert second.returncode == 1 and "another fcnn process" in second.stderr
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
