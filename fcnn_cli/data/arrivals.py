"""What fcnn makes of an earthquake table by default, from what its metadata records of the
picks (``picks``, which ``fcnn simulate earthquakes`` writes).

Where the origin time is unknown, a pick is a random origin time plus the travel time: only
differences of picks carry the location. A network given the absolute times has to learn to
take those differences itself and does it badly (docs/earthquakes.md measures it); given each
pick after the event's earliest, ``dtpK = tpK - t_first`` with ``t_first = fmin(tp1, ts1, …)``
(fmin skips missing picks), it need not. They are definitions of the expression language, so
that the model keeps them in its recipe and predict, evaluate and the ONNX graph make them from
the raw picks of a new table; the absolute picks are then no default features.
"""

import re
from dataclasses import dataclass, field

FIRST = "t_first"  # each event's earliest pick
PICK = re.compile(r"t[ps][0-9]+")  # a pick's column: tp1, ts1, …


@dataclass(frozen=True)
class Defaults:
    define: list  # "NAME=EXPR" texts to add to the run's definitions
    hidden: tuple  # columns that are no default features
    missing: float  # the fraction of picks the table lacks (0: all there)
    # Of the stations the metadata list, those whose pick columns the table lacks (a dead
    # station's dropped): {station name: [its absent columns]}. The others' picks make t_first.
    absent: dict = field(default_factory=dict)


def of_metadata(meta, defined=(), columns=None):
    """The defaults of a table whose metadata is ``meta``; ``defined``: names that stand in
    for fcnn's definitions of the same name (the run's own definitions, the table's columns);
    ``columns``: the names the table has (its columns, the run's definitions), the picks of
    none of them left out (None: all there)."""
    picks = meta.get("picks") if isinstance(meta.get("picks"), dict) else {}
    missing = picks.get("missing", 0)
    missing = float(missing) if isinstance(missing, (int, float)) and 0 < missing < 1 else 0.0
    if picks.get("origin_time") != "unknown":
        return Defaults([], (), missing)
    from fcnn_cli.data import stations  # numpy: only for an earthquake table

    network = stations.from_metadata(meta)
    if network is None:
        return Defaults([], (), missing)
    listed = [(name, [f"t{phase}{k}" for phase in "ps"])
              for k, name in enumerate(network.names, 1)]
    present = set(columns) if columns is not None else {c for _, cs in listed for c in cs}
    absolute = [c for _, cs in listed for c in cs if c in present]
    if not absolute:
        return Defaults([], (), missing)
    absent = {name: [c for c in cs if c not in present] for name, cs in listed}
    made = [f"{FIRST}=fmin({', '.join(absolute)})",
            *(f"d{pick}={pick} - {FIRST}" for pick in absolute)]
    made = [text for text in made if text.partition("=")[0] not in set(defined)]
    aside = [c for c in meta.get("aside", ()) if isinstance(c, str)]
    return Defaults(made, (*absolute, FIRST, *aside), missing,
                    {name: cs for name, cs in absent.items() if cs})


def absolute_picks(defaults):
    """The names of the picks of ``defaults``' table (tp1, ts1, …), of the stations it has."""
    return [c for c in defaults.hidden if PICK.fullmatch(c)]


def relative_picks(defaults):
    """The names of the picks after the earliest of ``defaults``' table (dtp1, dts1, …), which
    fcnn defines (or the run's own definitions of those names stand in)."""
    return [f"d{c}" for c in absolute_picks(defaults)]


def of_fcnn(names):
    """Those of ``names`` that fcnn defines of an earthquake table: t_first, dtp1, dts1, …"""
    return [n for n in names if n == FIRST or n[:1] == "d" and PICK.fullmatch(n[1:])]
