"""The command line: a thin layer of Click over the library. May use every wing.

One module a command (train.py, its run in runjob.py), the options and messages they share
(options.py, helpgroups.py) and here the ``fcnn`` group, which imports a command's module only
when that command runs, completes or shows its help: ``fcnn --help`` reads COMMANDS and loads
none of them. The commands import torch, pandas and the like only once they work, so that help
and argument errors answer at once.
"""

import importlib
import os
import sys
from collections.abc import Mapping
from typing import NamedTuple

import click

from fcnn_cli import __version__
from fcnn_cli.commands.options import CONTEXT, setup_logging
from fcnn_cli.core import collector
from fcnn_cli.core.console import DroppingStream
from fcnn_cli.machine import signals


class Entry(NamedTuple):
    module: str  # in this package; it defines the command under the command's name
    summary: str  # its line in fcnn --help


# The commands in the order fcnn --help lists them: that of a session, then the sweep.
COMMANDS = {
    "simulate": Entry("simulate", "Make labelled data sets: earthquakes or galaxies."),
    "train": Entry("train", "Fit a network to a labelled table; write a run directory."),
    "evaluate": Entry("evaluate", "Metrics of a model on a labelled table."),
    "predict": Entry("predict", "Predictions of a model for every row of a table."),
    "rank": Entry("rank", "Which inputs a model needs: permutation importance on a table."),
    "plot": Entry("plot", "Draw a run's plots again, from its files."),
    "report": Entry("report", "One self-contained HTML page of a run."),
    "info": Entry("info", "What a checkpoint holds."),
    "export": Entry("export", "A model as an ONNX graph, for use outside Python."),
    "sweep": Entry("sweep", "Train every combination of a grid of options; rank them."),
}


class _Loaded(Mapping):
    """COMMANDS as a click.Group holds its commands, by name: each imported from its module
    when it is looked up, so that listing the names (fcnn --help, the close names click
    suggests for a misspelt one) imports none."""

    def __getitem__(self, name):
        module = importlib.import_module(f"{__name__}.{COMMANDS[name].module}")
        return getattr(module, name)

    def __iter__(self):
        return iter(COMMANDS)

    def __len__(self):
        return len(COMMANDS)


class _LazyGroup(click.Group):
    """The group of COMMANDS, in their order, listed in its help with their summaries."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def format_commands(self, ctx, formatter):
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry.summary) for name, entry in COMMANDS.items()])


@click.group(cls=_LazyGroup, commands=_Loaded(), context_settings=CONTEXT)
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
    setup_logging(quiet=False)


def main():
    sys.stderr = DroppingStream(sys.stderr)  # progress and messages never stop the work
    collector.own()
    code = 0
    try:
        cli(prog_name="fcnn")  # ends in SystemExit, with the command's exit code
    except SystemExit as e:
        code = e.code
    finally:
        # The command is done: a signal now must not turn a finished command into a killed one.
        signals.ignore()
    end_process(code)


def end_process(code):
    """End the process with ``code`` (SystemExit's) as the interpreter would, without its
    teardown: after torch, freeing every module and object takes most of a second
    (bench/startup.py, "interpreter exit") that a batch job of many short commands pays each
    time, and the command has closed every file it wrote. What the interpreter's exit does
    that counts is done here: the exit handlers (logging's flush among them) and the standard
    streams' flush; a reader that left early is no error, as for every output. No thread of
    a command outlives it (the stream's readers are joined), so none is cut short."""
    import atexit

    if isinstance(code, str):
        print(code, file=sys.stderr)
    code = 0 if code is None else code if isinstance(code, int) else 1
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    except (OSError, ValueError) as e:  # a full disk, or a stream closed under us
        print(f"Error: standard output: {e}", file=sys.stderr)
        code = code or 1
    sys.stderr.flush()
    os._exit(code)
