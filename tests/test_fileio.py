import os

import pytest

from fcnn_cli.fileio import atomic_path, write_text


def test_replaces_in_one_step_with_ordinary_permissions(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    old_mask = os.umask(0o022)
    try:
        write_text(path, "new")
    finally:
        os.umask(old_mask)
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failure_leaves_the_old_file_and_no_debris(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
