"""What each member of an ensemble's pass keeps of its own in the one set of shared weights:
its learning rate under the schedules (:class:`Rates`) and its weight average (:func:`average`),
as a single run with its options would have them."""

import copy
import statistics

import torch

from fcnn_cli.engine import fastpath
from fcnn_cli.engine.averaging import WeightAverage
from fcnn_cli.engine.loop import cosine_lr
from fcnn_cli.engine.optimizer import SGD
from fcnn_cli.engine.state import plateau


def average(fast, cohorts):
    """The weight average of the members: as a single run's where all take one decay."""
    decays = [c.config.ema for c in cohorts for _ in range(c.config.ensemble)]
    if len(set(decays)) > 1:
        return MemberAverage(fast, decays)
    # The float buffers (batch norm's statistics) averaged as a single run averages them.
    return WeightAverage([fast.flat, *fast.buffers], decays[0]) if decays[0] else None


class MemberAverage(WeightAverage):
    """The weight average of members whose decays differ (0: the last step's weights, a blend
    of weight 1): one blend per decay on views of its members' spans, or one over all at once
    while their weights agree, as early on."""

    def __init__(self, fast, decays):
        super().__init__([fast.flat], max(decays))
        self.device = fast.flat.device
        self.shares = [(decay, fastpath.Views(
            fast.spans([m for m, d in enumerate(decays) if d == decay])))
            for decay in dict.fromkeys(decays)]

    def update(self):
        self.updates += 1
        ramp = (1 + self.updates) / (10 + self.updates)
        weights = [1.0 - min(decay, ramp) for decay, _ in self.shares]
        if len(set(weights)) == 1:
            self.blend(weights[0])
            return
        for weight, (_, views) in zip(weights, self.shares):
            with fastpath.one_thread(views.small, self.device):
                torch._foreach_lerp_(views(self.average[0]), views(self.live[0]), weight)


class Rates:
    """Each member's learning rate, step by step: the cosine schedule scales each cohort's own;
    the plateau schedule gives each member its own, torch's scheduler as a single run builds it
    (:func:`fcnn_cli.engine.state.plateau`) on a parameterless optimiser of the member's own,
    stepped with the member's validation loss. Several members whose lr or weight decay differ,
    or under the plateau schedule, take theirs through ``fastpath.MemberRates`` (only the
    autograd-free step: :mod:`~fcnn_cli.engine.ensemble` refuses the others)."""

    def __init__(self, cohorts, fast, optimizer, schedule):
        # The optimiser, not its group: loading a state (resume) replaces the group.
        self.cohorts, self.fast, self.optimizer = cohorts, fast, optimizer
        self.cosine = schedule == "cosine"
        lrs = [c.config.lr for c in cohorts for _ in range(c.config.ensemble)]
        decays = [c.config.weight_decay for c in cohorts for _ in range(c.config.ensemble)]
        self.plateaus = [plateau(SGD([torch.zeros(0)], lr=lr)) for lr in lrs] \
            if schedule == "plateau" else None
        self.members = None
        if len(set(zip(lrs, decays))) > 1 or (self.plateaus and len(lrs) > 1):
            self.members = fast.rates = fastpath.MemberRates(fast, lrs, decays)

    def at(self, epoch, step, steps):
        """Set the learning rates of a step."""
        if not self.cosine:
            return
        first = self.cohorts[0].config
        if self.members is None:
            self.optimizer.param_groups[0]["lr"] = cosine_lr(first, epoch, step, steps)
        else:  # the schedule's factor, the same for every member's own rate
            self.members.scale = cosine_lr(first, epoch, step, steps) / first.lr

    def of(self, i, members, epoch, steps):
        """Cohort ``i``'s learning rate at the start of an epoch; under the plateau schedule the
        mean of its ``members``' own."""
        if self.plateaus:
            return statistics.fmean(self._lr(m) for m in members)
        config = self.cohorts[i].config
        return cosine_lr(config, epoch, 0, steps) if self.cosine else config.lr

    def validated(self, members, losses):
        """Step the plateaus of ``members`` (a running cohort's) with their validation losses
        (``losses``: by member)."""
        if not self.plateaus:
            return
        before = [self._lr(m) for m in members]
        for m in members:
            self.plateaus[m].step(losses[m])
        if [self._lr(m) for m in members] != before:  # rare: a few times a run
            self._use()

    def _lr(self, m):
        return self.plateaus[m].optimizer.param_groups[0]["lr"]

    def _use(self):
        """The members' current plateau rates into the step."""
        lrs = [self._lr(m) for m in range(len(self.plateaus))]
        if self.members is None:  # one member alone: the optimiser's own rate
            self.optimizer.param_groups[0]["lr"] = lrs[0]
        else:  # in place: the kernels' views of it stay valid
            self.members.lr.copy_(self.fast.member_values(lrs))

    def state_dict(self):
        """Each member's plateau rate and scheduler, or None without the plateau schedule."""
        if not self.plateaus:
            return None
        return [{"lr": self._lr(m), "plateau": copy.deepcopy(p.state_dict())}
                for m, p in enumerate(self.plateaus)]

    def load_state_dict(self, saved):
        if not self.plateaus:
            return
        for p, own in zip(self.plateaus, each(saved, self.plateaus)):
            p.optimizer.param_groups[0]["lr"] = float(own["lr"])
            p.load_state_dict(copy.deepcopy(own["plateau"]))
        self._use()


def each(saved, members):
    """A saved list with one entry per member, checked to be one."""
    if not isinstance(saved, list) or len(saved) != len(members):
        raise ValueError(f"not one entry for each of {len(members)} members")
    return saved
