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

from fcnn_cli import __version__, signals
# The option dataclasses and their choices: plain Python, so importing them costs nothing.
from fcnn_cli.config import (ARCHITECTURES, BINARY_OUTPUTS, CLASS_WEIGHTS, DEVICES, INITS,
                             MAX_SEED, NAN_POLICIES, OPTIMIZERS, SCALINGS, SCHEDULES, TASKS,
                             NetConfig, TrainConfig, check_columns, check_threshold,
                             repeated)
from fcnn_cli.console import DroppingStream
from fcnn_cli.errors import FcnnError

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


def _console(stderr=True):
    from rich.console import Console

    return Console(stderr=stderr)


# Python option names whose flag is not ``--`` and the name with dashes for underscores.
FLAGS = {"targets": "--target", "stations": "--station", "n": "-n"}


def with_flags(text, options):
    """A library message as the command line says it: for the Python option names in
    ``options``, ``nan='drop'`` becomes ``--nan drop``, ``force=True`` ``--force`` and a bare
    ``depth`` ``--depth``. Only whole names: not inside a word, a path or a quoted name."""
    if not options:
        return text

    def flag(match):
        name, value = match[1], match[2] if match[2] is not None else match[3]
        spelt = FLAGS.get(name, "--" + name.replace("_", "-"))
        return spelt if value in (None, "True") else f"{spelt} {value}"

    names = "|".join(map(re.escape, options))
    return re.sub(rf"(?<![\w./'\"-])({names})(?:='([^']*)'|=([^\s,;)]+))?(?![\w/'\"=-]|\.\w)",
                  flag, text)


@contextlib.contextmanager
def usage_errors():
    """Bad option values found by the library's validation are usage errors: exit 2."""
    try:
        yield
    except FcnnError as e:
        raise click.UsageError(with_flags(str(e), e.options)) from None


def user_errors(command):
    """Report FcnnError as one line and exit 1: no traceback for the user's mistakes."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except FcnnError as e:
            raise click.ClickException(with_flags(str(e), e.options)) from None
        except KeyboardInterrupt as e:
            click.echo("interrupted: nothing saved", err=True)
            sys.exit(getattr(e, "code", 130))  # 143 after SIGTERM: see signals.Interrupted
        except BrokenPipeError:
            # A downstream `head` closed the pipe: not an error.
            from fcnn_cli.fileio import discard_stdout

            discard_stdout()
            sys.exit(0)

    return wrapper


class _MessageFormatter(logging.Formatter):
    def format(self, record):
        # A library warning names options through the Messages among its arguments.
        args = record.args if isinstance(record.args, tuple) else ()
        message = with_flags(record.getMessage(),
                             [o for arg in args for o in getattr(arg, "options", ())])
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
    from fcnn_cli.plots import check_png  # matplotlib itself loads only to draw

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


def output_option(default, help):
    return click.option("-o", "--output", default=default, show_default=True, help=help)


def seed_option(command):
    return click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0,
                        help="Random seed (0 to 2**63 - 1): the same seed gives the same "
                             "result.")(command)


def device_option(command):
    return click.option("--device", type=click.Choice(DEVICES), default="auto",
                        help="auto takes a GPU when there is one.")(command)


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


def nan_option(command):
    return click.option("--nan", type=click.Choice(NAN_POLICIES), default="error",
                        help="Rows with NaN, missing or infinite values: stop with an error "
                             "that counts them, or leave them out.")(command)


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
      fcnn evaluate runs/quakes/model.pt test.csv  # metrics on held-out rows
      fcnn predict runs/quakes/model.pt new.csv    # predictions as CSV on stdout

    Tables are CSV or Parquet (by suffix; a pipe or device without one is CSV); '-' means
    stdin or stdout.
    """
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
@output_option("earthquakes.csv", "Output file: .csv or .parquet; '-' for CSV on stdout.")
@user_errors
def earthquakes(n, seed, extent, stations, vp, vs, noise, output):
    """Epicentres and P/S first-arrival times at seismic stations.

    Straight rays in a uniform medium: t = distance / velocity. Columns: x, y (km; the labels,
    recorded in the file) and tp1, ts1, …, tpK, tsK (s).

    \b
    Example:
      fcnn simulate earthquakes -n 5000 --noise 0.01 --seed 1 -o quakes.parquet
    """
    from fcnn_cli import simulate as sim
    from fcnn_cli.fileio import check_output
    from fcnn_cli.tables import table_format

    check_output(output)
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
@click.option("--preview", metavar="FILE.png", callback=_png,
              help="Also draw a grid of examples with labels.")
@output_option("galaxies.parquet", "Output file: .parquet or .csv; '-' for CSV on stdout.")
@user_errors
def galaxies(n, seed, size, noise, preview, output):
    """Images of spiral galaxies labelled by their sense of rotation, left or right.

    Logarithmic spiral arms with a random number of arms, pitch angle, orientation, bulge,
    size, inclination and brightness, plus pixel noise. Columns p0000 … p1023 hold the pixels
    row by row (row 0 at the top); the label column 'rotation' is recorded in the file.

    \b
    Example:
      fcnn simulate galaxies -n 5000 --noise 0.1 --preview galaxies.png -o galaxies.parquet
    """
    from fcnn_cli import simulate as sim
    from fcnn_cli.fileio import check_output
    from fcnn_cli.plots import GRID_COLS, GRID_ROWS
    from fcnn_cli.tables import table_format

    check_output(output, [preview])
    if preview:
        check_output(preview, [output])
    table_format(output)
    with usage_errors():
        chunks = sim.galaxy_tables(n=n, seed=seed, size=size, noise=noise)
    first = _write_tables(chunks, output, keep=GRID_ROWS * GRID_COLS if preview else 0)
    if preview:
        from fcnn_cli.plots import galaxy_grid

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
    from fcnn_cli.tables import Table, TableWriter

    with signals.Interrupts():
        first = next(tables)
        head = Table(first.frame.iloc[:keep].copy(), first.targets, first.units, first.name)
        with TableWriter(output, first.metadata()) as writer:
            writer.write(first.frame)
            del first  # hold one chunk at a time
            for table in tables:
                writer.write(table.frame)
    return head


@cli.command()
@click.argument("data", required=False)
@click.option("-t", "--target", "targets", multiple=True,
              help="A label column; repeat for several. Default: the labels recorded in the file.")
@click.option("--features", callback=_csv_list, metavar="A,B,…",
              help="Feature columns. Default: every other numeric column.")
@click.option("--task", type=click.Choice(TASKS), default="auto",
              help="auto: text, boolean or categorical labels give classification, real "
                   "numbers regression; integers with few values must be told.")
@click.option("--binary-output", type=click.Choice(BINARY_OUTPUTS), default="softmax",
              help="Two classes: two softmax nodes, or one sigmoid node.")
@click.option("--class-weight", type=click.Choice(CLASS_WEIGHTS), default="none",
              help="balanced: weigh each class in the loss by n / (classes × its count).")
@click.option("--val", "val_path", metavar="FILE",
              help="Validation table, instead of a split of DATA.")
@click.option("--test", "test_path", metavar="FILE",
              help="Test table, scored at the end, instead of holding out --test-frac of DATA.")
@click.option("--val-frac", type=float, default=0.05, help="Share of rows for validation.")
@click.option("--test-frac", type=float, default=0.05,
              help="Share of rows held out for testing (none when --test FILE is given).")
@click.option("--arch", type=click.Choice(ARCHITECTURES),
              default="plain", help="Network architecture; see the README.")
@click.option("--depth", type=int, default=3, help="Number of hidden layers.")
@click.option("--width", type=int, default=64, help="Nodes per hidden layer.")
@click.option("--activation", default=None, help="relu, leaky-relu, elu, selu, silu, gelu, "
              "tanh, sigmoid, softplus. Default: silu (selu for --arch selu).")
@click.option("--batchnorm/--no-batchnorm", default=False,
              help="Batch normalisation in every hidden layer (implied by --arch batchnorm).")
@click.option("--init", type=click.Choice(INITS), default=None,
              help="Weight initialisation (biases start at zero). Default: glorot-normal "
                   "(lecun for --arch selu).")
@click.option("--dropout", type=float, default=None,
              help="Dropout rate (alpha-dropout for selu). Default: 0.1 for classification, "
                   "0 for regression.")
@click.option("--epochs", type=int, default=60, help="Passes over the training data.")
@click.option("--batch-size", type=int, default=32, help="Rows per minibatch.")
@click.option("--lr", type=float, default=1e-3, help="Learning rate.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="adam",
              help="sgd uses --momentum.")
@click.option("--momentum", type=float, default=0.9, help="Momentum for sgd.")
@click.option("--weight-decay", type=float, default=0.0, help="L2 weight decay.")
@click.option("--schedule", type=click.Choice(SCHEDULES), default="cosine",
              help="Learning rate schedule: cosine decay to zero over all steps, or halve "
                   "on a validation plateau.")
@click.option("--patience", type=int, default=0,
              help="Stop after this many epochs without a better validation loss (0: never).")
@click.option("--ema", type=float, default=0.998,
              help="Validate and keep a running average of the weights with this decay per "
                   "step (0: the last step's weights).")
@click.option("--scale", type=click.Choice(SCALINGS),
              default="standard", help="Feature scaling, fitted on the training split.")
@seed_option
@device_option
@click.option("--threads", type=int, default=None, help="CPU threads (default: torch's choice).")
@click.option("--nproc", type=click.IntRange(1, 1024), default=1,
              help="Train in this many processes on this node, each with its part of every "
                   "minibatch (--batch-size is the global batch): starts torchrun with the same "
                   "command. For several nodes start torchrun yourself (see the README).")
@click.option("--fast/--no-fast", default=True,
              help="The autograd-free training step for plain networks; --no-fast uses "
                   "autograd everywhere.")
@click.option("--stream", is_flag=True,
              help="Read DATA (a Parquet file, or a directory of them) piece by piece every "
                   "epoch instead of all at once: for tables larger than memory.")
@click.option("--shuffle-buffer", type=int, default=1_000_000, metavar="ROWS",
              help="With --stream: rows held to mix the rows of the file's pieces.")
@click.option("--diagnostics", is_flag=True,
              help="Record per-layer gradient norms and activation moments every epoch "
                   "(diagnostics.csv) and warn of vanishing or exploding gradients.")
@output_option(None, "Run directory. Default: runs/<data name>, numbered beside earlier runs.")
@click.option("--force", is_flag=True, help="Write into a run directory that holds a run.")
@click.option("--resume", metavar="RUN_DIR",
              help="Continue an interrupted run with its saved data path and options; combines "
                   "only with -q, --threads, --device and --nproc.")
@nan_option
@quiet_option
@click.pass_context
@user_errors
def train(ctx, **options):
    """Fit a network to DATA (CSV or Parquet; '-' for CSV on stdin).

    Writes a run directory with model.pt (the self-contained checkpoint), metrics.json,
    history.csv and config.json. Ctrl-C or SIGTERM stops after the last complete epoch, saves
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
      fcnn train survey/ --stream --shuffle-buffer 2000000
    """
    from fcnn_cli import distributed, runs

    _setup_logging(options["quiet"])
    if options["output"] == "-":
        raise click.UsageError("-o names the run directory, which cannot be stdout ('-'); "
                               "name a directory")
    job = _resumed_job(ctx, options) if options["resume"] else _new_job(options)
    data, val_path, test_path = job.paths
    if job.paths.count("-") > 1:
        raise click.UsageError("stdin ('-') can feed one table only")
    _warn_if_trained_on(data, val_path=val_path, test_path=test_path)
    runs.check_run_dir(job.output or runs.default_run_dir(data), job.force, job.paths)
    nproc = options["nproc"]
    if nproc > 1 or distributed.launched():
        _refuse_streams(*job.paths, directory=job.config.stream)
    if nproc > 1 and not distributed.launched():
        sys.exit(distributed.launch(nproc, _without_nproc(sys.argv[1:])))
    _fit_and_save(job, options["quiet"])


def _new_job(o):
    """A new run from the command line's options, each checked before any data is read."""
    if not o["data"]:
        raise click.UsageError("missing argument DATA (or --resume RUN_DIR)")
    net = {k: o[k] for k in ("depth", "width", "activation", "arch", "batchnorm", "init")}
    if o["dropout"] is not None:
        net["dropout"] = o["dropout"]
    with usage_errors():
        config = TrainConfig(**{f.name: o[f.name] for f in dataclasses.fields(TrainConfig)})
        shape = NetConfig(n_in=1, n_out=1, **net)
        processes = o["nproc"] if o["nproc"] > 1 else int(os.environ.get("WORLD_SIZE", 1))
        if shape.batchnorm and config.batch_size // processes < 2:
            raise click.UsageError(f"batch normalisation needs at least 2 rows of every "
                                   f"minibatch in each of the {processes} process(es); "
                                   f"--batch-size {config.batch_size} gives fewer")
        check_columns(o["targets"], o["features"])
    return _Job([o["data"], o["val_path"], o["test_path"]], list(o["targets"]) or None,
                o["features"], net, config, None, o["output"], o["force"])


def _resumed_job(ctx, o):
    """The run to continue, with its saved data and options (and --device, --threads)."""
    from fcnn_cli import runs

    if o["data"]:
        raise click.UsageError("give DATA or --resume RUN_DIR, not both")
    _refuse_beside_resume(ctx)
    saved = runs.load_resume(o["resume"])
    net = {k: v for k, v in saved.net.to_dict().items() if k not in ("n_in", "n_out")}
    given = {k: o[k] for k in ("device", "threads") if _given(ctx, k)}
    with usage_errors():
        config = dataclasses.replace(saved.config, **given)
    return _Job([saved.data, saved.val_data, saved.test_data], saved.targets, saved.features,
                net, config, saved.state, o["resume"], True)


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


def _fit_and_save(job, quiet):
    """Read the tables, train (in this process, or as one of several that torchrun started:
    only the first prints and writes), save the run and report it."""
    from fcnn_cli import distributed

    with signals.Interrupts() as interrupts:
        tables = _open_tables(job)
        world, device = distributed.join(job.config.device)  # torch: only once the data are good
        try:
            parallel = world.describe(device)  # now, while every process is surely there
            if not world.is_main:
                quiet = True
                logging.getLogger("fcnn_cli").setLevel(logging.ERROR)
            console = _console()
            try:
                result, run_dir = _train_and_save(job, tables, world, interrupts, console,
                                                  quiet, parallel)
            except KeyboardInterrupt:  # before any epoch was complete: nothing to keep
                raise signals.Interrupted(interrupts.code or 130) from None
        finally:
            distributed.leave(world)
        if world.is_main:  # still under the handlers: a signal now is only noted
            _report_run(console, result, run_dir, quiet, interrupts.code, job.paths[2])
    if result.lost:  # the first process has said what it saved; the others say why they end
        if world.is_main:
            sys.exit(1)
        raise FcnnError(result.stopped)
    if interrupts.code or result.interrupted:
        sys.exit(interrupts.code or 130)


def _open_tables(job):
    """The tables to train on: read into memory, or opened to be streamed (--stream)."""
    if not job.config.stream:
        from fcnn_cli.tables import read_table

        return [read_table(p) if p else None for p in job.paths]
    from fcnn_cli import stream

    data, val, test = job.paths
    return [stream.open_source(data), *(stream.FileChunks(p) if p else None for p in (val, test))]


def _train_and_save(job, tables, world, interrupts, console, quiet, parallel):
    """Train, and save the run from the first process, which needs no other for that; then wait
    for it in the others, so that none ends (and gets the job stopped) before the save."""
    from fcnn_cli import distributed, runs
    from fcnn_cli import train as training

    with _run_dir(world, job) as run_dir:
        with _EpochPrinter(console, job.config.epochs, quiet) as printer:
            # Popped, not indexed: once prepared, the tables are freed while training runs.
            result = training.fit(tables.pop(0), job.config, job.net, job.targets,
                                  job.features, tables.pop(0), tables.pop(0), printer,
                                  job.state, world, interrupts)
        if world.is_main:
            if job.state is None:  # a new run, maybe over an older one (--force)
                runs.forget_state(run_dir)
            runs.save_run(result, run_dir, *(_where(p) if p else None for p in job.paths),
                          parallel=parallel)
    if not result.lost:
        try:
            distributed.barrier(world)
        except RuntimeError as e:
            if not distributed.lost_peer(e):
                raise
            if not world.is_main:  # the first has saved the run: a process gone now loses nothing
                raise FcnnError(f"process {world.rank} of {world.size}: the first process ended "
                                "before it had saved the run") from None
    return result, run_dir


def _warn_if_trained_on(data, **others):
    """A validation or test file that is the training data itself scores what was learnt."""
    from fcnn_cli.fileio import same_file

    for option, path in others.items():
        if path and path != "-" and same_file(path, data):
            flag = "--" + option.removesuffix("_path")
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
    from fcnn_cli import runs

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
        console.print(f"{result.stopped}: saved the best model so far and the state to resume "
                      f"in {run_dir}; continue with: fcnn train --resume {run_dir}",
                      highlight=False, markup=False, soft_wrap=True)
        return
    if not quiet:
        from fcnn_cli.report import diagnostics_table, tables

        if result.diagnostics:
            console.print(diagnostics_table(result.diagnostics))
        split = "test" if "test" in result.metrics else "val"
        title = f"{split.capitalize()} metrics" + (f" of {test_path}" if test_path else "")
        for t in tables(result.metrics[split], title=title):
            console.print(t)
        from rich.text import Text  # not markup: a directory name may hold "[...]"

        console.print(Text.assemble("saved run to ", (str(run_dir), "bold"), " (best epoch "
                                    f"{result.predictor.info['best_epoch']}; {result.stopped})"))
    if signal_code:
        console.print(f"stopped by a signal after training had ended: the complete run is "
                      f"saved in {run_dir}", highlight=False, markup=False, soft_wrap=True)


RESUME_TAKES = ("resume", "quiet", "threads", "device", "nproc")  # what a resume can honour


def _given(ctx, name):
    return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE


def _refuse_beside_resume(ctx):
    """A resumed run keeps its saved options: refuse any other given beside --resume."""
    others = [p for p in ctx.command.params
              if p.name not in RESUME_TAKES and p.name != "data" and _given(ctx, p.name)]
    if others:
        names = ", ".join("/".join(p.opts + p.secondary_opts) for p in others)
        raise click.UsageError(f"--resume continues a run with its saved options; it does not "
                               f"take {names} (only -q, --threads, --device and --nproc)")


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


@cli.command()
@click.argument("model")
@click.argument("data")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@output_option(None, "Also write the report as JSON to this file; '-' for JSON on stdout "
               "(as --json).")
@threshold_option
@nan_option
@device_option
@user_errors
def evaluate(model, data, as_json, output, threshold, nan, device):
    """Metrics of MODEL (a model.pt) on the labelled table DATA ('-' for stdin).

    \b
    Examples:
      fcnn evaluate runs/quakes/model.pt test.csv
      fcnn evaluate runs/quakes/model.pt test.parquet --json | jq .overall.rmse
    """
    from fcnn_cli import checkpoint
    from fcnn_cli.fileio import STDIO, check_output, write_text, writing
    from fcnn_cli.columns import drop_incomplete
    from fcnn_cli.tables import iter_tables

    check_output(STDIO, [model, data])  # the report goes there, or its tables
    if output:
        check_output(output, [model, data])
    chunks = iter_tables(data)  # a missing file is reported before torch loads
    predictor = checkpoint.load(model, device)
    if nan == "drop":
        chunks = (drop_incomplete(t, predictor.features + predictor.targets) for t in chunks)
    report = {"model": str(model), "data": "<stdin>" if data == "-" else str(data),
              **predictor.evaluate_chunks(chunks, threshold)}
    text = json.dumps(report, indent=2) + "\n"
    if output and output != STDIO:
        write_text(output, text)
    if as_json or output == STDIO:
        write_text(STDIO, text)
    else:
        from fcnn_cli.report import tables

        console = _console(stderr=False)
        with writing(STDIO):
            for t in tables(report, title=report["data"]):
                console.print(t)


@cli.command()
@click.argument("model")
@click.argument("data")
@click.option("--keep", multiple=True, metavar="COL", callback=_keep_list,
              help="Copy this input column (an ID, say) into the output; repeatable.")
@output_option("-", "Output file (.csv or .parquet); '-' for CSV on stdout.")
@threshold_option
@nan_option
@device_option
@user_errors
def predict(model, data, keep, output, threshold, nan, device):
    """Predictions of MODEL for every row of DATA ('-' for stdin); labels may be absent.

    Writes one <target>_pred column per label, after any --keep columns; for classes the
    predicted class name and one p_<class> probability column per class.

    \b
    Examples:
      fcnn predict runs/quakes/model.pt new.csv -o predictions.parquet
      fcnn simulate earthquakes -n 5 -o - | fcnn predict runs/quakes/model.pt - --keep x,y
    """
    from fcnn_cli import checkpoint
    from fcnn_cli.fileio import check_output
    from fcnn_cli.columns import drop_incomplete
    from fcnn_cli.tables import TableWriter, iter_tables

    check_output(output, [model, data])
    writer = TableWriter(output)  # an unknown suffix is refused here, before any work
    iter_tables(data)  # a missing file is reported before torch loads
    predictor = checkpoint.load(model, device)
    # Kept columns as written (an ID 007 stays 007), but for features, which must be numbers.
    chunks = iter_tables(data, text=[c for c in keep if c not in predictor.features])
    clash = [c for c in keep if c in predictor.output_columns()]
    if clash:
        raise FcnnError(f"--keep {', '.join(map(repr, clash))}: the predictions have a column "
                        "of that name; keep other columns, or rename these in the input")
    import pandas as pd

    if nan == "drop":
        chunks = (drop_incomplete(t, predictor.features) for t in chunks)
    with writer:
        for table, predictions in predictor.predict_chunks(chunks, threshold):
            missing = [c for c in keep if c not in table.frame.columns]
            if missing:
                raise FcnnError(f"{table.name}: no column(s) {', '.join(map(repr, missing))} "
                                "to --keep")
            writer.write(pd.concat([table.frame[keep], predictions], axis=1))


def main():
    sys.stderr = DroppingStream(sys.stderr)  # progress and messages never stop the work
    try:
        cli(prog_name="fcnn")
    finally:
        # The command is done; what is left is the interpreter's own exit, which takes a while
        # after torch: a signal now must not turn a finished command into a killed one.
        signals.ignore()
