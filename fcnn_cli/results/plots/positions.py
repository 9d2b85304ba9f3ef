"""Where a point (2 or 3 labels that form a position) is predicted: a map of true → predicted
arrows with the stations, a map of the mean distance in cells of the region, the distribution
of the distance, and beside a baseline (the classical locator, say) a map of where each is
nearer."""

import logging
import math

from fcnn_cli.results.plots.binned import heat, sparse_cells
from fcnn_cli.results.plots.figures import (SMALL, axis_range, drawing, length_unit, pyplot,
                                            save, with_unit)

log = logging.getLogger(__name__)

ARROWS = 300  # events a position map draws
MAP_BINS = 20  # per axis at most, in the map of the mean distance
MAP_MARGIN = 0.06  # of the span, around what a position map draws: room for markers, names
MAP_CELL_ROWS = 30  # events a cell of the map of the mean distance aims at
MAX_STATIONS = 500  # stations a map draws at most
MAX_STATION_NAMES = 40  # beyond, the stations are drawn without their names


def position_plots(frame, point, unit, stations, out_dir, baselines=()):
    """The maps and the distance's distribution of a sample's rows (a frame of the labels
    ``point`` and their predictions), and for each of ``baselines`` whose predictions of the
    point the frame holds (``<name>_<label>_pred``) the map of where each is nearer; returns
    the paths written."""
    import numpy as np

    from fcnn_cli.results.plots import file_part

    true = frame[point].to_numpy(np.float64)
    pred = frame[[f"{c}_pred" for c in point]].to_numpy(np.float64)
    distance = np.sqrt(((pred - true) ** 2).sum(axis=1))
    written = [position_map(true, pred, point, unit, out_dir / "position_map.png", stations),
               distance_map(true, pred, point, unit, out_dir / "distance_map.png", stations),
               distance_cdf(distance, unit, out_dir / "distance_cdf.png")]
    for name in baselines:
        columns = [f"{name}_{c}_pred" for c in point]
        if all(c in frame.columns for c in columns):
            written.append(nearer_map(true, pred, frame[columns].to_numpy(np.float64), name,
                                      point, unit, out_dir / f"nearer_{file_part(name)}.png",
                                      stations))
    return written


@drawing()
def position_map(true, pred, names, unit, path, stations=None, seed=0):
    """The region: true → predicted arrows for a sample of events, and the stations, every
    arrow head and station inside the axes and the stations' names above the arrows."""
    import numpy as np

    plt = pyplot()
    true, pred = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    rng = np.random.default_rng(seed)
    shown = rng.choice(len(true), min(ARROWS, len(true)), replace=False)
    tails = true[shown, :2]
    arrows = pred[shown, :2] - tails
    factor = magnification(np.hypot(*arrows.T), np.ptp(true[:, :2], axis=0).max())
    heads = tails + factor * arrows
    fig, ax = plt.subplots(figsize=(7.4, 6.6))
    ax.scatter(*tails.T, s=8, color="C0", label="true", zorder=3)
    ax.quiver(*tails.T, *(heads - tails).T, angles="xy", scale_units="xy", scale=1, color="C3",
              width=0.003, zorder=2,
              label="true → predicted" + (f" (× {factor:g})" if factor > 1 else ""))
    xy = np.asarray(stations["positions"], np.float64)[:, :2] if stations else np.zeros((0, 2))
    limits = _map_limits(np.concatenate([tails, heads, xy]))
    ax.set(xlim=limits[0], ylim=limits[1])
    if stations:
        ax.scatter(*xy.T, marker="^", s=140, color="black", label="station", zorder=4)
        if len(xy) <= MAX_STATION_NAMES:
            _station_names(ax, stations["names"], xy, limits)
    ax.set(xlabel=with_unit(names[0], unit), ylabel=with_unit(names[1], unit),
           title=f"True and predicted positions ({len(shown)} events"
                 + (f"; arrows {factor:g} × as long)" if factor > 1 else ")"))
    ax.set_aspect("equal", adjustable="box")  # the limits stay: nothing is cut off
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def _map_limits(points):
    """x and y limits that hold every point, with a margin of MAP_MARGIN of the larger span."""
    low, high = points.min(axis=0), points.max(axis=0)
    pad = MAP_MARGIN * float((high - low).max())
    return [axis_range(lo - pad, hi + pad) for lo, hi in zip(low, high)]


def _station_names(ax, names, xy, limits):
    """Each station's name beside it on the side towards the middle of the map (inside the
    axes), on a pale box above the arrows."""
    middle = [sum(lim) / 2 for lim in limits]
    for name, (x, y) in zip(names, xy):
        right, up = x <= middle[0], y <= middle[1]
        ax.annotate(name, (x, y), xytext=(8 if right else -8, 8 if up else -8),
                    textcoords="offset points", ha="left" if right else "right",
                    va="bottom" if up else "top", fontsize=10, zorder=5,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.8,
                          "edgecolor": "none"})


def magnification(lengths, span):
    """A round factor (1, 2 or 5 × 10^k, at least 1) that draws the median arrow at about a
    fortieth of the map's span: errors far smaller than the region still show."""
    import numpy as np

    median = float(np.median(lengths)) if len(lengths) else 0.0
    if not (median > 0 and span > 0):
        return 1
    want = span / 40 / median
    if want <= 1:
        return 1
    power = 10 ** math.floor(math.log10(want))
    return max(m * power for m in (1, 2, 5) if m * power <= want)


@drawing()
def distance_map(true, pred, names, unit, path, stations=None):
    """The mean distance between true and predicted position in 2-D bins of the true one:
    where the network is poor."""
    import numpy as np

    plt = pyplot()
    true, pred = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    report = _distances(true, pred, names)
    factor, shown = length_unit(np.sqrt(((pred - true) ** 2).sum(axis=1)), unit)
    fig, ax = plt.subplots(figsize=(7.4, 6.2))
    note = heat(ax, fig, report, lambda b: factor * b["distance"]["mean"],
                with_unit("mean distance", shown))
    if note is None:
        plt.close(fig)
        log.warning("no map of the mean distance: no event has a finite true position")
        return None
    _station_markers(ax, stations, [sparse_cells()])
    ax.set(xlabel=f"true {with_unit(names[0], unit)}",
           ylabel=f"true {with_unit(names[1], unit)}",
           title=f"Mean distance between true and predicted position\n({note})")
    ax.set_aspect("equal", adjustable="box")
    fig.tight_layout()
    return save(fig, path)


@drawing()
def nearer_map(true, pred, other, name, names, unit, path, stations=None):
    """Where the network or the baseline ``name`` (its predictions ``other``) is nearer the
    true position: in 2-D bins of the true one, the baseline's mean distance minus the
    network's, blue where the network is nearer, red where the baseline is."""
    import numpy as np
    from matplotlib.colors import CenteredNorm

    plt = pyplot()
    reports = [_distances(true, p, names) for p in (pred, other)]
    theirs = {tuple(b["index"]): b["distance"]["mean"] for b in reports[1]["bins"]}
    ours, their = (np.sqrt(((p - true) ** 2).sum(axis=1)) for p in (pred, other))
    factor, shown = length_unit(their - ours, unit)  # the unit of what the colours show
    fig, ax = plt.subplots(figsize=(7.4, 6.2))
    note = heat(ax, fig, reports[0],
                lambda b: factor * (theirs[tuple(b["index"])] - b["distance"]["mean"]),
                with_unit(f"{name}'s mean distance − the network's", shown), cmap="RdBu",
                norm=CenteredNorm())
    if note is None:
        plt.close(fig)
        log.warning("no map of where the network or %s is nearer: no event has a finite "
                    "true position", name)
        return None
    _station_markers(ax, stations, [sparse_cells()])
    means = [factor * float(np.mean(d)) for d in (ours, their)]
    ax.set(xlabel=f"true {with_unit(names[0], unit)}",
           ylabel=f"true {with_unit(names[1], unit)}",
           title=f"Blue: the network nearer; red: {name} nearer\nmean distance: the network "
                 f"{means[0]:.3g}, {name} {means[1]:.3g}{' ' + shown if shown else ''}\n({note})")
    ax.set_aspect("equal", adjustable="box")
    fig.tight_layout()
    return save(fig, path)


def _distances(true, pred, names):
    """The binned report of the distance between ``true`` and ``pred`` over the map."""
    from fcnn_cli.results.binned import Binned

    binned = Binned(names[:2], names, point=list(range(len(names))))
    binned.add(true[:, :2], true, pred)
    return binned.report(map_bins(len(true)))


def _station_markers(ax, stations, handles):
    """The stations as white triangles on a map of cells, and the legend of ``handles``."""
    import numpy as np

    if stations:
        xy = np.asarray(stations["positions"], np.float64)
        handles.insert(0, ax.scatter(xy[:, 0], xy[:, 1], marker="^", s=140, color="white",
                                     edgecolor="black", label="station", clip_on=False))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2,
              fontsize=9)


def map_bins(rows):
    """Bins per axis of a map of ``rows`` events: about MAP_CELL_ROWS events a cell, 3 to
    MAP_BINS."""
    return int(min(max(math.sqrt(rows / MAP_CELL_ROWS), 3), MAP_BINS))


@drawing()
def distance_cdf(distance, unit, path):
    """The cumulative distribution of the distance, median, 68th and 95th percentiles marked."""
    import numpy as np

    plt = pyplot()
    factor, unit = length_unit(distance, unit)
    d = np.sort(factor * np.asarray(distance, np.float64))
    fig, ax = plt.subplots(figsize=SMALL)
    ax.plot(d, np.arange(1, len(d) + 1) / len(d))
    for q, style in ((50, ":"), (68, "--"), (95, "-.")):
        v = float(np.percentile(d, q))
        ax.axvline(v, color="grey", linestyle=style, linewidth=1,
                   label=f"{q} %: {v:.3g}{' ' + unit if unit else ''}")
    if d[0] > 0 and d[-1] / d[0] > 1e3:
        ax.set_xscale("log")
    ax.set(xlabel=with_unit("distance between true and predicted position", unit),
           ylabel="fraction of events within", title=f"Distance ({len(d)} events)",
           ylim=(0, 1.01))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def stations_for(meta, point):
    """The stations the data file records, where their coordinates are the point's labels (or
    its first two); None if it records none, or none that make sense (the metadata is the
    file's, untrusted). Past MAX_STATIONS only the first are drawn (and looked at)."""
    stations = meta.get("stations")
    try:
        if stations["columns"][:2] != list(point[:2]):
            return None
        given = stations["positions"]
        positions = [[float(v) for v in p] for p in given[:MAX_STATIONS]]
        names = stations.get("names", range(1, len(given) + 1))
        if len(names) != len(given):
            return None
        names = [str(n) for n in names[:MAX_STATIONS]]
        # Positions of the point's every label, or of its first two (a map of events with
        # depth has stations at the surface): the maps draw their first two.
        dims = len(stations["columns"])
        if dims not in (2, len(point)) or not positions or \
                any(len(p) != dims for p in positions) or \
                not all(math.isfinite(v) for p in positions for v in p):
            return None
    except (TypeError, KeyError, ValueError, IndexError):
        return None
    if len(given) > MAX_STATIONS:
        log.warning("the data file records %d stations: the maps draw the first %d",
                    len(given), MAX_STATIONS)
    return {"names": names, "positions": positions}
