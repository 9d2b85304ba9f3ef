"""fcnn simulate: labelled data sets, written chunk by chunk to any table format."""

import logging

import click

from fcnn_cli.commands.options import (FILE, force_option, option, output_option, seed_option,
                                       usage_errors, user_errors)
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.machine import signals


def _png(ctx, param, value):
    from fcnn_cli.results.plots.preview import check_png  # matplotlib itself loads only to draw

    if value is not None:
        try:
            check_png(value)
        except FcnnError as e:
            raise click.BadParameter(str(e)) from None
    return value


def _point(ctx, param, values):
    points = []
    for v in values:
        try:
            x, y = (float(p) for p in v.split(","))
        except ValueError:
            raise click.BadParameter(f"{v!r} is not X,Y (two numbers in km)") from None
        points.append((x, y))
    return points or None


def _range(ctx, param, value):
    if value is None:
        return None
    try:
        low, high = (float(p) for p in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not MIN,MAX (two numbers in km)") from None
    return low, high


# The library's names of earthquakes' options that the command line spells otherwise.
QUAKE_FLAGS = {"network": "--stations", "model": "--velocity-model",
               "origin_unknown": "--origin-time"}


@click.group()
def simulate():
    """Make realistic labelled data sets."""


@simulate.command()
@option("-n", "--events", "n", type=int, default=20_000, help="Number of events.")
@seed_option
@option("--extent", type=float, default=50.0,
        help="Half-width (km) of the square region: epicentres are uniform on ±extent.")
@option("--station", "stations", multiple=True, callback=_point, metavar="X,Y",
        help="A station's position in km; repeat for each station. Default: four stations "
             "near the corners of the region.")
@option("--vp", type=float, default=6.0, help="P-wave velocity (km/s).")
@option("--vs", type=float, default=3.5, help="S-wave velocity (km/s).")
@option("--noise", type=float, default=0.0,
        help="Standard deviation (s) of Gaussian noise on every arrival time.")
@option("--stations", "network", metavar="N|FILE",
        help="An irregular network of N stations in the region (the same whatever --seed), "
             "or a CSV file of name,x,y[,elevation] in km.")
@option("--depth", callback=_range, metavar="MIN,MAX",
        help="Hypocentres at depths uniform in MIN,MAX km: a third label, z.")
@option("--velocity-model", default="uniform", show_default=True,
        metavar="uniform|layered|FILE",
        help="uniform (--vp, --vs), layered (a standard crust over the mantle) or a file of "
             "layers: top,vp,vs a line.")
@option("--origin-time", type=click.Choice(["zero", "unknown"]), default="zero",
        show_default=True,
        help="unknown: a random origin time (column t0, not a feature) added to every pick.")
@option("--noise-p", type=float, help="Timing noise (s) of P picks; S twice as much unless "
        "--noise-s is given.")
@option("--noise-s", type=float, help="Timing noise (s) of S picks; P half as much unless "
        "--noise-p is given.")
@option("--missing", type=float, default=0.0,
        help="Fraction of picks left out (NaN): half as station outages, half one by one.")
@output_option("earthquakes.csv", "Output file: .csv, .parquet, .root, .h5 or .fits; '-' for "
               "CSV on stdout.")
@force_option
@user_errors
def earthquakes(n, seed, extent, stations, vp, vs, noise, network, depth, velocity_model,
                origin_time, noise_p, noise_s, missing, output, force):
    """Hypocentres and P/S first-arrival times at seismic stations.

    By default the lecture's case: epicentres on a plane, straight rays in a uniform medium
    (t = distance / velocity), arrival times counted from a known origin time. Columns: x, y
    (km; the labels, recorded in the file) and tp1, ts1, …, tpK, tsK (s). The options from
    --stations on make a realistic table (docs/earthquakes.md).

    \b
    Example:
      fcnn simulate earthquakes -n 5000 --noise 0.01 --seed 1 -o quakes.parquet
      fcnn simulate earthquakes --stations 12 --depth 0,30 --velocity-model layered \\
        --origin-time unknown --noise-p 0.02 --missing 0.2 -o realistic.parquet
    """
    from fcnn_cli.data import simulate as sim
    from fcnn_cli.data import stations as networks
    from fcnn_cli.data import velocity
    from fcnn_cli.data.tables import table_format
    from fcnn_cli.results.runs import check_output

    check_output(output, force=force)
    table_format(output)
    with usage_errors(QUAKE_FLAGS):
        if network and stations:
            raise FcnnError("--station and --stations: give one or the other",
                            ("stations", "network"))
        chunks = sim.earthquake_tables(
            n=n, seed=seed, extent=extent, vp=vp, vs=vs, noise=noise,
            stations=(networks.network_for(network, extent) if network else
                      stations or sim.DEFAULT_STATIONS),
            depth=depth, model=velocity.model_for(velocity_model, vp, vs),
            origin_unknown=origin_time == "unknown", noise_p=noise_p, noise_s=noise_s,
            missing=missing)
    _write_tables(chunks, output)
    if output != "-":
        logging.getLogger("fcnn_cli").info("wrote %d events to %s", n, output)


@simulate.command(short_help="Images of spiral galaxies labelled by their sense of rotation.")
@option("-n", "--galaxies", "n", type=int, default=20_000, help="Number of galaxies.")
@seed_option
@option("--size", type=int, default=32, help="Image width and height in pixels.")
@option("--noise", type=float, default=0.02,
        help="Standard deviation of Gaussian pixel noise (peak brightness ≤ 1); larger is "
             "harder.")
@option("--preview", metavar="FILE.png", callback=_png, shell_complete=FILE,
        help="Also draw a grid of examples with labels.")
@output_option("galaxies.parquet", "Output file: .parquet, .csv, .root, .h5 or .fits; '-' "
               "for CSV on stdout.")
@force_option
@user_errors
def galaxies(n, seed, size, noise, preview, output, force):
    """Images of spiral galaxies labelled by their sense of rotation, left or right.

    Logarithmic spiral arms with a random number of arms, pitch angle, orientation, bulge,
    size, inclination and brightness, plus pixel noise. Columns p0000 … p1023 hold the pixels
    row by row (row 0 at the top); the label column 'rotation' is recorded in the file.

    \b
    Example:
      fcnn simulate galaxies -n 5000 --noise 0.1 --preview galaxies.png -o galaxies.parquet
    """
    from fcnn_cli.data import simulate as sim
    from fcnn_cli.data.tables import table_format
    from fcnn_cli.results.plots.preview import GRID_COLS, GRID_ROWS
    from fcnn_cli.results.runs import check_output

    check_output(output, [preview], force)
    if preview:
        check_output(preview, [output], force)
    table_format(output)
    with usage_errors():
        chunks = sim.galaxy_tables(n=n, seed=seed, size=size, noise=noise)
    first = _write_tables(chunks, output, keep=GRID_ROWS * GRID_COLS if preview else 0)
    if preview:
        from fcnn_cli.results.plots.preview import galaxy_grid

        galaxy_grid(first, preview)
    log = logging.getLogger("fcnn_cli")
    if output != "-":
        log.info("wrote %d galaxies to %s", n, output)
    if preview:
        log.info("drew examples in %s", preview)


def _write_tables(tables, output, keep=0):
    """Write a stream of Tables, chunk by chunk, to one file with the first one's metadata;
    return the first ``keep`` rows as a Table (a preview's). Ctrl-C or SIGTERM stops it and
    leaves no partial file (user_errors says so): a large -n runs long."""
    from fcnn_cli.data.tables import Table
    from fcnn_cli.data.writer import TableWriter

    with signals.Interrupts():
        first = next(tables)
        head = Table(first.frame.iloc[:keep].copy(), first.targets, first.units, first.name,
                     extra=first.extra)
        with TableWriter(output, first.metadata()) as writer:
            writer.write(first.frame)
            del first  # hold one chunk at a time
            for table in tables:
                writer.write(table.frame)
    return head
