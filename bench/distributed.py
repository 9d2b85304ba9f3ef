"""Several processes on the CPU: training throughput of one process with two threads against
two processes (torchrun, gloo) with one thread each, and what the all-reduce of the gradients
costs a step.

Run it alone: another busy process skews every figure. On a machine with two cores the two
processes share the same two cores the one process has, so this measures the cost of the
machinery, not a speed-up that more cores or nodes would give. The run's dated record goes to
bench/results/.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import record
from fcnn_cli.data import simulate
from fcnn_cli.data.writer import write_table

ROWS = 100_000
CASES = [(3, 64, 32), (3, 64, 256), (6, 512, 1024)]  # depth, width, batch
EPOCHS = 2


def train(data, out, depth, width, batch, nproc):
    """Samples per second of the last epoch (the first warms up), from the run's history."""
    args = ["train", str(data), "--depth", str(depth), "--width", str(width), "--batch-size",
            str(batch), "--epochs", str(EPOCHS), "-q", "-o", str(out), "--force"]
    if nproc == 1:
        command = [sys.executable, "-m", "fcnn_cli", *args, "--threads", "2"]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc-per-node", str(nproc), "-m", "fcnn_cli", *args, "--threads", "1"]
    subprocess.run(command, check=True, capture_output=True)
    history = (out / "history.csv").read_text().splitlines()
    seconds = float(history[-1].split(",")[-1])
    rows = json.loads((out / "config.json").read_text())["sizes"]["train"]
    return rows / seconds


def allreduce_cost(sizes, steps=300):
    """Median seconds of one all-reduce of a flat float32 tensor of each size, 2 processes."""
    script = f"""
import json, os, statistics, time, torch, torch.distributed as dist
dist.init_process_group("gloo")
torch.set_num_threads(1)
out = {{}}
for n in {sizes!r}:
    t = torch.ones(n)
    for _ in range(20):
        dist.all_reduce(t)
    times = []
    for _ in range({steps}):
        start = time.perf_counter()
        dist.all_reduce(t)
        times.append(time.perf_counter() - start)
    out[n] = statistics.median(times)
if dist.get_rank() == 0:
    print(json.dumps(out))
dist.destroy_process_group()
"""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                               "--nproc-per-node", "2", f.name], check=True,
                              capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    return {int(n): t for n, t in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def step_time(depth, width, batch, n_in=8, steps=300):
    """Median seconds of one fast-path training step on one thread, for comparison."""
    from fcnn_cli.engine import fastpath
    from fcnn_cli.network import tasks
    from fcnn_cli.network.model import MLP, NetConfig

    torch.set_num_threads(1)
    model = MLP(NetConfig(n_in=n_in, n_out=2, depth=depth, width=width))
    task = tasks.Regression(["x", "y"], None)
    step = fastpath.FastStep(model, task)
    optimizer = torch.optim.Adam([step.flat], fused=True)
    x, y = torch.randn(batch, n_in), torch.randn(batch, 2)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(x, y, optimizer)
        times.append(time.perf_counter() - start)
    return statistics.median(times[20:]), step.flat.numel()


def main():
    console = Console(width=120)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "quakes.parquet"
        write_table(simulate.earthquakes(n=ROWS, seed=0), data)
        speed = Table(title=f"Training throughput, {ROWS:,} earthquakes, samples/s of epoch "
                            f"{EPOCHS} (CPU, {os.cpu_count()} cores)")
        for column in ("network", "batch (global)", "1 process × 2 threads",
                       "2 processes × 1 thread", "ratio"):
            speed.add_column(column, justify="right")
        measured = []
        for depth, width, batch in CASES:
            one = train(data, tmp / "one", depth, width, batch, 1)
            two = train(data, tmp / "two", depth, width, batch, 2)
            measured.append((f"{depth} × {width}", batch, one, two, two / one))
            speed.add_row(f"{depth} × {width}", str(batch), f"{one:,.0f}", f"{two:,.0f}",
                          f"{two / one:.2f}×")
        console.print(speed)

    costs = Table(title="All-reduce of the flat gradient (2 processes, gloo) against one step")
    for column in ("network", "batch per process", "parameters", "step (1 thread)",
                   "all-reduce", "all-reduce / step"):
        costs.add_column(column, justify="right")
    shapes = [(3, 64, 16), (6, 512, 512)]
    steps = {shape: step_time(*shape) for shape in shapes}
    reduce = allreduce_cost(sorted({n for _, n in steps.values()}))
    shares = []
    for (depth, width, batch), (seconds, n) in steps.items():
        shares.append((f"{depth} × {width}", batch, n, seconds, reduce[n], reduce[n] / seconds))
        costs.add_row(f"{depth} × {width}", str(batch), f"{n:,}", f"{seconds * 1e6:.0f} µs",
                      f"{reduce[n] * 1e6:.0f} µs", f"{reduce[n] / seconds:.2f}")
    console.print(costs)
    record.write("distributed", [
        record.table(speed.title, ("network", "global batch", "1 process × 2 threads (samples/s)",
                                   "2 processes × 1 thread (samples/s)", "ratio"), measured),
        record.table(costs.title, ("network", "batch per process", "parameters",
                                   "step, 1 thread (s)", "all-reduce (s)", "all-reduce / step"),
                     shares)])


if __name__ == "__main__":
    main()
