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

# The drawer started as the command's own Python, on the command's own module path and not the
# current directory's (-P: a json.py there must not run), told where to answer.
START = ("import sys; fd, parent, sys.path[:] = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]; "
         "from fcnn_cli.commands.drawer import main; main(fd, parent)")
ANSWER_SECONDS = 60  # a drawer silent this long after the request is stuck: the command draws
ENDING_SECONDS = 2  # the drawer's time to remove its half-written files once told to end
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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
        self.answers = os.fdopen(read)

    def draw(self, run_dir, quiet):
        """The paths of the run's plots, drawn by the drawer; None where it is gone without a
        word or said none in time (the caller draws them itself). Raises FcnnError where they
        could not be drawn."""
        try:
            self.process.stdin.write(json.dumps({"run": str(run_dir), "quiet": quiet}) + "\n")
            self.process.stdin.close()
        except OSError:  # gone before it was asked
            return None
        if not select.select([self.answers], [], [], ANSWER_SECONDS)[0]:
            logging.getLogger("fcnn_cli").warning(
                "the plots' drawer said nothing in %d s: drawing them here", ANSWER_SECONDS)
            return None
        from fcnn_cli.results.plots.parallel import received

        try:
            return received(self.answers.readline())
        except ValueError:  # no answer: gone, or something else on its pipe
            return None

    def close(self):
        """Ends the drawer and the child it may have forked, unless both are done: first as
        SIGTERM ends a command, removing what they had half written, then for good."""
        for ending, wait in ((signal.SIGTERM, ENDING_SECONDS), (signal.SIGKILL, None)):
            if self.process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, ending)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(wait)
        for stream in (self.process.stdin, self.answers):
            stream.close()


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

    import pyarrow.parquet  # noqa: F401 - the held-out rows' file
    from fcnn_cli.results import evaluation, runs  # noqa: F401
    from fcnn_cli.results.plots import figures, overtraining, ranking  # noqa: F401

    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=figures.SMALL)
    ax.plot([0, 1], [0, 1], label="warm")
    ax.set_xlabel("x (km)")
    ax.legend()
    fig.savefig(io.BytesIO(), format="png", dpi=figures.DPI)
    plt.close(fig)


def _ended(signum, frame):
    """SIGTERM: the drawer and the child it forked end together, each unwinding (a
    half-written file is removed), without an answer."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group's signal comes here too
    os.killpg(0, signal.SIGTERM)
    raise SystemExit(128 + signum)


def _ends_with(parent):
    """SIGTERM to this process when the command ``parent`` dies, however (a SIGKILL too), so
    that nothing is drawn into a run the command no longer holds; Linux's prctl."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before that
        os._exit(0)


def main(fd, parent):
    """The drawer: warm, wait for the request, draw, answer on ``fd``. One that cannot warm
    ends without a word, and the command draws (and says what is wrong)."""
    from fcnn_cli.core.console import DroppingStream

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command's to handle (see Drawer)
    signal.signal(signal.SIGTERM, _ended)
    _ends_with(parent)
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
