"""The training state that an interrupted run leaves (``state.pt``) to resume from: written
with a SHA-256 digest of its contents that detects damage (it has no key: not forgery), read
back as untrusted input and refused in one line when it is not a state of fcnn or does not
match its digest."""

import json
import reprlib

from fcnn_cli.core.errors import FcnnError, printable
from fcnn_cli.core.fileio import writing
from fcnn_cli.network import checkpoint, torchfiles

# What state.pt may weigh when it is read back (weights, their average and the optimizer's
# moments); a FIFO or a device in its place is refused too: see fileio.check_regular.
MAX_STATE_BYTES = 16 << 30
DIGEST_KEY = "sha256"  # of a saved training state: see write_state
# What a saved training state holds besides what each part checks when it is loaded.
STATE_KEYS = {"digest", "epoch", "best_loss", "best_epoch", "since_best", "history",
              "diagnostics", "best_state", "model", "optimizer", "generator", "torch_rng"}
# An ensemble's: lists with each member's progress, weights and row generator. k-fold's also
# holds "folds", the fold rule (FoldRule.to_dict()); one saved before folds were stratified
# holds none, and resumes unstratified (engine.folds.stratifies).
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


def check_progress(state, epochs):
    """Refuse, in one line naming the field, a state whose progress is not as a run of
    ``epochs`` epochs leaves it (a state re-signed after an edit passes the digest): the last
    complete epoch from 0 to ``epochs``, one history row of numbers for each epoch (an
    ensemble's cohort that stopped early: for each epoch it ran) and diagnostics rows of those
    epochs, the best losses numbers and their epochs no later than the last; an ensemble's
    ends texts (or null) one for each cohort, not all ended, and its best progress one for
    each member."""
    epoch = state["epoch"]
    _count("epoch", epoch, epochs)
    if "ensemble" not in state:
        _number("best_loss", state["best_loss"])
        _count("best_epoch", state["best_epoch"], epoch)
        _count("since_best", state["since_best"], epoch)
        _history("history", state["history"], epoch, epoch)
        diagnostics = state["diagnostics"]
        if not isinstance(diagnostics, list) or not all(
                isinstance(row, dict) and _count_in(row.get("epoch"), epoch)
                and all(type(v) in (int, float, str) for v in row.values())  # noqa: E721
                for row in diagnostics):
            raise FcnnError("the saved state's diagnostics are not rows of numbers, each of "
                            f"an epoch from 0 to {epoch}")
        return
    histories, stopped, best = state["histories"], state["stopped"], state["best"]
    if not isinstance(histories, list) or not histories:
        raise FcnnError("the saved state's histories are not a list of each cohort's")
    if not isinstance(stopped, list) or len(stopped) != len(histories):
        raise FcnnError(f"the saved state's stopped is not a list of {len(histories)} "
                        "cohorts' ends")
    for i, (rows, why) in enumerate(zip(histories, stopped)):
        if why is not None and not isinstance(why, str):
            raise FcnnError(f"the saved state's stopped[{i}] is neither text nor null")
        _history(f"histories[{i}]", rows, epoch if why is None else 0, epoch)
    if None not in stopped:  # a run whose every cohort had ended was complete, not cut short
        raise FcnnError("the saved state's stopped says every cohort had ended: nothing is "
                        "left to resume")
    if not isinstance(best, list) or not all(isinstance(b, dict) for b in best) \
            or len(best) != state["ensemble"]:
        raise FcnnError("the saved state's best is not a list of each member's progress")
    for i, member in enumerate(best):
        _number(f"best[{i}].loss", member.get("loss"))
        _count(f"best[{i}].epoch", member.get("epoch"), epoch)
        _count(f"best[{i}].since", member.get("since"), epoch)


def _count_in(value, most):
    return type(value) is int and 0 <= value <= most  # noqa: E721 (a bool is no count)


def _count(field, value, most):
    if not _count_in(value, most):
        raise FcnnError(f"the saved state's {field} is {printable(reprlib.repr(value))}, not a "
                        f"whole number from 0 to {most}")


def _number(field, value):
    if type(value) not in (int, float):  # noqa: E721 (nor is a bool a loss)
        raise FcnnError(f"the saved state's {field} is {printable(reprlib.repr(value))}, not a "
                        "number")


def _history(field, rows, fewest, most):
    """A history of ``fewest`` to ``most`` rows, the k-th of epoch k, all of numbers."""
    if not isinstance(rows, list) or not fewest <= len(rows) <= most:
        raise FcnnError(f"the saved state's {field} is not a list of {fewest}"
                        f"{'' if fewest == most else f' to {most}'} epochs' rows")
    for k, row in enumerate(rows, 1):
        if not isinstance(row, dict) or row.get("epoch") != k \
                or any(type(v) not in (int, float) for v in row.values()):  # noqa: E721
            raise FcnnError(f"the saved state's {field} row {k} is not epoch {k}'s numbers")


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

