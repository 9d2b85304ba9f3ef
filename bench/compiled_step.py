"""Does ``torch.compile`` of the training step pay on the CPU? fcnn's autograd-free step
(:mod:`fcnn_cli.engine.fastpath`) beside the same arithmetic — forward, loss, backward — written
as a plain function and compiled by inductor (its C++ wrapper, then without), in one run.

    python bench/compiled_step.py [--batch 32] [--no-record]

Prints the seconds a step's gradients take each way, what compiling costs (importing the
compiler stack, then compiling), and after how many steps compiling would pay for itself;
records the run in bench/results/ (bench/record.py).
"""

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
from rich.console import Console
from rich.table import Table

import record
from fcnn_cli.data import simulate
from fcnn_cli.engine import loop, prepare, state as training_state, train


def default_state(batch):
    """The default network's training state on 20 000 earthquakes, and 64 minibatches of its
    training rows (taken round again where they are fewer)."""
    table = simulate.earthquakes(n=20_000, seed=0)
    config = train.TrainConfig(batch_size=batch, ensemble=1)
    prepared = prepare.prepare(table, config)
    cpu = torch.device("cpu")
    state = training_state.build(prepared, config, None, 0.0, cpu)
    rows = loop.Tensors.of(prepared, cpu)
    starts = [(k * batch) % (len(rows.x) - batch + 1) for k in range(64)]
    return state, [(rows.x[i:i + batch], rows.y[i:i + batch]) for i in starts]


def gradients(weights, x, y):
    """The loss and the gradients of a plain network of SiLU layers under the squared error:
    what fcnn's step computes, as operations a compiler can fuse."""
    h, saved = x, []
    for w, b in zip(weights[:-2:2], weights[1:-2:2]):
        z = torch.addmm(b, h, w.t())
        saved.append((h, z, w))
        h = torch.nn.functional.silu(z)
    diff = torch.addmm(weights[-1], h, weights[-2].t()) - y
    loss = (diff * diff).sum() / len(x)
    g = diff * (2.0 / len(x))
    grads = [g.t() @ h, g.sum(0)]
    g = g @ weights[-2]
    for k in range(len(saved) - 1, -1, -1):
        h, z, w = saved[k]
        s = torch.sigmoid(z)
        gz = g * s * (1 + z * (1 - s))
        grads = [gz.t() @ h, gz.sum(0), *grads]
        g = gz @ w if k else None
    return loss, grads


def per_step(step, batches, steps=3000, repeat=5):
    """Best of ``repeat`` runs: seconds per step."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for k in range(steps):
            step(*batches[k % len(batches)])
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def compiled(weights, batches, cpp_wrapper):
    """In this process, with the inductor cache of the environment: (seconds to import the
    compiler stack and to compile, seconds per step, largest difference from the eager
    gradients)."""
    start = time.perf_counter()
    importlib.import_module("torch._dynamo")
    inductor = importlib.import_module("torch._inductor.config")
    inductor.cpp_wrapper = cpp_wrapper
    step = torch.compile(gradients, dynamic=False)
    step(weights, *batches[0])
    seconds = time.perf_counter() - start
    x, y = batches[1]
    difference = max(float((a - b).abs().max()) for a, b in
                     zip(step(weights, x, y)[1], gradients(weights, x, y)[1]))
    return seconds, per_step(lambda x, y: step(weights, x, y), batches), difference


def in_fresh_processes(batch, cpp_wrapper):
    """:func:`compiled` in a new process with an empty cache, then in another one with the
    cache the first filled, as two runs of fcnn would meet it: ((cold, cached) seconds to
    compile, the second's seconds per step, its difference)."""
    runs = []
    with tempfile.TemporaryDirectory() as cache:
        for _ in ("cold", "cached"):
            done = subprocess.run(
                [sys.executable, __file__, "--batch", str(batch), "--one",
                 "cpp" if cpp_wrapper else "python"], capture_output=True, text=True,
                check=True, env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache})
            runs.append(json.loads(done.stdout.splitlines()[-1]))
    return (runs[0]["compile"], runs[1]["compile"]), runs[1]["step"], runs[1]["difference"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--one", choices=("cpp", "python"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)  # fcnn's count for a network this small
    state, batches = default_state(args.batch)
    weights = [p.detach() for p in state.model.parameters()]
    if args.one:  # one compiled way, in a process of its own: its figures as JSON
        seconds, step, difference = compiled(weights, batches, args.one == "cpp")
        print(json.dumps({"compile": seconds, "step": step, "difference": difference}))
        return
    fcnn = per_step(state.fast.gradients, batches)
    plain = per_step(lambda x, y: gradients(weights, x, y), batches)
    out = Table(title=f"the step's gradients, batch {args.batch}, one thread: µs a step; "
                "seconds to import the compiler and compile, with an empty cache and with it "
                "filled, each in a new process; steps to pay")
    columns = ("way", "µs", "cold (s)", "cached (s)", "pays after", "max |Δ|")
    for column in columns:
        out.add_column(column)
    rows = [("fcnn, autograd-free", fcnn * 1e6, None, None, None, None),
            ("plain function", plain * 1e6, None, None, None, None)]
    for name, wrapper in (("compiled, C++ wrapper", True), ("compiled, Python wrapper", False)):
        (cold, warm), step, difference = in_fresh_processes(args.batch, wrapper)
        pays = warm / (fcnn - step) if step < fcnn else None
        rows.append((name, step * 1e6, cold, warm, pays, difference))
    for row in rows:
        out.add_row(*("" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)
                      for v in row))
    Console().print(out)
    print("'pays after': the cached compile's seconds over the seconds a step saves; none: "
          "never")
    if not args.no_record:
        record.write("compiled_step", [record.table(
            out.title, ("way", "us", "compile_cold_s", "compile_cached_s", "pays_after_steps",
                        "max_difference"), rows)])


if __name__ == "__main__":
    main()
