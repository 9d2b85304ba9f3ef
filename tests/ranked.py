"""Tables for the ranking tests: a label that depends on the feature a strongly, on b weakly
and on c not at all, and a small network trained on them."""

import numpy as np
import pandas as pd

from fcnn_cli.data.tables import Table


def abc_frame(n, seed, kind="classify"):
    """Columns a, b, c (standard normal) and the label: for "classify" the class "sig" where
    3a + b plus noise is positive, else "bkg"; for "regress" y = 3a + b plus noise. A weight
    column w (0.2 to 2) is beside them."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n))
    score = 3 * a + b + rng.normal(0, 0.5, n)
    label = np.where(score > 0, "sig", "bkg") if kind == "classify" else score
    return pd.DataFrame({"a": a, "b": b, "c": c, "w": rng.uniform(0.2, 2.0, n),
                         "label": label})


def abc_model(n=3000, seed=0, kind="classify"):
    """A predictor trained briefly on :func:`abc_frame` rows (features a, b and c)."""
    from fcnn_cli.engine import train

    table = Table(abc_frame(n, seed, kind), ["label"])
    config = train.TrainConfig(epochs=8, batch_size=64, seed=seed)
    return train.fit(table, config, features=["a", "b", "c"]).predictor
