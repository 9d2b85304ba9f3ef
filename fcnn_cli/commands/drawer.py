"""``fcnn train``'s plots drawn by a second process, started as the command starts.

That process imports matplotlib and draws a first figure (most of a second) on a CPU that the
command leaves idle while it imports torch and trains a small network on one thread; when the
run is saved it draws the plots, in two processes at once (results.plots.parallel). The
command then waits only for the drawing itself. Where no second CPU is there, or the drawer is
gone, the command draws them itself, as before.

The two speak over the drawer's stdin and stdout, one JSON line each way: the run directory and
whether to be quiet; the paths written, or the one-line error that stopped the plots.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from fcnn_cli.core.errors import FcnnError


class Drawer:
    """The second process, waiting until it is asked for a run's plots."""

    def __init__(self):
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        # Its own session: a Ctrl-C at the terminal is the command's to handle, which then
        # ends this process and the child it forks, as one group.
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path}, start_new_session=True, text=True)

    def draw(self, run_dir, quiet):
        """The paths of the run's plots, drawn by the drawer; None where it is gone (the caller
        draws them itself). Raises FcnnError where they could not be drawn."""
        try:
            self.process.stdin.write(json.dumps({"run": str(run_dir), "quiet": quiet}) + "\n")
            self.process.stdin.close()
            answer = self.process.stdout.readline()
        except OSError:  # gone before it was asked
            return None
        if not answer:
            return None
        answer = json.loads(answer)
        if "error" in answer:
            raise FcnnError(answer["error"])
        return [Path(p) for p in answer["written"]]

    def close(self):
        """Ends the drawer, and the child it may have forked, unless both are done."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if hasattr(os, "killpg"):
                    os.killpg(self.process.pid, signal.SIGKILL)
                else:
                    self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()


@contextlib.contextmanager
def started(wanted):
    """A Drawer while the command runs, where ``wanted`` and :func:`worth_it`; else None."""
    drawer = Drawer() if wanted and worth_it() else None
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


def main():
    from fcnn_cli.core.console import DroppingStream

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command's to handle (see Drawer)
    sys.stderr = DroppingStream(sys.stderr)  # as the command's: a broken stderr stops nothing
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # a stray print goes to stderr, not into the answer
    _warm()
    request = sys.stdin.readline()
    if not request:  # the command ended without plots
        os._exit(0)
    from fcnn_cli.commands.options import setup_logging
    from fcnn_cli.results.plots import plot_run

    request = json.loads(request)
    setup_logging(request["quiet"])
    try:
        answer = {"written": [str(p) for p in plot_run(request["run"], parallel=True)]}
    except FcnnError as e:
        answer = {"error": str(e)}
    answers.write(json.dumps(answer) + "\n")
    answers.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
