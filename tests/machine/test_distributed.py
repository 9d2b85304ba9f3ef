"""Training in several processes for real: torchrun starts them, gloo connects them."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from fcnn_cli.network import checkpoint
from fcnn_cli.machine import distributed
from fcnn_cli.data.simulate import earthquakes
from fcnn_cli.data.tables import Table
from fcnn_cli.data.writer import write_table

pytestmark = pytest.mark.slow


# `fcnn` whose --nproc check sees a node of 2 CPUs with 64 GiB free, whatever runs the tests.
AMPLE_NODE = ("import sys; from fcnn_cli.machine import devices; "
              "devices.cpu_memory_available = lambda: 64 << 30; "
              "devices.cpu_budget = lambda: 2; sys.argv[0] = 'fcnn'; "
              "from fcnn_cli.commands import main; main()")


def fcnn(*args):
    return [sys.executable, "-c", AMPLE_NODE, *map(str, args)]


def torchrun(*args, nproc=2):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "fcnn_cli", *map(str, args)]


def run(command, cwd):
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def weights(run_dir):
    return checkpoint.load(run_dir / "model.pt").net.state_dict()


def assert_close(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=atol, rtol=1e-4), k


@pytest.fixture(scope="module")
def quakes_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "quakes.csv"
    write_table(earthquakes(n=1001, seed=4), path)  # 1001: no world size divides it
    return path


def test_share_gives_every_process_an_equal_part_of_every_batch():
    for size in (1, 2, 3, 4):
        for rows in (1, 2, 5, 32, 33):
            parts = [distributed.share(1000, 100, rows, distributed.World(r, size, "gloo"))
                     for r in range(size)]
            assert parts[0][0] == 100 and parts[-1][1] == 100 + rows
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))  # contiguous, disjoint
            lengths = [stop - start for start, stop in parts]
            assert max(lengths) - min(lengths) <= 1
    # the last, short minibatch of an epoch never reaches past the rows
    assert distributed.share(1001, 992, 9, distributed.World(1, 2, "gloo")) == (997, 1001)


def test_the_first_process_is_told_by_torchrun_s_environment(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("RANK", "1")  # a stray rank without a world is a process alone
    assert distributed.first_process()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not distributed.first_process()
    monkeypatch.setenv("RANK", "0")
    assert distributed.first_process()


def test_the_first_process_alone_says_what_the_table_s_metadata_chose(tmp_path):
    """An earthquake table of unknown origin times and missing picks: each line of the
    options its metadata chose is printed once, not once a process."""
    path = tmp_path / "picks.parquet"
    write_table(earthquakes(n=300, seed=1, origin_unknown=True, missing=0.2), path)
    done = run(torchrun("train", path, "--epochs", 1, "--no-plots", "-o", tmp_path / "r"),
               tmp_path)
    said = [line for line in done.stderr.splitlines() if line.startswith(f"{path}: ")]
    assert [line.split(": ", 2)[1] for line in said] == [
        "the origin time is unknown", "the origin time is unknown", "20 % of the picks are "
        "missing", "missing values filled with the training median of 'dtp1', 'dts1', 'dtp2', "
        "'dts2', 'dtp3', 'dts3', 'dtp4', 'dts4', each with an indicator input"], done.stderr


def test_two_processes_train_as_one_does(tmp_path, quakes_file):
    args = ["train", quakes_file, "--epochs", 3, "--batch-size", 64, "--seed", 3, "-q"]
    run(fcnn(*args, "-o", tmp_path / "one"), tmp_path)
    run(torchrun(*args, "-o", tmp_path / "two"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # one run directory
    assert_close(weights(tmp_path / "one"), weights(tmp_path / "two"))
    one, two = (json.loads((tmp_path / d / "config.json").read_text()) for d in ("one", "two"))
    assert one["sizes"] == two["sizes"] and one["best_epoch"] == two["best_epoch"]
    assert two["parallel"]["world_size"] == 2 and two["parallel"]["backend"] == "gloo"
    assert one["parallel"]["world_size"] == 1
    a, b = (checkpoint.load(tmp_path / d / "model.pt") for d in ("one", "two"))
    assert a.x_scaler == b.x_scaler  # fitted on the whole training split, not a rank's share
    ma, mb = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert mb["test"]["rows"] == ma["test"]["rows"]  # no validation or test row counted twice
    assert mb["test"]["overall"]["rmse"] == pytest.approx(ma["test"]["overall"]["rmse"], rel=1e-3)


def test_autograd_path_with_class_weights_and_a_validation_file(tmp_path):
    frame = earthquakes(n=901, seed=2).frame
    frame["side"] = ["east" if x > 10 else "west" for x in frame.x]  # unbalanced classes
    data, val = tmp_path / "data.parquet", tmp_path / "val.parquet"
    write_table(Table(frame.drop(columns=["x", "y"]).iloc[:800]), data)
    write_table(Table(frame.drop(columns=["x", "y"]).iloc[800:]), val)
    args = ["train", data, "-t", "side", "--class-weight", "balanced", "--val", val,
            "--dropout", 0, "--epochs", 2, "--batch-size", 50, "-q"]
    run(fcnn(*args, "-o", tmp_path / "one"), tmp_path)
    run(torchrun(*args, "-o", tmp_path / "two"), tmp_path)
    assert_close(weights(tmp_path / "one"), weights(tmp_path / "two"))
    sizes = json.loads((tmp_path / "two" / "config.json").read_text())["sizes"]
    assert sizes["val"] == 101


def test_sigterm_stops_every_process_and_the_run_resumes_as_if_uninterrupted(tmp_path,
                                                                               quakes_file):
    """Through `fcnn train --nproc 2`, which starts torchrun's launcher itself."""
    args = ["train", quakes_file, "--epochs", 6, "--batch-size", 16, "--seed", 1]
    run(torchrun(*args, "-q", "-o", tmp_path / "whole"), tmp_path)
    proc = subprocess.Popen(fcnn(*args, "--nproc", 2, "-o", tmp_path / "cut"), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "epoch    2/6" in line:
            break
        assert line or proc.poll() is None, "training ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)  # to the launcher, as a batch system does
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 143, err
    assert err.count("continue with: fcnn train --resume") == 1  # the first process alone
    assert "Traceback" not in err
    assert (tmp_path / "cut" / "state.pt").exists()
    history = (tmp_path / "cut" / "history.csv").read_text().splitlines()
    stopped_after = len(history) - 1
    assert 2 <= stopped_after < 6
    run(fcnn("train", "--resume", tmp_path / "cut", "--nproc", 2, "-q"), tmp_path)
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "cut" / "state.pt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut", "whole"]


def start_two(tmp_path, quakes_file):
    """`fcnn train --nproc 2` running its second epoch, and the process ids of its two
    training processes, the first process's first. A collective waits 20 s at most: where the
    first misses a peer's death (a collective left waiting), it must still give up and save
    within the 30 s that torchrun grants after its SIGTERM, not at the default 300 s."""
    proc = subprocess.Popen(fcnn("train", quakes_file, "--epochs", 200, "--batch-size", 8,
                                 "--nproc", 2, "-o", tmp_path / "r"), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1",
                                 "FCNN_COLLECTIVE_TIMEOUT": "20"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "epoch    2/" not in proc.stderr.readline():
        pass
    workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                             text=True).stdout.split()
    assert len(workers) == 2, workers
    return proc, sorted(workers, key=int)


def test_a_signal_to_one_process_stops_all_with_its_exit_code(tmp_path, quakes_file):
    proc, workers = start_two(tmp_path, quakes_file)
    os.kill(int(workers[1]), signal.SIGTERM)  # the second process alone
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 143, err
    assert "continue with: fcnn train --resume" in err and "Traceback" not in err
    assert (tmp_path / "r" / "state.pt").exists()


def test_a_process_that_dies_ends_the_job_and_the_first_saves_what_it_has(tmp_path,
                                                                           quakes_file):
    proc, workers = start_two(tmp_path, quakes_file)
    os.kill(int(workers[1]), signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("the job hung after one of its processes died") from None
    assert proc.returncode != 0
    # The first process learns of it from a failed collective, or from the launcher's SIGTERM
    assert "lost touch with the others after epoch" in err or "interrupted after" in err, err
    assert "continue with: fcnn train --resume" in err and "Traceback" not in err
    assert checkpoint.load(tmp_path / "r" / "model.pt")
    assert (tmp_path / "r" / "state.pt").exists()


def test_several_processes_refuse_stdin_and_too_small_a_batch_for_batch_norm(tmp_path,
                                                                             quakes_file):
    from click.testing import CliRunner

    from fcnn_cli.commands import cli

    result = CliRunner().invoke(cli, ["train", "-", "--nproc", "2", "-o", str(tmp_path / "r")],
                                input=quakes_file.read_text())
    assert result.exit_code == 2 and "give a file, not stdin or a pipe" in result.output
    assert not (tmp_path / "r").exists()
    done = subprocess.run(torchrun("train", quakes_file, "--arch", "batchnorm", "--batch-size", 3,
                                   "--epochs", 1, "-o", tmp_path / "bn"),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "batch normalisation needs at least 2 rows of every minibatch in each of the 2 " \
           "process(es); --batch-size 3 gives fewer" in done.stderr
    assert not (tmp_path / "bn").exists()


def test_two_processes_stream_their_own_pieces(tmp_path):
    """Each process reads its own row groups of a directory of files; both make the same
    number of steps (else the all-reduce would hang) and the run scores as one would."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = earthquakes(n=3000, seed=4).frame
    for k in range(3):  # 3 files of 5 row groups: the processes get unequal rows
        arrow = pa.Table.from_pandas(frame.iloc[k * 1000:(k + 1) * 1000], preserve_index=False)
        arrow = arrow.replace_schema_metadata({b"fcnn": b'{"targets": ["x", "y"]}'})
        (tmp_path / "d").mkdir(exist_ok=True)
        pq.write_table(arrow, tmp_path / "d" / f"{k}.parquet", row_group_size=200)
    args = ["train", tmp_path / "d", "--stream", "--shuffle-buffer", 500, "--epochs", 4,
            "--batch-size", 64, "-q"]
    run(torchrun(*args, "-o", tmp_path / "two"), tmp_path)
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["parallel"]["world_size"] == 2 and sum(config["sizes"].values()) == 3000
    history = (tmp_path / "two" / "history.csv").read_text().splitlines()
    assert len(history) == 5
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["test"]["distance"]["mean"] < 5.0


# Weighted training as a script, in one process or in each of torchrun's.
WEIGHTED = """
import sys
import torch
from fcnn_cli.data.tables import read_table
from fcnn_cli.engine import train
from fcnn_cli.machine import distributed

data, out, fast, target = sys.argv[1:5]
world, device = distributed.join("cpu")
balanced = {"class_weight": "balanced"} if target == "side" else {}
config = train.TrainConfig(epochs=3, batch_size=64, seed=3, fast=fast == "fast", **balanced)
result = train.fit(read_table(data), config, targets=[target], weight="w", world=world,
                   net={"dropout": 0.0})
if world.is_main:
    torch.save({"weights": result.predictor.net.state_dict(), "sizes": result.sizes,
                "history": [r["val_loss"] for r in result.history]}, out)
distributed.leave(world)
"""


@pytest.mark.parametrize("fast, target", [("fast", "x"), ("autograd", "x"), ("fast", "side")],
                         ids=["fast-regression", "autograd-regression", "fast-balanced-classes"])
def test_two_processes_train_with_event_weights_as_one_does(tmp_path, fast, target):
    """The loss is a mean over rows of weight × loss: each process's share of a minibatch
    stays its share of the rows, and two processes train as one (weights some negative)."""
    import numpy as np

    frame = earthquakes(n=1001, seed=4).frame
    frame["w"] = np.random.default_rng(1).uniform(-0.3, 2.0, len(frame))
    frame["side"] = np.where(frame.x > 10, "east", "west")
    data = tmp_path / "w.csv"
    write_table(Table(frame.drop(columns=["y"] if target == "x" else ["x", "y"])), data)
    script = tmp_path / "weighted.py"
    script.write_text(WEIGHTED)
    args = [data, None, fast, target]
    run([sys.executable, script, *[a if a else tmp_path / "one.pt" for a in args]], tmp_path)
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         script, *[a if a else tmp_path / "two.pt" for a in args]], tmp_path)
    one, two = (torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in ("one", "two"))
    assert one["sizes"] == two["sizes"]
    assert_close(one["weights"], two["weights"])
    assert two["history"] == pytest.approx(one["history"], rel=1e-4)


def test_two_processes_train_categorical_features_as_one_does(tmp_path):
    """A text column of 3 levels (one-hot) and one of 80 (an embedding of its own)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    n = 601
    frame = pd.DataFrame({"x": rng.normal(size=n), "region": rng.choice(["a", "b", "c"], n),
                          "station": [f"s{i:02d}" for i in rng.integers(0, 80, n)]})
    frame["y"] = frame["x"] + (frame["region"] == "b") + frame["station"].str[1:].astype(int) / 40
    frame.to_csv(tmp_path / "levels.csv", index=False)
    args = ["train", tmp_path / "levels.csv", "-t", "y", "--categorical", "station", "--epochs",
            2, "--batch-size", 64, "--seed", 3, "-q"]
    run(fcnn(*args, "-o", tmp_path / "one"), tmp_path)
    run(torchrun(*args, "-o", tmp_path / "two"), tmp_path)
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert one["embed.tables.0"].shape == (81, 19)  # 80 levels and the unknown one
    assert_close(one, two)
