"""fcnn report: one self-contained HTML page of a run."""

import logging
import os

import click

from fcnn_cli.commands.options import DIR, force_option, output_option, user_errors


@click.command()
@click.argument("run_dir", shell_complete=DIR)
@output_option(None, "The HTML file. Default: RUN_DIR/report.html; '-' for stdout.")
@force_option
@user_errors
def report(run_dir, output, force):
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
