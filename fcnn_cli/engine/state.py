"""The training state: the network with its optimiser, weight average and random generators,
and how far training has come. ``state_dict()`` is what an interrupted run saves and
``load_state_dict()`` what ``--resume`` restores, so that a resumed run ends bit for bit where
an uninterrupted one would."""

import copy
import math
import os

import torch

from fcnn_cli.machine import devices
from fcnn_cli.engine import fastpath
from fcnn_cli.engine.optimizer import make as make_optimizer
from fcnn_cli.engine.averaging import WeightAverage
from fcnn_cli.core.errors import FcnnError, size_text
from fcnn_cli.network import embedding, levels
from fcnn_cli.network.model import MLP, NetConfig

# The parts of a saved state besides the network's; all must be present to resume.
_PROGRESS = ("epoch", "best_loss", "best_epoch", "since_best")


class TrainingState:
    """Model, optimiser, weight average, learning-rate plateau, random generators, and
    progress: the last complete epoch, the best validation figure (``best_by``; kept as
    ``best_loss``, the name saved states have always had), its epoch and weights, and the
    history and diagnostics rows so far."""

    def __init__(self, net_config, config, task, device):
        # The global seed before the network: its initial weights (and dropout) draw from it.
        torch.manual_seed(config.seed)
        self.config = config
        self.model = MLP(net_config).to(device)
        self.fast = fastpath.FastStep(self.model, task) \
            if fastpath.applies(self.model, task, config) else None
        params = [self.fast.flat] if self.fast else list(self.model.parameters())
        self.optimizer = make_optimizer(params, config)
        self.average = WeightAverage(
            [self.fast.flat] if self.fast else [*self.model.parameters(), *self.model.buffers()],
            config.ema) if config.ema else None
        self.plateau = plateau(self.optimizer) if config.schedule == "plateau" else None
        self.generator = torch.Generator().manual_seed(config.seed)  # the epochs' row order
        self.epoch, self.best_loss, self.best_epoch, self.since_best = 0, math.inf, 0, 0
        self.best_weights = None
        self.history, self.diagnostics = [], []

    @property
    def param_group(self):
        # Looked up anew: loading an optimiser state dict replaces the groups.
        return self.optimizer.param_groups[0]

    def keep_if_best(self, figure, weights):
        """After a finished epoch: keep its weights if its validation figure (``--best-by``)
        is the best yet."""
        if weights is None:
            self.since_best += 1
        else:
            self.best_loss, self.best_epoch, self.since_best = figure, self.epoch, 0
            self.best_weights = weights

    def state_dict(self):
        return {"epoch": self.epoch, "best_loss": self.best_loss,
                "best_epoch": self.best_epoch, "since_best": self.since_best,
                # rows are never changed once appended: copying the lists is enough
                "history": list(self.history), "diagnostics": list(self.diagnostics),
                "best_state": copy.deepcopy(self.best_weights),
                "model": copy.deepcopy(self.model.state_dict()),
                "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                "plateau": copy.deepcopy(self.plateau.state_dict()) if self.plateau else None,
                "average": self.average.state_dict() if self.average else None,
                "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state):
        try:
            self.epoch, self.best_loss, self.best_epoch, self.since_best = \
                (state[k] for k in _PROGRESS)
            self.history, self.diagnostics = state["history"], state["diagnostics"]
            self.best_weights = state["best_state"]
            load_weights(self.model, state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.plateau:
                self.plateau.load_state_dict(state["plateau"])
            if self.average:
                self.average.load_state_dict(state["average"])
            self.generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise FcnnError(f"the saved training state is damaged or from another version of "
                            f"fcnn ({type(e).__name__}: {e}); cannot resume") from None


def load_weights(model, saved):
    """``model.load_state_dict(saved)``, but saved weights of another network are refused in
    one short line (torch's refusal lists every layer over many lines)."""
    if isinstance(saved, dict):
        ours = model.state_dict()
        resized = [k for k in ours if k in saved and getattr(saved[k], "shape", None) is not None
                   and tuple(saved[k].shape) != tuple(ours[k].shape)]
        differences = [f"{what} {_some(names)}" for what, names in (
            ("missing", [k for k in ours if k not in saved]),
            ("unexpected", [k for k in saved if k not in ours]),
            ("resized", resized)) if names]
        if differences:
            raise FcnnError("the saved training state is of another network (its layers "
                            f"differ: {'; '.join(differences)}); cannot resume")
    model.load_state_dict(saved)


def _some(names, count=3):
    return ", ".join(map(str, names[:count])) + (", …" if len(names) > count else "")


def build(prepared, config, net, dropout, device):
    """The fresh state for a prepared table; ``net`` holds NetConfig options besides the sizes,
    ``dropout`` is used where it holds none."""
    return TrainingState(net_config(prepared, net, dropout), config, prepared.task, device)


def net_config(prepared, net, dropout):
    """The NetConfig for a prepared table from the options in ``net`` (``dropout`` where it
    holds none), with an embedding of each categorical feature of many levels."""
    net = {**(net or {})}
    if net.get("dropout") is None:
        net["dropout"] = dropout
    return NetConfig(n_in=len(prepared.inputs), n_out=prepared.task.n_outputs,
                     levels=levels.layout(prepared.categories, prepared.inputs), **net)


def plateau(optimizer):
    """The plateau schedule of ``optimizer``'s learning rate, stepped with the validation loss
    after each epoch: halved after 5 epochs without a better one."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=5)


def values(shape):
    """The float values of a network of NetConfig ``shape`` (its parameters and batch norm's
    statistics), counted on one built without memory."""
    with torch.device("meta"):
        net = MLP(shape)
    return sum(t.numel() for t in (*net.parameters(), *net.buffers()) if t.is_floating_point())


def training_bytes(shape, config, members=1, batch_rows=None):
    """About the most memory that training ``members`` networks of NetConfig ``shape`` with
    ``config`` holds at once (all float32), and the values of one network. Per value: the
    weights, their gradients, the optimiser's moments, the weight average and the best epoch's
    weights, and twice what the state of the last complete epoch copies of them (the copy kept
    for an interrupt, and the next one, made beside it); and the activations of a minibatch of
    ``batch_rows`` (``config.batch_size`` without it)."""
    moments = 2 if config.optimizer == "adam" else int(config.momentum > 0)
    saved = 1 + moments + (config.ema > 0) + 1
    # Inputs, outputs, activations, norms, dropout masks, and what the embedding keeps.
    per_row = shape.n_in + shape.n_out + shape.depth * shape.width * (
        2 + shape.batchnorm + (shape.dropout > 0)) + embedding.values_per_row(shape)
    count = values(shape)
    rows = config.batch_size if batch_rows is None else batch_rows
    return 4 * members * (count * (1 + 3 * saved) + rows * per_row), count


def check_fits(shape, config, device, members=1, batch_rows=None):
    """Refuse (:class:`~fcnn_cli.machine.devices.OutOfMemory`), before building them, ``members``
    networks of NetConfig ``shape`` whose training (:func:`training_bytes`) needs more memory
    than ``device`` has available. The processes of one node that torchrun started on the CPU
    take an equal share each."""
    needed, count = training_bytes(shape, config, members, batch_rows)
    available = devices.memory_available(device)
    shared = int(os.environ.get("LOCAL_WORLD_SIZE", 1)) if device.type == "cpu" else 1
    if available is None or needed * shared <= available:
        return
    networks = f"{members} networks" if members > 1 else "a network"
    each = (f" (shared by this node's {shared} processes: {size_text(available // shared)} "
            "each)" if shared > 1 else "")
    fewer = ("width", "depth", "batch_size", *(["ensemble"] if members > 1 else []))
    raise devices.OutOfMemory(
        f"{networks} of {count:,} parameters {'need' if members > 1 else 'needs'} about "
        f"{size_text(needed)} to train (weights, "
        "gradients, optimiser moments, weight average, the best and the last complete "
        f"epochs' copies, and a minibatch's activations), but {size_text(available)} is "
        f"available on {devices.memory_of(device)}{each}; lower {', '.join(fewer[:-1])} or "
        f"{fewer[-1]}", fewer)
