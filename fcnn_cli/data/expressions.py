"""The expressions of derived columns, selections and weights (``--define pt=sqrt(px**2 +
py**2)``, ``--where 'NMuon >= 2 && pt1 > 20'``), and the padded objects of a collection of
list columns (``--objects Muon:2``).

An expression is parsed here by its own tokenizer and parser into a program that only the
evaluator (``evaluator``) runs: numbers, columns, the operators below and the functions of a
fixed table. Nothing in it can name Python: there is no attribute, no call but those of the
table, and a text is a value a column is compared with, nothing else, so that an expression
read from a checkpoint, which is untrusted, can do no more than compute. Its length and nesting
are bounded before anything deep happens.

The language, loosest binding first::

    or  ||                      either (left to right)
    and &&                      both
    not                         negation, Python's: not a == b is not (a == b)
    < <= > >= == != in          comparisons; they do not chain (a < b < c is refused)
    + -                         sum, difference
    * / %                       product, quotient, remainder (numpy's: the divisor's sign)
    - + !                       sign, and C++'s negation: !a == b is (!a) == b
    ??                          a ?? v: v where a is NaN (a missing list element or value)
    **                          power, right to left; -2**2 is -4, 2**-1 is 0.5
    f(…)  NAME[i]  (…)          calls, list elements, parentheses

Numbers are written 3, 2.5, 1e-3, and ``nan``, ``inf``, ``pi``; a column by its name, or in
back quotes where the name is not an identifier or is one of the words above:
```Muon pt (GeV)```. ``NAME[i]`` is element i of a list column (``NAME[-1]`` the last), NaN
where the row's list is shorter; ``len``, ``sum``, ``max``, ``min`` of a list column are its
length, sum (0 if empty), largest and smallest element (NaN if empty). ``fmin(a, b, …)`` and
``fmax(a, b, …)`` take two or more values and skip NaN, as numpy's fmin and fmax: the earliest
of several arrival times, some missing, is ``fmin(tp1, tp2, tp3)``. Everything is computed
in float64 as numpy does (1/0 is inf, sqrt(-1) nan); comparisons and logic give booleans,
which count as 0 and 1 in arithmetic, and a number is true unless 0 (NaN is true).

Texts are written in single or double quotes (``'barrel'``, no control characters) and only
compared with a column: ``region == 'barrel'``, ``region != 'barrel'``, ``region in ('barrel',
'endcap')``. The column's values compare as texts, as categorical features take them (11, 11.0
and "11" are "11"); a missing value equals no text. ``a in (1, 2.5, -3)`` is a == 1 or a == 2.5
or a == -3, of any expression ``a``.
"""

import re
from typing import NamedTuple

from fcnn_cli.core.config import repeated
from fcnn_cli.core.errors import FcnnError, printable, shown
from fcnn_cli.data.evaluator import (COMPARISONS, FOLDED, FUNCTIONS, REDUCERS, Columns, Refused,
                                     arity, is_list_column, listing, run, suggestion)

MAX_LENGTH = 10_000  # characters of an expression
MAX_DEPTH = 64  # nested parentheses, calls and operators
MAX_OBJECTS = 64  # K of NAME:K
CONSTANTS = {"nan": float("nan"), "inf": float("inf"), "pi": 3.141592653589793}
WORDS = {"and": "and", "or": "or", "not": "not", "in": "in", "&&": "and", "||": "or"}
# Infix operators: (binding power, the bound of their right operand): left to right but for
# **, whose right operand binds it again.
COMPARING = (*COMPARISONS, "in")
INFIX = {"or": (10, 10), "and": (20, 20), **{c: (40, 40) for c in COMPARING},
         "+": (50, 50), "-": (50, 50), "*": (60, 60), "/": (60, 60), "%": (60, 60),
         "??": (80, 80), "**": (90, 89)}
PREFIX = {"not": 30, "-": 70, "+": 70, "!": 70}  # the bound of their operand
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_TOKEN = re.compile(r"""(?P<space>\s+)
    |(?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<quoted>`[^`\x00-\x1f\x7f]+`)
    |(?P<text>'[^'\x00-\x1f\x7f]*'|"[^"\x00-\x1f\x7f]*")
    |(?P<op>\*\*|\?\?|<=|>=|==|!=|&&|\|\||[-+*/%<>!()\[\],=])""", re.ASCII | re.VERBOSE)
HINTS = {"&": "write 'and' or &&", "|": "write 'or' or ||", "^": "write ** for a power",
         "'": "a text needs its closing quote (and no control characters); a column name "
              "that is not an identifier is written in back quotes: `a b`",
         ".": "a column whose name holds '.' is written in back quotes: `a.b`",
         "`": "a back-quoted name needs its closing ` (and no control characters)"}
HINTS['"'] = HINTS["'"]
EXAMPLE = "e.g. pt=sqrt(px**2 + py**2)"
TEXT_EXAMPLE = "e.g. region == 'barrel' or region in ('barrel', 'endcap')"


class Token(NamedTuple):
    kind: str  # "number", "name", "quoted", "end", or the operator itself
    text: str
    position: int  # 0-based


class Expression:
    """A parsed expression: ``text`` as written, and ``names``, the columns it reads (in
    order of first appearance). The text is all it is: a checkpoint keeps the text and
    :func:`parse` reads it again, with the same checks."""

    __slots__ = ("text", "names", "_program")

    def __init__(self, text, program, names):
        self.text, self._program, self.names = text, tuple(program), tuple(names)

    @property
    def program(self):
        """The expression in postfix order, ``(kind, argument, position)`` each, as the
        evaluator runs it: for a translation to other operations (an ONNX graph's)."""
        return self._program

    def evaluate(self, frame):
        """Its value on every row of the pandas ``frame``: a float64 array, or bool for a
        comparison or logic; FcnnError naming a column it lacks."""
        return self._values(Columns(frame), "expression")

    def _values(self, columns, label):
        try:
            return run(self._program, columns)
        except Refused as e:
            raise _failure(label, self.text, e.position, e.problem) from None

    def __eq__(self, other):
        return isinstance(other, Expression) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return f"Expression({self.text!r})"


def parse(text):
    """The :class:`Expression` of ``text``; FcnnError naming the expression, the character
    (from 1) and the problem."""
    return _parsed(text, "expression")


def definitions(texts):
    """``[(name, Expression)]`` of texts "NAME=EXPR" (NAME an identifier or back-quoted), in
    order; a name defined twice is refused."""
    made = [_definition(text) for text in texts]
    check_once([name for name, _ in made])
    return made


def check_once(names):
    """Refuse a name defined twice: the second column would hide the first."""
    twice = repeated(names)
    if twice is not None:
        raise FcnnError(f"definition {twice!r} is given twice; name each one otherwise")


def use_order(uses):
    """The indices of definitions ``uses`` ([(name, the names its expression reads)]) in an
    order in which each comes after the definitions it uses, the given order kept where that
    allows: the earliest that can come next comes next. A definition that uses itself through
    others is refused, the cycle named. One that reads its own name reads the table's column
    of that name, not itself: no cycle (making a column the table has is refused, in its own
    words, where the definitions are made)."""
    import heapq

    index = {name: k for k, (name, _) in enumerate(uses)}
    needs = [{index[n] for n in names if n in index and n != name} for name, names in uses]
    users = [[] for _ in uses]
    for k, needed in enumerate(needs):
        for n in needed:
            users[n].append(k)
    waiting = [len(needed) for needed in needs]
    ready = [k for k, count in enumerate(waiting) if not count]
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for user in users[k]:
            waiting[user] -= 1
            if not waiting[user]:
                heapq.heappush(ready, user)
    if len(order) < len(uses):
        raise FcnnError(_cycle(uses, needs, set(order)))
    return order


def _cycle(uses, needs, placed):
    """The message naming a cycle among the definitions not ``placed``: each of them waits
    on another, so following the first unplaced one each needs returns to one seen."""
    path, k = [], min(set(range(len(uses))) - placed)
    while k not in path:
        path.append(k)
        k = min(needs[k] - placed)
    cycle = [uses[n][0] for n in path[path.index(k):]] + [uses[k][0]]
    return f"definition {cycle[0]!r} uses " + ", which uses ".join(repr(n) for n in cycle[1:]) \
        + ": no order of the definitions computes them"


def derive(frame, definitions):
    """A new frame: the columns of ``frame`` and, in order, each of ``definitions`` as a float64
    column (a comparison as 0 and 1), each seeing those before it. A definition makes a new
    column: one whose name the frame has already is refused."""
    import numpy as np
    import pandas as pd

    columns = Columns(frame)
    names = [name for name, _ in definitions]
    check_once(names)
    for k, (name, expression) in enumerate(definitions):
        if name in frame.columns:
            raise FcnnError(f"definition {name!r}: the table has a column {name!r} already; "
                            "give the definition a name of its own")
        later = [n for n in expression.names if n not in frame.columns and
                 n not in columns.made and n in names[k + 1:]]
        if later:
            raise FcnnError(f"definition {name!r} uses {later[0]!r}, which is defined after "
                            f"it: define {later[0]!r} first")
        values = expression._values(columns, f"definition {name!r}: expression")
        columns.made[name] = values.astype(np.float64, copy=False)
    if not columns.made:
        return frame.copy(deep=False)
    return pd.concat([frame, pd.DataFrame(columns.made, index=frame.index)], axis=1)


def raw_columns(definitions, names):
    """The columns of the table that ``names`` need, through the ``definitions`` they name
    (a definition sees only those before it), in order of first need."""
    index = {name: k for k, (name, _) in enumerate(definitions)}
    needed, seen, resolved = [], set(), set()
    pending = [(name, len(definitions)) for name in reversed(list(names))]
    while pending:
        name, before = pending.pop()
        k = index.get(name)
        if k is not None and k < before:
            if k not in resolved:
                resolved.add(k)
                pending.extend((n, k) for n in reversed(definitions[k][1].names))
        elif name not in seen:
            seen.add(name)
            needed.append(name)
    return needed


def objects(spec, columns):
    """The definitions that pad the leading K objects of the collection ``spec`` "NAME:K":
    for each list column NAME_X, ``NAME_X_i = NAME_X[i]`` (NaN where the event has fewer than
    i + 1), and ``NAME_i_present = len(NAME_X) > i`` (0 or 1) of its first list column, for i
    from 0 to K - 1, object by object. ``columns`` is the frame, or a mapping of each column's
    name to whether it holds lists (what a file's schema tells without reading rows)."""
    name, count = collection(spec)
    lists = [str(c) for c in columns.columns if is_list_column(columns[c])] \
        if hasattr(columns, "columns") else [str(c) for c, listed in columns.items() if listed]
    members = [c for c in lists if c.startswith(name + "_")]
    if not members:
        there = f"the list columns are {listing(lists)}" if lists else \
            "the table has no list columns"
        raise FcnnError(f"objects {shown(spec)}: no list column {name}_…; {there}")
    made = []
    for i in range(count):
        made += [(f"{c}_{i}", parse(f"{written(c)}[{i}]")) for c in members]
        made.append((f"{name}_{i}_present", parse(f"len({written(members[0])}) > {i}")))
    return made


def collection(spec):
    """(NAME, K) of an objects spec "NAME:K"; FcnnError otherwise."""
    name, _, count = str(spec).rpartition(":")
    if not name.strip() or not count.isascii() or not count.isdigit() or len(count) > 3 or \
            not 1 <= int(count) <= MAX_OBJECTS:
        raise FcnnError(f"objects {shown(spec)}: write NAME:K, K the number of objects from 1 "
                        f"to {MAX_OBJECTS}, e.g. Muon:2")
    return name, int(count)


def is_name(text):
    """Whether ``text`` is a column as an expression writes it bare: an identifier of the
    language (ASCII), not one of its constants or words."""
    return bool(IDENTIFIER.fullmatch(text)) and text not in CONSTANTS and text not in WORDS


def written(name):
    """A column's name as an expression writes it: bare, or in back quotes."""
    if is_name(name):
        return name
    if "`" in name or not name.isprintable():
        raise FcnnError(f"column {printable(repr(name))} cannot be named in an expression")
    return f"`{name}`"


def _definition(text):
    if not isinstance(text, str):
        raise FcnnError(f"a definition is a text NAME=EXPR, not {shown(text)}")
    tokens = _tokens(text[:MAX_LENGTH + 1])
    try:  # an empty text has its "end" token alone: no second
        first, second = next(tokens), next(tokens, None)
    except Refused:
        first = second = None
    if first is None or first.kind not in ("name", "quoted") or second is None or \
            second.kind != "=":
        raise FcnnError(f"definition {_excerpt(text, 0)}: write NAME=EXPR, {EXAMPLE}; a name "
                        "that is not an identifier in back quotes, `a b`=…")
    name = _name(first)
    if first.kind == "name" and name in CONSTANTS:
        raise FcnnError(f"definition {name!r}: {name} is a constant; write `{name}`=… to "
                        "name a column so")
    return name, _parsed(text[second.position + 1:].strip(), f"definition {name!r}: expression")


def _parsed(text, label):
    if not isinstance(text, str):
        raise FcnnError(f"{label} must be text, not {shown(text)}")
    try:
        if len(text) > MAX_LENGTH:
            raise Refused(MAX_LENGTH, f"longer than {MAX_LENGTH} characters "
                                      f"(it has {len(text):,})")
        parser = _Parser(text)
        return Expression(text, parser.program, parser.names)
    except Refused as e:
        raise _failure(label, text, e.position, e.problem) from None


class _Parser:
    """Pratt's parser, writing the program in postfix order as it reads. Each level of
    nesting is one call of :meth:`expression`, counted: past MAX_DEPTH it stops, far from
    Python's recursion limit."""

    def __init__(self, text):
        self.tokens, self.program, self.names, self.depth = _tokens(text), [], {}, 0
        self.token = next(self.tokens)
        if self.token.kind == "end":
            raise Refused(0, "the expression is empty")
        self.expression(0)
        if self.token.kind != "end":
            raise Refused(self.token.position, _unexpected(self.token, "an operator or the end"))
        self.program = _typed(self.program)

    def advance(self):
        """The token read, and the next one; the end stays the end (an operator that ends
        the text then finds its operand missing, and says so)."""
        token = self.token
        if token.kind != "end":
            self.token = next(self.tokens)
        return token

    def emit(self, kind, argument, position):
        self.program.append((kind, argument, position))

    def expression(self, bound):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Refused(self.token.position, f"nested more than {MAX_DEPTH} deep")
        self.operand()
        compared = False
        while self.token.kind in INFIX and INFIX[self.token.kind][0] > bound:
            operator = self.advance()
            if operator.kind in COMPARING:
                if compared:
                    raise Refused(operator.position, "comparisons do not chain: write "
                                                     "a < b and b < c")
                compared = True
            if operator.kind == "in":
                self.emit("in", self.members(), operator.position)
                self.refuse_arithmetic_after("in")
                continue
            self.expression(INFIX[operator.kind][1])
            self.emit("binary", operator.kind, operator.position)
        self.depth -= 1

    def refuse_arithmetic_after(self, comparison):
        """An operator that binds tighter than a comparison, after a comparison's right side
        that is no operand (``in (…)``), would take the comparison's 0/1 as its operand:
        refused, as every other comparison leaves arithmetic to its sides."""
        after = self.token
        if after.kind in INFIX and INFIX[after.kind][0] > INFIX[comparison][0]:
            raise Refused(after.position, f"'{comparison} (…)' compares: put the arithmetic "
                                          f"on its left side, or write (a {comparison} (…)) "
                                          f"{after.kind} …")

    def operand(self):
        token = self.advance()
        if token.kind == "number":
            self.emit("number", float(token.text), token.position)
        elif token.kind == "name" and self.token.kind == "(":
            self.call(token)
        elif token.kind == "name" and token.text in CONSTANTS:
            self.emit("number", CONSTANTS[token.text], token.position)
        elif token.kind in ("name", "quoted"):
            if self.token.kind == "[":
                self.item(token)
            else:
                self.emit("column", self.column(token), token.position)
        elif token.kind == "text":
            self.emit("literal", token.text[1:-1], token.position)
        elif token.kind == "(":
            self.expression(0)
            self.expect(")", "')' to close the '(' at character " + str(token.position + 1))
        elif token.kind in PREFIX:
            self.expression(PREFIX[token.kind])
            self.emit("unary", token.kind, token.position)
        else:
            raise Refused(token.position, _unexpected(token, "a number, a column or '('"))

    def column(self, token):
        name = _name(token)
        self.names.setdefault(name)
        return name

    def call(self, function):
        name = function.text
        if name in REDUCERS:
            return self.reduce(function)
        if name not in FUNCTIONS:
            known = [*FUNCTIONS, *REDUCERS]
            raise Refused(function.position, f"unknown function {name!r}; " + (
                suggestion(name, known) or f"the functions are {', '.join(known)}"))
        self.advance()
        count = 0
        if self.token.kind != ")":
            self.expression(0)
            count = 1
            while self.token.kind == ",":
                self.advance()
                self.expression(0)
                count += 1
        self.expect(")", "',' or ')'")
        wanted = FUNCTIONS[name][1]
        if count != wanted and not (name in FOLDED and count > wanted):
            raise Refused(function.position, f"{name} takes {wanted} argument"
                                             f"{'s' if wanted > 1 else ''}"
                                             f"{' or more' if name in FOLDED else ''}, "
                                             f"not {count}")
        self.emit("call", (name, count), function.position)

    def reduce(self, function):
        name = function.text
        self.advance()
        column = self.advance()
        if column.kind not in ("name", "quoted") or self.token.kind != ")":
            other = {"max": "maximum", "min": "minimum"}.get(name)
            also = f"; of two values, {other}(a, b)" if other and self.token.kind == "," \
                else ""
            raise Refused(function.position, f"{name} takes one list column, e.g. "
                                             f"{name}(Muon_Px){also}")
        self.advance()
        self.emit("reduce", (name, self.column(column)), column.position)

    def item(self, column):
        self.advance()
        sign = -1 if self.token.kind == "-" else 1
        if sign < 0:
            self.advance()
        number = self.advance()
        if number.kind != "number" or not number.text.isdigit() or len(number.text) > 9 or \
                self.token.kind != "]":
            name = _written_token(column)
            raise Refused(number.position, f"an index is a whole number: {name}[0] is the "
                                           f"first element, {name}[-1] the last")
        self.advance()
        self.emit("item", (self.column(column), sign * int(number.text)), column.position)

    def members(self):
        """The values of ``in (…)``: texts, or numbers (each with its sign), one kind alone."""
        self.expect("(", "'(' and its values, e.g. region in ('barrel', 'endcap')")
        values = [self.member()]
        while self.token.kind == ",":
            self.advance()
            if self.token.kind == ")":  # ('barrel',), as Python writes one
                break
            values.append(self.member())
        self.expect(")", "',' or ')'")
        if len({isinstance(v, str) for v in values}) > 1:
            raise Refused(self.token.position - 1, "the values of in (…) are texts or numbers, "
                                                   "not both")
        return tuple(values)

    def member(self):
        token = self.advance()
        if token.kind == "text":
            return token.text[1:-1]
        sign = 1.0
        if token.kind in ("-", "+"):
            sign, token = -1.0 if token.kind == "-" else 1.0, self.advance()
        if token.kind == "number":
            return sign * float(token.text)
        if token.kind == "name" and token.text in CONSTANTS:
            return sign * CONSTANTS[token.text]
        raise Refused(token.position, _unexpected(token, "a text or a number"))

    def expect(self, kind, wanted):
        if self.token.kind != kind:
            raise Refused(self.token.position, _unexpected(self.token, wanted))
        self.advance()


def _typed(program):
    """``program`` with each comparison of a column with a text literal made one "text" step
    (the column, the texts, whether negated) and ``in`` of numbers an "isin" step; a text
    anywhere else is refused where it stands. One pass over the postfix steps, following which
    step made each value of the stack."""
    out, made = [], []
    for kind, argument, position in program:
        count = 1 if kind == "in" else arity(kind, argument)
        taken = made[len(made) - count:]
        del made[len(made) - count:]
        literals = [s for s in taken if s[0] == "literal"]
        columns = [s for s in taken if s[0] == "column"]
        step = (kind, argument, position)
        if kind == "binary" and argument in ("==", "!=") and literals:
            if len(literals) > 1 or not columns:
                _refuse_text(literals[0])
            del out[-2:]  # the column and the text, leaves: the last two steps
            step = ("text", (columns[0][1], (literals[0][1],), argument == "!="), columns[0][2])
        elif literals and kind == "call":
            name, k = argument[0], taken.index(literals[0]) + 1
            raise Refused(literals[0][2], f"{name} takes numbers: its argument {k} is the text "
                                          f"{_quoted(literals[0])}")
        elif literals:
            _refuse_text(literals[0])
        elif kind == "in" and argument and isinstance(argument[0], str):
            if not columns:
                raise Refused(position, f"texts are compared with a column, {TEXT_EXAMPLE}")
            del out[-1:]
            step = ("text", (columns[0][1], argument, False), columns[0][2])
        elif kind == "in":
            step = ("isin", argument, position)
        out.append(step)
        made.append(step)
    if made[0][0] == "literal":
        _refuse_text(made[0])
    return out


def _refuse_text(step):
    raise Refused(step[2], f"the text {_quoted(step)} is compared with a column alone, by ==, "
                           f"!= or in: {TEXT_EXAMPLE}")


def _quoted(step):
    """A text literal's step as a message shows it."""
    return printable(repr(step[1][:40]))


def _tokens(text):
    """The tokens of ``text``, one at a time (a refused character stops the parse where it
    stands), then one "end"."""
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            character = text[position]
            hint = HINTS.get(character)
            raise Refused(position, f"unexpected character {printable(repr(character))}"
                                    + (f": {hint}" if hint else ""))
        kind = match.lastgroup
        if kind != "space":
            word = match[0]
            if kind == "op" or kind == "name" and word in WORDS:
                kind = WORDS.get(word, word)
            yield Token(kind, word, position)
        position = match.end()
    yield Token("end", "", len(text))


def _name(token):
    return token.text[1:-1] if token.kind == "quoted" else token.text


def _written_token(token):
    return token.text if token.kind in ("name", "quoted") else "NAME"


def _unexpected(token, wanted):
    if token.kind == "end":
        return f"the expression ends where {wanted} should follow"
    if token.kind == "=":
        return "'=' is not a comparison: write == to compare"
    return f"unexpected {printable(repr(token.text[:40]))} where {wanted} should be"


def _excerpt(text, position, width=60):
    """``text`` quoted on one line, the part around ``position`` where it is long."""
    start = max(0, min(position - width // 2, len(text) - width))
    piece = text[start:start + width]
    return "'" + ("…" if start else "") + printable(piece) + \
        ("…" if start + width < len(text) else "") + "'"


def _failure(label, text, position, problem):
    return FcnnError(f"{label} {_excerpt(text, position)}, character {position + 1}: {problem}")
