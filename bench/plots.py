"""What the pictures and the bins cost, side by side in one run.

* drawing a run's plots (``plots.plot_run``, what the end of ``fcnn train`` adds) against the
  training itself, for the default earthquake run;
* ``evaluate`` of a stream of earthquake rows plain, with ``--by x`` (10 bins), with
  ``--by x --by y`` and with ``--plots``: seconds and the peak of traced Python memory
  (numpy's arrays included), which must grow with the rows only by the few bytes a row that
  the bins keep.

``python bench/plots.py [--rows N] [--epochs E]``; the defaults are the figures' sizes, small
ones (``--rows 20000 --epochs 2``) check the script. The run's dated record goes to bench/results/.
"""

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

from rich.console import Console
from rich.table import Table

import record
from fcnn_cli.results import evaluation, plots, runs
from fcnn_cli.data import simulate
from fcnn_cli.engine import train


def timed(work):
    start = time.perf_counter()
    value = work()
    return time.perf_counter() - start, value


def traced(work):
    tracemalloc.start()
    try:
        seconds, _ = timed(work)
        return seconds, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run_costs(epochs, scratch):
    table = simulate.earthquakes(seed=0)
    fit_s, result = timed(lambda: train.fit(table, train.TrainConfig(epochs=epochs, seed=0)))
    save_s, run_dir = timed(lambda: runs.save_run(result, Path(scratch) / "run", "quakes.csv"))
    plot_s, written = timed(lambda: plots.plot_run(run_dir))
    return result.predictor, [("training", fit_s), ("saving the run", save_s),
                              (f"drawing its {len(written)} plots", plot_s)]


def evaluate_costs(predictor, rows, scratch):
    def stream():
        return simulate.earthquake_tables(n=rows, seed=11)

    cases = [("plain", {}), ("--by x", {"by": ["x"], "bins": 10}),
             ("--by x --by y", {"by": ["x", "y"], "bins": 10}),
             ("--plots DIR", {"plots": Path(scratch) / "eval"})]
    return [(name, *traced(lambda o=options: evaluation.evaluate(predictor, stream(), **o)))
            for name, options in cases]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as scratch:
        predictor, steps = run_costs(args.epochs, scratch)
        run = Table(title=f"The default earthquake run, {args.epochs} epochs")
        run.add_column("step")
        run.add_column("seconds", justify="right")
        for name, seconds in steps:
            run.add_row(name, f"{seconds:.2f}")
        console.print(run)
        costs = [(name, seconds, peak / 1e6)
                 for name, seconds, peak in evaluate_costs(predictor, args.rows, scratch)]
        table = Table(title=f"evaluate on {args.rows:,} streamed rows")
        for col in ("options", "seconds", "peak traced memory (MB)"):
            table.add_column(col, justify="left" if col == "options" else "right")
        for name, seconds, peak in costs:
            table.add_row(name, f"{seconds:.2f}", f"{peak:.0f}")
        console.print(table)
    record.write("plots", [record.table(run.title, ("step", "seconds"), steps),
                           record.table(table.title, ("options", "seconds",
                                                      "peak traced memory (MB)"), costs)])


if __name__ == "__main__":
    main()
