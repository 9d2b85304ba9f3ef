"""The training loop: epochs of minibatch steps, a validation after each, and the rules that
end training early (no progress, divergence, an interrupt)."""

import contextlib
import copy
import math
import time
from dataclasses import dataclass

import torch

from fcnn_cli.machine import distributed
from fcnn_cli.engine import graphs, selection
from fcnn_cli.machine.devices import autocast, matmul_precision, training_threads
from fcnn_cli.core.errors import DataChanged, first_line
from fcnn_cli.network import embedding

WORLD_OF_ONE = distributed.World()


class _NoStop:
    """For training from Python: nothing but Ctrl-C's own KeyboardInterrupt stops the loop."""

    polling = contextlib.nullcontext

    @staticmethod
    def requested():
        return False

    @staticmethod
    def agree(code):
        pass


NO_STOP = _NoStop()
DIAGNOSTIC_ROWS = 256  # the fixed batch on which diagnostics measure every layer
GATHER_ROWS = 1 << 16  # training rows put in an epoch's order at once (whole minibatches)


@dataclass
class Tensors:
    """The training and validation rows on the training device, scaled: what the loop trains
    on, as :class:`fcnn_cli.engine.stream.Rows` is for rows streamed from files."""

    x: torch.Tensor
    y: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    truth_val: object  # the validation labels as metrics take them (numpy)
    weight_val: object = None  # the validation rows' event weights as given (numpy), or None

    @classmethod
    def of(cls, prepared, device):
        train, val = prepared.splits["train"], prepared.splits["val"]

        def scaled(name):
            x = prepared.splits[name].x
            return x if prepared.scaled(name) else prepared.x_scaler.transform(x)
        return cls(*(torch.from_numpy(a).to(device) for a in
                     (scaled("train"), train.y, scaled("val"), val.y)), val.truth, val.weight)

    @property
    def device(self):
        return self.x.device

    @property
    def train_rows(self):
        return len(self.x)

    def sample(self, rows):
        return self.x[:rows], self.y[:rows]

    def validation(self):
        yield self.x_val, self.y_val, self.truth_val, self.weight_val

    def batches(self, generator, batch, world, task):
        """This process's part of each global minibatch of one epoch in a new random order,
        the same in every process, as (features, labels, its share of the batch, rows of the
        global batch)."""
        x, y, n = self.x, self.y, len(self.x)
        perm = torch.randperm(n, generator=generator).to(x.device)
        # Gathered in spans of whole minibatches, each then a contiguous slice: as fast as one
        # permuted copy of the training rows, without holding one.
        span = batch * max(1, GATHER_ROWS // batch)
        for first in range(0, n, span):
            xs, ys = x[perm[first:first + span]], y[perm[first:first + span]]
            if not world.distributed:  # all rows its own: cut in one call, not a slice a batch
                for xb, yb in zip(xs.split(batch), ys.split(batch)):
                    yield xb, yb, 1.0, xb.shape[0]
                continue
            for i in range(first, min(first + span, n), batch):
                rows = min(batch, n - i)
                start, end = (k - first for k in distributed.share(n, i, rows, world))
                yield xs[start:end], ys[start:end], \
                    _share(task, ys, i - first, rows, start, end, world), rows


@dataclass
class Outcome:
    stopped: str  # "completed", or why training ended early
    resume_state: dict | None = None  # set when interrupted: what resuming continues from
    diverged: bool = False
    lost: bool = False  # another process of the job failed: no more collectives with it
    changed: DataChanged | None = None  # a streamed file changed: why, the data are unusable


def run(state, prepared, rows, on_epoch=None, probe=None, world=WORLD_OF_ONE, stop=None):
    """Train ``state`` from its last complete epoch to the configured last one, on ``rows``
    (:class:`Tensors`, or :class:`fcnn_cli.engine.stream.Rows`).

    Each epoch's history row goes to ``on_epoch``. A KeyboardInterrupt ends training after the
    last complete epoch: the state goes back to it, and the outcome carries its ``state_dict``
    (with the data's digest) to resume from; so does a DataChanged, a streamed file that is
    no longer what training began on. So does ``stop.requested()`` (a
    :class:`~fcnn_cli.machine.signals.Interrupts`, whose ``polling()`` is entered while the loop
    runs), which is asked at every step; in several processes every 64 steps and at the end of every
    epoch, all together, so that all of them stop at the same point.
    """
    stop = stop or NO_STOP
    device = rows.device
    graphed = isinstance(rows, Tensors) and graphs.usable(state, device, world)
    step = _graphed(state, rows) if graphed else _step(state, prepared.task, world)
    last_complete = snapshot(state, prepared)
    threads = training_threads(state.config, embedding.products(state.model.config), device,
                               alone=not world.distributed)
    try:
        with stop.polling(), threads.in_use(), matmul_precision(state.config.precision, device):
            for epoch in range(state.epoch + 1, state.config.epochs + 1):
                ended = _epoch(state, prepared, rows, step, epoch, world, stop, on_epoch,
                               probe, threads)
                if ended:
                    return ended
                last_complete = snapshot(state, prepared)
                if world.distributed and epoch < state.config.epochs:
                    _halt(torch.zeros((), device=rows.device), world, stop)
    except KeyboardInterrupt:
        state.load_state_dict(last_complete)
        return Outcome(f"interrupted after epoch {state.epoch}", last_complete)
    except DataChanged as e:
        state.load_state_dict(last_complete)
        return Outcome(f"stopped after epoch {state.epoch}: {e}", last_complete, changed=e)
    except RuntimeError as e:
        if not (world.distributed and distributed.lost_peer(e)):
            raise
        state.load_state_dict(last_complete)
        detail = first_line(e)
        return Outcome(f"process {world.rank} of {world.size} lost touch with the others after "
                       f"epoch {state.epoch} ({detail}); one of them probably stopped",
                       last_complete, lost=True)
    return Outcome("completed")


def _epoch(state, prepared, rows, step, epoch, world, stop, on_epoch, probe, threads):
    """Train and validate one epoch and record it; an Outcome when training must end here."""
    config, task = state.config, prepared.task
    start = time.perf_counter()
    train_loss, lr = _train_epoch(state, task, step, rows, epoch, world, stop, threads)
    val_loss, figure, report, better = _validate(state, task, rows, world, prepared.units)
    if state.plateau:
        state.plateau.step(val_loss)
    row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
           **selection.column(config.best_by, figure), **task.headline(report), "lr": lr,
           "seconds": time.perf_counter() - start}
    state.history.append(row)
    state.epoch = epoch
    if probe:
        state.diagnostics += probe.measure(epoch)
    if on_epoch:
        on_epoch(row)
    if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
        bad = train_loss if not math.isfinite(train_loss) else val_loss
        return Outcome(f"the loss became {bad} in epoch {epoch}: try a lower learning rate, "
                       "or the batchnorm or selu architecture", diverged=True)
    state.keep_if_best(figure, better)
    if config.patience and state.since_best >= config.patience:
        return Outcome(f"early stop after epoch {epoch}: no better validation "
                       f"{selection.NAMES[config.best_by]} in {config.patience} epochs")
    return None


def cosine_lr(config, epoch, step, steps_per_epoch):
    """The learning rate of a step: from the configured one down to zero along a half cosine."""
    done = (epoch - 1) * steps_per_epoch + step
    return 0.5 * config.lr * (1 + math.cos(math.pi * done / (config.epochs * steps_per_epoch)))


def _step(state, task, world):
    """One minibatch step, ``step(x, y, share) -> loss`` (detached) on this process's rows of
    a global minibatch, ``share`` being their part of it: the autograd-free fast path where the
    network allows it, else autograd; then, in several processes, the gradients summed over
    them in one all-reduce of one flat tensor, weighted by each process's share; then the
    update."""
    optimizer, model = state.optimizer, state.model
    fast = state.fast
    forward = _forward(state)
    if not world.distributed:  # the plain step, no weighting: kept exactly as it always was
        if fast:
            return lambda x, y, share: fast(x, y, optimizer)

        def autograd_step(x, y, share):
            loss = task.loss(forward(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss.detach()
        return autograd_step
    params = list(model.parameters())

    def shared_step(x, y, share):
        if fast:
            loss = fast.gradients(x, y) if len(x) else fast.flat.grad.zero_().sum()
            distributed.sum_(fast.flat.grad.mul_(share), world)
            fast.update(optimizer)
            return loss
        optimizer.zero_grad(set_to_none=False)
        loss = task.loss(forward(x), y) if len(x) else None
        if loss is not None:
            loss.backward()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = distributed.sum_(torch.cat([g.reshape(-1) for g in grads]).mul_(share), world)
        for p, g in zip(params, flat.split([p.numel() for p in params])):
            p.grad = g.view_as(p)
        optimizer.step()
        return loss.detach() if loss is not None else flat.new_zeros(())
    return shared_step


def _forward(state):
    """The network's forward pass in the run's precision (float32 outputs under bf16)."""
    model, config = state.model, state.config
    if config.precision != "bf16":
        return model
    device = next(model.parameters()).device

    def forward(x):
        with autocast(config.precision, device):
            out = model(x)
        return out.float()
    return forward


def _graphed(state, tensors):
    return graphs.GraphedSteps(state.fast, state.optimizer, state.average, tensors.x,
                               tensors.y, state.config.batch_size)


def _train_epoch(state, task, step, rows, epoch, world, stop, threads):
    """One pass over the training rows in a new random order, the same in every process;
    returns the mean training loss and the learning rate at the epoch's start. Each step is
    timed for ``threads`` (a :class:`~fcnn_cli.machine.devices.ThreadChooser`)."""
    if isinstance(step, graphs.GraphedSteps):
        return _graphed_epoch(state, step, rows, epoch, stop)
    config, model, average, group = state.config, state.model, state.average, state.param_group
    batch, n = config.batch_size, rows.train_rows
    steps = math.ceil(n / batch)
    cosine = config.schedule == "cosine"
    lr = group["lr"] = cosine_lr(config, epoch, 0, steps) if cosine else group["lr"]
    model.train()
    total = torch.zeros((), device=rows.device)
    for k, (x, y, share, size) in enumerate(rows.batches(state.generator, batch, world, task)):
        if model.config.batchnorm and size // world.size < 2:
            continue  # batch norm cannot normalise a batch of one
        if cosine:
            group["lr"] = cosine_lr(config, epoch, k, steps)
        with threads.timing(x.shape[0]):  # len() is a Python method of tensors
            loss = step(x, y, share)
            if average:
                average.update()
        # Weighted as the step weighs it: summed over the processes, the global batch's loss.
        # Every step returns it detached: a detach here would cost a dispatch a step.
        total.add_(loss, alpha=share * size)
        if not world.distributed and stop.requested():
            raise KeyboardInterrupt  # the loop goes back to the last complete epoch
        # Looking costs a device sync (and in several processes an all-reduce), so only now
        # and then: enough to stop a diverged or stopped run within a fraction of an epoch.
        if k % 64 == 63 and _halt(total, world, stop):
            break
    return distributed.sum_(total, world).item() / n, lr


def _graphed_epoch(state, steps, tensors, epoch, stop):
    """:func:`_train_epoch` through CUDA graphs (one process): the same row order, learning
    rates and weight-average weights, handed to the graph once for the whole epoch."""
    config, group, n, batch = state.config, state.param_group, len(tensors.x), \
        state.config.batch_size
    count = math.ceil(n / batch)
    cosine = config.schedule == "cosine"
    lrs = [cosine_lr(config, epoch, k, count) for k in range(count)] if cosine else \
        [group["lr"]] * count
    state.model.train()
    order = torch.randperm(n, generator=state.generator)
    steps.begin(order, lrs, state.average.next_weights(count) if state.average else None)
    for k, i in enumerate(range(0, n, batch)):
        steps.step(min(batch, n - i))
        group["lr"] = lrs[k]
        if stop.requested():
            raise KeyboardInterrupt
        if k % 64 == 63 and _halt(steps.total, WORLD_OF_ONE, stop):
            break
    return steps.total.item() / n, lrs[0]


def _share(task, ys, i, rows, start, end, world):
    """This process's part of the global minibatch's loss: its rows' share of what the loss is
    averaged over (the rows, or with class weights their weights)."""
    if not world.distributed:
        return 1.0
    return task.normalizer(ys[start:end]) / task.normalizer(ys[i:i + rows])


def _halt(total, world, stop):
    """Whether to leave the epoch now: the loss is no longer finite, or (in several processes,
    which all decide alike) a stop was asked for, which raises KeyboardInterrupt."""
    if not world.distributed:
        return not torch.isfinite(total)
    flags = torch.stack([total.detach(), total.new_tensor(float(stop.requested()))])
    distributed.sum_(flags, world)
    if flags[1] > 0:
        # All exit as the signal asked (143 for SIGTERM), also those it did not reach.
        code = total.new_tensor(float(getattr(stop, "code", None) or 0))
        stop.agree(int(distributed.max_(code, world).item()) or 130)
        raise KeyboardInterrupt
    return not torch.isfinite(flags[0])


def _validate(state, task, rows, world, units):
    """The validation loss, the figure that picks the best epoch (``--best-by``) and the
    metrics report of the weights that would be kept (the average, if any), and a copy of
    those weights if they are the best so far.

    Every process validates on all rows with the same weights; rank 0's loss and figure are
    taken by all, so that they agree on the best epoch, early stop and divergence to the last
    bit."""
    model, average = state.model, state.average
    model.eval()
    with average.swapped_in() if average else contextlib.nullcontext():
        with torch.inference_mode():
            both, report = _validation_pass(_forward(state), task, state.config.best_by, rows,
                                            units)
            val_loss, figure = distributed.broadcast_(both, world).tolist()
        better = copy.deepcopy(model.state_dict()) if figure < state.best_loss else None
    return val_loss, figure, report.report(), better


def _validation_pass(forward, task, best_by, rows, units):
    """The loss and the ``best_by`` figure over all validation rows (one tensor of the two),
    chunk by chunk, and the metrics report fed with them; one chunk (rows in memory) gives its
    own as they are. Weighted labels carry weights of mean 1 over the validation rows: averaged
    over the rows, the weighted mean loss."""
    report, losses = task.metrics(units), []
    for x, y, truth, weight in rows.validation():
        out = forward(x)
        loss = task.loss(out, y).double()
        both = torch.stack([loss, selection.figure(task, best_by, out, y, loss).double()])
        losses.append((both, task.normalizer(y)))
        report.add(truth, out.float().cpu().numpy(), weight=weight)
    if len(losses) == 1:
        return losses[0][0], report
    weight = sum(w for _, w in losses)
    return sum(loss * (w / weight) for loss, w in losses), report


def snapshot(state, prepared):
    """What resuming from the state as it is now takes."""
    return {"digest": prepared.digest, **state.state_dict()}
