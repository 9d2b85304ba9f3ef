"""The training state file read back: as written, and refused in one line when damaged, of
another kind, unsigned or too large."""

import pytest
import torch

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.results import statefile


def small_state():
    """What a single run's state holds, in small: the keys read_state asks for."""
    return {**{key: [] for key in statefile.STATE_KEYS},
            "model": {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, "epoch": 2}


def test_a_state_reads_back_as_written_without_its_digest(tmp_path):
    path = tmp_path / "state.pt"
    statefile.write_state(small_state(), path)
    back = statefile.read_state(path)
    assert statefile.DIGEST_KEY not in back and back["epoch"] == 2
    assert torch.equal(back["model"]["w"], small_state()["model"]["w"])


@pytest.mark.parametrize("edit, said", [
    (lambda s: s["model"]["w"].add_(1), "does not match the SHA-256 digest"),
    (lambda s: s.pop(statefile.DIGEST_KEY), "is of an older form that carries no digest"),
    (lambda s: s.pop("optimizer"), "holds no training state of fcnn"),
], ids=["edited", "unsigned", "foreign"])
def test_a_damaged_unsigned_or_foreign_state_is_refused(tmp_path, edit, said):
    path = tmp_path / "state.pt"
    statefile.write_state(small_state(), path)
    saved = torch.load(path, weights_only=True)
    edit(saved)
    torch.save(saved, path)
    with pytest.raises(FcnnError, match=f"^state.pt {said}"):
        statefile.read_state(path)


def test_a_state_larger_than_the_bound_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    statefile.write_state(small_state(), path)
    monkeypatch.setattr(statefile, "MAX_STATE_BYTES", path.stat().st_size - 1)
    with pytest.raises(FcnnError, match="state.pt: larger than"):
        statefile.read_state(path)
