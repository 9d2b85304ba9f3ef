"""The lecture's lesson on deep networks, measured: 20 hidden layers, with and without the cures.

Trains each network on the default earthquake data and prints one table: test mean distance, R²,
and how the first layer's weight-gradient norm compares with the output layer's at the start and
at the end of training (the diagnostics of `fcnn train --diagnostics`); the run's dated record
goes to bench/results/.

    python bench/deep_networks.py [--epochs 30] [--depth 20] [--json out.json]
"""

import argparse
import json
import time

from rich.console import Console
from rich.table import Table

import record
from fcnn_cli.data import simulate
from fcnn_cli.engine import train

CASES = [
    ("plain", "sigmoid"),
    ("resnet", "sigmoid"),
    ("batchnorm", "sigmoid"),
    ("selu", None),
    ("plain", "silu"),
    ("resnet", "silu"),
    ("batchnorm", "silu"),
]


def grad_ratio(rows, epoch):
    layer = [r for r in rows if r["epoch"] == epoch]
    return layer[0]["grad_norm"] / layer[-1]["grad_norm"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args()
    table = simulate.earthquakes()
    results = []
    for arch, activation in CASES:
        start = time.perf_counter()
        r = train.fit(table, train.TrainConfig(epochs=args.epochs, diagnostics=True),
                      net=dict(depth=args.depth, arch=arch, activation=activation))
        results.append({
            "arch": arch, "activation": r.predictor.net.config.activation,
            "test_mean_distance_km": r.metrics["test"]["distance"]["mean"],
            "test_r2": r.metrics["test"]["overall"]["r2"],
            "grad_ratio_start": grad_ratio(r.diagnostics, 0),
            "grad_ratio_end": grad_ratio(r.diagnostics, r.history[-1]["epoch"]),
            "seconds": time.perf_counter() - start,
        })
        print(results[-1], flush=True)
    out = Table(title=f"{args.depth} hidden layers of 64, {args.epochs} epochs, default data")
    for col in ("arch", "activation", "test mean distance", "test R²",
                "|∇W₁|/|∇W_out| start", "… end", "time"):
        out.add_column(col, justify="left" if col in ("arch", "activation") else "right")
    for r in results:
        out.add_row(r["arch"], r["activation"], f"{r['test_mean_distance_km'] * 1000:.0f} m",
                    f"{r['test_r2']:.4f}", f"{r['grad_ratio_start']:.1e}",
                    f"{r['grad_ratio_end']:.1e}", f"{r['seconds']:.0f} s")
    Console(width=120).print(out)
    record.write("deep_networks", [record.table(out.title, list(results[0]), results)])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
