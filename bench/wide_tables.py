"""Wide tables: where `fcnn train` and `fcnn predict` spend their time on a table of many
columns and few rows, phase by phase, at half the columns and at all of them. Each phase should
take about twice as long at twice the columns (time linear in the columns); 4× marks a step
quadratic in them.

    python bench/wide_tables.py [--columns 10000] [--rows 1000]

The table is random normal features and one label, written as CSV and as Parquet. The phases
are those of `fcnn train` up to the end of its first epoch, saving the run, and `fcnn predict`
to CSV; the last row runs `fcnn train DATA.csv --epochs 1 --no-plots` as a command, end to end
(its start, torch's import above all, is the same at any width). Prints one table and writes the
run's dated record to bench/results/.
"""

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table as Shown

import record
from fcnn_cli.network import checkpoint
from fcnn_cli.results import runs
from fcnn_cli.engine import train
from fcnn_cli.data.columns import select_columns
from fcnn_cli.engine.prepare import prepare
from fcnn_cli.data.tables import Table, iter_tables, read_table
from fcnn_cli.data.writer import TableWriter, write_table

LABEL = "y"
WARM_UP = 8  # columns of the first, untimed round


def write_files(folder, rows, columns):
    """The same table as CSV and as Parquet: (csv, parquet) paths."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, columns)).astype(np.float32),
                         columns=[f"f{i}" for i in range(columns)])
    frame[LABEL] = frame.iloc[:, :8].sum(axis=1)
    paths = [os.path.join(folder, f"wide{columns}{suffix}") for suffix in (".csv", ".parquet")]
    for path in paths:
        write_table(Table(frame, [LABEL]), path)
    return paths


def timed(phases, name, work):
    start = time.perf_counter()
    result = work()
    phases[name] = time.perf_counter() - start
    return result


def phases_at(folder, rows, columns):
    """{phase: seconds} for a table of ``columns`` features."""
    csv, parquet = write_files(folder, rows, columns)
    config = train.TrainConfig(epochs=1)
    phases = {}
    timed(phases, "read Parquet", lambda: read_table(parquet, narrow=()))
    table = timed(phases, "read CSV", lambda: read_table(csv, narrow=()))
    timed(phases, "choose columns", lambda: select_columns(table))
    fresh = read_table(csv)
    timed(phases, "numeric checks, split, scaling", lambda: prepare(fresh, config, consume=True))
    result = timed(phases, "train, 1 epoch (with the step above)",
                   lambda: train.fit(table, config, consume=True))
    run = os.path.join(folder, f"run{columns}")
    timed(phases, "save the run (model, metadata)", lambda: runs.save_run(result, run, csv))
    predictor = timed(phases, "load the model", lambda: checkpoint.load(os.path.join(run,
                                                                                    "model.pt")))
    timed(phases, "predict to CSV", lambda: predict(predictor, csv, os.path.join(folder, "p.csv")))
    timed(phases, "fcnn train (the command)", lambda: subprocess.run(
        [sys.executable, "-m", "fcnn_cli", "train", csv, "--epochs", "1", "--no-plots", "-q",
         "-o", os.path.join(folder, f"cli{columns}")], check=True))
    return phases


def predict(predictor, data, out):
    with TableWriter(out) as writer:
        for _, predictions in predictor.predict_chunks(iter_tables(data)):
            writer.write(predictions)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--columns", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    widths = (args.columns // 2, args.columns)
    logging.disable(logging.WARNING)  # the random features' extrapolation notes
    with tempfile.TemporaryDirectory() as tmp:
        phases_at(tmp, args.rows, WARM_UP)  # first calls' costs (imports, torch) left out
        measured = [phases_at(tmp, args.rows, n) for n in widths]
    table = Shown(title=f"wide tables: {args.rows:,} rows, seconds per phase")
    columns = ("phase", *(f"{n:,} columns" for n in widths), "ratio")
    for column in columns:
        table.add_column(column, justify="left" if column == "phase" else "right")
    rows = [(phase, measured[0][phase], seconds,
             seconds / measured[0][phase] if measured[0][phase] > 0.01 else None)
            for phase, seconds in measured[1].items()]
    for phase, half, seconds, ratio in rows:
        table.add_row(phase, f"{half:.2f}", f"{seconds:.2f}",
                      "" if ratio is None else f"{ratio:.1f}×")
    Console().print(table)
    record.write("wide_tables", [record.table(table.title, columns, rows)])


if __name__ == "__main__":
    main()
