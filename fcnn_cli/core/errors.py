import re
import unicodedata


class FcnnError(Exception):
    """A mistake in the user's input or options.

    The command line reports it as one line on stderr with a non-zero exit, never as a traceback;
    anything else that escapes is a bug in fcnn.

    ``options`` names the options the message mentions, by their Python names (fields of the
    option dataclasses, parameters of the library's functions). The message spells them the
    Python way, the bare name (``depth must be ...``) or a value to choose
    (``nan='drop' leaves ...``); the command line shows its flags there instead.
    """

    def __init__(self, message, options=()):
        super().__init__(message)
        self.options = tuple(options)


class TooFewRows(FcnnError):
    """Too few rows to train on; ``rows`` says how many. A selection that removed the others is
    the cause to name, which only the caller that applied it knows."""

    def __init__(self, message, rows):
        super().__init__(message)
        self.rows = rows


class DataChanged(FcnnError):
    """A file a run streams from changed under it (deleted, cut short, replaced): its rows
    are no longer those the run was prepared on. Training keeps its last complete epoch, to
    resume from once the data are back as they were."""

    exit_code = 75  # EX_TEMPFAIL of sysexits.h: the same command may succeed later


class Message(str):
    """A warning's text with the options it names, as FcnnError carries them: logged as an
    argument (``log.warning("%s", message)``), the command line shows its flags in it."""

    def __new__(cls, text, options=()):
        message = super().__new__(cls, text)
        message.options = tuple(options)
        return message


def shown(value, limit=40):
    """A value as a one-line message quotes it: its repr, cut short (a cell may be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def listed(texts, limit=10):
    """``texts`` as a one-line message lists them: the first ``limit``, then how many in all
    (a table may have thousands of columns)."""
    texts = list(texts)
    return ", ".join(texts[:limit]) + (f", … ({len(texts)} in all)" if len(texts) > limit
                                       else "")


def size_text(n):
    """A size in bytes as a message gives it: in MiB, or GiB from 1 GiB on."""
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):g} MiB"


def first_line(exc, limit=200):
    """The first line of an exception's message, printable and short, for a one-line error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# Past ASCII's printable characters: among them C0 control characters (ESC among them), DEL and
# C1, what a terminal takes as commands, and format characters (bidi overrides and isolates,
# zero-width ones), which reorder or hide the text around them.
_NOT_ASCII = re.compile("[^\x20-\x7e]")


def printable(text):
    """``text`` with its control and format characters escaped as repr escapes them (ESC as
    ``\\x1b``, a newline as ``\\n``, a right-to-left override as ``\\u202e``): a name read from
    a file can then neither move the cursor, recolour or retitle the terminal, nor split a
    one-line message, nor show itself reordered or with hidden characters."""
    return _NOT_ASCII.sub(lambda m: repr(m[0])[1:-1] if unicodedata.category(m[0]) in
                          ("Cc", "Cf") else m[0], str(text))


def printable_all(value):
    """A JSON-like ``value`` (dicts, lists, text, numbers) with every text in it, keys
    included, made :func:`printable`, for tables shown on a terminal. Built without recursion:
    a file nested a thousand levels deep is shown, not a RecursionError."""
    top = [None]
    pending = [(top, 0, value)]  # (container of the copy, its key, the value to copy there)
    while pending:
        into, key, item = pending.pop()
        if isinstance(item, str):
            item = printable(item)
        elif isinstance(item, dict):
            copy = {}
            for k, v in item.items():
                k = printable(k) if isinstance(k, str) else k
                copy[k] = None  # the key's place, in order
                pending.append((copy, k, v))
            item = copy
        elif isinstance(item, (list, tuple)):
            copy = [None] * len(item)
            pending.extend((copy, i, v) for i, v in enumerate(item))
            item = copy
        into[key] = item
    return top[0]
