"""Ensembles: several networks of one shape, trained together in one vectorised pass.

Member k starts from seed ``seed + k`` (:func:`member_seed`): its initial weights and the order
of its rows in every epoch are those of a single run with that seed, and the autograd-free step
(:class:`fcnn_cli.fastpath.FastStep` given the list of members) trains all of them at once with
batched matrix products and one optimiser kernel over all their parameters. As the optimiser,
the weight average and the cosine schedule act on each value on its own, member k follows the
single run with its seed within float rounding. The split into training, validation and test
rows is ``seed``'s for all members, so that they are validated and tested on the same rows.

Each member is validated on its own after every epoch (its averaged weights, as a single run)
and keeps its own best epoch; with ``patience``, training ends once every member has gone that
many epochs without a better validation loss.

One pass may also train several ensembles of one shape side by side (:func:`train_cohorts`, as
a sweep does): each a :class:`Cohort` with its own TrainConfig and NetConfig, which may differ
in the :data:`MEMBER_OPTIONS` alone, as these change neither the network's shape nor the step's
kernels. Each cohort keeps its own history, best epochs and early stop, as if trained alone;
its members go on training (unread) until the last cohort stops.
"""

import contextlib
import copy
import dataclasses
import math
import time

import torch
from torch import nn

from fcnn_cli import fastpath
from fcnn_cli.averaging import WeightAverage
from fcnn_cli.config import MAX_MEMBERS
from fcnn_cli.devices import ThreadChooser, cpu_budget, thread_ladder, training_threads
from fcnn_cli.errors import FcnnError
from fcnn_cli.loop import NO_STOP, cosine_lr
from fcnn_cli.model import MLP
from fcnn_cli.state import make_optimizer


# What the members of one pass may differ in: scalars of the optimiser kernel (grouped into one
# call per value, fastpath.Share), of the weight average and of dropout, the initial weights,
# and when a cohort stops. The seed is the same for all: its split is theirs.
MEMBER_OPTIONS = ("lr", "weight_decay", "init", "dropout", "patience", "ema")


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
class Cohort:
    """``config.ensemble`` members trained with ``config`` and the NetConfig ``net``, as
    ``fit`` would train them alone, in a pass beside other cohorts of the same shape."""

    config: object
    net: object


def check_cohorts(cohorts):
    """Cohorts differ in :data:`MEMBER_OPTIONS` and their number of members alone."""
    first = cohorts[0]
    for cohort in cohorts[1:]:
        for a, b in ((first.config, cohort.config), (first.net, cohort.net)):
            differ = [f.name for f in dataclasses.fields(a)
                      if f.name not in (*MEMBER_OPTIONS, "ensemble")
                      and getattr(a, f.name) != getattr(b, f.name)]
            if differ:
                raise ValueError(f"cohorts of one pass differ in {', '.join(differ)}")
    if sum(c.config.ensemble for c in cohorts) > MAX_MEMBERS:
        raise ValueError(f"more than {MAX_MEMBERS} members in one pass")


@dataclasses.dataclass
class Trained:
    net: Ensemble  # each member holding the weights of its best epoch
    history: list
    best_epochs: list
    stopped: str


class Unsupported(FcnnError):
    """Options that an ensemble does not train with (a sweep trains its seeds one by one
    then)."""


def refuse_unsupported(config, net_config, task, world, streamed, resume):
    """The cases an ensemble does not train in, each with the reason, before any training."""
    cases = [
        (world.distributed, "train in one process"),
        (resume is not None, "do not resume an interrupted run"),
        (streamed, "train on tables in memory, not streamed ones"),
        (config.diagnostics, "record no diagnostics"),
        (config.schedule == "plateau", "take the cosine schedule or none, not plateau"),
        (config.precision == "bf16" or not config.fast,
         "train through the autograd-free step: fp32 or tf32, without --no-fast"),
        (not fastpath.supports(_shape_only(net_config), task),
         "train plain and residual networks without batch normalisation, SELU's "
         "alpha-dropout or class weights"),
    ]
    for refused, why in cases:
        if refused:
            raise Unsupported(f"ensemble={config.ensemble}: the members {why}; train single "
                            "networks for this", ("ensemble",))


def _shape_only(net_config):
    with torch.device("meta"):
        return MLP(net_config)


def _threads(config, net_config, device):
    """The CPU threads: as for a single run, but timed among the CPUs at hand whatever the
    network's size, as batched products share their members out between threads without
    splitting any product."""
    if config.threads or device.type != "cpu":
        return training_threads(config, net_config, device)
    return ThreadChooser(thread_ladder(cpu_budget()))


def train(data, config, net_config, device, on_epoch=None, stop=None):
    """Train ``config.ensemble`` members on ``data`` (a :class:`~fcnn_cli.prepare.Prepared`)."""
    trained = train_cohorts(data, [Cohort(config, net_config)], device,
                            on_epoch and (lambda _, row: on_epoch(row)), stop)[0]
    if isinstance(trained, FcnnError):
        raise trained
    return trained


def train_cohorts(data, cohorts, device, on_epoch=None, stop=None):
    """Train the members of all ``cohorts`` (of one shape: :func:`check_cohorts`) in one pass;
    a :class:`Trained` per cohort, or the FcnnError of one that kept nothing. ``on_epoch`` is
    called with (cohort index, history row)."""
    check_cohorts(cohorts)
    stop = stop or NO_STOP
    members = []
    for cohort in cohorts:
        for k in range(cohort.config.ensemble):
            # As a single run seeds its network.
            torch.manual_seed(member_seed(cohort.config.seed, k))
            members.append(MLP(cohort.net).to(device))
    fast = fastpath.FastStep(members, data.task)
    first = cohorts[0]
    run = _Run(cohorts, data, members, fast, make_optimizer([fast.flat], first.config),
               data.on(device))
    with stop.polling(), _threads(first.config, first.net, device).in_use() as threads:
        run.threads = threads
        run.epochs(on_epoch, stop)
    return [run.trained(i) for i in range(len(cohorts))]


def _average(fast, cohorts):
    """The weight average of the members: as a single run's where all take one decay."""
    decays = [c.config.ema for c in cohorts for _ in range(c.config.ensemble)]
    if len(set(decays)) > 1:
        return _MemberAverage(fast, decays)
    return WeightAverage([fast.flat], decays[0]) if decays[0] else None


class _MemberAverage(WeightAverage):
    """The weight average of members whose decays differ (0: the last step's weights, a blend
    of weight 1): one blend per decay on views of its members' spans, or one over all at once
    while their weights agree, as early on."""

    def __init__(self, fast, decays):
        super().__init__([fast.flat], max(decays))
        self.shares = [(decay, fastpath.Share(
            fast.spans([m for m, d in enumerate(decays) if d == decay]), None, None))
            for decay in dict.fromkeys(decays)]

    def update(self):
        self.updates += 1
        ramp = (1 + self.updates) / (10 + self.updates)
        weights = [1.0 - min(decay, ramp) for decay, _ in self.shares]
        if len(set(weights)) == 1:
            self.blend(weights[0])
            return
        for weight, (_, share) in zip(weights, self.shares):
            torch._foreach_lerp_(share.views(self.average[0]), share.views(self.live[0]),
                                 weight)


class _Rates:
    """Each cohort's learning rate, step by step (the cosine schedule scales each one's own);
    members with their own lr or weight decay are updated in a kernel call of their own."""

    def __init__(self, cohorts, fast, optimizer, cosine):
        self.cohorts, self.group, self.cosine = cohorts, optimizer.param_groups[0], cosine
        keys = [(c.config.lr, c.config.weight_decay) for c in cohorts
                for _ in range(c.config.ensemble)]
        configs = {(c.config.lr, c.config.weight_decay): c.config for c in cohorts}
        self.shares = [] if len(configs) == 1 else [
            (config, fastpath.Share(fast.spans([m for m, k in enumerate(keys) if k == key]),
                                    config.lr, config.weight_decay))
            for key, config in configs.items()]
        fast.shares = [share for _, share in self.shares] or None

    def at(self, epoch, step, steps):
        """Set the learning rates of a step."""
        if not self.cosine:
            return
        if not self.shares:
            self.group["lr"] = cosine_lr(self.cohorts[0].config, epoch, step, steps)
        for config, share in self.shares:
            share.lr = cosine_lr(config, epoch, step, steps)

    def of(self, config, epoch, steps):
        """A cohort's learning rate at the start of an epoch."""
        return cosine_lr(config, epoch, 0, steps) if self.cosine else config.lr


class _Run:
    """The training in progress of the members of one or more cohorts."""

    def __init__(self, cohorts, data, members, fast, optimizer, rows):
        self.cohorts, self.task, self.units = cohorts, data.task, data.units
        self.config = cohorts[0].config  # what all cohorts share: epochs, batches, schedule
        self.members, self.fast, self.optimizer = members, fast, optimizer
        self.average = _average(fast, cohorts)
        self.rates = _Rates(cohorts, fast, optimizer, self.config.schedule == "cosine")
        self.rows = rows
        self.spans, start = [], 0
        for cohort in cohorts:
            self.spans.append(range(start, start + cohort.config.ensemble))
            start += cohort.config.ensemble
        self.generators = [torch.Generator().manual_seed(member_seed(c.config.seed, k))
                           for c in cohorts for k in range(c.config.ensemble)]
        self.best = [_Best() for _ in members]
        self.histories = [[] for _ in cohorts]
        self.stopped = [None for _ in cohorts]  # why each cohort ended, once it has
        self.threads = None  # a devices.ThreadChooser, that times the steps

    def epochs(self, on_epoch, stop):
        """Every epoch, or until every cohort has stopped (its members no longer improving,
        or one of them diverged)."""
        steps = math.ceil(len(self.rows.x) / self.config.batch_size)
        for epoch in range(1, self.config.epochs + 1):
            start = time.perf_counter()
            try:
                train_loss = self._train_epoch(epoch, stop)
            except KeyboardInterrupt:
                if all(best.weights is None for best in self.best):
                    raise  # nothing kept yet: interrupted, as a single run is then
                self._stop_all(f"interrupted in epoch {epoch} (an ensemble does not resume)")
                return
            val_losses, headlines = self._validate(epoch)
            seconds = time.perf_counter() - start
            for i in self._running():
                members = self.spans[i]
                row = {"epoch": epoch,
                       "train_loss": float(train_loss[members.start:members.stop].mean()),
                       "val_loss": sum(val_losses[m] for m in members) / len(members),
                       **headlines[i], "lr": self.rates.of(self.cohorts[i].config, epoch, steps),
                       "seconds": seconds * len(members) / len(self.members)}
                self.histories[i].append(row)
                if on_epoch:
                    on_epoch(i, row)
                self.stopped[i] = self._why_stop(i, epoch, train_loss, val_losses)
            if not self._running():
                return
        self._stop_all("completed")

    def _running(self):
        return [i for i, why in enumerate(self.stopped) if why is None]

    def _stop_all(self, why):
        for i in self._running():
            self.stopped[i] = why

    def _why_stop(self, i, epoch, train_loss, val_losses):
        """Why cohort ``i`` ends after ``epoch``, or None."""
        members, patience = self.spans[i], self.cohorts[i].config.patience
        bad = [v for m in members for v in (float(train_loss[m]), val_losses[m])
               if not math.isfinite(v)]
        if bad:
            return (f"the loss of a member became {bad[0]} in epoch {epoch}: try a lower "
                    "learning rate")
        if patience and all(self.best[m].since >= patience for m in members):
            return (f"early stop after epoch {epoch}: no member found a better validation "
                    f"loss in {patience} epochs")
        return None

    def _train_epoch(self, epoch, stop):
        """One pass of every member over the training rows, each in its own new order; the
        members' mean losses."""
        config, x, y = self.config, self.rows.x, self.rows.y
        batch, n = config.batch_size, len(x)
        steps = math.ceil(n / batch)
        # One gather an epoch, as a single run does, then each minibatch is a slice.
        perms = [torch.randperm(n, generator=g).to(x.device) for g in self.generators]
        xs, ys = torch.stack([x[p] for p in perms]), torch.stack([y[p] for p in perms])
        del perms
        for member in self.members:
            member.train()
        total = torch.zeros(len(self.members), device=x.device)
        for k, i in enumerate(range(0, n, batch)):
            self.rates.at(epoch, k, steps)
            rows = min(batch, n - i)
            with self.threads.timing(rows):
                loss = self.fast(xs[:, i:i + rows], ys[:, i:i + rows], self.optimizer)
                if self.average:
                    self.average.update()
            total.add_(loss, alpha=rows)
            if stop.requested():
                raise KeyboardInterrupt
        return total.cpu() / n

    def _validate(self, epoch):
        """Each running member's validation loss (keeping its weights where they are its best
        yet), and the headline metrics of each running cohort's members together."""
        average = self.average
        x, y, truth = next(iter(self.rows.validation()))  # rows in memory: one chunk
        losses, outputs, headlines = {}, {}, {}
        running = self._running()
        with average.swapped_in() if average else contextlib.nullcontext(), \
                torch.inference_mode():
            for m in (m for i in running for m in self.spans[i]):
                member, best = self.members[m], self.best[m]
                member.eval()
                out = member(x)
                losses[m] = float(self.task.loss(out, y))
                outputs[m] = out.float().cpu()
                if losses[m] < best.loss:
                    best.loss, best.epoch, best.since = losses[m], epoch, 0
                    best.weights = copy.deepcopy(member.state_dict())
                else:
                    best.since += 1
        for i in running:
            report = self.task.metrics(self.units)
            report.add(truth, torch.stack([outputs[m] for m in self.spans[i]]).numpy())
            headlines[i] = self.task.headline(report.report())
        return losses, headlines

    def trained(self, i):
        """Cohort ``i``'s members with the weights of their best epochs, or why it has none."""
        members, stopped = self.spans[i], self.stopped[i]
        lost = [k for k, m in enumerate(members) if self.best[m].weights is None]
        if lost:
            return FcnnError(f"member {lost[0]} of the ensemble diverged at once ({stopped}); "
                             "nothing worth keeping")
        for m in members:
            self.members[m].load_state_dict(self.best[m].weights)
            self.members[m].eval()
        return Trained(Ensemble(self.cohorts[i].net, [self.members[m] for m in members]),
                       self.histories[i], [self.best[m].epoch for m in members], stopped)
