"""The checkpoint file: weights plus JSON metadata, loaded without ever running code from it.

A checkpoint is written with ``torch.save`` and holds only tensors and strings::

    {"format": "fcnn-checkpoint", "format_version": 1, "meta": "<json>", "state": {name: tensor}}

and is read back with ``torch.load(weights_only=True)``, whose unpickler refuses anything but
tensors and plain containers: a model file is untrusted input.
"""

import json
import pickle
import platform
import zipfile
from pathlib import Path

from fcnn_cli import __version__
from fcnn_cli.errors import FcnnError
from fcnn_cli.fileio import open_output, writing

FORMAT = "fcnn-checkpoint"
FORMAT_VERSION = 1


def save(predictor, path):
    import torch

    meta = {
        "net": predictor.net.config.to_dict(),
        "features": predictor.features,
        "task": predictor.task.to_dict(),
        "units": predictor.units,
        "feature_range": predictor.feature_range,
        "x_scaler": predictor.x_scaler.to_dict(),
        "info": {**predictor.info, "versions": versions()},
    }
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "meta": json.dumps(meta),
        "state": {k: v.detach().cpu().clone() for k, v in predictor.net.state_dict().items()},
    }
    # Through a file object: torch's own file writer reports a full disk as a bare RuntimeError.
    with open_output(path) as stream, writing(path):
        torch.save(payload, stream)


def load(path, device="cpu"):
    """The Predictor saved at ``path``, on ``device`` ("auto", "cpu", "cuda" or a torch.device)."""
    payload = _read(path)
    import torch

    from fcnn_cli import tasks
    from fcnn_cli.devices import resolve_device
    from fcnn_cli.model import MLP, NetConfig
    from fcnn_cli.predictor import Predictor
    from fcnn_cli.preprocess import Scaler

    device = resolve_device(device)
    try:
        meta = json.loads(payload["meta"])
        # Built without memory first, then given the file's tensors: a checkpoint that claims a
        # huge network but carries small tensors fails the shape check instead of allocating.
        with torch.device("meta"):
            net = MLP(NetConfig.from_dict(meta["net"]))
        net.load_state_dict(payload["state"], strict=True, assign=True)
        net.to(device).eval()
        predictor = Predictor(
            net=net,
            features=list(meta["features"]),
            x_scaler=Scaler.from_dict(meta["x_scaler"]),
            task=tasks.from_dict(meta["task"]),
            units=dict(meta.get("units", {})),
            feature_range=dict(meta.get("feature_range") or {}),
            info=dict(meta.get("info", {})),
        )
    except FcnnError as e:
        raise FcnnError(f"{path}: corrupted fcnn checkpoint: {e}") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FcnnError(f"{path}: corrupted fcnn checkpoint: {detail}") from None
    return predictor


def _read(path):
    path = Path(path)
    if not path.exists():
        raise FcnnError(f"{path}: no such file")
    if path.is_dir():
        raise FcnnError(f"{path}: is a directory, not a checkpoint")
    # torch.save writes a zip archive; anything else (a bare pickle included) is never unpickled.
    if not zipfile.is_zipfile(path):
        raise FcnnError(f"{path}: not an fcnn checkpoint (not a file written by torch.save)")
    import torch

    try:
        with open(path, "rb") as f:
            payload = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" in str(e).lower():
            raise FcnnError(f"{path}: refused: the file holds Python objects that could run code "
                            "when loaded; an fcnn checkpoint holds only tensors and text") from None
        raise FcnnError(f"{path}: not an fcnn checkpoint ({_short(e)})") from None
    except Exception as e:  # any file may arrive here: whatever fails is the file's fault
        raise FcnnError(f"{path}: not an fcnn checkpoint ({_short(e)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise FcnnError(f"{path}: not an fcnn checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FcnnError(f"{path}: checkpoint format version {version!r} is newer than this fcnn "
                        f"({__version__}) reads (up to {FORMAT_VERSION}); upgrade fcnn")
    return payload


def _short(exc):
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def versions():
    import torch

    return {"fcnn": __version__, "torch": torch.__version__, "python": platform.python_version()}
