"""Which epoch's weights a run keeps: the one with the lowest validation figure that
``--best-by`` names (and the one early stopping waits on).

The loss is the default of regression. A classifier's cross-entropy rises as soon as a few
validation rows are predicted confidently wrong, often long before its ranking and accuracy stop
improving: on small tables the epoch of the lowest cross-entropy is an early, weak one
(bench/tabular.py measured it). The Brier score (squared distance of the class probabilities
from the true class) is a proper score too, but bounded per row, so it is the classifier's
default; accuracy is the figure RealMLP selects by.
"""

from fcnn_cli.core.config import classes_only
from fcnn_cli.core.errors import FcnnError

# Accuracy ties (frequent on small validation sets) go to the lower Brier score: per row a miss
# plus TIE × its Brier score (at most 2), too little to outweigh one row in 100 000.
TIE = 1e-6
NAMES = {"loss": "loss", "brier": "Brier score", "accuracy": "accuracy"}  # for messages


def resolved(best_by, kind):
    """The figure ``best_by`` names for a task of ``kind`` ("classify" or "regress")."""
    if best_by == "auto":
        return "brier" if kind == "classify" else "loss"
    if best_by != "loss" and kind != "classify":
        raise FcnnError(classes_only(best_by), ("best_by",))
    return best_by


def check_table(config, table, targets=None):
    """Refuse ``config``'s figure of classes for a table whose labels (``targets``, else those
    it records) make a regression, as :func:`resolved` refuses it in training: for a caller
    that trains many runs on the table (a sweep) and would rather stop before the first.
    Labels that make no task are left to training to refuse, with its own message."""
    if config.best_by in ("auto", "loss"):
        return
    from fcnn_cli.network import tasks

    targets = list(targets or table.targets)
    if not targets or any(t not in table.frame.columns for t in targets):
        return
    try:
        kind = tasks.infer(table, targets, config.task)
    except FcnnError:
        return
    try:
        resolved(config.best_by, kind)
    except FcnnError as e:  # the task the table made: a value of its own in a sweep's grid
        raise FcnnError(str(e), (*e.options, "task")) from None


def column(best_by, value):
    """The history's column of the figure, where no other column shows it (the loss and the
    accuracy have theirs): ``{"val_brier": value}`` or nothing."""
    return {"val_brier": value} if best_by == "brier" else {}


def figure(task, best_by, out, y, loss):
    """The figure of rows ``out``/``y`` (as the task's loss takes them) to be minimised:
    their ``loss``, or per row the Brier score or a miss (1 for a wrong class, plus the tie's
    share of the Brier score), averaged with the weights the loss gives each row (event
    weights, class weights)."""
    if best_by == "loss":
        return loss
    import torch
    import torch.nn.functional as F

    if task.weighted:
        y, w = y[:, 0].long(), y[:, 1]
    else:
        w = None if task.weights is None else \
            torch.tensor(task.weights, device=out.device, dtype=torch.float64)[y]
    out = out.double()  # float32 would lose the tie-break in the miss rate's rounding
    if task.output == "sigmoid":  # two classes from one logit: probabilities of both
        out = torch.stack([torch.zeros_like(out[:, 0]), out[:, 0]], dim=1)
    p = torch.softmax(out, dim=1)
    rows = ((p - F.one_hot(y, p.shape[1]).to(p.dtype)) ** 2).sum(dim=1)
    if best_by == "accuracy":
        rows = (out.argmax(dim=1) != y).to(out.dtype) + TIE * rows
    if w is None:
        return rows.mean()
    # As the loss averages: event weights (of mean 1 over the rows) and a sigmoid's class
    # weights multiply each row's; a softmax's class weights make a weighted mean.
    if task.weighted or task.output == "sigmoid":
        return (rows * w).mean()
    return (rows * w).sum() / w.sum()
