"""fcnn's metadata inside the table files it writes: which columns are labels, and their units,
so that ``fcnn train quakes.csv`` needs no flags.

* Parquet: the schema metadata key ``fcnn`` holds JSON such as ``{"targets": ["x", "y"]}``.
* CSV: a first line ``# fcnn {"targets": ["x", "y"], ...}`` before the header. Other tools read
  such a file with their comment option, e.g. ``pandas.read_csv(path, comment="#")``.
* ROOT, HDF5 and FITS (``fcnn_cli/data/formats/``): the same JSON in the tree's title, the table's
  ``fcnn`` attribute, the ``FCNN`` header keyword; units also from the format's own places.
"""

import json

from fcnn_cli.core.errors import FcnnError

META_KEY = "fcnn"
CSV_META_PREFIX = b"# fcnn "


def parse(raw, name):
    """The metadata of the table ``name`` from its JSON (text or bytes), checked: ``targets``
    a list of column names, ``units`` a mapping of column to unit."""
    try:
        meta = json.loads(raw)
        if not isinstance(meta, dict):
            raise ValueError("not an object")
        targets = meta.get("targets", [])
        units = meta.get("units", {})
        if not (isinstance(targets, list) and all(isinstance(t, str) for t in targets)):
            raise ValueError("'targets' is not a list of column names")
        if not (isinstance(units, dict) and all(isinstance(v, str) for v in units.values())):
            raise ValueError("'units' is not a mapping of column to unit")
        aside = meta.get("aside", [])
        if not (isinstance(aside, list) and all(isinstance(c, str) for c in aside)):
            raise ValueError("'aside' is not a list of column names")
    except ValueError as e:
        raise FcnnError(f"{name}: malformed fcnn metadata: {e}") from None
    return meta


def of_schema(schema, name):
    """The metadata of a Parquet file from its Arrow schema; ``{}`` where it has none."""
    raw = (schema.metadata or {}).get(META_KEY.encode())
    return parse(raw, name) if raw else {}
