"""Helpers of the sweep tests (tests/sweeps/): options that train in a moment, a stand-in for
training that must not happen, and a count of the passes and runs that did."""

from fcnn_cli.engine import train

FIXED = {"epochs": 1, "batch_size": 32, "threads": 1, "width": 8}


def never(*args):
    raise AssertionError("a finished combination trained again")


def counting(monkeypatch):
    """Counts of the passes the ensemble path trains (each with its cohorts' sizes) and of
    the runs fit trains."""
    from fcnn_cli.engine import ensemble

    calls = {"passes": [], "fits": 0}
    real_cohorts, real_fit = ensemble.train_cohorts, train.fit

    def cohorts(data, group, *args, **kwargs):
        calls["passes"].append([c.config.ensemble for c in group])
        return real_cohorts(data, group, *args, **kwargs)

    def fit(*args, **kwargs):
        calls["fits"] += 1
        return real_fit(*args, **kwargs)
    monkeypatch.setattr(ensemble, "train_cohorts", cohorts)
    monkeypatch.setattr(train, "fit", fit)
    return calls
