"""The methods of the tabular benchmark (bench/tabular.py), one registry entry each.

A method takes a :class:`tabular_tables.Split`, a seed and a thread count, fits on the train
split (early stopping on the val split) and returns the test split's outputs — class
probabilities (rows × classes) or predictions (rows × labels, in the labels' units) — and the
seconds it took to fit and predict. fcnn trains through the library
(:func:`fcnn_cli.engine.train.fit`, as ``fcnn train`` does) on the same split, on the CPU as
the others; its time ends with its last epoch, leaving out the final reports (each split's
metrics and the overtraining check), which no other method makes. ``fcnn one network`` is fcnn
trained as one network (``--ensemble 1``) where its default trains a small table's members;
``--fcnn NAME=key=value,…`` adds fcnn with other options.
"""

import dataclasses
import functools
import time
import tomllib
import warnings

import numpy as np

import trees
from fcnn_cli.core.config import NetConfig, TrainConfig, option_fields, typed
from fcnn_cli.core.errors import FcnnError

SHAPE = (64, 64, 64)  # fcnn's default network, which scikit-learn's MLP copies
NET_FIELDS = {f.name: f for f in option_fields(NetConfig)}
TRAIN_FIELDS = {f.name: f for f in option_fields(TrainConfig)}
# Set by the benchmark for every fcnn method alike, so not an option set's to change.
# The CPU: the other methods are held to it, and a GPU would time the hardware, not the method.
FIXED = ("seed", "threads", "device", "task", "val_frac", "test_frac")
# fcnn as one network, as an option set: on tables of fewer than 10 000 training rows (all of
# the default run's) fcnn's default trains 5 members, whose mean this shows the gain of.
ONE_NETWORK = "one network=ensemble=1"


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
                                "device": "cpu", "task": split.kind, "test_frac": 0.0})
        part = {name: Table(frame, targets=split.targets, name=f"{split.name} {name}")
                for name, frame in split.frames.items()}
        ended = [None]  # when the last epoch ended: what follows is the final reports
        start = time.perf_counter()
        predictor = train.fit(part["train"], config, dict(self.net), val_table=part["val"],
                              on_epoch=lambda _: ended.__setitem__(0, time.perf_counter())
                              ).predictor
        fitting, start = ended[0] - start, time.perf_counter()
        out = predictor.outputs(split.frames["test"][predictor.features].to_numpy(np.float32))
        if split.kind == "regress":
            out = predictor.task.predictive(out)[0]
        else:
            # The task's classes are the labels' names in its own order: put them in index
            # order.
            order = [predictor.task.classes.index(str(k)) for k in range(split.classes)]
            out = predictor.task.proba(out)[:, order]
        return out, fitting + time.perf_counter() - start


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


def timed(method):
    """A method that returns its outputs, made to return them with the seconds it took."""
    @functools.wraps(method)
    def run(split, seed, threads):
        start = time.perf_counter()
        out = method(split, seed, threads)
        return out, time.perf_counter() - start

    return run


@timed
def sklearn_mlp(split, seed, threads):
    """scikit-learn's MLP of fcnn's default shape, its own defaults otherwise, on standardised
    features and labels. It takes no validation split: it trains on train + val and stops
    early on a share of them as large as val (drawn by scikit-learn, stratified by class)."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    rows = {part: len(split.x[part]) for part in ("train", "val")}
    stopping = dict(early_stopping=True, random_state=seed,
                    validation_fraction=rows["val"] / (rows["train"] + rows["val"]))
    if split.kind == "classify":
        model = MLPClassifier(hidden_layer_sizes=SHAPE, **stopping)
    else:
        model = TransformedTargetRegressor(MLPRegressor(hidden_layer_sizes=SHAPE, **stopping),
                                           transformer=StandardScaler())
    model = make_pipeline(StandardScaler(), model)
    x = np.concatenate([split.x["train"], split.x["val"]])
    y = np.concatenate([split.y["train"], split.y["val"]])
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, _flat(y))
        return _outputs(model, split)


def boosted(fit):
    """The method of a tree library's ``fit`` (trees.py): one model per label, early stopping on
    the val split."""
    @timed
    def run(split, seed, threads):
        models = trees.per_label(
            split.kind, lambda x, y, xv, yv: fit(split.kind, x, y, xv, yv, seed, threads),
            (split.x["train"], split.y["train"]), (split.x["val"], split.y["val"]))
        return trees.predict(split.kind, models, split.x["test"])

    return run


@timed
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
    "fcnn one network": (option_set(ONE_NETWORK)[1], None),
    "scikit-learn MLP": (sklearn_mlp, "sklearn"),
    "HistGradientBoosting": (boosted(trees.hist_gradient_boosting), "sklearn"),
    "LightGBM": (boosted(trees.lightgbm), "lightgbm"),
    "RealMLP": (realmlp, "pytabkit"),
}
