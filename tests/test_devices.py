"""Which device ``auto`` takes, what a run records of it, and the precision helpers."""

import json

import pytest
import torch

from fcnn_cli import devices, train
from fcnn_cli.devices import CUDA_RUN_WORK, CUDA_STEP_WORK, prefers_cuda, step_work


def test_step_work_counts_three_products_per_layer():
    # 8 inputs, 3 × 64 hidden, 2 outputs, batch 32
    assert step_work(32, 8, 64, 3, 2) == 3 * 32 * (8 * 64 + 2 * 64 * 64 + 64 * 2)


@pytest.mark.parametrize("batch, width, depth, rows, epochs, gpu", [
    (32, 64, 3, 20_000, 60, False),  # the default earthquake run: the CPU is faster
    (1024, 512, 6, 1_000_000, 60, True),  # wide and large: the GPU far ahead
    (1024, 512, 6, 2_048, 1, False),  # wide, but two steps: over before a GPU has started
    (32, 512, 6, 1_000_000, 1, True),
    (256, 64, 3, 1_000_000, 60, False),
])
def test_auto_weighs_step_and_run(batch, width, depth, rows, epochs, gpu):
    steps = epochs * -(-rows // batch)
    assert prefers_cuda(step_work(batch, 8, width, depth, 2), steps) is gpu


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
    from fcnn_cli import checkpoint

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # no GPU is touched
    result = train.fit(quakes, train.TrainConfig(epochs=1))
    assert result.predictor.device.type == "cpu"
    checkpoint.save(result.predictor, tmp_path / "m.pt")
    for info in (result.predictor.info, checkpoint.load(tmp_path / "m.pt").info):
        assert (info["device"], info["gpu"], info["precision"]) == ("cpu", None, "fp32")
        assert info["train_config"]["device"] == "auto"  # as asked: a resume asks again


def test_config_json_records_the_device_used(runner, quakes_csv, tmp_path):
    from fcnn_cli.cli import cli

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
    from fcnn_cli import checkpoint

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
