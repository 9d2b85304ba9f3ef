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
many epochs without a better validation loss.
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
from fcnn_cli.loop import NO_STOP, cosine_lr
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


def refuse_unsupported(config, world, streamed, resume):
    """The cases an ensemble does not train in that its options alone do not tell (those
    :class:`~fcnn_cli.config.TrainConfig` refuses), each with the reason, before any
    training. ``Unsupported`` is what a sweep falls back to seeds one by one on."""
    cases = [
        (world.distributed, "train in one process"),
        (resume is not None, "do not resume an interrupted run"),
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


def train(data, config, net_config, device, on_epoch=None, stop=None):
    """Train ``config.ensemble`` members on ``data`` (a :class:`~fcnn_cli.prepare.Prepared`)."""
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
    with stop.polling(), _threads(config, net_config, device).in_use() as threads, \
            matmul_precision(config.precision, device):
        run.threads = threads
        stopped = run.epochs(on_epoch, stop)
    lost = [k for k, best in enumerate(run.best) if best.weights is None]
    if lost:
        raise FcnnError(f"member {lost[0]} of the ensemble diverged at once ({stopped}); "
                        "nothing worth keeping")
    for member, best in zip(members, run.best):
        member.load_state_dict(best.weights)
        member.eval()
    return Trained(Ensemble(net_config, members), run.history,
                   [best.epoch for best in run.best], stopped)


class _Run:
    """An ensemble's training in progress."""

    def __init__(self, config, data, members, fast, optimizer, average, rows):
        self.config, self.task, self.units = config, data.task, data.units
        self.members, self.fast, self.optimizer, self.average = members, fast, optimizer, average
        self.rows = rows
        self.generators = [torch.Generator().manual_seed(member_seed(config.seed, k))
                           for k in range(len(members))]
        self.best = [_Best() for _ in members]
        self.history = []
        self.threads = None  # a devices.ThreadChooser, that times the steps
        # Batch norm cannot normalise a batch of one row: such a last batch is skipped, as a
        # single run skips it.
        self.min_rows = 2 if members[0].config.batchnorm else 1

    def epochs(self, on_epoch, stop):
        """Every epoch, or until all members stop improving or one diverges; why it ended."""
        patience = self.config.patience
        for epoch in range(1, self.config.epochs + 1):
            start = time.perf_counter()
            try:
                train_loss, lr = self._train_epoch(epoch, stop)
            except KeyboardInterrupt:
                if all(best.weights is None for best in self.best):
                    raise  # nothing kept yet: interrupted, as a single run is then
                return f"interrupted in epoch {epoch} (an ensemble does not resume)"
            val_losses, headline = self._validate()
            row = {"epoch": epoch, "train_loss": float(train_loss.mean()),
                   "val_loss": sum(val_losses) / len(val_losses), **headline, "lr": lr,
                   "seconds": time.perf_counter() - start}
            self.history.append(row)
            if on_epoch:
                on_epoch(row)
            bad = [v for v in [*train_loss.tolist(), *val_losses] if not math.isfinite(v)]
            if bad:
                return (f"the loss of a member became {bad[0]} in epoch {epoch}: try a lower "
                        "learning rate")
            if patience and all(best.since >= patience for best in self.best):
                return (f"early stop after epoch {epoch}: no member found a better validation "
                        f"loss in {patience} epochs")
        return "completed"

    def _train_epoch(self, epoch, stop):
        """One pass of every member over the training rows, each in its own new order; the
        members' mean losses and the learning rate at the epoch's start."""
        config, group, x, y = self.config, self.optimizer.param_groups[0], self.rows.x, \
            self.rows.y
        batch, n = config.batch_size, len(x)
        steps, cosine = math.ceil(n / batch), config.schedule == "cosine"
        lr = group["lr"] = cosine_lr(config, epoch, 0, steps) if cosine else group["lr"]
        # One gather an epoch, as a single run does, then each minibatch is a slice.
        perms = [torch.randperm(n, generator=g).to(x.device) for g in self.generators]
        xs, ys = torch.stack([x[p] for p in perms]), torch.stack([y[p] for p in perms])
        del perms
        for member in self.members:
            member.train()
        total = torch.zeros(len(self.members), device=x.device)
        for k, i in enumerate(range(0, n, batch)):
            if cosine:
                group["lr"] = cosine_lr(config, epoch, k, steps)
            rows = min(batch, n - i)
            if rows < self.min_rows:
                continue
            with self.threads.timing(rows):
                loss = self.fast(xs[:, i:i + rows], ys[:, i:i + rows], self.optimizer)
                if self.average:
                    self.average.update()
            total.add_(loss, alpha=rows)
            if stop.requested():
                raise KeyboardInterrupt
        return total.cpu() / n, lr

    def _validate(self):
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
                    best.loss, best.epoch, best.since = loss, len(self.history) + 1, 0
                    best.weights = copy.deepcopy(member.state_dict())
                else:
                    best.since += 1
        report = self.task.metrics(self.units)
        report.add(truth, torch.stack(outputs).numpy())
        return losses, self.task.headline(report.report())

