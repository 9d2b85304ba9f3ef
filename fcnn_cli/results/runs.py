"""The run directory that ``fcnn train`` writes: model, metrics, history and configuration."""

import contextlib
import csv
import fcntl
import io
import json
import logging
import os
import shutil
import stat
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from fcnn_cli.network import checkpoint
from fcnn_cli.core.config import (BASELINE_NAMES, MADE_BY_DATA, NetConfig, TrainConfig,
                                  check_columns)
from fcnn_cli.core import fileio
from fcnn_cli.core.errors import FcnnError, first_line
from fcnn_cli.core.fileio import read_regular, require_writable_dir, write_text, writing
from fcnn_cli.results import statefile

RUNS_ROOT = Path("runs")
log = logging.getLogger(__name__)


def default_run_dir(data_path, root=RUNS_ROOT):
    """``runs/<data file stem>``, or the first free ``-2``, ``-3``, … beside an earlier run."""
    stem = "stdin" if str(data_path) == "-" else Path(data_path).name.split(".")[0] or "run"
    candidate, k = root / stem, 1
    while os.path.lexists(candidate):  # a dangling link takes its name too
        k += 1
        candidate = root / f"{stem}-{k}"
    return candidate


STATE_FILE = "state.pt"
LOCK_FILE = ".lock"
SAMPLE_FILE = "predictions.parquet"  # held-out rows and their predictions, for the plots
CORRELATIONS_FILE = "correlations.json"  # the training features' correlations, for the plots
PLOTS_DIR = "plots"
# What save_run may write over: none of them may be the run's data.
BASELINE_FILES = tuple(f"baseline_{name}.pt" for name in BASELINE_NAMES)  # results.baselines
RUN_FILES = ("model.pt", "metrics.json", "history.csv", "config.json", "config.toml",
             "diagnostics.csv", SAMPLE_FILE, STATE_FILE, CORRELATIONS_FILE, *BASELINE_FILES)
# What no other command may write over: the run's files, a sweep combination's record of its
# seeds or failure, and the lock (replacing it would let a second run in beside a live one).
PROTECTED_FILES = (*RUN_FILES, "seeds.json", "failed.json", LOCK_FILE)


def check_run_dir(path, force=False, inputs=()):
    """Refuse, before training starts, a run directory that cannot be made or written, one that
    holds an earlier run (unless forced), a run in progress (always), and one whose files are
    among ``inputs``. A directory that holds nothing but a lock nobody holds (a run killed
    before its first save) is reused: nothing in it can be lost."""
    path = Path(path)
    if path.is_symlink():
        try:
            os.stat(path)
        except OSError as e:  # mkdir cannot make a dangling link's target: refuse, as mkdir does
            raise FcnnError(f"{path}: is a symbolic link to {os.readlink(path)!r}: "
                            f"{e.strerror}") from None
    if path.exists() and not path.is_dir():
        raise FcnnError(f"{path}: exists and is not a directory")
    if not path.is_dir():
        ancestor = Path(os.path.abspath(path)).parent
        while not os.path.lexists(ancestor):
            ancestor = ancestor.parent
        require_writable_dir(path, ancestor)
        return
    if locked(path):
        raise _in_progress(path)
    with writing(path):
        names = {p.name for p in path.iterdir()} - {LOCK_FILE}
    if names and not force:
        if STATE_FILE in names:
            raise FcnnError(f"{path}: holds an interrupted run; continue it with: fcnn train "
                            f"--resume {path}; or choose another directory, or add force=True "
                            "to replace it", ("force",))
        raise FcnnError(f"{path}: already holds a run; choose another directory or add "
                        "force=True", ("force",))
    require_writable_dir(path, path)
    for name in RUN_FILES:
        real = Path(os.path.realpath(path / name))
        # A link out of the run to a file: even forced, never (to a device it is written to).
        if real.parent != Path(os.path.realpath(path)) and not fileio.is_stream(path / name):
            other = _run_of(real)
            where = f"the {real.name} of the run in {str(other)!r}" if other else str(real)
            raise FcnnError(f"{path / name}: is a symbolic link to {where}, outside the run "
                            "directory; remove the link or choose another directory")
        fileio.check_output(path / name, inputs)


def check_output(path, inputs=(), force=False, own=None):
    """:func:`fileio.check_output`, and refuse a file of a run (its model.pt, config.json, its
    plots, a sweep's seeds.json, ..., through symbolic links too) unless ``force``: they are
    fcnn train's to write, and a command that writes one over loses the run's own. A run's lock
    is refused even with ``force``; ``force=None``: the command has no such option. Files
    directly in the directory ``own`` are the command's own to write."""
    fileio.check_output(path, inputs)
    if str(path) == fileio.STDIO:
        return
    real = Path(os.path.realpath(path))
    if real.name == LOCK_FILE:
        raise FcnnError(f"{path}: is the lock of the run directory {str(real.parent)!r}, "
                        "which fcnn keeps; write the output elsewhere")
    run = None if force or (own and real.parent == Path(os.path.realpath(own))) \
        else _run_of(real)
    if run is not None:
        what = "a plot" if run != real.parent else f"the {real.name}"
        forcing = "" if force is None else ", or add force=True to replace it"
        raise FcnnError(f"{path}: is {what} of the run in {str(run)!r}; write the output "
                        f"elsewhere{forcing}", ("force",))


def _run_of(real):
    """The run directory whose file (or plot) the resolved path ``real`` is, or None."""
    if real.name in PROTECTED_FILES and is_run_dir(real.parent, besides=real.name):
        return real.parent
    if real.suffix == ".png" and real.parent.name == PLOTS_DIR and is_run_dir(real.parent.parent):
        return real.parent.parent
    return None


def is_run_dir(path, besides=None):
    """Whether the directory ``path`` holds a run: its model.pt or config.json (other than the
    file ``besides``, which may be any file of that name)."""
    return any((Path(path) / name).is_file() for name in ("model.pt", "config.json")
               if name != besides)


def inputs_of(run_dir, plots=True):
    """The files of the run in ``run_dir`` that fcnn report (``plots``: its plots too) and
    fcnn plot read or could read; none may be their output."""
    run_dir = Path(run_dir)
    return [run_dir / name for name in RUN_FILES] + \
        (sorted((run_dir / PLOTS_DIR).glob("*.png")) if plots else [])


def check_plots_dir(out_dir, run_dir=None, inputs=(), force=None):
    """Refuse a directory for plots (of ``run_dir``, when it draws a run's) that is, or lies
    inside, a file of that run, that is another run's plots directory (unless ``force``), or
    that holds a PNG file (which a plot replaces) that :func:`check_output` refuses."""
    real = Path(os.path.realpath(out_dir))
    own = run_dir is not None and real == Path(os.path.realpath(Path(run_dir) / PLOTS_DIR))
    if run_dir is not None:
        inputs = [*inputs, *inputs_of(run_dir, plots=False)]
        for source in inputs_of(run_dir, plots=False):
            inside = Path(os.path.realpath(source))
            if inside == real or inside in real.parents:
                where = "is" if inside == real else "lies inside"
                raise FcnnError(f"{out_dir}: {where} the {source.name} of the run in "
                                f"{str(run_dir)!r}; name another directory for the plots")
    if not (own or force) and real.name == PLOTS_DIR and is_run_dir(real.parent):
        forcing = "" if force is None else ", or add force=True to replace them"
        raise FcnnError(f"{out_dir}: is the plots directory of the run in "
                        f"{str(real.parent)!r}; name another directory for the plots{forcing}",
                        ("force",))
    for png in Path(out_dir).glob("*.png"):
        check_output(png, inputs, force, own=out_dir if own else None)


def locked(path):
    """Whether a live fcnn process holds the lock of the run directory ``path``."""
    try:  # non-blocking: a FIFO in the lock's place must not hang the question
        fd = os.open(path / LOCK_FILE, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False  # no lock at all: claim refuses it
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:  # a file system without locks: none can be held
        return False
    finally:
        os.close(fd)


class InProgress(FcnnError):
    """Another live process holds the run directory's lock: a run is in progress there."""


def _in_progress(path):
    return InProgress(f"{path}: a run is in progress there (another fcnn process holds its "
                      "lock); wait for it to end or choose another directory")


@contextlib.contextmanager
def claim(path=None, data_path=None, force=False):
    """Create (or, with ``force``, reuse) a run directory and hold its lock while training.

    Without ``path`` the directory is ``runs/<data name>`` or the next free numbered one. A
    second process that trains into a locked directory is refused. If training fails before
    anything is saved in a directory made here, the directory is removed again; once a file is
    saved in it, it stays.
    """
    if path is None:
        while True:
            path = default_run_dir(data_path)
            with writing(path):
                try:
                    path.mkdir(parents=True)
                except FileExistsError:
                    if os.path.lexists(path):
                        continue  # another process took that name first
                    raise  # a parent is in the way
            created = True
            break
    else:
        path = Path(path)
        check_run_dir(path, force)
        created = not path.exists()
        with writing(path):
            path.mkdir(parents=True, exist_ok=True)
    lock = _open_lock(path / LOCK_FILE)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise _in_progress(path) from None
    except OSError as e:  # a file system without locks (some NFS, Lustre mounts)
        log.warning("%s: cannot lock (%s): nothing keeps a second run out of this directory",
                    path, e.strerror or e)
    try:
        yield path
    except BaseException:
        if created and {p.name for p in path.iterdir()} <= {LOCK_FILE}:
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        lock.close()


def _open_lock(path):
    """The lock file, opened to append (never truncating what a holder has open) and without
    blocking; a FIFO, device or directory in its place is refused in one line."""
    if os.path.lexists(path):
        fileio.check_regular(path, what="the run's lock")
    with writing(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC,
                     0o666)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FcnnError(f"{path}: not a regular file; the run's lock is a file that fcnn writes")
    return os.fdopen(fd, "a")


def save_run(result, run_dir, data_name, val_name=None, test_name=None, parallel=None,
             resumable=True):
    """Write the run's files, each one atomically; returns the directory. The state to resume
    from only of an interrupted run that is ``resumable`` (one that read stdin or a pipe is
    not: that would be read again), where a later run would be told to resume it."""
    run_dir = Path(run_dir)
    with writing(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
    predictor = result.predictor
    checkpoint.save(predictor, run_dir / "model.pt")
    _save_baselines(result.baselines, run_dir)
    write_text(run_dir / "metrics.json", json.dumps(_metrics(result), indent=2) + "\n")
    _write_or_remove(run_dir / CORRELATIONS_FILE, getattr(result, "correlations", None))
    write_text(run_dir / "history.csv", _csv(result.history))
    if result.diagnostics:
        write_text(run_dir / "diagnostics.csv", _csv(result.diagnostics))
    if result.sample is not None and len(result.sample.frame):
        from fcnn_cli.data.writer import write_table

        write_table(result.sample, run_dir / SAMPLE_FILE)
    config = {
        "data": data_name,
        "val_data": val_name,
        "test_data": test_name,
        "features": predictor.columns,
        **({"categorical": predictor.categories.columns} if predictor.categories else {}),
        "targets": predictor.targets,
        "net": predictor.net.config.to_dict(),
        "train": asdict(result.config),
        "sizes": result.sizes,
        "best_epoch": predictor.info.get("best_epoch"),
        "stopped": result.stopped,
        "parallel": parallel,  # processes, backend, and each one's host and device
        # The device this process trained on ("auto" resolved), a GPU's name, the precision.
        **{k: predictor.info.get(k) for k in ("device", "gpu", "precision")},
        "versions": checkpoint.versions(),
    }
    if predictor.recipe is not None:  # its samples, files (with size and SHA-256), steps
        config["recipe"] = predictor.recipe.to_dict()
    write_text(run_dir / "config.json", json.dumps(config, indent=2) + "\n")
    _write_options(run_dir / "config.toml", config, predictor.recipe)
    state = run_dir / STATE_FILE
    if result.interrupted and resumable:
        statefile.write_state(result.resume_state, state)
    elif state.exists():
        with writing(state):
            state.unlink()  # the run is complete: nothing left to resume
    return run_dir


def _save_baselines(fitted, run_dir):
    """Each fitted baseline in its file; an earlier run's left there would be taken for this
    one's by evaluate: removed."""
    from fcnn_cli.results.baselines import file_name

    for name, model in fitted.items():
        model.save(run_dir / file_name(name))
    for name in set(BASELINE_FILES) - {file_name(name) for name in fitted}:
        with writing(run_dir / name):
            (run_dir / name).unlink(missing_ok=True)


def _metrics(result):
    """metrics.json: each split's report, and the overtraining check where there is one."""
    check = getattr(result, "overtraining", None)
    return {**result.metrics, **({"overtraining": check} if check else {})}


def _write_or_remove(path, value):
    """Write ``value`` as JSON, or (None) remove an earlier run's file, which the plots would
    take for this run's."""
    if value is not None:
        write_text(path, json.dumps(value, indent=2) + "\n")
    elif path.exists():
        with writing(path):
            path.unlink()


def _write_options(path, config, recipe=None):
    """The run's resolved options as the configuration file that trains it again."""
    from fcnn_cli.core.configfile import dumps
    from fcnn_cli.data.recipe import options_of

    # Absolute paths: the file takes relative ones from its own directory, not the one the
    # run was started in.
    data = {"data": _data_files(config["data"], recipe), "targets": config["targets"],
            "features": config["features"], "categorical": config.get("categorical"),
            "val": config["val_data"],
            "test": config["test_data"], **options_of(recipe, absolute=True)}
    net = {k: v for k, v in config["net"].items() if k not in MADE_BY_DATA}
    try:
        text = dumps(data, net, config["train"])
    except FcnnError as e:  # a path no UTF-8 file can hold: the run itself is still good
        log.warning("%s not written: %s", path, e)
        return
    write_text(path, text)


def _data_files(data, recipe):
    """DATA as the file records it: the files a glob or directory found (a rerun reads the
    same ones, not those added since), absolute; a directory streamed whole as given."""
    found = recipe.samples[0] if recipe is not None and recipe.samples else None
    if found is None or found.name is not None or found.whole or not found.files:
        return data
    return ",".join(os.path.abspath(f) for f in found.files)


# What a run's files may weigh when they are read back (a FIFO or a device in their place is
# refused too: see fileio.check_regular).
MAX_TEXT_BYTES = 64 << 20  # config.json (the names of a million features fit), metrics.json, CSVs
MAX_SAMPLE_BYTES = 1 << 30  # predictions.parquet: at most 100 000 rows


@dataclass
class SavedRun:
    """What an interrupted run saved to continue with: its data, options and training state."""

    data: str
    val_data: str | None
    targets: list
    features: list
    net: NetConfig
    config: TrainConfig
    state: dict
    test_data: str | None = None  # absent from runs saved before --test existed
    recipe: object = None  # data.recipe.Recipe of a run that had one
    categorical: list | None = None  # the categorical feature columns


def forget_state(run_dir):
    """Remove the training state an earlier run left in ``run_dir``: a new run that replaces it
    must never leave it beside its own files, where --resume would take it up."""
    with writing(run_dir):
        (Path(run_dir) / STATE_FILE).unlink(missing_ok=True)


def load_resume(run_dir):
    """The saved options and training state of an interrupted run, each checked."""
    run_dir = Path(run_dir)
    state, config = run_dir / STATE_FILE, run_dir / "config.json"
    if not run_dir.is_dir():
        raise FcnnError(f"{run_dir}: no such run directory")
    if locked(run_dir):
        raise _in_progress(run_dir)
    if not state.exists():
        raise FcnnError(f"{run_dir}: nothing to resume (no {STATE_FILE}: the run finished, "
                        "was never interrupted, or read a table from stdin or a pipe, which "
                        "it cannot read again)")
    try:
        saved = _saved_run(_read_options(config))
        saved.state = statefile.read_state(state)
        statefile.check_progress(saved.state, saved.config.epochs)
    except FcnnError as e:
        raise FcnnError(f"{run_dir}: cannot resume: {e}") from None
    return saved


def _read_options(path):
    text = read_regular(path, MAX_TEXT_BYTES, path.name)
    try:
        options = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise FcnnError(f"{path.name} is not readable JSON: {first_line(e)}") from None
    if not isinstance(options, dict):
        raise FcnnError(f"{path.name} holds no object of options")
    return options


# What config.json must hold to resume a run: each key, its kinds and how to say them.
SAVED = {"data": (str, "a file path"), "val_data": ((str, type(None)), "a file path or null"),
         "targets": (list, "a list of column names"), "features": (list, "a list of column names"),
         "net": (dict, "an object"), "train": (dict, "an object")}


def _saved_run(options):
    """The run's data and options from its config.json, each of the right kind."""
    recipe = _saved_recipe(options.get("recipe"))
    if recipe is not None and recipe.classes:  # samples: no DATA
        options = {**options, "data": options.get("data") or ""}
    for key, (kind, said) in SAVED.items():
        if key not in options:
            raise FcnnError(f"config.json is damaged: it has no {key!r}")
        value = options[key]
        if not isinstance(value, kind) or kind is list and not (
                value and all(isinstance(c, str) for c in value)):
            raise FcnnError(f"config.json is damaged: its {key!r} is {_shown(value)}, not {said}")
    categorical = options.get("categorical")
    if categorical is not None and not (isinstance(categorical, list) and
                                        all(isinstance(c, str) for c in categorical)):
        raise FcnnError(f"config.json is damaged: its 'categorical' is {_shown(categorical)}, "
                        "not a list of column names")
    try:
        check_columns(options["targets"], options["features"], categorical)
    except FcnnError as e:
        raise FcnnError(f"config.json is damaged: {e}") from None
    net = _section(NetConfig, options["net"], "net")
    # Runs saved before --best-by kept the epoch of the lowest loss: their state holds it.
    config = _section(TrainConfig, {"best_by": "loss", **options["train"]}, "train")
    if config.epochs is None:  # valid as an option (the table's size decides), not as a run's
        raise FcnnError("config.json is damaged: its train epochs is null, where a run records "
                        "the epochs it set out to train")
    test_data = options.get("test_data")
    if not isinstance(test_data, (str, type(None))):
        raise FcnnError(f"config.json is damaged: its 'test_data' is {_shown(test_data)}, not "
                        "a file path or null")
    if "<stdin>" in (options["data"], options["val_data"], test_data):
        raise FcnnError("the run read a table from stdin")
    return SavedRun(options["data"] or None, options["val_data"], list(options["targets"]),
                    list(options["features"]), net, config, {}, test_data, recipe,
                    categorical)


def _saved_recipe(recipe):
    """The recipe a run recorded, parsed again (None if it had none)."""
    if recipe is None:
        return None
    from fcnn_cli.data.recipe import Recipe

    try:
        return Recipe.from_dict(recipe)
    except FcnnError as e:
        raise FcnnError(f"config.json is damaged: {e}") from None


def _section(cls, values, key):
    """``cls`` built from the section ``key`` of config.json: every key known, every value
    checked where the options of a new run are."""
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    try:
        if unknown:
            raise FcnnError(f"unknown option {unknown[0]!r}")
        return cls(**values)
    except TypeError as e:  # a required option left out
        raise FcnnError(f"config.json is damaged: {key!r}: {first_line(e)}") from None
    except FcnnError as e:
        raise FcnnError(f"config.json is damaged: {key!r}: {e}") from None


def _shown(value):
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _csv(rows):
    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
