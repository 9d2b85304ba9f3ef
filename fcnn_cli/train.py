"""The training loop: split, scale, fit with minibatches, keep the best-on-validation weights."""

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from fcnn_cli import metrics
from fcnn_cli.errors import FcnnError
from fcnn_cli.preprocess import SCALINGS, Scaler
from fcnn_cli.tables import is_numeric, numeric_matrix, select_columns

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "plateau", "none")
DEVICES = ("auto", "cpu", "cuda")
TASKS = ("auto", "regress", "classify")
DIAGNOSTIC_ROWS = 256  # the fixed batch on which diagnostics measure every layer


@dataclass
class TrainConfig:
    """How to train; every option is checked here, once."""

    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine decay to zero over all steps; plateau halves on stalls
    patience: int = 0  # stop after this many epochs without a better validation loss; 0: never
    val_frac: float = 0.05
    test_frac: float = 0.05
    scale: str = "standard"
    task: str = "auto"
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    diagnostics: bool = False  # per-layer gradient norms and activation moments, every epoch

    def __post_init__(self):
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1, not {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, not {self.batch_size}"),
            (math.isfinite(self.lr) and self.lr > 0, f"--lr must be positive, not {self.lr}"),
            (self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), not {self.momentum}"),
            (self.weight_decay >= 0, f"--weight-decay must be ≥ 0, not {self.weight_decay}"),
            (self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}"),
            (self.patience >= 0, f"--patience must be ≥ 0, not {self.patience}"),
            (0 <= self.val_frac < 1, f"--val-frac must be in [0, 1), not {self.val_frac}"),
            (0 <= self.test_frac < 1, f"--test-frac must be in [0, 1), not {self.test_frac}"),
            (self.val_frac + self.test_frac < 1, "--val-frac plus --test-frac must be below 1"),
            (self.scale in SCALINGS, f"unknown scaling {self.scale!r}"),
            (self.task in TASKS, f"unknown task {self.task!r}"),
            (self.device in DEVICES, f"unknown device {self.device!r}"),
            (self.threads is None or self.threads >= 1, f"--threads must be ≥ 1, not {self.threads}"),
        ]
        for ok, message in checks:
            if not ok:
                raise FcnnError(message)


@dataclass
class TrainResult:
    predictor: object
    config: TrainConfig
    history: list  # one dict per epoch
    metrics: dict  # "train", "val" and (if a test split was held out) "test" reports
    sizes: dict = field(default_factory=dict)  # rows in each split
    stopped: str = "completed"  # or why training ended early
    diagnostics: list = field(default_factory=list)  # rows from diagnostics.Probe
    warnings: list = field(default_factory=list)  # what the diagnostics found worrying


def resolve_device(name):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FcnnError("--device cuda: no CUDA GPU is available here (try --device cpu)")
    return torch.device(name)


def split_indices(n, val_frac, test_frac, seed):
    """Shuffled, disjoint train/validation/test row indices, repeatable for a seed."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_frac))
    n_val = int(round(n * val_frac))
    return perm[n_test + n_val:], perm[n_test:n_test + n_val], perm[:n_test]


def fit(table, config=None, net=None, targets=None, features=None, val_table=None,
        on_epoch=None):
    """Train a network on ``table``; ``net`` holds NetConfig options besides the sizes.

    ``val_table`` replaces the validation split. ``on_epoch`` is called with each history row.
    """
    import torch

    from fcnn_cli.model import MLP, NetConfig
    from fcnn_cli.predictor import Predictor

    config = config or TrainConfig()
    features, targets = select_columns(table, targets, features)
    _check_task(table, targets, config.task)
    x_all = numeric_matrix(table, features)
    y_all = numeric_matrix(table, targets)
    if val_table is None:
        train_idx, val_idx, test_idx = split_indices(len(x_all), config.val_frac,
                                                     config.test_frac, config.seed)
        x_val, y_val = x_all[val_idx], y_all[val_idx]
    else:
        train_idx, _, test_idx = split_indices(len(x_all), 0.0, config.test_frac, config.seed)
        _check_columns(val_table, features + targets)
        x_val, y_val = numeric_matrix(val_table, features), numeric_matrix(val_table, targets)
    x_train, y_train = x_all[train_idx], y_all[train_idx]
    x_test, y_test = x_all[test_idx], y_all[test_idx]
    if len(x_train) < 2:
        raise FcnnError(f"{table.name}: too few rows ({len(x_all)}) to train on")
    if len(x_val) < 1:
        raise FcnnError(f"{table.name}: no rows left for validation: raise --val-frac or "
                        "give --val FILE")

    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    x_scaler = Scaler.fit(config.scale, x_train, features)
    y_scaler = Scaler.fit("standard", y_train, targets)
    torch.manual_seed(config.seed)
    model = MLP(NetConfig(n_in=len(features), n_out=len(targets), **(net or {}))).to(device)
    units = {k: v for k, v in table.units.items() if k in features + targets}
    predictor = Predictor(model, features, targets, x_scaler, y_scaler, units)

    xt = torch.from_numpy(x_scaler.transform(x_train)).to(device)
    yt = torch.from_numpy(y_scaler.transform(y_train)).to(device)
    xv = torch.from_numpy(x_scaler.transform(x_val)).to(device)
    yv = torch.from_numpy(y_scaler.transform(y_val)).to(device)
    optimizer = _optimizer(model, config)
    steps_per_epoch = math.ceil(len(xt) / config.batch_size)
    scheduler = _scheduler(optimizer, config, steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)

    probe = None
    if config.diagnostics:
        from fcnn_cli.diagnostics import Probe

        probe = Probe(model, xt[:DIAGNOSTIC_ROWS], yt[:DIAGNOSTIC_ROWS], _loss)
    diagnostics = probe.measure(0) if probe else []

    history, best_loss, best_state, best_epoch, since_best = [], math.inf, None, 0, 0
    stopped = "completed"
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        total = torch.zeros((), device=device)
        perm = torch.randperm(len(xt), generator=generator).to(device)
        for step, i in enumerate(range(0, len(xt), config.batch_size)):
            idx = perm[i:i + config.batch_size]
            if len(idx) < 2 and model.config.batchnorm:
                continue  # batch norm cannot normalise a batch of one
            loss = _loss(model(xt[idx]), yt[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if config.schedule == "cosine":
                scheduler.step()
            total += loss.detach() * len(idx)
            # Looking costs a device sync, so only now and then: enough to stop a diverged
            # run within a fraction of an epoch.
            if step % 64 == 63 and not torch.isfinite(total):
                break
        train_loss = total.item() / len(xt)
        model.eval()
        with torch.inference_mode():
            pv = model(xv)
            val_loss = _loss(pv, yv).item()
        if config.schedule == "plateau":
            scheduler.step(val_loss)
        report = metrics.regression(y_val, y_scaler.inverse(pv.float().cpu().numpy()),
                                    targets, units)
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
               "val_rmse": report["overall"]["rmse"]}
        if "distance" in report:
            row["val_mean_distance"] = report["distance"]["mean"]
        row.update(lr=lr, seconds=time.perf_counter() - start)
        history.append(row)
        if probe:
            diagnostics += probe.measure(epoch)
        if on_epoch:
            on_epoch(row)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            stopped = (f"the loss became {train_loss if not math.isfinite(train_loss) else val_loss}"
                       f" in epoch {epoch}: try a lower --lr, --arch batchnorm or --arch selu")
            log.warning("training stopped: %s; keeping the best weights so far", stopped)
            break
        if val_loss < best_loss:
            best_loss, best_epoch, since_best = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
            if config.patience and since_best >= config.patience:
                stopped = f"early stop after epoch {epoch}: no better validation loss in " \
                          f"{config.patience} epochs"
                break
    if best_state is None:
        raise FcnnError(f"training diverged at once ({stopped}); nothing worth keeping")
    model.load_state_dict(best_state)
    model.eval()

    results = {}
    for split, x, y in (("train", x_train, y_train), ("val", x_val, y_val),
                        ("test", x_test, y_test)):
        if len(x):
            results[split] = metrics.regression(y, predictor.predict_array(x), targets, units)
    predictor.info = {"train_config": asdict(config), "metrics": results, "best_epoch": best_epoch}
    sizes = {"train": len(x_train), "val": len(x_val), "test": len(x_test)}
    found = []
    if diagnostics:
        from fcnn_cli.diagnostics import warnings

        found = warnings(diagnostics)
        for message in found:
            log.warning("%s", message)
    return TrainResult(predictor, config, history, results, sizes, stopped, diagnostics, found)


def _loss(pred, target):
    # MSE summed over the outputs, averaged over the minibatch.
    return ((pred - target) ** 2).sum(dim=1).mean()


def _optimizer(model, config):
    import torch

    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _scheduler(optimizer, config, steps_per_epoch):
    import torch

    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer,
                                                          config.epochs * steps_per_epoch)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=5)
    return None


def _check_task(table, targets, task):
    categorical = [t for t in targets if not is_numeric(table.frame[t])]
    if task == "classify" or categorical:
        what = f"column {categorical[0]!r} is not numeric" if categorical else "--task classify"
        raise FcnnError(f"{table.name}: {what}: classification is not supported yet; "
                        "fcnn trains regression on numeric labels")


def _check_columns(table, columns):
    missing = [c for c in columns if c not in table.frame.columns]
    if missing:
        raise FcnnError(f"{table.name}: missing column(s) {', '.join(map(repr, missing))}")
