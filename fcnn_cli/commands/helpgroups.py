"""Help a person can scan: the options of fcnn train and fcnn sweep under titled groups, and
every option's default without click's bounds (``[default: 0]``, not ``[default: 0;
0<=x<=9223372036854775807]``).

Click's own means (a Command that formats its options by section) cost nothing at start-up,
where cloup or rich-click would add 30 to 60 ms to every ``fcnn --help``.
"""

import click

from fcnn_cli.core.config import DataConfig, NetConfig, TrainConfig

GRID, DATA, NETWORK, TRAINING = "Grid", "Data", "Network", "Training"
OUTPUT, RUN = "Output", "Run control"
TITLES = (GRID, DATA, NETWORK, TRAINING, OUTPUT, RUN)  # in the order the help lists them
OTHER = "Other options"  # those of no group: -h/--help

# An option field is in its dataclass's group, so that a new field lands there by itself; but
# these fields of TrainConfig tell which rows and how they are read, what the network's output
# is, what the run records or how it runs, not how the fit goes.
_CLASS_GROUPS = {DataConfig: DATA, NetConfig: NETWORK, TrainConfig: TRAINING}
_FIELD_GROUPS = {
    **dict.fromkeys(("val_frac", "test_frac", "scale", "nan", "position", "stream",
                     "shuffle_buffer"), DATA),
    "binary_output": NETWORK,
    "diagnostics": OUTPUT,
    **dict.fromkeys(("device", "threads", "fast", "precision"), RUN),
}


def group_of(cls, name):
    """The help group of the option field ``name`` of the options dataclass ``cls``."""
    return _FIELD_GROUPS.get(name, _CLASS_GROUPS[cls])


class Option(click.Option):
    """A click option listed under ``group`` (one of TITLES) in a GroupedCommand's help, its
    bounds left to its error (``--seed INTEGER``, not ``INTEGER RANGE`` and the range): a value
    out of range is still refused with click's message, which names them."""

    def __init__(self, *args, group=None, **kwargs):
        if kwargs.get("metavar") is None and isinstance(kwargs.get("type"), click.IntRange):
            kwargs["metavar"] = "INTEGER"
        super().__init__(*args, **kwargs)
        self.group = group

    def get_help_extra(self, ctx):
        extra = super().get_help_extra(ctx)
        extra.pop("range", None)
        return extra


def option(*decls, group=None, **settings):
    """click.option for an Option of ``group``."""
    return click.option(*decls, cls=Option, group=group, **settings)


class GroupedCommand(click.Command):
    """A command whose help lists its options under their groups' titles, in the order of
    TITLES, one column of flags aligned through all of them; what no group claims comes last."""

    def format_options(self, ctx, formatter):
        sections = {title: [] for title in (*TITLES, OTHER)}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and not isinstance(param, click.Argument):
                sections[getattr(param, "group", None) or OTHER].append(record)
        # As wide as the widest flags, up to click's own limit: a longer one gets a line of its own.
        width = min(max(len(term) for records in sections.values() for term, _ in records), 30)
        for title, records in sections.items():
            if records:
                with formatter.section(title):
                    formatter.write_dl([(term.ljust(width), text) for term, text in records])
