"""A small real classification table with a separate test file: what holding out a test split
costs, against scikit-learn's MLPClassifier of the same shape.

The table is scikit-learn's handwritten digits (1 797 images of 8 × 8 pixels, 10 classes,
shipped with the package): 1 400 rows to train on, the other 397 as the test file. Each row of
the printed table is the mean test accuracy over three seeds of the split. The run's dated
record goes to bench/results/.
"""

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier

import record
from fcnn_cli.data import tables
from fcnn_cli.engine import train

SEEDS = (0, 1, 2)
TRAIN_ROWS = 1400


def split(seed):
    digits = load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"p{i:02d}" for i in range(64)])
    frame["digit"] = [f"d{k}" for k in digits.target]
    order = np.random.default_rng(seed).permutation(len(frame))
    first, rest = order[:TRAIN_ROWS], order[TRAIN_ROWS:]
    return (tables.Table(frame.iloc[first].reset_index(drop=True), ["digit"], name="train"),
            tables.Table(frame.iloc[rest].reset_index(drop=True), ["digit"], name="test"))


def fcnn_accuracy(data, test, with_test_file):
    result = train.fit(data, train.TrainConfig(seed=0),
                       test_table=test if with_test_file else None)
    return result.predictor.evaluate(test)["accuracy"], result.sizes["train"]


def sklearn_accuracy(data, test):
    x, y = data.frame.drop(columns="digit").to_numpy(), data.frame["digit"].to_numpy()
    model = MLPClassifier(hidden_layer_sizes=(64, 64, 64), max_iter=500, random_state=0)
    model.fit(x, y)
    return model.score(test.frame.drop(columns="digit").to_numpy(), test.frame["digit"])


def main():
    rows = {"fcnn train DATA (5 % held out for testing)": [],
            "fcnn train DATA --test FILE": [],
            "MLPClassifier 3 × 64": []}
    names = list(rows)
    used = {}
    for seed in SEEDS:
        data, test = split(seed)
        for name, with_file in ((names[0], False), (names[1], True)):
            accuracy, used[name] = fcnn_accuracy(data, test, with_file)
            rows[name].append(accuracy)
        rows[names[2]].append(sklearn_accuracy(data, test))
    used[names[2]] = TRAIN_ROWS
    out = Table(title=f"digits: {TRAIN_ROWS} training rows, test file of "
                      f"{len(split(0)[1].frame)} rows; accuracy on the test file")
    columns = ("run", "rows trained on", *(f"seed {s}" for s in SEEDS), "mean")
    for column in columns:
        out.add_column(column, justify="left" if column == "run" else "right")
    for name, values in rows.items():
        out.add_row(name, str(used[name]), *(f"{v:.2%}" for v in values),
                    f"{np.mean(values):.2%}")
    Console(width=120).print(out)
    record.write("small_tables", [record.table(out.title, columns, [
        (name, used[name], *values, float(np.mean(values))) for name, values in rows.items()])])


if __name__ == "__main__":
    main()
