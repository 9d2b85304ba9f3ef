"""Saved files edited as a careful forger would edit them (the digest signed anew, so that only
the loader's own checks can refuse them), or damaged as a disk would damage them."""

import json

import torch

from fcnn_cli import checkpoint, runs


def in_meta(change):
    """An edit of a checkpoint's payload that applies ``change`` to its metadata dict."""
    def edit(payload):
        meta = json.loads(payload["meta"])
        change(meta)
        payload["meta"] = json.dumps(meta)
    return edit


def resign(payload):
    payload["sha256"] = checkpoint.digest(payload["meta"], payload["state"])


def resigned(path, edit):
    """The checkpoint at ``path`` with ``edit`` applied to its payload, signed anew."""
    payload = torch.load(path, weights_only=True)
    edit(payload)
    resign(payload)
    torch.save(payload, path)


def state(path):
    """The training state saved at ``path`` without its digest: edited, it is signed anew by
    ``runs.write_state``, so that only the checks of its contents can refuse it."""
    saved = torch.load(path, weights_only=True)
    del saved[runs.DIGEST_KEY]
    return saved


def flip_bit(path, part, byte, bit):
    """Flip one bit of the bytes that the tensor ``part(state)`` of the state file ``path`` has
    in the file, in place, as a disk or a copy damages it; the file still loads."""
    raw = path.read_bytes()
    before = part(torch.load(path, weights_only=True)).clone()
    data = before.contiguous().numpy().tobytes()
    at = raw.find(data)
    while at >= 0:  # where another part holds the same bytes, the next place
        damaged = bytearray(raw)
        damaged[at + byte] ^= 1 << bit
        path.write_bytes(damaged)
        after = part(torch.load(path, weights_only=True))
        if not torch.equal(after, before):
            assert (after != before).sum() == 1
            return
        at = raw.find(data, at + 1)
    raise AssertionError("the part's bytes are not in the file")

