"""What the commands share: their options, each written once (those of the option dataclasses
made from their fields), and how a library message or error reaches the user (flags for Python
names, one line, exit codes).

Plain Python and click: importing it costs nothing, so that ``fcnn --help`` and argument errors
answer at once.
"""

import contextlib
import functools
import logging
import re
import sys

import click

# The option dataclasses and their choices: plain Python, so importing them costs nothing.
from fcnn_cli.commands.helpgroups import OUTPUT, group_of, option
from fcnn_cli.core.config import (DataConfig, NetConfig, TrainConfig, check_threshold, kinds,
                                  option_fields)
from fcnn_cli.core.errors import FcnnError, printable

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


def flag_of(name):
    """The flag of a Python option name: ``--batch-size`` for ``batch_size``."""
    return "--" + name.replace("_", "-")


# Python option names whose flag is not ``--`` and the name with dashes for underscores: the
# option fields' own (config.py), and the simulators'.
FLAGS = {**{f.name: f.metadata["flags"][-1] for cls in (DataConfig, NetConfig, TrainConfig)
            for f in option_fields(cls) if f.metadata["flags"]},
         "stations": "--station", "n": "-n"}


# Option names that messages also use as ordinary words ("ends where a number should follow",
# "weight column 'w'", a value that is NaN): only their ``name=value`` form is an option.
WORDS = frozenset({"where", "nan", "weight", "define", "signal"})

# A quoted value or expression: its text is the user's, never rewritten. An opening quote
# follows no letter (not the apostrophe of "model's"), a closing one precedes none.
QUOTED = r"(?<![\w=])'[^']*'(?!\w)"


def with_flags(text, options, flags=None):
    """A library message as the command line says it: for the Python option names in
    ``options``, ``nan='drop'`` becomes ``--nan drop``, ``force=True`` ``--force`` and a bare
    ``depth`` ``--depth``. Only whole names: not inside a word, a path or a quoted text; the
    names that are ordinary words (WORDS) only in their ``name=value`` form.
    ``flags`` maps the names a command spells otherwise (sweep's seeds are the ensemble)."""
    if not options:
        return text
    flags = {**FLAGS, **(flags or {})}

    def flag(match):
        if match[1] is None:  # a quoted text
            return match[0]
        name, value = match[1], match[2] if match[2] is not None else match[3]
        if value is None and name in WORDS:
            return name
        spelt = flags.get(name) or flag_of(name)
        return spelt if value in (None, "True") else f"{spelt} {value}"

    names = "|".join(map(re.escape, options))
    return re.sub(rf"(?<![\w./'\"-])({names})(?:='([^']*)'|=([^\s,;)]+))?(?![\w/'\"=-]|\.\w)"
                  rf"|{QUOTED}", flag, text)


def selection_of(recipe):
    """A recipe's selection as a message names it: --where's expression and each sample's own;
    None where it selects nothing."""
    if recipe is None:
        return None
    cuts = ([repr(recipe.where)] if recipe.where else []) + \
        [f"{s.where!r} of sample {s.name}" for s in recipe.samples if s.where]
    return " and ".join(cuts) or None


def check_fill(nan, predictor, model):
    """--nan fill at predict or evaluate fills with the training medians that a model trained
    with --nan fill keeps: another has none to fill with."""
    if nan == "fill" and predictor.filler is None:
        raise click.UsageError(printable(
            f"--nan fill: {model} was trained without --nan fill, so it keeps no training "
            "medians to fill missing values with; --nan drop leaves such rows out"))


@contextlib.contextmanager
def usage_errors(flags=None):
    """Bad option values found by the library's validation are usage errors: exit 2."""
    try:
        yield
    except FcnnError as e:
        raise click.UsageError(printable(with_flags(str(e), e.options, flags))) from None


def plots_default():
    """The default of --plots/--no-plots (the environment's), a bad value a usage error."""
    from fcnn_cli.core.configfile import plots_default as default

    with usage_errors():
        return default()


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
        if record.levelno < logging.WARNING:
            return message
        return f"{record.levelname.lower()}: {message}"


def setup_logging(quiet):
    """fcnn's messages on stderr as the command line says them: flags for option names, a
    warning marked so, nothing but warnings and errors when ``quiet``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_MessageFormatter())
    logger = logging.getLogger("fcnn_cli")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def given(ctx, name):
    """Whether the option ``name`` was given on the command line (not a default, nor a file's)."""
    return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE


def listed(value):
    """A repeated option's tuple as a list, None when empty (as a file's list, or none)."""
    return (list(value) or None) if isinstance(value, tuple) else value


def _csv_list(ctx, param, value):
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter("give at least one column name")
    return items


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
    """-o/--output: a file (``complete=FILE``) or a directory (DIR)."""
    return option("-o", "--output", default=default, show_default=True, help=help,
                  metavar="DIR" if complete is DIR else "FILE", shell_complete=complete,
                  group=OUTPUT)


def field_option(cls, name, help=None):
    """The click option (or argument) of the field ``name`` of an options dataclass, made from
    the field: its name, type, default, help group and the metadata that config.option gives
    it; ``help`` replaces the field's where a command uses the option otherwise."""
    f = next(f for f in option_fields(cls) if f.name == name)
    spec = f.metadata
    complete = {"shell_complete": completes(spec["path"])} if spec["path"] else {}
    if spec["argument"]:
        return click.argument(name, required=False, **complete)
    kind = kinds(f)[0]
    flags = spec["flags"] or (flag_of(name),)
    settings = {"help": help or spec["help"], "default": spec.get("unset", f.default),
                "metavar": spec["metavar"], "group": group_of(cls, name), **complete}
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
    return option(*flags, name, **settings)


# Every option field of a run as (dataclass, field name), in the order fcnn train lists them.
OPTION_FIELDS = [(cls, f.name) for cls in (DataConfig, NetConfig, TrainConfig)
                 for f in option_fields(cls)]


def fields_options(fields):
    """A decorator that gives a command the options of these ``(dataclass, field name)``
    (OPTION_FIELDS or some of them), in their order."""
    decorators = [field_option(cls, name) for cls, name in fields]

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
    return option("--threshold", type=float, default=None, callback=_threshold,
                  help="Two classes, or a model with a signal class: predict the signal "
                       "class when its probability is at least this (default: the cut of the "
                       "model's working point, else the most probable class).")(command)


def labelled_rows_options(command):
    """The options of the labelled rows a model is scored on (evaluate, rank): samples instead
    of DATA, the weight, and whether to weigh and to select."""
    decorators = [
        option("--sample", "samples", multiple=True, metavar="NAME=FILE[,FILE…][*SCALE]",
               help="Rows of class NAME from these files (globs and directories too), each "
                    "event's weight times SCALE, instead of DATA; repeat for each sample."),
        option("--weight", metavar="EXPR",
               help="Event weight: a column or an expression of columns, instead of the "
                    "model's. [default: the model's --weight where DATA holds its columns]"),
        option("--no-weight", is_flag=True, help="Count events: no weights, no sample scales."),
        option("--no-select", is_flag=True,
               help="Score every row, not only those that pass the model's selection "
                    "(--where)."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def labelled_sources(predictor, data, samples, weight, no_weight):
    """(the evaluation's recipe, its sources [(sample or None, path)], whether the rows are
    weighed) of the labelled rows that ``labelled_rows_options`` give, for ``predictor``."""
    from fcnn_cli.data import applying

    with usage_errors():
        recipe = applying.for_evaluation(predictor.recipe, samples, weight, not no_weight,
                                         predictor.task)
    sources = [(s, f) for s in recipe.samples for f in s.files] or [(None, data)]
    weighs = not no_weight and applying.weighs(recipe, [f for _, f in sources], bool(weight))
    return recipe, sources, weighs


def positive(ctx, param, value):
    """A click callback: a count of 1 or more (or None)."""
    if value is not None and value < 1:
        raise click.BadParameter("give 1 or more")
    return value


def force_option(command):
    return option("--force", is_flag=True, group=OUTPUT, help="Write the output even over a "
                  "file of a run directory (its model.pt, config.json, …).")(command)


def quiet_option(command):
    return option("-q", "--quiet", is_flag=True, group=OUTPUT,
                  help="Only warnings and errors on stderr.")(command)
