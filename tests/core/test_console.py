"""stderr that cannot take a message: the message is dropped, the work goes on."""

import io
import os

from fcnn_cli.core.console import DroppingStream
from nodes import FULL, make_device


def text_stream(fd):
    return io.TextIOWrapper(open(fd, "wb"), line_buffering=True)


def assert_dropped(stream, fd):
    assert stream.write("epoch    1/8  train 0.1\n") == 24
    assert os.readlink(f"/proc/self/fd/{fd}") == "/dev/null"  # and so stays quiet from now on
    assert stream.write("epoch    2/8\n") == 13
    stream.flush()
    stream.close()


def test_a_pipe_whose_reader_closed_is_dropped():
    read, write = os.pipe()
    os.close(read)
    assert_dropped(DroppingStream(text_stream(write)), write)


def test_a_full_device_is_dropped(tmp_path):
    fd = os.open(make_device(tmp_path / "full", FULL), os.O_WRONLY)
    assert_dropped(DroppingStream(text_stream(fd)), fd)


class Broken(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise OSError(28, "No space left on device")


def test_a_stream_without_a_descriptor_drops_every_write():
    stream = DroppingStream(Broken())
    assert stream.write("a line\n") == 7
    stream.flush()
    assert stream.writable() and not stream.isatty()  # the rest is the stream's own


def test_a_working_stream_gets_every_write():
    inner = io.StringIO()
    stream = DroppingStream(inner)
    stream.write("one\n")
    stream.write("two\n")
    assert inner.getvalue() == "one\ntwo\n"


def test_a_rich_table_into_a_closed_pipe_is_a_broken_pipe_not_an_exit():
    import pytest
    from rich.table import Table

    from fcnn_cli.core.console import rich_console

    read, write = os.pipe()
    os.close(read)
    console = rich_console(stderr=False)
    console.file = text_stream(write)
    table = Table("a")
    table.add_row("1")
    with pytest.raises(BrokenPipeError):
        console.print(table)
    os.dup2(os.open(os.devnull, os.O_WRONLY), write)  # closed quietly


def test_a_console_that_is_no_terminal_never_cuts_a_table(monkeypatch, capsys):
    from rich.table import Table

    from fcnn_cli.core.console import rich_console

    monkeypatch.delenv("COLUMNS", raising=False)
    table = Table("run", "lr")
    table.add_row("lr=0.001-depth=2-width=16-arch=resnet-" + "x" * 100 + "-f4778e8a70", "0.001")
    rich_console(stderr=False).print(table)
    out = capsys.readouterr().out
    assert "x" * 100 + "-f4778e8a70" in out and "0.001" in out and "…" not in out
    monkeypatch.setenv("COLUMNS", "60")  # the user's own width is kept
    rich_console(stderr=False).print(table)
    assert max(map(len, capsys.readouterr().out.splitlines())) == 60


def test_no_stream_at_all_stderr_closed_drops_every_write():
    stream = DroppingStream(None)  # what sys.stderr is after `2>&-`
    assert stream.write("epoch    1/8\n") == 13
    stream.flush()


def test_a_command_with_stderr_closed_does_its_work_and_exits_0(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "s.csv"
    done = subprocess.run([sys.executable, "-m", "fcnn_cli", "simulate", "earthquakes", "-n",
                           "50", "-o", str(out)], stderr=subprocess.DEVNULL,
                          preexec_fn=lambda: os.close(2))
    assert done.returncode == 0 and len(out.read_text().splitlines()) == 52  # a metadata line
