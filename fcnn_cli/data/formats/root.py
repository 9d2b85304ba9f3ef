"""ROOT files: a TTree (or RNTuple) of flat branches as a table, read and written with uproot.

``events.root`` reads the file's one tree, ``events.root:NAME`` (or ``:dir/NAME``) another.
Units come from branch titles that end in ``[unit]`` ("x position [km]"); the trees fcnn
writes carry fcnn's metadata (labels and units) as JSON in their title, after ``fcnn ``.
"""

import contextlib
import json
import re
from pathlib import Path

import numpy as np

from fcnn_cli.core.errors import FcnnError, first_line
from fcnn_cli.data.formats import (Source, check_unpacked, frame_of, library, metadata_text,
                              named_columns, reading)

TREES = ("TTree", "ROOT::RNTuple")
WRITTEN_TREE = "events"  # the tree fcnn writes: the name of the field's own event files
META_PREFIX = "fcnn "  # then a JSON object: another title that starts so is not fcnn's
CYCLE = re.compile(r";\d+$")  # a key's cycle: "events;2"
UNIT = re.compile(r"\s\[([^\[\]]+)\]\s*$")  # a branch title ending in " [km]"
SIGNATURE = b"root"  # a ROOT file's first bytes
# uproot's words for a file that ends before the data it points to
PLAINLY = (("expected Chunk of length", "truncated or damaged: it ends before the data it "
            "points to"),)


@contextlib.contextmanager
def opened(path, selector, name, columns=None):
    """The table of a ROOT file's tree; with ``columns``, of those of its branches alone (the
    others are never read)."""
    uproot = library("root", name)
    with reading(name, "ROOT", PLAINLY):
        with open(path, "rb") as head:
            if head.read(len(SIGNATURE)) != SIGNATURE:
                raise FcnnError(f"{name}: not a ROOT file (it does not start as one does)")
        file = uproot.open(Path(path))  # a str would be split at a ':' in its name
    with file:
        with reading(name, "ROOT", PLAINLY):
            tree = _tree(file, selector, name)
            title = getattr(tree, "title", "") or ""  # an RNTuple has none
            fcnn = metadata_text(title[len(META_PREFIX):], name, "tree title") if \
                title.startswith(META_PREFIX) else None
            source = Source(lambda rows: _blocks(tree, rows, name, columns),
                            int(tree.num_entries), fcnn, _units(tree))
            check_unpacked(name, f"{source.rows:,} entries", _unpacked(tree), path)
        yield source


def _tree(file, selector, name):
    """The tree that ``selector`` names (``dir/NAME``, ``NAME;CYCLE`` for a cycle other than
    the highest), or else the file's only one."""
    classes = file.classnames(recursive=True, cycle=False)
    trees = sorted(k for k, kind in classes.items() if kind in TREES)
    listing = ", ".join(map(repr, trees)) or "none"
    if selector is None:
        if len(trees) != 1:
            raise FcnnError(f"{name}: holds no tree (TTree or RNTuple)" if not trees else
                            f"{name}: holds {len(trees)} trees ({listing}); choose one with "
                            f"{name}:TREE")
        return _get(file, trees[0])
    key = selector.strip("/")
    if CYCLE.search(key):
        classes = file.classnames(recursive=True, cycle=True)
    if key not in classes:
        raise FcnnError(f"{name}: no tree {key!r} in the file; its trees: {listing}")
    if classes[key] not in TREES:
        raise FcnnError(f"{name}: {key!r} is a {classes[key]}, not a tree; its trees: {listing}")
    return _get(file, key)


def _get(file, key):
    """The object of a key found in the file's listing, looked up a directory at a time:
    uproot's ``file[key]`` takes a ':' in a directory's name for a separator."""
    item = file
    for part in key.split("/"):
        item = item.key(part).get()
    return item


def _units(tree):
    branches = getattr(tree, "branches", [])  # an RNTuple's fields carry no titles
    return {b.name: m[1].strip() for b in branches if (m := UNIT.search(b.title or ""))}


def _unpacked(tree):
    """The bytes a tree's branches declare unpacked: the sizes their baskets declare, or their
    entries times the widths of fixed-width branches, whichever is more."""
    branches = getattr(tree, "branches", [])  # an RNTuple's fields declare no sizes here
    widths = sum(kind.itemsize for b in branches
                 if (kind := getattr(b.interpretation, "to_dtype", None)) is not None)
    return max(int(tree.num_entries) * widths, sum(b.uncompressed_bytes for b in branches))


def _readable(tree, jagged=None, columns=None):
    """The branches uproot can read, those of classes it does not know left out (by name, not
    as expressions: a branch may be called "a-b"); with ``jagged`` True only the jagged
    branches of numbers, with False all the others; with ``columns`` only those named."""
    import uproot

    wanted_names = None if columns is None else set(columns)
    if not hasattr(tree, "branches"):  # an RNTuple
        if jagged:
            return {"filter_branch": lambda b: False}
        return {} if columns is None else {"filter_name": lambda n: n in wanted_names}
    unknown = uproot.interpretation.identify.UnknownInterpretation

    def wanted(branch):
        kind = branch.interpretation
        return (wanted_names is None or branch.name in wanted_names) and \
            not isinstance(kind, unknown) and (jagged is None or _is_jagged(kind) == jagged)
    return {"filter_branch": wanted}


def _is_jagged(interpretation):
    """Whether a branch holds a list of numbers an event (a collection's Muon_Px, say)."""
    import uproot

    return isinstance(interpretation, uproot.interpretation.jagged.AsJagged) and \
        isinstance(interpretation.content, uproot.interpretation.numerical.AsDtype)


def _blocks(tree, rows, name, columns=None):
    """Blocks of ``rows`` entries; an empty tree is one empty block, with its columns. Jagged
    branches are read as awkward arrays, each event's list then a view of one flat array:
    uproot's own numpy reading makes an array an event, fifty times slower."""
    with reading(name, "ROOT", PLAINLY):
        every, flat, lists = (_readable(tree, kind, columns) for kind in (None, False, True))
        if not tree.num_entries:
            yield frame_of(tree.arrays(library="np", **every))
            return
        order = list(tree.keys(**every)) if hasattr(tree, "branches") else None
        # uproot iterates no blocks of no branches: with jagged branches alone asked for
        # (Muon_Px of an object), the blocks are theirs
        listed_only = order is not None and not tree.keys(**flat)
        flat = iter(()) if listed_only else tree.iterate(step_size=rows, library="np", **flat)
        lists = tree.iterate(step_size=rows, library="ak", how=dict, **lists)
    while True:
        with reading(name, "ROOT", PLAINLY):
            arrays = {} if listed_only else next(flat, None)
            jagged = next(lists, None) if listed_only else next(lists, {})
            if arrays is None or jagged is None:
                return
            arrays.update({k: _events(v) for k, v in jagged.items()})
            frame = frame_of({k: arrays[k] for k in order or arrays})
        yield frame


def _events(jagged):
    """An awkward array of lists as one numpy array a row, each a view of the flat values."""
    import awkward as ak

    counts = ak.num(jagged, axis=1).to_numpy()
    values = ak.flatten(jagged, axis=1).to_numpy()
    rows = np.empty(len(counts), dtype=object)
    rows[:] = np.split(values, np.cumsum(counts)[:-1])
    return rows


class Writer:
    """A TTree named ``events``, extended block by block: numbers and booleans as such,
    anything else as text (string branches)."""

    def __init__(self, path, name, metadata):
        self.uproot = library("root", name)
        self.name, self.metadata, self.tree, self.types = name, metadata, None, {}
        self.file = self.uproot.recreate(path)

    def write(self, frame):
        columns = named_columns(frame, self.name, "ROOT")
        if self.tree is None:
            self.types = {c: "string" if v.dtype == object else _branch_type(v.dtype)
                          for c, v in columns.items()}
            title = META_PREFIX + json.dumps(self.metadata) if self.metadata else ""
            self.tree = self._made(lambda: self.file.mktree(WRITTEN_TREE, self.types, title))
        if len(frame):
            data = {c: _as(v, self.types[c], c, self.name) for c, v in columns.items()}
            self._made(lambda: self.tree.extend(data))

    def _made(self, make):
        try:
            return make()
        except (TypeError, ValueError) as e:  # a column name or type a tree cannot hold
            raise FcnnError(f"{self.name}: cannot write it as a ROOT tree: "
                            f"{first_line(e, 160)}") from None

    def close(self):
        self.file.close()


def _branch_type(dtype):
    return np.dtype(np.float32) if dtype.kind == "f" and dtype.itemsize < 4 else dtype


def _as(values, kind, column, name):
    """``values`` in the type the first block gave the branch."""
    if kind == "string":
        return values if values.dtype == object else values.astype(str).astype(object)
    if values.dtype == object:
        raise FcnnError(f"{name}: column {column!r} turns from numbers to text partway through, "
                        "which a ROOT branch cannot hold; write CSV instead")
    return values.astype(kind, copy=False)
