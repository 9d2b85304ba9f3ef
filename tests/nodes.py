"""Device nodes the tests make themselves, never the system's own /dev entries (as root, a
write to /dev/full would replace the device)."""

import os
import stat

import pytest

NULL, ZERO, FULL, URANDOM = 3, 5, 7, 9  # minor numbers of the memory devices (major 1)


def make_device(path, minor):
    """A character device node at ``path``; the test is skipped where none can be made."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
        with open(path, "rb"):
            pass
    except OSError as e:
        pytest.skip(f"cannot make or open a device node here: {e}")
    return path
