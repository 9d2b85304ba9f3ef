"""What fcnn train takes from DATA's metadata where the options leave it open, each said in a
line (:mod:`fcnn_cli.data.arrivals`): on an earthquake table whose origin time is unknown, the
picks after each event's earliest as the features (unless --features names them) and a wider,
deeper network (UNKNOWN_ORIGIN_NET, unless --width or --depth is given); where picks are
missing, --nan fill (unless --nan is given). Read where the run reads its tables, under the
signal handlers: a file server that hangs is interrupted as any read."""

import dataclasses
import logging
import os

from fcnn_cli.core.errors import FcnnError

CHOSEN = ("nan", "width", "depth")  # options the metadata may choose where none is given


def apply(job):
    """Change the new run ``job`` (runjob.Job) as DATA's metadata asks."""
    from fcnn_cli.data import arrivals

    samples = job.recipe is not None and job.recipe.classes
    path, meta = _metadata(None if samples else job.paths[0])
    defined = [name for name, _ in job.recipe.define] if job.recipe is not None else []
    chosen = arrivals.of_metadata(meta, defined)
    if _define(chosen, path, defined, [job.features]):
        job.recipe = _with_definitions(job, chosen.define)
        if job.features is None:
            job.recipe.hidden = chosen.hidden
    changes = _network_and_nan(chosen, path, job.left)
    job.net.update({k: v for k, v in changes.items() if k != "nan"})
    if "nan" in changes:
        job.config = dataclasses.replace(job.config, nan=changes["nan"])


def for_sweep(data, fixed, grid):
    """The same defaults for a sweep, in its options: ``data`` (DataConfig's), ``fixed`` and
    the ``grid`` as the sweep command makes them; an option fixed or varied wins. Where the
    features are left open, they are the picks after the earliest and the sweep's own
    definitions (what train's default list is of a simulated table)."""
    from fcnn_cli.data import arrivals

    path, meta = _metadata(data.get("data"))
    defined = [str(text).partition("=")[0].strip() for text in data.get("define") or []]
    chosen = arrivals.of_metadata(meta, defined)
    if "define" in grid:
        chosen = dataclasses.replace(chosen, define=[], hidden=())  # each run's own
    features = [data.get("features"), *grid.get("features", [])] if "features" in grid else \
        [data.get("features")]
    if _define(chosen, path, defined, features):
        data["define"] = [*(data.get("define") or []), *chosen.define]
        if features == [None]:
            data["features"] = [*defined, *arrivals.relative_picks(chosen)]
    fixed.update(_network_and_nan(chosen, path, set(CHOSEN) - {*data, *fixed, *grid}))


def _define(chosen, path, defined, features):
    """Whether fcnn defines the picks after the earliest: the origin time is unknown and one
    of ``features`` (each a list given, or None: the default) is the default or names one of
    them (a dead station's left out, say); said in a line."""
    from fcnn_cli.data import arrivals

    made = {text.partition("=")[0] for text in chosen.define}
    if not chosen.hidden or not any(f is None or made & set(f) for f in features):
        return False
    mine = [n for n in defined if n in {arrivals.FIRST, *arrivals.relative_picks(chosen)}]
    said = f"dtp1 = tp1 - {arrivals.FIRST}, … ({arrivals.FIRST} = fmin(tp1, ts1, …))" + (
        f" (your --define of {', '.join(mine)} stands in for fcnn's)" if mine else "")
    if None in features:
        logging.getLogger("fcnn_cli").info(
            "%s: the origin time is unknown: the features are each pick after the event's "
            "earliest, %s, not tp1, ts1, …; --features names others", path, said)
    else:
        logging.getLogger("fcnn_cli").info(
            "%s: the origin time is unknown: --features names picks after the event's "
            "earliest, defined as %s", path, said)
    return True


def _network_and_nan(chosen, path, left):
    """The options the metadata chooses of those ``left`` open: the wider network, --nan
    fill; each said in a line."""
    from fcnn_cli.core.config import UNKNOWN_ORIGIN_NET

    log = logging.getLogger("fcnn_cli")
    changes = {k: v for k, v in UNKNOWN_ORIGIN_NET.items() if k in left} if chosen.hidden \
        else {}
    if changes:
        log.info("%s: the origin time is unknown: a network of %s (--width, --depth choose "
                 "otherwise)", path, ", ".join(f"{k} {v}" for k, v in changes.items()))
    if chosen.missing and "nan" in left:
        changes["nan"] = "fill"
        log.info("%s: %.0f %% of the picks are missing: --nan fill (each takes its training "
                 "median, beside a 0/1 indicator); --nan chooses otherwise", path,
                 100 * chosen.missing)
    return changes


def _metadata(data):
    """(the first of DATA's files, its metadata): ``{}`` for none (samples), stdin, a pipe (read
    once: training reads it), and a table that reading will refuse anyway."""
    from fcnn_cli.data import gather
    from fcnn_cli.data.tables import read_metadata

    path = gather.first_file(data) if data else None
    if path is None or not os.path.isfile(path):
        return path, {}
    try:
        return path, read_metadata(path)
    except FcnnError:  # reading the tables says why, in its own words
        return path, {}


def _with_definitions(job, texts):
    """The run's recipe with ``texts`` defined after its own definitions; DATA's own recipe
    where it had none."""
    from fcnn_cli.core.config import DataConfig
    from fcnn_cli.data import gather

    if job.recipe is not None:
        return job.recipe.defined_too(texts)
    recipe = gather.of_config(DataConfig(data=job.paths[0], define=texts), job.targets,
                              job.config.stream)
    return recipe.find()
