"""Writing outputs: never half a file, never over one of the command's inputs, and into special
files as they are. Reading the files fcnn wrote itself: regular files of a bounded size only.

A regular file is written to a temporary file beside it that replaces it in one rename, so that
a crash or a kill leaves either the old file or the new one. A device, FIFO or socket cannot be
replaced that way (the rename would put a plain file where the device node was), so it is
written to directly. A symbolic link is followed: its target gets the new content and the link
stays a link. ``-`` is stdout.
"""

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path

from fcnn_cli.core.errors import FcnnError, first_line, size_text

STDIO = "-"


def check_output(path, inputs=()):
    """Refuse, before any work, an output that cannot be written or that is one of ``inputs``
    (``-`` in either place is stdout or stdin; ``None`` inputs are ignored)."""
    if str(path) != STDIO:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:  # a new file, or a symbolic link to one
            mode = None
        except OSError as e:  # a loop of symbolic links, a file used as a directory, ...
            raise FcnnError(f"{path}: cannot write: {e.strerror or e}") from None
        if mode is not None and stat.S_ISDIR(mode):
            raise FcnnError(f"{path}: is a directory; name a file to write")
        if mode is not None and not stat.S_ISREG(mode):
            if not os.access(path, os.W_OK):
                raise FcnnError(f"{path}: cannot write: permission denied")
        else:
            require_writable_dir(path, Path(os.path.realpath(path)).parent)
    check_not_input(path, inputs)


def check_not_input(path, inputs):
    """Refuse an output that is one of ``inputs``, through symbolic and hard links."""
    for source in inputs:
        if source is not None and same_file(path, source):
            raise FcnnError(f"{_output_name(path)}: is the same file as the input "
                            f"{_input_name(source)}; write the output to another file")


def require_writable_dir(path, directory):
    """``directory``, where ``path`` is to be made, exists and takes new files."""
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.lexists(directory) else "does not exist"
        raise FcnnError(f"{path}: cannot write: the directory {str(directory)!r} {what}")
    if not os.access(directory, os.W_OK | os.X_OK):  # also false on a read-only file system
        why = ("is on a read-only file system" if os.statvfs(directory).f_flag & os.ST_RDONLY
               else "is not writable (permission denied)")
        raise FcnnError(f"{path}: cannot write: the directory {str(directory)!r} {why}")


def same_file(output, source):
    """Whether ``output`` and ``source`` are one file, through symbolic and hard links (``-``
    is stdout as the output, stdin as the source). A terminal, /dev/null or a socket may be
    input and output at once, so character devices and sockets never count."""
    so, ss = _stat(output, sys.stdout), _stat(source, sys.stdin)
    if so is not None and ss is not None:
        return os.path.samestat(so, ss) and not (stat.S_ISCHR(so.st_mode) or
                                                 stat.S_ISSOCK(so.st_mode))
    # One does not exist yet (two outputs, say): the same path once links are followed.
    return STDIO not in (str(output), str(source)) and \
        os.path.realpath(output) == os.path.realpath(source)


def _stat(path, stream):
    try:
        return os.fstat(stream.fileno()) if str(path) == STDIO else os.stat(path)
    except (OSError, ValueError, AttributeError):  # missing, closed, or not a real stream
        return None


@contextlib.contextmanager
def writing(path):
    """A failure to write ``path`` (a full disk, a vanished directory, ...) becomes one line."""
    try:
        yield
    except BrokenPipeError:
        raise  # the reader left early: the command line ends quietly
    except OSError as e:
        _failed(path, e)
    except RuntimeError as e:
        # torch.save, writing into a file object, raises a RuntimeError over the OSError when
        # it closes the half-written archive.
        if not isinstance(e.__context__, OSError):
            raise
        _failed(path, e.__context__)


def _failed(path, error):
    if str(path) == STDIO:
        discard_stdout()
    said = first_line(error.strerror or error)  # h5py's messages run over several lines
    raise FcnnError(f"{_output_name(path)}: cannot write: {said}") from None


def discard_stdout():
    """Point file descriptor 1 at /dev/null: what could not be written is lost anyway, and
    Python's own flush at exit must not fail a second time."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def remove_temporaries(directory):
    """Remove the temporary files that :func:`atomic_path` leaves in ``directory`` where the
    process writing through it was killed (a SIGKILL runs no cleanup); for a directory of
    fcnn's own whose writers are known to be gone."""
    for path in Path(directory).glob(".*.tmp"):
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


@contextlib.contextmanager
def atomic_path(path):
    """Yield the path to write ``path`` through.

    For a regular file, or a new one, that is a temporary file beside it (beside the target of
    a symbolic link) that replaces it in one rename on success. The rename is atomic on POSIX
    file systems, so readers (and a later run after a SIGKILL) see either the old complete file
    or the new complete one. On an exception the temporary file is removed and ``path`` is left
    as it was. A device or FIFO is yielded as itself: it can only be written to.
    """
    if is_stream(path):
        yield Path(path)
        return
    real = Path(os.path.realpath(path))
    with writing(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with writing(path):
            # mkstemp makes the file private (0600); give it what open() would leave: the
            # replaced file's mode, or for a new file the umask's.
            os.chmod(tmp, _mode(real))
            os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def open_output(path):
    """A binary stream that writes ``path`` (see :func:`atomic_path`); ``-`` is stdout."""
    if str(path) == STDIO:
        if sys.stdout is None:
            raise FcnnError("<stdout>: cannot write: it is closed")
        with writing(path):
            sys.stdout.flush()  # text printed before goes first
        yield sys.stdout.buffer
        with writing(path):
            sys.stdout.buffer.flush()
        return
    with atomic_path(path) as target:
        with writing(path):
            stream = open(target, "wb")
        try:
            yield stream
        except BaseException:
            with contextlib.suppress(OSError):
                stream.close()
            raise
        with writing(path):
            stream.close()  # flushes: a full disk shows here


def write_text(path, text):
    """Write ``text`` as UTF-8; a file name that is not UTF-8 in it (held as surrogates) is
    written back as the bytes it was."""
    with open_output(path) as stream, writing(path):
        stream.write(text.encode("utf-8", "surrogateescape"))


def is_stream(path):
    """Whether ``path`` is a device, FIFO or socket (through links, /dev/fd/N included)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _output_name(path):
    return "<stdout>" if str(path) == STDIO else str(path)


def _input_name(path):
    return "<stdin>" if str(path) == STDIO else str(path)


def _mode(path):
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_regular(path, limit=None, name=None, what=None):
    """Refuse, without opening it, what is not a regular file (symbolic links followed) of at
    most ``limit`` bytes: a FIFO would block, a device or a huge file would not end. ``name``
    is how messages call the file (default: ``path``), ``what`` what it should be."""
    name = path if name is None else name
    with _reading(name):
        _regular(name, os.stat(path), limit, what)


def open_regular(path, limit=None, name=None, what=None):
    """A read-only descriptor of ``path``, refused as :func:`check_regular` refuses; the open
    descriptor is checked again, in case the path changed in between."""
    name = path if name is None else name
    check_regular(path, limit, name, what)
    with _reading(name):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        _regular(name, os.fstat(fd), limit, what)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path, limit, name=None, what=None):
    """The bytes of ``path``, refused as :func:`check_regular` refuses; never more than
    ``limit`` of them, should the file grow while it is read."""
    name = path if name is None else name
    with _reading(name), os.fdopen(open_regular(path, limit, name, what), "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise _too_large(name, limit)
    return data


@contextlib.contextmanager
def _reading(name):
    try:
        yield
    except FileNotFoundError:
        raise FcnnError(f"{name}: no such file") from None
    except OSError as e:
        raise FcnnError(f"{name}: cannot read: {e.strerror or first_line(e)}") from None


def _regular(name, info, limit, what):
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise FcnnError(f"{name}: is a directory" + (f", not {what}" if what else ""))
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "an unknown kind")
        raise FcnnError(f"{name}: not a regular file ({kind})"
                        + (f"; {what} is a file that fcnn writes" if what else ""))
    if limit is not None and info.st_size > limit:
        raise _too_large(name, limit)


def _too_large(name, limit):
    return FcnnError(f"{name}: larger than {size_text(limit)}")
