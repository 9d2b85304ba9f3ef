"""Definitions in an ONNX graph: every operation of the expression language, exported by torch
and run by onnxruntime in float64, gives the values of Expression.evaluate (numpy)."""

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import expressions
from fcnn_cli.network import onnxexpr

EPS = np.finfo(np.float64).eps
# Bit for bit: ONNX's own operations, and those made of comparisons and choices.
EXACT = ["abs(a)", "sqrt(a)", "-a", "+a", "a + b", "a - b", "a * b", "a / b", "a % b",
         "a ** 2", "a ** 0.5", "a ** (1/2)", "a ?? b", "b ?? 3", "nan ?? a",
         "a < b", "a <= b", "a > b", "a >= b", "a == b", "a != b", "a and b", "a or b",
         "not a", "!a", "a && !b || b", "minimum(a, b)", "maximum(a, b)", "clip(a, -1, b)",
         "fmin(a, b)", "fmax(a, b)", "fmin(b, a, 0.5)", "fmax(nan, a, b)", "fmin(a, nan)",
         "where(a > b, a, b)", "where(a, 1, 0)", "where(1, a, b)", "isnan(a)", "isnan(a / b)",
         "(a > 0) * 3 - (b < 1)", "-(a > 0)", "a * 0.1 + 1/3", "pi", "2 ** 3 + a", "-0.0 * 1",
         "nan", "inf + a", "a2 + b", "twice * 2", "a in (1, -0.5, 2, nan)", "(a > b) in (1,)"]
# Within a few units in the last place: library functions, or made of others.
CLOSE = ["exp(a)", "log(a)", "log10(a)", "arcsin(a)", "arccos(a)", "arctan(a)",
         "arctan2(a, b)", "sinh(a)", "cosh(a)", "tanh(a)", "hypot(a, b)", "a ** b"]
ULPS = 8
# onnxruntime's sin and cos are good to a few units of 1, not of their value; tan's error is
# theirs times its derivative, 1 + tan².
PERIODIC = ["sin(a)", "cos(a)", "tan(a)"]
EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 0.66, 2.414213562373095, 0.999999, 1e-300,
         5e-324, 1e300, -1e300, 700.0, 709.9, 710.0, -745.0, np.inf, -np.inf, np.nan, 100.0,
         1000.0, 1e-3, np.pi / 2]


def table():
    """Every pair of edge values, numbers of every size, and exact powers of 10."""
    a, b = (v.ravel() for v in np.meshgrid(EDGES, EDGES))
    rng = np.random.default_rng(0)
    spread = np.concatenate([rng.normal(0, 3, 3000), rng.uniform(-1, 1, 3000),
                             10 ** rng.uniform(-20, 20, 3000) * rng.choice([-1, 1], 3000)])
    powers = 10.0 ** np.arange(-300, 301)
    return pd.DataFrame({"a": np.concatenate([a, spread, powers]),
                         "b": np.concatenate([b, spread[::-1], powers[::-1]])})


@pytest.fixture(scope="module")
def computed():
    """(the table, its definitions, the values onnxruntime gives of them in one graph)."""
    ort = pytest.importorskip("onnxruntime")
    frame = table()
    texts = ["a2=a * 2", "twice=a2 + a2"] + [f"d{k}={t}" for k, t in
                                             enumerate(EXACT + CLOSE + PERIODIC)]
    definitions = expressions.definitions(texts)
    names = [n for n, _ in definitions]
    raw, steps = onnxexpr.plan(definitions, names)
    assert raw == ["a", "b"] and len(steps) == len(definitions)
    module = onnxexpr.Derived(raw, steps, names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(module, (torch.zeros(2, 2, dtype=torch.float64),),
                                    dynamo=True, verbose=False, input_names=["columns"],
                                    dynamic_shapes=({0: torch.export.Dim("rows")},))
    session = ort.InferenceSession(program.model_proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"columns": frame[raw].to_numpy(np.float64)})
    assert out.dtype == np.float64
    want = expressions.derive(frame, definitions)
    return frame, {e.text: (out[:, k], want[n].to_numpy()) for k, (n, e) in
                   enumerate(definitions)}


def same_edges(got, want):
    """NaN where numpy gives NaN, and the same infinities (a zero's sign is left out:
    onnxruntime's Where gives 0.0 for a -0.0 it picks)."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))


@pytest.mark.parametrize("text", EXACT)
def test_operations_give_numpys_values_exactly(computed, text):
    _, values = computed
    got, want = values[text]
    same_edges(got, want)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("text", CLOSE)
def test_functions_give_numpys_values_within_a_few_units_in_the_last_place(computed, text):
    _, values = computed
    got, want = values[text]
    same_edges(got, want)
    finite = np.isfinite(want)
    tiny = np.finfo(np.float64).tiny  # below it a unit is the smallest number itself
    allowed = ULPS * EPS * np.maximum(np.abs(want[finite]), tiny)
    assert np.all(np.abs(got[finite] - want[finite]) <= allowed), text


@pytest.mark.parametrize("text", PERIODIC)
def test_sin_cos_and_tan_are_numpys_within_onnxruntimes_accuracy(computed, text):
    _, values = computed
    got, want = values[text]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    g, w = got[finite], want[finite]
    allowed = ULPS * EPS * (1 + w * w if text.startswith("tan") else np.maximum(np.abs(w), 1))
    # tan(π/2 as a float64), 1.6e16, is infinite where cos gives 0: within its error there
    assert np.all((np.abs(g - w) <= allowed) | np.isinf(g) & (allowed >= np.abs(w)))


def test_the_edges_of_the_functions_are_numpys(computed):
    """Log of 0, square root of a negative, division by zero, ?? of NaN, the overflows."""
    frame, values = computed
    bits = frame[["a", "b"]].to_numpy().view(np.int64)  # -0.0 is not 0.0, NaN is NaN
    nan = float("nan")
    for text, x, y, want in [("log(a)", 0.0, 1.0, -np.inf), ("log(a)", -1.0, 1.0, nan),
                             ("sqrt(a)", -1.0, 1.0, nan), ("a / b", 1.0, 0.0, np.inf),
                             ("a / b", -1.0, 0.0, -np.inf), ("a / b", 0.0, 0.0, nan),
                             ("a % b", 1.0, 0.0, nan), ("a % b", -1.0, np.inf, np.inf),
                             ("a ?? b", nan, 2.0, 2.0), ("isnan(a / b)", 0.0, 0.0, 1.0),
                             ("sinh(a)", 710.0, 1.0, "finite"), ("cosh(a)", 710.0, 1.0,
                                                                 "finite"),
                             ("hypot(a, b)", np.inf, nan, np.inf),
                             ("arctan2(a, b)", -np.inf, -np.inf, -3 * np.pi / 4),
                             ("log10(a)", 1000.0, 1.0, 3.0), ("arcsin(a)", 2.0, 1.0, nan)]:
        k = np.flatnonzero((bits == np.array([x, y]).view(np.int64)).all(axis=1))[0]
        got, numpys = values[text][0][k], values[text][1][k]
        if want == "finite":  # past exp's overflow, as numpy's
            assert np.isfinite(got) and abs(got - numpys) <= ULPS * EPS * abs(numpys)
        else:
            assert got == want or np.isnan(got) and np.isnan(want), (text, x, y, got)


def test_plan_takes_the_raw_columns_and_the_definitions_the_features_need():
    definitions = expressions.definitions(
        ["pt=hypot(px, py)", "unused=len(Muon_Px)", "w=genWeight * 2", "ratio=pt / E",
         "later=ratio + pz"])
    raw, steps = onnxexpr.plan(definitions, ["ratio", "eta", "pt"])
    assert raw == ["px", "py", "E", "eta"]
    assert [n for n, _ in steps] == ["pt", "ratio"]  # not the weight's, nor the list's


@pytest.mark.parametrize("texts, named, column", [
    (["Muon_Px_0=Muon_Px[0]", "pt=Muon_Px_0 * 2"], "Muon_Px_0", "Muon_Px"),
    (["n=len(Jet_pt) + 1"], "n", "Jet_pt"),
    (["s=sum(`Jet pt`) ?? 0"], "s", "Jet pt"),
])
def test_a_definition_that_reads_a_list_column_is_refused_in_one_line(texts, named, column):
    definitions = expressions.definitions(texts)
    with pytest.raises(FcnnError) as e:
        onnxexpr.plan(definitions, [definitions[-1][0], "x"])
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"definition {named!r} = ")
    assert f"reads the list column {column!r}" in message and "one number a column" in message


def test_a_definition_that_compares_a_column_with_text_is_refused_in_one_line():
    definitions = expressions.definitions(["barrel=region == 'barrel'", "y=barrel * 2"])
    with pytest.raises(FcnnError) as e:
        onnxexpr.plan(definitions, ["y"])
    assert str(e.value).startswith("definition 'barrel' = region == 'barrel' reads the column "
                                   "'region' as text, and an ONNX graph takes one number a "
                                   "column")


def test_the_objects_columns_are_refused_naming_the_first_one():
    frame = pd.DataFrame({"Muon_Px": [np.array([1.0, 2.0])], "Muon_Py": [np.array([3.0])]})
    made = expressions.objects("Muon:2", frame)
    mass = expressions.definitions(["m=hypot(Muon_Px_0, Muon_Py_0)"])
    with pytest.raises(FcnnError, match=r"^definition 'Muon_Px_0' = Muon_Px\[0\] reads the "
                                        r"list column 'Muon_Px'"):
        onnxexpr.plan(made + mass, ["m"])
