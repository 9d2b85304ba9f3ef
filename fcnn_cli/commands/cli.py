"""The ``fcnn`` command line: a thin layer of options over the library modules.

Heavy libraries (torch, pandas, pyarrow) are imported inside the commands so that ``fcnn --help``
and argument errors answer at once.
"""

import contextlib
import dataclasses
import functools
import json
import logging
import os
import re
import sys

import click

from fcnn_cli import __version__
from fcnn_cli.machine import signals
# The option dataclasses and their choices: plain Python, so importing them costs nothing.
from fcnn_cli.core.config import (DataConfig, NetConfig, TrainConfig, check_threshold, kinds,
                             option_fields, repeated)
from fcnn_cli.core.console import DroppingStream
from fcnn_cli.core.errors import DataChanged, FcnnError, printable, printable_all

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


def _console(stderr=True):
    from fcnn_cli.core.console import rich_console

    return rich_console(stderr)


def _flag(name):
    return "--" + name.replace("_", "-")


# Python option names whose flag is not ``--`` and the name with dashes for underscores: the
# option fields' own (config.py), and the simulators'.
FLAGS = {**{f.name: f.metadata["flags"][-1] for cls in (DataConfig, NetConfig, TrainConfig)
            for f in option_fields(cls) if f.metadata["flags"]},
         "stations": "--station", "n": "-n"}


def with_flags(text, options, flags=None):
    """A library message as the command line says it: for the Python option names in
    ``options``, ``nan='drop'`` becomes ``--nan drop``, ``force=True`` ``--force`` and a bare
    ``depth`` ``--depth``. Only whole names: not inside a word, a path or a quoted name.
    ``flags`` maps the names a command spells otherwise (sweep's seeds are the ensemble)."""
    if not options:
        return text
    flags = {**FLAGS, **(flags or {})}

    def flag(match):
        name, value = match[1], match[2] if match[2] is not None else match[3]
        spelt = flags.get(name) or _flag(name)
        return spelt if value in (None, "True") else f"{spelt} {value}"

    names = "|".join(map(re.escape, options))
    return re.sub(rf"(?<![\w./'\"-])({names})(?:='([^']*)'|=([^\s,;)]+))?(?![\w/'\"=-]|\.\w)",
                  flag, text)


@contextlib.contextmanager
def usage_errors(flags=None):
    """Bad option values found by the library's validation are usage errors: exit 2."""
    try:
        yield
    except FcnnError as e:
        raise click.UsageError(printable(with_flags(str(e), e.options, flags))) from None


def user_errors(command):
    """Report FcnnError as one line and exit 1: no traceback for the user's mistakes."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except FcnnError as e:  # a name it quotes from a file may hold terminal commands
            raise click.ClickException(printable(with_flags(str(e), e.options))) from None
        except KeyboardInterrupt as e:
            click.echo("interrupted: nothing saved", err=True)
            sys.exit(getattr(e, "code", 130))  # 143 after SIGTERM: see signals.Interrupted
        except BrokenPipeError:
            # A downstream `head` closed the pipe: not an error.
            from fcnn_cli.core.fileio import discard_stdout

            discard_stdout()
            sys.exit(0)

    return wrapper


class _MessageFormatter(logging.Formatter):
    def format(self, record):
        # A library warning names options through the Messages among its arguments.
        args = record.args if isinstance(record.args, tuple) else ()
        message = printable(with_flags(record.getMessage(),
                                       [o for arg in args for o in getattr(arg, "options", ())]))
        return message if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {message}"


def _setup_logging(quiet):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_MessageFormatter())
    logger = logging.getLogger("fcnn_cli")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def _csv_list(ctx, param, value):
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter("give at least one column name")
    return items


def _keep_list(ctx, param, values):
    names = [c for v in values for c in v.split(",") if c]
    twice = repeated(names)
    if twice is not None:
        raise click.BadParameter(f"{twice!r} given more than once")
    return names


def _png(ctx, param, value):
    from fcnn_cli.results.plots.preview import check_png  # matplotlib itself loads only to draw

    if value is not None:
        try:
            check_png(value)
        except FcnnError as e:
            raise click.BadParameter(str(e)) from None
    return value


def _point(ctx, param, values):
    points = []
    for v in values:
        try:
            x, y = (float(p) for p in v.split(","))
        except ValueError:
            raise click.BadParameter(f"{v!r} is not X,Y (two numbers in km)") from None
        points.append((x, y))
    return points or None


def completes(kind):
    """A shell_complete that leaves the word to the shell's own completion of file names
    ("file") or of directories ("dir"): click.Path would complete them too, but would check the
    path as well, with messages of its own."""
    def complete(ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        return [CompletionItem(incomplete, type=kind)]

    return complete


FILE, DIR = completes("file"), completes("dir")


def output_option(default, help, complete=FILE):
    return click.option("-o", "--output", default=default, show_default=True, help=help,
                        shell_complete=complete)


def field_option(cls, name, help=None):
    """The click option (or argument) of the field ``name`` of an options dataclass, made from
    the field: its name, type, default and the metadata that config.option gives it; ``help``
    replaces the field's where a command uses the option otherwise."""
    f = next(f for f in option_fields(cls) if f.name == name)
    spec = f.metadata
    complete = {"shell_complete": completes(spec["path"])} if spec["path"] else {}
    if spec["argument"]:
        return click.argument(name, required=False, **complete)
    kind = kinds(f)[0]
    flags = spec["flags"] or (_flag(name),)
    settings = {"help": help or spec["help"], "default": spec.get("unset", f.default),
                "metavar": spec["metavar"], **complete}
    if kind is bool:  # each way: a configuration file's true or false can be overridden
        flags = (f"{flags[-1]}/--no-{flags[-1][2:]}",)
    elif spec["choices"]:
        settings["type"] = click.Choice(spec["choices"])
    elif spec["bounds"]:
        settings["type"] = click.IntRange(*spec["bounds"])
    elif spec["repeat"]:
        settings["multiple"] = True
    elif spec["comma"]:
        settings["callback"] = _csv_list
    else:
        settings["type"] = kind
    return click.option(*flags, name, **settings)


def options_of(*classes):
    """A decorator that gives a command the options of every option field of these dataclasses,
    in their order."""
    decorators = [field_option(cls, f.name) for cls in classes for f in option_fields(cls)]

    def decorate(command):
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


seed_option = field_option(TrainConfig, "seed")
device_option = field_option(TrainConfig, "device", "auto takes a GPU when there is one.")
nan_option = field_option(TrainConfig, "nan")


def _threshold(ctx, param, value):
    try:
        check_threshold(value)
    except FcnnError as e:
        raise click.UsageError(with_flags(str(e), e.options), ctx) from None
    return value


def threshold_option(command):
    return click.option("--threshold", type=float, default=None, callback=_threshold,
                        help="Two classes: predict the second class when its probability is at "
                             "least this (default: the most probable class).")(command)


def force_option(command):
    return click.option("--force", is_flag=True, help="Write the output even over a file of a "
                        "run directory (its model.pt, config.json, …).")(command)


def quiet_option(command):
    return click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on "
                        "stderr.")(command)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="fcnn")
def cli():
    """Train, evaluate and apply fully-connected neural networks on tabular physics data.

    \b
    A typical session:
      fcnn simulate earthquakes -o quakes.csv      # labelled data
      fcnn train quakes.csv -o runs/quakes         # fit a network
      fcnn simulate earthquakes --seed 1 -o test.csv  # other events
      fcnn evaluate runs/quakes/model.pt test.csv  # metrics on held-out rows
      fcnn predict runs/quakes/model.pt new.csv    # predictions as CSV on stdout

    Tables are CSV, Parquet, ROOT, HDF5 or FITS by suffix (a pipe or device without one is
    CSV); events.root:TREE, file.h5:/PATH, file.fits:N or :EXTNAME pick one table of several;
    '-' means stdin or stdout.
    """
    if os.environ.get("NO_COLOR"):  # rich honours it itself; this covers click's own styles
        click.get_current_context().color = False
    _setup_logging(quiet=False)


@cli.group()
def simulate():
    """Make realistic labelled data sets."""


@simulate.command()
@click.option("-n", "--n", "n", type=int, default=20_000, help="Number of events.")
@seed_option
@click.option("--extent", type=float, default=50.0,
              help="Half-width (km) of the square region: epicentres are uniform on ±extent.")
@click.option("--station", "stations", multiple=True, callback=_point, metavar="X,Y",
              help="A station's position in km; repeat for each station. Default: four "
                   "stations near the corners of the region.")
@click.option("--vp", type=float, default=6.0, help="P-wave velocity (km/s).")
@click.option("--vs", type=float, default=3.5, help="S-wave velocity (km/s).")
@click.option("--noise", type=float, default=0.0,
              help="Standard deviation (s) of Gaussian noise on every arrival time.")
@output_option("earthquakes.csv", "Output file: .csv, .parquet, .root, .h5 or .fits; '-' for "
               "CSV on stdout.")
@force_option
@user_errors
def earthquakes(n, seed, extent, stations, vp, vs, noise, output, force):
    """Epicentres and P/S first-arrival times at seismic stations.

    Straight rays in a uniform medium: t = distance / velocity. Columns: x, y (km; the labels,
    recorded in the file) and tp1, ts1, …, tpK, tsK (s).

    \b
    Example:
      fcnn simulate earthquakes -n 5000 --noise 0.01 --seed 1 -o quakes.parquet
    """
    from fcnn_cli.data import simulate as sim
    from fcnn_cli.results.runs import check_output
    from fcnn_cli.data.tables import table_format

    check_output(output, force=force)
    table_format(output)
    with usage_errors():
        chunks = sim.earthquake_tables(n=n, seed=seed, extent=extent,
                                       stations=stations or sim.DEFAULT_STATIONS, vp=vp, vs=vs,
                                       noise=noise)
    _write_tables(chunks, output)
    if output != "-":
        logging.getLogger("fcnn_cli").info("wrote %d events to %s", n, output)


@simulate.command()
@click.option("-n", "--n", "n", type=int, default=20_000, help="Number of galaxies.")
@seed_option
@click.option("--size", type=int, default=32, help="Image width and height in pixels.")
@click.option("--noise", type=float, default=0.02,
              help="Standard deviation of Gaussian pixel noise (peak brightness ≤ 1); "
                   "larger is harder.")
@click.option("--preview", metavar="FILE.png", callback=_png, shell_complete=FILE,
              help="Also draw a grid of examples with labels.")
@output_option("galaxies.parquet", "Output file: .parquet, .csv, .root, .h5 or .fits; '-' "
               "for CSV on stdout.")
@force_option
@user_errors
def galaxies(n, seed, size, noise, preview, output, force):
    """Images of spiral galaxies labelled by their sense of rotation, left or right.

    Logarithmic spiral arms with a random number of arms, pitch angle, orientation, bulge,
    size, inclination and brightness, plus pixel noise. Columns p0000 … p1023 hold the pixels
    row by row (row 0 at the top); the label column 'rotation' is recorded in the file.

    \b
    Example:
      fcnn simulate galaxies -n 5000 --noise 0.1 --preview galaxies.png -o galaxies.parquet
    """
    from fcnn_cli.data import simulate as sim
    from fcnn_cli.results.plots.preview import GRID_COLS, GRID_ROWS
    from fcnn_cli.results.runs import check_output
    from fcnn_cli.data.tables import table_format

    check_output(output, [preview], force)
    if preview:
        check_output(preview, [output], force)
    table_format(output)
    with usage_errors():
        chunks = sim.galaxy_tables(n=n, seed=seed, size=size, noise=noise)
    first = _write_tables(chunks, output, keep=GRID_ROWS * GRID_COLS if preview else 0)
    if preview:
        from fcnn_cli.results.plots.preview import galaxy_grid

        galaxy_grid(first, preview)
    log = logging.getLogger("fcnn_cli")
    if output != "-":
        log.info("wrote %d galaxies to %s", n, output)
    if preview:
        log.info("drew examples in %s", preview)


def _write_tables(tables, output, keep=0):
    """Write a stream of Tables, chunk by chunk, to one file with the first one's metadata;
    return the first ``keep`` rows as a Table (a preview's). Ctrl-C or SIGTERM stops it and
    leaves no partial file (user_errors says so): a large -n runs long."""
    from fcnn_cli.data.tables import Table, TableWriter

    with signals.Interrupts():
        first = next(tables)
        head = Table(first.frame.iloc[:keep].copy(), first.targets, first.units, first.name,
                     extra=first.extra)
        with TableWriter(output, first.metadata()) as writer:
            writer.write(first.frame)
            del first  # hold one chunk at a time
            for table in tables:
                writer.write(table.frame)
    return head


@cli.command()
@options_of(DataConfig, NetConfig, TrainConfig)
@click.option("--config", "config_file", metavar="FILE.toml", shell_complete=FILE,
              help="Options from a TOML file (a run directory's config.toml repeats that run); "
                   "options on the command line override it.")
@click.option("--print-config", is_flag=True,
              help="Print the resolved options as a configuration file and exit.")
@click.option("--nproc", type=click.IntRange(1, 1024), default=1,
              help="Train in this many processes on this node, each with its part of every "
                   "minibatch (--batch-size is the global batch): starts torchrun with the same "
                   "command. For several nodes start torchrun yourself (see the README).")
@click.option("--plots/--no-plots", default=True,
              help="Draw the run's plots into RUN_DIR/plots at the end (redraw them with "
                   "fcnn plot RUN_DIR).")
@output_option(None, "Run directory. Default: runs/<data name>, numbered beside earlier runs.",
               DIR)
@click.option("--force", is_flag=True, help="Write into a run directory that holds a run.")
@click.option("--resume", metavar="RUN_DIR", shell_complete=DIR,
              help="Continue an interrupted run with its saved data path and options; combines "
                   "only with -q, --threads, --device, --nproc and --no-plots.")
@quiet_option
@click.pass_context
@user_errors
def train(ctx, **options):
    """Fit a network to DATA (CSV, Parquet, ROOT, HDF5 or FITS; '-' for CSV on stdin).

    Writes a run directory with model.pt (the self-contained checkpoint), metrics.json,
    history.csv, config.json and config.toml (the options: --config takes it to train the run
    again). Ctrl-C or SIGTERM stops after the last complete epoch, saves
    the best model so far and the state to continue with --resume RUN_DIR; more signals wait
    until that is saved.

    \b
    Examples:
      fcnn train quakes.csv
      fcnn train quakes.csv --arch resnet --depth 20 --epochs 100 -o runs/deep
      fcnn train table.parquet -t energy --features e1,e2,e3 --scale max
      fcnn train quakes.csv --depth 20 --activation sigmoid --diagnostics
      fcnn train --resume runs/quakes
      fcnn train quakes.parquet --nproc 2 --test test.parquet
      fcnn train --config sample_data/quakes.toml --epochs 20
      fcnn train survey/ --stream --shuffle-buffer 2000000
    """
    from fcnn_cli.machine import distributed
    from fcnn_cli.results import runs

    _setup_logging(options["quiet"])
    if options["output"] == "-":
        raise click.UsageError("-o names the run directory, which cannot be stdout ('-'); "
                               "name a directory")
    job = _resumed_job(ctx, options) if options["resume"] else _new_job(ctx, options)
    if options["print_config"]:
        return _print_config(job)
    data, val, test = job.paths
    if job.paths.count("-") > 1:
        raise click.UsageError("stdin ('-') can feed one table only")
    _warn_if_trained_on(data, val=val, test=test)
    runs.check_run_dir(job.output or runs.default_run_dir(data), job.force, job.paths)
    nproc = options["nproc"]
    if nproc > 1 or distributed.launched():
        _refuse_streams(*job.paths, directory=job.config.stream)
    if nproc > 1 and not distributed.launched():
        distributed.check_nproc(nproc)
        sys.exit(distributed.launch(nproc, _without_nproc(sys.argv[1:])))
    with _file_errors(job.from_file, options["config_file"], click.ClickException):
        _fit_and_save(job, options["quiet"])


def _new_job(ctx, o):
    """A new run from the command line's options over those of --config FILE, each checked
    before any data is read."""
    o, from_file = _with_file(ctx, o)
    if not o["data"] and not o["print_config"]:
        raise click.UsageError("missing argument DATA (or --resume RUN_DIR)")
    net = {f.name: o[f.name] for f in option_fields(NetConfig) if o[f.name] is not None}
    with _file_errors(from_file, o["config_file"]):
        config = TrainConfig(**{f.name: o[f.name] for f in option_fields(TrainConfig)})
        shape = NetConfig(n_in=1, n_out=1, **net)
        processes = o["nproc"] if o["nproc"] > 1 else int(os.environ.get("WORLD_SIZE", 1))
        if shape.batchnorm and config.batch_size // processes < 2:
            raise click.UsageError(f"batch normalisation needs at least 2 rows of every "
                                   f"minibatch in each of the {processes} process(es); "
                                   f"--batch-size {config.batch_size} gives fewer")
        data = DataConfig(**{f.name: _listed(o[f.name]) for f in option_fields(DataConfig)})
    return _Job([data.data, data.val, data.test], data.targets, data.features, net, config,
                None, o["output"], o["force"], o["plots"], from_file)


def _listed(value):
    """A repeated option's tuple as a list, None when empty (as a file's list, or none)."""
    return (list(value) or None) if isinstance(value, tuple) else value


def _with_file(ctx, o):
    """The options with those of --config FILE where the command line gives none, and the
    names of those taken from the file."""
    if not o["config_file"]:
        return o, set()
    from fcnn_cli.core.configfile import read_config

    with usage_errors():
        values = read_config(o["config_file"])
    taken = {k: v for k, v in values.items() if not _given(ctx, k)}
    return {**o, **taken}, set(taken)


@contextlib.contextmanager
def _file_errors(from_file, path, error=click.UsageError):
    """An ``error`` for a library message: one about options that all came from the
    configuration file ``path`` names them as its keys, after its name (the key to mend is
    there, not on the command line); any other as usage_errors does. The options are checked
    as usage errors (exit 2); what only a run finds (no GPU for device = "cuda") exits 1."""
    try:
        yield
    except FcnnError as e:
        if e.options and set(e.options) <= from_file:
            raise error(printable(f"{path}: {e}")) from None
        raise error(printable(with_flags(str(e), e.options))) from None


def _print_config(job):
    """The job's options as the configuration file that repeats them, on stdout."""
    from fcnn_cli.core.configfile import dumps
    from fcnn_cli.core.fileio import write_text

    net = NetConfig(n_in=1, n_out=1, **job.net).to_dict()
    del net["n_in"], net["n_out"]
    if "dropout" not in job.net:  # the task's default, which the data decide: a comment
        net["dropout"] = None
    data = dict(zip(("data", "val", "test"), (_where(p) if p else None for p in job.paths)))
    text = dumps({**data, "targets": job.targets, "features": job.features}, net,
                 dataclasses.asdict(job.config))
    write_text("-", text)


def _resumed_job(ctx, o):
    """The run to continue, with its saved data and options (and --device, --threads)."""
    from fcnn_cli.results import runs

    if o["data"]:
        raise click.UsageError("give DATA or --resume RUN_DIR, not both")
    _refuse_beside_resume(ctx)
    saved = runs.load_resume(o["resume"])
    net = {k: v for k, v in saved.net.to_dict().items() if k not in ("n_in", "n_out")}
    given = {k: o[k] for k in ("device", "threads") if _given(ctx, k)}
    with usage_errors():
        config = dataclasses.replace(saved.config, **given)
    return _Job([saved.data, saved.val_data, saved.test_data], saved.targets, saved.features,
                net, config, saved.state, o["resume"], True, o["plots"])


@dataclasses.dataclass
class _Job:
    paths: list  # DATA, --val FILE, --test FILE (None where not given)
    targets: list | None
    features: list | None
    net: dict
    config: TrainConfig
    state: dict | None  # what --resume continues from
    output: str | None
    force: bool
    plots: bool = True  # draw the run's plots once it is saved
    from_file: set = dataclasses.field(default_factory=set)  # the options --config FILE gave


def _fit_and_save(job, quiet):
    """Read the tables, train (in this process, or as one of several that torchrun started:
    only the first prints and writes), save the run and report it."""
    from fcnn_cli.machine import distributed

    with signals.Interrupts() as interrupts:
        tables = _open_tables(job)
        world, device = distributed.join(job.config.device)  # torch: only once the data are good
        try:
            # Several processes now, while every one is surely there; one after training, on the
            # device that "auto" chose for the network.
            parallel = world.describe(device) if world.distributed else None
            if not world.is_main:
                quiet = True
                logging.getLogger("fcnn_cli").setLevel(logging.ERROR)
            console = _console()
            try:
                result, run_dir = _train_and_save(job, tables, world, interrupts, console,
                                                  quiet, parallel)
            except KeyboardInterrupt:  # before any epoch was complete: nothing to keep
                raise signals.Interrupted(interrupts.code or 130) from None
            except DataChanged as e:  # nor here
                kept = "no epoch was complete: nothing saved" if job.state is None else \
                    f"the run is as it was saved; {_resume_hint(job.output, True)}"
                raise _DataChangedError(f"{e}; {kept}") from None
        finally:
            distributed.leave(world)
        if world.is_main:  # still under the handlers: a signal now is only noted
            _report_run(console, result, run_dir, quiet, interrupts.code, job.paths[2])
    if result.lost:  # the first process has said what it saved; the others say why they end
        if world.is_main:
            sys.exit(1)
        raise FcnnError(result.stopped)
    if interrupts.code or result.interrupted:
        sys.exit(interrupts.code or (DataChanged.exit_code if result.changed else 130))


class _DataChangedError(click.ClickException):
    exit_code = DataChanged.exit_code


def _resume_hint(run_dir, changed):
    again = "once the data are back as they were, " if changed else ""
    return f"{again}continue with: fcnn train --resume {run_dir}"


def _open_tables(job):
    """The tables to train on: read into memory, or opened to be streamed (--stream)."""
    if not job.config.stream:
        from fcnn_cli.data.tables import read_table

        return [read_table(p, narrow=job.targets or ()) if p else None for p in job.paths]
    from fcnn_cli.engine import stream

    data, val, test = job.paths
    return [stream.open_source(data), *(stream.FileChunks(p) if p else None for p in (val, test))]


def _train_and_save(job, tables, world, interrupts, console, quiet, parallel):
    """Train, and save the run from the first process, which needs no other for that; then wait
    for it in the others, so that none ends (and gets the job stopped) before the save."""
    from fcnn_cli.machine import distributed
    from fcnn_cli.results import runs
    from fcnn_cli.engine import train as training

    with _run_dir(world, job) as run_dir:
        with _EpochPrinter(console, job.config.epochs, quiet) as printer:
            # Popped, not indexed, and consumed: the table's columns are freed as they are
            # converted, the tables themselves once prepared.
            result = training.fit(tables.pop(0), job.config, job.net, job.targets,
                                  job.features, tables.pop(0), tables.pop(0), printer,
                                  job.state, world, interrupts, consume=True)
        if world.is_main:
            if job.state is None:  # a new run, maybe over an older one (--force)
                runs.forget_state(run_dir)
            runs.save_run(result, run_dir, *(_where(p) if p else None for p in job.paths),
                          parallel=parallel or world.describe(result.predictor.device))
            if job.plots and not result.changed:  # the plots need the predictions
                _draw_run(run_dir)
    if not (result.lost or result.changed):  # another process may be amid a step
        try:
            distributed.barrier(world)
        except RuntimeError as e:
            if not distributed.lost_peer(e):
                raise
            if not world.is_main:  # the first has saved the run: a process gone now loses nothing
                raise FcnnError(f"process {world.rank} of {world.size}: the first process ended "
                                "before it had saved the run") from None
    return result, run_dir


def _draw_run(run_dir):
    """The run's plots; the run is saved already, so a failure here is only a warning."""
    from fcnn_cli.results.plots import plot_run

    try:
        plot_run(run_dir)
    except FcnnError as e:
        logging.getLogger("fcnn_cli").warning("the run is saved, but its plots are not: %s; "
                                              "draw them with: fcnn plot %s", e, run_dir)


def _warn_if_trained_on(data, **others):
    """A validation or test file that is the training data itself scores what was learnt."""
    from fcnn_cli.core.fileio import same_file

    for option, path in others.items():
        if path and path != "-" and same_file(path, data):
            flag = _flag(option)
            logging.getLogger("fcnn_cli").warning(
                "%s %s is DATA itself: its rows are trained on, and its scores are optimistic",
                flag, path)


def _refuse_streams(*paths, directory=False):
    """Every process reads the tables itself: each must be a file it can open (or, streamed,
    a directory of them), not a stream."""
    for path in paths:
        if directory and os.path.isdir(path or ""):
            continue
        if path and (path == "-" or os.path.exists(path) and not os.path.isfile(path)):
            raise click.UsageError(f"{path}: several processes each read the tables; give a "
                                   "file, not stdin or a pipe")


def _run_dir(world, job):
    """The run directory, claimed by the first process alone: the others write nothing."""
    from fcnn_cli.results import runs

    if world.is_main:
        return runs.claim(job.output, job.paths[0], job.force)
    return contextlib.nullcontext(None)


def _without_nproc(args):
    """The command's arguments without --nproc and its value, for torchrun to start again."""
    out, skip = [], False
    for arg in args:
        if skip or arg.startswith("--nproc="):
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        out.append(arg)
    return out


def _where(path):
    """A data path as a run records it: absolute, so that --resume works from anywhere."""
    return "<stdin>" if path == "-" else os.path.abspath(path)


def _report_run(console, result, run_dir, quiet, signal_code, test_path):
    if result.interrupted:
        console.print(f"{result.stopped}{';' if result.changed else ':'} saved the best model "
                      f"so far and the state to resume in {run_dir}; "
                      f"{_resume_hint(run_dir, result.changed)}",
                      highlight=False, markup=False, soft_wrap=True)
        return
    if not quiet:
        from fcnn_cli.results.report import diagnostics_table, tables

        if result.diagnostics:
            console.print(diagnostics_table(result.diagnostics))
        split = "test" if "test" in result.metrics else "val"
        title = f"{split.capitalize()} metrics" + (f" of {test_path}" if test_path else "")
        for t in tables(printable_all(result.metrics[split]), title=printable(title)):
            console.print(t)
        from rich.text import Text  # not markup: a directory name may hold "[...]"

        console.print(Text.assemble("saved run to ", (str(run_dir), "bold"), " (best epoch "
                                    f"{result.predictor.info['best_epoch']}; {result.stopped})"))
    if signal_code:
        console.print(f"stopped by a signal after training had ended: the complete run is "
                      f"saved in {run_dir}", highlight=False, markup=False, soft_wrap=True)


# What a resume can honour.
RESUME_TAKES = ("resume", "quiet", "threads", "device", "nproc", "plots")


def _given(ctx, name):
    return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE


def _refuse_beside_resume(ctx):
    """A resumed run keeps its saved options: refuse any other given beside --resume."""
    others = [p for p in ctx.command.params
              if p.name not in RESUME_TAKES and p.name != "data" and _given(ctx, p.name)]
    if others:
        names = ", ".join("/".join(p.opts + p.secondary_opts) for p in others)
        raise click.UsageError(f"--resume continues a run with its saved options; it does not "
                               f"take {names} (only -q, --threads, --device, --nproc and "
                               "--no-plots)")


class _EpochPrinter:
    """One line per epoch on stderr, under a progress bar when stderr is a terminal."""

    def __init__(self, console, epochs, quiet):
        self.console, self.epochs, self.quiet = console, epochs, quiet
        self.progress = None

    def __enter__(self):
        if self.console.is_terminal and not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
            from rich.progress import TimeRemainingColumn

            self.progress = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                     TimeRemainingColumn(), console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task("train", total=self.epochs)
        return self

    def __call__(self, row):
        if self.quiet:
            return
        line = (f"epoch {row['epoch']:>4}/{self.epochs}  train {row['train_loss']:.4g}  "
                f"val {row['val_loss']:.4g}")
        for key, label in (("val_rmse", "val_rmse"), ("val_mean_distance", "val_dist"),
                           ("val_accuracy", "val_acc")):
            if key in row:
                line += f"  {label} {row[key]:.4g}"
        line += f"  lr {row['lr']:.3g}  {row['seconds']:.2f}s"
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)
        if self.progress:
            self.progress.advance(self.task)

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()


def _edges(ctx, param, values):
    try:
        return [[float(v) for v in value.split(",")] for value in values] or None
    except ValueError:
        raise click.BadParameter("give numbers separated by commas, e.g. 0,10,20,50") from None


@cli.command()
@click.argument("model", shell_complete=FILE)
@click.argument("data", shell_complete=FILE)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@output_option(None, "Also write the report as JSON to this file; '-' for JSON on stdout "
               "(as --json).")
@click.option("--by", multiple=True, metavar="COLUMN",
              help="Bias and resolution (or accuracy) in bins of this column of DATA (a label, "
                   "a feature or any other); twice for a 2-D map.")
@click.option("--bins", type=int, default=None,
              help="Equal bins over each --by column's range. [default: 10]")
@click.option("--edges", multiple=True, callback=_edges, metavar="A,B,…",
              help="Bin edges instead of --bins; once for each --by column.")
@field_option(TrainConfig, "position", "The labels that form a point (default: as the model "
              "was trained).")
@click.option("--plots", "plots_dir", metavar="DIR", shell_complete=DIR,
              help="Draw plots of the rows (a sample of at most 100 000) and of the bins here.")
@threshold_option
@nan_option
@device_option
@force_option
@user_errors
def evaluate(model, data, as_json, output, by, bins, edges, position, plots_dir, threshold, nan,
             device, force):
    """Metrics of MODEL (a model.pt) on the labelled table DATA ('-' for stdin).

    \b
    Examples:
      fcnn evaluate runs/quakes/model.pt test.csv
      fcnn evaluate runs/quakes/model.pt test.parquet --json | jq .overall.rmse
      fcnn evaluate runs/quakes/model.pt test.csv --by x --by y --bins 8 --plots plots/
    """
    from fcnn_cli.network import checkpoint
    from fcnn_cli.results import runs
    from fcnn_cli.core.config import check_bins, check_position
    from fcnn_cli.core.fileio import STDIO, check_output, write_text, writing
    from fcnn_cli.data.columns import drop_incomplete
    from fcnn_cli.data.tables import input_file, iter_tables

    with usage_errors():
        check_bins(by, bins, edges)
        check_position(position)
    if plots_dir:
        from fcnn_cli.results.plots import check_out_dir

        check_out_dir(plots_dir, "plots")
    check_output(STDIO, [model, input_file(data)])  # the report goes there, or its tables
    if output:
        runs.check_output(output, [model, input_file(data)], force)
    chunks = iter_tables(data)  # a missing file is reported before torch loads
    predictor = checkpoint.load(model, device)
    from fcnn_cli.results.evaluation import evaluate as evaluated

    if nan == "drop":
        chunks = (drop_incomplete(t, predictor.features + predictor.targets) for t in chunks)
    report = {"model": str(model), "data": "<stdin>" if data == "-" else str(data),
              **evaluated(predictor, chunks, threshold, position, by, bins, edges, plots_dir,
                          (model, data))}
    text = json.dumps(report, indent=2) + "\n"
    if output and output != STDIO:
        write_text(output, text)
    if as_json or output == STDIO:
        write_text(STDIO, text)
    else:
        from fcnn_cli.results.report import binned_tables, tables

        console, shown = _console(stderr=False), printable_all(report)
        with writing(STDIO):
            for t in tables(shown, title=shown["data"]):
                console.print(t)
            for t in binned_tables(shown["binned"]) if "binned" in shown else ():
                console.print(t)


@cli.command()
@click.argument("model", shell_complete=FILE)
@click.argument("data", shell_complete=FILE)
@click.option("--keep", multiple=True, metavar="COL", callback=_keep_list,
              help="Copy this input column (an ID, say) into the output; repeatable.")
@output_option("-", "Output file (.csv, .parquet, .root, .h5 or .fits); '-' for CSV on "
               "stdout.")
@threshold_option
@nan_option
@device_option
@click.option("--members", is_flag=True,
              help="For an ensemble, also each member's prediction (<label>_pred_m<k>; "
                   "<label>_std_m<k> or each class's p_<class>_m<k>).")
@force_option
@user_errors
def predict(model, data, keep, output, threshold, nan, device, members, force):
    """Predictions of MODEL for every row of DATA ('-' for stdin); labels may be absent.

    Writes one <target>_pred column per label, after any --keep columns; for classes the
    predicted class name and one p_<class> probability column per class. An ensemble's
    prediction is its members' mean, with <target>_std (regression: the predictive standard
    deviation) or <target>_entropy (classes); a Gaussian model's has <target>_std too.

    \b
    Examples:
      fcnn predict runs/quakes/model.pt new.csv -o predictions.parquet
      fcnn simulate earthquakes -n 5 -o - | fcnn predict runs/quakes/model.pt - --keep x,y
    """
    from fcnn_cli.network import checkpoint
    from fcnn_cli.data.columns import check_flat, drop_incomplete
    from fcnn_cli.results.runs import check_output
    from fcnn_cli.data.tables import TableWriter, input_file, iter_tables

    check_output(output, [model, input_file(data)], force)
    writer = TableWriter(output)  # an unknown suffix is refused here, before any work
    iter_tables(data)  # a missing file is reported before torch loads
    predictor = checkpoint.load(model, device)
    if members and not predictor.members:
        logging.getLogger("fcnn_cli").warning(
            "--members: %s is one network, not an ensemble: its prediction is all", model)
    # Kept columns as written (an ID 007 stays 007), but for features, which must be numbers.
    chunks = iter_tables(data, text=[c for c in keep if c not in predictor.features])
    clash = [c for c in keep if c in predictor.output_columns(members)]
    if clash:
        raise FcnnError(f"--keep {', '.join(map(repr, clash))}: the predictions have a column "
                        "of that name; keep other columns, or rename these in the input")
    import pandas as pd

    if nan == "drop":
        chunks = (drop_incomplete(t, predictor.features) for t in chunks)
    with writer:
        for table, predictions in predictor.predict_chunks(chunks, threshold, members):
            missing = [c for c in keep if c not in table.frame.columns]
            if missing:
                raise FcnnError(f"{table.name}: no column(s) {', '.join(map(repr, missing))} "
                                "to --keep")
            check_flat(table, keep, "kept")
            writer.write(pd.concat([table.frame[keep], predictions], axis=1))


@cli.command()
@click.argument("run_dir", shell_complete=DIR)
@output_option(None, "Directory for the PNG files. Default: RUN_DIR/plots.", DIR)
@user_errors
def plot(run_dir, output):
    """Draw a run's plots again, from its files.

    Learning curves, residuals against true per label, maps for positions,
    confusion, ROC and reliability for classes, per-layer diagnostics.

    \b
    Example:
      fcnn plot runs/quakes
    """
    from fcnn_cli.results.plots import plot_run

    for path in plot_run(run_dir, output):
        click.echo(str(path))


@cli.command()
@click.argument("model", shell_complete=FILE)
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@user_errors
def info(model, as_json):
    """What a checkpoint holds.

    Architecture and parameters, features and their training ranges, labels, preprocessing,
    training configuration, metrics and versions; loaded with the checks predict makes.

    \b
    Example:
      fcnn info runs/quakes/model.pt
    """
    from fcnn_cli.core.fileio import STDIO, write_text, writing
    from fcnn_cli.network.modelinfo import describe

    about = describe(model)
    if as_json:
        write_text(STDIO, json.dumps(about, indent=2) + "\n")
        return
    from fcnn_cli.results.report import info_tables

    console = _console(stderr=False)
    with writing(STDIO):
        for t in info_tables(printable_all(about)):
            console.print(t)


@cli.command(name="report")
@click.argument("run_dir", shell_complete=DIR)
@output_option(None, "The HTML file. Default: RUN_DIR/report.html; '-' for stdout.")
@force_option
@user_errors
def report_page(run_dir, output, force):
    """One self-contained HTML page of a run.

    Headline metrics and learning curves first, every split's metrics and plot, the
    configuration last; all embedded (no scripts, nothing from the network): it opens from a
    file in any browser, on a phone too.

    \b
    Example:
      fcnn report runs/quakes -o quakes.html
    """
    from fcnn_cli.core.fileio import write_text
    from fcnn_cli.results.page import run_page
    from fcnn_cli.results.runs import check_output, inputs_of

    target = output or os.path.join(run_dir, "report.html")
    check_output(target, inputs_of(run_dir), force)  # never over a file of the run it shows
    write_text(target, run_page(run_dir))
    if target != "-":
        logging.getLogger("fcnn_cli").info("wrote %s", target)


@cli.command()
@click.argument("model", shell_complete=FILE)
@click.argument("output", metavar="OUTPUT.onnx", shell_complete=FILE)
@force_option
@user_errors
def export(model, output, force):
    """MODEL (a model.pt) as an ONNX graph in OUTPUT.onnx ('-' for stdout), for use outside
    Python.

    Raw feature columns in (input 'features', float32, any number of rows); out what predict
    writes: the labels in their own units ('predictions') and, for a Gaussian head or an
    ensemble, their standard deviations ('std'); for classes the probabilities
    ('probabilities', an ensemble's mean) and an ensemble's entropy ('entropy'). The feature,
    label and class names are in the model's metadata. Before the file is written, onnxruntime
    runs the graph, whose outputs must equal the model's (computed in float64) within what
    float32 rounding allows. Needs pip install 'fcnn[onnx]'.

    \b
    Example:
      fcnn export runs/quakes/model.pt quakes.onnx
    """
    from fcnn_cli.network import checkpoint
    from fcnn_cli.network import export as onnx_export
    from fcnn_cli.results.runs import check_output

    check_output(output, [model], force)
    onnx_export.require()
    onnx_export.export(checkpoint.load(model, "cpu"), output)
    if output != "-":
        logging.getLogger("fcnn_cli").info("wrote %s", output)


SWEEP_FAILED = 3  # the exit status of a sweep that ran to its end with failed combinations
# A sweep's seeds are the members of each combination's ensemble.
SWEEP_FLAGS = {"ensemble": "--seeds"}


def _sweep_options(command):
    """The options of fcnn train that a sweep fixes for every combination: all but
    --ensemble (a sweep's seeds are its members) and --stream (it reads the tables once)."""
    fields = [(cls, f.name) for cls in (DataConfig, NetConfig, TrainConfig)
              for f in option_fields(cls) if f.name not in ("ensemble", "stream")]
    for cls, name in reversed(fields):
        command = field_option(cls, name)(command)
    return command


@cli.command()
@_sweep_options
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2,…",
              help="An option of fcnn train and the values to try; repeat for more keys.")
@click.option("--grid-file", metavar="FILE.toml", shell_complete=FILE,
              help="A [grid] table of lists, beside fixed options as in fcnn train --config "
                   "files; the command line overrides them (--lr 0.5 replaces a grid of lr).")
@click.option("--seeds", type=click.IntRange(1, 1024), default=1,
              help="Seeds per combination: --seed, --seed + 1, …; trained as the members of "
                   "one ensemble where the options allow it, in one pass with those of the "
                   "combinations that differ only in lr, weight decay, init, dropout, "
                   "patience or ema.")
@click.option("--shard", metavar="I/N",
              help="Train only the I-th of N shares of the grid (for array jobs).")
@click.option("--plots/--no-plots", default=True,
              help="Draw each run's plots, as fcnn train does, and leaderboard.png.")
@click.option("--dry-run", is_flag=True,
              help="List the combinations of --shard, each finished, failed or to train; "
                   "train nothing.")
@output_option(None, "Sweep directory. Default: sweeps/<data name>.", DIR)
@quiet_option
@click.pass_context
@user_errors
def sweep(ctx, grid, grid_file, seeds, shard, plots, dry_run, output, quiet, **options):
    """Train every combination of a grid of options on DATA and rank them.

    Each combination gets a run directory in the sweep directory; a rerun skips those that are
    finished (and refuses data files changed since), and those another process is training. A
    combination that fails (diverges at once, options the network refuses, out of memory) gets
    failed.json there and the sweep goes on; a rerun tries it again. Writes
    leaderboard.csv and leaderboard.json (the headline metric of validation and test as mean ±
    std over the seeds; failed combinations last, with their error) and prints the
    leaderboard, best first. Exits with status 3 when combinations of its --shard failed.

    \b
    Examples:
      fcnn sweep quakes.csv --grid depth=3,10,20 --grid arch=plain,resnet,selu --seeds 3
      fcnn sweep quakes.csv --grid-file sweep.toml --epochs 20 --shard 2/8
      fcnn sweep quakes.csv --grid-file sweep.toml --shard 2/8 --dry-run
    """
    from pathlib import Path

    from fcnn_cli.sweeps.leaderboard import leaderboard_table, option_columns
    from fcnn_cli.sweeps.plan import parse_shard, plan, plan_table

    _setup_logging(quiet)
    if output == "-":
        raise click.UsageError("-o names the sweep directory, which cannot be stdout ('-'); "
                               "name a directory")
    with usage_errors(SWEEP_FLAGS):
        spec = _sweep_spec(ctx, grid, grid_file, seeds, options)
        shard_of = parse_shard(shard) if shard is not None else (1, 1)
    directory = Path(output or Path("sweeps") / Path(spec.data["data"]).name.split(".")[0])
    if dry_run:
        planned = plan(spec, directory, shard_of)
        _console(stderr=False).print(plan_table(planned, list(spec.grid), shard_of))
        return
    rows = _run_sweep(spec, directory, shard_of, plots)
    if not quiet:
        columns = option_columns(rows, list(spec.grid))
        _console(stderr=False).print(leaderboard_table(rows, columns))
    _sweep_ends(spec, directory, shard_of)


def _sweep_ends(spec, directory, shard_of):
    """What a sweep left undone: combinations another process trains, and failed ones (exit
    status SWEEP_FAILED)."""
    from fcnn_cli.sweeps.plan import BUSY, FAILED, plan

    planned = plan(spec, directory, shard_of)
    busy = sum(status == BUSY for *_, status in planned)
    if busy:
        click.echo(f"{busy} of {len(planned)} combinations were training in another process "
                   "(not in the leaderboard yet); run the command again when it has ended",
                   err=True)
    failed = sum(status == FAILED for *_, status in planned)
    if failed:
        click.echo(f"{failed} of {len(planned)} combinations failed (listed last in "
                   f"{directory / 'leaderboard.csv'}, each with its failed.json); run the "
                   "command again to retry them", err=True)
        sys.exit(SWEEP_FAILED)


def _run_sweep(spec, directory, shard_of, plots):
    """Train the sweep and write its leaderboard; a signal stops it at once (what it finished
    is kept for a rerun)."""
    from fcnn_cli.sweeps.leaderboard import write_leaderboard
    from fcnn_cli.sweeps.run import run

    with signals.Interrupts() as interrupts:
        try:
            rows = run(spec, directory, shard_of, plots)
            write_leaderboard(rows, directory, plot=plots)
            return rows
        except KeyboardInterrupt:
            click.echo(f"interrupted: the finished combinations are kept in {directory}; run "
                       "the same command again to go on", err=True)
            sys.exit(interrupts.code or 130)


def _sweep_spec(ctx, grid, grid_file, seeds, options):
    """The sweep: the grid of --grid-file and --grid, the fixed options of the file under
    those given on the command line. An option given on the command line also replaces the
    file's grid of it: the command line overrides the file."""
    from fcnn_cli.sweeps.grid import DATA_FIELDS, Sweep, parse_grid, read_grid_file

    table, fixed = read_grid_file(grid_file) if grid_file else ({}, {})
    given = {k: _listed(v) for k, v in options.items() if _given(ctx, k)}
    for key in set(table) & set(given):
        logging.getLogger("fcnn_cli").info("%s on the command line replaces the grid of %s in "
                                           "%s", FLAGS.get(key) or _flag(key), key, grid_file)
        del table[key]
    for key, values in parse_grid(grid).items():
        table[key] = values
    fixed = {**fixed, **given}
    if not fixed.get("data"):
        raise click.UsageError("missing argument DATA")
    if not table:
        raise click.UsageError("give a grid: --grid KEY=V1,V2,… or --grid-file FILE.toml")
    for key in set(table) - set(given):  # a grid overrides what the file fixes
        fixed.pop(key, None)
    data = {k: fixed.pop(k) for k in list(fixed) if k in DATA_FIELDS}
    return Sweep(data, fixed, table, seeds, grid_file)


def main():
    sys.stderr = DroppingStream(sys.stderr)  # progress and messages never stop the work
    try:
        cli(prog_name="fcnn")
    finally:
        # The command is done; what is left is the interpreter's own exit, which takes a while
        # after torch: a signal now must not turn a finished command into a killed one.
        signals.ignore()
