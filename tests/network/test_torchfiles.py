"""torch.save files as untrusted input, through the checkpoint that reads them: pickled code
refused, archives checked before anything is unpickled, reads bounded by the file's size."""

import pickle

import pytest
import torch

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.network import checkpoint, torchfiles


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_pickled_code_is_refused_and_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": "fcnn-checkpoint", "format_version": 1, "x": _RunsCode()}, path)
    with pytest.raises(FcnnError, match="refused"):
        checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()
    path.write_bytes(pickle.dumps(_RunsCode()))
    with pytest.raises(FcnnError):
        checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()


def test_reads_stop_at_the_size_the_file_had_when_checked(tmp_path):
    import os

    path = tmp_path / "grows.pt"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDONLY)
    try:
        window = torchfiles._Window(fd, os.fstat(fd).st_size)
        with open(path, "ab") as f:
            f.write(b"more and more")
        assert window.read() == b"0123456789"
        window.seek(-4, os.SEEK_END)
        assert window.read(100) == b"6789" and window.read(5) == b""
    finally:
        os.close(fd)


def test_a_compressed_or_broken_zip_is_refused_before_anything_is_inflated(tmp_path, model_path):
    import zipfile

    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(model_path) as src, \
            zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("model/data/999", bytes(50_000_000))  # 50 MB that deflates to ~50 KB
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(FcnnError, match="compressed entries"):
        checkpoint.load(bomb)
    data = bytearray(model_path.read_bytes())
    data[-35] ^= 0x40  # the zip64 end-of-central-directory locator: zipfile's own error
    broken = tmp_path / "broken.pt"
    broken.write_bytes(bytes(data))
    with pytest.raises(FcnnError, match="not an fcnn checkpoint"):
        checkpoint.load(broken)


def test_a_zip_of_a_version_python_cannot_read_is_refused(tmp_path, model_path):
    data = bytearray(model_path.read_bytes())
    central = data.index(b"PK\x01\x02")  # the first entry of the central directory
    data[central + 6] = 64  # "version needed to extract": 6.4, which zipfile does not implement
    odd = tmp_path / "odd.pt"
    odd.write_bytes(bytes(data))
    with pytest.raises(FcnnError, match="not an fcnn checkpoint"):
        checkpoint.load(odd)



@pytest.mark.parametrize("tensor, why", [
    (torch.zeros(1).expand(4), "tensor 't' is not contiguous (strides (0,))"),
    (torch.zeros(2, 2).to_sparse(), "tensor 't' is not a dense tensor (layout torch.sparse_coo)"),
    ("x", "the baseline's tensors are not a table of named tensors"),
])
def test_checkpoints_and_baselines_check_their_contents_alike(tensor, why):
    payload = {"meta": "{}", "state": {"t": tensor}, "sha256": "0"}
    with pytest.raises(FcnnError) as e:
        torchfiles.contents(payload, checkpoint.digest, "the baseline's tensors")
    assert str(e.value) == why


def test_contents_parse_the_metadata_once_the_digest_matches():
    state = {"t": torch.arange(3.0)}
    payload = {"meta": '{"a": 1}', "state": state, "sha256": checkpoint.digest('{"a": 1}', state)}
    assert torchfiles.contents(payload, checkpoint.digest) == ({"a": 1}, state)
    with pytest.raises(FcnnError, match="do not match the SHA-256 digest"):
        torchfiles.contents({**payload, "meta": '{"a": 2}'}, checkpoint.digest)
    assert torchfiles.contents({**payload, "sha256": "0"})[0] == {"a": 1}  # no digest: version 1
