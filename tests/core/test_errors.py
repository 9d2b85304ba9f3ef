"""The helpers that shape what fcnn prints: one-line messages and text safe for a terminal."""

import pytest

from fcnn_cli.core.errors import listed, printable, printable_all


@pytest.mark.parametrize("text, shown", [
    ("tp1", "tp1"), ("énergie (GeV) 日本 ✓", "énergie (GeV) 日本 ✓"),
    ("\x1b[2J\x1b]0;owned\x07x", "\\x1b[2J\\x1b]0;owned\\x07x"),  # clear screen, set the title
    ("a\nb\rc\td", "a\\nb\\rc\\td"), ("\x00\x7f", "\\x00\\x7f"),
    ("\x9b31m\x85", "\\x9b31m\\x85"),  # C1: CSI and NEL, one character each
    ("back\\slash", "back\\slash"), (5, "5"),
    ("cod\u202egnp.exe", "cod\\u202egnp.exe"),  # format characters: a bidi override,
    ("a\u2066b\u200bc\ufeff", "a\\u2066b\\u200bc\\ufeff")])  # an isolate, zero-width ones
def test_printable_escapes_control_characters_as_repr_does(text, shown):
    assert printable(text) == shown
    assert printable(text).isprintable()


def test_printable_all_escapes_every_text_keys_included_and_keeps_the_rest():
    value = {"x\x1b": [{"unit": "\x1b[31mkm"}, 1.5, None, True], "n": 3}
    assert printable_all(value) == {"x\\x1b": [{"unit": "\\x1b[31mkm"}, 1.5, None, True],
                                    "n": 3}
    assert value["x\x1b"][0]["unit"] == "\x1b[31mkm"  # a copy: the original is as it was


def test_the_command_line_escapes_every_error_and_warning_it_prints():
    """Whatever a message quotes, and however: a library message that quotes a name without
    repr still reaches the terminal escaped."""
    import logging

    import click

    from fcnn_cli.commands.options import _MessageFormatter, user_errors
    from fcnn_cli.core.errors import FcnnError

    @user_errors
    def command():
        raise FcnnError("data.csv: no column \x1b[2Jx")

    with pytest.raises(click.ClickException) as raised:
        command()
    assert raised.value.message == "data.csv: no column \\x1b[2Jx"
    record = logging.LogRecord("fcnn_cli", logging.WARNING, __file__, 1,
                               "%s: leaving out %s", ("data.csv", "\x9bx\x07"), None)
    assert _MessageFormatter().format(record) == "warning: data.csv: leaving out \\x9bx\\x07"


def test_printable_all_copies_a_value_nested_deeper_than_recursion_goes():
    deep = {"k\x1b": "v\x07"}
    for _ in range(5000):
        deep = [deep]
    shown = printable_all(deep)
    for _ in range(5000):
        (shown,) = shown
    assert shown == {"k\\x1b": "v\\x07"}


@pytest.mark.parametrize("count, text", [
    (0, ""), (2, "a0, a1"), (3, "a0, a1, a2"), (4, "a0, a1, a2, … (4 in all)")])
def test_listed_gives_the_first_few_and_how_many_in_all(count, text):
    assert listed((f"a{k}" for k in range(count)), 3) == text
