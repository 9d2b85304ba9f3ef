"""Where the arithmetic runs: a CPU or a CUDA GPU."""

from fcnn_cli.errors import FcnnError


def resolve_device(name):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FcnnError("device='cuda': no CUDA GPU is available here (try device='cpu')",
                        ("device",))
    return torch.device(name)


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
