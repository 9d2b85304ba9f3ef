"""What every plot shares: matplotlib (Agg), imported only when a figure is drawn; the drawing
context; the atomic save of a figure as one PNG; axis labels with their units, lengths in a
readable unit, and the sizes every family draws at."""

import contextlib
import contextvars
import warnings
from pathlib import Path

from fcnn_cli.core.fileio import open_output, writing
from fcnn_cli.core import collector

DPI = 100
SMALL, WIDE = (6.4, 4.8), (11.0, 4.4)  # inches: one panel, two
MIN_ROWS = 10  # a map's cells and a reliability diagram's bins of fewer rows are not drawn
NOTE_CHARACTERS = 160  # of the line at a figure's foot: what one line of small print holds
DEFINED_SHOWN = 3  # names of the columns a recipe defines that the line gives
_NOTE = contextvars.ContextVar("note", default="")


def pyplot():
    """matplotlib's pyplot, imported where a command loads it with the collector paused."""
    import sys

    collector.imported("matplotlib")
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # else a caller's (a notebook's) is kept
        matplotlib.use("Agg")  # files only: a batch job has no display
    collector.imported("matplotlib.pyplot")
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


@contextlib.contextmanager
def noting(text):
    """Every figure saved within states ``text`` at its foot: which rows it shows (a run's
    samples, weight, selection and definitions), which the plot alone would not tell."""
    token = _NOTE.set(text or "")
    try:
        yield
    finally:
        _NOTE.reset(token)


def recipe_note(recipe):
    """The line that states a recipe (its dict, as a run or checkpoint records it): samples,
    weight, selection, objects and the names defined; "" for none."""
    if not isinstance(recipe, dict):
        return ""
    names = [s.get("name") for s in recipe.get("samples") or [] if isinstance(s, dict)]
    parts = ["samples " + ", ".join(map(str, names))] if any(names) else []
    parts += [f"{key} {recipe[key]}" for key in ("weight", "where") if recipe.get(key)]
    if recipe.get("objects"):
        parts.append("objects " + ", ".join(map(str, recipe["objects"])))
    defined = [str(d[0]) for d in recipe.get("define") or [] if isinstance(d, list) and d]
    if defined:  # the first few: a line at the foot beside a legend below the axes
        more = len(defined) - DEFINED_SHOWN
        parts.append("defined " + ", ".join(defined[:DEFINED_SHOWN])
                     + (f" and {more} more" if more > 0 else ""))
    text = " · ".join(parts)
    return text if len(text) <= NOTE_CHARACTERS else text[:NOTE_CHARACTERS - 1] + "…"


def save(fig, path):
    plt = pyplot()
    note = _NOTE.get()
    if note:  # "$" would start matplotlib's mathematics
        fig.text(0.005, 0.005, note.replace("$", r"\$"), fontsize=7, color="0.4",
                 ha="left", va="bottom")
    _layout_done(fig)
    try:
        with open_output(path) as stream, writing(path):
            fig.savefig(stream, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return Path(path)


def _layout_done(fig):
    """Forget the placeholder that ``fig.tight_layout()`` leaves as the figure's layout
    engine: with any engine, savefig draws the whole figure once more before drawing it into
    the file, for a layout that is done already (a fifth of the plots' time). A figure laid out
    as it is drawn (``layout="constrained"``) keeps its engine."""
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    if isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine):
        fig.set_layout_engine(None)


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
