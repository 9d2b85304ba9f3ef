"""Ctrl-C and SIGTERM while training: one tidy stop, and no later signal that undoes it.

A batch system may send SIGTERM twice in a few milliseconds, and a user presses Ctrl-C twice.
The first signal becomes a KeyboardInterrupt, which training catches to keep the epochs done so
far; every later one is only noted, so that it cannot break into the save of those epochs. Once
an epoch has ended, even the first signal interrupts only code where training will catch it:
elsewhere (while training assembles its result, while the run is saved) it is noted, the work
goes on to its end, and the command then exits with the signal's code.
"""

import ast
import functools
import signal
from pathlib import Path

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # the shell's codes: 128 + the signal
PACKAGE = Path(__file__).parent
# Modules whose own handlers of KeyboardInterrupt are not training's: the command line's
# catches it only to report that nothing was saved.
NOT_TRAINING = {str(PACKAGE / "cli.py"), __file__}


class Interrupted(KeyboardInterrupt):
    """The KeyboardInterrupt a signal raises, with the exit code it asks for."""

    def __init__(self, code):
        super().__init__()
        self.code = code


class Interrupts:
    """While entered, SIGINT and SIGTERM raise one :class:`Interrupted` at most (see the module's
    docstring); ``code`` is the exit code the first one asks for, None while none came."""

    def __init__(self):
        self.code = None
        self._raised = self._epoch_ended = self._held = False

    def __enter__(self):
        self._previous = {s: signal.signal(s, self._on_signal) for s in EXIT_CODES}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            # After a signal the process is on its way out: one more must not kill it half-way.
            signal.signal(s, signal.SIG_IGN if self.code else handler)

    def epoch_ended(self):
        """Training has a complete epoch to keep: from now on only its own handler may be
        interrupted."""
        self._epoch_ended = True

    def hold(self):
        """From now on every signal is only noted: what follows (the save) must complete."""
        self._held = True

    def _on_signal(self, signum, frame):
        if self.code is None:
            self.code = EXIT_CODES[signum]
        if self._raised or self._held or (self._epoch_ended and not _training_catches(frame)):
            return
        self._raised = True
        raise Interrupted(self.code)


def _training_catches(frame):
    """Whether a KeyboardInterrupt raised in ``frame`` now would reach training's own handler:
    a frame on the stack, in a module of the package, is inside a ``try`` whose handlers name
    KeyboardInterrupt."""
    while frame is not None:
        name = frame.f_code.co_filename
        if Path(name).parent == PACKAGE and name not in NOT_TRAINING \
                and frame.f_lineno in _guarded_lines(name):
            return True
        frame = frame.f_back
    return False


@functools.cache
def _guarded_lines(filename):
    """The lines of a module that lie in the body of a ``try`` catching KeyboardInterrupt."""
    lines = set()
    for node in ast.walk(ast.parse(Path(filename).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Try) and any(_names_interrupt(h.type) for h in node.handlers):
            lines.update(range(node.body[0].lineno, node.body[-1].end_lineno + 1))
    return frozenset(lines)


def _names_interrupt(node):
    names = node.elts if isinstance(node, ast.Tuple) else [node]
    return any(isinstance(n, ast.Name) and n.id == "KeyboardInterrupt" for n in names)

