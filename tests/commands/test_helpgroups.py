"""Help a person can scan (helpgroups.py): train's and sweep's options under titled groups,
every option in one of them; no command's help shows click's bounds."""

import re

import click
import pytest

from fcnn_cli.commands import cli
from fcnn_cli.commands.helpgroups import (DATA, GRID, NETWORK, OTHER, OUTPUT, RUN, TRAINING,
                                          group_of)
from fcnn_cli.core.config import DataConfig, NetConfig, TrainConfig, option_fields


def sections(help_text):
    """The help's sections after its description: {title: [first flag of each option]}."""
    found, title = {}, None
    for line in help_text.splitlines():
        if re.fullmatch(r"[A-Z][\w ]*:", line):
            title = line[:-1]
            found[title] = []
        elif title and re.match(r"  -", line):
            found[title].append(line.split()[0].rstrip(","))
    return found


def every_command(group=cli, path=()):
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from every_command(command, (*path, name))


@pytest.mark.parametrize("command, titles", [
    ("train", [DATA, NETWORK, TRAINING, OUTPUT, RUN, OTHER]),
    ("sweep", [GRID, DATA, NETWORK, TRAINING, OUTPUT, RUN, OTHER])])
def test_options_are_listed_under_titles_each_in_one_group(run, runner, command, titles):
    listed = sections(run(runner, command, "--help").output)
    assert list(listed) == titles
    flags = [flag for group in listed.values() for flag in group]
    context = click.Context(cli)
    options = [p for p in cli.get_command(context, command).get_params(context)
               if isinstance(p, click.Option)]
    assert sorted(flags) == sorted(p.opts[0] for p in options)  # each once, none left out
    assert listed[OTHER] == ["-h"]  # every option of its own has a group
    for option in options:
        if option.opts[0] != "-h":
            assert option.opts[0] in listed[option.group], option.name


def test_train_lists_the_options_where_a_person_looks_for_them(run, runner):
    listed = sections(run(runner, "train", "--help").output)
    for title, flags in [(DATA, ["-t", "--features", "--val-frac", "--stream"]),
                         (NETWORK, ["--depth", "--arch", "--binary-output"]),
                         (TRAINING, ["--epochs", "--lr", "--seed", "--ensemble"]),
                         (OUTPUT, ["-o", "--force", "--plots", "--diagnostics", "-q"]),
                         (RUN, ["--device", "--threads", "--nproc", "--resume", "--config"])]:
        assert set(flags) <= set(listed[title]), title


def test_an_option_field_is_in_its_dataclasss_group_unless_named_otherwise():
    assert {group_of(DataConfig, f.name) for f in option_fields(DataConfig)} == {DATA}
    assert {group_of(NetConfig, f.name) for f in option_fields(NetConfig)} == {NETWORK}
    assert group_of(TrainConfig, "a_new_option") == TRAINING  # lands there by itself
    assert group_of(TrainConfig, "val_frac") == DATA and group_of(TrainConfig, "device") == RUN


@pytest.mark.parametrize("words, command", list(every_command()))
def test_no_help_shows_bounds_or_a_flag_spelt_as_a_python_name(run, runner, words, command):
    out = run(runner, *words, "--help").output
    assert "<=" not in out and "RANGE" not in out
    assert not re.search(r"--[a-z]\b", out)  # -n, --events; not --n
    if isinstance(command, click.Group):
        assert "..." not in out[out.index("Commands:"):]  # the summaries of its commands whole


def test_bounds_still_refuse_a_value_and_say_so(run, runner, tmp_path):
    out = run(runner, "train", tmp_path / "q.csv", "--nproc", "0", code=2).output
    assert "0 is not in the range 1<=x<=1024" in out
    out = run(runner, "simulate", "earthquakes", "--seed", "-1", code=2).output
    assert "-1 is not in the range 0<=x<=9223372036854775807" in out
