"""A model's recipe (:mod:`fcnn_cli.data.recipe`) applied to new raw tables: predict's stream
(the columns made, the rows flagged or kept by the selection, every row written), evaluate's
(samples of the model's classes, the selection counted, the weights where the table holds
their columns, the notes of its report)."""

import dataclasses
import logging

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.recipe import Recipe, rows_of

SELECTED = "selected"  # predict's 0/1 column: whether a row passes the model's selection

log = logging.getLogger(__name__)


def predicting(recipe, tables, names, keep_selected=False):
    """Each raw table of a stream with the columns ``names`` made (checked as features
    are first); where the recipe selects, with the 0/1 column SELECTED, or
    (``keep_selected``) only the rows that pass."""
    import numpy as np

    for table in tables:
        recipe.check_raw(table, names, select=True, weigh=False)
        if recipe.where and SELECTED in table.frame.columns and not keep_selected:
            raise FcnnError(f"{table.name}: has a column {SELECTED!r}, the name of the "
                            "column that says which rows pass the selection; rename it")
        table = recipe.derive(table)
        if recipe.where:
            keep = recipe.passes(table)
            table = rows_of(table, keep) if keep_selected else dataclasses.replace(
                table, frame=table.frame.assign(**{SELECTED: keep.astype(np.int8)}))
        yield table


def evaluating(recipe, sources, names, tally, select=True, weigh=True):
    """The tables of ``sources`` ([(sample or None, path)]) read in chunks, each through
    the steps: the columns ``names`` made (checked first), the rows that pass the
    selection (``select``; ``tally`` counts them and those removed) with their class and
    weight columns (``weigh``; rows of weight 0 left out, counted as "zero_weight")."""
    from fcnn_cli.data.tables import iter_tables

    for sample, path in sources:
        for table in iter_tables(path):
            recipe.check_raw(table, names, select, weigh, sample)
            table = recipe.derive(table)
            if select:
                table, removed = recipe.select(table, sample)
                tally["removed"] += removed
            table = recipe.finish(table, sample, weigh)
            if weigh:
                table = _weighing(table, recipe.weight_column, tally)
            tally["kept"] += len(table.frame)
            yield table


def _weighing(table, column, tally):
    """``table`` without its rows of weight exactly 0, counted in ``tally``: training leaves
    them out before any metric (engine.eventweights), and the same file must give the same
    rows, support and confusion matrix here."""
    if column not in table.frame.columns:  # the predictor's own check names it
        return table
    zero = (table.frame[column] == 0).to_numpy(bool)
    if not zero.any():
        return table
    tally["zero_weight"] = tally.get("zero_weight", 0) + int(zero.sum())
    return rows_of(table, ~zero)


def weighs(recipe, paths, given=False):
    """Whether evaluate weighs the rows of the raw tables ``paths``: where the recipe has
    weights, and each table (its first chunk) holds the columns they read; ``given``: the
    weight was given for this evaluation, and a missing column is the usual error then.
    Stdin is not looked at before it is read."""
    from fcnn_cli.data.tables import iter_tables

    if recipe.weight_column is None:
        return False
    if given or "-" in paths:
        return True
    for path in paths:
        first = next(iter(iter_tables(path)))
        missing = [c for c in recipe.needs([], select=False) if c not in first.frame.columns]
        if missing:
            _refuse_sample_unweighed(recipe, path, missing[0])
            log.warning(
                "%s: no column %r, which the model's weight %s reads: the events are "
                "counted, not weighted", path, missing[0], recipe.weight)
            return False
    return True


def _refuse_sample_unweighed(recipe, path, column):
    """Refuse a sample's file without a column the weight reads: counting every sample's
    events would drop the weights and the scales of all of them, unasked."""
    sample = next((s.name for s in recipe.samples if s.name is not None and path in s.files),
                  None)
    if sample is not None:
        raise FcnnError(f"sample {sample!r}: {path} has no column {column!r}, which the "
                        f"model's weight {recipe.weight} reads; give --weight another, or "
                        "--no-weight to count events")


def every_row(tables, predict, features, fills=False):
    """(table, its predictions) of each table of a stream that :func:`predicting` flagged:
    ``predict`` (a stream of tables in, (part, predictions) out, as a Predictor's
    predict_chunks) scores the rows that pass the selection, and those that fail it where
    their features are all finite or the model ``fills`` missing values (--nan fill); a row
    that fails it and lacks a feature value (a second muon it does not have) gets empty
    predictions otherwise. Tables come back whole and in order."""
    import collections

    import pandas as pd

    pending = collections.deque()

    def scorable():
        for table in tables:
            ok = table.frame[SELECTED].to_numpy(bool) | (fills or _finite(table, features))
            pending.append((table, ok, []))
            yield table if ok.all() else rows_of(table, ok)

    for _, frame in predict(scorable()):
        table, ok, got = pending[0]
        got.append(frame)
        if sum(len(f) for f in got) == ok.sum():
            pending.popleft()
            scored = pd.concat(got)
            scored.index = table.frame.index[ok]
            yield table, scored.reindex(table.frame.index)


def _finite(table, features):
    """Whether each row's features are all finite numbers (all true where they are not all
    numeric: the predictor's own check names the column)."""
    import numpy as np

    try:
        values = table.frame[features].to_numpy(dtype=np.float64, na_value=np.nan)
    except (KeyError, TypeError, ValueError):
        return np.ones(len(table.frame), bool)
    return np.isfinite(values).all(axis=1)


def for_evaluation(recipe, samples=None, weight=None, weigh=True, task=None):
    """The recipe evaluate applies: the model's ``recipe`` (None: an empty one) with the
    ``samples`` given (samples.Sample, their files found; their names must be classes of the
    classification ``task``), and the ``weight`` expression instead of the model's; ``weigh``
    false: no weights at all."""
    base = recipe or Recipe()
    found = list(samples or [])
    if found:
        classes = getattr(task, "classes", None)
        if classes is None:
            raise FcnnError("samples: they give rows of classes, and the model is a "
                            "regression", ("samples",))
        unknown = [s.name for s in found if s.name not in classes]
        if unknown:
            raise FcnnError(f"sample {unknown[0]!r} is no class of the model; its classes are "
                            f"{', '.join(map(repr, classes))}", ("samples",))
    _carry_selections(found, base.samples)
    evaluated = Recipe(found, list(base.objects), base.expanded, list(base.define), base.where,
                       (weight or base.weight) if weigh else None,
                       task.target if found else None)
    if not weigh:
        for sample in evaluated.samples:
            sample.scale = 1.0
    return evaluated.check()


def _carry_selections(samples, trained):
    """Give each sample the selection of the model's sample of its name, on top of its own:
    training never saw the rows it cut away, and scoring them would judge the model on
    events it was not made for."""
    cuts = {s.name: s.where for s in trained if s.where}
    for sample in samples:
        cut = cuts.get(sample.name)
        if cut is not None:
            sample.where = cut if not sample.where else f"({cut}) and ({sample.where})"


def evaluation_notes(recipe, tally, select, weighed, model=None):
    """What evaluate's report says of the recipe it applied: the selection and the rows it
    removed, the weight (None: events counted), the samples, their scales and selections
    (those carried from the ``model``'s recipe said so)."""
    if recipe.empty:
        return {}
    notes = {"weighted": weighed, "weight": recipe.weight if weighed else None}
    if recipe.where or any(s.where for s in recipe.samples):
        notes["selection"] = {"where": recipe.where, "applied": select, "rows_kept":
                              tally["kept"], "rows_removed": tally["removed"]}
    if tally.get("zero_weight"):
        notes["rows_of_weight_0"] = tally["zero_weight"]
    if recipe.samples:
        cuts = {s.name: s.where for s in (model.samples if model else []) if s.where}
        notes["samples"] = [_sample_note(s, select, cuts) for s in recipe.samples]
    return notes


def _sample_note(sample, select, cuts):
    note = {"name": sample.name, "scale": sample.scale, "files": list(sample.files)}
    if sample.where:
        note |= {"where": sample.where, "applied": select}
    if sample.name in cuts:  # said: the rows were cut as in training, not only as asked
        note["where_of_the_model"] = cuts[sample.name]
    return note
