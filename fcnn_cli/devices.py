"""Where the arithmetic runs (a CPU or a CUDA GPU), which of the two ``auto`` takes, and in
what precision the matrix products run."""

import contextlib

from fcnn_cli.errors import FcnnError

# A training step of at least this many multiply-adds goes to a GPU under device="auto"; the
# one number to tune from bench/gpu.py, which prints auto's choice beside the faster device.
CUDA_STEP_WORK = 2 ** 24
# ... and the whole run at least this many: below it the CPU is done before a GPU has started.
CUDA_RUN_WORK = 2 ** 34


def step_work(batch_size, n_in, width, depth, n_out):
    """Multiply-adds of one training step: three matrix products per layer (the forward's and
    the backward's two) over the minibatch's rows."""
    return 3 * batch_size * (n_in * width + (depth - 1) * width * width + width * n_out)


def prefers_cuda(work, steps):
    """Whether ``auto`` trains on a GPU (where there is one), from the multiply-adds of a step
    and the number of steps.

    A GPU step costs a fixed time to launch its thirty-odd kernels whatever their size, and
    starting the GPU costs a second or more, while a CPU step costs little beyond its
    arithmetic: a small network at a small batch (3 × 64 at batch 32) trains faster on the CPU,
    a wide one at a large batch far faster on the GPU. So a GPU only for steps of at least
    CUDA_STEP_WORK multiply-adds, in a run of at least CUDA_RUN_WORK; when in doubt the CPU,
    which is never much slower on the steps it keeps.
    """
    return work >= CUDA_STEP_WORK and work * steps >= CUDA_RUN_WORK


def resolve_device(name, work=None):
    """The torch device for "auto", "cpu" or "cuda" (or a torch.device). ``work`` is a training
    run's (multiply-adds of a step, steps) for ``auto`` to weigh (see :func:`prefers_cuda`);
    without it ``auto`` takes a GPU when there is one."""
    import torch

    if name == "auto":
        gpu = torch.cuda.is_available() and (work is None or prefers_cuda(*work))
        return torch.device("cuda" if gpu else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FcnnError("device='cuda': no CUDA GPU is available here (try device='cpu')",
                        ("device",))
    return torch.device(name)


def describe(device):
    """What a run records of its device: its kind, and a GPU's name."""
    import torch

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"device": device.type, "gpu": gpu}


def effective_precision(precision, device):
    """The precision the matrix products really run in: TF32 exists on GPUs only, so a CPU
    computes "tf32" in fp32; bf16 (autocast) runs on both."""
    return "fp32" if precision == "tf32" and device.type != "cuda" else precision


@contextlib.contextmanager
def matmul_precision(precision, device):
    """For the duration, float32 matrix products on a GPU in TF32 when ``precision`` is "tf32"
    (torch's switch is global: it is set back after)."""
    import torch

    if effective_precision(precision, device) != "tf32":
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def autocast(precision, device):
    """The context in which a forward pass runs: bf16 autocast (weights and optimiser state
    stay float32), or nothing."""
    import torch

    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


SMALL_MATMUL = 2 ** 22  # multiply-adds of a step's largest product below which one thread wins


def training_threads(config, net, device):
    """CPU threads for training: as asked, else one for small networks, whose matrix
    products are too small to share out (measured: 1.5× the speed of two threads at
    3 × 64, batch 32, on a 2-core machine), else torch's choice."""
    import torch

    if config.threads:
        return config.threads
    largest = config.batch_size * net.width * max(net.n_in, net.width, net.n_out)
    if device.type == "cpu" and largest < SMALL_MATMUL:
        return 1
    return torch.get_num_threads()
