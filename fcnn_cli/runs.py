"""The run directory that ``fcnn train`` writes: model, metrics, history and configuration."""

import csv
import io
import json
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


def check_run_dir(path, force=False):
    """Refuse to write over an earlier run unless forced; called before training starts."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FcnnError(f"{path}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise FcnnError(f"{path}: already holds a run; choose another -o DIR or add --force")


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
    return run_dir


def _csv(rows):
    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
