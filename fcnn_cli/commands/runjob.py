"""The run of fcnn train once its options are checked: read the tables, train in this process or
as one of several, save the run directory, print what it achieved, then draw its plots."""

import contextlib
import dataclasses
import logging
import os
import sys

import click

from fcnn_cli.core.config import TrainConfig
from fcnn_cli.core.console import rich_console
from fcnn_cli.core.errors import DataChanged, FcnnError, printable, printable_all
from fcnn_cli.commands import drawer
from fcnn_cli.machine import signals


@dataclasses.dataclass
class Job:
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
    recipe: object = None  # data.recipe.Recipe: samples, definitions, selection, weight
    categorical: list | None = None  # feature columns one-hot encoded, besides text ones
    left: frozenset = frozenset()  # the options left to DATA's metadata (tabledefaults.CHOSEN)

    @property
    def name(self):
        """What names the run's default directory: DATA, or the recipe's samples."""
        if self.recipe is not None:
            return self.recipe.run_name()
        return self.paths[0]

    @property
    def inputs(self):
        """Every file the run reads: none may be one of its outputs."""
        return [*self.paths, *(self.recipe.files() if self.recipe is not None else [])]


def where(path):
    """A data path as a run records it: absolute, so that --resume works from anywhere (each
    file of a comma-separated DATA)."""
    from fcnn_cli.core.configfile import each_path

    return "<stdin>" if path == "-" else each_path(path, os.path.abspath)


def fit_and_save(job, quiet):
    """Read the tables, train (in this process, or as one of several that torchrun started:
    only the first prints and writes), save the run and report it."""
    from fcnn_cli.machine import distributed

    if not distributed.first_process():  # from the tables' reading on (their metadata's lines)
        quiet = True
        logging.getLogger("fcnn_cli").setLevel(logging.ERROR)
    with signals.Interrupts() as interrupts, drawer.started(job.plots) as plotter:
        tables = _open_tables(job)
        world, device = distributed.join(job.config.device)  # torch: only once the data are good
        try:
            # Several processes now, while every one is surely there; one after training, on the
            # device that "auto" chose for the network.
            parallel = world.describe(device) if world.distributed else None
            console = rich_console()
            try:
                result, run_dir = _train_and_save(job, tables, world, interrupts, console,
                                                  quiet, parallel)
            except KeyboardInterrupt:  # before any epoch was complete: nothing to keep
                raise signals.Interrupted(interrupts.code or 130) from None
            except DataChanged as e:  # nor here
                kept = "no epoch was complete: nothing saved" if job.state is None else \
                    f"the run is as it was saved; {_resume_hint(job.output, True)}"
                raise _DataChangedError(printable(f"{e}; {kept}")) from None
        finally:
            distributed.leave(world)
        if world.is_main:  # still under the handlers: a signal now is only noted
            signalled = interrupts.code  # one that comes during the report is said below
            _report_run(console, result, run_dir, quiet, signalled, job.paths)
            # Last: the run is saved and shown whole before the plots, which only read its
            # files (and need the predictions, which a changed table leaves unsaved); none
            # after a signal, which asks the job to end (_draw_run says so of a signal that
            # came during the report).
            if job.plots and not result.changed and not signalled:
                _draw_run(run_dir, interrupts, console, plotter, quiet)
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


def _read_once(paths):
    """The first of a job's DATA, --val and --test that is stdin or a pipe, or None: a run
    that read one cannot be resumed, which reads its tables again."""
    from fcnn_cli.data.tables import is_pipe

    return next((p for p in paths if p and is_pipe(p)), None)


def _interrupted_line(result, run_dir, paths):
    """What an interrupted run kept, and how to go on."""
    said = f"{result.stopped}{';' if result.changed else ':'} saved the best model so far"
    once = _read_once(paths)
    if once is not None:
        return f"{said} in {run_dir}; it cannot be resumed: it read a table from " \
            f"{'stdin' if once == '-' else once}, which a resumed run cannot read again"
    return f"{said} and the state to resume in {run_dir}; " \
        f"{_resume_hint(run_dir, result.changed)}"


def _open_tables(job):
    """The tables to train on; a new run first takes what DATA's metadata asks for
    (tabledefaults), or, DATA on stdin or a pipe, says what it does not take."""
    from fcnn_cli.commands import tabledefaults

    if job.state is None:
        tabledefaults.apply(job)
    features = job.features  # as given: reading through a recipe fills them in
    try:
        tables = _read_tables(job)
    except FcnnError as e:
        if job.state is None:  # what explains it, first
            tabledefaults.on_pipe_refused(job, e)
        raise
    if job.state is None:
        tabledefaults.on_pipe(job, tables[0], features)
    return tables


def _read_tables(job):
    """The tables to train on: read into memory, or opened to be streamed (--stream)."""
    if job.recipe is not None:
        from fcnn_cli.data import gather

        if job.config.stream:  # a stream reads every column as it is
            tables, job.features = gather.streamed_tables(job.recipe, job.paths, job.targets,
                                                          job.features)
            return tables
        fold_by = {"fold_by": job.config.fold_by} if job.config.fold_by else {}  # k-fold's
        tables, job.features = gather.training_tables(job.recipe, job.paths, job.targets,
                                                      job.features, categorical=job.categorical,
                                                      **fold_by)
        return tables
    if not job.config.stream:
        from fcnn_cli.data.tables import read_table

        wide = [*(job.targets or ()), *(job.categorical or ())]
        return [read_table(p, narrow=wide) if p else None for p in job.paths]
    from fcnn_cli.data import sources

    data, val, test = job.paths
    source = sources.open_source(data)
    for flag, path in (("--val", val), ("--test", test)):
        if path and path != "-" and os.path.isdir(data) and source.holds(path):
            logging.getLogger("fcnn_cli").warning(
                "%s %s is one of DATA's files: its rows are trained on, and its scores are "
                "optimistic", flag, path)
    return [source, *(sources.FileChunks(p) if p else None for p in (val, test))]


def _train_and_save(job, tables, world, interrupts, console, quiet, parallel):
    """Train, and save the run from the first process, which needs no other for that; then wait
    for it in the others, so that none ends (and gets the job stopped) before the save."""
    from fcnn_cli.engine import train as training
    from fcnn_cli.machine import distributed
    from fcnn_cli.results import runs

    with _run_dir(world, job) as run_dir:
        with _EpochPrinter(console, job.config.epochs, quiet) as printer:
            # Popped, not indexed, and consumed: the table's columns are freed as they are
            # converted, the tables themselves once prepared.
            result = training.fit(tables.pop(0), job.config, job.net, job.targets,
                                  job.features, tables.pop(0), tables.pop(0), printer,
                                  job.state, world, interrupts, consume=True,
                                  weight=job.recipe and job.recipe.weight_column,
                                  categorical=job.categorical)
        result.predictor.recipe = job.recipe
        if world.is_main:  # the recipe's files were recorded as they were read
            if job.state is None:  # a new run, maybe over an older one (--force)
                runs.forget_state(run_dir)
            runs.save_run(result, run_dir, *(where(p) if p else None for p in job.paths),
                          parallel=parallel or world.describe(result.predictor.device),
                          resumable=_read_once(job.paths) is None)
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


def _run_dir(world, job):
    """The run directory, claimed by the first process alone: the others write nothing."""
    from fcnn_cli.results import runs

    if world.is_main:
        return runs.claim(job.output, job.name, job.force)
    return contextlib.nullcontext(None)


def _draw_run(run_dir, interrupts, console, plotter, quiet):
    """The run's plots, by ``plotter`` (a :class:`~fcnn_cli.commands.drawer.Drawer`) where
    there is one, with the run directory claimed again (a resume or a rerun started meanwhile
    keeps them out, or they it); the run is saved already, so a failure here is only a
    warning, and a signal stops them at once."""
    from fcnn_cli.results import runs

    try:
        with runs.claim(run_dir, force=True), interrupts.breaking():
            drawn = None
            if plotter is not None:
                try:
                    drawn = plotter.draw(run_dir, quiet)
                finally:  # within the claim: nothing is drawn into the run once it is let go
                    plotter.close()
            if drawn is None:
                from fcnn_cli.results.plots import plot_run

                plot_run(run_dir)
    except signals.Interrupted:
        console.print(printable(f"interrupted while drawing the plots: the run is saved; draw "
                                f"them with: fcnn plot {run_dir}"),
                      highlight=False, markup=False, soft_wrap=True)
    except FcnnError as e:
        logging.getLogger("fcnn_cli").warning("the run is saved, but its plots are not: %s; "
                                              "draw them with: fcnn plot %s", e, run_dir)


def _report_run(console, result, run_dir, quiet, signal_code, paths):
    """The closing report; ``paths``: the job's DATA, --val and --test."""
    if result.interrupted:
        console.print(printable(_interrupted_line(result, run_dir, paths)),
                      highlight=False, markup=False, soft_wrap=True)
        return
    test_path = paths[2]
    if not quiet:
        from fcnn_cli.results.report import diagnostics_table, tables

        if result.diagnostics:
            console.print(diagnostics_table(result.diagnostics))
        split = "test" if "test" in result.metrics else "val"
        title = f"{split.capitalize()} metrics" + (f" of {test_path}" if test_path else "")
        shown = []
        if "folds" in result.metrics:  # k-fold's: each fold, then every row out of fold
            from fcnn_cli.results.report import fold_tables

            shown = fold_tables(printable_all(result.metrics))
        if split in result.metrics and (split == "test" or not shown):  # none if reports failed
            shown += tables(printable_all(result.metrics[split]), title=printable(title))
        if "baselines" in result.metrics:
            from fcnn_cli.results.report import baseline_table

            shown.append(baseline_table(printable_all(result.metrics), split,
                                        sum(row.get("seconds", 0.0) for row in result.history)))
        for t in shown:
            console.print(t)
        _say_working_point(console, result)
        from rich.text import Text  # not markup: a directory name may hold "[...]"

        console.print(Text.assemble("saved run to ", (str(run_dir), "bold"),
                                    f" ({_members_text(result.config)}"
                                    f"{_rows_text(result.sizes, result.config.folds)}; "
                                    "best epoch "
                                    f"{result.predictor.info['best_epoch']} of "
                                    f"{result.config.epochs}; {result.stopped})"))
    if signal_code:
        console.print(f"stopped by a signal after training had ended: the complete run is "
                      f"saved in {run_dir}", highlight=False, markup=False, soft_wrap=True)


def _members_text(config):
    """``5 members, `` for an ensemble (asked for, or chosen for a small table), nothing for
    one network."""
    return f"{config.ensemble} members, " if config.ensemble > 1 else ""


def _rows_text(sizes, folds):
    """How many rows each split got: ``900 training, 50 validation, 50 test rows``, or of
    k-fold training ``1000 rows in 3 folds, 0 test rows``."""
    if folds > 1:  # every row trains k - 1 networks and validates one
        return f"{sizes['train']} rows in {folds} folds, {sizes.get('test', 0)} test rows"
    names = {"train": "training", "val": "validation", "test": "test"}
    return ", ".join(f"{sizes[k]} {name}" for k, name in names.items() if k in sizes) + " rows"


def _say_working_point(console, result):
    """The working point the run chose, with ε_S and ε_B on the validation split."""
    from fcnn_cli.results.report import working_point_text

    task = result.predictor.task
    if getattr(task, "working_point", None) is None:
        return
    at = result.metrics.get("val", {}).get("merit", {}).get("working_point", {})
    console.print(f"working point: {working_point_text(task.working_point, task.signal)}; on "
                  f"the validation split ε_S {at.get('signal_efficiency', float('nan')):.4g}, "
                  f"ε_B {at.get('background_efficiency', float('nan')):.4g}",
                  highlight=False, markup=False, soft_wrap=True)


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

    def plan(self, epochs):
        self.epochs = epochs
        if self.progress:
            self.progress.update(self.task, total=epochs)

    def __call__(self, row):
        if self.quiet:
            return
        line = (f"epoch {row['epoch']:>4}/{self.epochs}  train {row['train_loss']:.4g}  "
                f"val {row['val_loss']:.4g}")
        for key, label in (("val_rmse", "val_rmse"), ("val_mean_distance", "val_dist"),
                           ("val_brier", "val_brier"), ("val_accuracy", "val_acc")):
            if key in row:
                line += f"  {label} {row[key]:.4g}"
        line += f"  lr {row['lr']:.3g}  {row['seconds']:.2f}s"
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)
        if self.progress:
            self.progress.advance(self.task)

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()
