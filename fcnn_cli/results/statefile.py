"""The training state that an interrupted run leaves (``state.pt``) to resume from: written
with a SHA-256 digest of its contents that detects damage (it has no key: not forgery), read
back as untrusted input and refused in one line when it is not a state of fcnn or does not
match its digest."""

import json

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.core.fileio import writing
from fcnn_cli.network import checkpoint, torchfiles

# What state.pt may weigh when it is read back (weights, their average and the optimizer's
# moments); a FIFO or a device in its place is refused too: see fileio.check_regular.
MAX_STATE_BYTES = 16 << 30
DIGEST_KEY = "sha256"  # of a saved training state: see write_state
# What a saved training state holds besides what each part checks when it is loaded.
STATE_KEYS = {"digest", "epoch", "best_loss", "best_epoch", "since_best", "history",
              "diagnostics", "best_state", "model", "optimizer", "generator", "torch_rng"}
# An ensemble's: lists with each member's progress, weights and row generator.
ENSEMBLE_STATE_KEYS = {"ensemble", "digest", "epoch", "histories", "stopped", "best", "model",
                       "optimizer", "average", "generators", "torch_rng"}


def write_state(state, path):
    """Write a training state to ``path``, atomically, with a SHA-256 digest of its
    contents (:func:`state_digest`) that detects damage, which --resume checks."""
    import torch

    from fcnn_cli.core.fileio import open_output

    with open_output(path) as stream, writing(path):
        torch.save({**state, DIGEST_KEY: state_digest(state)}, stream)


def read_state(path):
    """The training state at ``path``, its digest checked and taken off."""
    state = torchfiles.load_torch_file(path, "a training state", path.name, MAX_STATE_BYTES)
    keys = ENSEMBLE_STATE_KEYS if isinstance(state, dict) and "ensemble" in state else STATE_KEYS
    if not isinstance(state, dict) or not keys <= set(state):
        raise FcnnError(f"{path.name} holds no training state of fcnn")
    if DIGEST_KEY not in state:
        raise FcnnError(f"{path.name} is of an older form that carries no digest, so damage to "
                        "it could not be noticed; train the run again (its model.pt holds the "
                        "best weights so far)")
    stored = state.pop(DIGEST_KEY)
    try:
        intact = isinstance(stored, str) and stored == state_digest(state)
    except (TypeError, ValueError, RuntimeError):  # parts no training state holds
        intact = False
    if not intact:
        raise FcnnError(f"{path.name} does not match the SHA-256 digest stored with it (the file "
                        "was damaged or edited)")
    return state


def state_digest(state):
    """The digest of a training state as :func:`fcnn_cli.network.checkpoint.digest` signs a
    checkpoint's: its tensors, each named by its place in the state, and as the metadata the
    JSON of everything else (numbers, text, and the dicts and lists that hold them all)."""
    import torch

    tensors = {}

    def outline(value, place):
        if isinstance(value, torch.Tensor):
            # A view with a stride of 0 could stand for far more values than the file holds.
            if value.numel() * value.element_size() > value.untyped_storage().nbytes():
                raise ValueError(f"the tensor at {place} stands for more than its storage")
            name = json.dumps(place)
            tensors[name] = value.detach().cpu()
            return {"tensor": name}
        if isinstance(value, dict):  # keys kept as they are: the optimiser's are numbers
            return {"dict": [[k, outline(v, [*place, k])] for k, v in value.items()]}
        if isinstance(value, (list, tuple)):
            return [outline(v, [*place, i]) for i, v in enumerate(value)]
        return value

    # repr: what else a state may hold (a NumPy number in a row) is said alike each time
    return checkpoint.digest(json.dumps(outline(state, []), default=repr), tensors)

