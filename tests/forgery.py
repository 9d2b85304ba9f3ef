"""Edits of a saved checkpoint that a careful forger would make: the digest signed anew, so
that only the loader's own checks can refuse them."""

import json

import torch

from fcnn_cli import checkpoint


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
