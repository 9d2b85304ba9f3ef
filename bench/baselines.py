"""Gradient-boosted trees beside fcnn's network: scikit-learn's HistGradientBoosting, XGBoost and
LightGBM on the same split of the same tables, to choose the library of the tool's baseline.

Three tables: the simulated earthquakes (regression of the epicentre x, y in km from eight
arrival times, 20 000 events, as `fcnn simulate earthquakes` makes them) and galaxies (left or
right rotation from 32 × 32 pixels; 3 000 images by default, where `fcnn simulate` makes
20 000, so that the run takes minutes), and scikit-learn's bundled handwritten digits (1 797
images of 8 × 8 pixels, 10 classes: a real table). Each is split by fcnn's own rule (10 %
validation, 20 % test, seed 0). Every library gets the same settings: learning rate 0.1, up to
1 000 rounds, trees of at most 31 leaves, early stopping after 20 rounds without a better
validation loss on the validation split, one CPU thread (`--threads`); one model per label
where a library takes one label (HistGradientBoosting and LightGBM on the two earthquake
labels). "fcnn gbdt" is the tool's own baseline (HistGradientBoosting read into node arrays,
predicting with numpy); the network is fcnn's default (`fcnn train`: epochs by the table's size,
and 5 members on a table of fewer than 5 000 training rows) on the same split, unless
`--no-network`.

Printed: fit time, trees kept (rounds × models), the time to predict the test split, and the
test split's RMSE (km, over both labels) or accuracy. `--quick` runs small tables to check the
script and records nothing. The run's dated record goes to bench/results/.
"""

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

import record
import trees
from fcnn_cli.core.config import TrainConfig
from fcnn_cli.data import simulate, tables
from fcnn_cli.engine import train
from fcnn_cli.engine.prepare import prepare
from trees import LEAVES, PATIENCE, RATE, ROUNDS

CONFIG = TrainConfig(val_frac=0.1, test_frac=0.2, seed=0)


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    frame = pd.DataFrame(data.data, columns=[f"p{i:02d}" for i in range(64)])
    frame["digit"] = [f"d{k}" for k in data.target]
    return tables.Table(frame, ["digit"], name="digits")


def split(table):
    """The task, and (x, y) of the train, val and test splits: raw features, labels in their
    own units (rows × labels) or class indices."""
    data = prepare(table, CONFIG)
    train_split = data.splits["train"]
    x_train = data.x_scaler.inverse(train_split.x).astype(np.float32)  # trees need no scaling
    return data.task, [(x_train, train_split.truth)] + [
        (data.splits[name].x, data.splits[name].truth) for name in ("val", "test")]


def hgb(task, parts, threads):
    return _per_label(task.kind, parts, trees.hist_gradient_boosting, threads,
                      lambda m: m.n_iter_ * m.n_trees_per_iteration_)


def xgboost(task, parts, threads):
    import xgboost as xgb

    kind = task.kind
    (x, y), (xv, yv), (xt, _) = parts
    common = dict(n_estimators=ROUNDS, learning_rate=RATE, max_leaves=LEAVES, max_depth=0,
                  grow_policy="lossguide", tree_method="hist", early_stopping_rounds=PATIENCE,
                  n_jobs=threads, random_state=0)
    m = xgb.XGBRegressor(**common) if kind == "regress" else xgb.XGBClassifier(**common)
    start = time.perf_counter()
    m.fit(x, y, eval_set=[(xv, yv)], verbose=False)
    elapsed = time.perf_counter() - start
    rounds = m.best_iteration + 1
    per_round = 1 if kind == "classify" and yv.max() < 2 else (
        y.shape[1] if kind == "regress" else int(y.max()) + 1)
    start = time.perf_counter()
    out = m.predict(xt, iteration_range=(0, rounds)) if kind == "regress" else \
        m.predict_proba(xt, iteration_range=(0, rounds))
    return elapsed, rounds * per_round, time.perf_counter() - start, out.reshape(len(xt), -1)


def lightgbm(task, parts, threads):
    def count(m):
        classes = 1 if task.kind == "regress" or len(m.classes_) < 3 else len(m.classes_)
        return m.best_iteration_ * classes

    return _per_label(task.kind, parts, trees.lightgbm, threads, count)


def _per_label(kind, parts, fit, threads, count):
    """A library's models (one per label where it takes one, trees.per_label): fit time, trees
    kept (``count`` of each model), predict time and test outputs."""
    train_part, val_part, (xt, _) = parts
    start = time.perf_counter()
    models = trees.per_label(kind, lambda x, y, xv, yv: fit(kind, x, y, xv, yv, 0, threads),
                             train_part, val_part)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    out = trees.predict(kind, models, xt)
    return elapsed, sum(map(count, models)), time.perf_counter() - start, out


def fcnn_gbdt(task, parts, threads):
    """fcnn's own gbdt baseline: HistGradientBoosting with the settings above, its trees read
    into node arrays and checked, predicting with numpy."""
    from fcnn_cli.network.gbdt import GradientBoostedTrees

    (x, y), (xv, yv), (xt, _) = parts
    start = time.perf_counter()
    model = GradientBoostedTrees(learning_rate=RATE, rounds=ROUNDS, leaves=LEAVES,
                                 patience=PATIENCE, threads=threads)
    model.fit(x, y, None, xv, yv, None, task)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    out = model.predict(xt)
    return elapsed, model.forest.trees, time.perf_counter() - start, out


def network(table, x_test, threads):
    start = time.perf_counter()
    result = train.fit(table, dataclasses.replace(CONFIG, threads=threads))
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    result.predictor.outputs(x_test)
    predicting = time.perf_counter() - start
    test = result.metrics["test"]
    score = test["overall"]["rmse"] if test["task"] == "regression" else test["accuracy"]
    return elapsed, None, predicting, score


def score(kind, truth, out):
    """RMSE over all labels (regression) or accuracy (classification) of the test split."""
    return trees.rmse(truth, out) if kind == "regress" else trees.accuracy(truth, out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small tables; no record")
    parser.add_argument("--galaxies", type=int, default=3000, help="images (default 3 000)")
    parser.add_argument("--no-network", action="store_true", help="the libraries alone")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of every model "
                        "(default 1: on a shared machine more can be slower)")
    args = parser.parse_args()
    n = 2000 if args.quick else 20_000
    named = {"earthquakes": simulate.earthquakes(n=n, seed=0),
             "galaxies": simulate.galaxies(n=500 if args.quick else args.galaxies, seed=0),
             "digits": digits()}
    libraries = {"HistGradientBoosting": hgb, "XGBoost": xgboost, "LightGBM": lightgbm,
                 "fcnn gbdt (HistGradientBoosting)": fcnn_gbdt}
    rows = []
    for name, table in named.items():
        task, parts = split(table)
        for library, run in libraries.items():
            elapsed, trees, predicting, out = run(task, parts, args.threads)
            rows.append((name, library, elapsed, trees, predicting,
                         score(task.kind, parts[2][1], out)))
        if not args.no_network:
            rows.append((name, "fcnn network", *network(table, parts[2][0], args.threads)))
    out = Table(title=f"gradient-boosted trees and fcnn's network, {args.threads} CPU threads: "
                      "test RMSE (km) of the earthquakes, accuracy of the others")
    columns = ("table", "model", "fit (s)", "trees", "predict test (s)", "test RMSE / accuracy")
    for column in columns:
        out.add_column(column, justify="left" if column in ("table", "model") else "right")
    for name, library, elapsed, trees, predicting, value in rows:
        shown = f"{value:.3f} km" if name == "earthquakes" else f"{value:.2%}"
        out.add_row(name, library, f"{elapsed:.1f}", "" if trees is None else str(trees),
                    f"{predicting:.3f}", shown)
    Console(width=120).print(out)
    if not args.quick:
        record.write("baselines", [record.table(out.title, columns, rows)])


if __name__ == "__main__":
    main()
