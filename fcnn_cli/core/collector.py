"""Python's cyclic garbage collector while a command imports its libraries.

torch, pandas, pyarrow and matplotlib make some hundreds of thousands of objects as they are
imported, which live as long as the process. The collector looks at every one of them in each
full pass, and full passes come each time the old objects have grown by a quarter: a third of a
second of a default ``fcnn train`` went to looking at them again and again (bench/startup.py).
So a command pauses the collector while it imports them and then freezes what exists
(``gc.freeze``: no later pass looks at it); later passes look at what the command makes as it
works. Frozen objects that reference counts free are freed; frozen garbage in reference cycles
is not. So the pause is around imports alone, never around reading a table or a model (a ROOT
file's reader leaves cycles behind), a full pass first frees the garbage of what came before
(a few ms: the libraries imported before were frozen), and the imports run in a thread of
their own: torch's leaves a cycle through the frames on its stack (torch.fx's ``wrap`` keeps
its own frame), which would keep the last locals of the functions that called it, a model's
weights among them.

Only in a process that is a command's own (:func:`own`, from fcnn's entry point and the
drawer's): a Python caller of the library, a notebook or a test runner, keeps its collector.
"""

import contextlib
import gc
import importlib
import sys
import threading

_owned = False


def own():
    """This process runs one command, from its start: :func:`imported` may pause and freeze."""
    global _owned
    _owned = True


def imported(*modules):
    """Imports ``modules`` (as sys.modules names them). Where this process is a command's own
    and one of them is still to be imported: in a thread of its own, the collector paused, and
    what exists then frozen; the collector then runs as it did (off where it was off)."""
    if not _owned or all(name in sys.modules for name in modules):
        _import(modules)
        return
    failed = []

    def run():
        try:
            _import(modules)
        except BaseException as e:  # noqa: BLE001 - raised in the caller's thread below
            failed.append(e)

    with _paused():
        thread = threading.Thread(target=run, name="fcnn imports", daemon=True)
        thread.start()
        thread.join()
    if failed:
        raise failed[0]


def _import(modules):
    for name in modules:
        importlib.import_module(name)


@contextlib.contextmanager
def _paused():
    was_enabled = gc.isenabled()
    if was_enabled:  # the garbage of what came before (a table's reading): not to be frozen
        gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
