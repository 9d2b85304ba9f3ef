"""What bench/baselines.py and bench/tabular.py share: gradient-boosted trees (scikit-learn's
HistGradientBoosting and LightGBM) grown with one set of settings, one model per label where a
library takes one label, and the two scores both print (RMSE and accuracy).

Every library gets the same settings: learning rate 0.1, up to 1 000 rounds, trees of at most
31 leaves, early stopping after 20 rounds without a better loss on the validation split.
"""

import numpy as np

ROUNDS, RATE, LEAVES, PATIENCE = 1000, 0.1, 31, 20


def hist_gradient_boosting(kind, x, y, xv, yv, seed, threads):
    """A fitted HistGradientBoosting model of one label (``kind``: "classify" or "regress")."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    model = (HistGradientBoostingRegressor if kind == "regress" else
             HistGradientBoostingClassifier)(
        max_iter=ROUNDS, learning_rate=RATE, max_leaf_nodes=LEAVES, early_stopping=True,
        n_iter_no_change=PATIENCE, scoring="loss", random_state=seed)
    with threadpool_limits(threads, "openmp"):
        return model.fit(x, y, X_val=xv, y_val=yv)


def lightgbm(kind, x, y, xv, yv, seed, threads):
    """A fitted LightGBM model of one label."""
    import lightgbm as lgb

    model = (lgb.LGBMRegressor if kind == "regress" else lgb.LGBMClassifier)(
        n_estimators=ROUNDS, learning_rate=RATE, num_leaves=LEAVES, n_jobs=threads,
        random_state=seed, verbose=-1)
    return model.fit(x, y, eval_X=(xv,), eval_y=(yv,),
                     callbacks=[lgb.early_stopping(PATIENCE, verbose=False)])


def per_label(kind, fit, train, val):
    """The models ``fit(x, y, xv, yv)`` returns: one for classification (class indices), one
    per label (column of ``y``) for regression. ``train`` and ``val`` are (x, y)."""
    (x, y), (xv, yv) = train, val
    if kind == "classify":
        return [fit(x, y, xv, yv)]
    return [fit(x, y[:, k], xv, yv[:, k]) for k in range(y.shape[1])]


def predict(kind, models, x):
    """Class probabilities (rows × classes), or predictions (rows × labels) of per_label's
    models."""
    if kind == "classify":
        return models[0].predict_proba(x)
    return np.stack([model.predict(x) for model in models], 1)


def rmse(truth, out):
    """Root mean squared error over all rows and labels."""
    return float(np.sqrt(np.mean((np.asarray(out, np.float64) - truth) ** 2)))


def accuracy(truth, proba):
    """The share of rows whose most probable class is the true one."""
    return float(np.mean(np.asarray(proba).argmax(1) == truth))
