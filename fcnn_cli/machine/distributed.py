"""Training in several processes, as `torchrun` starts them: who this process is, and the few
collective operations the training engine needs (gloo on CPUs, NCCL on GPUs).

A process that torchrun did not start is a world of one: every operation here is then a no-op,
so the engine has one code path for both.
"""

import datetime
import logging
import os
from dataclasses import dataclass

from fcnn_cli.core.errors import FcnnError, Message, size_text
from fcnn_cli.core import collector

log = logging.getLogger(__name__)

# A rank that waits this long on the others takes them for dead and stops with an error,
# instead of hanging for ever (torch's own default is 10 or 30 minutes).
COLLECTIVE_TIMEOUT = datetime.timedelta(
    seconds=float(os.environ.get("FCNN_COLLECTIVE_TIMEOUT", 300)))


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    backend: str | None = None  # None: one process, no process group

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.size > 1

    def describe(self, device):
        """What a run records of where it ran: the number of processes, the backend, and each
        process's host and device."""
        import socket

        here = f"{socket.gethostname()}/{device}"
        if not self.distributed:
            return {"world_size": 1, "backend": None, "devices": [here]}
        import torch.distributed as dist

        devices = [None] * self.size
        dist.all_gather_object(devices, here)  # strings from this job's own processes
        return {"world_size": self.size, "backend": self.backend, "devices": devices}


def launched():
    """Whether torchrun (or an equivalent launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def first_process():
    """Whether this process is the first of those torchrun started, or started alone: told by
    torchrun's environment, before the process group (and torch) is there."""
    return not launched() or int(os.environ.get("RANK", "0")) == 0


def join(device_name):
    """This process's World and its torch device; starts the process group when torchrun
    started several processes. ``device_name`` is "auto", "cpu" or "cuda"."""
    collector.imported("torch")  # where a command loads it: the collector paused
    import torch
    import torch.distributed as dist

    from fcnn_cli.machine.devices import resolve_device

    device = resolve_device(device_name)
    if not launched():
        return World(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0))
    size = int(os.environ["WORLD_SIZE"])
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise FcnnError(f"process {rank} is to use GPU {local_rank}, but this node has "
                            f"{torch.cuda.device_count()}: start at most that many per node")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT,
                                device_id=device if device.type == "cuda" else None)
    return World(rank, size, backend), device


# The memory one process takes before its share of the data and the network: the peak resident
# size of one training a 2 000-row table on the CPU, measured (405 MB, torch 2.13).
PROCESS_BYTES = 400 << 20


def check_nproc(nproc):
    """Refuse ``nproc`` processes that this node's memory cannot hold, each PROCESS_BYTES
    before any data; warn of more than the CPUs this job may use, which the processes share by
    turns (each step waits for the slowest)."""
    from fcnn_cli.machine.devices import cpu_budget, cpu_memory_available

    available = cpu_memory_available()
    if available is not None and nproc * PROCESS_BYTES > available:
        raise FcnnError(f"nproc={nproc}: the processes need at least "
                        f"{size_text(nproc * PROCESS_BYTES)} ({size_text(PROCESS_BYTES)} each "
                        f"before any data), but {size_text(available)} is available on this "
                        f"node: room for {available // PROCESS_BYTES} at most", ("nproc",))
    cpus = cpu_budget()
    if nproc > cpus:
        log.warning("%s", Message(f"nproc={nproc}: more processes than the {cpus} CPU(s) this "
                                  "job may use: they take turns on them, and every step waits "
                                  f"for the slowest; {cpus} or fewer train faster", ("nproc",)))


def launch(nproc, args):
    """Run ``fcnn ARGS`` in ``nproc`` processes on this node under torchrun's own launcher, as
    ``torchrun --standalone --nproc-per-node N -m fcnn_cli ARGS`` would; returns the exit code.
    The launcher reports a stopping signal and a failed process as exceptions of its own:
    here they become the exit codes the shell expects, the processes having said the rest."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    # Said here, torchrun need not print its four lines about what it sets otherwise.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        torchrun(["--standalone", f"--nproc-per-node={nproc}", "-m", "fcnn_cli", *args])
    except SignalException as e:
        return 128 + int(e.sigval)
    except ChildFailedError as e:
        codes = [failure.exitcode for failure in e.failures.values()]
        return next((c for c in codes if c > 0), 1)
    return 0


def leave(world):
    if world.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def sum_(tensor, world):
    """Sum ``tensor`` over all processes, in place."""
    if world.distributed:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def max_(tensor, world):
    """The largest ``tensor`` over all processes, in place."""
    if world.distributed:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def broadcast_(tensor, world):
    """Rank 0's ``tensor`` in every process, in place."""
    if world.distributed:
        import torch.distributed as dist

        dist.broadcast(tensor, src=0)
    return tensor


def lost_peer(error):
    """Whether ``error`` is a collective that failed because another process is gone (gloo says
    so in a plain RuntimeError, other backends in a DistError), rather than a fault here."""
    import torch.distributed as dist

    return isinstance(error, dist.DistError) or "/gloo/" in str(error)


def barrier(world):
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def share(n_rows, batch_start, batch_rows, world):
    """The rows ``[start, stop)`` of one global minibatch that this process takes: equal
    parts (the first ``batch_rows % size`` processes take one row more), so that every process
    makes the same number of steps even when the rows do not divide evenly."""
    part, extra = divmod(batch_rows, world.size)
    start = batch_start + world.rank * part + min(world.rank, extra)
    return start, min(start + part + (world.rank < extra), n_rows)
