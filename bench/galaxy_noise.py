"""How the galaxy task's difficulty follows the noise knob: default `fcnn train` settings on
`fcnn simulate galaxies` data at several noise levels; prints one table and writes the run's
dated record to bench/results/.

    python bench/galaxy_noise.py [--n 20000] [--noise 0,0.02,0.05,0.1,0.2] [--json out.json]
"""

import argparse
import json
import time

from rich.console import Console
from rich.table import Table

import record
from fcnn_cli.data import simulate
from fcnn_cli.engine import train


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--noise", default="0,0.02,0.05,0.1,0.2")
    parser.add_argument("--json")
    args = parser.parse_args()
    results = []
    for noise in (float(v) for v in args.noise.split(",")):
        table = simulate.galaxies(n=args.n, noise=noise)
        start = time.perf_counter()
        r = train.fit(table)
        test = r.metrics["test"]
        results.append({"noise": noise, "test_accuracy": test["accuracy"],
                        "test_roc_auc": test["roc_auc"], "seconds": time.perf_counter() - start})
        print(results[-1], flush=True)
    out = Table(title=f"Galaxies: {args.n} images, default training")
    for col in ("noise", "test accuracy", "ROC AUC", "training time"):
        out.add_column(col, justify="right")
    for r in results:
        out.add_row(f"{r['noise']:g}", f"{r['test_accuracy']:.1%}", f"{r['test_roc_auc']:.4f}",
                    f"{r['seconds']:.0f} s")
    Console(width=100).print(out)
    record.write("galaxy_noise", [record.table(out.title, list(results[0]), results)])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
