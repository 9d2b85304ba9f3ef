"""Ensembles: what training members in one vectorised pass gains, and whether their
uncertainties mean something.

(a) Speed: 8 members of 3 × 64 at batch 32 trained together (``--ensemble 8``) against the same
8 members trained one after the other (``seed``, ``seed + 1``, … as single runs), on simulated
earthquakes, measured side by side in this run: in one process (each side's fastest of three
runs), for plain networks and for residual ones with batch norm (autograd over forward passes
vectorised with torch.func); and as commands (one ``fcnn train --ensemble 8`` against 8 ``fcnn
train`` processes, each starting, reading, training and saving). The same for sweeps:
``fcnn sweep`` of one combination over 8 seeds (one ensemble) and of 8 same-shape combinations
(4 learning rates × 2 initialisations, one seed each: one group, trained in one pass), each
against 8 ``fcnn train`` runs of them that read, train and save, in one process and (the
latter) as commands.

(b) Evidence, for a 5-member ensemble with the Gaussian loss, on new events drawn apart from the
training table: the share of labels within ±1σ (68.3 % for calibrated σ), the mean predicted σ
where the data are the least and the most noisy, and the RMSE of the ensemble mean against the
mean RMSE of its members. Three tables: earthquakes with 0.05 s of timing noise; earthquakes of
which half are timed with 0.02 s of noise and half with 0.1 s (the arrival times alone tell
them apart);
and a table whose noise grows across the region (y = sin 3x + noise of standard deviation
0.02 + 0.3 (x + 1)/2; its RMSEs against the noise-free sin 3x).

    python bench/ensembles.py            # the figures for docs/, and a record in bench/results/
    python bench/ensembles.py --quick    # a check that it runs, at tiny sizes
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

import record
from fcnn_cli.results import runs
from fcnn_cli.data import simulate, tables, writer
from fcnn_cli.sweeps.grid import Sweep, combinations
from fcnn_cli.sweeps.run import run as run_sweep
from fcnn_cli.engine import train

NET = {"depth": 3, "width": 64}
BATCHNORM_RESNET = {**NET, "arch": "resnet", "batchnorm": True}


def speed(rows, epochs, members, threads, net=NET):
    data = simulate.earthquakes(n=rows, seed=1)
    config = {"epochs": epochs, "batch_size": 32, "threads": threads}
    warm = simulate.earthquakes(n=256, seed=2)  # imports and first calls, timed for neither
    for count in (members, 1):
        train.fit(warm, train.TrainConfig(**{**config, "epochs": 1, "ensemble": count}), net=net)
    start = time.perf_counter()
    train.fit(data, train.TrainConfig(ensemble=members, **config), net=net)
    together = time.perf_counter() - start
    start = time.perf_counter()
    for k in range(members):
        train.fit(data, train.TrainConfig(seed=k, **config), net=net)
    apart = time.perf_counter() - start
    return together, apart


def sweep_speed(rows, epochs, members, threads):
    """Seconds of a sweep over ``members`` seeds of one combination, and of as many sequential
    runs of fcnn train, on one CSV file."""
    config = {"epochs": epochs, "batch_size": 32, "threads": threads}
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "quakes.csv"
        writer.write_table(simulate.earthquakes(n=rows, seed=1), path)
        spec = Sweep({"data": str(path)}, {**config, "width": NET["width"]},
                     {"depth": [NET["depth"]]}, seeds=members)
        start = time.perf_counter()
        run_sweep(spec, Path(root) / "sweep")
        together = time.perf_counter() - start
        start = time.perf_counter()
        for k in range(members):
            result = train.fit(tables.read_table(path), train.TrainConfig(seed=k, **config),
                               net=NET)
            runs.save_run(result, Path(root) / f"run-{k}", str(path))
        apart = time.perf_counter() - start
    return together, apart


def command_speed(rows, epochs, members, threads):
    """Seconds of one ``fcnn train --ensemble`` command, of one ``fcnn sweep`` of the 8
    combinations of GROUP_GRID, and of 8 ``fcnn train`` commands for each (seeds 0, 1, …; the
    grid's combinations), each a process that starts, reads, trains and saves (no plots), on
    one CSV file: (ensemble, its 8 runs, sweep, its 8 runs)."""
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "quakes.csv"
        writer.write_table(simulate.earthquakes(n=rows, seed=1), path)
        options = ["--epochs", str(epochs), "--batch-size", "32", "--depth", str(NET["depth"]),
                   "--width", str(NET["width"]), "--no-plots", "-q",
                   *(["--threads", str(threads)] if threads else [])]

        def seconds(command, out, *more):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "fcnn_cli", command, str(path), *options,
                            "-o", str(Path(root) / out), *more], check=True)
            return time.perf_counter() - start
        ensemble = seconds("train", "together", "--ensemble", str(members))
        runs_ = sum(seconds("train", f"run-{k}", "--seed", str(k)) for k in range(members))
        grid = [f"--grid={key}={','.join(map(str, values))}"
                for key, values in GROUP_GRID.items()]
        swept = seconds("sweep", "sweep", *grid)
        combos = sum(seconds("train", f"combination-{k}", "--lr", str(c["lr"]), "--init", c["init"])
                     for k, c in enumerate(combinations(GROUP_GRID)))
    return ensemble, runs_, swept, combos


GROUP_GRID = {"lr": [3e-4, 1e-3, 3e-3, 1e-2], "init": ["glorot-normal", "he"]}


def group_speed(rows, epochs, threads):
    """Seconds of a sweep over the 8 combinations of GROUP_GRID (one seed each), and of as
    many sequential runs of fcnn train, each with its combination's options, on one CSV file."""
    config = {"epochs": epochs, "batch_size": 32, "threads": threads}
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "quakes.csv"
        writer.write_table(simulate.earthquakes(n=rows, seed=1), path)
        spec = Sweep({"data": str(path)}, {**config, **NET}, GROUP_GRID)
        start = time.perf_counter()
        run_sweep(spec, Path(root) / "sweep")
        together = time.perf_counter() - start
        start = time.perf_counter()
        for k, combination in enumerate(combinations(GROUP_GRID)):
            result = train.fit(tables.read_table(path),
                               train.TrainConfig(lr=combination["lr"], **config),
                               net={**NET, "init": combination["init"]})
            runs.save_run(result, Path(root) / f"run-{k}", str(path))
        apart = time.perf_counter() - start
    return together, apart


def best(measure, repeats, *args):
    """Each side's fastest of ``repeats`` side-by-side measurements: the machine's speed
    wanders over seconds, and a single pair of short runs can miss by 20 %."""
    pairs = [measure(*args) for _ in range(repeats)]
    return min(p[0] for p in pairs), min(p[1] for p in pairs)


def noisy_region(n, seed):
    """One feature x on [-1, 1] (with a second, uninformative one), label y whose noise grows
    with x; the true noise ``sigma`` of each row, and its label without noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    sigma = 0.02 + 0.3 * (x + 1) / 2
    clean = np.sin(3 * x)
    frame = pd.DataFrame({"x": x, "other": rng.normal(size=n),
                          "y": clean + rng.normal(size=n) * sigma})
    return tables.Table(frame, ["y"], name="noisy-region"), sigma, clean[:, None]


def evidence(name, data, new, noise, epochs, members, truth=None):
    """One row of the evidence table: coverage, σ where noise is low and high, and the RMSE
    of the ensemble mean and the mean RMSE of its members against ``truth`` (default: the
    labels)."""
    config = train.TrainConfig(epochs=epochs, ensemble=members, loss="gaussian")
    predictor = train.fit(data, config, net=NET).predictor
    x = predictor.feature_matrix(new)
    out = predictor.outputs(x)
    report = predictor.evaluate(new)
    mean, std = predictor.task.predictive(out)
    truth = predictor.task.truth(new) if truth is None else truth

    def rmse(prediction):
        return np.sqrt(((prediction - truth) ** 2).mean())
    one = np.mean([rmse(predictor.task.predictive(member)[0]) for member in out])
    if noise is None:
        spread = ["–", "–"]
    else:
        low, high = noise <= np.quantile(noise, 1 / 3), noise >= np.quantile(noise, 2 / 3)
        spread = [f"{std[low].mean():.3g}", f"{std[high].mean():.3g}"]
    return [name, f"{report['uncertainty']['coverage_1sigma']:.1%}",
            f"{report['uncertainty']['coverage_2sigma']:.1%}", *spread,
            f"{rmse(mean):.3g}", f"{one:.3g}"]


def mixed_quakes(n, seed, noises=(0.02, 0.1)):
    """Earthquakes, half of them timed with the first noise (s), half with the second, in a
    random order, and each event's noise: nothing but the arrival times tells them apart."""
    parts = [simulate.earthquakes(n=n // 2, seed=seed + 100 * k, noise=noise)
             for k, noise in enumerate(noises)]
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    noise = np.repeat(noises, [len(p.frame) for p in parts])
    order = np.random.default_rng(seed).permutation(len(frame))
    table = tables.Table(frame.iloc[order].reset_index(drop=True), parts[0].targets,
                         parts[0].units, "mixed-quakes")
    return table, noise[order]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a check that it runs")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    rows, epochs, n = (512, 1, 600) if args.quick else (20_000, 5, 20_000)
    console = Console(width=120)
    repeats = 1 if args.quick else 3
    together, apart = best(speed, repeats, rows, epochs, 8, args.threads)
    out = Table(title=f"8 members of 3 × 64, batch 32, {rows} rows, {epochs} epoch(s)")
    for column in ("training", "seconds", "speed-up"):
        out.add_column(column, justify="right")
    out.add_row("8 sequential runs", f"{apart:.2f}", "1.0×")
    out.add_row("--ensemble 8 (one vectorised pass)", f"{together:.2f}",
                f"{apart / together:.2f}×")
    ensemble, runs_, swept, combos = command_speed(rows, epochs, 8, args.threads)
    out.add_row("8 fcnn train commands (start, read, train, save)", f"{runs_:.2f}", "1.0×")
    out.add_row("fcnn train --ensemble 8, one command", f"{ensemble:.2f}",
                f"{runs_ / ensemble:.2f}×")
    out.add_row("8 fcnn train commands, 4 lr × 2 init", f"{combos:.2f}", "1.0×")
    out.add_row("fcnn sweep 4 lr × 2 init, one command", f"{swept:.2f}",
                f"{combos / swept:.2f}×")
    together, apart = best(speed, repeats, rows, epochs, 8, args.threads, BATCHNORM_RESNET)
    out.add_row("8 sequential runs, resnet with batch norm", f"{apart:.2f}", "1.0×")
    out.add_row("--ensemble 8, resnet with batch norm (torch.func)", f"{together:.2f}",
                f"{apart / together:.2f}×")
    together, apart = best(sweep_speed, repeats, rows, epochs, 8, args.threads)
    out.add_row("8 sequential fcnn train runs (read, train, save)", f"{apart:.2f}", "1.0×")
    out.add_row("fcnn sweep, 1 combination × 8 seeds", f"{together:.2f}",
                f"{apart / together:.2f}×")
    together, apart = best(group_speed, repeats, rows, epochs, args.threads)
    out.add_row("8 sequential fcnn train runs, 4 lr × 2 init (read, train, save)",
                f"{apart:.2f}", "1.0×")
    out.add_row("fcnn sweep, 4 lr × 2 init × 1 seed (one group)", f"{together:.2f}",
                f"{apart / together:.2f}×")
    console.print(out)

    quakes = simulate.earthquakes(n=n, seed=1, noise=0.05)
    new_quakes = simulate.earthquakes(n=max(n // 4, 200), seed=2, noise=0.05)
    region, _, _ = noisy_region(n, 1)
    new_region, sigma, clean = noisy_region(max(n // 4, 200), 2)
    ev = Table(title="5-member Gaussian ensembles on new events (ideal: 68.3 % / 95.4 %)")
    for column in ("table", "within ±1σ", "within ±2σ", "σ where least noisy",
                   "σ where most noisy", "RMSE of the mean", "RMSE of a member (mean)"):
        ev.add_column(column, justify="right")
    ev_epochs = 2 if args.quick else 30
    ev.add_row(*evidence("quakes, 0.05 s", quakes, new_quakes,
                         None, ev_epochs, 5))
    mixed, _ = mixed_quakes(n, 1)
    new_mixed, noise = mixed_quakes(max(n // 4, 200), 2)
    ev.add_row(*evidence("quakes, 0.02 s | 0.1 s", mixed, new_mixed,
                         noise, ev_epochs, 5))
    ev.add_row(*evidence("noise growing in x", region,
                         new_region, sigma, ev_epochs, 5, clean))
    console.print(ev)
    if not args.quick:  # a quick run checks the script; its figures are no record
        record.write("ensembles", [record.printed(out), record.printed(ev)])


if __name__ == "__main__":
    main()
