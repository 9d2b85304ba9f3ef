"""Random tables and random option values: every case works or fails with a clear message."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fcnn_cli.commands import cli
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import read_table

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

cell = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True).map(repr),
                 st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
                 st.sampled_from(["", "nan", "inf", "-inf", "1e300", '"1.5"', "x", "NA"]))
rows = st.lists(st.lists(cell, min_size=1, max_size=5), min_size=0, max_size=8)
separators = st.sampled_from([",", ";", "\t", "|"])
endings = st.sampled_from(["\n", "\r\n"])


def clean_exit(result):
    """Success, or a handled exit: never an unexpected exception, never a traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2)


@FUZZ
@given(header=st.lists(st.sampled_from(["a", "b", "x", "y", "é", "tp1", "", " "]), min_size=1,
                       max_size=5), body=rows, sep=separators, end=endings,
       bom=st.booleans())
def test_random_csv_text(tmp_path_factory, header, body, sep, end, bom):
    text = end.join([sep.join(header)] + [sep.join(r) for r in body]) + end
    path = tmp_path_factory.mktemp("fuzz") / "t.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    try:
        read_table(path)
    except FcnnError as e:
        assert "t.csv" in str(e) and "\n" not in str(e)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "t.csv"
    path.write_bytes(data)
    try:
        read_table(path)
    except FcnnError as e:
        assert "t.csv" in str(e)


@FUZZ
@given(header=st.lists(st.sampled_from(["a", "b", "y"]), min_size=1, max_size=4), body=rows)
def test_random_tables_through_train(runner, tmp_path_factory, header, body):
    text = "\n".join([",".join(header)] + [",".join(r) for r in body]) + "\n"
    path = tmp_path_factory.mktemp("fuzz") / "t.csv"
    path.write_text(text)
    clean_exit(runner.invoke(cli, ["train", str(path), "-t", "y", "--epochs", "1", "-q",
                                   "-o", str(path.parent / "run")]))


number = st.one_of(st.integers(-3, 1200).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.sampled_from(["", "abc", "1e400", "-0"]))


@FUZZ
@given(depth=number, width=st.integers(-2, 64).map(str), epochs=st.integers(-2, 2).map(str),
       lr=number, batch=number, val=number, dropout=number, decay=number, patience=number,
       scale=st.sampled_from(["standard", "max", "minmax", "none", "log"]))
def test_random_train_options(runner, quakes_csv, tmp_path_factory, depth, width, epochs, lr,
                              batch, val, dropout, decay, patience, scale):
    out = tmp_path_factory.mktemp("fuzz") / "run"
    clean_exit(runner.invoke(cli, [
        "train", str(quakes_csv), "--depth", depth, "--width", width, "--epochs", epochs,
        "--lr", lr, "--batch-size", batch, "--val-frac", val, "--dropout", dropout,
        "--weight-decay", decay, "--patience", patience, "--scale", scale, "-q", "-o",
        str(out)]))


@FUZZ
@given(threshold=number, keep=st.sampled_from(["x", "nope", "", "x,y,x"]),
       output=st.sampled_from(["-", "p.csv", "p.parquet", "p.json", "p", "p.root", "p.h5",
                               "p.fits"]))
def test_random_predict_options(runner, model_path, quakes_csv, tmp_path_factory, threshold,
                                keep, output):
    out = output if output == "-" else str(tmp_path_factory.mktemp("fuzz") / output)
    clean_exit(runner.invoke(cli, ["predict", str(model_path), str(quakes_csv), "--threshold",
                                   threshold, "--keep", keep, "-o", out]))


@pytest.mark.parametrize("args", [["simulate", "earthquakes", "-n", "-5"],
                                  ["simulate", "galaxies", "--size", "3"],
                                  ["simulate", "earthquakes", "--station", "1;2"],
                                  ["simulate", "earthquakes", "-o", "out.xlsx"]])
def test_bad_simulate_options(runner, args):
    result = runner.invoke(cli, args)
    clean_exit(result)
    assert result.exit_code in (1, 2) and "Error" in result.output


OUTPUT_PLACES = ["-", "new.csv", "new.parquet", "data.csv", "model.pt", "link.csv", "hard.csv",
                 "dir", "dir.csv", "nowhere/p.csv", "data.csv/p.csv", "loop.csv", "p", "new.root",
                 "new.h5", "new.fits", "data.csv:x.root"]


@FUZZ
@given(command=st.sampled_from(["predict", "evaluate"]), place=st.sampled_from(OUTPUT_PLACES),
       keep=st.sampled_from([[], ["x"], ["x_pred"], ["x", "x"]]))
def test_random_output_places(runner, model_path, quakes_csv, tmp_path_factory, command, place,
                              keep):
    """Whatever the output, the inputs survive byte for byte and the exit is clean."""
    import os
    import shutil

    tmp = tmp_path_factory.mktemp("fuzz")
    data, model = tmp / "data.csv", tmp / "model.pt"
    shutil.copy(quakes_csv, data)
    shutil.copy(model_path, model)
    (tmp / "link.csv").symlink_to("data.csv")
    os.link(data, tmp / "hard.csv")
    (tmp / "dir").mkdir()
    (tmp / "dir.csv").mkdir()
    (tmp / "loop.csv").symlink_to("loop.csv")
    before = data.read_bytes(), model.read_bytes()
    out = place if place == "-" else str(tmp / place)
    extra = [a for k in keep for a in ("--keep", k)] if command == "predict" else []
    clean_exit(runner.invoke(cli, [command, str(model), str(data), "-o", out, *extra]))
    assert (data.read_bytes(), model.read_bytes()) == before


physical = st.one_of(number, st.floats(0.0, 1e3).map(repr), st.floats(1e-320, 1e308).map(repr))


@FUZZ
@given(extent=physical, noise=physical, vp=physical, vs=physical,
       station=st.tuples(physical, physical).map(",".join),
       seed=st.one_of(st.integers(-2, 2 ** 64 + 2), st.sampled_from(["-0", "1e3", "x"])).map(str))
def test_random_simulate_options(runner, tmp_path_factory, extent, noise, vp, vs, station, seed):
    import numpy as np
    import pandas as pd

    out = tmp_path_factory.mktemp("fuzz") / "q.csv"
    result = runner.invoke(cli, ["simulate", "earthquakes", "-n", "4", "--extent", extent,
                                 "--noise", noise, "--vp", vp, "--vs", vs, "--station", station,
                                 "--seed", seed, "-o", str(out)])
    clean_exit(result)
    if result.exit_code:
        assert result.exit_code == 2 and not out.exists()
        assert sum(line.startswith("Error:") for line in result.stderr.splitlines()) == 1
    else:
        assert np.isfinite(pd.read_csv(out, comment="#").to_numpy()).all()


# --- Damaged and forged checkpoints (issue #10) --------------------------------------------------
# Either a one-line error that names the file, or a model that does what its file says.

def _saved(tmp_path_factory, kind):
    from fcnn_cli.network import checkpoint
    from forgery import tiny_predictor

    predictor = tiny_predictor(kind)
    path = tmp_path_factory.mktemp("fuzz") / "model.pt"
    checkpoint.save(predictor, path)
    return predictor, path


def _quakes_table():
    from fcnn_cli.data.simulate import earthquakes

    return earthquakes(n=20, seed=5)


@FUZZ
@given(kind=st.sampled_from(["regress", "classify"]), at=st.floats(0, 1, exclude_max=True),
       length=st.integers(1, 64), mask=st.integers(1, 255))
def test_random_damage_to_a_checkpoint(tmp_path_factory, kind, at, length, mask):
    import numpy as np

    from fcnn_cli.network import checkpoint

    predictor, path = _saved(tmp_path_factory, kind)
    data = bytearray(path.read_bytes())
    start = int(at * len(data))
    for i in range(start, min(start + length, len(data))):
        data[i] ^= mask
    path.write_bytes(bytes(data))
    try:
        loaded = checkpoint.load(path)
    except FcnnError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e), str(e)
        return
    # the damage fell on bytes that nothing reads (zip padding): the model is intact
    x = predictor.feature_matrix(_quakes_table())
    np.testing.assert_array_equal(loaded.outputs(x), predictor.outputs(x))


json_value = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2**40), st.floats(), st.text(max_size=4),
    st.lists(st.one_of(st.floats(-1e3, 1e3), st.sampled_from(["tp1", "x", "a"])), max_size=9),
    st.dictionaries(st.sampled_from(["min", "max", "kind", "shift"]), st.integers(), max_size=2))


def _json_paths(value, prefix=()):
    yield prefix
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from _json_paths(child, prefix + (key,))


@FUZZ
@given(kind=st.sampled_from(["regress", "classify"]), data=st.data())
def test_forged_metadata_with_a_recomputed_digest(tmp_path_factory, kind, data):
    """Any one value of the metadata replaced or removed, and the digest recomputed: the load
    fails with one line, or the model predicts without an error of any other kind."""
    import json

    import torch

    from fcnn_cli.network import checkpoint

    _, path = _saved(tmp_path_factory, kind)
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["meta"])
    paths = [p for p in _json_paths(meta) if p and p[0] != "info"]
    where = data.draw(st.sampled_from(paths))
    parent = meta
    for key in where[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = data.draw(json_value)
    payload["meta"] = json.dumps(meta)
    payload["sha256"] = checkpoint.digest(payload["meta"], payload["state"])
    torch.save(payload, path)
    try:
        loaded = checkpoint.load(path)
    except FcnnError as e:
        assert str(e).startswith(f"{path}: corrupted fcnn checkpoint: ") and "\n" not in str(e)
        return
    table = _quakes_table()
    try:
        frame = loaded.predict(table)
    except FcnnError as e:  # a feature renamed: the table lacks it
        assert "missing feature column" in str(e), str(e)
        return
    assert len(frame) == len(table.frame)
    assert frame.shape[1] == (1 + len(loaded.task.classes) if loaded.task.kind == "classify"
                              else len(loaded.targets))


# Issue #10: long cells and '#' lines of any length, non-finite floats, damaged saved runs.

@FUZZ
@given(lengths=st.lists(st.integers(0, 5000), min_size=1, max_size=30),
       comments=st.lists(st.integers(0, 3000), max_size=3), rows=st.integers(1, 7))
def test_random_long_cells_and_comment_lines(tmp_path_factory, monkeypatch, lengths, comments,
                                             rows):
    """Both readers give the same table, whatever the cells' lengths against the blocks."""
    import pandas as pd

    from fcnn_cli.data import csvfiles, tables

    monkeypatch.setattr(csvfiles, "CSV_BLOCK", 512)
    monkeypatch.setattr(tables, "MAX_BLOCK", 1 << 15)
    frame = pd.DataFrame({"a": range(len(lengths)), "note": ["w" * n for n in lengths]})
    path = tmp_path_factory.mktemp("fuzz") / "t.csv"
    path.write_text("".join(f"# {'c' * n}\n" for n in comments) + frame.to_csv(index=False))
    whole = read_table(path).frame
    parts = pd.concat([t.frame for t in tables.iter_tables(path, rows=rows)], ignore_index=True)
    for read in (whole, parts):
        assert read.a.tolist() == frame.a.tolist()
        assert read.note.fillna("").tolist() == frame.note.tolist()


@FUZZ
@given(option=st.sampled_from(["--lr", "--momentum", "--weight-decay", "--ema", "--val-frac",
                               "--test-frac", "--dropout"]),
       value=st.sampled_from(["inf", "-inf", "nan", "1e400", "-1e400", "Infinity"]))
def test_non_finite_float_options_are_usage_errors(runner, quakes_csv, tmp_path_factory,
                                                   option, value):
    out = tmp_path_factory.mktemp("fuzz") / "run"
    result = runner.invoke(cli, ["train", str(quakes_csv), option, value, "-q", "-o", str(out)])
    clean_exit(result)
    assert result.exit_code == 2 and f"Error: {option} must be" in result.output
    assert not out.exists()


json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=6)


@FUZZ
@given(section=st.sampled_from([None, "net", "train"]), key=st.text(max_size=12),
       pick=st.integers(0, 40), value=json_value, drop=st.booleans())
def test_random_damage_to_a_saved_run(interrupted_run, section, key, pick, value, drop):
    """A changed, added or missing entry of config.json: the run loads, or one line says why."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from fcnn_cli.results import runs

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(shutil.copytree(interrupted_run, Path(tmp) / "cut"))
        config = json.loads((run / "config.json").read_text())
        target = config if section is None else config[section]
        if pick < len(target):  # an existing key, else the random one
            key = sorted(target)[pick]
        if drop:
            target.pop(key, None)
        else:
            target[key] = value
        (run / "config.json").write_text(json.dumps(config))
        try:
            saved = runs.load_resume(run)
        except FcnnError as e:
            assert str(e).startswith(f"{run}: cannot resume: ") and "\n" not in str(e)
        else:
            assert isinstance(saved.config.lr, float) and isinstance(saved.net.depth, int)
            assert all(isinstance(c, str) for c in saved.targets + saved.features)


# Issue #10, CSV read in blocks of whole rows: quotes, delimiters and line breaks in values.

@FUZZ
@given(notes=st.lists(st.text(alphabet='ab,;"\n\r ', max_size=12), min_size=1, max_size=40),
       sep=st.sampled_from([",", ";"]), end=endings, rows=st.integers(1, 4),
       stdin=st.booleans())
def test_random_quoted_values_read_alike_whole_and_streamed(tmp_path_factory, monkeypatch, notes,
                                                            sep, end, rows, stdin):
    """Quoted where a value must be, else as it is: a quote inside an unquoted value is a
    character like any other."""
    import io

    import pandas as pd

    from fcnn_cli.data.tables import iter_tables

    def cell(text):
        if sep in text or "\n" in text or "\r" in text:
            return '"' + text.replace('"', '""') + '"'
        return text

    values = ["w" + n for n in notes]  # text, never empty
    data = end.join(["a" + sep + "note"] + [f"{i}{sep}{cell(v)}" for i, v in enumerate(values)])
    path = tmp_path_factory.mktemp("fuzz") / "t.csv"
    path.write_bytes((data + end).encode())
    source = "-" if stdin else path
    for read in (lambda: read_table(source).frame,
                 lambda: pd.concat([t.frame for t in iter_tables(source, rows=rows)])):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
        frame = read()
        assert frame.a.tolist() == list(range(len(values))) and frame.note.tolist() == values


# Issue #17: ROOT, HDF5 and FITS files, damaged anywhere: one line naming the file, or a table.

@pytest.fixture(scope="module")
def format_files(tmp_path_factory):
    from fcnn_cli.data.simulate import earthquakes
    from fcnn_cli.data.writer import write_table

    files = {}
    for suffix, package in ((".root", "uproot"), (".h5", "h5py"), (".fits", "astropy")):
        pytest.importorskip(package)
        path = tmp_path_factory.mktemp("formats") / f"q{suffix}"
        write_table(earthquakes(n=30, seed=1), path)
        files[suffix] = path.read_bytes()
    return files


damage = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(1, 64),
              st.integers(1, 255)),
    st.tuples(st.just("cut"), st.floats(0, 1, exclude_max=True), st.just(0), st.just(0)),
    st.tuples(st.just("junk"), st.binary(max_size=400), st.just(0), st.just(0)))


@FUZZ
@given(suffix=st.sampled_from([".root", ".h5", ".fits"]), how=damage)
def test_random_damage_to_root_hdf5_and_fits_files(format_files, tmp_path_factory, suffix, how):
    from fcnn_cli.data.tables import iter_tables

    data = bytearray(format_files[suffix])
    kind, at, length, mask = how
    if kind == "flip":
        start = int(at * len(data))
        for i in range(start, min(start + length, len(data))):
            data[i] ^= mask
    elif kind == "cut":
        data = data[:int(at * len(data))]
    else:
        data = at
    path = tmp_path_factory.mktemp("fuzz") / f"t{suffix}"
    path.write_bytes(bytes(data))
    for read in (lambda: read_table(path), lambda: list(iter_tables(path, rows=7))):
        try:
            read()
        except FcnnError as e:
            assert str(e).startswith(f"{path}: ") and "\n" not in str(e), str(e)
