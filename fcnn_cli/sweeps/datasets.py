"""The data a sweep's combinations train on, read as ``fcnn train`` reads it: DATA as it is, or
through a recipe (samples, objects, definitions, selection, weight: :mod:`fcnn_cli.data.gather`).

A grid may vary a recipe's selection (``where``), its weight and its definitions (``define``).
The combinations that agree in their data options share their tables, read once for them all;
those of other data options read theirs in turn, so that one set of tables is in memory at a
time. The samples' files (or DATA's several files) are found and recorded (size, SHA-256) once
for the whole sweep, and every recipe reads those.
"""

import dataclasses
import os

from fcnn_cli.core.config import DataConfig

INPUTS = ("data", "val", "test")  # the DataConfig options that are files
VARIED = ("where", "weight", "define")  # the data options a grid may vary


@dataclasses.dataclass
class Inputs:
    """The tables of one set of data options (data, val, test; None where not given), read
    once for the combinations that share them, with what training takes of them: the label
    and feature columns (None: as training chooses), the weight column and the recipe (None
    where DATA is read as it is); ``files``: the :func:`fcnn_cli.sweeps.plan.data_files` of
    the whole sweep."""

    tables: list
    files: dict
    targets: list | None = None
    features: list | None = None
    weight: str | None = None
    recipe: object = None
    categorical: list | None = None  # feature columns one-hot encoded, besides text ones


def normalized(data):
    """DataConfig options as a sweep keeps them: checked, every default filled in, the paths
    absolute (as ``fcnn train`` records them), and the samples as tables with absolute files,
    so that the key names the same files whatever the directory the sweep was started from,
    and however a sample was written (``signal=s.root*2`` or a ``[samples.signal]`` table)."""
    from fcnn_cli.core.configfile import each_path

    data = dataclasses.asdict(DataConfig(**data))
    for key in INPUTS:
        if data[key] not in (None, "-"):
            data[key] = each_path(data[key], os.path.abspath)
    if data["samples"]:
        data["samples"] = [_absolute_sample(s) for s in data["samples"]]
    return data


def _absolute_sample(item):
    from fcnn_cli.data import samples as sampling

    sample = sampling.parse(item)
    table = {"name": sample.name, "files": [_absolute(p) for p in sample.patterns],
             "scale": sample.scale}
    return {**table, "where": sample.where} if sample.where else table


def _absolute(path):
    return path if path == "-" else os.path.abspath(path)


def data_options(data, combination):
    """The data options of a combination: the sweep's ``data``, with the grid's selection,
    weight and definitions in their place; an empty one in the grid is none (a grid may
    compare a selection with none)."""
    varied = {k: v or None for k, v in combination.items() if k in VARIED}
    return {**data, **varied} if varied else data


def recipe_of(options):
    """The recipe of a combination's data options (:func:`fcnn_cli.data.gather.of_config`), its
    files not yet looked for; None where DATA is one table read as it is."""
    from fcnn_cli.data import gather

    data = DataConfig(**options)
    return gather.of_config(data, data.targets)


def check(options, config, recipe):
    """Refuse what ``fcnn train`` refuses of a recipe (:func:`fcnn_cli.data.gather.check_training`)
    before any table is read; ``recipe`` is :func:`recipe_of` ``options``."""
    if recipe is not None:
        from fcnn_cli.data import gather

        gather.check_training(recipe, DataConfig(**options), config)


def name(data):
    """What names a sweep's default directory: its samples, or DATA's (first) file."""
    import re

    from fcnn_cli.data import samples as sampling

    if data.get("samples"):
        return "-".join(s["name"] for s in data["samples"][:3])
    first = (sampling.data_patterns(data["data"]) or [data["data"]])[0]
    stem = os.path.basename(str(first)).split(".")[0]
    return re.sub(r"[*?\[\]]", "", stem) or "data"  # a glob's magic names no directory


def listed_files(data, samples=None):
    """The files a sweep reads as its samples', or as DATA's several files (a comma-separated
    list, a glob or a directory), in order, each looked for now (or those of ``samples``, found
    already); None where DATA is one table."""
    from fcnn_cli.data import samples as sampling

    if not data.get("samples") and sampling.data_patterns(data["data"]) is None:
        return None
    found = samples if samples is not None else _samples(data)
    return [f for s in found for f in s.files]


def found_samples(data):
    """The samples every recipe of the sweep reads (its samples, or DATA's files as one), their
    files found and recorded (path, size, SHA-256): each file is read once for the whole
    sweep."""
    from fcnn_cli.data.recipe import Recipe

    return Recipe(_samples(data)).record().samples


def _samples(data):
    from fcnn_cli.data import samples as sampling
    from fcnn_cli.data.recipe import Recipe

    found = sampling.of_options(data["samples"]) if data.get("samples") else \
        [sampling.Sample(None, sampling.data_patterns(data["data"]) or [data["data"]])]
    return Recipe(found).find().samples


def labels(options):
    """(DATA's label columns as one table, their names) as a combination of data ``options``
    trains on them, for a check before training: those named, else those DATA's (first) file
    records, each of DATA's files read for them alone, or, for a defined label, for what it
    is made of, derived (the selection and the weight left to training). None where there
    are none; for samples and DATA on stdin or a pipe (read once, by training); where a file
    lacks a label, which training refuses in its own words; and for a defined label beside
    objects, whose columns only training's read shows."""
    from fcnn_cli.data import gather
    from fcnn_cli.data.recipe import Recipe
    from fcnn_cli.data.tables import is_pipe, read_metadata, read_table

    if options.get("samples") or is_pipe(options["data"]):
        return None
    files = [f for s in _samples(options) for f in s.files]
    targets = options.get("targets") or read_metadata(files[0]).get("targets")
    recipe = recipe_of(options)
    made = recipe is not None and recipe.made(targets or [])
    if not targets or made and recipe.objects:
        return None
    steps = recipe.making(made) if made else Recipe()
    columns = recipe.needs(targets, select=False, weigh=False) if made else targets
    tables = [steps.derive(read_table(f, columns=columns)) for f in files]
    if any(t not in table.frame.columns for table in tables for t in targets):
        return None
    return gather.combine(tables, str(options["data"]), targets), targets


def read(options, files, samples=None):
    """The Inputs of one set of data options, read as ``fcnn train`` reads them: through
    their recipe, whose samples are ``samples`` (:func:`found_samples`), or as they are."""
    paths = [options.get(k) for k in INPUTS]
    recipe = recipe_of(options)
    if recipe is None:
        from fcnn_cli.data.tables import read_table

        narrow = [*(options.get("targets") or ()), *(options.get("categorical") or ())]
        return Inputs([read_table(p, narrow=narrow) if p else None for p in paths], files,
                      options.get("targets"), options.get("features"),
                      categorical=options.get("categorical"))
    from fcnn_cli.data import gather

    recipe.samples = samples if samples is not None else found_samples(options)
    targets = [recipe.label] if recipe.label else options.get("targets")
    tables, features = gather.training_tables(recipe, paths, targets, options.get("features"),
                                              categorical=options.get("categorical"))
    return Inputs(tables, files, targets, features, recipe.weight_column, recipe,
                  options.get("categorical"))
