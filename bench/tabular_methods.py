"""The methods of the tabular benchmark (bench/tabular.py), one registry entry each.

A method takes a :class:`tabular_tables.Split`, a seed and a thread count, fits on the train
split (early stopping on the val split where it takes one) and returns the test split's
outputs: class probabilities (rows × classes) or predictions (rows × labels, in the labels'
units). fcnn trains through the library (:func:`fcnn_cli.engine.train.fit`, as ``fcnn train``
does) on the same split; ``--fcnn NAME=key=value,…`` adds fcnn with other options.
"""

import dataclasses
import tomllib
import warnings

import numpy as np

from baselines import LEAVES, PATIENCE, RATE, ROUNDS  # the trees as bench/baselines.py grows them
from fcnn_cli.core.config import NetConfig, TrainConfig, option_fields, typed
from fcnn_cli.core.errors import FcnnError

SHAPE = (64, 64, 64)  # fcnn's default network, which scikit-learn's MLP copies
NET_FIELDS = {f.name: f for f in option_fields(NetConfig)}
TRAIN_FIELDS = {f.name: f for f in option_fields(TrainConfig)}
# Set by the benchmark for every fcnn method alike, so not an option set's to change.
FIXED = ("seed", "threads", "task", "val_frac", "test_frac")


@dataclasses.dataclass(frozen=True)
class Fcnn:
    """fcnn with ``net`` (NetConfig options) and ``train`` (TrainConfig options) beside its
    defaults."""

    net: dict = dataclasses.field(default_factory=dict)
    train: dict = dataclasses.field(default_factory=dict)

    def __call__(self, split, seed, threads):
        from fcnn_cli.data.tables import Table
        from fcnn_cli.engine import train

        config = TrainConfig(**{**self.train, "seed": seed, "threads": threads,
                                "task": split.kind, "test_frac": 0.0})
        part = {name: Table(frame, targets=split.targets, name=f"{split.name} {name}")
                for name, frame in split.frames.items()}
        predictor = train.fit(part["train"], config, dict(self.net),
                              val_table=part["val"]).predictor
        out = predictor.outputs(split.frames["test"][predictor.features].to_numpy(np.float32))
        if split.kind == "regress":
            return predictor.task.predictive(out)[0]
        # The task's classes are the labels' names in its own order: put them in index order.
        order = [predictor.task.classes.index(str(k)) for k in range(split.classes)]
        return predictor.task.proba(out)[:, order]


def option_set(text):
    """``NAME=key=value,key=value`` (the options of ``fcnn train``, as a configuration file
    names them) as (NAME, Fcnn)."""
    name, sep, items = text.partition("=")
    if not sep or not name.strip() or not items.strip():
        raise FcnnError(f"--fcnn {text!r}: give NAME=key=value,… (for example "
                        "robust=scale=robust)", ("fcnn",))
    net, train = {}, {}
    for item in items.split(","):
        key, sep, value = (s.strip() for s in item.partition("="))
        key = key.replace("-", "_")
        fields = NET_FIELDS if key in NET_FIELDS else TRAIN_FIELDS
        if not sep or key not in fields or key in FIXED:
            raise FcnnError(f"--fcnn {name}: {item.strip()!r} is not key=value of an option "
                            "of fcnn train that the benchmark leaves free", ("fcnn",))
        (net if fields is NET_FIELDS else train)[key] = typed(fields[key], _value(value))
    # Refuse a bad value now, not after the other methods' runs.
    NetConfig(n_in=1, n_out=1, **net)
    TrainConfig(**train)
    return f"fcnn {name.strip()}", Fcnn(net, train)


def _value(text):
    """A value as a configuration file reads it (TOML), a bare word as a name."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def sklearn_mlp(split, seed, threads):
    """scikit-learn's MLP of fcnn's default shape, its own defaults otherwise (it takes no
    validation split), on standardised features and labels."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    if split.kind == "classify":
        model = MLPClassifier(SHAPE, random_state=seed)
    else:
        model = TransformedTargetRegressor(MLPRegressor(SHAPE, random_state=seed),
                                           transformer=StandardScaler())
    model = make_pipeline(StandardScaler(), model)
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(split.x["train"], _flat(split.y["train"]))
        return _outputs(model, split)


def hist_gradient_boosting(split, seed, threads):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    def fit(x, y, xv, yv):
        kind = HistGradientBoostingRegressor if split.kind == "regress" else \
            HistGradientBoostingClassifier
        model = kind(max_iter=ROUNDS, learning_rate=RATE, max_leaf_nodes=LEAVES,
                     early_stopping=True, n_iter_no_change=PATIENCE, scoring="loss",
                     random_state=seed)
        return model.fit(x, y, X_val=xv, y_val=yv)

    with threadpool_limits(threads, "openmp"):
        return _per_label(split, fit)


def lightgbm(split, seed, threads):
    import lightgbm as lgb

    def fit(x, y, xv, yv):
        kind = lgb.LGBMRegressor if split.kind == "regress" else lgb.LGBMClassifier
        model = kind(n_estimators=ROUNDS, learning_rate=RATE, num_leaves=LEAVES,
                     n_jobs=threads, random_state=seed, verbose=-1)
        return model.fit(x, y, eval_X=(xv,), eval_y=(yv,),
                         callbacks=[lgb.early_stopping(PATIENCE, verbose=False)])

    return _per_label(split, fit)


def realmlp(split, seed, threads):
    """RealMLP with its tuned defaults (pytabkit's RealMLP_TD), on the CPU."""
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

    kind = RealMLP_TD_Regressor if split.kind == "regress" else RealMLP_TD_Classifier
    model = kind(random_state=seed, n_threads=threads, device="cpu", verbosity=0)
    with warnings.catch_warnings():  # pytorch-lightning's deprecations, once a fit
        warnings.simplefilter("ignore", DeprecationWarning)
        model.fit(split.x["train"], _flat(split.y["train"]), split.x["val"],
                  _flat(split.y["val"]))
    return _outputs(model, split)


def _per_label(split, fit):
    """One model per label for the trees, which take one; classification's probabilities."""
    x, xv = split.x["train"], split.x["val"]
    y, yv = split.y["train"], split.y["val"]
    if split.kind == "classify":
        return fit(x, y, xv, yv).predict_proba(split.x["test"])
    return np.stack([fit(x, y[:, k], xv, yv[:, k]).predict(split.x["test"])
                     for k in range(y.shape[1])], 1)


def _flat(y):
    """One label as a vector: the libraries take several as a matrix, one as a vector."""
    return y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y


def _outputs(model, split):
    if split.kind == "classify":
        return model.predict_proba(split.x["test"])
    return np.asarray(model.predict(split.x["test"]), np.float64).reshape(len(split.x["test"]),
                                                                          -1)


# What each method needs beyond fcnn, for the note that skips it where it is missing.
METHODS = {
    "fcnn": (Fcnn(), None),
    "scikit-learn MLP": (sklearn_mlp, "sklearn"),
    "HistGradientBoosting": (hist_gradient_boosting, "sklearn"),
    "LightGBM": (lightgbm, "lightgbm"),
    "RealMLP": (realmlp, "pytabkit"),
}
