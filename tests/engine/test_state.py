"""The memory a training needs, reckoned before its networks are built, and the refusal of one
that cannot fit."""

import pytest
import torch

from fcnn_cli.machine import devices
from fcnn_cli.engine import state, train
from fcnn_cli.commands import cli
from fcnn_cli.core.config import NetConfig, TrainConfig
from fcnn_cli.network.model import Ensemble
from fcnn_cli.network.model import MLP

GiB = 1 << 30


@pytest.mark.parametrize("net", [
    {"depth": 3, "width": 16},
    {"depth": 1, "width": 5},
    {"arch": "resnet", "depth": 5, "width": 12},  # a plain layer, then two blocks
    {"arch": "resnet", "depth": 4, "width": 8, "batchnorm": True},
    {"arch": "selu", "depth": 2, "width": 7, "dropout": 0.1},
    {"depth": 2, "width": 9, "batchnorm": True, "dropout": 0.2},
])
def test_values_are_those_of_the_built_network(net):
    shape = NetConfig(n_in=5, n_out=3, **net)
    built = MLP(shape)
    floats = [t for t in (*built.parameters(), *built.buffers()) if t.is_floating_point()]
    assert state.values(shape) == sum(t.numel() for t in floats)


def test_an_ensemble_needs_its_members_times_one_network():
    shape, config = NetConfig(n_in=4, n_out=2, depth=2, width=6), TrainConfig(batch_size=16)
    one, count = state.training_bytes(shape, config)
    members = Ensemble.build(shape, 7)
    assert state.training_bytes(shape, config, 7) == (7 * one, count)
    assert 7 * count == sum(p.numel() for p in members.parameters())


def test_a_small_network_is_reckoned_value_by_value():
    # 3 inputs, 2 × 4 hidden, 1 output: (3·4 + 4) + (4·4 + 4) + (4 + 1) = 41 values; Adam and
    # the average: 16 copies of each; a batch of 10 rows holds 3 + 1 + 2 · 4 · 2 values a row.
    shape = NetConfig(n_in=3, n_out=1, depth=2, width=4)
    assert state.training_bytes(shape, TrainConfig(), 1, 10) == (4 * (41 * 16 + 10 * 20), 41)
    plain = TrainConfig(optimizer="sgd", momentum=0.0, ema=0.0)
    assert state.training_bytes(shape, plain, 1, 10) == (4 * (41 * 7 + 10 * 20), 41)


def _float_bytes(saved):
    if isinstance(saved, torch.Tensor):
        return saved.numel() * saved.element_size() if saved.is_floating_point() else 0
    if isinstance(saved, dict):
        return sum(_float_bytes(v) for v in saved.values())
    if isinstance(saved, (list, tuple)):
        return sum(_float_bytes(v) for v in saved)
    return 0


@pytest.mark.parametrize("options, copies", [
    ({}, 5),  # weights, Adam's two moments, the average, the best epoch's weights
    ({"ema": 0.0}, 4),
    ({"optimizer": "sgd"}, 4),  # one momentum buffer
    ({"optimizer": "sgd", "momentum": 0.0, "ema": 0.0}, 2),
])
def test_the_copies_reckoned_are_those_a_real_state_saves(quakes, options, copies):
    """The state of the last complete epoch, which training keeps (and makes anew beside it),
    holds the copies of each value that the reckoning counts."""
    def stop(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    config = TrainConfig(epochs=3, batch_size=64, **options)
    cut = train.fit(quakes, config, net={"width": 16}, on_epoch=stop)
    count = state.values(cut.predictor.net.config)
    assert _float_bytes(cut.resume_state) - 4 * count * copies in (0, 4)  # Adam's step count
    needed, _ = state.training_bytes(cut.predictor.net.config, config, 1, 0)
    assert needed == 4 * count * (1 + 3 * copies)


def _available(monkeypatch, room):
    monkeypatch.setattr(devices, "memory_available", lambda device: room)


def test_a_network_that_cannot_fit_is_refused_before_it_is_built(quakes, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("built")

    _available(monkeypatch, GiB)
    monkeypatch.setattr(state.TrainingState, "__init__", never)
    shape = NetConfig(n_in=8, n_out=2, depth=10, width=4096)
    needed, count = state.training_bytes(shape, TrainConfig(epochs=1), 1, 32)
    with pytest.raises(devices.OutOfMemory) as refused:
        train.fit(quakes, TrainConfig(epochs=1), net={"depth": 10, "width": 4096})
    assert str(refused.value) == (
        f"a network of {count:,} parameters needs about {needed / GiB:g} GiB to train (weights, "
        "gradients, optimiser moments, weight average, the best and the last complete epochs' "
        "copies, and a minibatch's activations), but 1 GiB is available on the CPU; lower "
        "width, depth or batch_size")
    assert count == 8 * 4096 + 4096 + 9 * (4096 * 4096 + 4096) + 4096 * 2 + 2  # 8 in, 2 out
    assert refused.value.options == ("width", "depth", "batch_size")


def test_an_ensemble_that_cannot_fit_is_refused_in_one_line(runner, quakes_csv, tmp_path,
                                                          monkeypatch):
    _available(monkeypatch, GiB)
    out = tmp_path / "run"
    result = runner.invoke(cli, ["train", str(quakes_csv), "--ensemble", "1024", "--width",
                                 "512", "-o", str(out), "-q"])
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1, result.output
    # each of 8 · 512 + 512 + 2 · (512 · 512 + 512) + 512 · 2 + 2 parameters
    assert result.stderr.startswith("Error: 1024 networks of 530,946 parameters need about ")
    assert result.stderr.endswith("but 1 GiB is available on the CPU; lower --width, --depth, "
                                  "--batch-size or --ensemble\n")
    assert not out.exists()


def test_what_fits_trains(quakes, monkeypatch):
    shape = NetConfig(n_in=8, n_out=2, depth=3, width=64)
    needed, _ = state.training_bytes(shape, TrainConfig(epochs=1), 1, 32)
    _available(monkeypatch, needed)
    assert train.fit(quakes, TrainConfig(epochs=1)).stopped == "completed"


def test_processes_of_one_node_share_its_memory(quakes, monkeypatch):
    shape = NetConfig(n_in=8, n_out=2, depth=3, width=64)
    needed, _ = state.training_bytes(shape, TrainConfig(epochs=1), 1, 32)
    _available(monkeypatch, 3 * needed)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    with pytest.raises(devices.OutOfMemory, match=r"is available on the CPU \(shared by this "
                                                  r"node's 4 processes: .* each\); lower"):
        state.check_fits(shape, TrainConfig(epochs=1), torch.device("cpu"), 1, 32)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    state.check_fits(shape, TrainConfig(epochs=1), torch.device("cpu"), 1, 32)


# What torch's CPU allocator raises when malloc fails (torch 2.13, Linux).
CPU_ALLOCATION_FAILED = ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
                         "can't allocate memory: you tried to allocate 4503599627370496 bytes. "
                         "Error code 12 (Cannot allocate memory)")


def test_an_allocation_that_fails_in_training_is_one_line(runner, quakes_csv, tmp_path,
                                                         monkeypatch):
    def no_memory(*args, **kwargs):
        raise RuntimeError(CPU_ALLOCATION_FAILED)

    monkeypatch.setattr(state, "make_optimizer", no_memory)
    out = tmp_path / "run"
    result = runner.invoke(cli, ["train", str(quakes_csv), "-o", str(out), "-q",
                                 "--epochs", "1"])
    assert result.exit_code == 1 and result.stderr == (
        "Error: not enough memory on the CPU to train (DefaultCPUAllocator: can't allocate "
        "memory: you tried to allocate 4503599627370496 bytes. Error code 12 (Cannot allocate "
        "memory)); try a smaller network or --batch-size\n")
    assert not out.exists()


def test_other_runtime_errors_are_not_taken_for_a_lack_of_memory(quakes, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(state, "make_optimizer", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        train.fit(quakes, TrainConfig(epochs=1))


@pytest.mark.cuda
def test_a_network_too_large_for_the_gpu_is_refused_with_its_free_memory():
    free = torch.cuda.mem_get_info()[0]
    shape = NetConfig(n_in=8, n_out=2, depth=1000, width=65536)
    with pytest.raises(devices.OutOfMemory, match=r"needs about .* GiB to train .*, but "
                                                  r".* is available on the GPU \(cuda\)"):
        state.check_fits(shape, TrainConfig(), torch.device("cuda"))
    assert torch.cuda.mem_get_info()[0] >= free - (64 << 20)  # nothing was built there


@pytest.mark.cuda
def test_a_failed_gpu_allocation_becomes_one_line():
    total = torch.cuda.mem_get_info()[1]
    with pytest.raises(devices.OutOfMemory, match="^not enough memory on the GPU \\(cuda\\) to "
                                                  "train \\(CUDA out of memory"), \
            devices.memory_errors(torch.device("cuda")):
        torch.empty(2 * total, dtype=torch.uint8, device="cuda")
