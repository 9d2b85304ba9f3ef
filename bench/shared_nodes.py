"""On a shared node: fcnn's speed beside a busy neighbour, and two trainings at once, each
against the same case alone, measured side by side in one run.

    python bench/shared_nodes.py [--quick]

The neighbour is a process that spins on one CPU, started before a case and stopped after it.
The training cases are those of bench/speed.py (samples per second of training, start-up left
out) and one with larger products, where fcnn shares them out over several threads; predict
and evaluate are whole commands on a Parquet file, as there. Aims: beside the neighbour every
case keeps at least 45 % of its speed alone; two trainings started together each end within
2.2 times one alone. Prints one table, and (but with --quick) writes the run's dated record
to bench/results/.
"""

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time

from rich.console import Console
from rich.table import Table

import record

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def training_speed(rows, batch, epochs, arch, fast):
    """Samples per second of `train.fit` (run in a child process of its own)."""
    from fcnn_cli.data import simulate
    from fcnn_cli.engine import train

    table = simulate.earthquakes(n=rows, seed=0)
    result = train.fit(table, train.TrainConfig(epochs=epochs, batch_size=batch, val_frac=0.01,
                                                test_frac=0.0, fast=fast), net=dict(arch=arch))
    return result.sizes["train"] * epochs / sum(r["seconds"] for r in result.history)


def child(args):
    """Run in a fresh process, so that each case starts torch as a user's command does."""
    return subprocess.run([sys.executable, __file__, *map(str, args)], capture_output=True,
                          text=True, check=True, cwd=ROOT).stdout.split()[-1]


@contextlib.contextmanager
def neighbour(busy):
    """A process keeping one CPU busy while the block runs (none if not ``busy``)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    time.sleep(0.2 if busy else 0)  # let it take its CPU first
    try:
        yield
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()


def wall(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def fcnn(*args):
    return [sys.executable, "-m", "fcnn_cli", *map(str, args)]


def files(tmp, rows, stream_rows):
    """A training table and a model (trained quickly), and a larger table to apply it to."""
    from fcnn_cli.network import checkpoint
    from fcnn_cli.data import simulate
    from fcnn_cli.engine import train
    from fcnn_cli.data.writer import write_table

    data, big, model = (os.path.join(tmp, n) for n in ("train.parquet", "big.parquet",
                                                        "model.pt"))
    write_table(simulate.earthquakes(n=rows, seed=0), data)  # with the labels' names
    write_table(simulate.earthquakes(n=stream_rows, seed=1), big)
    checkpoint.save(train.fit(simulate.earthquakes(n=2000, seed=2),
                              train.TrainConfig(epochs=1)).predictor, model)
    return data, big, model


def side_by_side(quick):
    """[(case, alone, beside a busy neighbour, unit)]: each case alone, then at once again
    beside the neighbour, so that both see the machine alike."""
    epochs, big_epochs, rows, big_rows, stream_rows = (1, 1, 2_000, 20_000, 50_000) if quick \
        else (5, 2, 20_000, 200_000, 1_000_000)
    cases = [(f"train batch {b}{label}", ("train", r, b, e, arch, fast))
             for label, r, b, e, arch, fast in (
                 ("", rows, 32, epochs, "plain", 1),
                 ("", rows, 256, epochs, "plain", 1),
                 (", --arch resnet", rows, 32, epochs, "resnet", 1),
                 (", --arch resnet --no-fast", rows, 32, epochs, "resnet", 0),
                 (f", {big_rows:,} rows", big_rows, 1024, big_epochs, "plain", 1))]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        data, big, model = files(tmp, big_rows, stream_rows)
        for case, args in cases:
            speeds = []
            for busy in (False, True):
                with neighbour(busy):
                    speeds.append(float(child(args)))
            out.append((case, *speeds, "samples/s"))
        for name, args in (("predict", ("predict", model, big, "-o")),
                           ("evaluate", ("evaluate", model, big, "--json"))):
            speeds = []
            for busy in (False, True):
                output = (os.path.join(tmp, f"p{busy}.parquet"),) if name == "predict" else ()
                with neighbour(busy):
                    speeds.append(stream_rows / wall(fcnn(*args, *output)))
            out.append((f"{name} {stream_rows:,} Parquet rows (whole command)", *speeds,
                        "rows/s"))
        out.append(together(data, tmp, epochs))
    return out


def together(data, tmp, epochs):
    """Wall time of one `fcnn train` (batch 1024) alone, and the slower of two started at once."""
    def command(k):
        return fcnn("train", data, "--batch-size", 1024, "--epochs", epochs, "-q", "--force",
                    "-o", os.path.join(tmp, f"run{k}"))

    alone = wall(command(0))
    start = time.perf_counter()
    procs = [subprocess.Popen(command(k), cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for k in (1, 2)]
    ends = []
    for proc in procs:
        assert proc.wait() == 0
        ends.append(time.perf_counter() - start)
    return "two `fcnn train` at once (batch 1024): the later vs one alone", alone, max(ends), "s"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script")
    args = parser.parse_args()
    rows = side_by_side(args.quick)
    table = Table(title=f"fcnn on a shared node ({platform.machine()}, "
                        f"{len(os.sched_getaffinity(0))} CPUs; neighbour: one spinning process)")
    for col in ("case", "alone", "shared", "unit", "shared / alone"):
        table.add_column(col, justify="left" if col in ("case", "unit") else "right")
    for case, alone, shared, unit in rows:
        ratio = alone / shared if unit == "s" else shared / alone
        table.add_row(case, f"{alone:.4g}", f"{shared:.4g}", unit, f"{ratio:.0%}")
    Console(width=120).print(table)
    if not args.quick:  # a quick run checks the script; its figures are no record
        record.write("shared_nodes", [record.table(table.title, ("case", "alone", "shared",
                                                                 "unit"), rows)])
    print("aims: shared / alone ≥ 45 % beside the neighbour; for two at once ≥ 45 % "
          "(each within 2.2× one alone)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "train":
        rows, batch, epochs, arch, fast = sys.argv[2:]
        print(training_speed(int(rows), int(batch), int(epochs), arch, bool(int(fast))))
    else:
        main()
