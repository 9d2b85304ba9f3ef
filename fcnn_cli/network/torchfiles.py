"""Files written by ``torch.save`` (checkpoints, training states) read as untrusted input: a
zip archive of stored entries, read no further than its size when checked, unpickled by
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers;
and (:func:`contents`) the metadata and tensors of a checkpoint or baseline payload, checked."""

import io
import json
import os
import pickle
import zipfile

from fcnn_cli.core.errors import FcnnError, first_line
from fcnn_cli.core.fileio import open_regular
from fcnn_cli.core import collector


def load_torch_file(path, what, name=None, limit=None):
    """What the file ``path``, written by torch.save, holds: tensors and plain containers only
    (``what`` says what it should be, ``name`` how messages call the file). A file that is
    anything else (or larger than ``limit`` bytes) is refused before any of it is unpickled,
    and nothing is read beyond the file's size or inflated beyond it."""
    name = name or path
    fd = open_regular(path, limit, name, what)
    try:
        # Every read goes through this descriptor and stops at the size it had when checked.
        window = _Window(fd, os.fstat(fd).st_size)
        _check_archive(window, name, what)
        window.seek(0)
        return _unpickle(window, name, what)
    finally:
        os.close(fd)


def envelope(path, fmt, what, kind, newest):
    """The payload of fcnn's own file of format ``fmt`` (``what``: "an fcnn checkpoint"; ``kind``:
    "checkpoint"), read by :func:`load_torch_file`; another file, or a format version before 1
    or past ``newest``, refused in one line."""
    from fcnn_cli import __version__

    payload = load_torch_file(path, what)
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise FcnnError(f"{path}: not {what}")
    version = payload.get("format_version")
    if type(version) is not int or version < 1:
        raise FcnnError(f"{path}: not {what} (format version {version!r})")
    if version > newest:
        raise FcnnError(f"{path}: {kind} format version {version!r} is newer than this fcnn "
                        f"({__version__}) reads (up to {newest}); upgrade fcnn")
    return payload


def _check_archive(window, path, what):
    """torch.save writes a zip archive of stored (uncompressed) entries; anything else (a bare
    pickle, a compressed entry that would inflate far beyond the file) is refused. torch itself
    only looks at the first bytes, zipfile at the last."""
    try:
        if window.read(4) != b"PK\x03\x04":
            raise zipfile.BadZipFile("not a zip archive")
        window.seek(0)
        with zipfile.ZipFile(window) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, ValueError,
            EOFError):  # NotImplementedError: a zip version or feature zipfile lacks
        raise FcnnError(f"{path}: not {what} (not a file written by torch.save)") from None
    if any(e.compress_type != zipfile.ZIP_STORED for e in entries) or \
            sum(e.file_size for e in entries) > window.size:
        raise FcnnError(f"{path}: not {what}: it holds compressed entries, which torch.save "
                        "never writes (and which could inflate far beyond the file)")


class _Window(io.RawIOBase):
    """The first ``size`` bytes of an open file, read with pread: whatever the file does
    after it was checked, nothing beyond them is read."""

    def __init__(self, fd, size):
        super().__init__()
        self.fd, self.size, self.pos = fd, size, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=os.SEEK_SET):
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        n = os.preadv(self.fd, [view[:max(0, min(len(view), self.size - self.pos))]], self.pos)
        self.pos += n
        return n


def _unpickle(f, path, what):
    collector.imported("torch")  # where a command loads it: the collector paused
    import torch

    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message opens with advice to load without weights_only: only its end counts.
        detail = str(e).rpartition("WeightsUnpickler error:")[2]
        if "global" in detail.lower():
            raise FcnnError(f"{path}: refused: the file holds Python objects that could run code "
                            f"when loaded; {what} holds only tensors and text") from None
        raise FcnnError(f"{path}: not {what} ({first_line(detail)})") from None
    except Exception as e:  # any file may arrive here: whatever fails is the file's fault
        raise FcnnError(f"{path}: not {what} ({first_line(e)})") from None



def contents(payload, digest=None, tensors="the weights"):
    """The metadata (a parsed JSON object) and the tensors of a payload of metadata text and
    named tensors (``{"meta": ..., "state": ..., "sha256": ...}``), once every tensor is dense
    and contiguous and, with ``digest`` (the function that made the stored one), they match
    the digest stored with them. ``tensors`` says what messages call the state; FcnnError
    says what is wrong, the caller names the file."""
    import torch

    meta, state = payload.get("meta"), payload.get("state")
    _need(isinstance(meta, str), "no metadata text")
    _need(isinstance(state, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                          for k, v in state.items()),
          f"{tensors} are not a table of named tensors")
    for name, t in state.items():
        # Dense and contiguous before anything reads it: a sparse or strided view (a stride of
        # 0 included) could stand for far more values than the file holds.
        _need(t.layout == torch.strided and not t.is_nested and not t.is_quantized,
              f"tensor {name!r} is not a dense tensor (layout {t.layout})")
        _need(t.is_contiguous(), f"tensor {name!r} is not contiguous (strides {t.stride()})")
    if digest is not None:
        _need(payload.get("sha256") == digest(meta, state),
              "its contents do not match the SHA-256 digest stored with them (the file was "
              "damaged or edited)")
    try:
        meta = json.loads(meta)
    except ValueError as e:
        raise FcnnError(f"the metadata is not valid JSON ({e})") from None
    _need(isinstance(meta, dict), "the metadata is not a JSON object")
    return meta, state


def _need(ok, what):
    if not ok:
        raise FcnnError(what)
