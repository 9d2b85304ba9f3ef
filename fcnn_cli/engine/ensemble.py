"""Ensembles: several networks of one shape, trained together in one vectorised pass.

Member k starts from seed ``seed + k`` (:func:`member_seed`): its initial weights and the order
of its rows in every epoch are those of a single run with that seed. One step trains all of them
at once (:func:`fcnn_cli.engine.funcstep.ensemble_step` chooses it): the autograd-free step
(:class:`fcnn_cli.engine.fastpath.FastStep` given the list of members, batched matrix products)
where a single run would take it, else autograd over the members' forward passes vectorised
with ``torch.func`` (:class:`fcnn_cli.engine.funcstep.FuncStep`: batch norm, alpha-dropout,
class weights, ``fast`` off, bf16); either way one optimiser kernel over all their parameters.
As the optimiser, the weight average and the cosine schedule act on each value on its own, and
the plateau schedule halves each member's rate on its own validation loss (the autograd-free
step alone: the autograd step takes one rate for all; :mod:`~fcnn_cli.engine.memberwise`),
member k follows the single run with its seed within float rounding (with dropout, which draws
the members' masks together, only in distribution). The split into training, validation and
test rows is ``seed``'s for all members, so that they are validated and tested on the same rows.

Each member is validated on its own after every epoch (its averaged weights, as a single run)
and keeps its own best epoch; with ``patience``, training ends once every member has gone that
many epochs without a better validation figure (``best_by``). An interrupt goes back to the
last complete epoch and returns its state (:meth:`_Run.state_dict`), from which ``resume``
continues as an uninterrupted run would, as for a single run.

In k-fold training (:mod:`~fcnn_cli.engine.folds`) member k trains on the rows outside fold k
and validates on fold k alone; :class:`AllRows` gives every member every row otherwise.

One pass may also train several ensembles of one shape side by side (:func:`train_cohorts`, as
a sweep does): each a :class:`Cohort` with its own TrainConfig and NetConfig, which may differ
in the :data:`MEMBER_OPTIONS` alone, as these change neither the network's shape nor the step's
kernels. Each cohort keeps its own history, best epochs and early stop, as if trained alone;
its members go on training (unread) until the last cohort stops.

The module is one of over 400 lines: :class:`_Run` holds every member's and cohort's state
through one epoch loop, and its steps, validation, early stop and resume read that state
together; split apart, each part would reach into the others'.
"""

import contextlib
import copy
import dataclasses
import math
import time

import torch

from fcnn_cli.engine import fastpath, folds, funcstep, memberwise, selection
from fcnn_cli.core.config import MAX_MEMBERS, Unsupported
from fcnn_cli.machine.devices import (ThreadChooser, autocast, cpu_budget, matmul_precision,
                              thread_ladder, training_threads)
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.engine.loop import GATHER_ROWS, NO_STOP
from fcnn_cli.network import embedding
from fcnn_cli.network.model import MLP, Ensemble
from fcnn_cli.engine.optimizer import make as make_optimizer
from fcnn_cli.engine.state import load_weights

# What the members of one pass may differ in: scalars of the optimiser kernel (taken member by
# member through fastpath.MemberRates), of the weight average and of dropout, the initial weights,
# and when a cohort stops. The seed is the same for all: its split is theirs.
MEMBER_OPTIONS = ("lr", "weight_decay", "init", "dropout", "patience", "ema")


DIVERGED = "the loss of a member became"  # how a cohort's end by divergence begins


def member_seed(seed, k):
    """The seed of member ``k`` (from 0) of an ensemble trained with ``seed``."""
    return seed + k


@dataclasses.dataclass
class _Best:
    """One member's best validation figure (--best-by) so far, its epoch and (averaged) weights."""

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
    """Cohorts differ in :data:`MEMBER_OPTIONS` and their number of members alone: a
    ValueError otherwise, a caller's mistake (a sweep groups them so), which must stop a sweep
    rather than fail its combinations as options would."""
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
    resume_state: dict | None = None  # set when interrupted: what ``train(resume=…)`` takes


def refuse_unsupported(config, world, streamed):
    """The cases an ensemble does not train in that its options alone do not tell (those
    :class:`~fcnn_cli.core.config.TrainConfig` refuses), each with the reason, before any
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
        return training_threads(config, embedding.products(net_config), device)
    return ThreadChooser(thread_ladder(cpu_budget()))


def train(data, config, net_config, device, on_epoch=None, stop=None, resume=None):
    """Train ``config.ensemble`` members on ``data`` (a :class:`~fcnn_cli.engine.prepare.Prepared`),
    from the start or from ``resume``, the state an interrupted training returned."""
    trained = train_cohorts(data, [Cohort(config, net_config)], device,
                            on_epoch and (lambda _, row: on_epoch(row)), stop, resume)[0]
    if isinstance(trained, FcnnError):
        raise trained
    return trained


def train_cohorts(data, cohorts, device, on_epoch=None, stop=None, resume=None):
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
    first = cohorts[0]
    step = funcstep.ensemble_step(members, data.task, first.config)
    _refuse_autograd(cohorts, step)
    run = _Run(cohorts, data, members, step, make_optimizer([step.flat], first.config),
               data.on(device))
    if resume is not None:
        run.load_state_dict(resume)
    with stop.polling(), _threads(first.config, first.net, device).in_use() as threads, \
            matmul_precision(first.config.precision, device):
        run.threads = threads
        resume_state = run.epochs(on_epoch, stop)
    if resume_state is not None and any(b.weights is None for b in run.best):
        raise KeyboardInterrupt  # nothing kept yet: interrupted, as a single run is then
    return [run.trained(i, resume_state) for i in range(len(cohorts))]


# The member options that are scalars of the autograd-free step's kernels (MemberRates, the
# per-member keep rate and blends); the autograd step takes one of each for all members.
KERNEL_OPTIONS = ("lr", "weight_decay", "dropout", "ema")


def _refuse_autograd(cohorts, step):
    """Several members trained through autograd take the optimiser's learning rate and one of
    each kernel option for all: the plateau schedule (each member's own rate), or cohorts that
    differ in a kernel option, train through the autograd-free step alone."""
    count = sum(c.config.ensemble for c in cohorts)
    if isinstance(step, fastpath.FastStep) or count == 1:
        return
    if cohorts[0].config.schedule == "plateau":
        raise Unsupported(f"ensemble={count}: members trained through autograd (batch norm, "
                          "alpha-dropout, an embedding, class weights, fast off or bf16) take "
                          "one learning rate for all, not the plateau schedule's own for each; "
                          "train single networks for this", ("ensemble",))
    differ = [name for name in KERNEL_OPTIONS
              if len({getattr(c.config if hasattr(c.config, name) else c.net, name)
                      for c in cohorts}) > 1]
    if differ:
        raise Unsupported(f"members trained through autograd (batch norm, alpha-dropout, an "
                          f"embedding, class weights, fast off or bf16) take one "
                          f"{' and one '.join(differ)} for all; train them apart", ("ensemble",))


class _Run:
    """The training in progress of the members of one or more cohorts."""

    def __init__(self, cohorts, data, members, fast, optimizer, rows):
        self.cohorts, self.task, self.units = cohorts, data.task, data.units
        fold_rows = getattr(data, "folds", None)
        self.plan = AllRows(rows) if fold_rows is None else folds.MemberRows(fold_rows)
        # k-fold's rule, recorded in the state: a resumed run deals its folds as it did
        self.rule = {} if fold_rows is None else {"folds": fold_rows.rule.to_dict()}
        self.config = cohorts[0].config  # what all cohorts share: epochs, batches, schedule
        self.members, self.fast, self.optimizer = members, fast, optimizer
        self.average = memberwise.average(fast, cohorts)
        self.rates = memberwise.Rates(cohorts, fast, optimizer, self.config.schedule)
        self.rows, self.digest = rows, data.digest
        self.spans, start = [], 0
        for cohort in cohorts:
            self.spans.append(range(start, start + cohort.config.ensemble))
            start += cohort.config.ensemble
        self.generators = [torch.Generator().manual_seed(member_seed(c.config.seed, k))
                           for c in cohorts for k in range(c.config.ensemble)]
        self.best = [_Best() for _ in members]
        self.epoch, self.histories = 0, [[] for _ in cohorts]
        self.stopped = [None for _ in cohorts]  # why each cohort ended, once it has
        self.threads = None  # a devices.ThreadChooser, that times the steps
        # Batch norm cannot normalise a batch of one row: such a last batch is skipped, as a
        # single run skips it.
        self.min_rows = 2 if members[0].config.batchnorm else 1

    def epochs(self, on_epoch, stop):
        """The epochs after the last complete one, until every cohort has stopped (its members
        no longer improving, or one of them diverged); when interrupted, the state after the
        last complete epoch (to which the run goes back), else None."""
        last_complete = self.state_dict()
        try:
            for epoch in range(self.epoch + 1, self.config.epochs + 1):
                self._epoch(epoch, on_epoch, stop)
                if not self._running():
                    return None
                last_complete = self.state_dict()
        except KeyboardInterrupt:
            self.load_state_dict(last_complete)
            self._stop_all(f"interrupted after epoch {self.epoch}")
            return last_complete
        self._stop_all("completed")
        return None

    def _epoch(self, epoch, on_epoch, stop):
        """Train and validate one epoch and record it for each running cohort, with why the
        cohort ends here, if it does."""
        start = time.perf_counter()
        train_loss = self._train_epoch(epoch, stop)
        val_losses, figures, headlines = self._validate(epoch)
        seconds = time.perf_counter() - start
        steps = math.ceil(self.plan.train_rows / self.config.batch_size)
        self.epoch = epoch
        for i in self._running():
            members = self.spans[i]
            row = {"epoch": epoch,
                   "train_loss": float(train_loss[members.start:members.stop].mean()),
                   "val_loss": sum(val_losses[m] for m in members) / len(members),
                   **selection.column(self.config.best_by,
                                      sum(figures[m] for m in members) / len(members)),
                   **headlines[i], "lr": self.rates.of(i, members, epoch, steps),
                   "seconds": seconds * len(members) / len(self.members)}
            self.histories[i].append(row)
            self.rates.validated(members, val_losses)
            if on_epoch:
                on_epoch(i, row)
            self.stopped[i] = self._why_stop(i, epoch, train_loss, val_losses)

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
            return (f"{DIVERGED} {bad[0]} in epoch {epoch}: try a lower learning rate")
        if patience and all(self.best[m].since >= patience for m in members):
            return (f"early stop after epoch {epoch}: no member found a better validation "
                    f"{selection.NAMES[self.config.best_by]} in {patience} epochs")
        return None

    def state_dict(self):
        """Everything a resumed run needs to go on exactly: each member's weights, progress
        and row generator, each cohort's history and end, the optimiser, the weight average
        and torch's generator (dropout), with the digest of the data (and k-fold's rule)."""
        return {"ensemble": len(self.members), "digest": self.digest, **self.rule,
                "epoch": self.epoch,
                # rows and kept weights are never changed once made: copying the lists is enough
                "histories": [list(h) for h in self.histories], "stopped": list(self.stopped),
                "best": [vars(best).copy() for best in self.best],
                "model": [_weights(member) for member in self.members],
                "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                "average": self.average.state_dict() if self.average else None,
                "plateaus": self.rates.state_dict(),
                "generators": [g.get_state() for g in self.generators],
                "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state):
        try:
            self.epoch = state["epoch"]
            self.histories = [list(h) for h in memberwise.each(state["histories"], self.cohorts)]
            self.stopped = list(memberwise.each(state["stopped"], self.cohorts))
            self.best = [_checked_best(best, member)
                         for best, member in zip(memberwise.each(state["best"], self.members),
                                                 self.members)]
            for member, weights in zip(self.members, memberwise.each(state["model"], self.members)):
                load_weights(member, weights)
            self.optimizer.load_state_dict(state["optimizer"])
            if self.average:
                self.average.load_state_dict(state["average"])
            self.rates.load_state_dict(state.get("plateaus"))
            for generator, saved in zip(self.generators,
                                        memberwise.each(state["generators"], self.members)):
                generator.set_state(saved)
            torch.set_rng_state(state["torch_rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            detail = " ".join(str(e).split())  # load_state_dict's lists span lines
            raise FcnnError(f"the saved training state is damaged or from another version of "
                            f"fcnn ({type(e).__name__}: {detail}); cannot resume") from None

    def _train_epoch(self, epoch, stop):
        """One pass of every member over the training rows, each in its own new order; the
        members' mean losses."""
        n = self.plan.train_rows
        steps = math.ceil(n / self.config.batch_size)
        for member in self.members:
            member.train()
        total = torch.zeros(len(self.members), device=self.rows.device)
        for k, (x, y) in enumerate(self._batches()):
            self.rates.at(epoch, k, steps)
            if x.shape[1] < self.min_rows:
                continue  # batch norm cannot normalise a minibatch of one row
            with self.threads.timing(x.shape[1]):
                loss = self.fast(x, y, self.optimizer)
                if self.average:
                    self.average.update()
            total.add_(loss, alpha=x.shape[1])
            if stop.requested():
                raise KeyboardInterrupt
        return total.cpu() / n

    def _batches(self):
        """Every member's minibatches of one epoch, member k's rows in the order a single run
        with its seed takes them, as (members × rows) features and labels. The rows are
        gathered in spans of whole minibatches, as a single run gathers them: the members
        together hold about ``GATHER_ROWS`` rows at a time, not a copy of the table each."""
        x, y, n, batch = self.rows.x, self.rows.y, self.plan.train_rows, self.config.batch_size
        # 32-bit orders, half the memory: randperm draws the same for either type.
        kind = torch.int32 if n < 2**31 else torch.int64
        order = self.plan.orders(self.generators, kind).to(x.device)
        span = batch * max(1, GATHER_ROWS // (batch * len(self.members)))
        for first in range(0, n, span):
            picked = order[:, first:first + span]
            xs, ys = x[picked], y[picked]
            for i in range(0, picked.shape[1], batch):
                yield xs[:, i:i + batch], ys[:, i:i + batch]

    def _validate(self, epoch):
        """Each running member's validation loss and ``--best-by`` figure (keeping its weights
        where the figure is its best yet), and the headline metrics of each running cohort's members
        together."""
        average = self.average
        x, y, truth, weight = next(iter(self.rows.validation()))  # rows in memory: one chunk
        losses, figures, outputs, headlines = {}, {}, {}, {}
        running = self._running()
        with average.swapped_in() if average else contextlib.nullcontext(), \
                torch.inference_mode():
            for m in (m for i in running for m in self.spans[i]):
                member, best = self.members[m], self.best[m]
                member.eval()
                rows = self.plan.validation_rows(m)
                with autocast(self.config.precision, x.device):
                    out = member(x[rows]).float()  # in the run's precision, as a single run
                losses[m] = float(self.task.loss(out, y[rows]))
                figures[m] = float(selection.figure(self.task, self.config.best_by, out,
                                                    y[rows], losses[m]))
                outputs[m] = out.cpu()
                if figures[m] < best.loss:
                    best.loss, best.epoch, best.since = figures[m], epoch, 0
                    best.weights = _weights(member)
                else:
                    best.since += 1
        for i in running:
            report = self.task.metrics(self.units)
            report.add(truth, self.plan.together([outputs[m] for m in self.spans[i]]).numpy(),
                       weight=weight)
            headlines[i] = self.task.headline(report.report())
        return losses, figures, headlines

    def trained(self, i, resume_state=None):
        """Cohort ``i``'s members with the weights of their best epochs, or why it has none;
        ``resume_state`` where the run was interrupted."""
        members, stopped = self.spans[i], self.stopped[i]
        lost = [k for k, m in enumerate(members) if self.best[m].weights is None]
        if lost:
            what = "training" if len(members) == 1 else f"member {lost[0]} of the ensemble"
            return FcnnError(f"{what} diverged at once ({stopped}); nothing worth keeping")
        for m in members:
            self.members[m].load_state_dict(self.best[m].weights)
            self.members[m].eval()
        return Trained(Ensemble(self.cohorts[i].net, [self.members[m] for m in members]),
                       self.histories[i], [self.best[m].epoch for m in members], stopped,
                       resume_state)


class AllRows:
    """The rows each member of a pass trains and validates on: all of them, each member's
    in the order of its own generator (k-fold's: :class:`fcnn_cli.engine.folds.MemberRows`)."""

    def __init__(self, rows):
        self.train_rows = rows.train_rows  # what each member takes an epoch

    def orders(self, generators, kind):
        """Each member's rows of one epoch in a new order (members × rows)."""
        order = torch.empty(len(generators), self.train_rows, dtype=kind)
        for row, generator in zip(order, generators):
            torch.randperm(self.train_rows, generator=generator, out=row)
        return order

    @staticmethod
    def validation_rows(m):
        return slice(None)

    @staticmethod
    def together(outputs):
        """The members' validation outputs as the metrics take an ensemble's."""
        return torch.stack(outputs)


def _weights(member):
    """A copy of a member's weights: its own, where a deep copy of its state dict would copy
    the parameter of all members, into which its tensors are views."""
    return {name: value.clone() for name, value in member.state_dict().items()}


def _checked_best(saved, member):
    """A member's saved progress, its kept weights loaded into it once (which checks their
    names and shapes; the member's own weights are loaded after) and its numbers as numbers,
    so that a damaged state fails before training rather than after."""
    best = _Best(**saved)
    if best.weights is not None:
        load_weights(member, best.weights)
    best.loss, best.epoch, best.since = float(best.loss), int(best.epoch), int(best.since)
    return best
