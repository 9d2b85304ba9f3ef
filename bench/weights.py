"""What event weights cost: the default network (3 × 64, batch 32) trained on a million
earthquakes with and without a weight column, side by side in one run.

Each case trains unweighted and weighted in turn, ``--rounds`` times, ``--epochs`` epochs each;
the printed table gives the median seconds of an epoch (training and validation) and of the
whole fit (preparing the table, the epochs, the final metrics) of each, and their ratio. The
weights are unequal (uniform in [-0.2, 2]: some negative), so that the weighted run takes the
weighted path. Run it alone: a busy neighbour skews every figure. The run's dated record goes to
bench/results/.

    python bench/weights.py [--rows 1000000] [--epochs 2] [--rounds 2] [--threads 1]
                            [--batch-size 32]
"""

import argparse
import statistics
import time

import numpy as np
from rich.console import Console
from rich.table import Table

import record
from fcnn_cli.data import simulate, tables
from fcnn_cli.engine import train


def cases(rows):
    """(name, table, label) of each case: regression of the epicentre, classification of its
    side, both with a weight column "w"."""
    quakes = simulate.earthquakes(n=rows, seed=1)
    frame = quakes.frame.assign(w=np.random.default_rng(2).uniform(-0.2, 2.0, rows))
    sides = frame.drop(columns=["x", "y"]).assign(side=np.where(frame.x > 10, "east", "west"))
    return [("regression (x, y)", tables.Table(frame, ["x", "y"], quakes.units, "quakes"),
             ["x", "y"]),
            ("classification (2 classes)", tables.Table(sides, ["side"], name="sides"),
             ["side"])]


def timed(table, targets, weighted, config):
    start = time.perf_counter()
    result = train.fit(table, config, targets=targets, weight="w" if weighted else None,
                       features=[c for c in table.frame.columns
                                 if c not in (*targets, "w", "x", "y")])
    return [row["seconds"] for row in result.history], time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    config = train.TrainConfig(epochs=args.epochs, threads=args.threads, seed=0,
                               batch_size=args.batch_size)
    rows = []
    for name, table, targets in cases(args.rows):
        small = tables.Table(table.frame.iloc[:2000], table.targets, table.units, table.name)
        for weighted in (False, True):  # warm up: the first fit of a process pays for imports
            timed(small, targets, weighted, config)
        epochs, fits = {False: [], True: []}, {False: [], True: []}
        for _ in range(args.rounds):
            for weighted in (False, True):  # in turn: a drift of the machine hits both
                seconds, whole = timed(table, targets, weighted, config)
                epochs[weighted] += seconds
                fits[weighted].append(whole)
                print(name, "weighted" if weighted else "unweighted", seconds, whole,
                      flush=True)
        epoch = [statistics.median(epochs[w]) for w in (False, True)]
        fit = [statistics.median(fits[w]) for w in (False, True)]
        rows.append((name, *epoch, epoch[1] / epoch[0], *fit, fit[1] / fit[0]))
    out = Table(title=f"{args.rows:,} rows, 3 × 64, batch {args.batch_size}, "
                      f"{args.threads} thread(s): "
                      "unweighted against weighted (median of "
                      f"{args.rounds} × {args.epochs} epochs)")
    columns = ("case", "epoch, unweighted (s)", "epoch, weighted (s)", "epoch ratio",
               "fit, unweighted (s)", "fit, weighted (s)", "fit ratio")
    for column in columns:
        out.add_column(column, justify="left" if column == "case" else "right")
    for row in rows:
        out.add_row(row[0], *(f"{v:.2f}" for v in row[1:]))
    Console(width=140).print(out)
    record.write("weights", [record.table(out.title, columns, rows)])


if __name__ == "__main__":
    main()
