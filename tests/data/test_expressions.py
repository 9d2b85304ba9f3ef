"""The expression language: values against numpy, precedence, list columns as Parquet and ROOT
files give them, definitions and objects, and hostile inputs refused without running."""

import operator
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import expressions
from fcnn_cli.data.expressions import definitions, derive, objects, parse, raw_columns
from fcnn_cli.data.tables import read_table

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(7)
A = np.concatenate([RNG.normal(size=20), [0.0, -0.0, 1.0, -2.5, np.nan, np.inf, 3.0]])
B = np.concatenate([RNG.normal(size=20), [0.0, 2.0, 0.0, 0.5, 1.0, 2.0, np.nan]])
C = RNG.uniform(-1, 1, size=len(A))
FRAME = pd.DataFrame({"a": A, "b": B, "c": C, "n": np.arange(len(A), dtype=np.int32),
                      "flag": A > 0, "Muon pt (GeV)": B * 2})
MUONS = [[1.0, 2.0, 3.0], [], [4.5], [np.nan, -1.0], [7.0, 8.0, 9.0, 10.0]]


def value(text, frame=FRAME):
    return parse(text).evaluate(frame)


def same(got, want):
    np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=1e-13,
                               equal_nan=True)


def refused(text, *parts, frame=FRAME):
    with pytest.raises(FcnnError) as error:
        parse(text).evaluate(frame)
    message = str(error.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message
    return message


with np.errstate(all="ignore"):  # the expected values hold inf and NaN, as they should
    NUMBERS = [
        ("a + b", A + B), ("a - b", A - B), ("a * b", A * B), ("a / b", A / B),
        ("a % b", np.remainder(A, B)), ("a ** 2", A ** 2), ("abs(a) ** b", np.abs(A) ** B),
        ("-a", -A), ("+a", A), ("a ?? 5", np.where(np.isnan(A), 5, A)),
        ("abs(a)", np.abs(A)), ("sqrt(a)", np.sqrt(A)), ("exp(a)", np.exp(A)),
        ("log(a)", np.log(A)), ("log10(a)", np.log10(A)), ("sin(a)", np.sin(A)),
        ("cos(a)", np.cos(A)), ("tan(a)", np.tan(A)), ("arcsin(c)", np.arcsin(C)),
        ("arccos(c)", np.arccos(C)), ("arctan(a)", np.arctan(A)),
        ("arctan2(a, b)", np.arctan2(A, B)), ("sinh(c)", np.sinh(C)), ("cosh(c)", np.cosh(C)),
        ("tanh(a)", np.tanh(A)), ("hypot(a, b)", np.hypot(A, B)),
        ("minimum(a, b)", np.minimum(A, B)), ("maximum(a, b)", np.maximum(A, B)),
        ("fmin(a, b)", np.fmin(A, B)), ("fmax(a, b)", np.fmax(A, B)),
        ("fmin(a, b, c)", np.fmin(np.fmin(A, B), C)), ("fmax(c, 0, a)", np.fmax(np.fmax(C, 0), A)),
        ("fmin(nan, nan)", np.nan), ("fmax(1, 2, nan)", 2.0),
        ("clip(a, -0.5, c)", np.clip(A, -0.5, C)), ("where(a > b, a, c)", np.where(A > B, A, C)),
        ("n / 4", np.arange(len(A)) / 4), ("1 / 0", np.inf), ("0 / 0", np.nan),
        ("-1 % 3", 2.0), ("`Muon pt (GeV)` / 2", B), ("nan", np.nan), ("inf", np.inf),
        ("pi", np.pi), ("1e-3", 0.001), (".5e1", 5.0), ("2.", 2.0),
    ]


@pytest.mark.parametrize("text, want", NUMBERS)
def test_arithmetic_and_functions_equal_numpy(text, want):
    got = value(text)
    assert got.dtype == np.float64 and got.shape == (len(FRAME),)
    same(got, want)


@pytest.mark.parametrize("text, want", [
    ("a < b", A < B), ("a <= b", A <= B), ("a > b", A > B), ("a >= b", A >= B),
    ("a == b", A == B), ("a != b", A != B), ("isnan(a)", np.isnan(A)),
    ("a > 0 and b > 0", (A > 0) & (B > 0)), ("a > 0 or b > 0", (A > 0) | (B > 0)),
    ("not a > 0", ~(A > 0)), ("a > 0 && b > 0 || c > 0", (A > 0) & (B > 0) | (C > 0)),
    ("!(a > 0)", ~(A > 0)), ("a and b", (A != 0) & (B != 0)), ("!a", A == 0), ("flag", A > 0),
])
def test_comparisons_and_logic_give_booleans(text, want):
    got = value(text)
    if text == "flag":  # a boolean column is read as a number
        assert got.dtype == np.float64 and np.array_equal(got, want)
        return
    assert got.dtype == bool
    np.testing.assert_array_equal(got, want)


def test_booleans_count_as_numbers_in_arithmetic():
    same(value("(a > 0) + (b > 0)"), (A > 0).astype(float) + (B > 0))
    same(value("-(a > 0)"), -(A > 0).astype(float))


@pytest.mark.parametrize("text, want", [
    ("-2**2", -4), ("2**-1", 0.5), ("2**3**2", 512), ("(2**3)**2", 64), ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9), ("7 - 3 - 2", 2), ("8 / 4 / 2", 1), ("2 * 3 % 4", 2),
    ("-3 ?? 1", -3), ("nan ?? 1 + 2", 3), ("nan ?? 2 ** 3", 8), ("2 ** nan ?? 3", 3),
    ("-nan ?? 4", -4), ("1 < 2 == 1", None), ("not 1 == 2", True), ("!1 == 0", True),
    ("not 0 and 0", False), ("1 or 0 and 0", True), ("!0 + 1", 2), ("1 - -1", 2),
])
def test_precedence(text, want):
    if want is None:
        refused(text, "do not chain")
        return
    got = value(text)
    assert got[0] == want and np.all(got == got[0])


def test_results_are_new_arrays_and_the_frame_is_never_written():
    frame = FRAME.assign(m=pd.Series([np.array([1.0, 2.0])] * len(FRAME)))
    before = frame.copy()
    value("a", frame)[:] = 0
    for text in ["-a", "+a", "sqrt(abs(a)) * b + c", "hypot(a, b) ** 2 - a", "m[0] * a",
                 "clip(a, b, c) / n", "-(a > b)"]:
        value(text, frame)
    made = derive(frame, definitions(["x=a", "y=x * 2 + x", "z=-y - x"]))
    pd.testing.assert_frame_equal(frame, before)
    same(made["x"], A)
    same(made["z"], -4 * A)


def test_names_are_the_columns_read_in_order_of_first_appearance():
    assert parse("b + sqrt(a) * b + `x y` + len(m) + m[0] + pi").names == ("b", "a", "x y", "m")
    assert parse("1 + 2").names == ()


def test_a_function_name_is_a_column_unless_called():
    frame = pd.DataFrame({"sum": [1.0, 2.0], "x": [3.0, 4.0]})
    same(value("sum + sqrt(x ** 2)", frame), [4.0, 6.0])


def test_a_value_without_columns_fills_every_row():
    assert value("1 + 1").tolist() == [2.0] * len(FRAME)
    assert value("1 < 2").dtype == bool
    assert len(value("1", FRAME.iloc[:0])) == 0


def test_numbers_of_any_type_are_read_as_float64():
    frame = pd.DataFrame({"i": pd.array([1, None, 3], dtype="Int64"),
                          "u": np.array([1, 2, 3], np.uint8), "f": np.ones(3, np.float32)})
    same(value("i + u * f", frame), [2.0, np.nan, 6.0])
    refused("t + 1", "column 't' holds str values, not numbers",
            frame=pd.DataFrame({"t": ["x", "y"]}))


# List columns: the values each row's list gives, worked out one row at a time.

def per_row(rows, reduce):
    return np.array([reduce([np.nan if v is None else v for v in row]) if row is not None
                     else reduce([]) for row in rows], dtype=float)


def element(i):
    return lambda row: row[i] if -len(row) <= i < len(row) else np.nan


LIST_CASES = {
    "Muon_Px[0]": element(0), "Muon_Px[1]": element(1), "Muon_Px[3]": element(3),
    "Muon_Px[-1]": element(-1), "Muon_Px[-2]": element(-2),
    "Muon_Px[1] ?? 0": lambda row: 0.0 if np.isnan(element(1)(row)) else element(1)(row),
    "len(Muon_Px)": len, "sum(Muon_Px)": lambda row: float(np.sum(row)),
    "max(Muon_Px)": lambda row: np.max(row) if len(row) else np.nan,
    "min(Muon_Px)": lambda row: np.min(row) if len(row) else np.nan,
}


def check_lists(frame, rows):
    for text, reduce in LIST_CASES.items():
        same(parse(text).evaluate(frame), per_row(rows, reduce))


def test_list_columns_of_a_parquet_file(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [*MUONS, None, [5.0, None]]  # a missing list is empty; a missing element NaN
    pq.write_table(pa.table({"Muon_Px": pa.array(rows, pa.list_(pa.float32())),
                             "n": list(range(len(rows)))}), tmp_path / "m.parquet")
    frame = read_table(str(tmp_path / "m.parquet")).frame
    check_lists(frame, rows)
    arrow = frame.assign(Muon_Px=pd.Series(pa.array(rows), dtype=pd.ArrowDtype(
        pa.list_(pa.float64()))))  # a list column pandas keeps in Arrow
    check_lists(arrow, rows)


def test_jagged_branches_of_a_root_file(tmp_path):
    uproot = pytest.importorskip("uproot")
    ak = pytest.importorskip("awkward")

    with uproot.recreate(tmp_path / "m.root") as file:
        file["events"] = {"Muon_Px": ak.Array(MUONS),
                          "Jet_n": ak.Array([[1, 2], [], [3], [4, 5], []]),
                          "NMuon": np.array([len(m) for m in MUONS], np.int32)}
    frame = read_table(str(tmp_path / "m.root")).frame
    check_lists(frame, MUONS)
    same(value("sum(Jet_n) + NMuon", frame), [6, 0, 4, 11, 4])
    made = derive(frame, objects("Muon:2", frame))
    same(made["Muon_Px_1"], [2.0, np.nan, np.nan, -1.0, 8.0])
    same(made["Muon_1_present"], [1, 0, 0, 1, 1])


def test_python_lists_serve_as_list_columns():
    frame = pd.DataFrame({"m": [[1, 2], [], (3,)]})
    same(value("m[1] ?? -1 + len(m)", frame), [4.0, -1.0, 0.0])


def test_list_and_number_columns_are_not_mixed_up():
    frame = pd.DataFrame({"Muon_Px": pd.Series(MUONS, dtype=object), "x": np.ones(5)})
    refused("Muon_Px * 2", "character 1", "column 'Muon_Px' holds a list a row, not a number",
            "index it, e.g. Muon_Px[0], or reduce it with len/sum/max/min", frame=frame)
    refused("1 + x[0]", "character 5", "column 'x' holds one number a row, not a list",
            frame=frame)
    refused("len(x)", "column 'x' holds one number a row", frame=frame)
    refused("m[0]", "lists of something other than single numbers",
            frame=pd.DataFrame({"m": [np.ones((2, 2)), np.ones((1, 2))]}))


# Errors: one line, the expression, the character, the problem.

@pytest.mark.parametrize("text, position, problem", [
    ("sqrt(a", 7, "ends where ',' or ')' should follow"),
    ("sqr(a)", 1, "unknown function 'sqr'; did you mean 'sqrt'?"),
    ("a + foo(1)", 5, "unknown function 'foo'; the functions are abs, sqrt"),
    ("1 + hypot(a)", 5, "hypot takes 2 arguments, not 1"),
    ("sqrt(a, b)", 1, "sqrt takes 1 argument, not 2"),
    ("fmin(a)", 1, "fmin takes 2 arguments or more, not 1"),
    ("max(a, b)", 1, "max takes one list column, e.g. max(Muon_Px); of two values, maximum"),
    ("len(a[0])", 1, "len takes one list column"),
    ("a +* b", 4, "unexpected '*' where a number, a column or '('"),
    ("a b", 3, "unexpected 'b' where an operator or the end"),
    ("(a + b", 7, "')' to close the '(' at character 1"),
    ("a = b", 3, "'=' is not a comparison: write =="),
    ("a & b", 3, "write 'and' or &&"), ("a ^ 2", 3, "write ** for a power"),
    ("a < b < c", 7, "comparisons do not chain"), ("m[1.5]", 3, "an index is a whole number"),
    ("m[x]", 3, "m[0] is the first element, m[-1] the last"), ("`a", 1, "closing `"),
    ("", 1, "the expression is empty"), ("  ", 1, "the expression is empty"),
])
def test_syntax_errors_name_the_expression_position_and_problem(text, position, problem):
    with pytest.raises(FcnnError) as error:
        parse(text)
    assert str(error.value).startswith(f"expression '{text}', character {position}: ")
    assert problem in str(error.value)


def test_an_unknown_column_is_named_with_those_the_table_has():
    message = refused("a + bb * 2", "expression 'a + bb * 2', character 5: no column 'bb'",
                      "did you mean 'b'?", "the table has 'a', 'b', 'c', 'n'")
    assert "Muon pt (GeV)" in message


def test_a_long_expression_is_shown_around_the_problem():
    text = "a + " * 100 + "zz + " + "b + " * 100 + "c"
    message = refused(text, "character 401: no column 'zz'")
    assert len(message) < 300 and "…" in message and "zz" in message.split(",")[0]


# Hostile input: refused by the parser, nothing run.

HOSTILE = ["__import__('os').system('x')", "().__class__",
           "a.__class__.__bases__", "lambda: 1", "a if b else c", "[x for x in a]", "{}",
           "open('/etc/passwd')", "eval('1')", "exec('1')", "getattr(a, 'b')", "a.b",
           "globals()", "breakpoint()", "print(1)", "'text'", "a; b", "a\nimport os",
           "`a` `b`", "sqrt.__call__(1)", "a[0][0]", "(a)[0]", "f'{a}'", "a @ b"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_expressions_are_refused_when_parsed(text, monkeypatch):
    """Refused by the parser itself: there is no program to run."""
    import builtins

    def tripwire(*_, **__):
        raise AssertionError("a builtin ran")

    for name in ("eval", "exec", "compile", "open", "breakpoint"):
        monkeypatch.setattr(builtins, name, tripwire)
    with pytest.raises(FcnnError) as error:
        parse(text)
    monkeypatch.undo()
    assert "\n" not in str(error.value)


def test_a_python_name_is_only_a_column_name():
    refused("__import__ + __builtins__", "no column '__import__'")


@pytest.mark.parametrize("name", ["open", "eval", "exec", "__import__", "getattr", "compile",
                                  "input", "globals", "vars", "type", "object", "int",
                                  "float", "range", "len_", "np", "numpy"])
def test_no_python_builtin_is_a_function(name):
    with pytest.raises(FcnnError, match=f"unknown function '{name}'"):
        parse(f"{name}(a)")


def test_only_the_table_of_functions_can_be_called():
    assert set(expressions.FUNCTIONS) | set(expressions.REDUCERS) == {
        "abs", "sqrt", "exp", "log", "log10", "sin", "cos", "tan", "arcsin", "arccos",
        "arctan", "arctan2", "sinh", "cosh", "tanh", "hypot", "minimum", "maximum", "clip",
        "where", "isnan", "fmin", "fmax", "len", "sum", "max", "min"}


@pytest.mark.parametrize("text, problem", [
    ("a+" * 5_000_000, "character 10001: longer than 10000 characters (it has 10,000,000)"),
    ("(" * 100_000 + "a" + ")" * 100_000, "longer than 10000 characters"),
    ("(" * 4_000 + "a" + ")" * 4_000, "character 65: nested more than 64 deep"),
    ("-" * 5_000 + "a", "nested more than 64 deep"),
    ("2**" * 3_000 + "2", "nested more than 64 deep"),
    ("sqrt(" * 1_000 + "a" + ")" * 1_000, "nested more than 64 deep"),
])
def test_huge_and_deep_expressions_are_refused_at_once(text, problem):
    start = time.perf_counter()
    with pytest.raises(FcnnError) as error:
        parse(text)
    assert time.perf_counter() - start < 0.5
    message = str(error.value)
    assert problem in message and "\n" not in message and len(message) < 300


def test_the_deepest_and_longest_allowed_expressions_run():
    same(value("(" * 63 + "a" + ")" * 63), A)
    long = "+".join(["a"] * 4_999)  # 9997 characters: a long chain, not a deep one
    same(value(long), np.sum([A] * 4_999, axis=0))


def test_parsing_loads_no_heavy_library():
    """Options are checked before anything heavy loads: an expression is parsed without numpy."""
    code = ("import sys; from fcnn_cli.data import expressions as e; "
            "e.definitions(['pt=sqrt(px**2 + py**2)']); e.objects('Muon:2', {'Muon_Px': True}); "
            "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"


def test_a_checkpoint_keeps_only_the_text():
    expression = parse("sqrt(a ** 2 + b ** 2)")
    again = parse(expression.text)
    assert again == expression and again.names == ("a", "b")
    same(again.evaluate(FRAME), np.hypot(A, B))


# Definitions, derive, raw columns, objects.

def test_definitions_split_at_the_first_single_equals_sign():
    made = definitions(["pt = sqrt(a**2 + b**2)", "`pt 2`=pt == b", "same=(a==b)",
                        "e=where(a!=b, 1, 0)"])
    assert [(n, e.text) for n, e in made] == [
        ("pt", "sqrt(a**2 + b**2)"), ("pt 2", "pt == b"), ("same", "(a==b)"),
        ("e", "where(a!=b, 1, 0)")]


@pytest.mark.parametrize("texts, problem", [
    (["a==b"], "definition 'a==b': write NAME=EXPR"), (["x"], "write NAME=EXPR"),
    (["=1"], "write NAME=EXPR"), (["a.b=1"], "write NAME=EXPR"),
    (["x=1", "x=2"], "definition 'x' is given twice"),
    (["pi=3"], "pi is a constant; write `pi`="),
    (["x=sqrt(a"], "definition 'x': expression 'sqrt(a', character 7: "),
    (["x=" + "1+" * 6000 + "1"], "longer than 10000 characters"), ([3], "not 3"),
])
def test_bad_definitions_are_refused(texts, problem):
    with pytest.raises(FcnnError, match=None) as error:
        definitions(texts)
    assert problem in str(error.value)


def test_derive_adds_each_definition_in_order_as_float64():
    made = derive(FRAME, definitions(["pt=hypot(a, b)", "ratio=pt / c", "up=pt > 1",
                                      "`fill`=a ?? 0"]))
    assert list(made.columns) == [*FRAME.columns, "pt", "ratio", "up", "fill"]
    same(made["ratio"], np.hypot(A, B) / C)
    assert made["up"].dtype == np.float64 and set(made["up"]) == {0.0, 1.0}
    same(made["fill"], np.nan_to_num(A, nan=0.0, posinf=np.inf))
    assert list(FRAME.columns) == ["a", "b", "c", "n", "flag", "Muon pt (GeV)"]
    assert derive(FRAME, []).equals(FRAME)


@pytest.mark.parametrize("texts, problem", [
    (["a=b*2"], "definition 'a': the table has a column 'a' already"),
    (["x=y+1", "y=a"], "definition 'x' uses 'y', which is defined after it"),
    (["x=a", "y=qq * x"], "definition 'y': expression 'qq * x', character 1: no column 'qq'"),
])
def test_derive_refuses_names_taken_and_columns_missing(texts, problem):
    with pytest.raises(FcnnError) as error:
        derive(FRAME, definitions(texts))
    assert problem in str(error.value)


@pytest.mark.parametrize("uses, order", [
    ([("a", ("x",)), ("b", ("a", "x"))], [0, 1]),  # in order already: kept
    ([("b", ("a", "x")), ("a", ("x",)), ("c", ())], [1, 0, 2]),
    ([("d1", ("t",)), ("late", ("d2",)), ("t", ("p1", "p2")), ("d2", ("p2", "t"))],
     [2, 0, 3, 1]),
])
def test_definitions_come_after_those_they_use_in_the_given_order_otherwise(uses, order):
    assert expressions.use_order(uses) == order


@given(st.lists(st.lists(st.integers(0, 30), max_size=4), max_size=12), st.randoms())
def test_the_use_order_of_any_shuffled_acyclic_definitions_is_one_they_compute_in(needs, rnd):
    """Definition k uses some of those before it (and a raw column); shuffled, each comes
    after what it uses, and the unshuffled order is kept as it is."""
    uses = [(f"d{k}", (*(f"d{n % k}" for n in need if k), "raw"))
            for k, need in enumerate(needs)]
    assert expressions.use_order(uses) == list(range(len(uses)))
    rnd.shuffle(uses)
    placed = [uses[k][0] for k in expressions.use_order(uses)]
    assert sorted(placed) == sorted(name for name, _ in uses)
    for name, used in uses:
        assert all(placed.index(n) < placed.index(name) for n in used if n != "raw")


@pytest.mark.parametrize("uses, problem", [
    ([("t", ("d",)), ("d", ("p", "t"))],
     "definition 't' uses 'd', which uses 't': no order of the definitions computes them"),
    ([("c", ("a",)), ("a", ("b",)), ("b", ("c2", "a")), ("c2", ())],
     "definition 'a' uses 'b', which uses 'a'"),
    ([("a", ("b",)), ("b", ("c",)), ("c", ("a",))],
     "definition 'a' uses 'b', which uses 'c', which uses 'a'"),
])
def test_a_cycle_of_definitions_is_refused_naming_it(uses, problem):
    with pytest.raises(FcnnError) as error:
        expressions.use_order(uses)
    assert str(error.value).startswith(problem)


def test_a_definition_reading_its_own_name_reads_a_column_and_is_no_cycle():
    """x=x + 1 reads the table's x (which derive then refuses to make again): y, which
    uses x, comes after it."""
    assert expressions.use_order([("y", ("x",)), ("x", ("x", "t"))]) == [1, 0]


def test_raw_columns_follow_the_definitions_they_name():
    made = definitions(["pt=hypot(px, py)", "m=sqrt(e**2 - pt**2)", "px2=px*2",
                        "both=m + pt + px2 + len(Muon_Px)"])
    assert raw_columns(made, ["both", "w"]) == ["e", "px", "py", "Muon_Px", "w"]
    assert raw_columns(made, ["pt"]) == ["px", "py"]
    assert raw_columns(made, ["a"]) == ["a"]
    # A definition sees only those before it: a name defined later is a raw column there.
    assert raw_columns(definitions(["x=y", "y=z"]), ["x"]) == ["y"]


def test_raw_columns_of_a_long_chain_of_definitions_take_no_time():
    made = definitions(["d0=a"] + [f"d{k}=d{k - 1} + d{k - 1} * a" for k in range(1, 400)])
    start = time.perf_counter()
    assert raw_columns(made, ["d399"]) == ["a"]
    assert time.perf_counter() - start < 0.5


def test_objects_pad_each_list_column_of_a_collection():
    frame = pd.DataFrame({"Muon_Px": pd.Series(MUONS, dtype=object),
                          "Muon_E": pd.Series([[m * 2 for m in row] for row in MUONS]),
                          "Muon_n": np.arange(5.0), "Jet_E": pd.Series([[1.0]] * 5)})
    made = objects("Muon:2", frame)
    assert [(n, e.text) for n, e in made] == [
        ("Muon_Px_0", "Muon_Px[0]"), ("Muon_E_0", "Muon_E[0]"),
        ("Muon_0_present", "len(Muon_Px) > 0"), ("Muon_Px_1", "Muon_Px[1]"),
        ("Muon_E_1", "Muon_E[1]"), ("Muon_1_present", "len(Muon_Px) > 1")]
    assert objects("Muon:2", {"Muon_Px": True, "Muon_E": True, "Muon_n": False}) == made
    padded = derive(frame, made)
    same(padded["Muon_E_1"], [4.0, np.nan, np.nan, -2.0, 16.0])
    same(padded["Muon_0_present"], [1, 0, 1, 1, 1])


def test_objects_quote_names_that_are_not_identifiers():
    (first, *_) = objects("Muon:1", {"Muon_p x": True})
    assert first == ("Muon_p x_0", parse("`Muon_p x`[0]"))


@pytest.mark.parametrize("spec, problem", [
    ("Tau:1", "objects 'Tau:1': no list column Tau_…; the list columns are 'Muon_Px'"),
    ("Muon", "write NAME:K"), ("Muon:0", "from 1 to 64"), ("Muon:65", "from 1 to 64"),
    (":2", "write NAME:K"), ("Muon:x", "write NAME:K"), ("Muon:" + "9" * 5000, "NAME:K"),
])
def test_bad_objects_are_refused(spec, problem):
    with pytest.raises(FcnnError) as error:
        objects(spec, {"Muon_Px": True, "NMuon": False})
    assert problem in str(error.value)


def test_objects_of_a_table_without_lists():
    with pytest.raises(FcnnError, match="the table has no list columns"):
        objects("Muon:2", FRAME)


# Random arithmetic evaluates as numpy does.

OPERATORS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide,
             "%": np.remainder, "**": operator.pow}
UNARY = {"sqrt": np.sqrt, "abs": np.abs, "exp": np.exp, "-": np.negative, "tanh": np.tanh}


def trees():
    leaves = st.one_of(st.sampled_from(["a", "b", "c"]),
                       st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: repr(abs(x))))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.tuples(st.sampled_from(sorted(OPERATORS)), inner, inner),
        st.tuples(st.sampled_from(sorted(UNARY)), inner)), max_leaves=12)


def written(tree):
    if isinstance(tree, str):
        return tree
    if len(tree) == 2:
        return f"({tree[0]}({written(tree[1])}))"
    return f"({written(tree[1])} {tree[0]} {written(tree[2])})"


def computed(tree):
    if isinstance(tree, str):
        return {"a": A, "b": B, "c": C}[tree] if tree in "abc" else np.float64(float(tree))
    if len(tree) == 2:
        return UNARY[tree[0]](computed(tree[1]))
    return OPERATORS[tree[0]](computed(tree[1]), computed(tree[2]))


@settings(max_examples=200, deadline=None)
@given(trees())
def test_random_arithmetic_equals_numpy(tree):
    with np.errstate(all="ignore"):
        want = computed(tree)
    same(value(written(tree)), want)


@pytest.mark.parametrize("text", ["sqrt((E1 + E2)**2 - (px1 + px2)**2) > 40 && !isnan(w ?? 0)",
                                  "where(Muon_Px[0] ?? 0 >= -1, max(Muon_Px), len(Muon_Px))",
                                  "`a b` % 3 || not (c != 2)"])
def test_every_prefix_of_an_expression_is_parsed_or_refused_in_one_line(text):
    """An expression cut short anywhere (a trailing operator, an open parenthesis or call)
    is an FcnnError, never another exception."""
    for end in range(1, len(text)):
        try:
            expressions.parse(text[:end])
        except FcnnError as e:
            assert "\n" not in str(e) and str(e).startswith("expression ")
