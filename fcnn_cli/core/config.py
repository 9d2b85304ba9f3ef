"""The options of a network and of its training, each checked here, once.

Kept free of torch, numpy and pandas so that the command line can reject a bad option at once,
before any heavy library loads. Every option is here, in one module of over 400 lines, because
the command line, configuration files and run directories all take the one list of fields
below; the checks of values that several commands share (columns, position, bins, threshold)
sit beside the fields they check.
"""

import math
import numbers
import operator
import typing
from dataclasses import asdict, dataclass, field, fields, replace

from fcnn_cli.core.errors import FcnnError, shown

# The activations by name, each with the torch.nn module that computes it (by name: no torch here).
ACTIVATIONS = {"relu": "ReLU", "leaky-relu": "LeakyReLU", "elu": "ELU", "selu": "SELU",
               "silu": "SiLU", "gelu": "GELU", "tanh": "Tanh", "sigmoid": "Sigmoid",
               "softplus": "Softplus"}
ARCHITECTURES = ("plain", "resnet", "batchnorm", "selu")
# Embeddings of each numerical feature before the first layer (docs/training.md), and the width
# of each feature's embedding that each takes by default (rtdl-num-embeddings' defaults).
EMBEDDINGS = {"none": None, "linear": 32, "periodic": 24}
# The defaults of the options of periodic embeddings alone.
PERIODIC = {"embed_frequencies": 48, "embed_sigma": 0.01}
INITS = ("glorot-normal", "he", "lecun")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "plateau", "none")
# The validation figures --best-by chooses from (engine/selection.py computes them).
BEST_BY = ("auto", "loss", "brier", "accuracy")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "tf32", "bf16")  # of matrix products; weights and optimiser stay fp32
TASKS = ("auto", "regress", "classify")
CURVES = ("robust", "quantile")  # feature scalings that are not affine (data.preprocess)
SCALINGS = ("standard", "max", "minmax", "none", *CURVES)
BINARY_OUTPUTS = ("softmax", "sigmoid")
CLASS_WEIGHTS = ("none", "balanced")
NAN_POLICIES = ("error", "drop", "fill")
NEGATIVE_WEIGHTS = ("keep", "zero", "abs")  # as TMVA offers: train with them, as 0, or as |w|
LOSSES = ("mse", "gaussian")  # of regression; classification has its cross-entropy
# The baselines a run can train beside its network, by name: network.baseline.BASELINES holds
# what each is (a test keeps the two in step; this one is here so that a bad name is answered
# before anything heavy loads).
BASELINE_NAMES = ("gbdt", "locator")
# A working point, as --working-point gives it: the signal efficiency or the background
# efficiency it is chosen at.
WORKING_POINTS = {"eff": "signal_efficiency", "bkg": "background_efficiency"}
MAX_MEMBERS = 1024
# A categorical feature of more levels than its one-hot inputs may take gets a learned embedding
# (network/levels.py), up to this many levels: beyond, the column is refused (docs/training.md).
MAX_EMBEDDED = 100_000
# The fields of NetConfig that the data make, not options: the sizes and the level embeddings.
MADE_BY_DATA = ("n_in", "n_out", "levels")
MAX_FOLDS = 64  # k-fold training: more folds than this train near-copies of one network
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
# The most epochs, rows per batch, epochs of patience or rows of a shuffle buffer: a count past it
# is a typo (a configuration file's integers reach 2**63 and beyond), not a run that would end.
MAX_COUNT = 2 ** 31 - 1
# Without --epochs a run passes about EPOCH_ROWS training rows: a small table takes more epochs
# than a large one, which bench/tabular.py found to pay (docs/training.md quotes it).
EPOCH_ROWS, EPOCHS_FEWEST, EPOCHS_MOST = 1_000_000, 60, 500
# Without --epochs and --ensemble, a table of fewer than SMALL_ROWS training rows trains
# SMALL_MEMBERS members: their mean did as well as one network or better on every table of
# bench/tabular.py (of up to 3 000 training rows), at 2-5 times the time (docs/training.md).
SMALL_ROWS, SMALL_MEMBERS = 5_000, 5
# Without --width and --depth, a table whose origin time is unknown (an earthquake table of
# relative picks: fcnn_cli/data/arrivals.py) trains a network this wide and deep: on 20 000
# realistic events it located 30-40 % better than 3 × 64 in twice the time
# (docs/earthquakes.md).
UNKNOWN_ORIGIN_NET = {"width": 128, "depth": 4}


# Every option of a run is a field below, written once: its name, type and default are the
# field's, and option() adds the help text and what the command line needs beyond them. The
# command line makes its flags from these fields (``--batch-size`` from ``batch_size``; a bool
# gets ``--x/--no-x``), a configuration file takes the same names as keys, and the run directory
# writes them back. A new option is one more field with option(...) and a check in
# __post_init__, nothing else.
def option(default, help, *, choices=None, flags=None, bounds=None, metavar=None, repeat=False,
           comma=False, argument=False, path=None, unset=...):
    """A field that is an option of the command line and a key of configuration files.

    ``choices``: the names it takes (one of the tables above); ``flags``: its spelling when not
    ``--`` and its name with dashes; ``bounds``: the (lowest, highest) whole number it takes;
    ``repeat``/``comma``: a list given by repeating the flag, or as one comma-separated value;
    ``argument``: a positional argument; ``path``: "file" or "dir" where the value names one
    (for shell completion; the value is checked where it is opened); ``unset``: the command
    line's default where it differs from the field's (None: the library decides, as with
    dropout)."""
    spec = {"help": help, "choices": tuple(choices) if choices else None, "flags": flags,
            "bounds": bounds, "metavar": metavar, "repeat": repeat, "comma": comma,
            "argument": argument, "path": path}
    if unset is not ...:
        spec["unset"] = unset
    return field(default=default, metadata=spec)


def option_fields(cls):
    """The fields of an options dataclass that are options (``n_in`` and ``n_out`` are not)."""
    return [f for f in fields(cls) if "help" in f.metadata]


def kinds(f):
    """The types a field's value may have: ``(int,)``, ``(str, NoneType)`` …"""
    return typing.get_args(f.type) or (f.type,)


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
    depth: int = option(3, "Number of hidden layers.")
    width: int = option(64, "Nodes per hidden layer.")
    activation: str | None = option(None, "Default: silu (selu for --arch selu).",
                                    choices=ACTIVATIONS)
    arch: str = option("plain", "Network architecture; see docs/training.md.",
                       choices=ARCHITECTURES)
    batchnorm: bool = option(False, "Batch normalisation in every hidden layer (implied by "
                             "--arch batchnorm).")
    init: str | None = option(None, "Weight initialisation (biases start at zero). Default: "
                              "glorot-normal (lecun for --arch selu).", choices=INITS)
    dropout: float = option(0.0, "Dropout rate (alpha-dropout for selu). Default: 0.1 for "
                            "classification, 0 for regression.", unset=None)
    embed: str = option("none", "Embed each feature before the first layer: linear (linear, "
                        "ReLU) or periodic (sin and cos of learned frequencies, linear, ReLU); "
                        "see docs/training.md.", choices=EMBEDDINGS)
    embed_dim: int | None = option(None, "Values in each feature's embedding. Default: 24 for "
                                   "--embed periodic, 32 for linear.")
    embed_frequencies: int | None = option(None, "Frequencies of each feature in --embed "
                                           "periodic. Default: 48.")
    embed_sigma: float | None = option(None, "Standard deviation of the initial frequencies "
                                       "of --embed periodic (in cycles per standard deviation "
                                       "of the feature): larger fits sharper effects. "
                                       "Default: 0.01.")
    # The categorical inputs with a learned embedding, each [its input position, the rows of
    # its table (its levels and the unknown one), its width]; not an option: the data make it.
    levels: list = field(default_factory=list)

    def __post_init__(self):
        _check_types(self)
        if self.arch not in ARCHITECTURES:
            raise FcnnError(f"unknown architecture {self.arch!r}; "
                            f"choose from {', '.join(ARCHITECTURES)}", ("arch",))
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
        if self.embed_dim is None:
            self.embed_dim = EMBEDDINGS.get(self.embed)
        for key, default in PERIODIC.items():  # periodic's alone: given elsewhere, refused
            if self.embed == "periodic" and getattr(self, key) is None:
                setattr(self, key, default)
        checks = [
            (self.n_in >= 1, f"the network needs at least one input, not {self.n_in}"),
            (self.n_out >= 1, f"the network needs at least one output, not {self.n_out}"),
            (1 <= self.depth <= 1000, f"depth must be between 1 and 1000, not {self.depth}",
             "depth"),
            (1 <= self.width <= 65536, f"width must be between 1 and 65536, not {self.width}",
             "width"),
            (self.activation in ACTIVATIONS, f"unknown activation {self.activation!r}; "
             f"choose from {', '.join(ACTIVATIONS)}", "activation"),
            (self.init in INITS, f"unknown init {self.init!r}; choose from {', '.join(INITS)}",
             "init"),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), not {self.dropout}",
             "dropout"),
            *self._embedding_checks(),
            (_level_tables(self.levels, self.n_in), "levels must be [input, rows, width] "
             f"triples of whole numbers, inputs ascending below n_in, 2 to {MAX_EMBEDDED + 2} "
             "rows, widths of 1 to 1024"),
            (self.embed == "none" or not self.levels, "embed applies to numerical features: "
             "leave it out with a categorical feature of more than 64 levels, which has an "
             "embedding of its own", "embed"),
        ]
        _refuse_failed(checks)

    def _embedding_checks(self):
        return [
            (self.embed in EMBEDDINGS, f"unknown embedding {self.embed!r}; choose from "
             f"{', '.join(EMBEDDINGS)}", "embed"),
            (self.embed_dim is None or 1 <= self.embed_dim <= 1024,
             f"embed_dim must be between 1 and 1024, not {self.embed_dim}", "embed_dim"),
            (self.embed != "none" or self.embed_dim is None,
             "embed_dim applies to an embedding: leave it out with embed='none'", "embed_dim",
             "embed"),
            *[(self.embed == "periodic" or getattr(self, key) is None,
               f"{key} applies to embed='periodic' alone: leave it out with embed="
               f"{self.embed!r}", key, "embed") for key in PERIODIC],
            (self.embed_frequencies is None or 1 <= self.embed_frequencies <= 1024,
             f"embed_frequencies must be between 1 and 1024, not {self.embed_frequencies}",
             "embed_frequencies"),
            (self.embed_sigma is None or 0.0 < self.embed_sigma <= 100.0,
             f"embed_sigma must be above 0 and at most 100, not {self.embed_sigma}",
             "embed_sigma"),
        ]

    def to_dict(self):
        d = asdict(self)
        if not d["levels"]:  # a network without: its record as before
            del d["levels"]
        return d

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TrainConfig:
    """How to train; every option is checked here, once."""

    epochs: int | None = option(None, "Passes over the training data. Default: as many as "
                                "pass about a million training rows, at least 60 and at most "
                                "500 (given, a small table trains one network unless "
                                "--ensemble asks for more).")
    batch_size: int = option(32, "Rows per minibatch.")
    lr: float = option(1e-3, "Learning rate.")
    optimizer: str = option("adam", "sgd uses --momentum.", choices=OPTIMIZERS)
    momentum: float = option(0.9, "Momentum for sgd.")
    weight_decay: float = option(0.0, "L2 weight decay.")
    schedule: str = option("cosine", "Learning rate schedule: cosine decay to zero over all "
                           "steps, or halve on a validation plateau.", choices=SCHEDULES)
    patience: int = option(0, "Stop after this many epochs without a better validation "
                           "figure (--best-by) (0: never).")
    best_by: str = option("auto", "The validation figure whose best epoch's weights are kept: "
                          "the loss, or for classification the Brier score or accuracy. auto: "
                          "brier for classification, loss for regression.",
                          choices=BEST_BY)
    ema: float = option(0.998, "Validate and keep a running average of the weights with this "
                        "decay per step (0: the last step's weights).")
    val_frac: float = option(0.05, "Share of rows for validation.")
    test_frac: float = option(0.05, "Share of rows held out for testing (none when --test FILE "
                              "is given).")
    scale: str = option("standard", "Feature scaling, fitted on the training split: robust "
                        "clips outliers smoothly, quantile maps each feature onto a normal.",
                        choices=SCALINGS)
    task: str = option("auto", "auto: text, boolean or categorical labels give classification, "
                       "real numbers regression; integers with few values must be told.",
                       choices=TASKS)
    seed: int = option(0, "Random seed (0 to 2**63 - 1): the same seed gives the same result.",
                       bounds=(0, MAX_SEED))
    device: str = option("auto", "auto takes a GPU when there is one and the network and batch "
                         "are large enough for it to be faster (see docs/clusters.md).",
                         choices=DEVICES)
    threads: int | None = option(None, "CPU threads (default: one for small networks, else "
                                  "timed among the CPUs this process may use).")
    diagnostics: bool = option(False, "Record per-layer gradient norms and activation moments "
                               "every epoch (diagnostics.csv) and warn of vanishing or exploding "
                               "gradients.")
    binary_output: str = option("softmax", "Two classes: two softmax nodes, or one sigmoid node.",
                                choices=BINARY_OUTPUTS)
    class_weight: str = option("none", "balanced: weigh each class in the loss by n / (classes × "
                               "its count).", choices=CLASS_WEIGHTS)
    nan: str = option("error", "Rows with NaN, missing or infinite values: stop with an error "
                      "that counts them, leave them out, or fill: each feature's missing values "
                      "take its training median, and a 0/1 <feature>_missing feature is added "
                      "for each feature that had any.", choices=NAN_POLICIES)
    negative_weights: str = option("keep", "Events of negative weight: train with them as they "
                                   "are, as weight 0, or with |weight| (metrics always take the "
                                   "weights as they are).", choices=NEGATIVE_WEIGHTS)
    fast: bool = option(True, "The autograd-free training step for plain networks; --no-fast "
                        "uses autograd everywhere.")
    precision: str = option("fp32", "Matrix products in fp32, tf32 (GPUs only: a CPU computes "
                            "fp32, with a warning) or bf16 (autocast on a GPU or a CPU, with "
                            "the autograd step); weights and optimiser state stay fp32.",
                            choices=PRECISIONS)
    position: list | None = option(None, "The labels that form a point, for distance metrics "
                                   "and maps. Default: labels named like x, y (z).",
                                   comma=True, metavar="COL,COL[,COL]")
    stream: bool = option(False, "Read DATA (a Parquet file, or a directory of them) piece by "
                          "piece every epoch instead of all at once: for tables larger than "
                          "memory.")
    loss: str = option("mse", "Regression loss: squared error, or gaussian: a mean and a "
                       "variance per label, trained on the Gaussian negative log-likelihood "
                       "(predict then writes <label>_std).", choices=LOSSES)
    ensemble: int | None = option(None, "Train this many members together in one vectorised "
                                  "pass; member k takes seed + k. Predictions are their mean "
                                  f"and spread. Default: {SMALL_MEMBERS} on a table of fewer "
                                  f"than {SMALL_ROWS:,} training rows where --epochs is left "
                                  "out too, else 1 (and 1 with --folds, --stream, "
                                  "--diagnostics, several processes, --schedule plateau, or "
                                  "where the members would not fit in memory).", metavar="K")
    shuffle_buffer: int = option(1_000_000, "With --stream: rows held to mix the rows of the "
                                 "file's pieces.", metavar="ROWS")
    folds: int = option(1, "k-fold training: K networks in one vectorised pass, network k "
                        "trained on the rows outside fold k and validated on fold k, so that "
                        "every row is scored by a network that never saw it (1: off; 2 to "
                        f"{MAX_FOLDS}).", metavar="K")
    fold_by: str | None = option(None, "With --folds: a row's fold from a hash of this column's "
                                 "value (an event number: an event falls in the same fold in "
                                 "every file and run), not of its row position and --seed.",
                                 metavar="COLUMN")
    signal: str | None = option(None, "Classification: the class that is signal in the figures "
                                "of merit (efficiencies, rejection, working point, "
                                "significance), the others background; by default a class "
                                "named signal, else the second of two.", metavar="CLASS")
    working_point: str | None = option(None, "Classification: the cut on the signal's score "
                                       "at this signal efficiency (eff=0.7) or background "
                                       "efficiency (bkg=0.01), found on the validation split "
                                       "and kept in the model: predict's class column is "
                                       "signal where the score passes it.",
                                       metavar="eff=E|bkg=B")
    yields: bool = option(False, "The event weights are expected yields: add the significance "
                          "scan (S, B, S/√B, Z_Asimov over the cut) to the figures of merit.")
    lumi: float | None = option(None, "Integrated luminosity that makes the event weights "
                                "expected yields (weight × LUMI events): adds the significance "
                                "scan, as --yields does.", metavar="LUMI")
    baseline: str | None = option(None, "Train this baseline on the same split, weights and "
                                  "features, and report it beside the network (gbdt: pip "
                                  "install 'fcnn[gbdt]'; locator: earthquakes' classical "
                                  "location).", choices=BASELINE_NAMES)

    def __post_init__(self):
        _check_types(self)
        checks = [
            _count("epochs", 1 if self.epochs is None else self.epochs, 1),
            _count("batch_size", self.batch_size, 1),
            (math.isfinite(self.lr) and self.lr > 0,
             f"lr must be finite and > 0, not {self.lr}", "lr"),
            (self.optimizer in OPTIMIZERS, _unknown("optimizer", self.optimizer, OPTIMIZERS),
             "optimizer"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), not {self.momentum}",
             "momentum"),
            (math.isfinite(self.weight_decay) and self.weight_decay >= 0,
             f"weight_decay must be finite and ≥ 0, not {self.weight_decay}", "weight_decay"),
            (self.schedule in SCHEDULES, _unknown("schedule", self.schedule, SCHEDULES),
             "schedule"),
            _count("patience", self.patience, 0),
            (self.best_by in BEST_BY, _unknown("best-by figure", self.best_by, BEST_BY),
             "best_by"),
            (self.task != "regress" or self.best_by in ("auto", "loss"),
             classes_only(self.best_by), "best_by", "task"),
            (0 <= self.ema < 1, f"ema must be in [0, 1), not {self.ema}", "ema"),
            (0 <= self.val_frac < 1, f"val_frac must be in [0, 1), not {self.val_frac}",
             "val_frac"),
            (0 <= self.test_frac < 1, f"test_frac must be in [0, 1), not {self.test_frac}",
             "test_frac"),
            (self.val_frac + self.test_frac < 1, "val_frac plus test_frac must be below 1",
             "val_frac", "test_frac"),
            (self.scale in SCALINGS, _unknown("scaling", self.scale, SCALINGS), "scale"),
            (self.task in TASKS, _unknown("task", self.task, TASKS), "task"),
            (valid_seed(self.seed), SEED_MESSAGE.format(seed=self.seed), "seed"),
            (self.device in DEVICES, _unknown("device", self.device, DEVICES), "device"),
            (self.threads is None or 1 <= self.threads <= MAX_THREADS,
             f"threads must be between 1 and {MAX_THREADS}, not {self.threads}", "threads"),
            (self.binary_output in BINARY_OUTPUTS,
             _unknown("binary output", self.binary_output, BINARY_OUTPUTS), "binary_output"),
            (self.class_weight in CLASS_WEIGHTS,
             _unknown("class weight", self.class_weight, CLASS_WEIGHTS), "class_weight"),
            (self.nan in NAN_POLICIES, _unknown("NaN policy", self.nan, NAN_POLICIES), "nan"),
            (self.negative_weights in NEGATIVE_WEIGHTS,
             _unknown("negative-weight policy", self.negative_weights, NEGATIVE_WEIGHTS),
             "negative_weights"),
            (self.precision in PRECISIONS, _unknown("precision", self.precision, PRECISIONS),
             "precision"),
            _count("shuffle_buffer", self.shuffle_buffer, 0),
            (self.loss in LOSSES, _unknown("loss", self.loss, LOSSES), "loss"),
            (self.ensemble is None or 1 <= self.ensemble <= MAX_MEMBERS,
             f"ensemble must be between 1 and {MAX_MEMBERS} members, not {self.ensemble}",
             "ensemble"),
            (not valid_seed(self.seed) or self.seed + (self.ensemble or 1) - 1 <= MAX_SEED,
             f"seed + ensemble - 1 (the last member's seed) must be at most {MAX_SEED}",
             "seed", "ensemble"),
        ]
        _refuse_failed(checks)
        _check_folds(self)
        check_position(self.position)
        _check_merit(self)
        # Last: a sweep that meets Unsupported knows every other option is sound.
        refuse_in_ensemble(self)

    def planned(self, rows):
        """This configuration with its number of epochs: as given, or from the number of
        training ``rows`` (see EPOCH_ROWS)."""
        if self.epochs is not None:
            return self
        return replace(self, epochs=min(max(-(-EPOCH_ROWS // max(rows, 1)), EPOCHS_FEWEST),
                                        EPOCHS_MOST))

    def leaves_members(self, rows):
        """Whether fcnn may choose SMALL_MEMBERS members for this run (where the run can train
        them): ``ensemble`` and ``epochs`` left out (a run whose length is given trains as
        told) on a table of fewer than SMALL_ROWS training ``rows``, the members' seeds within
        range."""
        return (self.ensemble is None and self.epochs is None and rows < SMALL_ROWS
                and self.seed + SMALL_MEMBERS - 1 <= MAX_SEED)


def _check_folds(config):
    """k-fold training's options: the number of folds, the fold column, and the options the
    folds' one pass of the ensemble engine does not train with."""
    k = config.folds
    checks = [
        (1 <= k <= MAX_FOLDS, f"folds must be 1 (off) or from 2 to {MAX_FOLDS}, not {k}",
         "folds"),
        (config.fold_by is None or (isinstance(config.fold_by, str) and config.fold_by.strip()),
         f"fold_by must name a column, not {shown(config.fold_by)}", "fold_by"),
        (config.fold_by is None or k > 1, "fold_by needs folds=K of 2 or more", "fold_by",
         "folds"),
        (k == 1 or not config.stream, f"folds={k}: the networks train together on a table in "
         "memory, not a streamed one; leave out stream", "folds", "stream"),
        (k == 1 or not config.diagnostics, f"folds={k}: the networks train together and "
         "record no diagnostics; leave out diagnostics", "folds", "diagnostics"),
        (not valid_seed(config.seed) or config.seed + k - 1 <= MAX_SEED,
         f"seed + folds - 1 (the last fold's network's seed) must be at most {MAX_SEED}",
         "seed", "folds"),
    ]
    _refuse_failed(checks)


def _check_merit(config):
    """The options of the figures of merit: a signal class's name, a working point, a
    luminosity and a baseline's name."""
    signal = config.signal
    checks = [
        (signal is None or (isinstance(signal, str) and signal.strip() != ""),
         f"signal must name a class, not {shown(signal)}", "signal"),
        (config.lumi is None or (math.isfinite(config.lumi) and config.lumi > 0),
         f"lumi must be finite and > 0, not {config.lumi}", "lumi"),
        (config.baseline is None or config.baseline in BASELINE_NAMES,
         _unknown("baseline", config.baseline, BASELINE_NAMES), "baseline"),
    ]
    _refuse_failed(checks)
    parse_working_point(config.working_point)


def parse_working_point(text):
    """``(key, value)`` of a working point ``eff=E`` or ``bkg=B`` (key ``signal_efficiency`` or
    ``background_efficiency``, value in (0, 1]); None for None."""
    if text is None:
        return None
    name, _, value = str(text).partition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if name.strip() not in WORKING_POINTS or number is None or not 0 < number <= 1:
        raise FcnnError(f"working_point must be eff=E (a signal efficiency) or bkg=B (a "
                        f"background efficiency), E or B in (0, 1], not {shown(text)}",
                        ("working_point",))
    return WORKING_POINTS[name.strip()], number


class Unsupported(FcnnError):
    """Options that an ensemble does not train with (a sweep trains its seeds one by one
    then)."""


def refuse_in_ensemble(config, members=None):
    """The options an ensemble does not train with, each with the reason (what only the data or
    the processes or the network's step tell, :mod:`fcnn_cli.engine.ensemble` refuses).
    ``members``: of the pass, where it holds more than ``config`` asks for (a sweep's cohorts of
    one member)."""
    members = members or config.ensemble or 1  # None: the run decides, never where refused
    if config.folds > 1 and members > 1:
        # The folds are the members of one pass already; each fold an ensemble of its own
        # would make a checkpoint of folds × members that predict could not tell apart.
        raise Unsupported(f"folds={config.folds} trains its networks as the members of one "
                          f"pass; it does not combine with {members} members (ensemble, or a "
                          "sweep's seeds in one pass)", ("folds", "ensemble"))
    if members == 1:
        return
    cases = [
        (config.stream, "train on tables in memory, not streamed ones"),
        (config.diagnostics, "record no diagnostics"),
    ]
    for refused, why in cases:
        if refused:
            raise Unsupported(f"ensemble={members}: the members {why}; train single "
                              "networks for this", ("ensemble",))


@dataclass
class DataConfig:
    """What a run trains on: its tables, and which of their columns are labels and features.
    Paths as given; columns None where the table's recorded labels and the other numeric
    columns are meant."""

    data: str | None = option(None, "The training table.", argument=True, path="file")
    targets: list | None = option(None, "A label column; repeat for several. Default: the labels "
                                  "recorded in the file.", flags=("-t", "--target"), repeat=True)
    features: list | None = option(None, "Feature columns. Default: every other numeric column, "
                                   "and those of text or booleans of at most 64 levels.",
                                   metavar="A,B,…", comma=True)
    categorical: list | None = option(None, "Feature columns of levels, one-hot encoded up "
                                      "to 64 levels, beyond with a learned embedding (up to "
                                      "100 000): integers such as PDG ids (--categorical pdg), "
                                      "or a station of many; text and boolean features of up "
                                      "to 64 levels are by default.", metavar="A,B,…",
                                      comma=True)
    val: str | None = option(None, "Validation table, instead of a split of DATA.",
                             metavar="FILE", path="file")
    test: str | None = option(None, "Test table, scored at the end, instead of holding out "
                              "--test-frac of DATA.", metavar="FILE", path="file")
    samples: list | None = option(None, "A sample: its files (globs and directories too) give "
                                  "rows of class NAME, each event's weight times SCALE; repeat "
                                  "for each process. Instead of DATA.", flags=("--sample",),
                                  repeat=True, metavar="NAME=FILE[,FILE…][*SCALE]")
    weight: str | None = option(None, "Event weight: a column, or an expression of columns.",
                                metavar="EXPR")
    where: str | None = option(None, "Keep only the rows where EXPR is true, before the split "
                               "(e.g. 'NMuon >= 2 && pt1 > 20', \"region == 'barrel'\").",
                               metavar="EXPR")
    define: list | None = option(None, "A derived column NAME from an expression of columns; "
                                 "repeat, in order (later ones may use earlier ones).",
                                 repeat=True, metavar="NAME=EXPR")
    objects: list | None = option(None, "The leading K objects of a collection of list "
                                  "columns (Muon:2 gives Muon_Px_0, Muon_Px_1, …), padded.",
                                  repeat=True, metavar="NAME:K")

    def __post_init__(self):
        _check_types(self)
        for name in ("targets", "features", "categorical"):
            names = getattr(self, name)
            if names is not None:
                if not names or not all(isinstance(c, str) and c for c in names):
                    raise FcnnError(f"{name} must be a list of column names, not "
                                    f"{shown(names)}", (name,))
                setattr(self, name, list(names))
        for name in ("samples", "define", "objects"):
            items = getattr(self, name)
            if items is not None:
                # A sample may be a table too: a configuration file's [samples.NAME].
                if not all(isinstance(c, str) and c.strip() or name == "samples" and
                           isinstance(c, dict) for c in items):
                    raise FcnnError(f"{name} must be a list of texts, not {shown(items)}",
                                    (name,))
                setattr(self, name, list(items) or None)
        check_columns(self.targets, self.features, self.categorical)


def classes_only(best_by):
    """Why a regression takes no ``best_by`` figure of classes."""
    return (f"best_by={best_by} scores classes; a regression keeps the epoch of the lowest "
            "validation loss (best_by=loss)")


def _count(name, value, lowest):
    """The check of a whole number of epochs, rows …: from ``lowest`` to MAX_COUNT."""
    bound = (f"at least {lowest}" if lowest else "≥ 0") if value < lowest else \
        f"at most {MAX_COUNT}"
    return lowest <= value <= MAX_COUNT, f"{name} must be {bound}, not {value}", name


def _unknown(what, value, names):
    return f"unknown {what} {value!r}; choose from {', '.join(names)}"


def _refuse_failed(checks):
    """Raise the message of the first check not passed; a check is ``(ok, message, *options)``,
    with the options its message names."""
    for ok, message, *options in checks:
        if not ok:
            raise FcnnError(message, options)


def _level_tables(levels, n_in):
    """Whether ``levels`` (NetConfig's) are [input, rows, width] triples of whole numbers,
    their inputs ascending below ``n_in``."""
    whole = all(isinstance(t, list) and len(t) == 3 and
                all(isinstance(v, int) and not isinstance(v, bool) for v in t) for t in levels)
    return whole and all(2 <= rows <= MAX_EMBEDDED + 2 and 1 <= width <= 1024
                         for _, rows, width in levels) and \
        [p for p, _, _ in levels] == sorted({p for p, _, _ in levels if 0 <= p < n_in})


def _check_types(config):
    """Each field holds a value of its annotated type (an int serves as a float): options read
    back from a file or given from Python fail here, not deep inside training."""
    for f in fields(config):
        setattr(config, f.name, typed(f, getattr(config, f.name)))


def typed(f, value, none=True):
    """``value`` as field ``f`` holds it, or the error that names the field, the value and the
    type the field wants (without "or none" where ``none`` is false: TOML has no none)."""
    kind = next((k for k in kinds(f) if _is_a(value, k) and (none or k is not type(None))), None)
    if kind is None:
        names = " or ".join(KIND_NAMES[k] for k in kinds(f) if none or k is not type(None))
        raise FcnnError(f"{f.name} must be {names}, not {shown(value)}",
                        () if f.name in MADE_BY_DATA else (f.name,))
    if kind in (int, float):  # numpy's numbers become Python's: JSON writes only these
        return kind(value)
    return value


KIND_NAMES = {int: "an integer", float: "a number", str: "a name", bool: "true or false",
              list: "a list of names", type(None): "none"}


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


def check_columns(targets=(), features=(), categorical=()):
    """Label and feature columns as named in options: each once, none in both roles; the
    categorical ones among the features, where these are named."""
    for names, option in ((targets, "targets"), (features, "features"),
                          (categorical, "categorical")):
        twice = repeated(names or ())
        if twice is not None:
            raise FcnnError(f"{option} names column {twice!r} twice", (option,))
    both = [c for c in [*(features or ()), *(categorical or ())] if c in set(targets or ())]
    if both:
        raise FcnnError(f"column {both[0]!r} is both a label and a feature")
    outside = [c for c in categorical or () if features and c not in features]
    if outside:
        raise FcnnError(f"categorical column {outside[0]!r} is not one of the features",
                        ("categorical",))


def check_position(position):
    """The labels named as one point's coordinates: 2 or 3 names, each once."""
    if position is None:
        return
    if not (isinstance(position, (list, tuple)) and all(isinstance(c, str) for c in position)):
        raise FcnnError(f"position must be a list of 2 or 3 column names, not {shown(position)}",
                        ("position",))
    if len(position) not in (2, 3):
        raise FcnnError(f"position names the 2 or 3 labels of a point, not {len(position)} "
                        f"({', '.join(map(repr, position))})", ("position",))
    twice = repeated(position)
    if twice is not None:
        raise FcnnError(f"position names column {twice!r} twice", ("position",))


MAX_BINS = 1000  # per column: a table or a map of more says nothing more
MAX_TOTAL_BINS = 10_000  # over both columns: what a JSON report or a map holds legibly


def check_bins(by, bins=None, edges=None):
    """Bins of 1 or 2 columns: ``bins`` equal bins over each one's range, or ``edges`` (one
    list of increasing finite numbers per column), not both."""
    by = list(by or ())
    if not by:
        if bins is not None or edges:
            raise FcnnError("bins and edges need by, the column to bin by", ("bins", "edges", "by"))
        return
    if len(by) > 2:
        raise FcnnError(f"by takes 1 or 2 columns, not {len(by)}", ("by",))
    if repeated(by) is not None:
        raise FcnnError(f"by names column {by[0]!r} twice", ("by",))
    if bins is not None and edges:
        raise FcnnError("give bins or edges, not both", ("bins", "edges"))
    if bins is not None and not 1 <= bins <= MAX_BINS:
        raise FcnnError(f"bins must be between 1 and {MAX_BINS}, not {bins}", ("bins",))
    if edges:
        if len(edges) != len(by):
            raise FcnnError(f"edges: give one list for each of the {len(by)} by column(s), "
                            f"not {len(edges)}", ("edges", "by"))
        for e in edges:
            if not (2 <= len(e) <= MAX_BINS + 1 and all(math.isfinite(v) for v in e)
                    and all(a < b for a, b in zip(e, e[1:]))):
                raise FcnnError(f"edges must be 2 to {MAX_BINS + 1} finite numbers in "
                                f"increasing order, not {','.join(map(str, e))}", ("edges",))
    total = math.prod(len(e) - 1 for e in edges) if edges else (bins or 0) ** len(by)
    if total > MAX_TOTAL_BINS:
        raise FcnnError(f"{total} bin cells in all over {' and '.join(by)}: at most "
                        f"{MAX_TOTAL_BINS}; give fewer bins or edges", ("bins", "edges"))


def check_threshold(threshold):
    """A decision threshold is a probability: in [0, 1], and a number (not NaN)."""
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise FcnnError(f"threshold must be in [0, 1], not {threshold}", ("threshold",))
