"""fcnn on a GPU against the same machine's CPU and a hand-written GPU loop, in one run.

    PYTHONPATH=. python3 bench/gpu.py [--json FILE]   # on a machine with a CUDA GPU: ≤ 4 min
    PYTHONPATH=. python3 bench/gpu.py --tiny          # a dry run anywhere, tiny sizes, the CPU
                                                      # standing in for the GPU

Prints one table: training speed (samples/s after the first epoch) of fcnn on cuda, fcnn on the
CPU and a hand-written GPU loop (tensors on the GPU, a slice of a shuffled copy per minibatch,
autograd, fused Adam) at 3 × 64, batch 32 and 6 × 512, batch 1024 (the latter in each
precision); which device ``--device auto`` takes for each case beside the one measured faster;
8 members of 3 × 64 at batch 32 in one vectorised pass against 8 runs (the speed-up, on the GPU
and on the CPU); the default earthquake training to 70 m and as whole commands; predict's rows/s
on 5 M rows;
and the accuracy of each precision on the earthquakes and the galaxies. A case that fails says
so in its cell and the rest still run. Without a GPU (and without --tiny) it says so and exits.
A full run writes its dated record to bench/results/.
"""

import argparse
import functools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import record

FULL = {"fast_rows": 200_000, "wide_rows": 200_000, "wide_cpu_rows": 20_000, "epochs": 3,
        "hand_steps": 1500, "wide_hand_steps": 300, "quakes": 20_000, "predict_rows": 5_000_000,
        "predict_cpu_rows": 500_000, "accuracy_quakes": 20_000, "accuracy_galaxies": 6_000,
        "accuracy_epochs": 15, "ensemble_rows": 50_000}
TINY = {"fast_rows": 3_000, "wide_rows": 3_000, "wide_cpu_rows": 2_000, "epochs": 2,
        "hand_steps": 40, "wide_hand_steps": 6, "quakes": 2_000, "predict_rows": 50_000,
        "predict_cpu_rows": 5_000, "accuracy_quakes": 2_000, "accuracy_galaxies": 300,
        "accuracy_epochs": 2, "ensemble_rows": 1_000}
TARGET_KM = 0.070
WARM_STEPS = 20  # hand-written loop steps not timed (cuBLAS set-up, the allocator)
HEADER = ("measure", "fcnn cuda", "fcnn cpu", "hand GPU loop", "cuda speed-up over cpu",
          "over hand", "auto takes", "faster")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true",
                        help="tiny sizes, the CPU in place of the GPU: checks the script runs")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args()
    import torch

    if not args.tiny and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA GPU here, nothing to measure (--tiny runs a dry run on the "
              "CPU)", file=sys.stderr)
        return 0
    sizes, gpu = (TINY, "cpu") if args.tiny else (FULL, "cuda")
    started = time.perf_counter()
    bench = Bench(sizes, gpu)
    try:
        rows = bench.run()
    finally:
        shutil.rmtree(bench.tmp, ignore_errors=True)
    print_table(rows, bench.title(time.perf_counter() - started))
    if not args.tiny:  # a dry run checks the script; its figures are no record
        record.write("gpu", [record.table(bench.title(time.perf_counter() - started), HEADER,
                                          rows)])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"title": bench.title(time.perf_counter() - started), "header": HEADER,
                       "rows": rows}, f, indent=2)
    return 0


class Bench:
    def __init__(self, sizes, gpu):
        self.sizes, self.gpu = sizes, gpu
        self.tmp = tempfile.mkdtemp(prefix="fcnn-gpu-bench-")
        self.models = {}

    def title(self, seconds):
        import torch

        where = torch.cuda.get_device_name() if self.gpu == "cuda" else \
            "dry run: the CPU stands in for the GPU"
        return (f"{where}; {os.cpu_count()} CPU cores; torch {torch.__version__}; "
                f"{seconds:.0f} s in all")

    def run(self):
        rows = []
        for section in (self.speed, self.ensemble, self.to_target, self.predict,
                        self.accuracy):
            for row in section():
                rows.append(row)
                print("  ".join(str(c) for c in row), file=sys.stderr, flush=True)
        return rows

    # -- training speed -------------------------------------------------------------------
    def speed(self):
        s = self.sizes
        yield self._speed_row("3 × 64, batch 32", 64, 3, 32, s["fast_rows"], s["fast_rows"],
                              s["hand_steps"])
        for precision in ("fp32", "tf32", "bf16"):
            yield self._speed_row(f"6 × 512, batch 1024, {precision}", 512, 6, 1024,
                                  s["wide_rows"], s["wide_cpu_rows"], s["wide_hand_steps"],
                                  precision)

    def _speed_row(self, name, width, depth, batch, rows, cpu_rows, hand_steps,
                   precision="fp32"):
        from fcnn_cli.core.config import NetConfig
        from fcnn_cli.machine.devices import prefers_cuda, step_work
        from fcnn_cli.network.embedding import products

        model = os.path.join(self.tmp, f"{width}-{precision}.pt")
        cuda = attempt(fcnn_rate, quakes(rows), self.gpu, width, depth, batch,
                       self.sizes["epochs"], precision, model)
        if os.path.exists(model):
            self.models[width, precision] = model
        cpu = attempt(fcnn_rate, quakes(cpu_rows), "cpu", width, depth, batch,
                      self.sizes["epochs"], "fp32") if precision == "fp32" else None
        hand = attempt(hand_rate, quakes(rows), self.gpu, width, depth, batch, hand_steps,
                       precision)
        steps = 60 * math.ceil(rows / batch)  # the case's rows, 60 epochs as by default
        net = NetConfig(n_in=8, n_out=2, width=width, depth=depth)
        auto = "cuda" if prefers_cuda(step_work(batch, products(net)), steps) else "cpu"
        return [f"train {name} (samples/s)", rate(cuda), rate(cpu), rate(hand),
                ratio(cuda, cpu), ratio(cuda, hand), auto, faster(cuda, cpu)]

    # -- ensembles ------------------------------------------------------------------------
    def ensemble(self):
        """8 members of 3 × 64 at batch 32 in one vectorised pass against 8 runs one after
        another, on the GPU and on the CPU: the speed-up of the pass (seconds of training)."""
        rows = self.sizes["ensemble_rows"]
        cuda, cpu = (attempt(ensemble_speedup, quakes(rows), device, self.sizes["epochs"])
                     for device in (self.gpu, "cpu"))
        yield ["--ensemble 8 over 8 runs, 3 × 64, batch 32 (speed-up)", ratio_text(cuda),
               ratio_text(cpu), "—", "—", "—", "—", "—"]

    # -- the default training -------------------------------------------------------------
    def to_target(self):
        """The default earthquake run: seconds of training until the validation mean distance
        is 70 m, and whole commands (torch's import included), auto among them."""
        path = os.path.join(self.tmp, "quakes.parquet")
        from fcnn_cli.data.writer import write_table

        write_table(quakes(self.sizes["quakes"]), path)
        cuda, cpu = (attempt(seconds_to_target, path, d) for d in (self.gpu, "cpu"))
        yield ["default train: seconds to 70 m (epochs)", cuda, cpu, "—", ratio(cpu, cuda),
               "—", "—", faster(cpu, cuda, lower=True)]
        # keyed by column: in a dry run the CPU stands in for the GPU under its own name
        runs = {column: attempt(train_command, path, device,
                                os.path.join(self.tmp, f"run-{column}"))
                for column, device in (("gpu", self.gpu), ("cpu", "cpu"), ("auto", "auto"))}
        yield ["default train: whole command, s (test distance m)", runs["gpu"], runs["cpu"],
               "—", ratio(runs["cpu"], runs["gpu"]), "—", f"auto: {runs['auto']}",
               faster(runs["cpu"], runs["gpu"], lower=True)]

    # -- predict --------------------------------------------------------------------------
    def predict(self):
        """Rows/s of predict with the 6 × 512 network: the arithmetic path in memory (scale,
        copy, compute, copy back) after a warm-up, and the whole command to Parquet with its
        start-up (a one-row predict) taken off."""
        model = self.models.get((512, "fp32"))
        if not isinstance(model, str):
            yield ["predict: no 6 × 512 model was trained"] + ["—"] * 7
            return
        n, n_cpu = self.sizes["predict_rows"], self.sizes["predict_cpu_rows"]
        table = quakes(n, seed=7)
        gpu = attempt(predict_rate, model, table, self.gpu)
        cpu = attempt(predict_rate, model, quakes(n_cpu, seed=7), "cpu")
        yield [f"predict {n:,} rows in memory (rows/s; cpu: {n_cpu:,})", rate(gpu), rate(cpu),
               "—", ratio(gpu, cpu), "—", "cuda", faster(gpu, cpu)]
        from fcnn_cli.data.writer import write_table

        data, one = os.path.join(self.tmp, "many.parquet"), os.path.join(self.tmp, "one.csv")
        write_table(table, data)
        write_table(quakes(1, seed=8), one)
        whole = attempt(predict_command, model, data, one, n, self.gpu, self.tmp)
        yield [f"predict {n:,} rows, whole command to Parquet: rows/s less start-up (s)",
               whole, "—", "—", "—", "—", "cuda", "—"]

    # -- precision ------------------------------------------------------------------------
    def accuracy(self):
        """Each precision on a wide network, short runs: the test mean distance on the
        earthquakes, the test accuracy on the galaxies (the CPU in fp32 for reference)."""
        from fcnn_cli.data import simulate

        s = self.sizes
        sets = {"earthquakes": (quakes(s["accuracy_quakes"], seed=3), "distance (m)"),
                "galaxies": (simulate.galaxies(n=s["accuracy_galaxies"], seed=3),
                             "accuracy (%)")}
        for name, (table, what) in sets.items():
            reference = attempt(accuracy_of, table, "cpu", "fp32", s["accuracy_epochs"])
            for precision in ("fp32", "tf32", "bf16"):
                got = attempt(accuracy_of, table, self.gpu, precision, s["accuracy_epochs"])
                yield [f"{name} 4 × 256, batch 256, {precision}: test {what}, s", got,
                       reference if precision == "fp32" else "—"] + ["—"] * 5


@functools.lru_cache(maxsize=8)
def quakes(n, seed=0):
    from fcnn_cli.data import simulate

    return simulate.earthquakes(n=n, seed=seed)


def attempt(function, *args, **kwargs):
    """``function``'s result, or the error it raised as the cell's text (its traceback to
    stderr): one failing case must not cost the others."""
    try:
        return function(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - reported, and the bench goes on
        traceback.print_exc()
        return f"error: {type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}"


def fcnn_rate(table, device, width, depth, batch, epochs, precision, save_to=None):
    """fcnn's training samples/s, from the fastest epoch after the first (which holds the
    set-up and, on a GPU, the graph's capture); the model saved to ``save_to``."""
    from fcnn_cli.network import checkpoint
    from fcnn_cli.engine import train

    config = train.TrainConfig(epochs=epochs, batch_size=batch, device=device, val_frac=0.01,
                               test_frac=0.0, precision=precision)
    result = train.fit(table, config, net=dict(width=width, depth=depth))
    if save_to:
        checkpoint.save(result.predictor, save_to)
    seconds = min(row["seconds"] for row in result.history[1:] or result.history)
    return result.sizes["train"] / seconds


def ensemble_speedup(table, device, epochs, members=8):
    """Seconds of 8 single runs over the seconds of one ``--ensemble 8`` run, training alone
    (the first epoch, which holds the set-up and a graph's capture, left out of both)."""
    from fcnn_cli.engine import train

    def seconds(**options):
        config = train.TrainConfig(epochs=epochs, batch_size=32, device=device, val_frac=0.01,
                                   test_frac=0.0, **options)
        history = train.fit(table, config, net=dict(width=64, depth=3)).history
        return sum(row["seconds"] for row in history[1:])
    together = seconds(ensemble=members)
    return sum(seconds(seed=k) for k in range(members)) / together


def ratio_text(value):
    return f"{value:.2f}×" if isinstance(value, float) else value


def hand_rate(table, device, width, depth, batch, steps, precision):
    """The loop a user writes for a GPU: the data on the device, a shuffled copy each epoch
    sliced into minibatches, autograd, fused Adam; bf16 through autocast, tf32 by torch's
    switch."""
    import numpy as np
    import torch
    from torch import nn

    f = table.frame
    x = torch.from_numpy(f.drop(columns=["x", "y"]).to_numpy(np.float32, copy=True)).to(device)
    y = torch.from_numpy(f[["x", "y"]].to_numpy(np.float32, copy=True)).to(device)
    x, y = (x - x.mean(0)) / x.std(0), (y - y.mean(0)) / y.std(0)
    torch.manual_seed(0)
    layers, n = [], x.shape[1]
    for _ in range(depth):
        layers += [nn.Linear(n, width), nn.SiLU()]
        n = width
    net = nn.Sequential(*layers, nn.Linear(n, 2)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        return _hand_loop(net, opt, x, y, batch, steps, precision)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def _hand_loop(net, opt, x, y, batch, steps, precision):
    import torch

    device = x.device
    cast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    done, start = 0, None
    while done < steps + WARM_STEPS:
        perm = torch.randperm(len(x), device=device)
        xs, ys = x[perm], y[perm]
        for i in range(0, len(x) - batch + 1, batch):
            if done == WARM_STEPS:
                sync(device)
                start = time.perf_counter()
            with cast:
                out = net(xs[i:i + batch])
            loss = ((out.float() - ys[i:i + batch]) ** 2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == steps + WARM_STEPS:
                break
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds_to_target(path, device):
    """Training seconds of the default run until the validation mean distance is 70 m."""
    from fcnn_cli.engine import train
    from fcnn_cli.data.tables import read_table

    result = train.fit(read_table(path), train.TrainConfig(device=device))
    spent = 0.0
    for row in result.history:
        spent += row["seconds"]
        if row["val_mean_distance"] <= TARGET_KM:
            return f"{spent:.1f} ({row['epoch']})"
    return f"not in {spent:.1f}"


def train_command(path, device, run_dir):
    """Wall seconds of ``fcnn train DATA --device DEVICE``, its test distance, and (for auto)
    the device it recorded."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "fcnn_cli", "train", path, "--device", device, "-o",
               run_dir, "--force", "-q"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    with open(os.path.join(run_dir, "config.json")) as f:
        used = json.load(f)["device"]
    with open(os.path.join(run_dir, "metrics.json")) as f:
        distance = json.load(f)["test"]["distance"]["mean"] * 1000
    return f"{seconds:.1f} ({distance:.1f})" + (f" on {used}" if device == "auto" else "")


def predict_rate(model, table, device):
    from fcnn_cli.network import checkpoint

    predictor = checkpoint.load(model, device)
    x = predictor.feature_matrix(table)
    predictor.outputs(x[:100_000])  # warm-up: kernels, buffers
    start = time.perf_counter()
    predictor.outputs(x)
    return len(x) / (time.perf_counter() - start)


def predict_command(model, data, one, n, device, tmp):
    def wall(path):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fcnn_cli", "predict", model, path, "--device",
                        device, "-o", os.path.join(tmp, f"out-{device}.parquet")], check=True)
        return time.perf_counter() - start

    startup, total = wall(one), wall(data)
    return f"{n / max(total - startup, 1e-9) / 1e6:.2f} M ({total:.1f})"


def accuracy_of(table, device, precision, epochs):
    from fcnn_cli.engine import train

    config = train.TrainConfig(epochs=epochs, batch_size=256, device=device,
                               precision=precision)
    start = time.perf_counter()
    result = train.fit(table, config, net=dict(width=256, depth=4))
    seconds = time.perf_counter() - start
    test = result.metrics["test"]
    value = test["distance"]["mean"] * 1000 if "distance" in test else 100 * test["accuracy"]
    return f"{value:.2f}, {seconds:.1f}"


def number(cell):
    """The leading number of a cell, or None."""
    if isinstance(cell, (int, float)):
        return float(cell)
    try:
        return float(str(cell).split()[0].rstrip(","))
    except (ValueError, IndexError):
        return None


def rate(value):
    return f"{value:,.0f}" if isinstance(value, float) else "—" if value is None else value


def ratio(a, b):
    a, b = number(a), number(b)
    return f"{a / b:.2f}" if a and b else "—"


def faster(gpu, cpu, lower=False):
    """Which device measured faster (``lower``: the numbers are times)."""
    a, b = number(gpu), number(cpu)
    if not (a and b):
        return "—"
    return "cuda" if (a < b if lower else a > b) else "cpu"


def print_table(rows, title):
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in HEADER:
        table.add_column(name, justify="left" if name == "measure" else "right")
    for row in rows:
        table.add_row(*(rate(c) if isinstance(c, float) else str(c) for c in row))
    Console(width=200).print(table)


if __name__ == "__main__":
    sys.exit(main())
