"""fcnn info: what a checkpoint holds, as tables or JSON."""

import json

import click

from fcnn_cli.commands.options import FILE, option, user_errors
from fcnn_cli.core.console import rich_console
from fcnn_cli.core.errors import printable_all


@click.command()
@click.argument("model", shell_complete=FILE)
@option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
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

    console = rich_console(stderr=False)
    with writing(STDIO):
        for t in info_tables(printable_all(about)):
            console.print(t)
