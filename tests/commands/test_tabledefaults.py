"""What train and sweep take from an earthquake table's metadata where the run's own definitions
or the table's columns meet fcnn's: a definition that uses fcnn's, a cycle, a column of fcnn's
name, a network too wide for the definitions' limit, features that name a few; and what a
table on stdin, whose metadata come too late, leaves out."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fcnn_cli.commands import tabledefaults

from fcnn_cli.data import recipe as recipes, simulate, stations
from fcnn_cli.data.tables import Table, read_table
from fcnn_cli.data.writer import write_table
from fcnn_cli.network import checkpoint

STATIONS = 3
PICKS = [f"t{phase}{k}" for k in range(1, STATIONS + 1) for phase in "ps"]
TRAIN = ("--epochs", 1, "--no-plots", "--batch-size", 64)


@pytest.fixture(scope="module")
def quakes(tmp_path_factory):
    """A table of unknown origin time, some picks missing."""
    path = tmp_path_factory.mktemp("quakes") / "q.parquet"
    write_table(simulate.earthquakes(n=200, seed=0, stations=stations.irregular(STATIONS, 50.0),
                                     origin_unknown=True, missing=0.2), path)
    return path


def first_pick(frame):
    return np.fmin.reduce(frame[PICKS].to_numpy(), axis=1)


def derived(run_dir, path):
    """The kept recipe's columns of the table ``path`` (as predict makes them); the table's
    where the model keeps none."""
    table, recipe = read_table(path), checkpoint.load(run_dir / "model.pt").recipe
    return table.frame if recipe is None else recipe.derive(table).frame


def test_a_definition_of_yours_may_use_fcnns(run, tmp_path, quakes):
    said = run(CliRunner(), "train", quakes, *TRAIN, "--define", "late=tp2 - t_first",
               "--define", "twice=2 * dts1", "-o", tmp_path / "run")
    assert "the features are each pick after the event's earliest" in said.stderr
    frame = derived(tmp_path / "run", quakes)
    raw = pd.read_parquet(quakes)
    np.testing.assert_array_equal(frame["late"], raw["tp2"] - first_pick(raw))
    np.testing.assert_array_equal(frame["twice"], 2 * (raw["ts1"] - first_pick(raw)))
    features = checkpoint.load(tmp_path / "run" / "model.pt").features
    assert sorted(features) == sorted(["late", "twice", *(f"d{p}" for p in PICKS)])


def test_a_sweep_orders_them_as_train_does(run, tmp_path, quakes):
    run(CliRunner(), "sweep", quakes, *TRAIN, "--define", "late=tp2 - t_first", "--grid",
        "width=8,16", "-o", tmp_path / "sweep")
    for path in (tmp_path / "sweep").glob("*/config.json"):
        define = json.loads(path.read_text())["recipe"]["define"]
        assert [name for name, _ in define][:2] == ["t_first", "late"]


@pytest.mark.parametrize("define, problem", [
    (["t_first=fmin(tp1, dts2)"],
     "definition 't_first' uses 'dts2', which uses 't_first': no order of the definitions"),
    (["late=tp2 - t_frist"], "definition 'late': expression 'tp2 - t_frist', character 7: "
                             "no column 't_frist'"),
    (["tp1=tp1 + 0.1"], "definition 'tp1': the table has a column 'tp1' already; give the "
                        "definition a name of its own"),
])
def test_a_cycle_through_fcnns_an_unknown_name_or_a_columns_name_is_refused_in_one_line(
        run, tmp_path, quakes, define, problem):
    given = [a for text in define for a in ("--define", text)]
    said = run(CliRunner(), "train", quakes, *TRAIN, *given, "-o", tmp_path / "run", code=1)
    assert problem in said.stderr.splitlines()[-1]


def own_columns(quakes, tmp_path, names):
    """The table ``quakes`` with its own ``names`` of t_first and the picks after it, each
    shifted by a second from fcnn's (so that a feature's values say whose it is)."""
    frame = pd.read_parquet(quakes)
    first = first_pick(frame) - 1.0
    for name in names:
        frame[name] = first if name == "t_first" else frame[name[1:]] - first
    path = tmp_path / "own.parquet"
    write_table(Table(frame, ["x", "y"], extra=read_table(quakes).extra), path)
    return path, frame


ALL = ["t_first", *(f"d{p}" for p in PICKS)]


@pytest.mark.parametrize("names, define, line", [
    ([], [], "(t_first = fmin(tp1, ts1, …)), not tp1"),
    (["t_first"], [], "(the table's column t_first stands in for fcnn's)"),
    (ALL, [], f"(the table's columns {', '.join(ALL)} stand in for fcnn's)"),
    (ALL, ["sum=dtp1 + dts1"], f"(the table's columns {', '.join(ALL)} stand in for fcnn's)"),
])
def test_the_default_features_are_the_picks_after_the_earliest_whoever_defines_them(
        run, tmp_path, quakes, names, define, line):
    """Neither the absolute picks nor t_first, which carry the origin time, are features,
    whether fcnn defines the picks after the earliest, the table has t_first or all of them;
    definitions of the run's own are features too. The line says whose they are."""
    path, frame = own_columns(quakes, tmp_path, names)
    given = [a for text in define for a in ("--define", text)]
    said = run(CliRunner(), "train", path, *TRAIN, *given, "-o", tmp_path / "run")
    assert "the features are each pick after the event's earliest" in said.stderr
    assert line in said.stderr
    assert checkpoint.load(tmp_path / "run" / "model.pt").features == \
        [f"d{p}" for p in PICKS] + [text.partition("=")[0] for text in define]
    first = frame["t_first"] if names else first_pick(frame)
    np.testing.assert_allclose(derived(tmp_path / "run", path)["dts2"], frame["ts2"] - first)


@pytest.mark.parametrize("define", [[], ["sum=dtp1 + dts1"]])
def test_a_sweep_on_a_table_with_all_of_them_leaves_the_absolute_picks_out(tmp_path, quakes,
                                                                           define):
    path, _ = own_columns(quakes, tmp_path, ALL)
    data, fixed = {"data": str(path), "define": define}, {}
    tabledefaults.for_sweep(data, fixed, {"width": [8, 16]})
    assert data == {"data": str(path), "define": define,
                    "features": ["sum"] * bool(define) + [f"d{p}" for p in PICKS]}
    assert fixed == {"depth": 4, "nan": "fill"}


def test_too_many_stations_for_the_definitions_train_on_the_absolute_picks(run, tmp_path,
                                                                           quakes, monkeypatch):
    """1 + 2 × 3 stations make 7 definitions: beyond a limit of 7 beside one of yours."""
    monkeypatch.setattr(recipes, "MAX_DEFINITIONS", 7)
    said = run(CliRunner(), "train", quakes, *TRAIN, "--define", "sum=tp1 + ts1", "-o",
               tmp_path / "run")
    assert ("the picks after the earliest of 3 stations would make 8 definitions in all (1 of "
            "them yours), more than the 7 a run may have: the features are the absolute picks "
            "tp1, ts1, …") in said.stderr
    assert "a network of width 128, depth 4" in said.stderr
    predictor = checkpoint.load(tmp_path / "run" / "model.pt")
    assert predictor.features == [*PICKS, "sum"]
    assert predictor.recipe.define == [("sum", "tp1 + ts1")]


def test_features_that_name_a_few_picks_after_the_earliest_get_those_defined(run, tmp_path,
                                                                             quakes,
                                                                             monkeypatch):
    """t_first and the two named: within a limit of 3 that all seven would pass."""
    monkeypatch.setattr(recipes, "MAX_DEFINITIONS", 3)
    run(CliRunner(), "train", quakes, *TRAIN, "--features", "dtp1,dts3", "-o",
        tmp_path / "run")
    recipe = checkpoint.load(tmp_path / "run" / "model.pt").recipe
    assert [name for name, _ in recipe.define] == ["t_first", "dtp1", "dts3"]
    raw = pd.read_parquet(quakes)
    np.testing.assert_array_equal(derived(tmp_path / "run", quakes)["dts3"],
                                  raw["ts3"] - first_pick(raw))


def test_a_table_on_stdin_says_what_of_its_metadata_the_run_leaves_out(run, tmp_path, quakes):
    csv = tmp_path / "q.csv"
    write_table(read_table(quakes), csv)
    said = run(CliRunner(), "train", "-", *TRAIN, "--width", 16, "--nan", "drop", "-o",
               tmp_path / "run", input=csv.read_bytes())
    assert "warning: <stdin>: its metadata ask for the picks after each event's earliest as " \
        "the features and --depth 4, which fcnn train takes only of a file, not of stdin or a " \
        "pipe (read once, after the options are settled): give the table as a file, or the " \
        "options\n" in said.stderr
    predictor = checkpoint.load(tmp_path / "run" / "model.pt")
    config = predictor.net.config
    assert predictor.features == PICKS and (config.width, config.depth) == (16, 3)
    said = run(CliRunner(), "train", "-", *TRAIN, "--features", ",".join(PICKS), "--width", 16,
               "--depth", 3, "--nan", "drop", "-o", tmp_path / "given", input=csv.read_bytes())
    assert "metadata ask" not in said.stderr  # every option given: nothing left out


def relative(raw, pick, picks=PICKS):
    return raw[pick] - np.fmin.reduce(raw[picks].to_numpy(), axis=1)


@pytest.mark.parametrize("given, column, expected", [
    (["--features", "dtp2,late", "--define", "late=dtp1 + dts3"], "late",
     lambda raw: relative(raw, "tp1") + relative(raw, "ts3")),
    (["--define", "d=dtp1 * 2", "--features", "d"], "d", lambda raw: 2 * relative(raw, "tp1")),
    (["--features", "tp1,late", "--define", "late=tp2 - t_first"], "late",
     lambda raw: relative(raw, "tp2")),
])
def test_the_picks_after_the_earliest_your_definitions_use_are_defined_whatever_the_features(
        run, tmp_path, quakes, given, column, expected):
    said = run(CliRunner(), "train", quakes, *TRAIN, *given, "-o", tmp_path / "run")
    assert "--define" in said.stderr.splitlines()[0]  # the line says who asked for them
    raw = pd.read_parquet(quakes)
    np.testing.assert_allclose(derived(tmp_path / "run", quakes)[column], expected(raw))


def test_too_many_stations_still_define_what_your_definitions_use(run, tmp_path, quakes,
                                                                  monkeypatch):
    """The absolute picks are the features; t_first, which late uses, is defined, and no
    feature."""
    monkeypatch.setattr(recipes, "MAX_DEFINITIONS", 7)
    said = run(CliRunner(), "train", quakes, *TRAIN, "--define", "late=tp2 - t_first", "-o",
               tmp_path / "run")
    assert "the features are the absolute picks tp1, ts1, …" in said.stderr
    assert f"{quakes}: the origin time is unknown: --define uses the event's earliest pick, " \
        "defined as t_first = fmin(tp1, ts1, …)\n" in said.stderr
    predictor = checkpoint.load(tmp_path / "run" / "model.pt")
    assert predictor.features == [*PICKS, "late"]
    data = {"data": str(quakes), "define": ["late=tp2 - t_first"]}
    tabledefaults.for_sweep(data, {}, {"width": [8, 16]})
    assert data["features"] == predictor.features  # a sweep's runs train on train's
    assert [name for name, _ in predictor.recipe.define] == ["t_first", "late"]
    raw = pd.read_parquet(quakes)
    np.testing.assert_allclose(derived(tmp_path / "run", quakes)["late"], relative(raw, "tp2"))


def test_features_past_the_limit_are_refused_naming_the_option(run, tmp_path, quakes,
                                                               monkeypatch):
    monkeypatch.setattr(recipes, "MAX_DEFINITIONS", 6)
    said = run(CliRunner(), "train", quakes, *TRAIN, "--features",
               ",".join(f"d{p}" for p in PICKS), "-o", tmp_path / "run", code=1)
    assert f"{quakes}: --features names 6 picks after the event's earliest, which with " \
        "t_first make 7 definitions, more than the 6 a run may have: name fewer" in said.stderr


def test_a_station_the_table_lacks_is_left_out_of_t_first(run, tmp_path, quakes):
    frame = pd.read_parquet(quakes).drop(columns=["tp3", "ts3"])
    path = tmp_path / "dead.parquet"
    write_table(Table(frame, ["x", "y"], extra=read_table(quakes).extra), path)
    for features in ([], ["--features", "dtp1,dts2"]):
        said = run(CliRunner(), "train", path, *TRAIN, *features, "-o", tmp_path / "run",
                   "--force")
        assert f"{path}: no column tp3, ts3 (station 3, which its metadata list): t_first is " \
            "the earliest of the other stations' picks" in said.stderr
        np.testing.assert_allclose(derived(tmp_path / "run", path)["dts2"],
                                   relative(frame, "ts2", PICKS[:4]))


def test_a_table_on_stdin_says_first_that_fcnn_defines_none_for_your_definitions(run, tmp_path,
                                                                                quakes):
    csv = tmp_path / "q.csv"
    write_table(read_table(quakes), csv)
    said = run(CliRunner(), "train", "-", *TRAIN, "--define", "late=tp2 - dts1", "--where",
               "t_first > 0", "-o", tmp_path / "run", input=csv.read_bytes(), code=1)
    warning, error = said.stderr.splitlines()[-2:]
    assert warning.startswith("warning: <stdin>: --define and --where use dts1, t_first, which "
                              "fcnn defines only of a file")
    assert "no column 'dts1'" in error
    bad = csv.read_bytes() + b"1,2,3\n"  # a row short of columns: nothing to do with t_first
    said = run(CliRunner(), "train", "-", *TRAIN, "--define", "late=tp2 - t_first", "-o",
               tmp_path / "run", input=bad, code=1)
    assert "warning" not in said.stderr and "t_first" not in said.stderr


@pytest.mark.parametrize("option, expression, line, kept", [
    ("--where", "t_first > {cut}", "--where uses the event's earliest pick, defined as "
                                   "t_first = fmin(tp1, ts1, …)",
     lambda raw, cut: first_pick(raw) > cut),
    ("--weight", "fmax(dtp2, 0) + {cut}", "--weight uses picks after the event's earliest, "
                                          "defined as dtp1 = tp1 - t_first", None),
])
def test_what_a_selection_or_a_weight_uses_is_defined_whatever_the_features(
        run, tmp_path, quakes, option, expression, line, kept):
    """The rows kept are those whose earliest pick, of the raw picks, is past the cut; a
    sweep defines t_first for a grid of selections or weights as train does."""
    raw = pd.read_parquet(quakes)
    cut = float(np.median(first_pick(raw)))
    said = run(CliRunner(), "train", quakes, *TRAIN, "--features", "tp1,ts1,tp2", option,
               expression.format(cut=cut), "-o", tmp_path / "run")
    assert f"{quakes}: the origin time is unknown: {line}" in said.stderr
    if kept is not None:
        counts = re.search(r"\((\d+) training, (\d+) validation, (\d+) test rows", said.stderr)
        assert sum(map(int, counts.groups())) == int(kept(raw, cut).sum())
    data = {"data": str(quakes), "features": ["tp1"]}
    tabledefaults.for_sweep(data, {}, {option[2:]: ["", expression.format(cut=cut)]})
    assert data["define"][0] == "t_first=fmin(tp1, ts1, tp2, ts2, tp3, ts3)"


def test_a_sweep_defines_what_its_definitions_use_too(quakes):
    data, fixed = {"data": str(quakes), "define": ["d=dtp1 * 2"], "features": ["d"]}, {}
    tabledefaults.for_sweep(data, fixed, {"width": [8, 16]})
    assert data["define"] == ["t_first=fmin(tp1, ts1, tp2, ts2, tp3, ts3)",
                              "dtp1=tp1 - t_first", "d=dtp1 * 2"]
    assert data["features"] == ["d"]
