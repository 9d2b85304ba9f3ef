"""The options of a network and of its training, each checked here, once.

Kept free of torch, numpy and pandas so that the command line can reject a bad option at once,
before any heavy library loads.
"""

import math
import numbers
import operator
import typing
from dataclasses import asdict, dataclass, fields

from fcnn_cli.errors import FcnnError, shown

ACTIVATIONS = ("relu", "leaky-relu", "elu", "selu", "silu", "gelu", "tanh", "sigmoid",
               "softplus")
ARCHITECTURES = ("plain", "resnet", "batchnorm", "selu")
INITS = ("glorot-normal", "he", "lecun")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "plateau", "none")
DEVICES = ("auto", "cpu", "cuda")
TASKS = ("auto", "regress", "classify")
SCALINGS = ("standard", "max", "minmax", "none")
BINARY_OUTPUTS = ("softmax", "sigmoid")
CLASS_WEIGHTS = ("none", "balanced")
NAN_POLICIES = ("error", "drop")
# numpy takes any seed from 0 up, torch up to 2**64 - 1; below 2**63 a seed also fits the int64
# of any table or tool that stores it.
MAX_SEED = 2 ** 63 - 1
SEED_MESSAGE = "seed must be a whole number from 0 to " + str(MAX_SEED) + ", not {seed}"


def valid_seed(seed):
    """Whether ``seed`` is a whole number every random generator fcnn seeds accepts."""
    try:
        return 0 <= operator.index(seed) <= MAX_SEED
    except TypeError:
        return False
MAX_THREADS = 1024


@dataclass
class NetConfig:
    """Everything needed to rebuild the network; stored in every checkpoint.

    ``depth`` counts hidden layers of ``width`` nodes. ``resnet`` groups them in pairs into
    residual blocks (an odd depth starts with one plain layer); ``batchnorm`` normalises every
    hidden layer (with ``resnet`` it goes inside the blocks); ``selu`` is a self-normalising
    network: SELU, LeCun-normal weights and alpha-dropout.
    """

    n_in: int
    n_out: int
    depth: int = 3
    width: int = 64
    activation: str | None = None  # None: selu for selu, silu otherwise
    arch: str = "plain"
    batchnorm: bool = False
    init: str | None = None  # None: lecun for selu, glorot-normal otherwise
    dropout: float = 0.0

    def __post_init__(self):
        _check_types(self)
        if self.arch not in ARCHITECTURES:
            raise FcnnError(f"unknown architecture {self.arch!r}; "
                            f"choose from {', '.join(ARCHITECTURES)}")
        if self.arch == "selu":
            if self.activation not in ("selu", None):
                raise FcnnError("arch='selu' takes selu activations only; "
                                f"leave out activation={self.activation!r}",
                                ("arch", "activation"))
            if self.batchnorm:
                raise FcnnError("arch='selu' normalises itself: it does not combine with "
                                "batch normalisation", ("arch",))
            self.activation = "selu"
        if self.arch == "batchnorm":
            self.batchnorm = True
        if self.activation is None:
            self.activation = "silu"
        if self.init is None:
            self.init = "lecun" if self.arch == "selu" else "glorot-normal"
        checks = [
            (self.n_in >= 1, f"the network needs at least one input, not {self.n_in}"),
            (self.n_out >= 1, f"the network needs at least one output, not {self.n_out}"),
            (1 <= self.depth <= 1000, f"depth must be between 1 and 1000, not {self.depth}",
             "depth"),
            (1 <= self.width <= 65536, f"width must be between 1 and 65536, not {self.width}",
             "width"),
            (self.activation in ACTIVATIONS, f"unknown activation {self.activation!r}; "
             f"choose from {', '.join(ACTIVATIONS)}"),
            (self.init in INITS, f"unknown init {self.init!r}; choose from {', '.join(INITS)}"),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), not {self.dropout}",
             "dropout"),
        ]
        _refuse_failed(checks)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


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
    ema: float = 0.998  # decay per step of the weight average validated and kept; 0: none
    val_frac: float = 0.05
    test_frac: float = 0.05
    scale: str = "standard"
    task: str = "auto"
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    diagnostics: bool = False  # per-layer gradient norms and activation moments, every epoch
    binary_output: str = "softmax"  # two classes: two softmax nodes, or one sigmoid node
    class_weight: str = "none"  # "balanced": weigh each class by n / (classes × its count)
    nan: str = "error"  # rows with NaN, missing or infinite values: "error", or "drop" them
    fast: bool = True  # the autograd-free step where the network allows it (fastpath.py)
    stream: bool = False  # read the data piece by piece each epoch (stream.py), not all at once
    shuffle_buffer: int = 1_000_000  # streamed: rows held to mix the pieces' rows

    def __post_init__(self):
        _check_types(self)
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, not {self.epochs}", "epochs"),
            (self.batch_size >= 1, f"batch_size must be at least 1, not {self.batch_size}",
             "batch_size"),
            (math.isfinite(self.lr) and self.lr > 0, f"lr must be positive, not {self.lr}",
             "lr"),
            (self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), not {self.momentum}",
             "momentum"),
            (math.isfinite(self.weight_decay) and self.weight_decay >= 0,
             f"weight_decay must be finite and ≥ 0, not {self.weight_decay}", "weight_decay"),
            (self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}"),
            (self.patience >= 0, f"patience must be ≥ 0, not {self.patience}", "patience"),
            (0 <= self.ema < 1, f"ema must be in [0, 1), not {self.ema}", "ema"),
            (0 <= self.val_frac < 1, f"val_frac must be in [0, 1), not {self.val_frac}",
             "val_frac"),
            (0 <= self.test_frac < 1, f"test_frac must be in [0, 1), not {self.test_frac}",
             "test_frac"),
            (self.val_frac + self.test_frac < 1, "val_frac plus test_frac must be below 1",
             "val_frac", "test_frac"),
            (self.scale in SCALINGS, f"unknown scaling {self.scale!r}"),
            (self.task in TASKS, f"unknown task {self.task!r}"),
            (valid_seed(self.seed), SEED_MESSAGE.format(seed=self.seed), "seed"),
            (self.device in DEVICES, f"unknown device {self.device!r}"),
            (self.threads is None or 1 <= self.threads <= MAX_THREADS,
             f"threads must be between 1 and {MAX_THREADS}, not {self.threads}", "threads"),
            (self.binary_output in BINARY_OUTPUTS,
             f"unknown binary output {self.binary_output!r}"),
            (self.class_weight in CLASS_WEIGHTS, f"unknown class weight {self.class_weight!r}"),
            (self.nan in NAN_POLICIES, f"unknown NaN policy {self.nan!r}"),
            (self.shuffle_buffer >= 0,
             f"shuffle_buffer must be ≥ 0 rows, not {self.shuffle_buffer}", "shuffle_buffer"),
        ]
        _refuse_failed(checks)


def _refuse_failed(checks):
    """Raise the message of the first check not passed; a check is ``(ok, message, *options)``,
    with the options its message names."""
    for ok, message, *options in checks:
        if not ok:
            raise FcnnError(message, options)


def _check_types(config):
    """Each field holds a value of its annotated type (an int serves as a float): options read
    back from a file or given from Python fail here, not deep inside training."""
    for f in fields(config):
        value = getattr(config, f.name)
        kinds = typing.get_args(f.type) or (f.type,)
        kind = next((k for k in kinds if _is_a(value, k)), None)
        if kind is None:
            names = " or ".join(KIND_NAMES[k] for k in kinds)
            raise FcnnError(f"{f.name} must be {names}, not {shown(value)}",
                            () if f.name in ("n_in", "n_out") else (f.name,))
        if kind in (int, float):  # numpy's numbers become Python's: JSON writes only these
            setattr(config, f.name, kind(value))


KIND_NAMES = {int: "an integer", float: "a number", str: "a name", bool: "true or false",
              type(None): "none"}


def _is_a(value, kind):
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):  # a bool is an int to Python, never a number of layers
        return False
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        return isinstance(value, numbers.Real)
    return isinstance(value, kind)


def repeated(names):
    """The first name that occurs twice in ``names``, or None."""
    seen = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def check_columns(targets=(), features=()):
    """Label and feature columns as named in options: each once, none in both roles."""
    for names, option in ((targets, "targets"), (features, "features")):
        twice = repeated(names or ())
        if twice is not None:
            raise FcnnError(f"{option} names column {twice!r} twice", (option,))
    both = [c for c in features or () if c in set(targets or ())]
    if both:
        raise FcnnError(f"column {both[0]!r} is both a label and a feature")


def check_threshold(threshold):
    """A decision threshold is a probability: in [0, 1], and a number (not NaN)."""
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise FcnnError(f"threshold must be in [0, 1], not {threshold}", ("threshold",))
