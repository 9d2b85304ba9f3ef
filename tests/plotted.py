"""What the tests of the plots share: a PNG decoded, plots checked by their names and pixel
sizes, small runs saved (trained, or of a sample alone), a history and errors to draw."""

import numpy as np
import pandas as pd

from fcnn_cli.data.tables import Table
from fcnn_cli.engine import train
from fcnn_cli.results import runs

# Each plot's pixel size: its figure size in inches × figures.DPI.
SIZES = {"learning_curves.png": (1400, 420), "regression_x.png": (1100, 440),
         "regression_y.png": (1100, 440), "position_map.png": (740, 660),
         "distance_map.png": (740, 620), "distance_cdf.png": (640, 480),
         "diagnostics.png": (1500, 440), "roc.png": (640, 600), "reliability.png": (640, 700),
         "rejection.png": (640, 480), "significance.png": (640, 640),
         "regression_east_km.png": (1100, 440), "regression_north_km.png": (1100, 440),
         "regression_energy.png": (1100, 440)}


def decoded(path):
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.size, image.getextrema()


def check(paths, expected):
    names = sorted(p.name for p in paths)
    assert names == sorted(expected)
    for path in paths:
        size, extrema = decoded(path)
        if path.name in SIZES:
            assert size == SIZES[path.name], path.name
        assert any(lo != hi for lo, hi in extrema), f"{path.name} is blank"


def saved_run(tmp_path, table, name, **options):
    result = train.fit(table, train.TrainConfig(epochs=3, batch_size=64, seed=1,
                                                **options.pop("config", {})), **options)
    return runs.save_run(result, tmp_path / name, "data.csv")


def sample_run(tmp_path, meta, frame=None):
    """A run directory of one epoch's history and a sample of predictions with ``meta``."""
    from fcnn_cli.data.writer import write_table

    rng = np.random.default_rng(0)
    frame = frame if frame is not None else pd.DataFrame(
        {"x": rng.normal(size=50), "y": rng.normal(size=50)}).assign(
        x_pred=lambda f: f.x + 0.1, y_pred=lambda f: f.y - 0.1)
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "history.csv").write_text("epoch,train_loss,val_loss,lr\n1,1.0,1.0,0.01\n")
    table = Table(frame, ["x", "y"] if "x" in frame else ["c"], {}, extra=meta)
    write_table(table, run / runs.SAMPLE_FILE)
    return run


def history(train_loss, val_loss, distance=None):
    rows = [{"epoch": i + 1, "train_loss": t, "val_loss": v, "lr": 0.01}
            for i, (t, v) in enumerate(zip(train_loss, val_loss))]
    for row, d in zip(rows, distance or []):
        row["val_mean_distance"] = d
    return rows


# Metre-size errors in a km region: what a well-trained network of earthquakes gives.
def metre_errors(n=500, seed=0):
    rng = np.random.default_rng(seed)
    true = rng.uniform(-50, 50, size=(n, 2))
    return true, true + rng.normal(scale=0.008, size=(n, 2))
