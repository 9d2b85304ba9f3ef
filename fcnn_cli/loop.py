"""The training loop: epochs of minibatch steps, a validation after each, and the rules that
end training early (no progress, divergence, an interrupt)."""

import contextlib
import copy
import math
import time
from dataclasses import dataclass

import torch

from fcnn_cli.devices import training_threads

DIAGNOSTIC_ROWS = 256  # the fixed batch on which diagnostics measure every layer


@dataclass
class Tensors:
    """The training and validation rows on the training device, scaled."""

    x: torch.Tensor
    y: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor

    @classmethod
    def of(cls, prepared, device):
        train, val, scale = prepared.splits["train"], prepared.splits["val"], \
            prepared.x_scaler.transform
        return cls(*(torch.from_numpy(a).to(device) for a in
                     (scale(train.x), train.y, scale(val.x), val.y)))


@dataclass
class Outcome:
    stopped: str  # "completed", or why training ended early
    resume_state: dict | None = None  # set when interrupted: what resuming continues from
    diverged: bool = False


def run(state, prepared, tensors, on_epoch=None, probe=None):
    """Train ``state`` from its last complete epoch to the configured last one.

    Each epoch's history row goes to ``on_epoch``. A KeyboardInterrupt ends training after the
    last complete epoch: the state goes back to it, and the outcome carries its ``state_dict``
    (with the data's digest) to resume from.
    """
    config, task = state.config, prepared.task
    step = _step(state, task)
    last_complete = _snapshot(state, prepared)
    threads = torch.get_num_threads()
    torch.set_num_threads(training_threads(config, state.model.config, tensors.x.device))
    try:
        for epoch in range(state.epoch + 1, config.epochs + 1):
            start = time.perf_counter()
            train_loss, lr = _train_epoch(state, step, tensors, epoch)
            val_loss, out, better = _validate(state, task, tensors)
            if state.plateau:
                state.plateau.step(val_loss)
            report = task.report(prepared.splits["val"].truth, out.float().cpu().numpy(),
                                 prepared.units)
            row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                   **task.headline(report), "lr": lr, "seconds": time.perf_counter() - start}
            state.history.append(row)
            state.epoch = epoch
            if probe:
                state.diagnostics += probe.measure(epoch)
            if on_epoch:
                on_epoch(row)
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                bad = train_loss if not math.isfinite(train_loss) else val_loss
                return Outcome(f"the loss became {bad} in epoch {epoch}: try a lower learning "
                               "rate, or the batchnorm or selu architecture", diverged=True)
            state.keep_if_best(val_loss, better)
            if config.patience and state.since_best >= config.patience:
                return Outcome(f"early stop after epoch {epoch}: no better validation loss in "
                               f"{config.patience} epochs")
            last_complete = _snapshot(state, prepared)
    except KeyboardInterrupt:
        state.load_state_dict(last_complete)
        return Outcome(f"interrupted after epoch {state.epoch}", last_complete)
    finally:
        torch.set_num_threads(threads)
    return Outcome("completed")


def cosine_lr(config, epoch, step, steps_per_epoch):
    """The learning rate of a step: from the configured one down to zero along a half cosine."""
    done = (epoch - 1) * steps_per_epoch + step
    return 0.5 * config.lr * (1 + math.cos(math.pi * done / (config.epochs * steps_per_epoch)))


def _step(state, task):
    """One minibatch step, ``step(x, y) -> loss``: the autograd-free fast path where the
    network allows it, else autograd and the optimiser."""
    optimizer = state.optimizer
    if state.fast:
        fast = state.fast
        return lambda x, y: fast(x, y, optimizer)
    model = state.model

    def autograd_step(x, y):
        loss = task.loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss
    return autograd_step


def _train_epoch(state, step, tensors, epoch):
    """One pass over the training rows in a new random order; returns the mean training loss
    and the learning rate at the epoch's start."""
    config, model, average, group = state.config, state.model, state.average, state.param_group
    x, y, batch = tensors.x, tensors.y, config.batch_size
    steps = math.ceil(len(x) / batch)
    cosine = config.schedule == "cosine"
    lr = group["lr"] = cosine_lr(config, epoch, 0, steps) if cosine else group["lr"]
    model.train()
    total = torch.zeros((), device=x.device)
    perm = torch.randperm(len(x), generator=state.generator).to(x.device)
    # One gather an epoch, then each minibatch is a contiguous slice.
    xs, ys = x[perm], y[perm]
    for k, i in enumerate(range(0, len(x), batch)):
        xb, yb = xs[i:i + batch], ys[i:i + batch]
        if len(xb) < 2 and model.config.batchnorm:
            continue  # batch norm cannot normalise a batch of one
        if cosine:
            group["lr"] = cosine_lr(config, epoch, k, steps)
        loss = step(xb, yb)
        if average:
            average.update()
        total.add_(loss.detach(), alpha=len(xb))
        # Looking costs a device sync, so only now and then: enough to stop a diverged run
        # within a fraction of an epoch.
        if k % 64 == 63 and not torch.isfinite(total):
            break
    return total.item() / len(x), lr


def _validate(state, task, tensors):
    """The validation loss and outputs of the weights that would be kept (the average, if
    any), and a copy of those weights if they are the best so far."""
    model, average = state.model, state.average
    model.eval()
    with average.swapped_in() if average else contextlib.nullcontext():
        with torch.inference_mode():
            out = model(tensors.x_val)
            val_loss = task.loss(out, tensors.y_val).item()
        better = copy.deepcopy(model.state_dict()) if val_loss < state.best_loss else None
    return val_loss, out, better


def _snapshot(state, prepared):
    return {"digest": prepared.digest, **state.state_dict()}
