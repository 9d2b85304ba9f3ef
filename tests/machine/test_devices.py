"""Which device ``auto`` takes, what a run records of it, the precision helpers, and how many
CPU threads a process uses."""

import json
import os

import pytest
import torch

from fcnn_cli.machine import devices
from fcnn_cli.engine import train
from fcnn_cli.core.config import NetConfig, TrainConfig
from fcnn_cli.machine.devices import (CUDA_RUN_WORK, CUDA_STEP_WORK, RECHECK_SECONDS, TRIAL_SECONDS,
                              ThreadChooser, cpu_budget, prefers_cuda, step_work,
                              thread_ladder, training_threads)
from fcnn_cli.machine.distributed import World
from fcnn_cli.network.embedding import products


def layers(n_in, width, depth, n_out, **embed):
    return products(NetConfig(n_in=n_in, n_out=n_out, width=width, depth=depth, **embed))


def test_step_work_counts_three_products_per_layer():
    # 8 inputs, 3 × 64 hidden, 2 outputs, batch 32
    assert step_work(32, layers(8, 64, 3, 2)) == 3 * 32 * (8 * 64 + 2 * 64 * 64 + 64 * 2)


def test_step_work_counts_the_embedding_and_the_widened_first_layer():
    """Periodic with the defaults (k = 48, d = 24): per feature 48 angles and a 96 × 24 map,
    and a first layer of 8 × 24 inputs; over four times the plain network's work."""
    periodic = step_work(32, layers(8, 64, 3, 2, embed="periodic"))
    assert periodic == 3 * 32 * (8 * (48 + 96 * 24) + 8 * 24 * 64 + 2 * 64 * 64 + 64 * 2)
    assert periodic > 4.4 * step_work(32, layers(8, 64, 3, 2))
    linear = step_work(32, layers(8, 64, 3, 2, embed="linear", embed_dim=4))
    assert linear == 3 * 32 * (8 * 4 + 8 * 4 * 64 + 2 * 64 * 64 + 64 * 2)


@pytest.mark.parametrize("batch, width, depth, rows, epochs, gpu", [
    (32, 64, 3, 20_000, 60, False),  # the default earthquake run: the CPU is faster
    (1024, 512, 6, 1_000_000, 60, True),  # wide and large: the GPU far ahead
    (1024, 512, 6, 2_048, 1, False),  # wide, but two steps: over before a GPU has started
    (32, 512, 6, 1_000_000, 1, True),
    (256, 64, 3, 1_000_000, 60, False),
])
def test_auto_weighs_step_and_run(batch, width, depth, rows, epochs, gpu):
    steps = epochs * -(-rows // batch)
    assert prefers_cuda(step_work(batch, layers(8, width, depth, 2)), steps) is gpu


def test_training_asks_auto_with_the_embedded_network_s_work(monkeypatch):
    asked = []
    monkeypatch.setattr(train, "resolve_device", lambda name, work: asked.append(work))
    net = NetConfig(n_in=8, n_out=2, embed="periodic")
    train._device(TrainConfig(epochs=2, batch_size=32), net, 100, World())
    per_row = 8 * (48 + 96 * 24) + 8 * 24 * 64 + 2 * 64 * 64 + 64 * 2
    assert asked == [(3 * 32 * per_row, 2 * 4)]  # 4 steps an epoch


def test_auto_rule_has_its_thresholds_as_bounds():
    assert prefers_cuda(CUDA_STEP_WORK, -(-CUDA_RUN_WORK // CUDA_STEP_WORK))
    assert not prefers_cuda(CUDA_STEP_WORK - 1, 10 ** 12)
    assert not prefers_cuda(CUDA_STEP_WORK, 1)


def test_auto_without_a_gpu_is_the_cpu_whatever_the_work(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.resolve_device("auto", (10 ** 12, 10 ** 6)).type == "cpu"


def test_auto_with_a_gpu_follows_the_rule(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve_device("auto", (10 ** 12, 10 ** 6)).type == "cuda"
    assert devices.resolve_device("auto", (1000, 10 ** 6)).type == "cpu"
    assert devices.resolve_device("auto").type == "cuda"  # predict and evaluate
    assert devices.resolve_device("cpu", (10 ** 12, 10 ** 6)).type == "cpu"


def test_a_small_default_run_on_a_gpu_node_trains_on_the_cpu_and_says_so(monkeypatch, quakes,
                                                                          tmp_path):
    from fcnn_cli.network import checkpoint

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # no GPU is touched
    result = train.fit(quakes, train.TrainConfig(epochs=1))
    assert result.predictor.device.type == "cpu"
    checkpoint.save(result.predictor, tmp_path / "m.pt")
    for info in (result.predictor.info, checkpoint.load(tmp_path / "m.pt").info):
        assert (info["device"], info["gpu"], info["precision"]) == ("cpu", None, "fp32")
        assert info["train_config"]["device"] == "auto"  # as asked: a resume asks again


def test_config_json_records_the_device_used(runner, quakes_csv, tmp_path):
    from fcnn_cli.commands import cli

    out = runner.invoke(cli, ["train", str(quakes_csv), "--epochs", "1", "-q", "-o",
                              str(tmp_path / "run"), "--precision", "tf32"])
    assert out.exit_code == 0, out.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    # 3 × 64 at batch 32 trains on the CPU, GPU or not
    assert config["device"] == "cpu" and config["parallel"]["devices"][0].endswith("/cpu")
    assert config["train"]["device"] == "auto" and config["train"]["precision"] == "tf32"
    assert config["precision"] == "fp32" and config["gpu"] is None  # TF32 exists on GPUs only
    assert "precision tf32 applies to GPUs only" in out.stderr


def test_effective_precision():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert devices.effective_precision("tf32", cpu) == "fp32"
    assert devices.effective_precision("tf32", cuda) == "tf32"
    assert devices.effective_precision("bf16", cpu) == "bf16"


def test_matmul_precision_is_set_back():
    before = torch.backends.cuda.matmul.allow_tf32
    with devices.matmul_precision("tf32", torch.device("cuda")):
        assert torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cuda.matmul.allow_tf32 == before
    with devices.matmul_precision("tf32", torch.device("cpu")):
        assert torch.backends.cuda.matmul.allow_tf32 == before


def test_bf16_trains_through_autograd_in_float32_weights(quakes):
    result = train.fit(quakes, train.TrainConfig(epochs=1, precision="bf16", device="cpu"))
    assert result.predictor.precision == "bf16" == result.predictor.info["precision"]
    assert all(p.dtype == torch.float32 for p in result.predictor.net.parameters())
    assert result.metrics["val"]["distance"]["mean"] < 50  # km: it learns something


@pytest.mark.cuda
@pytest.mark.parametrize("width, batch, epochs, expected",
                         [(64, 32, 1, "cpu"), (512, 256, 20, "cuda")])
def test_auto_choice_on_a_gpu(quakes, width, batch, epochs, expected):
    result = train.fit(quakes, train.TrainConfig(epochs=epochs, batch_size=batch),
                       net=dict(depth=6, width=width))
    info = result.predictor.info
    assert info["device"] == expected == result.predictor.device.type
    assert info["gpu"] == (torch.cuda.get_device_name() if expected == "cuda" else None)


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_reduced_precision_on_cuda_trains_and_predicts_in_it(quakes, tmp_path, precision):
    from fcnn_cli.network import checkpoint

    before = torch.backends.cuda.matmul.allow_tf32
    options = dict(epochs=3, batch_size=64, device="cuda")
    result = train.fit(quakes, train.TrainConfig(precision=precision, **options))
    full = train.fit(quakes, train.TrainConfig(**options))
    assert torch.backends.cuda.matmul.allow_tf32 == before  # set back after the run
    assert result.predictor.precision == precision == result.predictor.info["precision"]
    distance = result.metrics["val"]["distance"]["mean"]
    assert distance < 2 * full.metrics["val"]["distance"]["mean"] + 0.05  # km
    checkpoint.save(result.predictor, tmp_path / "m.pt")
    assert checkpoint.load(tmp_path / "m.pt", "cuda").precision == precision
    assert checkpoint.load(tmp_path / "m.pt", "cpu").evaluate(quakes)["rows"] == 600

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def cpus(n):
    return lambda pid: set(range(n))


@pytest.mark.parametrize("environ, expected", [
    ({}, 8),
    ({"SLURM_CPUS_PER_TASK": "4"}, 4),
    ({"OMP_NUM_THREADS": "3"}, 3),
    ({"OMP_NUM_THREADS": "2,1"}, 2),  # one count per nesting level: the outer one
    ({"SLURM_CPUS_PER_TASK": "6", "OMP_NUM_THREADS": "2"}, 2),
    ({"SLURM_CPUS_PER_TASK": "2", "OMP_NUM_THREADS": "6"}, 2),
    ({"OMP_NUM_THREADS": "64"}, 8),  # never more than the affinity mask allows
    ({"OMP_NUM_THREADS": "0", "SLURM_CPUS_PER_TASK": "many"}, 8),  # not counts: ignored
    ({"OMP_NUM_THREADS": ""}, 8),
])
def test_budget_is_the_fewest_cpus_that_affinity_and_environment_allow(environ, expected):
    assert cpu_budget(environ, cpus(8)) == expected


def test_budget_reads_the_process_affinity_and_environment(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", cpus(3), raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_budget() == 3
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    assert cpu_budget() == 2


@pytest.mark.parametrize("budget, ladder", [(1, [1]), (2, [2, 1]), (6, [6, 3, 1]),
                                            (16, [16, 8, 4, 2, 1])])
def test_ladder_halves_from_all_cpus_to_one(budget, ladder):
    assert thread_ladder(budget) == ladder


WIDE = layers(8, 512, 3, 2)
SMALL = layers(8, 64, 3, 2)
# 64 wide, but its embedding's product (8 × 96 × 24 a row) is over SMALL_MATMUL at batch 256.
EMBEDDED = layers(8, 64, 3, 2, embed="periodic")


@pytest.fixture
def eight_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", cpus(8), raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.mark.parametrize("config, net, device, alone, counts", [
    (TrainConfig(threads=3), WIDE, CPU, True, [3]),  # --threads wins over everything
    (TrainConfig(threads=12), SMALL, CPU, True, [12]),
    (TrainConfig(batch_size=32), SMALL, CPU, True, [1]),  # small products: one thread
    (TrainConfig(batch_size=256), SMALL, CPU, True, [1]),
    (TrainConfig(batch_size=256), EMBEDDED, CPU, True, [8, 4, 2, 1]),
    (TrainConfig(batch_size=1024), WIDE, CPU, True, [8, 4, 2, 1]),  # timed
    (TrainConfig(batch_size=1024), WIDE, CUDA, True, [8]),
    (TrainConfig(batch_size=1024), WIDE, CPU, False, [8]),  # several processes: not timed
])
def test_training_threads(eight_cpus, config, net, device, alone, counts):
    assert training_threads(config, net, device, alone).counts == counts


def test_inference_threads_are_timed_on_the_cpu_only(eight_cpus):
    assert devices.inference_threads(CPU).counts == [8, 4, 2, 1]
    assert devices.inference_threads(CUDA).counts == [8]


class Machine:
    """A fake clock and thread setting: each unit of work takes the seconds per row that
    ``speed`` gives for the thread count in use."""

    def __init__(self, speed):
        self.now, self.speed, self.applied = 0.0, speed, []
        self.chooser = ThreadChooser(list(speed), clock=lambda: self.now,
                                     apply=self.applied.append)
        self.applied.append(self.chooser.counts[0])  # what in_use would set first

    def work(self, units, rows=100, first=None):
        for k in range(units):
            seconds = self.speed[self.applied[-1]] * rows
            if k == 0 and first is not None:
                seconds = first
            self.now += seconds
            self.chooser.record(seconds, rows)


def units(seconds, per_row, rows=100):
    return int(seconds / (per_row * rows)) + 2


def test_a_busy_neighbour_makes_it_take_fewer_threads():
    machine = Machine({2: 1e-4, 1: 1e-6})  # two threads stall on a descheduled partner
    machine.work(units(TRIAL_SECONDS, 1e-4) + units(TRIAL_SECONDS, 1e-6))
    assert machine.chooser.current == 1 and machine.applied[-1] == 1


def test_all_cpus_stay_when_they_are_faster():
    machine = Machine({2: 1e-6, 1: 2e-6})
    machine.work(units(TRIAL_SECONDS, 1e-6) + units(TRIAL_SECONDS, 2e-6))
    assert machine.applied == [2, 1, 2] and machine.chooser.current == 2


def test_a_count_barely_faster_does_not_replace_the_current_one():
    machine = Machine({2: 1.00e-6, 1: 0.95e-6})  # within the margin: noise, not a neighbour
    machine.work(units(TRIAL_SECONDS, 1e-6) * 2)
    assert machine.chooser.current == 2


def test_the_first_unit_at_a_new_count_is_not_timed():
    machine = Machine({2: 1e-6, 1: 2e-6})
    machine.work(units(TRIAL_SECONDS, 1e-6) + units(TRIAL_SECONDS, 2e-6), first=10.0)
    assert machine.chooser.current == 2  # its threads starting up are not held against it


def test_a_neighbour_that_comes_later_is_found_at_the_next_trial():
    machine = Machine({2: 1e-6, 1: 2e-6})
    machine.work(units(TRIAL_SECONDS, 1e-6) + units(TRIAL_SECONDS, 2e-6))
    assert machine.chooser.current == 2
    machine.speed[2] = 1e-4
    machine.work(units(RECHECK_SECONDS / 2, 1e-4))
    assert machine.chooser.current == 2  # no trial yet: they are costly beside a neighbour
    machine.work(units(RECHECK_SECONDS, 1e-4) + units(TRIAL_SECONDS, 2e-6))
    assert machine.chooser.current == 1


def test_trials_come_rarely_when_units_are_long():
    machine = Machine({2: 1e-2, 1: 2e-2})  # a unit of 100 rows: one or two seconds
    machine.work(4)
    assert machine.chooser.current == 2 and len(machine.applied) == 3
    trial_end = machine.now
    machine.work(10)  # not back after RECHECK_SECONDS: after many times the trial's length
    assert len(machine.applied) == 3 and machine.now - trial_end > RECHECK_SECONDS


def test_a_fixed_count_is_set_and_the_callers_restored():
    before = torch.get_num_threads()
    with ThreadChooser.fixed(1).in_use() as chooser:
        with chooser.timing(10):
            assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_training_and_predict_use_a_chooser_and_leave_the_callers_count(monkeypatch):
    from fcnn_cli.data import simulate
    from fcnn_cli.engine import train

    monkeypatch.setattr(os, "sched_getaffinity", cpus(2), raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    before = torch.get_num_threads()
    table = simulate.earthquakes(n=400, seed=0)
    result = train.fit(table, TrainConfig(epochs=2, batch_size=1024))
    assert torch.get_num_threads() == before
    assert len(result.predictor.predict(table)) == 400
    assert result.predictor.threads.counts == [2, 1]
    assert torch.get_num_threads() == before


def _node(root, meminfo_kb, cgroup, files=None):
    """A /proc and /sys of ``root``: MemAvailable, this process's cgroup lines, and the files
    {path under sys/fs/cgroup: text} of its cgroups."""
    (root / "proc" / "self").mkdir(parents=True)
    (root / "proc" / "meminfo").write_text(f"MemTotal:       64000000 kB\n"
                                           f"MemAvailable:   {meminfo_kb} kB\n")
    (root / "proc" / "self" / "cgroup").write_text(cgroup)
    for path, text in (files or {}).items():
        (root / "sys" / "fs" / "cgroup" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "sys" / "fs" / "cgroup" / path).write_text(text)
    return root


def test_cpu_memory_is_what_meminfo_says_without_a_cgroup_limit(tmp_path):
    root = _node(tmp_path, 1000, "0::/\n", {"memory.max": "max\n", "memory.stat": "anon 5\n"})
    assert devices.cpu_memory_available(root) == 1000 * 1024


def test_a_cgroup_v2_limit_leaves_less_its_anonymous_memory(tmp_path):
    root = _node(tmp_path, 10_000_000, "0::/job/42\n", {
        "job/42/memory.max": f"{8 << 30}\n",
        "job/42/memory.stat": f"anon {3 << 30}\nfile {4 << 30}\n"})  # page cache: given back
    assert devices.cpu_memory_available(root) == 5 << 30


def test_a_cgroup_v1_limit_seen_from_inside_a_container(tmp_path):
    # The job's path is not under the mount: the mount is the container's cgroup itself.
    root = _node(tmp_path, 10_000_000, "5:cpu,cpuacct:/docker/1\n4:memory:/docker/1\n0::/\n", {
        "memory/memory.limit_in_bytes": f"{2 << 30}\n",
        "memory/memory.stat": f"rss 1\ntotal_rss {1 << 29}\n"})
    assert devices.cpu_memory_available(root) == (2 << 30) - (1 << 29)


def test_cpu_memory_is_unknown_where_nothing_reads(tmp_path):
    assert devices.cpu_memory_available(tmp_path) is None


@pytest.mark.parametrize("error, lack", [
    (RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                  "allocate memory: you tried to allocate 4503599627370496 bytes. Error code 12 "
                  "(Cannot allocate memory)"), True),
    (RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 8 bytes."), True),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), True),
    (MemoryError(), True),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x6)"), False),
    (ValueError("can't allocate memory"), False),
])
def test_what_is_a_lack_of_memory(error, lack):
    assert devices.out_of_memory(error) is lack


def test_a_real_failed_allocation_becomes_one_line():
    """4 PiB, more than a process's address space holds: malloc refuses it at once, whatever
    the machine, allocating nothing."""
    with pytest.raises(devices.OutOfMemory) as e, devices.memory_errors(torch.device("cpu")):
        torch.empty(1 << 52, dtype=torch.uint8)
    assert str(e.value).startswith("not enough memory on the CPU to train (DefaultCPUAllocator: ")
    assert "4503599627370496 bytes" in str(e.value) and "\n" not in str(e.value)
