"""Messages on stderr that can never stop the work they report on.

Progress lines, tables, log messages and warnings are worth less than the run they describe: when
stderr cannot take them (``2>&1 | head -1`` closed the pipe, ``2>/dev/full``), they are dropped
and the command goes on to its end and its own exit code.
"""

import contextlib
import os

# The width of a console that is no terminal (a file, a pipe, a batch job's log): wide enough
# that a table is as wide as its cells, never cut to a guessed 80 columns.
UNBOUNDED = 10_000


class DroppingStream:
    """A text stream that writes to ``stream`` until a write fails, and then drops everything;
    for none (the command started with stderr closed, ``2>&-``), to the null device."""

    def __init__(self, stream):
        self._stream = stream if stream is not None else open(os.devnull, "w")  # noqa: SIM115

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError:  # EPIPE (Python ignores SIGPIPE), ENOSPC, EIO ...
            self._drop()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except OSError:
            self._drop()

    def _drop(self):
        # The descriptor itself goes to /dev/null: then what the stream still buffers, what C
        # code writes there and the interpreter's last flush at exit fail no more (a failed
        # flush at exit would turn the exit code into 120).
        with contextlib.suppress(OSError, ValueError):  # a stream without a descriptor
            fd = self._stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
            self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def rich_console(stderr=True):
    """A rich Console whose closed pipe is a BrokenPipeError, as for every other output: rich
    itself would exit with status 1, where ``fcnn … | head`` is no failure (the CLI's
    handler ends such a command quietly, with 0). On a terminal it is the terminal's width;
    elsewhere COLUMNS where set, else UNBOUNDED: what a log holds is read whole, not cut."""
    from rich.console import Console

    class PipedConsole(Console):
        def on_broken_pipe(self):
            raise BrokenPipeError(32, "Broken pipe")

    console = PipedConsole(stderr=stderr)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = UNBOUNDED
    return console
