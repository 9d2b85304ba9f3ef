class FcnnError(Exception):
    """A mistake in the user's input or options.

    The command line reports it as one line on stderr with a non-zero exit, never as a traceback;
    anything else that escapes is a bug in fcnn.
    """


def shown(value, limit=40):
    """A value as a one-line message quotes it: its repr, cut short (a cell may be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
