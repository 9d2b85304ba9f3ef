"""Which inputs a model leans on: permutation importance. Each feature's values (as the network
sees them, after the model's recipe) are shuffled among the rows, and the headline metric
measured again; the worse it gets, the more the model needs that feature. For a model whose
features are definitions, each raw column the definitions read is shuffled as well, and the
definitions derived again: what the raw input is worth through every feature made of it.

The rows are held in memory (``gather``: all of them, refused past a memory budget, or a
seeded uniform sample of a given number) and scored by the predictor in its own chunks, as
evaluate scores them, weighted where evaluate weighs. Also here: the Pearson correlations of
the features in each class, for the plot of correlation matrices."""

import dataclasses

import numpy as np

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.results.evaluation import weights_of

MEMORY_SHARE = 0.25  # of the memory still free: the rows held, beside one permuted copy a
# column and the predictor's chunks


def metric(task, units=None, position=None):
    """(name, sign) of the metric ranked by: ROC AUC for two classes, else accuracy; for
    regression the mean distance of a point (``position``: the labels that form it, None: the
    model's), else the overall RMSE. ``sign`` is +1 where higher is better, so that ``sign *
    (baseline - permuted)`` is the loss in both cases."""
    if task.kind == "classify":
        return ("roc_auc" if len(task.classes) == 2 else "accuracy"), 1
    return ("mean_distance" if task.point(units, position) else "rmse"), -1


def value(name, report):
    """The metric ``name`` (see :func:`metric`) of an evaluation report."""
    if name == "mean_distance":
        return float(report["distance"]["mean"])
    if name == "rmse":
        return float(report["overall"]["rmse"])
    return float(report[name])


def gather(tables, rows=None, seed=0, budget=None):
    """One table of a stream of tables (their frames concatenated, the first one's metadata):
    with ``rows``, a uniform random sample of at most that many rows (each row draws a key
    from ``seed``'s generator, the smallest kept: bounded memory); without, every row, refused
    in one line once they take more than ``budget`` bytes (None: a share of the free memory)."""
    import pandas as pd

    rng, first, frames, keys = np.random.default_rng(seed), None, [], []
    budget = _budget() if budget is None and rows is None else budget
    held = 0
    for table in tables:
        first = first or table
        frames.append(table.frame)
        if rows is not None:
            keys.append(rng.random(len(table.frame)))
            frames, keys = _sampled(frames, keys, rows)
        else:
            held += int(table.frame.memory_usage(deep=True).sum())
            if budget is not None and held > budget:
                raise FcnnError(f"{first.name}: its rows take more than {budget / 2**30:.1f} GiB "
                                "of memory, the most ranking holds; rank a sample of them with "
                                "--rows N", ("rows",))
    if first is None:
        raise FcnnError("no rows to rank")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else \
        frames[0].reset_index(drop=True)
    return dataclasses.replace(first, frame=frame, first_row=0, file_rows=None)


def _sampled(frames, keys, rows):
    """The frames and keys cut to the ``rows`` rows of smallest keys, once they hold more."""
    import pandas as pd

    key = np.concatenate(keys)
    if len(key) <= rows:
        return frames, keys
    keep = np.sort(np.argpartition(key, rows)[:rows])
    frame = pd.concat(frames, ignore_index=True).iloc[keep].reset_index(drop=True)
    return [frame], [key[keep]]


def _budget():
    from fcnn_cli.machine.devices import cpu_memory_available

    free = cpu_memory_available()
    return None if free is None else int(free * MEMORY_SHARE)


@dataclasses.dataclass
class Ranking:
    """What permutation importance is measured over: the ``predictor``, the rows (``table``,
    after the recipe: raw, derived, class and weight columns), the evaluation's ``recipe``
    (data.recipe.Recipe, for the raw columns), the ``weight`` column or None, and the labels
    that form a point (``position``, None: the model's)."""

    predictor: object
    table: object
    recipe: object = None
    weight: str | None = None
    position: list | None = None

    def score(self, table):
        """The headline metric's value on ``table``, as evaluate measures it."""
        column = self.weight
        report = self.predictor.evaluate_chunks(
            [table], None, self.position,
            weight=column and (lambda frame: weights_of(frame, column)))
        return value(self.metric()[0], report)

    def metric(self):
        return metric(self.predictor.task, self.predictor.units, self.position)

    def unit(self, name):
        """The unit of the metric ``name``: the point's, or that which all labels share."""
        predictor = self.predictor
        if name == "mean_distance":
            labels = predictor.task.point(predictor.units, self.position)
        elif name == "rmse":
            labels = predictor.targets
        else:
            return ""
        units = {predictor.units.get(t, "") for t in labels}
        return units.pop() if len(units) == 1 else ""

    def raw_inputs(self):
        """The raw columns that the definitions of the model's features read (none for a
        model without definitions)."""
        recipe, features = self.recipe, self.predictor.columns
        if recipe is None or not recipe.made(features):
            return []
        return recipe.needs(recipe.made(features), select=False, weigh=False)

    def permuted(self, column, order, raw=False):
        """The rows with ``column`` in the ``order`` given; ``raw``: a raw column, the
        definitions derived again from it (the selection, class and weight stay the rows')."""
        frame = self.table.frame
        if raw:
            defined = {name for name, _ in self.recipe.definitions()}
            frame = frame.drop(columns=[c for c in frame.columns if c in defined])
        frame = frame.assign(**{column: frame[column].to_numpy()[order]})
        table = dataclasses.replace(self.table, frame=frame)
        return self.recipe.derive(table) if raw else table

    def rank(self, repeats=5, seed=0, baseline=None):
        """The report: the metric, its value on the rows as they are (``baseline``, if
        measured already), and for each input (``kind`` "feature" or "raw") the loss of each
        repeat (``drops``) and their mean and standard deviation, the largest mean first."""
        if repeats < 1:
            raise FcnnError(f"repeats={repeats}: at least 1", ("repeats",))
        base = self.score(self.table) if baseline is None else baseline
        name, sign = self.metric()
        inputs = [(c, "feature") for c in self.predictor.columns] + \
            [(c, "raw") for c in self.raw_inputs()]
        n = len(self.table.frame)
        entries = []
        for k, (column, kind) in enumerate(inputs):
            # A generator of each input's own: its shuffles do not hang on the others'.
            rng = np.random.default_rng([seed, k])
            drops = [sign * (base - self.score(self.permuted(column, rng.permutation(n),
                                                             kind == "raw")))
                     for _ in range(repeats)]
            entries.append({"name": column, "kind": kind, "mean": float(np.mean(drops)),
                            "std": float(np.std(drops, ddof=1)) if repeats > 1 else 0.0,
                            "drops": [float(d) for d in drops]})
        entries.sort(key=lambda e: -e["mean"] if e["mean"] == e["mean"] else np.inf)
        return {"metric": name, "unit": self.unit(name), "higher_is_better": sign > 0,
                "baseline": float(base),
                "rows": n, "weighted": self.weight is not None, "repeats": repeats,
                "seed": seed, "inputs": entries}


def correlations(table, features, task, weight=None):
    """The Pearson correlation matrices of the ``features``, weighted by the frame's column
    ``weight`` where given (:func:`pearson`): [(title, matrix, rows)], one for each class of a
    classification ``task`` that has rows, else one of every row; a constant feature's row and
    column are NaN."""
    rows = np.ones(len(table.frame), bool)
    groups = [("all rows", rows)]
    if task.kind == "classify":
        truth = np.asarray(task.truth(table))
        groups = [(str(c), truth == i) for i, c in enumerate(task.classes)]
        groups = [(title, mask) for title, mask in groups if mask.any()]
    x = table.frame[features].to_numpy(dtype=np.float64, na_value=np.nan)
    w = np.ones(len(x)) if weight is None else weights_of(table.frame, weight)
    return [(title, pearson(x[mask], w[mask]), int(mask.sum())) for title, mask in groups]


def pearson(x, weight=None):
    """The weighted Pearson correlations of the columns of ``x`` over its rows whose values
    and weight are finite: cov(i, j) = Σ w (xᵢ − x̄ᵢ)(xⱼ − x̄ⱼ), x̄ = Σ w x / Σ w, divided by
    √(cov(i, i) cov(j, j)) (unit weights, the default: numpy's ``corrcoef``).

    Negative weights are taken as they are, as the metrics and the overtraining test take
    them: rows of negative weight subtract from the distribution the sample describes (that of
    a generator's cancelling events), and |w| would describe another one. Hence the guards: no
    matrix (all NaN) where Σ w ≤ 0, for x̄ divides by it; NaN for a constant column or one
    whose weighted variance is not positive. Where negative weights dominate a region a
    correlation may fall outside [−1, 1]: it is kept as it is, the sign that the weights do
    not describe a distribution there."""
    weight = np.ones(len(x)) if weight is None else np.asarray(weight, np.float64).reshape(-1)
    keep = np.isfinite(x).all(axis=1) & np.isfinite(weight)
    x, weight = x[keep], weight[keep]
    n = x.shape[1]
    if len(x) < 2 or not weight.sum() > 0:
        return np.full((n, n), np.nan)
    d = x - (weight @ x) / weight.sum()
    cov = (d * weight[:, None]).T @ d
    # A constant column's weighted mean may miss its value by a rounding, which would leave
    # it a variance of ~1e-30 and correlations of noise: it has none.
    variance = np.where((np.ptp(x, axis=0) > 0) & (np.diag(cov) > 0), np.diag(cov), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / np.sqrt(np.outer(variance, variance))


def read(predictor, recipe, sources, select=True, weigh=True, nan=None, rows=None, seed=0):
    """(the rows to rank, as one table; the tally of the selection) of ``sources`` ([(sample
    or None, path)]) through the evaluation's ``recipe``, as evaluate reads them
    (:func:`fcnn_cli.data.applying.evaluating`): the columns made, the rows selected
    (``select``) and weighed (``weigh``), those lacking a value left out where ``nan`` is
    "drop"; ``rows`` and ``seed``: see :func:`gather`."""
    from fcnn_cli.data import applying
    from fcnn_cli.data.columns import drop_incomplete

    tally = {"removed": 0, "kept": 0}
    read = predictor.columns + recipe.made(predictor.targets)
    chunks = applying.evaluating(recipe, sources, read, tally, select, weigh)
    if nan == "drop":
        chunks = (drop_incomplete(t, predictor.columns + predictor.targets,
                                  labels=predictor.targets) for t in chunks)
    return gather(chunks, rows, seed), tally


def of_sources(predictor, recipe, sources, select=True, weigh=True, nan=None, rows=None,
               seed=0, position=None):
    """(a :class:`Ranking` of the rows of ``sources`` as :func:`read` reads them, the tally of
    the selection)."""
    table, tally = read(predictor, recipe, sources, select, weigh, nan, rows, seed)
    column = recipe.weight_column if weigh else None
    return Ranking(predictor, table, recipe, column, position), tally


def printed(report):
    """The ranking as a rich table: an input a row, the most important first."""
    from rich.table import Table
    from rich.text import Text

    from fcnn_cli.core.errors import printable

    unit = report.get("unit") or ""
    title = f"{report['metric']} {report['baseline']:.4g}{' ' + unit if unit else ''} on " \
        f"{report['rows']} rows" + (", weighted" if report["weighted"] else "") + \
        f", {report['repeats']} shuffles each"
    change = f"{report['metric']} {'drop' if report['higher_is_better'] else 'rise'}" + \
        (f" ({unit})" if unit else "")
    table = Table(title=Text(printable(title), style="table.title"))
    for name, justify in (("#", "right"), ("input", "left"), ("kind", "left"),
                          (change, "right"), ("std", "right")):
        table.add_column(Text(printable(name)), justify=justify)
    for i, e in enumerate(report["inputs"], 1):
        table.add_row(str(i), Text(printable(e["name"])), e["kind"], f"{e['mean']:.4g}",
                      f"{e['std']:.2g}")
    return table
