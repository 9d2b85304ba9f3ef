"""fcnn sweep: train every combination of a grid of fcnn train's options and rank them; the
sweep itself is fcnn_cli.sweeps."""

import logging
import sys

import click

from fcnn_cli.commands.helpgroups import GRID, OUTPUT, RUN, GroupedCommand, option
from fcnn_cli.commands.options import (DIR, FILE, FLAGS, OPTION_FIELDS, fields_options, flag_of,
                                       given, listed, output_option, quiet_option,
                                       plots_default, setup_logging, usage_errors, user_errors,
                                       with_flags)
from fcnn_cli.core.configfile import PLOTS_VARIABLE
from fcnn_cli.core.console import rich_console
from fcnn_cli.machine import signals

SWEEP_FAILED = 3  # the exit status of a sweep that ran to its end with failed combinations
# A sweep's seeds are the members of each combination's ensemble.
SWEEP_FLAGS = {"ensemble": "--seeds"}
# The options of fcnn train that a sweep fixes for every combination: all but --ensemble (a
# sweep's seeds are its members) and --stream (it reads the tables once).
FIXED_FIELDS = [(cls, name) for cls, name in OPTION_FIELDS if name not in ("ensemble", "stream")]


@click.command(cls=GroupedCommand)
@fields_options(FIXED_FIELDS)
@option("--grid", "grid", multiple=True, metavar="KEY=V1,V2,…", group=GRID,
        help="An option of fcnn train and the values to try (values that hold commas as a "
             "TOML array: 'where=[\"nMuon >= 2\", \"mass > 40\"]'); repeat for more keys.")
@option("--grid-file", metavar="FILE.toml", shell_complete=FILE, group=GRID,
        help="A [grid] table of lists, beside fixed options as in fcnn train --config files; "
             "the command line overrides them (--lr 0.5 replaces a grid of lr).")
@option("--seeds", type=click.IntRange(1, 1024), default=1, group=GRID,
        help="Seeds per combination: --seed, --seed + 1, …; trained as the members of one "
             "ensemble where the options allow it, in one pass with those of the combinations "
             "that differ only in lr, weight decay, init, dropout, patience or ema.")
@option("--shard", metavar="I/N", group=RUN,
        help="Train only the I-th of N shares of the grid (for array jobs).")
@option("--plots/--no-plots", default=plots_default, show_default=False, group=OUTPUT,
        help="Draw each run's plots, as fcnn train does, and leaderboard.png. Default: on, "
             f"unless --grid-file's file says plots = false or {PLOTS_VARIABLE}=0.")
@option("--dry-run", is_flag=True, group=RUN,
        help="List the combinations of --shard, each finished, failed or to train; train "
             "nothing.")
@output_option(None, "Sweep directory. Default: sweeps/<data name>.", DIR)
@quiet_option
@click.pass_context
@user_errors
def sweep(ctx, grid, grid_file, seeds, shard, plots, dry_run, output, quiet, **options):
    """Train every combination of a grid of options on DATA (or samples) and rank them.

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
      fcnn sweep --sample 'signal=sig_*.root' --sample 'background=bkg.root*0.3' \\
          --objects Muon:2 --weight genWeight --grid lr=1e-3,1e-2 \\
          --grid 'where=["nMuon >= 2", "nMuon >= 2 && Muon_E_0 > 20"]'
    """
    from pathlib import Path

    from fcnn_cli.sweeps import datasets
    from fcnn_cli.sweeps.leaderboard import leaderboard_table, option_columns
    from fcnn_cli.sweeps.plan import parse_shard, plan, plan_table
    from fcnn_cli.sweeps.run import check_figures

    setup_logging(quiet)
    if output == "-":
        raise click.UsageError("-o names the sweep directory, which cannot be stdout ('-'); "
                               "name a directory")
    with usage_errors(SWEEP_FLAGS):
        spec, file_plots = _sweep_spec(ctx, grid, grid_file, seeds, options)
        if file_plots is not None and not given(ctx, "plots"):
            plots = file_plots
        shard_of = parse_shard(shard) if shard is not None else (1, 1)
    directory = Path(output or Path("sweeps") / datasets.name(spec.data))
    if dry_run:
        planned = plan(spec, directory, shard_of)
        check_figures(spec, planned)  # refused as the sweep itself would refuse it
        rich_console(stderr=False).print(plan_table(planned, list(spec.grid), shard_of))
        return
    rows = _run_sweep(spec, directory, shard_of, plots)
    if not quiet:
        columns = option_columns(rows, list(spec.grid))

        def flagged(error):  # a failure's message names its options as flags, as train's does
            return with_flags(error, getattr(error, "options", ()), SWEEP_FLAGS)

        rich_console(stderr=False).print(leaderboard_table(rows, columns, flagged))
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
    those given on the command line; and the file's ``plots``, None where it has none. An
    option given on the command line also replaces the file's grid of it: the command line
    overrides the file."""
    from fcnn_cli.commands import tabledefaults
    from fcnn_cli.sweeps.grid import DATA_FIELDS, Sweep, parse_grid, read_grid_file

    table, fixed = read_grid_file(grid_file) if grid_file else ({}, {})
    file_plots = fixed.pop("plots", None)  # how the sweep runs, not an option of its runs
    on_the_line = {k: listed(v) for k, v in options.items() if given(ctx, k)}
    for key in set(table) & set(on_the_line):
        logging.getLogger("fcnn_cli").info("%s on the command line replaces the grid of %s in "
                                           "%s", FLAGS.get(key) or flag_of(key), key, grid_file)
        del table[key]
    on_the_grid = parse_grid(grid)
    from_file = tuple(key for key in table if key not in on_the_grid)
    table.update(on_the_grid)
    fixed = {**fixed, **on_the_line}
    if not fixed.get("data") and not fixed.get("samples"):
        raise click.UsageError("missing argument DATA (or --sample NAME=FILE)")
    if not table:
        raise click.UsageError("give a grid: --grid KEY=V1,V2,… or --grid-file FILE.toml")
    for key in set(table) - set(on_the_line):  # a grid overrides what the file fixes
        fixed.pop(key, None)
    data = {k: fixed.pop(k) for k in list(fixed) if k in DATA_FIELDS}
    tabledefaults.for_sweep(data, fixed, table)
    return Sweep(data, fixed, table, seeds, grid_file, from_file), file_plots
