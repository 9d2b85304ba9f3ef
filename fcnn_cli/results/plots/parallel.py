"""Two groups of figures drawn at once: one in a forked child process, one in the process itself;
and the one-line answer with which a process that drew figures tells another what it wrote.

matplotlib draws on one CPU, so a run's plots take as long as all their figures together; split
in two groups of about half the time each, on two CPUs, they take about half. The fork is for
``fcnn train``'s drawer on Linux: a process that has loaded matplotlib, numpy and pyarrow, whose
threads (pyarrow's pool, OpenBLAS's, jemalloc's) are idle and whose libraries mend their locks
in a forked child; not for a process that holds torch, whose threads' locks nothing mends.
Elsewhere the groups are drawn one after the other.
"""

import json
import os
import sys
import traceback
from pathlib import Path

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.machine import signals


def side_by_side(first, second):
    """``(first(), second())``, ``first`` drawn in a forked child while ``second`` runs here;
    ``first`` returns paths, which come back over a pipe. Its FcnnError is raised here as it
    would have been without the child; so, as an FcnnError, is any other failure of it, whose
    traceback it wrote to stderr. The child is waited for, whatever ``second`` does."""
    if sys.platform != "linux":
        return first(), second()
    read, write = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: its answer, then out, never back into the parent's code
        try:
            signals.die_with(parent)  # a fork does not keep the parent's parent-death signal
            os.close(read)
            send(first, write)
        finally:
            os._exit(0)
    os.close(write)
    try:
        mine = second()
    finally:
        with os.fdopen(read) as pipe:
            answer = pipe.read()  # until the child closes its end: it is done
        os.waitpid(pid, 0)
    if not answer:
        raise FcnnError("the process drawing half of the plots ended without its answer")
    return received(answer), mine


def send(work, fd):
    """Run ``work`` (returns paths) and write its answer, one JSON line, to the file descriptor
    ``fd`` (closed then): the paths, or the error that stopped it — an FcnnError's message, or
    for a bug its name, with its traceback on stderr. A process on its way out (SystemExit)
    answers nothing: the other side draws what it would have."""
    with os.fdopen(fd, "w") as pipe:
        try:
            answer = {"written": [str(p) for p in work()]}
        except FcnnError as e:
            answer = {"error": str(e)}
        except Exception as e:  # noqa: BLE001 - said on the other side
            traceback.print_exc()
            answer = {"error": f"drawing failed ({type(e).__name__}: {e})"}
        pipe.write(json.dumps(answer) + "\n")


def received(answer):
    """The paths of an answer that :func:`send` wrote; raises FcnnError for its error, and
    ValueError for a line that is no such answer."""
    answer = json.loads(answer)
    if not isinstance(answer, dict) or not ({"written", "error"} & answer.keys()):
        raise ValueError(f"not an answer: {answer!r:.80}")
    if "error" in answer:
        raise FcnnError(str(answer["error"]))
    return [Path(p) for p in answer["written"]]
