"""The network against the classical locator on simulated earthquakes, the lecture's case and
three realistic ones (docs/earthquakes.md#the-network-against-the-locator).

Cases (`fcnn simulate earthquakes` options):
  lecture  the default: four stations, epicentres, a uniform medium, known origin time;
  A        --stations 12 --depth 0,30 --velocity-model layered;
  B        A and --origin-time unknown;
  C        B and --noise-p 0.02 (σ_S 0.04 s) --missing 0.2.

Each case trains fcnn's default network (as `fcnn train` does: the picks after each event's
earliest where the origin time is unknown, `--nan fill` where picks are missing) on `--events`
events (seed 0) and tests it on `--test-events` new ones (seed 1), beside the locator
(`--baseline locator`) with the true velocity model and with a crust 10 % slower (every layer
above the Moho, the whole medium of a uniform one): the honest comparison, since nobody knows
the Earth exactly. Printed: mean, median and 95th percentile of the distance
(km, 3-D where there is depth) on the test events, the time to train (the locator's fit only
reads the region) and the time to locate the test events. Alone on 2 cores it takes under 10
minutes; `--events 2000 --test-events 1000` checks the script in seconds (and records nothing).
The run's dated record goes to bench/results/.
"""

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table

import record
from fcnn_cli.core.config import UNKNOWN_ORIGIN_NET, TrainConfig
from fcnn_cli.data import arrivals, simulate, stations, velocity
from fcnn_cli.data.recipe import Recipe
from fcnn_cli.engine import train
from fcnn_cli.network.locator import POSITION, Locator

EXTENT = 50.0  # km: the simulator's default region
MOHO = 35.0  # km: the built-in crust's; a wrong model is slower above it
SLOWER = 0.9
REALISTIC = {"stations": stations.irregular(12, EXTENT), "depth": (0.0, 30.0),
             "model": velocity.model_for("layered", simulate.CRUSTAL_VP, simulate.CRUSTAL_VS)}
CASES = {
    "lecture": {},
    "A: layered": REALISTIC,
    "B: A + unknown t0": {**REALISTIC, "origin_unknown": True},
    "C: B + noise, missing": {**REALISTIC, "origin_unknown": True, "noise_p": 0.02,
                              "missing": 0.2},
}
COLUMNS = ("case", "model", "mean (km)", "median (km)", "p95 (km)", "train (s)", "locate (s)")


def slower(model):
    """``model`` with every layer above the Moho SLOWER times as fast: a wrong crust."""
    return velocity.checked([(top, SLOWER * vp, SLOWER * vs) if top < MOHO else (top, vp, vs)
                             for top, vp, vs in zip(model.top, model.vp, model.vs)],
                            f"{model.name}, crust {1 - SLOWER:.0%} slower")


def distances(located, truth):
    d = np.linalg.norm(located - truth, axis=1)
    return float(d.mean()), float(np.median(d)), float(np.percentile(d, 95))


def as_fcnn_train_makes(table, test):
    """(the tables, the features, --nan, the network's width and depth) that `fcnn train`
    takes by default from the table's metadata (fcnn_cli/data/arrivals.py): where the origin
    time is unknown, the picks after each event's earliest and UNKNOWN_ORIGIN_NET; where picks
    are missing, --nan fill."""
    chosen = arrivals.of_metadata(table.extra)
    nan = "fill" if chosen.missing else "error"
    if not chosen.define:
        return table, test, None, nan, {}
    recipe = Recipe.of_options(define=chosen.define)
    recipe.hidden = chosen.hidden
    table = recipe.derive(table)
    return table, recipe.derive(test), recipe.features(table), nan, dict(UNKNOWN_ORIGIN_NET)


def case_rows(name, options, events, test_events, threads):
    """The network's, the true locator's and the wrong locator's rows of one case."""
    table = simulate.earthquakes(n=events, seed=0, **options)
    test = simulate.earthquakes(n=test_events, seed=1, **options)
    labels = [c for c in POSITION if c in table.frame.columns]
    truth = test.frame[labels].to_numpy(np.float64)
    table, test, features, nan, net = as_fcnn_train_makes(table, test)
    config = TrainConfig(seed=0, threads=threads, nan=nan)
    start = time.perf_counter()
    result = train.fit(table, config, net, features=features, test_table=test)
    trained = time.perf_counter() - start
    predictor = result.predictor
    start = time.perf_counter()
    predicted = predictor.predict(test)
    seconds = time.perf_counter() - start
    rows = [(name, "network", *distances(
        predicted[[f"{c}_pred" for c in labels]].to_numpy(np.float64), truth), trained, seconds)]

    start = time.perf_counter()
    locator = Locator().bind(predictor.inputs, labels, table.extra)
    locator.fit(None, table.frame[labels].to_numpy(), None, None, None, None, None)
    fitted = time.perf_counter() - start
    for model, which in ((locator, "locator, true model"),
                         (locator.with_model(slower(locator.model)), "locator, crust 10 % slower")):
        start = time.perf_counter()
        located = model.predict(predictor.feature_matrix(test))  # the network's inputs, filled
        seconds = time.perf_counter() - start
        rows.append((name, which, *distances(located, truth), fitted, seconds))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="training events (20 000)")
    parser.add_argument("--test-events", type=int, default=10_000,
                        help="test events, another seed (10 000)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of training (default: fcnn's)")
    args = parser.parse_args()
    rows = [row for name, options in CASES.items()
            for row in case_rows(name, options, args.events, args.test_events, args.threads)]
    out = Table(title=f"the network against the locator: {args.events} training events, "
                      f"{args.test_events} test events, distance to the true hypocentre")
    for column in COLUMNS:
        out.add_column(column, justify="left" if column in ("case", "model") else "right")
    for row in rows:
        out.add_row(*row[:2], *(f"{v:.3f}" for v in row[2:5]), f"{row[5]:.1f}",
                    f"{row[6]:.2f}")
    Console(width=130).print(out)
    if (args.events, args.test_events) == (20_000, 10_000):
        record.write("quakes", [record.table(out.title, COLUMNS, rows)])


if __name__ == "__main__":
    main()
