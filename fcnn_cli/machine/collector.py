"""Python's cyclic garbage collector while a command loads its libraries.

torch, pandas, pyarrow and matplotlib make some hundreds of thousands of objects as they are
imported, which live as long as the process. The collector looks at every one of them in each
full pass, and full passes come each time the old objects have grown by a quarter: a third of a
second of a default ``fcnn train`` went to looking at them again and again (bench/startup.py).
So a command pauses the collector while it loads them and then freezes what exists
(``gc.freeze``: no later pass looks at it, which frees nothing that reference counts free);
later passes look at what the command makes as it works.
"""

import contextlib
import gc


@contextlib.contextmanager
def loading():
    """Around a command's loading of its libraries (and the little it reads meanwhile): no
    collection within; what exists at the end is frozen, and the collector runs again as it
    did (where the caller had turned it off, it stays off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
