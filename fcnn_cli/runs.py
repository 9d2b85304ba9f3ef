"""The run directory that ``fcnn train`` writes: model, metrics, history and configuration."""

import contextlib
import csv
import fcntl
import io
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from fcnn_cli import checkpoint
from fcnn_cli.errors import FcnnError
from fcnn_cli.fileio import write_text

RUNS_ROOT = Path("runs")


def default_run_dir(data_path, root=RUNS_ROOT):
    """``runs/<data file stem>``, or the first free ``-2``, ``-3``, … beside an earlier run."""
    stem = "stdin" if str(data_path) == "-" else Path(data_path).name.split(".")[0] or "run"
    candidate, k = root / stem, 1
    while candidate.exists():
        k += 1
        candidate = root / f"{stem}-{k}"
    return candidate


STATE_FILE = "state.pt"
LOCK_FILE = ".lock"


def check_run_dir(path, force=False):
    """Refuse to write over an earlier run unless forced, and into a run in progress at all;
    called before training starts. A directory that holds nothing but a lock nobody holds (a
    run killed before its first save) is reused: nothing in it can be lost."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FcnnError(f"{path}: exists and is not a directory")
    if not path.is_dir():
        return
    if _locked(path):
        raise _in_progress(path)
    names = {p.name for p in path.iterdir()} - {LOCK_FILE}
    if names and not force:
        if STATE_FILE in names:
            raise FcnnError(f"{path}: holds an interrupted run; continue it with: fcnn train "
                            f"--resume {path}; or choose another -o DIR, or add --force to "
                            "replace it")
        raise FcnnError(f"{path}: already holds a run; choose another -o DIR or add --force")


def _locked(path):
    """Whether a live fcnn process holds the lock of the run directory ``path``."""
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _in_progress(path):
    return FcnnError(f"{path}: a run is in progress there (another fcnn process holds its "
                     "lock); wait for it to end or choose another -o DIR")


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
            try:
                path.mkdir(parents=True)
                created = True
                break
            except FileExistsError:
                continue  # another process took that name first
    else:
        path = Path(path)
        check_run_dir(path, force)
        created = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
    lock = open(path / LOCK_FILE, "a")  # "a": never truncates what a holder has open
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise _in_progress(path) from None
    try:
        yield path
    except BaseException:
        if created and {p.name for p in path.iterdir()} <= {LOCK_FILE}:
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        lock.close()


def save_run(result, run_dir, data_name, val_name=None):
    """Write the run's files, each one atomically; returns the directory."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    predictor = result.predictor
    checkpoint.save(predictor, run_dir / "model.pt")
    write_text(run_dir / "metrics.json", json.dumps(result.metrics, indent=2) + "\n")
    write_text(run_dir / "history.csv", _csv(result.history))
    if result.diagnostics:
        write_text(run_dir / "diagnostics.csv", _csv(result.diagnostics))
    config = {
        "data": data_name,
        "val_data": val_name,
        "features": predictor.features,
        "targets": predictor.targets,
        "net": predictor.net.config.to_dict(),
        "train": asdict(result.config),
        "sizes": result.sizes,
        "best_epoch": predictor.info.get("best_epoch"),
        "stopped": result.stopped,
        "versions": checkpoint.versions(),
    }
    write_text(run_dir / "config.json", json.dumps(config, indent=2) + "\n")
    state = run_dir / STATE_FILE
    if result.interrupted:
        import torch

        from fcnn_cli.fileio import atomic_path

        with atomic_path(state) as tmp:
            torch.save(result.resume_state, tmp)
    elif state.exists():
        state.unlink()  # the run is complete: nothing left to resume
    return run_dir


def load_resume(run_dir):
    """The saved options and training state of an interrupted run."""
    import torch

    run_dir = Path(run_dir)
    state, config = run_dir / STATE_FILE, run_dir / "config.json"
    if not run_dir.is_dir():
        raise FcnnError(f"{run_dir}: no such run directory")
    if not state.exists():
        raise FcnnError(f"{run_dir}: nothing to resume (no {STATE_FILE}: the run finished, "
                        "or was never interrupted)")
    try:
        options = json.loads(config.read_text())
        resume = torch.load(state, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged or hostile file: report it, never run it
        raise FcnnError(f"{run_dir}: cannot read the saved run: {str(e).splitlines()[0]}") \
            from None
    if options.get("data") in (None, "<stdin>"):
        raise FcnnError(f"{run_dir}: the run read its data from stdin; it cannot be resumed")
    return options, resume


def _csv(rows):
    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
