"""Ensembles: what training members in one vectorised pass gains, and whether their
uncertainties mean something.

(a) Speed: 8 members of 3 × 64 at batch 32 trained together (``--ensemble 8``) against the same
8 members trained one after the other (``seed``, ``seed + 1``, … as single runs), on simulated
earthquakes, measured side by side in this run.

(b) Evidence, for a 5-member ensemble with the Gaussian loss, on new events drawn apart from the
training table: the share of labels within ±1σ (68.3 % for calibrated σ), the mean predicted σ
where the data are the least and the most noisy, and the RMSE of the ensemble mean against the
mean RMSE of its members. Two tables: earthquakes with timing noise (noise the same everywhere, but
the geometry of the stations makes the epicentre less certain in places) and a table whose
noise grows across the region (y = sin 3x + noise of standard deviation 0.02 + 0.3 (x + 1)/2).

    python bench/ensembles.py            # the figures for the README
    python bench/ensembles.py --quick    # a check that it runs, at tiny sizes
"""

import argparse
import time

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from fcnn_cli import simulate, tables, train

NET = {"depth": 3, "width": 64}


def speed(rows, epochs, members, threads):
    data = simulate.earthquakes(n=rows, seed=1)
    config = {"epochs": epochs, "batch_size": 32, "threads": threads}
    start = time.perf_counter()
    train.fit(data, train.TrainConfig(ensemble=members, **config), net=NET)
    together = time.perf_counter() - start
    start = time.perf_counter()
    for k in range(members):
        train.fit(data, train.TrainConfig(seed=k, **config), net=NET)
    apart = time.perf_counter() - start
    return together, apart


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
    low, high = noise <= np.quantile(noise, 1 / 3), noise >= np.quantile(noise, 2 / 3)
    return [name, f"{report['uncertainty']['coverage_1sigma']:.1%}",
            f"{report['uncertainty']['coverage_2sigma']:.1%}",
            f"{std[low].mean():.3g}", f"{std[high].mean():.3g}",
            f"{rmse(mean):.3g}", f"{one:.3g}"]


def quake_noise(table):
    """How uncertain each event's epicentre is from its geometry: the distance to the nearest
    station (arrival times fix an epicentre less well far from every station)."""
    stations = np.asarray(table.extra["stations"]["positions"], np.float64)
    xy = table.frame[["x", "y"]].to_numpy()
    return np.sqrt(((xy[:, None] - stations[None]) ** 2).sum(axis=2)).min(axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a check that it runs")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    rows, epochs, n = (512, 1, 600) if args.quick else (20_000, 5, 20_000)
    console = Console()
    together, apart = speed(rows, epochs, 8, args.threads)
    out = Table(title=f"8 members of 3 × 64, batch 32, {rows} rows, {epochs} epoch(s)")
    for column in ("training", "seconds", "speed-up"):
        out.add_column(column, justify="right")
    out.add_row("8 sequential runs", f"{apart:.2f}", "1.0×")
    out.add_row("--ensemble 8 (one vectorised pass)", f"{together:.2f}",
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
    ev.add_row(*evidence("earthquakes, 0.05 s noise (σ of x, y; by distance to the nearest "
                         "station)", quakes, new_quakes, quake_noise(new_quakes), ev_epochs, 5))
    ev.add_row(*evidence("noise growing across x (RMSE against the noise-free label)", region,
                         new_region, sigma, ev_epochs, 5, clean))
    console.print(ev)


if __name__ == "__main__":
    main()
