"""Where the arithmetic runs: a CPU or a CUDA GPU."""

from fcnn_cli.errors import FcnnError


def resolve_device(name):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FcnnError("--device cuda: no CUDA GPU is available here (try --device cpu)")
    return torch.device(name)
