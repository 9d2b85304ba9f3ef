"""Ctrl-C and SIGTERM: one tidy stop, and no later signal that undoes it.

A batch system may send SIGTERM twice in a few milliseconds, and a user presses Ctrl-C twice.
What the first signal does depends on where the command is:

* before training (reading the data, building the network): it raises a KeyboardInterrupt at
  once, since nothing is there to keep;
* while the training loop runs (:meth:`Interrupts.polling`): it is noted, and the loop, which
  asks :meth:`Interrupts.requested` at every step (in several processes every 64 steps and at
  the end of each epoch, all together), goes back to the last complete epoch and stops;
* after the loop (the final reports, the save): it is noted, the work goes on to its end, and
  the command then exits with the signal's code;
* while the plots are drawn, after the save (:meth:`Interrupts.breaking`): it stops them at
  once.

Every later signal is only noted, so that it cannot break into the save.
"""

import contextlib
import signal

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # the shell's codes: 128 + the signal


def ignore():
    for s in EXIT_CODES:
        signal.signal(s, signal.SIG_IGN)


class Interrupted(KeyboardInterrupt):
    """The KeyboardInterrupt a signal raises, with the exit code it asks for."""

    def __init__(self, code):
        super().__init__()
        self.code = code


class Interrupts:
    """While entered, SIGINT and SIGTERM are handled as the module's docstring says; ``code`` is
    the exit code the first one asks for, None while none came."""

    def __init__(self):
        self.code = None
        self._phase = "before"

    def __enter__(self):
        self._previous = {s: signal.signal(s, self._on_signal) for s in EXIT_CODES}
        return self

    def __exit__(self, *exc):
        if self.code or self._phase == "after":
            ignore()  # the process is on its way out: a signal must not kill it half-way
        else:
            for s, handler in self._previous.items():
                signal.signal(s, handler)

    @contextlib.contextmanager
    def polling(self):
        """While the training loop runs: it looks at :meth:`requested` itself."""
        self._phase = "polling"
        try:
            yield
        finally:
            self._phase = "after"

    @contextlib.contextmanager
    def breaking(self):
        """While work that may be cut short runs after the save (the plots): a signal raises
        :class:`Interrupted` at once, as before training; so does entering it after one came."""
        if self.code is not None:
            raise Interrupted(self.code)
        phase, self._phase = self._phase, "before"
        try:
            yield
        finally:
            self._phase = phase

    def requested(self):
        return self.code is not None

    def agree(self, code):
        """The exit code the processes of a job settled on, for one that took no signal itself."""
        if self.code is None:
            self.code = code

    def _on_signal(self, signum, frame):
        if self.code is not None:
            return
        self.code = EXIT_CODES[signum]
        if self._phase == "before":
            raise Interrupted(self.code)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with(parent):
    """SIGKILL to this process as soon as ``parent`` (its parent's pid when it started) dies,
    however it dies, on Linux (prctl's parent-death signal); this process ends at once where
    that parent is gone already. For a helper process whose work means nothing without its
    parent (``fcnn train``'s plots' drawer)."""
    import os
    import sys

    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)
