"""Two groups of figures drawn at once: one in a forked child process, one in the process itself.

matplotlib draws on one CPU, so a run's plots take as long as all their figures together; split
in two groups of about half the time each, on two CPUs, they take about half. Only for a process
that holds no threads and only draws (``fcnn train``'s drawer): a fork copies one thread, and a
child that needed another's lock (torch's, a reading pool's) would wait for ever.
"""

import json
import os
import traceback
from pathlib import Path

from fcnn_cli.core.errors import FcnnError


def side_by_side(first, second):
    """``(first(), second())``, ``first`` drawn in a forked child while ``second`` runs here;
    ``first`` returns paths, which come back over a pipe. Its FcnnError is raised here as it
    would have been without the child; so, as an FcnnError, is any other failure of it, whose
    traceback it wrote to stderr. Where the system cannot fork, one after the other."""
    if not hasattr(os, "fork"):
        return first(), second()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its answer, and out without the parent's exit handlers
        os.close(read)
        _answer(first, write)
        os._exit(0)
    os.close(write)
    try:
        mine = second()
    finally:
        with os.fdopen(read) as pipe:
            answer = pipe.read()  # until the child closes its end: it is done
        os.waitpid(pid, 0)
    return _paths(answer), mine


def _answer(first, write):
    try:
        answer = {"written": [str(p) for p in first()]}
    except FcnnError as e:
        answer = {"error": str(e)}
    except BaseException as e:  # noqa: BLE001 - a bug's traceback, said where it happened
        traceback.print_exc()
        answer = {"error": f"drawing failed ({type(e).__name__}: {e})"}
    with os.fdopen(write, "w") as pipe:
        json.dump(answer, pipe)


def _paths(answer):
    if not answer:  # killed before it could answer
        raise FcnnError("the process drawing half of the plots ended without its answer")
    answer = json.loads(answer)
    if "error" in answer:
        raise FcnnError(answer["error"])
    return [Path(p) for p in answer["written"]]
