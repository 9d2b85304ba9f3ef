"""``fcnn train``'s plots drawn by a second process, started as the command starts.

That process imports matplotlib and draws a first figure (most of a second) on a CPU that the
command leaves idle while it imports torch and trains a small network on one thread; when the
run is saved it draws the plots, in two processes at once (results.plots.parallel). The
command then waits only for the drawing itself. Where no second CPU is there, or the drawer
could not start or is gone without a word, the command draws them itself, as before.

The command asks over the drawer's stdin (one JSON line: the run directory, whether to be
quiet) and reads the answer from a pipe of its own (results.plots.parallel's ``send``); the
drawer's stdout is the command's stderr.
"""

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from fcnn_cli.machine import signals

# The drawer started as the command's own Python, on the command's own module path and not the
# current directory's (-P: a json.py there must not run), told where to answer.
START = ("import sys; fd, parent, sys.path[:] = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]; "
         "from fcnn_cli.commands.drawer import main; main(fd, parent)")
ANSWER_SECONDS = 60  # a drawer silent this long after the request is stuck: the command draws


class Drawer:
    """The second process, waiting until it is asked for a run's plots."""

    def __init__(self, start=START):
        read, write = os.pipe()
        try:
            # Its own process group: a Ctrl-C at the terminal is the command's to handle, which
            # then ends this process and the child it forks, as one group. One thread each for
            # numpy and OpenBLAS: it draws on one CPU.
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-c", start, str(write), str(os.getpid()), *sys.path],
                stdin=subprocess.PIPE, pass_fds=(write,), text=True,
                stdout=2 if sys.__stderr__ is not None else subprocess.DEVNULL,
                process_group=0, env={**os.environ, "OMP_NUM_THREADS": "1",
                                      "OPENBLAS_NUM_THREADS": "1"})
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        self.answers = read
        self.run_dir = None

    def draw(self, run_dir, quiet):
        """The paths of the run's plots, drawn by the drawer; None where it is gone without a
        word or said none in time (the caller draws them itself). Raises FcnnError where they
        could not be drawn."""
        if not self.ask(run_dir, quiet):
            return None
        line = self._answer(time.monotonic() + ANSWER_SECONDS)
        if line is None:
            logging.getLogger("fcnn_cli").warning(
                "the plots' drawer said nothing in %d s: drawing them here", ANSWER_SECONDS)
            return None
        from fcnn_cli.results.plots.parallel import received

        try:
            return received(line)
        except ValueError:  # no answer: gone, or something else on its pipe
            return None

    def ask(self, run_dir, quiet):
        """Ask for the run's plots; False where the drawer is gone already."""
        self.run_dir = Path(run_dir)
        try:
            self.process.stdin.write(json.dumps({"run": str(run_dir), "quiet": quiet}) + "\n")
            self.process.stdin.close()
        except OSError:
            return False
        return True

    def _answer(self, deadline):
        """The answer's line, up to its newline or the pipe's end ("" where the drawer is gone
        without one); None where none is complete by ``deadline``."""
        got = b""
        while not got.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.answers], [], [], left)[0]:
                return None
            chunk = os.read(self.answers, 1 << 16)
            if not chunk:
                break
            got += chunk
        return got.decode(errors="replace")

    def close(self):
        """Ends the drawer and the child it may have forked, at once (SIGKILL: no handler to
        wait for), and removes what they had half written into the run's plots."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process.stdin.close()
        if self.answers is not None:
            os.close(self.answers)
            self.answers = None
        if self.run_dir is not None:
            from fcnn_cli.core.fileio import remove_temporaries
            from fcnn_cli.results import runs

            remove_temporaries(self.run_dir / runs.PLOTS_DIR)


@contextlib.contextmanager
def started(wanted):
    """A Drawer while the command runs, where ``wanted`` and :func:`worth_it`, and it starts;
    else None: the plots are only faster with it."""
    drawer = None
    if wanted and worth_it():
        with contextlib.suppress(OSError):
            drawer = Drawer()
    try:
        yield drawer
    finally:
        if drawer is not None:
            drawer.close()


def worth_it(modules=None, cpus=None):
    """Whether a drawer pays: a second CPU is there; torch is still to be imported (behind
    that import the drawer starts for free; a Python caller that has torch already would see
    it compete with the training); and this is no process of several that torchrun started
    (the first alone draws, and the CPUs are the others')."""
    from fcnn_cli.machine import devices, distributed

    modules = sys.modules if modules is None else modules
    cpus = devices.cpu_budget() if cpus is None else cpus
    return cpus >= 2 and "torch" not in modules and not distributed.launched()


def _warm():
    """The imports and the first figure that drawing a run's plots needs."""
    import io

    from fcnn_cli.results.plots import load_libraries

    plt = load_libraries()
    from fcnn_cli.results import evaluation, runs  # noqa: F401
    from fcnn_cli.results.plots import figures, overtraining, ranking  # noqa: F401

    fig, ax = plt.subplots(figsize=figures.SMALL)
    ax.plot([0, 1], [0, 1], label="warm")
    ax.set_xlabel("x (km)")
    ax.legend()
    fig.savefig(io.BytesIO(), format="png", dpi=figures.DPI)
    plt.close(fig)


def main(fd, parent):
    """The drawer: warm, wait for the request, draw, answer on ``fd``. One that cannot warm
    ends without a word, and the command draws (and says what is wrong)."""
    from fcnn_cli.core.console import DroppingStream
    from fcnn_cli.core import collector

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command's to handle (see Drawer)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # ends it, even where the command's ignored it
    signals.die_with(parent)  # nothing is drawn into a run its command no longer holds
    collector.own()
    sys.stderr = DroppingStream(sys.stderr)  # as the command's: a broken stderr stops nothing
    try:
        _warm()
    except Exception:  # noqa: BLE001 - the command's own drawing says it
        os._exit(1)
    request = sys.stdin.readline()
    if not request:  # the command ended without plots
        os._exit(0)
    from fcnn_cli.commands.options import setup_logging
    from fcnn_cli.results.plots import plot_run
    from fcnn_cli.results.plots.parallel import send

    request = json.loads(request)
    setup_logging(request["quiet"])
    try:
        send(lambda: plot_run(request["run"], parallel=True), fd)
    finally:
        os._exit(0)
