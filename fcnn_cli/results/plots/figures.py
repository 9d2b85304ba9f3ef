"""What every plot shares: matplotlib (Agg), imported only when a figure is drawn; the drawing
context; the atomic save of a figure as one PNG; axis labels with their units, lengths in a
readable unit, and the sizes every family draws at."""

import contextlib
import warnings
from pathlib import Path

from fcnn_cli.core.fileio import open_output, writing

DPI = 100
SMALL, WIDE = (6.4, 4.8), (11.0, 4.4)  # inches: one panel, two
MIN_ROWS = 10  # a map's cells and a reliability diagram's bins of fewer rows are not drawn


def pyplot():
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # else a caller's (a notebook's) is kept
        matplotlib.use("Agg")  # files only: a batch job has no display
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def drawing():
    """Around the drawing of a figure (a decorator): a label in a script the font lacks (日本)
    is drawn as boxes, not worth a warning a plot; the caller's own filters stay as they were."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font",
                                category=UserWarning)
        yield


def save(fig, path):
    plt = pyplot()
    try:
        with open_output(path) as stream, writing(path):
            fig.savefig(stream, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return Path(path)


def with_unit(name, unit):
    return f"{name} ({unit})" if unit else name


def length_unit(values, unit):
    """``(factor, unit)``: :func:`fcnn_cli.results.units.readable_length` for lengths like
    ``values`` (by their median size), so that metres in a km region read as metres."""
    import numpy as np

    from fcnn_cli.results.units import readable_length

    size = np.abs(np.asarray(values, np.float64))
    size = size[np.isfinite(size) & (size > 0)]
    return readable_length(float(np.median(size)) if len(size) else 0.0, unit)


def axis_range(low, high):
    """``(low, high)``, widened where it is a single value (a histogram's cells, an axis
    need a width)."""
    low, high = float(low), float(high)
    if high - low > 1e-9 * max(abs(low), abs(high)):  # else rounding makes equal edges
        return low, high
    pad = 0.5 * abs(low) or 0.5
    return low - pad, high + pad
