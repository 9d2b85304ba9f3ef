"""`fcnn predict` reading ROOT, HDF5 and FITS files against Parquet: rows per second, and peak
memory at two lengths of file (flat with the length: the input streams in blocks).

    python bench/formats.py [--rows 5000000]

Each format holds the same simulated earthquakes (written by fcnn, block by block); every run
writes its predictions as Parquet, so that only the reader differs. Prints one table and
writes the run's dated record to bench/results/.
"""

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time

from rich.console import Console
from rich.table import Table

import record
from fcnn_cli.network import checkpoint
from fcnn_cli.data import simulate
from fcnn_cli.engine import train
from fcnn_cli.data.writer import TableWriter
from peak import watched

SUFFIXES = {"Parquet": ".parquet", "ROOT": ".root", "HDF5": ".h5", "FITS": ".fits"}
SHORTER = 5  # the short file is this many times shorter than the long one


def write_files(folder, rows):
    """The same earthquakes in every format: {format: path}."""
    paths = {name: os.path.join(folder, f"q{rows}{suffix}") for name, suffix in SUFFIXES.items()}
    chunks = simulate.earthquake_tables(n=rows, seed=1)
    first = next(chunks)
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(TableWriter(path, first.metadata()))
                   for path in paths.values()]
        for chunk in [first, *chunks]:
            for writer in writers:
                writer.write(chunk.frame)
    return paths


def predict(model, data, out):
    """Rows per second and peak memory (MB) of one `fcnn predict` process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "fcnn_cli", "predict", model, data, "-o", out],
                            stdout=subprocess.DEVNULL)
    peak = watched(proc)
    assert proc.returncode == 0
    return time.perf_counter() - start, peak



def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of the long file")
    args = parser.parse_args()
    lengths = (max(1, args.rows // SHORTER), args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model.pt")
        result = train.fit(simulate.earthquakes(n=2000, seed=2), train.TrainConfig(epochs=1))
        checkpoint.save(result.predictor, model)
        measured = {name: {} for name in SUFFIXES}
        for rows in lengths:
            for name, path in write_files(tmp, rows).items():
                seconds, peak = predict(model, path, os.path.join(tmp, "p.parquet"))
                measured[name][rows] = rows / seconds, peak
                os.remove(path)
    show(measured, lengths)


def show(measured, lengths):
    short, long = lengths
    table = Table(title=f"fcnn predict, {long:,} rows of earthquakes, predictions to Parquet")
    for column in ("input", "rows/s", "vs Parquet", f"peak MB ({short:,} rows)",
                   f"peak MB ({long:,} rows)"):
        table.add_column(column, justify="left" if column == "input" else "right")
    parquet = measured["Parquet"][long][0]
    rows = [(name, by_length[long][0], by_length[long][0] / parquet, by_length[short][1],
             by_length[long][1]) for name, by_length in measured.items()]
    for name, speed, relative, peak_short, peak_long in rows:
        table.add_row(name, f"{speed:,.0f}", f"{relative:.2f}", f"{peak_short:,.0f}",
                      f"{peak_long:,.0f}")
    Console().print(table)
    record.write("formats", [record.table(table.title, [str(c.header) for c in table.columns],
                                          rows)])


if __name__ == "__main__":
    main()
