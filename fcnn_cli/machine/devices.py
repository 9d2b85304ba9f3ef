"""Where the arithmetic runs (a CPU or a CUDA GPU), which of the two ``auto`` takes, in what
precision the matrix products run, and how many CPU threads do them."""

import contextlib
import os
import re
import time
from pathlib import Path

from fcnn_cli.core.errors import FcnnError, first_line

# A training step of at least this many multiply-adds goes to a GPU under device="auto"; the
# one number to tune from bench/gpu.py, which prints auto's choice beside the faster device.
CUDA_STEP_WORK = 2 ** 24
# ... and the whole run at least this many: below it the CPU is done before a GPU has started.
CUDA_RUN_WORK = 2 ** 34


def step_work(batch_size, products):
    """Multiply-adds of one training step: each of the forward's ``products`` (multiply-adds
    of one row, :func:`fcnn_cli.network.embedding.products`) three times (the forward's and the
    backward's two) over the minibatch's rows."""
    return 3 * batch_size * sum(products)


def prefers_cuda(work, steps):
    """Whether ``auto`` trains on a GPU (where there is one), from the multiply-adds of a step
    and the number of steps.

    A GPU step costs a fixed time to launch its dozens of kernels whatever their size, and
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


class OutOfMemory(FcnnError):
    """Training needs more memory than the device has, found before it starts or when an
    allocation fails."""


# How torch's CPU allocator says it found no memory (in a plain RuntimeError): "can't allocate
# memory" on Linux, "not enough memory" elsewhere, a C++ bad_alloc where it fails deeper.
CPU_ALLOCATION_FAILED = re.compile(r"DefaultCPUAllocator: (can't allocate|not enough) memory|"
                                   r"std::bad_alloc")


def out_of_memory(error):
    """Whether ``error`` says that memory ran out: Python's MemoryError, torch's on a GPU, or
    the RuntimeError of torch's CPU allocator."""
    import torch

    return isinstance(error, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(error, RuntimeError) and CPU_ALLOCATION_FAILED.search(str(error)) is not None)


@contextlib.contextmanager
def memory_errors(device):
    """A lack of memory on ``device`` in the block as :class:`OutOfMemory`, one line; the
    error it replaces loses its frames, which hold the failed block's tensors."""
    try:
        yield
    except (MemoryError, RuntimeError) as e:
        if not out_of_memory(e):
            raise
        detail = first_line(e)
        detail = detail[max(detail.find("DefaultCPUAllocator"), 0):]  # not its source line
        e.with_traceback(None)
        raise OutOfMemory(f"not enough memory on {memory_of(device)} to train ({detail}); "
                          "try a smaller network or batch_size", ("batch_size",)) from None


def memory_of(device):
    """The memory of ``device``, as a message names it."""
    return "the CPU" if device.type == "cpu" else f"the GPU ({device})"


def memory_available(device):
    """Bytes that training may still take on ``device``: what a GPU has free, or on the CPU
    :func:`cpu_memory_available`; None where it cannot be told."""
    if device.type == "cuda":
        import torch

        return torch.cuda.mem_get_info(device)[0]
    return cpu_memory_available()


# A memory cgroup's files, v2 and v1 (its mount and its limit), and the count of memory.stat
# that it cannot give back (page cache it can, under pressure).
CGROUPS = {"": ("sys/fs/cgroup", "memory.max", "anon"),
           "memory": ("sys/fs/cgroup/memory", "memory.limit_in_bytes", "total_rss")}


def cpu_memory_available(root=Path("/")):
    """Bytes this process may still allocate: MemAvailable of /proc/meminfo, or less where its
    memory cgroup (a batch job's, a container's) leaves less: its limit less the memory in it
    that cannot be given back. None where neither can be read. ``root``: where /proc and /sys
    are (tests give their own)."""
    room = [_fields(root / "proc/meminfo").get("MemAvailable:")]
    for line in _text(root / "proc/self/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        kind = "" if not controllers else "memory" if "memory" in controllers.split(",") else None
        if kind is None:
            continue
        mount, limit_file, held = CGROUPS[kind]
        # Seen from inside a container the mount may be the cgroup itself, not its parent.
        folder = root / mount / path.lstrip("/")
        folder = folder if folder.is_dir() else root / mount
        limit = _text(folder / limit_file).strip()
        if limit.isdigit():
            room.append(int(limit) - _fields(folder / "memory.stat").get(held, 0))
    room = [r for r in room if r is not None]
    return max(min(room), 0) if room else None


def _text(path):
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return ""


def _fields(path):
    """The ``name value [kB]`` lines of a /proc or cgroup file as {name: bytes}."""
    found = {}
    for line in _text(path).splitlines():
        words = line.split()
        if len(words) >= 2 and words[1].isdigit():
            found[words[0]] = int(words[1]) * (1024 if words[2:] == ["kB"] else 1)
    return found


SMALL_MATMUL = 2 ** 22  # multiply-adds of a step's largest product below which one thread wins
TRIAL_SECONDS = 0.05  # timed work per thread count in a trial
RECHECK_SECONDS = 5.0  # at least this long between trials
RECHECK_RATIO = 20  # and at least this many times as long as the last trial took
MARGIN = 0.9  # another count must take less than this share of the current one's time


def cpu_budget(environ=None, affinity=None):
    """How many CPUs this process may use: those its affinity mask allows (a batch system's
    cpuset, ``taskset``), fewer if ``SLURM_CPUS_PER_TASK`` or ``OMP_NUM_THREADS`` say so.
    Torch's own default counts the machine's cores, however many of them this job was given."""
    environ = os.environ if environ is None else environ
    affinity = affinity or getattr(os, "sched_getaffinity", None)
    budget = len(affinity(0)) if affinity else os.cpu_count() or 1
    for name in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        first = environ.get(name, "").split(",")[0].strip()  # OMP_NUM_THREADS may list levels
        if first.isdigit() and int(first) > 0:
            budget = min(budget, int(first))
    return max(budget, 1)


def thread_ladder(budget):
    """The thread counts worth trying: all CPUs, then halving down to one."""
    counts = [budget]
    while counts[-1] > 1:
        counts.append(counts[-1] // 2)
    return counts


class ThreadChooser:
    """Picks the CPU thread count by timing the work itself, and keeps checking.

    Torch's threads wait for each other at every operation that shares its work out, and they
    wait spinning: when another process holds one of the CPUs, each such operation lasts until
    the descheduled thread gets its turn again, and a run with all threads goes many times
    slower than one with fewer. No reading of the machine's load tells beforehand which count
    wins (the neighbour may come later, or sleep often), and no wait policy of the OpenMP
    runtime (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``, read once when torch loads) is both fast
    alone and safe beside a neighbour. So the counts of :func:`thread_ladder` take turns: each
    runs for ``TRIAL_SECONDS`` of work (the first time after one untimed unit, while its threads
    start), and the fastest per row is kept unless the current count is within ``MARGIN`` of it
    (noise must not toggle the count, which can change results in the last bits). The trial
    comes back after ``RECHECK_SECONDS``, or ``RECHECK_RATIO`` times the trial's length if that
    is longer, so that trials cost little however long a unit of work takes.

    Use: ``with chooser.in_use():`` around the work (sets the count, restores the caller's),
    and ``with chooser.timing(rows):`` around each unit of it. ``clock`` (the wall clock) and
    ``apply`` (``torch.set_num_threads``) can be replaced, for tests."""

    def __init__(self, counts, clock=time.perf_counter, apply=None):
        self.counts, self.clock, self._apply = list(counts), clock, apply
        self.current = self.counts[0]
        self._queue = list(self.counts) if len(self.counts) > 1 else []
        self._trial_start = self._next_trial = None
        self._seconds, self._work, self._measured, self._warm = 0.0, 0, {}, set()
        self._started = self._rows = None

    @classmethod
    def fixed(cls, threads, apply=None):
        return cls([threads], apply=apply)

    @contextlib.contextmanager
    def in_use(self):
        import torch

        before = torch.get_num_threads()
        self._set(self._queue[0] if self._queue else self.current)
        try:
            yield self
        finally:
            torch.set_num_threads(before)

    def timing(self, rows):
        self._rows = rows
        return self

    def __enter__(self):
        self._started = self.clock()

    def __exit__(self, kind, *_):
        if kind is None:
            self.record(self.clock() - self._started, self._rows)

    def record(self, seconds, rows):
        """One unit of ``rows`` took ``seconds`` at the count in use: moves the trial on."""
        if not self._queue:
            if self._next_trial is not None and self.clock() >= self._next_trial:
                # The current count first: it runs on without a change.
                self._queue = [self.current] + [c for c in self.counts if c != self.current]
            return
        if self._trial_start is None:
            self._trial_start = self.clock() - seconds
        if self._queue[0] not in self._warm:  # the first unit at a count starts its threads
            self._warm.add(self._queue[0])
            return
        self._seconds, self._work = self._seconds + seconds, self._work + rows
        if self._seconds >= TRIAL_SECONDS:
            self._measured[self._queue.pop(0)] = self._seconds / max(self._work, 1)
            self._seconds, self._work = 0.0, 0
            if self._queue:
                self._set(self._queue[0])
            else:
                self._decide()

    def _decide(self):
        best = min(self._measured, key=self._measured.get)
        if self._measured[best] < MARGIN * self._measured.get(self.current, float("inf")):
            self.current = best
        self._set(self.current)
        took = self.clock() - self._trial_start
        self._next_trial = self.clock() + max(RECHECK_SECONDS, RECHECK_RATIO * took)
        self._trial_start, self._measured = None, {}

    def _set(self, threads):
        if self._apply:
            self._apply(threads)
        else:
            import torch

            torch.set_num_threads(threads)


def training_threads(config, products, device, alone=True):
    """The CPU threads for training: as asked (``threads``), else one for small networks, whose
    matrix products (``products``: multiply-adds of one row in each,
    :func:`fcnn_cli.network.embedding.products`) are too small to share out, else chosen by
    timing among the CPUs this process may use (:class:`ThreadChooser`). Timing is left out on
    a GPU and when several processes train together (each step then waits for the others)."""
    if config.threads:
        return ThreadChooser.fixed(config.threads)
    largest = config.batch_size * max(products)
    if device.type == "cpu" and largest < SMALL_MATMUL:
        return ThreadChooser.fixed(1)
    budget = cpu_budget()
    if device.type != "cpu" or not alone:
        return ThreadChooser.fixed(budget)
    return ThreadChooser(thread_ladder(budget))


def inference_threads(device):
    """The CPU threads for predict and evaluate: chosen by timing on the CPU, as for training."""
    budget = cpu_budget()
    return ThreadChooser(thread_ladder(budget) if device.type == "cpu" else [budget])
