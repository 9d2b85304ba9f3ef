"""Ensembles: several networks of one shape, trained together in one vectorised pass.

Member k starts from seed ``seed + k`` (:func:`member_seed`): its initial weights and the order
of its rows in every epoch are those of a single run with that seed. One step trains all of them
at once (:func:`fcnn_cli.funcstep.ensemble_step` chooses it): the autograd-free step
(:class:`fcnn_cli.fastpath.FastStep` given the list of members, batched matrix products) where a
single run would take it, else autograd over the members' forward passes vectorised with
``torch.func`` (:class:`fcnn_cli.funcstep.FuncStep`: batch norm, alpha-dropout, class weights,
``fast`` off, bf16); either way one optimiser kernel over all their parameters. As the
optimiser, the weight average and the cosine schedule act on each value on its own, member k
follows the single run with its seed within float rounding (with dropout, which draws the
members' masks together, only in distribution). The split into training, validation and test
rows is ``seed``'s for all members, so that they are validated and tested on the same rows.

Each member is validated on its own after every epoch (its averaged weights, as a single run)
and keeps its own best epoch; with ``patience``, training ends once every member has gone that
many epochs without a better validation loss. An interrupt goes back to the last complete epoch
and returns its state (:meth:`_Run.state_dict`), from which ``resume`` continues as an
uninterrupted run would, as for a single run.
"""

import contextlib
import copy
import dataclasses
import math
import time

import torch
from torch import nn

from fcnn_cli import funcstep
from fcnn_cli.averaging import WeightAverage
from fcnn_cli.config import Unsupported
from fcnn_cli.devices import (ThreadChooser, autocast, cpu_budget, matmul_precision,
                              thread_ladder, training_threads)
from fcnn_cli.errors import FcnnError
from fcnn_cli.loop import GATHER_ROWS, NO_STOP, cosine_lr
from fcnn_cli.model import MLP
from fcnn_cli.state import make_optimizer


def member_seed(seed, k):
    """The seed of member ``k`` (from 0) of an ensemble trained with ``seed``."""
    return seed + k


class Ensemble(nn.Module):
    """Members of one :class:`~fcnn_cli.config.NetConfig`; the output of rows ``x`` is
    members × rows × outputs."""

    def __init__(self, config, members):
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(members)

    @classmethod
    def build(cls, config, count):
        return cls(config, [MLP(config) for _ in range(count)])

    def __len__(self):
        return len(self.members)

    def forward(self, x):
        return torch.stack([member(x) for member in self.members])


@dataclasses.dataclass
class _Best:
    """One member's best validation loss so far, its epoch and (averaged) weights."""

    loss: float = math.inf
    epoch: int = 0
    weights: dict | None = None
    since: int = 0


@dataclasses.dataclass
class Trained:
    net: Ensemble  # each member holding the weights of its best epoch
    history: list
    best_epochs: list
    stopped: str
    resume_state: dict | None = None  # set when interrupted: what ``train(resume=…)`` takes


def refuse_unsupported(config, world, streamed):
    """The cases an ensemble does not train in that its options alone do not tell (those
    :class:`~fcnn_cli.config.TrainConfig` refuses), each with the reason, before any
    training. ``Unsupported`` is what a sweep falls back to seeds one by one on."""
    cases = [
        (world.distributed, "train in one process"),
        (streamed, "train on tables in memory, not streamed ones"),
    ]
    for refused, why in cases:
        if refused:
            raise Unsupported(f"ensemble={config.ensemble}: the members {why}; train single "
                            "networks for this", ("ensemble",))


def _threads(config, net_config, device):
    """The CPU threads: as for a single run, but timed among the CPUs at hand whatever the
    network's size, as batched products share their members out between threads without
    splitting any product."""
    if config.threads or device.type != "cpu":
        return training_threads(config, net_config, device)
    return ThreadChooser(thread_ladder(cpu_budget()))


def train(data, config, net_config, device, on_epoch=None, stop=None, resume=None):
    """Train ``config.ensemble`` members on ``data`` (a :class:`~fcnn_cli.prepare.Prepared`),
    from the start or from ``resume``, the state an interrupted training returned."""
    stop = stop or NO_STOP
    members = []
    for k in range(config.ensemble):
        torch.manual_seed(member_seed(config.seed, k))  # as a single run seeds its network
        members.append(MLP(net_config).to(device))
    step = funcstep.ensemble_step(members, data.task, config)
    # The float buffers (batch norm's statistics) averaged as a single run averages them.
    run = _Run(config, data, members, step, make_optimizer([step.flat], config),
               WeightAverage([step.flat, *step.buffers], config.ema) if config.ema else None,
               data.on(device))
    if resume is not None:
        run.load_state_dict(resume)
    with stop.polling(), _threads(config, net_config, device).in_use() as threads, \
            matmul_precision(config.precision, device):
        run.threads = threads
        stopped, resume_state = run.epochs(on_epoch, stop)
    lost = [k for k, best in enumerate(run.best) if best.weights is None]
    if lost and resume_state is not None:
        raise KeyboardInterrupt  # nothing kept yet: interrupted, as a single run is then
    if lost:
        raise FcnnError(f"member {lost[0]} of the ensemble diverged at once ({stopped}); "
                        "nothing worth keeping")
    for member, best in zip(members, run.best):
        member.load_state_dict(best.weights)
        member.eval()
    return Trained(Ensemble(net_config, members), run.history,
                   [best.epoch for best in run.best], stopped, resume_state)


class _Run:
    """An ensemble's training in progress."""

    def __init__(self, config, data, members, fast, optimizer, average, rows):
        self.config, self.task, self.units = config, data.task, data.units
        self.members, self.fast, self.optimizer, self.average = members, fast, optimizer, average
        self.rows, self.digest = rows, data.digest
        self.generators = [torch.Generator().manual_seed(member_seed(config.seed, k))
                           for k in range(len(members))]
        self.best = [_Best() for _ in members]
        self.epoch, self.history = 0, []
        self.threads = None  # a devices.ThreadChooser, that times the steps
        # Batch norm cannot normalise a batch of one row: such a last batch is skipped, as a
        # single run skips it.
        self.min_rows = 2 if members[0].config.batchnorm else 1

    def epochs(self, on_epoch, stop):
        """The epochs after the last complete one, until all members stop improving or one
        diverges; why it ended, and when interrupted the state after the last complete epoch
        (to which the run goes back)."""
        last_complete = self.state_dict()
        try:
            for epoch in range(self.epoch + 1, self.config.epochs + 1):
                ended = self._epoch(epoch, on_epoch, stop)
                if ended:
                    return ended, None
                last_complete = self.state_dict()
        except KeyboardInterrupt:
            self.load_state_dict(last_complete)
            return f"interrupted after epoch {self.epoch}", last_complete
        return "completed", None

    def _epoch(self, epoch, on_epoch, stop):
        """Train and validate one epoch and record it; why training ends here, if it does."""
        start = time.perf_counter()
        train_loss, lr = self._train_epoch(epoch, stop)
        val_losses, headline = self._validate(epoch)
        row = {"epoch": epoch, "train_loss": float(train_loss.mean()),
               "val_loss": sum(val_losses) / len(val_losses), **headline, "lr": lr,
               "seconds": time.perf_counter() - start}
        self.history.append(row)
        self.epoch = epoch
        if on_epoch:
            on_epoch(row)
        bad = [v for v in [*train_loss.tolist(), *val_losses] if not math.isfinite(v)]
        if bad:
            return (f"the loss of a member became {bad[0]} in epoch {epoch}: try a lower "
                    "learning rate")
        patience = self.config.patience
        if patience and all(best.since >= patience for best in self.best):
            return (f"early stop after epoch {epoch}: no member found a better validation "
                    f"loss in {patience} epochs")
        return None

    def state_dict(self):
        """Everything a resumed run needs to go on exactly: each member's weights, progress
        and row generator, the optimiser, the weight average and torch's generator (dropout),
        with the digest of the data."""
        return {"ensemble": len(self.members), "digest": self.digest, "epoch": self.epoch,
                # rows and kept weights are never changed once made: copying the lists is enough
                "history": list(self.history), "best": [vars(best).copy() for best in self.best],
                "model": [_weights(member) for member in self.members],
                "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                "average": self.average.state_dict() if self.average else None,
                "generators": [g.get_state() for g in self.generators],
                "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state):
        try:
            self.epoch, self.history = state["epoch"], list(state["history"])
            self.best = [_Best(**best) for best in _each(state["best"], self.members)]
            for member, weights in zip(self.members, _each(state["model"], self.members)):
                member.load_state_dict(weights)
            self.optimizer.load_state_dict(state["optimizer"])
            if self.average:
                self.average.load_state_dict(state["average"])
            for generator, saved in zip(self.generators,
                                        _each(state["generators"], self.members)):
                generator.set_state(saved)
            torch.set_rng_state(state["torch_rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            detail = " ".join(str(e).split())  # load_state_dict's lists span lines
            raise FcnnError(f"the saved training state is damaged or from another version of "
                            f"fcnn ({type(e).__name__}: {detail}); cannot resume") from None

    def _train_epoch(self, epoch, stop):
        """One pass of every member over the training rows, each in its own new order; the
        members' mean losses and the learning rate at the epoch's start."""
        config, group = self.config, self.optimizer.param_groups[0]
        batch, n = config.batch_size, self.rows.train_rows
        steps, cosine = math.ceil(n / batch), config.schedule == "cosine"
        lr = group["lr"] = cosine_lr(config, epoch, 0, steps) if cosine else group["lr"]
        for member in self.members:
            member.train()
        total = torch.zeros(len(self.members), device=self.rows.device)
        for k, (x, y) in enumerate(self._batches()):
            if cosine:
                group["lr"] = cosine_lr(config, epoch, k, steps)
            if x.shape[1] < self.min_rows:
                continue  # batch norm cannot normalise a minibatch of one row
            with self.threads.timing(x.shape[1]):
                loss = self.fast(x, y, self.optimizer)
                if self.average:
                    self.average.update()
            total.add_(loss, alpha=x.shape[1])
            if stop.requested():
                raise KeyboardInterrupt
        return total.cpu() / n, lr

    def _batches(self):
        """Every member's minibatches of one epoch, member k's rows in the order a single run
        with its seed takes them, as (members × rows) features and labels. The rows are
        gathered in spans of whole minibatches, as a single run gathers them: the members
        together hold about ``GATHER_ROWS`` rows at a time, not a copy of the table each."""
        x, y, n, batch = self.rows.x, self.rows.y, self.rows.train_rows, self.config.batch_size
        # 32-bit orders, half the memory: randperm draws the same for either type.
        kind = torch.int32 if n < 2**31 else torch.int64
        order = torch.empty(len(self.members), n, dtype=kind)
        for row, generator in zip(order, self.generators):
            torch.randperm(n, generator=generator, out=row)
        order = order.to(x.device)
        span = batch * max(1, GATHER_ROWS // (batch * len(self.members)))
        for first in range(0, n, span):
            picked = order[:, first:first + span]
            xs, ys = x[picked], y[picked]
            for i in range(0, picked.shape[1], batch):
                yield xs[:, i:i + batch], ys[:, i:i + batch]

    def _validate(self, epoch):
        """Each member's validation loss (keeping its weights where they are its best yet),
        and the headline metrics of the ensemble as a whole."""
        average = self.average
        x, y, truth = next(iter(self.rows.validation()))  # rows in memory: one chunk
        losses, outputs = [], []
        with average.swapped_in() if average else contextlib.nullcontext(), \
                torch.inference_mode():
            for member, best in zip(self.members, self.best):
                member.eval()
                with autocast(self.config.precision, x.device):
                    out = member(x).float()  # in the run's precision, as a single run
                loss = float(self.task.loss(out, y))
                outputs.append(out.cpu())
                losses.append(loss)
                if loss < best.loss:
                    best.loss, best.epoch, best.since = loss, epoch, 0
                    best.weights = _weights(member)
                else:
                    best.since += 1
        report = self.task.metrics(self.units)
        report.add(truth, torch.stack(outputs).numpy())
        return losses, self.task.headline(report.report())


def _weights(member):
    """A copy of a member's weights: its own, where a deep copy of its state dict would copy
    the parameter of all members, into which its tensors are views."""
    return {name: value.clone() for name, value in member.state_dict().items()}


def _each(saved, members):
    """A saved list with one entry per member, checked to be one."""
    if not isinstance(saved, list) or len(saved) != len(members):
        raise ValueError(f"not one entry for each of {len(members)} members")
    return saved
