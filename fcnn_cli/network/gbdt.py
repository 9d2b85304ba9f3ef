"""The gradient-boosted tree baseline: scikit-learn's HistGradientBoosting, fitted on the split
and kept as node arrays (:mod:`~fcnn_cli.network.forest`).

scikit-learn is needed to fit only (the optional extra ``fcnn[gbdt]``), imported then: a saved
baseline predicts with numpy from its arrays, so its file is plain tensors and text and loads
without the library and without running code from the file (the library's own way to save is
pickle). Regression fits one model per label, since HistGradientBoosting takes one; each stops
early on the validation split's loss.

Weights go to the library as they are: each row's gradient and hessian are multiplied by its
weight, so a negative weight subtracts what the same row of positive weight adds; a split that
would leave a side whose summed hessian (for squared error, the summed weights) is below
1e-3 is not made, so no leaf ends with a negative total. Rows still count towards the 20 rows
a leaf needs and towards the bin edges whatever their weight: a row of weight 0 is almost,
not exactly, absent.

The weights a run passes (:mod:`fcnn_cli.engine.baselines`) are those its network's loss takes.
A weighted run passes each training row's weight with ``class_weight="balanced"`` already
folded in (normalised to a mean of 1), and its validation rows' weights; its task then has no
class weights. A run that takes the path of no weights passes None, and its task's class
weights (balanced: one a class, set when the run asks for balance) become each row's weight
here, in the training rows and in the validation rows that early stopping scores alike.
"""

import numpy as np

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.network import baseline
from fcnn_cli.network.forest import DTYPES, Forest

NAME = "gbdt"
# A tree per class each round: beyond this many classes the fit would take hours and the file
# hundreds of megabytes; refused before anything is trained.
MAX_CLASSES = 100
# Training rows on which the trees, as read, must predict what the library predicts.
CHECKED_ROWS = 256
TESTED = "1.9"  # the scikit-learn whose private tree layout the tests have checked


class GradientBoostedTrees:
    """``learning_rate``, at most ``rounds`` rounds of trees of at most ``leaves`` leaves,
    stopping after ``patience`` rounds without a better validation loss; ``threads`` CPU
    threads (None: the library's choice). One by default: the library's OpenMP threads wait for
    one another at every split, and where a neighbour keeps one of the cores busy they wait
    for its turns (on a loaded 2-core machine a fit took 83 s with both threads, 2 s with one)."""

    name = NAME

    def __init__(self, learning_rate=0.1, rounds=1000, leaves=31, patience=20, seed=0,
                 threads=1):
        self.options = {"learning_rate": learning_rate, "rounds": rounds, "leaves": leaves,
                        "patience": patience, "seed": seed}
        self.threads = threads
        self.forest = None
        self.kind, self.labels, self.link, self.rounds = None, [], None, []
        self.info = {}

    def check(self, task, n_features):
        if task.kind == "classify" and len(task.classes) > MAX_CLASSES:
            raise FcnnError(f"the gbdt baseline takes at most {MAX_CLASSES} classes (a tree "
                            f"each per round), not {len(task.classes)}", ("baseline",))

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val, task):
        self.check(task, x_train.shape[1])
        ensemble = _library()
        from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

        w_train, w_val = _weights(task, y_train, w_train), _weights(task, y_val, w_val)
        _positive_total(w_train)
        if task.kind == "classify":
            _every_class(task, y_train)
        with threadpool_limits(self.threads, "openmp"):  # None: no limit
            models = [self._fit(ensemble, task.kind, x_train, y, w_train, x_val, y_v, w_val)
                      for y, y_v in _by_label(task.kind, y_train, y_val)]
            self._keep(models, task, x_train.shape[1])
            self._faithful(models, x_train[:CHECKED_ROWS])
        return self

    def _fit(self, ensemble, kind, x, y, w, x_val, y_val, w_val):
        """One library model fitted; without validation rows it holds out 10 % of its own."""
        o = self.options
        model = (ensemble.HistGradientBoostingRegressor if kind == "regress" else
                 ensemble.HistGradientBoostingClassifier)(
            learning_rate=o["learning_rate"], max_iter=o["rounds"], max_leaf_nodes=o["leaves"],
            early_stopping=True, n_iter_no_change=o["patience"], scoring="loss",
            random_state=o["seed"])
        val = {} if x_val is None or not len(x_val) else \
            {"X_val": x_val, "y_val": y_val, "sample_weight_val": w_val}
        return model.fit(x, y, sample_weight=w, **val)

    def _keep(self, models, task, n_features):
        self.kind = task.kind
        self.labels = list(task.targets if task.kind == "regress" else task.classes)
        self.link = _link(task.kind, len(self.labels))
        self.rounds = [int(m.n_iter_) for m in models]
        try:
            self.forest = _forest(models, n_features)
        except FcnnError as e:  # the fit itself went wrong (weights that cancel, say)
            raise FcnnError(f"the gbdt baseline's fit failed: {e}") from None

    def _faithful(self, models, x):
        """The node arrays come from the library's private attributes: they must predict as
        the library does, or a release that changed them is named instead of trusted."""
        if self.kind == "classify":
            theirs = models[0].predict_proba(x)
        else:
            theirs = np.stack([m.predict(x) for m in models], axis=1)
        if not np.allclose(self.predict(x), theirs, rtol=1e-9, atol=1e-9):
            raise FcnnError(f"the gbdt baseline misreads the trees of scikit-learn "
                            f"{_versions()['scikit-learn']}; it was tested with {TESTED}",
                            ("baseline",))

    def predict(self, x):
        """Rows × labels (regression) or rows × classes probabilities, for features that are
        (or are rounded to) float32, as fcnn's are; NaN goes where training sent it."""
        if self.forest is None:
            raise FcnnError("the gbdt baseline is not fitted yet")
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.forest.n_features:
            raise FcnnError(f"the gbdt baseline takes {self.forest.n_features} features, not "
                            f"{x.shape[-1] if x.ndim else 0}")
        raw = self.forest.raw(x)
        if self.link == "identity":
            return raw
        if self.link == "sigmoid":
            p = 0.5 + 0.5 * np.tanh(0.5 * raw[:, 0])  # the logistic, with no overflow
            return np.stack([1.0 - p, p], axis=1)
        z = np.exp(raw - raw.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def save(self, path):
        import torch

        meta = {"task": self.kind, "labels": self.labels, "link": self.link,
                "n_features": self.forest.n_features, "rounds": self.rounds,
                "options": self.options, "library": _versions(), "info": self.info}
        state = {k: torch.from_numpy(np.ascontiguousarray(v))
                 for k, v in self.forest.arrays().items()}
        baseline.write(path, NAME, meta, state)

    @classmethod
    def load(cls, path):
        return baseline.loaded(path, NAME, cls._of)

    @classmethod
    def _of(cls, meta, state):
        kind, labels, link = meta["task"], meta["labels"], meta["link"]
        _need(kind in ("regress", "classify"), f"unknown task {kind!r}")
        _need(isinstance(labels, list) and all(isinstance(v, str) for v in labels) and
              len(set(labels)) == len(labels) and labels, "the labels are not distinct names")
        _need(link == _link(kind, len(labels)), f"a {link!r} output for {len(labels)} "
              f"{'labels' if kind == 'regress' else 'classes'}")
        _need(set(state) == set(DTYPES), f"tensors {sorted(state)}, not {sorted(DTYPES)}")
        forest = Forest.of_arrays({k: v.numpy() for k, v in state.items()},
                                  meta["n_features"])
        outputs = len(labels) if link != "sigmoid" else 1
        _need(forest.n_outputs == outputs, f"{forest.n_outputs} outputs for {outputs}")
        info, rounds = meta.get("info", {}), meta.get("rounds", [])
        _need(isinstance(info, dict), "the info is not a JSON object")
        _need(isinstance(rounds, list) and all(type(r) is int for r in rounds),
              "the rounds are not whole numbers")
        made = cls(**{k: meta["options"][k] for k in ("learning_rate", "rounds", "leaves",
                                                      "patience", "seed")})
        made.forest, made.kind, made.labels, made.link = forest, kind, labels, link
        made.rounds, made.info = rounds, info
        return made


def _forest(models, n_features):
    """One forest of the fitted models: one model per label (regression), or one whose
    iterations hold a tree per class (or one for two classes). It reads ``_predictors`` and
    ``_baseline_prediction``, which scikit-learn keeps private: ``_faithful`` checks them."""
    trees, offset = [], []
    for label, model in enumerate(models):
        per_round = model.n_trees_per_iteration_
        base = label if len(models) > 1 else 0
        offset.extend(np.ravel(model._baseline_prediction).tolist())
        for iteration in model._predictors:
            for k, predictor in enumerate(iteration):
                trees.append(_tree(predictor.nodes, base + k if per_round > 1 else base))
    return Forest.join(trees, offset, n_features)


def _tree(nodes, output):
    if nodes["is_categorical"].any():  # never asked for: every feature is a number
        raise FcnnError("a categorical split")
    return {"feature": nodes["feature_idx"], "threshold": nodes["num_threshold"],
            "missing_left": nodes["missing_go_to_left"].astype(bool), "left": nodes["left"],
            "right": nodes["right"], "value": nodes["value"], "leaf": nodes["is_leaf"],
            "output": output}


def _by_label(kind, y, y_val):
    """(training, validation labels) of each model: one for classes, one a label else."""
    if kind == "classify":
        return [(y, y_val)]
    y = np.asarray(y).reshape(len(y), -1)
    y_val = None if y_val is None else np.asarray(y_val).reshape(len(y_val), -1)
    return [(y[:, k], None if y_val is None else y_val[:, k]) for k in range(y.shape[1])]


def _weights(task, y, w):
    """Rows' weights times the task's class weights (None: every row 1)."""
    class_weights = getattr(task, "weights", None)
    if task.kind != "classify" or class_weights is None or y is None:
        return None if w is None else np.asarray(w, dtype=np.float64)
    by_class = np.asarray(class_weights, dtype=np.float64)[np.asarray(y)]
    return by_class if w is None else by_class * np.asarray(w, dtype=np.float64)


def _positive_total(w):
    if w is not None and not np.sum(w) > 0:
        raise FcnnError(f"the training rows' weights sum to {np.sum(w):g}: the gbdt baseline "
                        "needs a positive total")


def _every_class(task, y):
    counts = np.bincount(np.asarray(y), minlength=len(task.classes))
    if not counts.all():
        raise FcnnError(f"class {task.classes[int(np.argmin(counts))]!r} has no training rows: "
                        "the gbdt baseline needs each class in them")


def _link(kind, n_labels):
    if kind == "regress":
        return "identity"
    return "sigmoid" if n_labels == 2 else "softmax"


def _library():
    try:
        import sklearn.ensemble
    except ImportError:
        raise FcnnError("the gbdt baseline needs scikit-learn: pip install 'fcnn[gbdt]'",
                        ("baseline",)) from None
    return sklearn.ensemble


def _versions():
    import sklearn

    return {"scikit-learn": sklearn.__version__}


def _need(ok, what):
    if not ok:
        raise FcnnError(what)
