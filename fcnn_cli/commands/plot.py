"""fcnn plot: a run's plots drawn again from its files."""

import click

from fcnn_cli.commands.options import DIR, output_option, user_errors


@click.command()
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
    from fcnn_cli.commands.drawer import worth_it
    from fcnn_cli.results.plots import plot_run

    # Where train's drawer would be started (two CPUs, no torch here): the figures in two
    # processes at once, as it draws them.
    for path in plot_run(run_dir, output, parallel=worth_it()):
        click.echo(str(path))
