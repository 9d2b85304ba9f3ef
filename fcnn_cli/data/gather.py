"""The table a run trains on, gathered by a recipe from its files (:mod:`fcnn_cli.data.recipe`):
the recipe of a run's options, each file read for the columns the run needs (and hashed, for
the run's record) and through the recipe's steps, the files combined once they agree on the
columns used, or a recipe's Parquet files streamed as one source
(:class:`fcnn_cli.data.sources.RecipeSource`)."""

import os

import dataclasses
import functools

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import samples as sampling
from fcnn_cli.data.recipe import Recipe


def of_config(data, targets=None, stream=False):
    """The recipe of a DataConfig's options (DATA of several files or globs too), or None
    where DATA is one table (``stream``: or one directory, a source of its own) and nothing
    else is asked."""
    label = None
    if data.samples and targets:
        if len(targets) != 1:
            raise FcnnError("with samples, targets names the one class column they make, not "
                            f"{len(targets)} columns", ("targets", "samples"))
        label = targets[0]
    recipe = Recipe.of_options(data.samples, data.define, data.objects, data.where, data.weight,
                               label)
    if data.samples and data.data:
        raise FcnnError("give DATA or samples, not both", ("samples",))
    if not data.samples and data.data:
        patterns = sampling.data_patterns(data.data)
        whole = stream and patterns == [data.data] and os.path.isdir(data.data)
        if (patterns is None or whole) and recipe.empty:
            return None
        recipe.samples = [sampling.Sample(None, patterns or [data.data], whole=whole)]
    return recipe


def first_file(data):
    """The first of DATA's files (a name, a comma-separated list, a glob, a directory): the one
    whose metadata speaks for them; None for stdin, and where none is found (reading says
    why)."""
    patterns = sampling.data_patterns(data)
    if patterns is None:
        return None if data == "-" else data
    try:
        return sampling.find(patterns[:1])[0]
    except FcnnError:
        return None


def check_training(recipe, data, config):
    """Refuse, before any table is read, what a recipe does not train with."""
    if recipe.samples and recipe.samples[0].name is not None:
        if len(recipe.samples) < 2:
            raise FcnnError("samples: give two or more, one for each class", ("samples",))
        if data.val or data.test:
            raise FcnnError("samples: their rows are split for validation and testing too; "
                            "leave out val and test", ("samples", "val", "test"))
        if config.task == "regress":
            raise FcnnError("samples: they make classes, and task='regress' takes a label "
                            "column of DATA", ("samples", "task"))


def streamed_tables(recipe, paths, targets, features):
    """:func:`training_tables`, streamed: the recipe's Parquet files as one source of pieces
    and the validation and test files in chunks, each through the steps."""
    from fcnn_cli.data import sources

    if paths[0] and os.path.isdir(paths[0]) and not recipe.classes:  # as it began (--resume)
        recipe.samples[0].whole, recipe.samples[0].files = True, [paths[0]]
    source = sources.RecipeSource(recipe)
    others = [sources.RecipeChunks(p, recipe) if p else None for p in paths[1:]]
    return [source, *others], recipe.features(source.read(0), targets, features)


def training_tables(recipe, paths, targets, features, fold_by=None, categorical=None):
    """([the table, the validation table, the test table], the features) that training takes
    from ``paths`` (DATA, --val, --test; DATA's files are the recipe's samples): each file
    through the recipe's steps, the files of DATA as one table; the features those named, or
    every other numeric column but the weight's. ``fold_by``: k-fold's column (an event
    number), which DATA's table keeps and which is no feature unless named; ``categorical``:
    the columns named as such, read as they are (their values are their levels)."""
    # Without targets the labels are those each file records, known only once it is read:
    # then every column is used.
    used = None if features is None or not targets else \
        list(dict.fromkeys([*features, *targets, *[c for c in [recipe.weight_column] if c]]))
    narrow = [*(targets or []), *[c for c in [recipe.weight_column] if c], *(categorical or [])]
    data = used and list(dict.fromkeys([*used, *[c for c in [fold_by] if c]]))
    # asked anew before each file: the first one shows the objects' columns
    table = read(recipe, data, narrow, functools.partial(raw_columns, recipe, data))
    others = [read_one(recipe, p, used, narrow, raw_columns(recipe, used)) if p else None
              for p in paths[1:]]
    chosen = table if fold_by not in table.frame.columns else \
        dataclasses.replace(table, frame=table.frame.drop(columns=[fold_by]))
    return [table, *others], recipe.features(chosen, targets, features)


def raw_columns(recipe, used):
    """The columns of a raw file that make the columns ``used`` and select and weigh its rows:
    those a file is read for. None (all of them) where the features are every other numeric
    column, and where the objects' columns are not yet known (the first file shows them)."""
    if used is None or recipe.objects and recipe.expanded is None:
        return None
    return recipe.to_read(used)


def combine(tables, name, used=None, label=None):
    """One Table of several, once they agree on the columns ``used`` (None: all of them)."""
    import pandas as pd

    from fcnn_cli.data.tables import Table

    first = tables[0]
    wanted = list(used) if used is not None else \
        list(dict.fromkeys(c for t in tables for c in t.frame.columns))
    for table in tables:
        missing = [c for c in wanted if c not in table.frame.columns]
        if missing:
            other = next(t.name for t in tables if missing[0] in t.frame.columns) \
                if used is None else None
            has = f" ({other} has it)" if other else ""
            raise FcnnError(f"{table.name}: no column {missing[0]!r}{has}; the files must "
                            "agree on the columns used")
    if len(tables) == 1 and used is None:
        return first
    frame = pd.concat([t.frame[wanted] for t in tables], ignore_index=True)
    targets = [label] if label is not None else first.targets
    return Table(frame, targets, first.units, name, extra=first.extra)


def read(recipe, used=None, narrow=None, raw=lambda: None):
    """Every sample's files read, each through the steps, as one table. ``used``: the
    columns training takes, all that every file must have (None: all columns, then every file
    must have those of the others); ``narrow`` as read_table takes it; ``raw()``: the columns
    of each file to read (None: all of them), asked anew before each file."""

    if recipe.define or recipe.objects:
        narrow = None  # definitions compute in float64, as predict's will
    tables = []
    for sample in recipe.samples:
        records, made = [], []
        for path in sample.files:
            table, record = _recorded(sample, path, narrow, raw())
            made.append(recipe.apply(table, sample))
            records += [record] if record is not None else []
        sample.records = records
        _check_weighs(recipe, sample, made)
        tables += made
    return combine(tables, recipe.name(), used, recipe.label)


def _check_weighs(recipe, sample, tables):
    """Refuse a sample whose rows all weigh 0: training leaves them out, and the class with
    them, which would be refused as a label of one class, the sample unnamed."""
    column = recipe.weight_column
    if column is None or sample.name is None:
        return
    rows = sum(len(t.frame) for t in tables)
    if rows and all((t.frame[column] == 0).all() for t in tables):
        raise FcnnError(f"sample {sample.name!r} weighs 0 in all its {rows:,} rows (weight "
                        f"{recipe.weight}): it gives training nothing", ("samples", "weight"))


def _recorded(sample, path, narrow, columns):
    """(the table of ``path``'s ``columns``, what the run records of the file): hashed just
    before it is read, a file that changes in between refused (stdin and pipes: no record)."""
    from fcnn_cli.data import sources
    from fcnn_cli.data.tables import input_file, read_table

    if not sampling.recordable(path):
        return read_table(path, narrow, columns), None
    with sources.unchanged(input_file(path)):
        record = sample.recorded(path)
        return read_table(path, narrow, columns), record


def read_one(recipe, path, used=None, narrow=None, columns=None):
    """The table of one more file (a validation or test table) through the steps, of its
    ``columns`` (None: all)."""
    from fcnn_cli.data.tables import read_table

    narrow = None if recipe.define or recipe.objects else narrow
    return combine([recipe.apply(read_table(path, narrow, columns))], str(path), used)
