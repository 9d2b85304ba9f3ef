"""fcnn train: the run's options, from the command line over a configuration file, or those of
the run it resumes, each checked before any data is read; runjob.py runs them."""

import contextlib
import dataclasses
import logging
import os
import sys

import click

from fcnn_cli.commands.helpgroups import OUTPUT, RUN, GroupedCommand, option
from fcnn_cli.commands.options import (DIR, FILE, OPTION_FIELDS, fields_options, flag_of, given,
                                       listed, output_option, quiet_option, selection_of,
                                       plots_default, setup_logging, usage_errors, user_errors,
                                       with_flags)
from fcnn_cli.commands import tabledefaults
from fcnn_cli.commands.runjob import Job, fit_and_save, where
from fcnn_cli.core.config import MADE_BY_DATA, DataConfig, NetConfig, TrainConfig, option_fields
from fcnn_cli.core.configfile import PLOTS_VARIABLE
from fcnn_cli.core.errors import FcnnError, TooFewRows, printable

# What a resume can honour.
RESUME_TAKES = ("resume", "quiet", "threads", "device", "nproc", "plots")


@click.command(cls=GroupedCommand)
@fields_options(OPTION_FIELDS)
@option("--config", "config_file", metavar="FILE.toml", shell_complete=FILE, group=RUN,
        help="Options from a TOML file (a run directory's config.toml repeats that run); "
             "options on the command line override it.")
@option("--print-config", is_flag=True, group=OUTPUT,
        help="Print the resolved options as a configuration file and exit.")
@option("--nproc", type=click.IntRange(1, 1024), default=1, group=RUN,
        help="Train in this many processes on this node, each with its part of every "
             "minibatch (--batch-size is the global batch): starts torchrun with the same "
             "command. For several nodes start torchrun yourself (see docs/clusters.md).")
@option("--plots/--no-plots", default=plots_default, show_default=False, group=OUTPUT,
        help="Draw the run's plots into RUN_DIR/plots at the end (redraw them with fcnn plot "
             f"RUN_DIR). Default: on, unless --config's file says plots = false or "
             f"{PLOTS_VARIABLE}=0.")
@output_option(None, "Run directory. Default: runs/<data name>, numbered beside earlier runs.",
               DIR)
@option("--force", is_flag=True, group=OUTPUT,
        help="Write into a run directory that holds a run.")
@option("--resume", metavar="RUN_DIR", shell_complete=DIR, group=RUN,
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
      fcnn train calib.csv -t energy --features e1,region,pdg --categorical pdg
      fcnn train quakes.csv --depth 20 --activation sigmoid --diagnostics
      fcnn train --resume runs/quakes
      fcnn train quakes.parquet --nproc 2 --test test.parquet
      fcnn train --config sample_data/quakes.toml --epochs 20
      fcnn train survey/ --stream --shuffle-buffer 2000000
      fcnn train --sample 'signal=sig_*.root' --sample 'background=bkg.root*0.3' \\
          --weight genWeight --where 'nMuon >= 2' --objects Muon:2 \\
          --define 'pt0=hypot(Muon_Px_0, Muon_Py_0)'
    """
    from fcnn_cli.machine import distributed
    from fcnn_cli.results import runs

    setup_logging(options["quiet"])
    if options["output"] == "-":
        raise click.UsageError("-o names the run directory, which cannot be stdout ('-'); "
                               "name a directory")
    job = _resumed_job(ctx, options) if options["resume"] else _new_job(ctx, options)
    if options["print_config"]:
        return _print_config(job)
    data, val, test = job.paths
    if job.paths.count("-") > 1:
        raise click.UsageError("stdin ('-') can feed one table only")
    if job.recipe is not None:
        job.recipe.find()
    if data is not None:
        _warn_if_trained_on(data, val, test)
    runs.check_run_dir(job.output or runs.default_run_dir(job.name), job.force, job.inputs)
    nproc = options["nproc"]
    if nproc > 1 or distributed.launched():
        _refuse_streams(*job.paths, directory=job.config.stream)
    if nproc > 1 and not distributed.launched():
        distributed.check_nproc(nproc)
        sys.exit(distributed.launch(nproc, _without_nproc(sys.argv[1:])))
    with _file_errors(job.from_file, options["config_file"], click.ClickException), \
            _selected_too_few(job.recipe):
        fit_and_save(job, options["quiet"])


@contextlib.contextmanager
def _selected_too_few(recipe):
    """Too few rows to train on after a selection: the selection is the cause to name."""
    try:
        yield
    except TooFewRows as e:
        cut = selection_of(recipe)
        if cut is None:
            raise
        removed = "the others" if e.rows else "every row"
        raise FcnnError(f"{e}: the selection {cut} removed {removed}") from None


def _new_job(ctx, o):
    """A new run from the command line's options over those of --config FILE, each checked
    before any data is read."""
    from fcnn_cli.data import gather

    o, from_file = _with_file(ctx, o)
    if not o["data"] and not o["samples"] and not o["print_config"]:
        raise click.UsageError("missing argument DATA (or --sample NAME=FILE, or --resume "
                               "RUN_DIR)")
    net = {f.name: o[f.name] for f in option_fields(NetConfig) if o[f.name] is not None}
    with _file_errors(from_file, o["config_file"]):
        config = TrainConfig(**{f.name: o[f.name] for f in option_fields(TrainConfig)})
        shape = NetConfig(n_in=1, n_out=1, **net)
        processes = o["nproc"] if o["nproc"] > 1 else int(os.environ.get("WORLD_SIZE", 1))
        if shape.batchnorm and config.batch_size // processes < 2:
            raise click.UsageError(f"batch normalisation needs at least 2 rows of every "
                                   f"minibatch in each of the {processes} process(es); "
                                   f"--batch-size {config.batch_size} gives fewer")
        data = DataConfig(**{f.name: listed(o[f.name]) for f in option_fields(DataConfig)})
        recipe = gather.of_config(data, data.targets, config.stream)
        if recipe is not None:
            gather.check_training(recipe, data, config)
    if config.negative_weights != "keep" and (recipe is None or recipe.weight_column is None):
        logging.getLogger("fcnn_cli").warning(
            "--negative-weights %s changes nothing: the events have no weights (--weight, or a "
            "sample's *SCALE), so none is negative", config.negative_weights)
    targets = [recipe.label] if recipe is not None and recipe.label else data.targets
    left = {name for name in tabledefaults.CHOSEN if not (given(ctx, name) or name in from_file)}
    return Job([data.data, data.val, data.test], targets, data.features, net, config,
               None, o["output"], o["force"], o["plots"], from_file, recipe, data.categorical,
               frozenset(left))


def _with_file(ctx, o):
    """The options with those of --config FILE where the command line gives none, and the
    names of those taken from the file."""
    if not o["config_file"]:
        return o, set()
    from fcnn_cli.core.configfile import read_config

    with usage_errors():
        values = read_config(o["config_file"])
    taken = {k: v for k, v in values.items() if not given(ctx, k)}
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
    from fcnn_cli.data import recipe as recipes
    from fcnn_cli.core.fileio import write_text

    net = NetConfig(n_in=1, n_out=1, **job.net).to_dict()
    del net["n_in"], net["n_out"]
    if "dropout" not in job.net:  # the task's default, which the data decide: a comment
        net["dropout"] = None
    # Left to DATA's metadata (tabledefaults): comments, so that the file leaves them open too.
    net.update(dict.fromkeys(job.left & set(net)))
    train = dataclasses.asdict(job.config)
    train.update(dict.fromkeys(job.left & set(train)))
    data = dict(zip(("data", "val", "test"), (where(p) if p else None for p in job.paths)))
    targets = job.targets
    if job.recipe is not None and job.recipe.label == recipes.LABEL:
        targets = None  # the samples' class column, as without targets
    text = dumps({**data, "targets": targets, "features": job.features,
                  "categorical": job.categorical,
                  **recipes.options_of(job.recipe, absolute=True)}, net, train)
    write_text("-", text)


def _resumed_job(ctx, o):
    """The run to continue, with its saved data and options (and --device, --threads)."""
    from fcnn_cli.results import runs

    if o["data"]:
        raise click.UsageError("give DATA or --resume RUN_DIR, not both")
    _refuse_beside_resume(ctx)
    saved = runs.load_resume(o["resume"])
    net = {k: v for k, v in saved.net.to_dict().items() if k not in MADE_BY_DATA}
    kept = {k: o[k] for k in ("device", "threads") if given(ctx, k)}
    with usage_errors():
        config = dataclasses.replace(saved.config, **kept)
    return Job([saved.data, saved.val_data, saved.test_data], saved.targets, saved.features,
               net, config, saved.state, o["resume"], True, o["plots"], recipe=saved.recipe,
               categorical=saved.categorical)


def _refuse_beside_resume(ctx):
    """A resumed run keeps its saved options: refuse any other given beside --resume."""
    others = [p for p in ctx.command.params
              if p.name not in RESUME_TAKES and p.name != "data" and given(ctx, p.name)]
    if others:
        names = ", ".join("/".join(p.opts + p.secondary_opts) for p in others)
        raise click.UsageError(f"--resume continues a run with its saved options; it does not "
                               f"take {names} (only -q, --threads, --device, --nproc and "
                               "--no-plots)")


def _warn_if_trained_on(data, val, test):
    """A validation or test file that is the training data itself scores what was learnt; a
    test file that is the validation file scores the rows that chose the best epoch."""
    from fcnn_cli.core.fileio import same_file

    log = logging.getLogger("fcnn_cli")
    for name, path in (("val", val), ("test", test)):
        if path and path != "-" and same_file(path, data):
            log.warning("%s %s is DATA itself: its rows are trained on, and its scores are "
                        "optimistic", flag_of(name), path)
    if val and test and "-" not in (val, test) and same_file(test, val):
        log.warning("--test %s is the --val file too: its rows chose the best epoch, and its "
                    "scores are optimistic", test)


def _refuse_streams(*paths, directory=False):
    """Every process reads the tables itself: each must be a file it can open (or, streamed,
    a directory of them), not a stream."""
    for path in paths:
        if directory and os.path.isdir(path or ""):
            continue
        if path and (path == "-" or os.path.exists(path) and not os.path.isfile(path)):
            raise click.UsageError(f"{path}: several processes each read the tables; give a "
                                   "file, not stdin or a pipe")


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
