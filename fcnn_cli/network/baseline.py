"""Baselines beside the network: models of another kind, fitted on the same split, weights and
features, and scored as the network is, so that a report can say whether the network is better.

A baseline is a class with this interface (:class:`Baseline`), found by name in
:data:`BASELINES`: a physics baseline joins with one entry. Its arrays are the prepared split's:
features float32 in their own units (unscaled: a tree needs no scaling, a physical model wants
seconds and kilometres), labels as the tasks encode them (regression: rows × labels in the
labels' units; classification: class indices), weights one a row or None. Its outputs are what
the network's task reports from: regression rows × labels in the labels' units, classification
rows × classes probabilities.

A baseline file is written with ``torch.save`` and holds only tensors and text::

    {"format": "fcnn-baseline", "format_version": 1, "baseline": "<name in BASELINES>",
     "meta": "<json>", "state": {name: tensor}, "sha256": "<digest of meta and state>"}

It is read back as untrusted input (:func:`fcnn_cli.network.torchfiles.load_torch_file`:
``weights_only``, nothing unpickled but tensors and plain containers) and used only once the
digest matches and the baseline's own checks pass, so that a damaged or edited file fails in
one line.
"""

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from fcnn_cli import __version__
from fcnn_cli.core.errors import FcnnError, first_line
from fcnn_cli.core.fileio import open_output, writing
from fcnn_cli.network.torchfiles import contents, envelope

FORMAT = "fcnn-baseline"
FORMAT_VERSION = 1
WHAT = "an fcnn baseline"


@runtime_checkable
class Baseline(Protocol):
    """What every baseline offers; ``info`` is a JSON object that its file keeps for the caller
    (feature names, metrics …)."""

    name: str  # its key in BASELINES
    info: dict

    def check(self, task, n_features):
        """Raise FcnnError, one line, when this baseline does not apply to the task (a
        tasks.Regression or tasks.Classification) and features: before anything is trained."""

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val, task):
        """Fit on the training split, validated (early stopping …) on the validation split;
        the weights may be None. Returns self."""

    def predict(self, x):
        """Outputs for float32 features ``x`` (rows × features)."""

    def save(self, path):
        """Write the fitted baseline to ``path``."""

    @classmethod
    def load(cls, path):
        """The baseline saved at ``path``, checked."""

    # Optional: ``bind(inputs, labels, meta)``, called before training with the run's input
    # and label names and the table's metadata, by a baseline that needs them (the locator:
    # which inputs are which station's picks, the stations, the velocity model); it returns
    # self or refuses in one line.


@dataclass(frozen=True)
class Entry:
    module: str  # imported only when the baseline is used
    cls: str
    summary: str


BASELINES = {
    "gbdt": Entry("fcnn_cli.network.gbdt", "GradientBoostedTrees",
                  "gradient-boosted decision trees (scikit-learn's HistGradientBoosting; "
                  "pip install 'fcnn[gbdt]')"),
    "locator": Entry("fcnn_cli.network.locator", "Locator",
                     "earthquake location by Geiger's least squares with the stations and "
                     "velocity model the table records"),
}


def kind(name):
    """The class of the baseline ``name``; an unknown name is one line that lists the known."""
    entry = BASELINES.get(name)
    if entry is None:
        raise FcnnError(f"unknown baseline {name!r} (known: {', '.join(sorted(BASELINES))})",
                        ("baseline",))
    return getattr(importlib.import_module(entry.module), entry.cls)


def make(name, **options):
    """A new, unfitted baseline ``name`` with ``options``."""
    return kind(name)(**options)


def load(path):
    """The baseline saved at ``path``, whichever it is, checked."""
    return kind(read(path)[0]).load(path)


def write(path, name, meta, state):
    """Save a baseline's ``meta`` (a JSON object) and ``state`` (name: tensor) to ``path``."""
    import torch

    from fcnn_cli.network.checkpoint import digest

    meta = json.dumps({**meta, "versions": {"fcnn": __version__}})
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "baseline": name,
               "meta": meta, "state": state, "sha256": digest(meta, state)}
    # Through a file object, as the checkpoint: torch's own writer reports a full disk badly.
    with open_output(path) as stream, writing(path):
        torch.save(payload, stream)


def read(path):
    """(name, meta, state) of the baseline file ``path``, once it is one and its contents
    match its digest; the baseline's own checks come after."""
    from fcnn_cli.network.checkpoint import digest

    payload = _payload(path)
    try:
        return payload["baseline"], *contents(payload, digest, "the baseline's tensors")
    except FcnnError as e:
        raise FcnnError(f"{path}: corrupted fcnn baseline: {e}") from None


def loaded(path, name, build):
    """The baseline ``name`` of the file ``path``, made by ``build(meta, state)`` (its own
    checks): a file of another baseline, or one that fails them, is refused in one line."""
    found, meta, state = read(path)
    if found != name:
        raise FcnnError(f"{path}: a {found} baseline, not a {name} one")
    try:
        return build(meta, state)
    except (FcnnError, KeyError, TypeError, ValueError, OverflowError, AttributeError) as e:
        raise damaged(path, e) from None


def damaged(path, error):
    """The one line for a baseline file that fails its own checks with ``error``."""
    return FcnnError(f"{path}: corrupted fcnn baseline: {first_line(error)}")


def _payload(path):
    if str(path) == "-":
        raise FcnnError("-: a baseline is not read from stdin; name its file")
    path = Path(path)
    payload = envelope(path, FORMAT, WHAT, "baseline", FORMAT_VERSION)
    name = payload.get("baseline")
    if not isinstance(name, str) or name not in BASELINES:
        raise FcnnError(f"{path}: {WHAT} of an unknown kind {name!r}")
    return payload

