"""What fcnn train takes from DATA's metadata where the options leave it open, each said in a
line (:mod:`fcnn_cli.data.arrivals`): on an earthquake table whose origin time is unknown, the
picks after each event's earliest as the features (unless --features names them) and a wider,
deeper network (UNKNOWN_ORIGIN_NET, unless --width or --depth is given); where picks are
missing, --nan fill (unless --nan is given). fcnn's definitions go among the run's, each after
those it uses; a run's definition or a table's column of the same name stands in for one. Read
where the run reads its tables, under the signal handlers: a file server that hangs is
interrupted as any read. DATA on stdin or a pipe holds its metadata in its rows, read once the
options are settled: a line says what the run leaves out."""

import dataclasses
import logging
import os

from fcnn_cli.core.errors import FcnnError, listed

CHOSEN = ("nan", "width", "depth")  # options the metadata may choose where none is given


def apply(job):
    """Change the new run ``job`` (runjob.Job) as DATA's metadata asks."""
    from fcnn_cli.data import arrivals

    samples = job.recipe is not None and job.recipe.classes
    path, meta = _metadata(None if samples else job.paths[0])
    defined, uses = _defined(job), _uses_of(job.recipe)
    chosen, room = _chosen(meta, defined, lambda: _columns(path))
    texts, hidden = _definitions(chosen, path, defined, [job.features], room, uses)
    if texts:
        job.recipe = _with_definitions(job, texts)
    if hidden and job.recipe is not None:
        job.recipe.hidden = hidden
    elif hidden:  # the table has them all: no recipe to hide the absolute picks by
        job.features = arrivals.relative_picks(chosen)
    changes = _network_and_nan(chosen, path, job.left)
    job.net.update({k: v for k, v in changes.items() if k != "nan"})
    if "nan" in changes:
        job.config = dataclasses.replace(job.config, nan=changes["nan"])


def for_sweep(data, fixed, grid):
    """The same defaults for a sweep, in its options: ``data`` (DataConfig's), ``fixed`` and
    the ``grid`` as the sweep command makes them; an option fixed or varied wins. Where the
    features are left open, they are train's of a simulated table: the picks after the
    earliest and the sweep's own definitions, or, past the definitions' limit, the absolute
    picks and its own definitions (fcnn's that these use no features)."""
    from fcnn_cli.data import arrivals
    from fcnn_cli.data.recipe import in_use_order

    path, meta = _metadata(data.get("data"))
    own = list(data.get("define") or [])
    defined = [_name(str(text)) for text in own]
    try:
        uses = _uses([str(text).partition("=")[2] for text in own],
                     [data.get("where"), *grid.get("where", [])],
                     [data.get("weight"), *grid.get("weight", [])])
    except FcnnError:  # the sweep refuses them in its own words
        uses = {}
    chosen, room = _chosen(meta, defined, lambda: _columns(path))
    if "define" in grid:
        chosen = dataclasses.replace(chosen, define=[], hidden=())  # each run's own
    features = [data.get("features"), *grid.get("features", [])] if "features" in grid else \
        [data.get("features")]
    texts, hidden = _definitions(chosen, path, defined, features, room, uses)
    if texts:
        data["define"] = in_use_order([*own, *texts])
    if hidden and features == [None]:  # what train's recipe hides, left out by name
        data["features"] = [*defined, *arrivals.relative_picks(chosen)] \
            if hidden == chosen.hidden else [*arrivals.absolute_picks(chosen), *defined]
    fixed.update(_network_and_nan(chosen, path, set(CHOSEN) - {*data, *fixed, *grid}))


def on_pipe(job, table, features):
    """DATA on stdin or a pipe (``table``, read; ``features`` as the options gave them): read
    once, by training, its metadata come with its rows, after the run's options are settled,
    so the run takes none of what :func:`apply` takes of a file's; a line says what it leaves
    out, if anything. Nothing for DATA of another kind."""
    from fcnn_cli.data.tables import is_pipe

    data = job.paths[0]
    if data is None or not is_pipe(data):
        return
    chosen, room = _chosen(getattr(table, "extra", {}), _defined(job),
                           lambda: list(table.frame.columns))
    texts, hidden = _fcnn_definitions(chosen, [features], room)
    left_out = ["the picks after each event's earliest as the features"] if texts or hidden \
        else []
    left_out += [f"--{k} {v}" for k, v in _options(chosen, job.left).items()]
    if not left_out:
        return
    said = ", ".join(left_out[:-1]) + " and " + left_out[-1] if len(left_out) > 1 else \
        left_out[0]
    logging.getLogger("fcnn_cli").warning(
        "%s: its metadata ask for %s, which fcnn train takes only of a file, not of stdin or "
        "a pipe (read once, after the options are settled): give the table as a file, or the "
        "options", table.name, said)


def on_pipe_refused(job, error):
    """Before ``error``, of DATA on stdin or a pipe, a line where it is a column missing that
    is fcnn's t_first or dtpK, which the run's definitions, selection or weight use: fcnn
    defines none of a table whose metadata it cannot read first."""
    from fcnn_cli.data import arrivals
    from fcnn_cli.data.tables import is_pipe

    data = job.paths[0]
    if data is None or job.recipe is None or not is_pipe(data):
        return
    uses = _uses_of(job.recipe)
    names = arrivals.of_fcnn(sorted(set().union(*uses.values()) - set(_defined(job))))
    if not any(f"no column {name!r}" in str(error) for name in names):
        return
    logging.getLogger("fcnn_cli").warning(
        "%s: %s %s, which fcnn defines only of a file, whose metadata it reads first, not of "
        "stdin or a pipe: give the table as a file, or define %s too (--define "
        "\"t_first=fmin(tp1, ts1, …)\" --define \"dtp1=tp1 - t_first\" …)",
        "<stdin>" if data == "-" else data,
        _users([f"--{o}" for o, used in uses.items() if used & set(names)]), listed(names),
        "it" if len(names) == 1 else "them")


def _defined(job):
    """The names of the run's own definitions."""
    return [name for name, _ in job.recipe.define] if job.recipe is not None else []


def _uses_of(recipe):
    """:func:`_uses` of the run's ``recipe`` (None: none). A sample's selection is left out:
    fcnn defines nothing for samples, whose metadata it does not read."""
    if recipe is None:
        return {}
    return _uses([text for _, text in recipe.define], [recipe.where], [recipe.weight])


def _uses(define, where, weight):
    """{option: the names its expressions read} of the texts of the definitions'
    expressions, the selections and the weights given (None or "" for none): fcnn defines
    those of its own (t_first, dtpK) that they read, whatever the features."""
    from fcnn_cli.data import expressions

    given = {"define": define, "where": where, "weight": weight}
    return {option: {n for text in texts if text for n in expressions.parse(text).names}
            for option, texts in given.items()}


def _chosen(meta, defined, columns):
    """(arrivals.Defaults of DATA, the room its definitions have: MAX_DEFINITIONS less the
    run's own, ``defined``, names). A definition of the run or a column of the table
    (``columns()``'s names) of a name fcnn would define stands in for fcnn's; the picks of a
    station whose columns the table lacks are left out. The columns are asked for only of a
    table whose origin time is unknown: only then does fcnn define any."""
    from fcnn_cli.data import arrivals
    from fcnn_cli.data.recipe import MAX_DEFINITIONS

    chosen = arrivals.of_metadata(meta, defined)
    room = MAX_DEFINITIONS - len(defined)
    present = columns() if chosen.define else []
    if not present:  # none to define, or a table that reading refuses in its own words
        return chosen, room
    made = {_name(text) for text in chosen.define}
    stand_in = [c for c in present if c in made]
    return arrivals.of_metadata(meta, [*defined, *stand_in], [*present, *defined]), room


def _fcnn_definitions(chosen, features, room, used=frozenset()):
    """(fcnn's definitions of the picks after the earliest, the columns that are then no
    default features). Where the origin time is unknown and one of ``features`` (each a list
    given, or None: the default) is the default, all of them; else those that the features
    name or the run's definitions use (``used``: their names), and t_first. The absolute
    picks are hidden where the features are the default, even where the run or the table has
    all of them; None, not hidden, where all would take more than ``room`` and the features
    are the default."""
    if not chosen.hidden:
        return [], ()
    if None not in features:
        return _needed(chosen, set().union(*features) | set(used)), ()
    if len(chosen.define) > room:
        return None, ()
    return chosen.define, chosen.hidden if features == [None] else ()


def _needed(chosen, names):
    """fcnn's definitions of ``names``, and t_first, which they are made of; none where
    ``names`` has none of them."""
    from fcnn_cli.data import arrivals

    made = {_name(text): text for text in chosen.define}
    if not set(names) & made.keys():
        return []
    return [text for name, text in made.items() if name in {*names, arrivals.FIRST}]


def _definitions(chosen, path, defined, features, room, uses):
    """:func:`_fcnn_definitions`, said in a line; where all would take more than ``room``,
    the absolute picks are the features, said in a line, and fcnn defines only those that
    the run's definitions, selection and weight use (``uses``: :func:`_uses`), no features
    themselves. More than ``room`` of those the run asks for are refused, naming the
    option."""
    used = set().union(*uses.values())
    texts, hidden = _fcnn_definitions(chosen, features, room, used)
    log = logging.getLogger("fcnn_cli")
    default = None in features and texts is not None
    if texts is None:
        _say_absolute(chosen, path, room, log)
        texts = _needed(chosen, used)
        hidden = tuple(_name(text) for text in texts)
    if not (texts or hidden):
        return [], ()
    who = None if default else _who(chosen, features, uses)  # the default: within the limit
    if who is not None:
        _check_room(chosen, path, texts, room, who)
    _say_absent(chosen, path, log)
    _say_defined(chosen, path, (defined, texts), who, log)
    return texts, hidden


def _say_absent(chosen, path, log):
    """The line of the stations whose columns the table lacks."""
    from fcnn_cli.data import arrivals

    if chosen.absent:
        log.info("%s: no column %s (station%s %s, which its metadata list): %s is the earliest "
                 "of the other stations' picks", path,
                 listed(c for cs in chosen.absent.values() for c in cs),
                 "s" * (len(chosen.absent) > 1), listed(chosen.absent), arrivals.FIRST)


def _say_defined(chosen, path, made, who, log):
    """The line of fcnn's definitions ``made``: (the run's own names, fcnn's texts); ``who``:
    the options that ask for them (None: the default features), what it says they use: the
    picks after the earliest, or t_first alone."""
    from fcnn_cli.data import arrivals

    defined, texts = made
    first = f"{arrivals.FIRST} = fmin(tp1, ts1, …)"
    picks = f"dtp1 = tp1 - {arrivals.FIRST}, … ({first})"
    standing_in = _standing_in(chosen, defined)
    if who is None:
        log.info("%s: the origin time is unknown: the features are each pick after the "
                 "event's earliest, %s%s, not tp1, ts1, …; --features names others", path,
                 picks, standing_in)
    elif any(_name(text) != arrivals.FIRST for text in texts):
        log.info("%s: the origin time is unknown: %s picks after the event's earliest, "
                 "defined as %s%s", path, who, picks, standing_in)
    else:
        log.info("%s: the origin time is unknown: %s the event's earliest pick, defined as "
                 "%s%s", path, who, first, standing_in)


def _say_absolute(chosen, path, room, log):
    """The line of a network whose picks after the earliest would pass the definitions'
    limit: the features are the absolute picks."""
    from fcnn_cli.data import arrivals
    from fcnn_cli.data.recipe import MAX_DEFINITIONS

    stations, own = len(arrivals.relative_picks(chosen)) // 2, MAX_DEFINITIONS - room
    log.info("%s: the origin time is unknown, but the picks after the earliest of %d "
             "stations would make %d definitions in all%s, more than the %d a run may "
             "have: the features are the absolute picks tp1, ts1, …; --features and "
             "--define choose others", path, stations, len(chosen.define) + own,
             f" ({own} of them yours)" if own else "", MAX_DEFINITIONS)


def _who(chosen, features, uses):
    """Which options ask for fcnn's definitions: those of ``features`` that name them, of
    ``uses`` (:func:`_uses`) that use them, with their verb (:func:`_users`)."""
    from fcnn_cli.data import arrivals

    names = {arrivals.FIRST, *arrivals.relative_picks(chosen)}
    named = names & set().union(*(f for f in features if f is not None))
    return _users(["--features"] * bool(named) +
                  [f"--{option}" for option, used in uses.items() if names & used])


def _users(flags):
    """``flags`` as a line says they ask for fcnn's definitions: "--features names",
    "--define uses", "--features and --define name", "--define and --where use"."""
    verb = "name" if "--features" in flags else "use"
    said = ", ".join(flags[:-1]) + " and " + flags[-1] if len(flags) > 1 else flags[0]
    return f"{said} {verb}{'s' * (len(flags) == 1)}"


def _check_room(chosen, path, texts, room, who):
    """Refuse fcnn's definitions ``texts`` where, beside the run's own, they pass the
    limit."""
    from fcnn_cli.data import arrivals
    from fcnn_cli.data.recipe import MAX_DEFINITIONS

    if len(texts) <= room:
        return
    own = MAX_DEFINITIONS - room
    picks = sum(_name(text) != arrivals.FIRST for text in texts)
    raise FcnnError(
        f"{path}: {who} {picks} picks after the event's earliest, which with {arrivals.FIRST}"
        f"{f' and {own} definitions of yours' if own else ''} make {len(texts) + own} "
        f"definitions, more than the {MAX_DEFINITIONS} a run may have: name fewer (without "
        "--features, a table of that many stations trains on its absolute picks tp1, ts1, …)",
        ("features", "define"))


def _standing_in(chosen, defined):
    """What the line says of the run's definitions and the table's columns that stand in
    for fcnn's: those fcnn would define and does not."""
    from fcnn_cli.data import arrivals

    names = [arrivals.FIRST, *arrivals.relative_picks(chosen)]
    made = {_name(text) for text in chosen.define}
    mine = [n for n in defined if n in names]
    table = [n for n in names if n not in made and n not in defined]
    columns = "the table's column" + "s" * (len(table) > 1)
    return "".join(f" ({whose} {listed(these)} stand{'s' * (len(these) == 1)} in for "
                   "fcnn's)" for whose, these in (("your --define of", mine), (columns, table))
                   if these)


def _name(text):
    """The name of a definition "NAME=EXPR" (of the run's, as given, or of fcnn's)."""
    return text.partition("=")[0].strip()


def _network_and_nan(chosen, path, left):
    """The options the metadata chooses of those ``left`` open (:func:`_options`); each said
    in a line."""
    log = logging.getLogger("fcnn_cli")
    changes = _options(chosen, left)
    network = {k: v for k, v in changes.items() if k != "nan"}
    if network:
        log.info("%s: the origin time is unknown: a network of %s (--width, --depth choose "
                 "otherwise)", path, ", ".join(f"{k} {v}" for k, v in network.items()))
    if "nan" in changes:
        log.info("%s: %.0f %% of the picks are missing: --nan fill (each takes its training "
                 "median, beside a 0/1 indicator); --nan chooses otherwise", path,
                 100 * chosen.missing)
    return changes


def _options(chosen, left):
    """The options the metadata chooses of those ``left`` open: the wider network, --nan
    fill."""
    from fcnn_cli.core.config import UNKNOWN_ORIGIN_NET

    changes = {k: v for k, v in UNKNOWN_ORIGIN_NET.items() if k in left} if chosen.hidden \
        else {}
    if chosen.missing and "nan" in left:
        changes["nan"] = "fill"
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


def _columns(path):
    """The names of the columns of DATA's first file (one whose metadata was read)."""
    from fcnn_cli.data.tables import read_columns

    try:
        return read_columns(path)
    except FcnnError:  # reading the tables says why, in its own words
        return []


def _with_definitions(job, texts):
    """The run's recipe with ``texts`` defined too, each after the definitions it uses; DATA's
    own recipe where it had none."""
    from fcnn_cli.core.config import DataConfig
    from fcnn_cli.data import gather

    if job.recipe is not None:
        return job.recipe.defined_too(texts)
    recipe = gather.of_config(DataConfig(data=job.paths[0], define=texts), job.targets,
                              job.config.stream)
    return recipe.find()
