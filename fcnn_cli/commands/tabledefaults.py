"""What fcnn train takes from DATA's metadata where the options leave it open, each said in a
line (:mod:`fcnn_cli.data.arrivals`): on an earthquake table whose origin time is unknown, the
picks after each event's earliest as the features (unless --features names them) and a wider,
deeper network (UNKNOWN_ORIGIN_NET, unless --width or --depth is given); where picks are
missing, --nan fill (unless --nan is given). Read where the run reads its tables, under the
signal handlers: a file server that hangs is interrupted as any read."""

import dataclasses
import logging
import os
import re

from fcnn_cli.core.errors import FcnnError

CHOSEN = ("nan", "width", "depth")  # options the metadata may choose where none is given


def apply(job):
    """Change the new run ``job`` (runjob.Job) as DATA's metadata asks."""
    from fcnn_cli.core.config import UNKNOWN_ORIGIN_NET
    from fcnn_cli.data import arrivals

    path, meta = _metadata(job)
    defined = [name for name, _ in job.recipe.define] if job.recipe is not None else []
    chosen = arrivals.of_metadata(meta, defined)
    log = logging.getLogger("fcnn_cli")
    made = {text.partition("=")[0] for text in chosen.define}
    yours = ", ".join(n for n in defined if re.fullmatch(rf"{arrivals.FIRST}|dt[ps]\d+", n))
    yours = f" (your --define of {yours} stands in for fcnn's)" if yours else ""
    if chosen.hidden and job.features is None:
        job.recipe = _with_definitions(job, chosen.define)
        job.recipe.hidden = chosen.hidden
        log.info("%s: the origin time is unknown: the features are each pick after the "
                 "event's earliest, dtp1 = tp1 - %s, … (%s = fmin(tp1, ts1, …))%s, not tp1, "
                 "ts1, …; --features names others", path, arrivals.FIRST, arrivals.FIRST, yours)
    elif chosen.hidden and made & set(job.features):
        # --features names some of them (a dead station's left out, say): still fcnn's to make
        job.recipe = _with_definitions(job, chosen.define)
        log.info("%s: the origin time is unknown: --features names picks after the event's "
                 "earliest, defined as dtp1 = tp1 - %s, … (%s = fmin(tp1, ts1, …))", path,
                 arrivals.FIRST, arrivals.FIRST)
    wider = {k: v for k, v in UNKNOWN_ORIGIN_NET.items() if k in job.left}
    if chosen.hidden and wider:
        job.net.update(wider)
        log.info("%s: the origin time is unknown: a network of %s (--width, --depth choose "
                 "otherwise)", path, ", ".join(f"{k} {v}" for k, v in wider.items()))
    if chosen.missing and "nan" in job.left:
        job.config = dataclasses.replace(job.config, nan="fill")
        log.info("%s: %.0f %% of the picks are missing: --nan fill (each takes its training "
                 "median, beside a 0/1 indicator); --nan chooses otherwise", path,
                 100 * chosen.missing)


def for_sweep(data, fixed, grid):
    """The same defaults for a sweep, in its options: ``data`` (DataConfig's), ``fixed`` and
    the ``grid`` as the sweep command makes them; an option fixed or varied wins. The picks
    after the earliest become definitions and the features, each said in a line."""
    from fcnn_cli.core.config import UNKNOWN_ORIGIN_NET
    from fcnn_cli.data import arrivals
    from fcnn_cli.data.tables import read_metadata

    path = data.get("data")
    try:
        meta = read_metadata(path) if path and path != "-" and os.path.isfile(path) else {}
    except FcnnError:  # training says why, in its own words
        meta = {}
    given = {*data, *fixed, *grid}
    defined = [str(text).partition("=")[0].strip() for text in data.get("define") or []]
    chosen = arrivals.of_metadata(meta, defined)
    log = logging.getLogger("fcnn_cli")
    if chosen.hidden and not {"features", "define"} & set(grid) and "features" not in data:
        data["define"] = [*(data.get("define") or []), *chosen.define]
        data["features"] = [f"d{c}" for c in chosen.hidden if re.fullmatch(r"t[ps]\d+", c)]
        log.info("%s: the origin time is unknown: every run takes each pick after the event's "
                 "earliest as features, as fcnn train does", path)
    wider = {k: v for k, v in UNKNOWN_ORIGIN_NET.items() if k not in given}
    if chosen.hidden and wider:
        fixed.update(wider)
        log.info("%s: the origin time is unknown: a network of %s", path,
                 ", ".join(f"{k} {v}" for k, v in wider.items()))
    if chosen.missing and "nan" not in given:
        fixed["nan"] = "fill"
        log.info("%s: %.0f %% of the picks are missing: --nan fill", path, 100 * chosen.missing)


def _metadata(job):
    """(the first of DATA's files, its metadata): ``{}`` for samples (no DATA), stdin, and a
    table that reading will refuse anyway."""
    from fcnn_cli.data import gather
    from fcnn_cli.data.tables import read_metadata

    data = job.paths[0]
    path = gather.first_file(data) if data and not (job.recipe and job.recipe.classes) else None
    try:
        return path, read_metadata(path) if path is not None else {}
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
