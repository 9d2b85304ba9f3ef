"""Peak resident memory and training throughput, in memory against streamed (--stream), on
earthquake tables of growing length; and the test mean distance of both on the default
earthquakes, scored on the same fresh test table.

Each case runs in a process of its own, which reports its own peak resident set size, so
that every figure is that case's alone. A case reads and prepares the table as `fcnn train`
does and trains until a fixed number of samples has passed; samples per second are timed from
the end of the first step (after reading, the scaler pass, the permutation or the shuffle
buffer's filling) to the last. The tables are written to a temporary directory and deleted
after. Run it alone: another busy process skews every figure. The run's dated record goes to
bench/results/.

    python bench/memory.py                       # 1 M, 10 M and 50 M rows (long)
    python bench/memory.py --rows 100000 --samples 20000 --quality-rows 3000 --epochs 2
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

import record

CASE = """
import json, resource, sys, time
from fcnn_cli.data import sources
from fcnn_cli.engine import train
from fcnn_cli.data.tables import read_table

path, streamed, batch, samples = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])

class Steps:
    '''Asked once a step: times the steps after the first, and stops after enough of them.'''
    def __init__(self, steps):
        self.steps, self.done, self.start = steps, 0, None
    def polling(self):
        import contextlib
        return contextlib.nullcontext()
    def requested(self):
        self.done += 1
        if self.done == 1:
            self.start = time.perf_counter()
        elif self.done > self.steps:
            self.seconds = time.perf_counter() - self.start
            return True
        return False
    def agree(self, code):
        pass

stop = Steps(max(2, samples // batch))
tables = [sources.open_source(path) if streamed else read_table(path, narrow=())]
config = train.TrainConfig(epochs=1, batch_size=batch, stream=streamed, threads=2)
try:
    train.fit(tables.pop(), config, stop=stop, consume=True)  # handed over, as by the command line
except KeyboardInterrupt:
    pass
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak": peak, "rate": stop.steps * batch / stop.seconds
                  if hasattr(stop, "seconds") else None}))
"""


def fcnn(*args):
    subprocess.run([sys.executable, "-m", "fcnn_cli", *map(str, args)], check=True,
                   capture_output=True)


def case(path, streamed, batch, samples):
    """(peak resident bytes, samples per second) of one case, or None where it failed (too
    little memory, say)."""
    done = subprocess.run([sys.executable, "-c", CASE, str(path), str(int(streamed)), str(batch),
                           str(samples)], capture_output=True, text=True)
    if done.returncode:
        return None, done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return (result["peak"], result["rate"]), None


def scaling(rows_list, batches, samples, tmp, console):
    table = Table(title="Peak memory and throughput of train, in memory and streamed")
    for column in ("rows", "batch", "in memory: peak", "streamed: peak", "in memory: samples/s",
                   "streamed: samples/s", "streamed / in memory"):
        table.add_column(column, justify="right")
    for rows in rows_list:
        path = Path(tmp) / f"quakes-{rows}.parquet"
        fcnn("simulate", "earthquakes", "-n", rows, "-o", path)
        for batch in batches:
            figures = []
            for streamed in (False, True):
                got, error = case(path, streamed, batch, samples)
                if error:
                    console.print(f"{rows} rows, batch {batch}, "
                                  f"{'streamed' if streamed else 'in memory'}: {error[0]}")
                figures.append(got)
            (mem, mem_rate), (st, st_rate) = (f or (None, None) for f in figures)
            table.add_row(f"{rows:,}", str(batch), _gb(mem), _gb(st), _rate(mem_rate),
                          _rate(st_rate), f"{st_rate / mem_rate:.0%}" if mem_rate and st_rate
                          else "–")
        path.unlink()
    console.print(table)
    return table


def quality(rows, epochs, tmp, console):
    """Test mean distance of `fcnn train` in memory and --stream, both scored with `fcnn
    evaluate` on one fresh test table."""
    data, test = Path(tmp) / "quakes.parquet", Path(tmp) / "test.parquet"
    fcnn("simulate", "earthquakes", *(("-n", rows) if rows else ()), "-o", data)
    fcnn("simulate", "earthquakes", "-n", 20000, "--seed", 1, "-o", test)
    table = Table(title=f"Test mean distance on {test.name} (20 000 fresh events)")
    for column in ("training", "mean distance (km)"):
        table.add_column(column, justify="right")
    for label, extra in (("in memory", ()), ("streamed", ("--stream",))):
        run = Path(tmp) / label.replace(" ", "-")
        fcnn("train", data, "-o", run, "-q", *(("--epochs", epochs) if epochs else ()), *extra)
        report = subprocess.run([sys.executable, "-m", "fcnn_cli", "evaluate",
                                 run / "model.pt", test, "--json"], check=True,
                                capture_output=True, text=True).stdout
        table.add_row(label, f"{json.loads(report)['distance']['mean']:.3f}")
    console.print(table)
    return table


def _gb(size):
    return f"{size / 1e9:.2f} GB" if size else "–"


def _rate(rate):
    return f"{rate:,.0f}" if rate else "–"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1000000,10000000,50000000",
                        help="table lengths, comma-separated")
    parser.add_argument("--batch", default="32,1024", help="batch sizes, comma-separated")
    parser.add_argument("--samples", type=int, default=300_000,
                        help="samples timed in each case")
    parser.add_argument("--quality-rows", type=int, default=0,
                        help="rows of the quality table (0: simulate's default)")
    parser.add_argument("--epochs", type=int, default=0,
                        help="epochs of the quality runs (0: train's default)")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="fcnn-bench-memory-") as tmp:
        printed = [scaling([int(r) for r in args.rows.split(",")],
                           [int(b) for b in args.batch.split(",")], args.samples, tmp, console),
                   quality(args.quality_rows, args.epochs, tmp, console)]
    record.write("memory", [record.printed(table) for table in printed])


if __name__ == "__main__":
    main()
