"""What encoding categorical features costs per million rows: fitting the levels (training,
once a run) and encoding a table (training once, predict and evaluate at every chunk), for a
text column of few levels, one of PDG ids and one of 64 levels (one-hot), and one of 10 000
levels (one index input, which the network embeds), beside pandas' get_dummies of the same
columns (not of 10 000 levels: a million rows of them are 40 GB) and a one-epoch fit of the
default network on the one-hot inputs.

    python bench/categories.py [--rows 1000000]

Each figure is the best of three runs, in milliseconds per million rows. Prints one table and
writes the run's dated record to bench/results/.
"""

import argparse
import time

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

import record
from fcnn_cli.data import tables
from fcnn_cli.data.categories import MAX_LEVELS, Categories, embedded

REPEATS = 3
SENSORS = 10_000  # the levels of the column of many


def frame(rows, rng):
    return pd.DataFrame({
        "x": rng.normal(size=rows),
        "region": rng.choice(["barrel", "endcap", "forward"], rows),
        "pdg": rng.choice([11, -11, 13, -13, 211, -211, 321, 2212], rows),
        "station": rng.choice([f"MB{i}" for i in range(MAX_LEVELS)], rows),
        "sensor": rng.choice([f"S{i:05d}" for i in range(SENSORS)], rows),
    })


def best(run, *args, **kwargs):
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times)


def one_epoch_fit(encoded, rng):
    """Seconds of a one-epoch fit of the default network (one thread) on the encoded inputs
    (a frame) against a label of noise: the plain training the encoding is set beside."""
    from fcnn_cli.engine import train

    # Plain columns: named as a categorical feature's inputs, training would refuse them.
    data = encoded.set_axis([f"input{i}" for i in range(encoded.shape[1])], axis=1)
    data = data.assign(y=rng.normal(size=len(encoded)))
    start = time.perf_counter()
    train.fit(tables.Table(data, ["y"]), train.TrainConfig(epochs=1, threads=1, test_frac=0.0))
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    table = tables.Table(frame(args.rows, rng), name="bench")
    per_million = 1e9 / args.rows  # ms per million rows
    rows = []
    for columns in (["region"], ["pdg"], ["station"], ["sensor"], ["region", "pdg", "station"]):
        categories = Categories.fit(table, columns)
        inputs = sum(len(categories.names(c)) for c in columns)
        fit = best(Categories.fit, table, columns) * per_million
        encode = best(categories.encode, table) * per_million
        many = any(embedded(levels) for levels in categories.levels.values())
        dummies = None if many else best(pd.get_dummies, table.frame, columns=columns,
                                         dtype=np.float32) * per_million
        rows.append((", ".join(columns), inputs, fit, encode, dummies,
                     dummies and encode / dummies))
    encoded = categories.encode(table)
    epoch = one_epoch_fit(encoded.frame.drop(columns="sensor"), rng) * per_million
    names = ("columns", "inputs", "fit ms / 1M rows", "encode ms / 1M rows",
             "get_dummies ms / 1M rows", "encode / get_dummies")
    out = Table(title=f"categories on {args.rows:,} rows, best of {REPEATS}; a one-epoch fit "
                f"of the default network on the one-hot ones: {epoch:.0f} ms")
    for column in names:
        out.add_column(column, justify="left" if column == "columns" else "right")
    for name, inputs, fit, encode, dummies, ratio in rows:
        out.add_row(name, str(inputs), f"{fit:.1f}", f"{encode:.1f}",
                    "—" if dummies is None else f"{dummies:.1f}",
                    "—" if ratio is None else f"{ratio:.2f}")
    Console(width=140).print(out)
    record.write("categories", [record.table(out.title, names, rows)])


if __name__ == "__main__":
    main()
