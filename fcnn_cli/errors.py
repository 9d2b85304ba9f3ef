class FcnnError(Exception):
    """A mistake in the user's input or options.

    The command line reports it as one line on stderr with a non-zero exit, never as a traceback;
    anything else that escapes is a bug in fcnn.
    """
