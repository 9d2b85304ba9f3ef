"""A recipe: what makes the table a network trains on from the physicist's data as it comes,
kept with the model so that predict and evaluate make the same columns from raw files.

Its parts: the samples (each one's files, scale and selection), the objects (``Muon:2``) and
their expansion, the definitions (``NAME=EXPR``, in order), the selection (``where``) and the
event weight (an expression). Its steps act on one :class:`~fcnn_cli.data.tables.Table` at a
time — a whole file or a chunk of one — so that they stream: derive the objects' columns and
then the definitions, keep the rows that pass the selection, add the class column of the
sample and the weight column (the expression times the sample's scale).

Every expression goes through :mod:`fcnn_cli.data.expressions`, which evaluates a tree of
whitelisted nodes and runs no code; a recipe read back (from a checkpoint, untrusted input) is
parsed again the same way, every part checked, before anything is applied.
"""

import dataclasses
import logging
from dataclasses import dataclass, field

from fcnn_cli.core.errors import FcnnError, listed
from fcnn_cli.data import samples as sampling

log = logging.getLogger(__name__)

LABEL = "sample"  # the class column made of the sample names, unless -t names another
WEIGHT = "event_weight"  # the weight column, where the weight is more than a column
# A recipe's definitions, objects' included: each is a float64 column of every chunk read
# (65 536 rows), so 1 000 make 0.5 GB a chunk. An analysis derives tens; the objects of a
# few collections (Muon:4 of 10 list columns is 44) stay far below.
MAX_DEFINITIONS = 1_000


@dataclass
class Recipe:
    """The steps from raw files to the table trained on. ``samples``: samples.Sample (none:
    DATA read as one table); ``objects``: ``"Muon:2"`` specs, and ``expanded`` their
    definitions ``[(name, text)]`` once a table's columns have shown them; ``define``:
    ``[(name, text)]`` in order; ``where`` and ``weight``: expressions; ``label``: the class
    column made of the sample names."""

    samples: list = field(default_factory=list)
    objects: list = field(default_factory=list)
    expanded: list | None = None
    define: list = field(default_factory=list)
    where: str | None = None
    weight: str | None = None
    label: str | None = None
    # Of each raw number column the definitions read: [smallest, largest] finite value in the
    # rows training read (:meth:`apply`), from which an ONNX export draws the rows it checks
    # its graph on. On torchrun, those of the pieces the first process read.
    ranges: dict = field(default_factory=dict)
    # Columns that are no default features, by fcnn's choice for the table (the absolute picks
    # that relative ones replace: :mod:`fcnn_cli.data.arrivals`). Not kept with the model: a
    # run records its features.
    hidden: tuple = ()
    _parsed: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def of_options(cls, samples=None, define=None, objects=None, where=None, weight=None,
                   label=None):
        """The recipe of the options (texts as given; ``samples`` texts or tables), each
        expression parsed now: a bad one is refused before any table is read."""
        found = sampling.of_options(samples or [])
        recipe = cls(found, list(objects or []), None, _definitions(define or []), where,
                     weight, (label or LABEL) if found else None)
        recipe.check()
        return recipe

    def defined_too(self, texts):
        """This recipe with more definitions ("NAME=EXPR"), checked: each after those it uses,
        its own order kept where that allows (:func:`in_use_order`), so that one of its own
        may use one of ``texts`` and one of ``texts`` one of its own."""
        define = self.define + _definitions(texts)
        self.define = [define[k] for k in _use_order(define)]
        return self.check()

    @property
    def empty(self):
        """Whether the recipe does nothing: DATA is read and trained on as it is."""
        return not (self.samples or self.objects or self.define or self.where or self.weight)

    @property
    def classes(self):
        """The class names: the samples' names in the order given (none without samples)."""
        return [s.name for s in self.samples if s.name is not None]

    @property
    def weight_column(self):
        """The column of each event's weight after :meth:`apply`: the weight itself where it
        is a plain column and no sample scales it, else WEIGHT; None without weights."""
        scaled = any(s.scale != 1.0 for s in self.samples)
        if self.weight is None and not scaled:
            return None
        if self.weight is not None and _plain(self.weight) and not scaled:
            return self.weight
        return WEIGHT

    def check(self):
        """Parse every expression (definitions, objects, selections, weight) and check the
        names: a bad one is refused in one line naming it."""
        from fcnn_cli.data import expressions

        names = [n for n, _ in self.define + (self.expanded or [])]
        if len(names) > MAX_DEFINITIONS:
            raise FcnnError(f"{len(names)} definitions: at most {MAX_DEFINITIONS}", ("define",))
        try:
            expressions.check_once(names)
        except FcnnError as e:
            raise FcnnError(str(e), ("define",)) from None
        for spec in self.objects:
            try:
                expressions.collection(spec)
            except FcnnError as e:
                raise FcnnError(str(e), ("objects",)) from None
        for text, option in self._texts():
            self._expression(text, option)
        for reserved in (self.label, WEIGHT if self.weight_column == WEIGHT else None):
            if reserved is not None and reserved in names:
                raise FcnnError(f"definition {reserved!r}: fcnn makes a column of that name "
                                "(the class of each sample's rows, or the event weight)",
                                ("define",))
        return self

    def _texts(self):
        """(expression text, option) of every expression of the recipe."""
        yield from ((text, "define") for _, text in self.define + (self.expanded or []))
        yield from ((text, "where") for text in [self.where] if text)
        yield from ((s.where, "samples") for s in self.samples if s.where)
        yield from ((text, "weight") for text in [self.weight] if text and not _plain(text))

    def _expression(self, text, option):
        """The parsed expression of ``text`` (parsed once)."""
        if text not in self._parsed:
            from fcnn_cli.data import expressions

            try:
                self._parsed[text] = expressions.parse(text)
            except FcnnError as e:
                raise FcnnError(str(e), (option,)) from None
        return self._parsed[text]

    # The steps, on one table (or chunk) at a time.

    def definitions(self, columns=None):
        """[(name, Expression)] in the order derived: the objects' columns, then the
        definitions. The objects are expanded over ``columns`` on first use (training), and
        kept: every later table gets the same columns."""
        if self.objects and self.expanded is None:
            if columns is None:
                raise FcnnError("the objects' columns are known only from a table")
            self.expanded = self._expand(columns)
            self.check()
        return [(name, self._expression(text, "define"))
                for name, text in (self.expanded or []) + self.define]

    def _expand(self, columns):
        from fcnn_cli.data import expressions

        return [(name, expression.text) for spec in self.objects
                for name, expression in expressions.objects(spec, columns)]

    def derive(self, table):
        """``table`` with the objects' and the definitions' columns added."""
        definitions = self.definitions(table.frame)
        if not definitions:
            return table
        from fcnn_cli.data import expressions

        self._check_collections(table)

        try:
            frame = expressions.derive(table.frame, definitions)
        except FcnnError as e:
            raise FcnnError(f"{table.name}: {e}", e.options) from None
        return dataclasses.replace(table, frame=frame)

    def _check_collections(self, table):
        """Refuse a collection whose list columns differ in length in a row: its objects'
        columns would pair one muon's Px with another's charge."""
        import numpy as np

        from fcnn_cli.data import expressions
        from fcnn_cli.data.evaluator import Columns, Refused, is_list_column

        frame, columns = table.frame, Columns(table.frame)
        for spec in self.objects:
            name, _ = expressions.collection(spec)
            members = [c for c in frame.columns if str(c).startswith(name + "_") and
                       is_list_column(frame[c])]
            try:
                lengths = [columns.lists(c, 0).lengths for c in members]
            except Refused:  # not lists of numbers: the definitions say so
                continue
            for other, theirs in zip(members[1:], lengths[1:]):
                differ = theirs != lengths[0]
                if differ.any():
                    raise FcnnError(f"{table.name}: objects {spec}: {members[0]!r} and "
                                    f"{other!r} differ in length, first at row "
                                    f"{table.row(int(np.argmax(differ)))}", ("objects",))

    def passes(self, table, sample=None):
        """Whether each row of a derived ``table`` passes the selection (and ``sample``'s)."""
        import numpy as np

        keep = np.ones(len(table.frame), bool)
        for text, option in ((self.where, "where"), (sample and sample.where, "samples")):
            if text:
                keep &= self._truth(text, option, table)
        return keep

    def _truth(self, text, option, table):
        import numpy as np

        values = self._evaluate(text, option, table)
        if values.dtype != bool:
            raise FcnnError(f"{table.name}: {option} {text!r} gives numbers, not true or false; "
                            "compare them (x > 0)", (option,))
        return np.asarray(values, bool)

    def _evaluate(self, text, option, table):
        try:
            return self._expression(text, option).evaluate(table.frame)
        except FcnnError as e:
            raise FcnnError(f"{table.name}: {e}", e.options or (option,)) from None

    def select(self, table, sample=None):
        """(the rows of a derived ``table`` that pass the selection, how many did not)."""
        keep = self.passes(table, sample)
        if keep.all():
            return table, 0
        return rows_of(table, keep), int((~keep).sum())

    def weights(self, table, sample=None):
        """Each row's weight: the weight expression (1 without one) times ``sample``'s scale,
        finite; None where the recipe has no weights."""
        import numpy as np

        scale = sample.scale if sample is not None else 1.0
        # A sample of scale 1 beside scaled ones still weighs 1 each: only a recipe with no
        # weight at all has none.
        if self.weight_column is None:
            return None
        if self.weight is None:
            values = np.ones(len(table.frame))
        elif _plain(self.weight):
            values = _column(table, self.weight)
        else:
            values = self._evaluate(self.weight, "weight", table)
        values = np.asarray(values, np.float64) * scale
        bad = ~np.isfinite(values)
        if bad.any():
            raise FcnnError(f"{table.name}: the weight {self.weight!r} is NaN or infinite in "
                            f"{int(bad.sum())} row(s), first at row "
                            f"{table.row(int(np.argmax(bad)))}", ("weight",))
        return values

    def apply(self, table, sample=None, select=True, weigh=True):
        """``table`` through every step: derived, selected (``select``), with the class column
        of ``sample`` and the weight column (``weigh``)."""
        table = self.derive(table)
        if select:
            table, _ = self.select(table, sample)
        self._widen_ranges(table)
        return self.finish(table, sample, weigh)

    def _widen_ranges(self, table):
        """:attr:`ranges` widened by the rows of a derived, selected ``table``."""
        definitions = self.definitions()
        if not definitions:
            return
        import numpy as np

        from fcnn_cli.data import expressions
        from fcnn_cli.data.evaluator import is_list_column

        frame = table.frame
        for name in expressions.raw_columns(definitions, [n for n, _ in definitions]):
            series = frame.get(name)
            if series is None or getattr(series, "ndim", 1) != 1 or is_list_column(series):
                continue
            try:
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):  # not numbers: the evaluator says so, not this
                continue
            values = values[np.isfinite(values)]
            if len(values):
                lo, hi = self.ranges.get(name, (np.inf, -np.inf))
                self.ranges[name] = [float(min(lo, values.min())), float(max(hi, values.max()))]

    def finish(self, table, sample=None, weigh=True):
        """A derived, selected ``table`` with its class and weight columns."""
        import pandas as pd

        frame = table.frame
        added = {}
        if self.label is not None and sample is not None and sample.name is not None:
            if self.label in frame.columns:
                raise FcnnError(f"{table.name}: has a column {self.label!r}, the name of the "
                                "class column the samples make; name another with targets",
                                ("targets",))
            added[self.label] = pd.Categorical([sample.name] * len(frame),
                                               categories=self.classes, ordered=True)
        column = self.weight_column if weigh else None
        if column == WEIGHT:
            if WEIGHT in frame.columns:
                raise FcnnError(f"{table.name}: has a column {WEIGHT!r}, the name of the weight "
                                "column fcnn makes; rename it")
            added[WEIGHT] = self.weights(table, sample)
        if not added:
            return table
        extra = pd.DataFrame(added, index=frame.index)
        return dataclasses.replace(table, frame=pd.concat([frame, extra], axis=1))

    # What the recipe needs and leaves out.

    def needs(self, names, select=True, weigh=True, sample=None):
        """The raw columns a table must have to make the columns ``names`` (derived or raw),
        to select its rows (``select``: the selection, and ``sample``'s, the one the table is
        of) and to weigh them (``weigh``), in order."""
        wanted = list(names)
        if select:
            for text, option in ((self.where, "where"), (sample and sample.where, "samples")):
                wanted += self._expression(text, option).names if text else []
        if weigh and self.weight is not None:
            wanted += [self.weight] if _plain(self.weight) else \
                self._expression(self.weight, "weight").names
        made = {self.label, WEIGHT}
        wanted = [n for n in dict.fromkeys(wanted) if n not in made]
        if not self.define and not self.expanded:
            return wanted
        from fcnn_cli.data import expressions

        return expressions.raw_columns(self.definitions(), wanted)

    def making(self, names):
        """A recipe of the definitions alone that make the columns ``names``, in order."""
        made = _through(self.definitions(), names)
        return Recipe(define=[(n, e.text) for n, e in self.definitions() if n in made])

    def to_read(self, names):
        """The raw columns a file is read for to make the columns ``names`` through the steps:
        those :meth:`needs`, and those of every definition, which :meth:`derive` computes
        whether trained on or not (an object's Muon_E_0 beside the Muon_Px_0 taken)."""
        return self.needs([*names, *(n for n, _ in self.definitions())])

    def check_raw(self, table, names, select=True, weigh=True, sample=None):
        """Refuse a raw ``table`` (of ``sample``) that lacks a column the model reads: one of
        ``names`` or one that its definitions, selection or weight are made from, as a missing
        feature is refused (where the recipe reads nothing itself, the predictor's own check
        does)."""
        if not (self.define or self.expanded or self.where or self.weight or
                sample is not None and sample.where):
            return
        missing = [c for c in self.needs(names, select, weigh, sample)
                   if c not in table.frame.columns]
        if missing:
            raise FcnnError(f"{table.name}: missing column(s) {listed(map(repr, missing))} "
                            "that the model reads (a feature, or what its definitions, "
                            "selection or weight are made from)")

    def made(self, names):
        """Those of ``names`` that the recipe makes (derived, or its class column)."""
        defined = {n for n, _ in (self.expanded or []) + self.define} | {self.label}
        return [n for n in names if n in defined]

    def left_out(self, targets=()):
        """The columns that are no default features: :attr:`hidden`, the weight column, those
        the weight expression reads, and those the weight and defined ``targets`` are made from
        (a label ``lab=x1*2`` would give itself away by x1)."""
        out = {WEIGHT} if self.weight_column or self.weight else set()
        out |= set(self.hidden)
        names = [] if self.weight is None else [self.weight] if _plain(self.weight) else \
            list(self._expression(self.weight, "weight").names)
        out |= set(names)
        if self.define or self.expanded:
            from fcnn_cli.data import expressions

            defined = {n for n, _ in self.definitions()}
            pending = [n for n in [*names, *(targets or [])] if n in defined]
            out |= set(expressions.raw_columns(self.definitions(), pending))
            out |= _through(self.definitions(), pending)
        return out

    def features(self, table, targets=None, features=None):
        """The feature columns of a table made by this recipe: those named, or every other
        numeric column but the weight's, the labels' sources and the definitions that give a
        label away (None: as training chooses them). A named one that gives a label away is
        refused."""
        labels = list(targets or table.targets or ())
        away = self.given_away(labels)
        if features:
            for c in features:
                if c in away:
                    raise FcnnError(f"{table.name}: feature {c!r} is {_made_of(*away[c])}: "
                                    "the network would read the label off it", ("features",))
            return features
        out = self.left_out(labels)
        suspect = self.given_away(labels, sources=True)
        if not out and not suspect:
            return features
        from fcnn_cli.data.columns import select_columns

        chosen, _ = select_columns(table, targets, None)
        chosen = [c for c in chosen if c not in out]  # the weight is no leak to warn of
        _say_left_out(table.name, [c for c in chosen if c in away], away,
                      "the network would read the label off {}")
        _say_left_out(table.name, [c for c in chosen if c in suspect and c not in away],
                      suspect, "it may give the label away: name {} in --features to keep it")
        chosen = [c for c in chosen if c not in suspect]
        if not chosen:
            raise FcnnError(f"{table.name}: no numeric feature columns besides the labels, "
                            "the columns made from them and the weight's")
        return chosen

    def given_away(self, labels, sources=False):
        """{defined column: (the labels, the columns it reads them through)} of the
        definitions that are no label and read one, or a definition a label is made of,
        directly or through other definitions (``x2=x*2`` of the label x): a network fed one
        would learn the label from it rather than from the measurements. With ``sources``,
        those that read a raw column a defined label is made of too, which may give it away
        (``r=E_true*1`` beside the label ``k=E_true/E_reco``) or not (``logE=log(E_reco)``):
        no default features, but a user may name them."""
        if not (self.define or self.expanded):
            return {}
        from fcnn_cli.data import expressions

        definitions = self.definitions()
        origin = {}  # each label, and each definition a label is made of: its labels
        for label in labels:
            made_of = _through(definitions, [label])
            if sources and label in dict(definitions):
                made_of |= set(expressions.raw_columns(definitions, [label]))
            for name in {label, *made_of}:
                origin.setdefault(name, []).append(label)
        away = {}
        for name, expression in definitions:  # in order: those a definition reads come first
            if name in origin:
                continue
            read = [n for n in expression.names if n in origin or n in away]
            if read:
                given = [x for n in read for x in (origin[n] if n in origin else away[n][0])]
                away[name] = (list(dict.fromkeys(given)), [n for n in read if n not in labels])
        return away

    # Reading and recording.

    def find(self):
        """Look for every sample's files (globs, directories); a file in two samples is
        refused: its rows would count twice, in two classes."""
        for sample in self.samples:
            sample.find()
        sampling.check_once(self.samples)
        return self

    def record(self):
        """Record each file's path, size and SHA-256."""
        for sample in self.samples:
            sample.record()
        return self

    def files(self):
        return [f for s in self.samples for f in s.files]

    def run_name(self):
        """What names a run's default directory: the samples' names, or DATA's first file."""
        named = [s.name for s in self.samples if s.name is not None]
        return "-".join(named[:3]) if named else self.files()[0]

    def name(self):
        """How messages name the table of all the samples."""
        named = [s.name for s in self.samples if s.name is not None]
        if named:
            return "samples " + ", ".join(named)
        files = self.files()
        return files[0] if len(files) == 1 else f"{files[0]} and {len(files) - 1} more"

    def to_dict(self):
        return {"samples": [s.to_dict() for s in self.samples], "label": self.label,
                "objects": list(self.objects),
                "expanded": None if self.expanded is None else [list(d) for d in self.expanded],
                "define": [list(d) for d in self.define], "where": self.where,
                "weight": self.weight, "ranges": dict(self.ranges)}

    @classmethod
    def from_dict(cls, d):
        """The recipe of ``to_dict``'s dict, read back as untrusted input (see
        :mod:`fcnn_cli.data.recipefile`)."""
        from fcnn_cli.data.recipefile import read

        return read(d)

    def options(self, absolute=False):
        """The recipe as configuration keys: ``samples`` (tables), ``define``, ``objects``,
        ``where`` and ``weight``; ``files`` the files found (else the patterns as given),
        ``absolute``: made absolute (a configuration file takes relative paths from its
        own directory)."""
        import os

        from fcnn_cli.data.expressions import written

        def path(p):
            return os.path.abspath(p) if absolute and p != "-" else p

        samples = [{"name": s.name, "files": [path(f) for f in s.files or s.patterns],
                    "scale": s.scale, **({"where": s.where} if s.where else {})}
                   for s in self.samples if s.name is not None]
        return {"samples": samples or None,
                "define": [f"{written(n)}={t}" for n, t in self.define] or None,
                "objects": list(self.objects) or None, "where": self.where,
                "weight": self.weight}


KEYS = ("samples", "define", "objects", "where", "weight")  # configuration keys of a recipe


def options_of(recipe, absolute=False):
    """The configuration keys of ``recipe`` (None: every key unset)."""
    return dict.fromkeys(KEYS) if recipe is None else recipe.options(absolute)


def rows_of(table, keep):
    """The rows ``keep`` (a boolean mask) of ``table``, each still named by its file row."""
    import numpy as np

    rows = table.file_rows if table.file_rows is not None else \
        np.arange(table.first_row + 1, table.first_row + 1 + len(table.frame))
    return dataclasses.replace(table, frame=table.frame[keep].reset_index(drop=True),
                               file_rows=np.asarray(rows)[keep])


def _plain(text):
    """Whether an expression is a bare column name, read as it is: by the language's own rule
    (``nan`` or ``pi`` is a constant, ``é`` no name but in back quotes)."""
    from fcnn_cli.data.expressions import is_name

    return is_name(text)


def _column(table, name):
    if name not in table.frame.columns:
        raise FcnnError(f"{table.name}: no weight column {name!r}", ("weight",))
    from fcnn_cli.data.columns import is_numeric

    series = table.frame[name]
    if not is_numeric(series):
        raise FcnnError(f"{table.name}: weight column {name!r} is not numeric", ("weight",))
    return series.to_numpy(dtype="float64", na_value=float("nan"))


def _say_left_out(name, columns, made, why):
    """The line that leaves ``columns`` out of the default features, each as ``made`` says it
    is made, and ``why`` ({}: it, or them)."""
    if columns:
        log.warning("%s: leaving out of the features %s: " + why.format(
            "it" if len(columns) == 1 else "them"), name,
            ", ".join(f"{c!r} ({_made_of(*made[c])})" for c in columns))


def _made_of(labels, through):
    """How a column that gives ``labels`` away is made, in words."""
    said = f"made from the label{'s' if len(labels) > 1 else ''} {', '.join(map(repr, labels))}"
    return said + (f" through {', '.join(map(repr, through))}" if through else "")


def _through(definitions, names):
    """The defined columns that ``names`` are made of, transitively."""
    exprs = dict(definitions)
    seen, pending = set(), list(names)
    while pending:
        name = pending.pop()
        if name in seen or name not in exprs:
            continue
        seen.add(name)
        pending += list(exprs[name].names)
    return seen


def in_use_order(texts):
    """The definitions ``texts`` ("NAME=EXPR") in an order in which each comes after the
    definitions it uses, theirs kept where it allows; a cycle is refused naming it."""
    return [texts[k] for k in _use_order(_definitions(texts))]


def _use_order(define):
    """The indices of ``define`` ([(name, expression text)]) in use order."""
    from fcnn_cli.data import expressions

    try:
        return expressions.use_order([(name, expressions.parse(text).names)
                                      for name, text in define])
    except FcnnError as e:
        raise FcnnError(str(e), ("define",)) from None


def _definitions(texts):
    """[(name, expression text)] of ``NAME=EXPR`` texts, each parsed."""
    if not texts:
        return []
    from fcnn_cli.data import expressions

    try:
        return [(name, e.text) for name, e in expressions.definitions(texts)]
    except FcnnError as e:
        raise FcnnError(str(e), ("define",)) from None
