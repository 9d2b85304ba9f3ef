"""ROOT, HDF5 and FITS tables (fcnn_cli/data/formats/): round trips, selectors, units, streaming,
and the one line that names the extra to install."""

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.commands import cli
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import iter_tables, read_table, split_selector, Table
from fcnn_cli.data.writer import write_table

uproot = pytest.importorskip("uproot")
h5py = pytest.importorskip("h5py")
fits = pytest.importorskip("astropy.io.fits")

SUFFIXES = [".root", ".h5", ".fits"]
PACKAGES = {".root": ("uproot", "root"), ".h5": ("h5py", "hdf5"), ".fits": ("astropy", "fits")}


def mixed_frame(n=50):
    """Columns of the types a table holds: reals, integers, booleans, text (not ASCII too)."""
    rng = np.random.default_rng(4)
    return pd.DataFrame({"f8": rng.normal(size=n), "f4": rng.normal(size=n).astype(np.float32),
                         "i4": np.arange(n, dtype=np.int32), "i8": np.arange(n) * 10**12,
                         "u2": np.arange(n, dtype=np.uint16) + 60000, "ok": np.arange(n) % 3 == 0,
                         "name": [f"ev{i}-é" for i in range(n)]})


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_round_trip_keeps_values_labels_and_units(tmp_path, quakes, suffix):
    path = tmp_path / f"q{suffix}"
    write_table(quakes, path)
    back = read_table(path)
    assert back.targets == ["x", "y"] and back.units == quakes.units
    pd.testing.assert_frame_equal(back.frame, quakes.frame)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_round_trip_of_integers_booleans_and_text(tmp_path, suffix):
    frame = mixed_frame()
    path = tmp_path / f"m{suffix}"
    write_table(Table(frame, ["ok"]), path)
    back = read_table(path)
    assert back.targets == ["ok"] and list(back.frame.columns) == list(frame.columns)
    for column in frame.columns:
        assert back.frame[column].tolist() == frame[column].tolist(), column
    assert back.frame.ok.dtype == bool and back.frame.f4.dtype == np.float32


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_streamed_blocks_are_the_whole_table(tmp_path, quakes, suffix):
    path = tmp_path / f"q{suffix}"
    write_table(quakes, path)
    blocks = list(iter_tables(path, rows=77))
    assert [b.first_row for b in blocks] == list(range(0, 600, 77))
    assert all(b.targets == ["x", "y"] and b.units == quakes.units for b in blocks)
    whole = pd.concat([b.frame for b in blocks], ignore_index=True)
    pd.testing.assert_frame_equal(whole, read_table(path).frame)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_streamed_predict_equals_whole_file_predict(tmp_path, quakes, trained, suffix):
    path = tmp_path / f"q{suffix}"
    write_table(quakes, path)
    predictor = trained.predictor
    whole = predictor.predict(read_table(path))
    parts = pd.concat([p for _, p in predictor.predict_chunks(iter_tables(path, rows=64))])
    pd.testing.assert_frame_equal(parts.reset_index(drop=True), whole.reset_index(drop=True))
    streamed = predictor.evaluate_chunks(iter_tables(path, rows=64))
    whole = predictor.evaluate(read_table(path))
    assert streamed["rows"] == whole["rows"] == 600
    assert streamed["overall"] == pytest.approx(whole["overall"], rel=1e-12)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_empty_table_keeps_its_columns(tmp_path, quakes, suffix):
    path = tmp_path / f"e{suffix}"
    write_table(Table(quakes.frame.iloc[:0], ["x", "y"], quakes.units), path)
    (table,) = iter_tables(path)
    assert list(table.frame.columns) == list(quakes.frame.columns) and table.frame.empty


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_simulate_train_predict_with_no_flags(runner, tmp_path, suffix):
    """`fcnn simulate … -o quakes.root` records its labels: `fcnn train quakes.root` needs
    no flags; predictions written in the same format read back as the CSV ones."""
    data, run = tmp_path / f"quakes{suffix}", tmp_path / "run"

    def ok(*args):
        result = runner.invoke(cli, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result

    ok("simulate", "earthquakes", "-n", 300, "--seed", 2, "-o", data)
    ok("train", data, "--epochs", 1, "-q", "-o", run)
    assert json.loads((run / "config.json").read_text())["targets"] == ["x", "y"]
    model = run / "model.pt"
    out = tmp_path / f"predictions{suffix}"
    ok("predict", model, data, "--keep", "x", "-o", out)
    csv = pd.read_csv(io.StringIO(ok("predict", model, data, "--keep", "x").stdout))
    back = read_table(out).frame
    assert list(back.columns) == ["x", "x_pred", "y_pred"]
    np.testing.assert_allclose(back.to_numpy(), csv.to_numpy(), rtol=1e-6)
    report = json.loads(ok("evaluate", model, data, "--json").stdout)
    assert report["rows"] == 300


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_classifier_predictions_keep_class_names(runner, tmp_path, suffix):
    data, run = tmp_path / f"g{suffix}", tmp_path / "run"
    args = [["simulate", "galaxies", "-n", "60", "--size", "8", "-o", str(data)],
            ["train", str(data), "--epochs", "1", "-q", "-o", str(run)],
            ["predict", str(run / "model.pt"), str(data), "--keep", "rotation", "-o",
             str(tmp_path / f"p{suffix}")]]
    for a in args:
        assert runner.invoke(cli, a).exit_code == 0
    back = read_table(tmp_path / f"p{suffix}").frame
    assert list(back.columns) == ["rotation", "rotation_pred", "p_left", "p_right"]
    assert set(back.rotation_pred) <= {"left", "right"} and set(back.rotation) == {"left", "right"}


def test_files_fcnn_writes_read_in_the_fields_own_tools(tmp_path, quakes):
    for suffix in SUFFIXES:
        write_table(quakes, tmp_path / f"q{suffix}")
    tree = uproot.open(tmp_path / "q.root")["events"]
    np.testing.assert_array_equal(tree["x"].array(library="np"), quakes.frame.x)
    with h5py.File(tmp_path / "q.h5") as file:
        assert file["tp1"].attrs["units"] == "s" and list(file)[:3] == ["x", "y", "tp1"]
    from astropy.table import Table as AstropyTable

    table = AstropyTable.read(tmp_path / "q.fits")
    assert str(table["x"].unit) == "km" and len(table) == len(quakes.frame)
    with fits.open(tmp_path / "q.fits") as hdus:
        hdus.verify("exception")
        assert json.loads(hdus["EVENTS"].header["FCNN"])["targets"] == ["x", "y"]


# --- Selectors ---------------------------------------------------------------------------

@pytest.mark.parametrize("spec, parts", [
    ("events.root:tree", ("events.root", "tree")), ("C:/d/x.root:t", ("C:/d/x.root", "t")),
    ("x.fits:2", ("x.fits", "2")), ("x.h5:/a/b", ("x.h5", "/a/b")), ("x.csv:1", ("x.csv:1", None)),
    ("plain.root", ("plain.root", None)), ("-", ("-", None)), ("a:b.h5", ("a:b.h5", None))])
def test_split_selector(spec, parts):
    assert split_selector(spec) == parts


def test_an_existing_file_of_the_whole_name_wins(tmp_path, quakes):
    odd = tmp_path / "a.h5:b.h5"
    write_table(quakes, tmp_path / "a.h5")
    (tmp_path / "a.h5").rename(odd)
    assert split_selector(odd) == (str(odd), None)
    assert len(read_table(odd).frame) == len(quakes.frame)


def two_trees(path):
    with uproot.recreate(path) as file:
        file.mktree("a", {"u": np.float64}).extend({"u": np.arange(3.0)})
        file.mktree("b", {"v": np.float64}).extend({"v": np.arange(5.0)})
        file["note"] = "a string"
    return path


def test_root_selectors(tmp_path):
    path = two_trees(tmp_path / "t.root")
    with pytest.raises(FcnnError, match=r"holds 2 trees \('a', 'b'\); choose one with "
                                        r".*t.root:TREE"):
        read_table(path)
    assert read_table(f"{path}:b").frame.v.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(FcnnError, match=r"t.root:nope: no tree 'nope' in the file; its "
                                        r"trees: 'a', 'b'"):
        read_table(f"{path}:nope")
    with pytest.raises(FcnnError, match="'note' is a TObjString, not a tree"):
        read_table(f"{path}:note")


def hdf5_tables(path):
    with h5py.File(path, "w") as file:
        events = np.zeros(4, dtype=[("e", "f8"), ("n", "i4"), ("tag", "S5")])
        events["e"], events["tag"] = [1, 2, 3, 4], b"mu"
        file.create_dataset("data/events", data=events).attrs["fcnn"] = '{"targets": ["e"]}'
        group = file.create_group("other")
        group.create_dataset("a", data=np.arange(3.0)).attrs["units"] = "GeV"
        group.create_dataset("b", data=np.arange(3)).attrs["unit"] = b"cm"
        group.create_dataset("image", data=np.zeros((3, 3)))  # not a column: left out
    return path


def test_hdf5_selectors_attributes_and_compound_datasets(tmp_path):
    path = hdf5_tables(tmp_path / "t.h5")
    with pytest.raises(FcnnError, match=r"holds 2 tables \('/data/events', '/other'\); choose"):
        read_table(path)
    events = read_table(f"{path}:/data/events")
    assert events.targets == ["e"] and events.frame.tag.tolist() == ["mu"] * 4
    other = read_table(f"{path}:/other")
    assert list(other.frame.columns) == ["a", "b"] and other.units == {"a": "GeV", "b": "cm"}
    with pytest.raises(FcnnError, match="no dataset or group '/nope'"):
        read_table(f"{path}:/nope")
    with pytest.raises(FcnnError, match="'/other/image' is not a table"):
        read_table(f"{path}:/other/image")


def fits_tables(path):
    first = fits.BinTableHDU.from_columns([fits.Column("e", "D", unit="GeV", array=[1.0, 2.0])],
                                          name="FIRST")
    second = fits.BinTableHDU.from_columns([fits.Column("m", "E", array=[5.0])], name="SECOND")
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2, 2))), first, second]
                 ).writeto(path)
    return path


def test_fits_selectors_and_units(tmp_path):
    path = fits_tables(tmp_path / "t.fits")
    first = read_table(path)
    assert first.frame.e.tolist() == [1.0, 2.0] and first.units == {"e": "GeV"}
    assert read_table(f"{path}:3").frame.m.tolist() == [5.0]
    assert read_table(f"{path}:second").frame.m.tolist() == [5.0]
    with pytest.raises(FcnnError, match="HDU '1' is a ImageHDU, not a binary table"):
        read_table(f"{path}:1")
    with pytest.raises(FcnnError, match=r"no HDU '9': the file holds 4 \(0 'PRIMARY', 1 '', 2"):
        read_table(f"{path}:9")


def test_root_branch_titles_give_units(tmp_path, monkeypatch):
    """ROOT writes a branch's title as its author gives it ("energy [GeV]"); uproot writes
    none but the leaf list, so it is made to here."""
    from uproot.writing import _cascadetree

    made = _cascadetree.Tree._branch_np
    titles = {"e": "energy [GeV]", "x": "x position [ km ]", "n": "n/I"}

    def titled(self, name, *args, **kwargs):
        return {**made(self, name, *args, **kwargs), "fTitle": titles[name]}

    monkeypatch.setattr(_cascadetree.Tree, "_branch_np", titled)
    path = tmp_path / "t.root"
    with uproot.recreate(path) as file:
        file.mktree("t", {"e": np.float64, "x": np.float64, "n": np.int32}).extend(
            {"e": np.ones(2), "x": np.ones(2), "n": np.ones(2, np.int32)})
    assert read_table(path).units == {"e": "GeV", "x": "km"}


def test_fcnn_metadata_overrides_the_formats_own_units(tmp_path, quakes):
    path = tmp_path / "q.h5"
    write_table(Table(quakes.frame, ["x"], {"x": "m"}), path)
    with h5py.File(path, "a") as file:
        file["y"].attrs["units"] = "mile"
        file["x"].attrs["units"] = "ignored"
    table = read_table(path)
    assert table.units == {"x": "m", "y": "mile"} and table.targets == ["x"]


# --- Missing extras, and what a CSV run imports ---------------------------------------------

@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_missing_extra_is_one_line_naming_it(runner, tmp_path, quakes, model_path,
                                               monkeypatch, suffix):
    path = tmp_path / f"q{suffix}"
    write_table(quakes, path)
    package, extra = PACKAGES[suffix]
    monkeypatch.setitem(sys.modules, package, None)  # its import fails
    said = f"{package} package: pip install 'fcnn[{extra}]'"
    with pytest.raises(FcnnError) as error:
        read_table(path)
    assert str(error.value).startswith(f"{path}: ") and str(error.value).endswith(said)
    result = runner.invoke(cli, ["predict", str(model_path), str(path)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and said in result.stderr
    out = tmp_path / f"new{suffix}"
    result = runner.invoke(cli, ["simulate", "earthquakes", "-n", "5", "-o", str(out)])
    assert result.exit_code == 1 and said in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"q{suffix}"]


def test_csv_tables_import_no_reader_of_the_other_formats(quakes_csv):
    code = ("import sys; from fcnn_cli.data.tables import read_table; read_table(sys.argv[1]); "
            "print(sorted(m for m in ('uproot', 'h5py', 'astropy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(quakes_csv)], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- Writing ------------------------------------------------------------------------------

def test_fits_text_longer_than_its_first_rows_set_is_one_line(tmp_path):
    from fcnn_cli.data.writer import TableWriter

    path = tmp_path / "t.fits"
    with pytest.raises(FcnnError, match="column 'id' holds a value longer than 32 bytes"):
        with TableWriter(path) as writer:
            writer.write(pd.DataFrame({"id": ["a"]}))
            writer.write(pd.DataFrame({"id": ["b" * 40]}))
    assert list(tmp_path.iterdir()) == []  # no file, no temporary file


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_column_turning_to_text_is_one_line_and_leaves_no_file(tmp_path, suffix):
    from fcnn_cli.data.writer import TableWriter

    with pytest.raises(FcnnError, match="column 'a' turns from numbers to text"):
        with TableWriter(tmp_path / f"t{suffix}") as writer:
            writer.write(pd.DataFrame({"a": [1.0]}))
            writer.write(pd.DataFrame({"a": ["x"]}))
    assert list(tmp_path.iterdir()) == []


def test_an_output_behind_a_selector_is_the_input(runner, tmp_path, quakes, model_path):
    path = tmp_path / "q.root"
    write_table(quakes, path)
    before = path.read_bytes()
    result = runner.invoke(cli, ["predict", str(model_path), f"{path}:events", "-o", str(path)])
    assert result.exit_code == 1 and "is the same file as the input" in result.stderr
    assert path.read_bytes() == before


def test_an_rntuple_reads_as_a_tree_does(tmp_path, quakes):
    path = tmp_path / "n.root"
    with uproot.recreate(path) as file:
        file["quakes"] = {c: quakes.frame[c].to_numpy() for c in quakes.frame.columns}
    assert uproot.open(path).classnames() == {"quakes;1": "ROOT::RNTuple"}
    # uproot stores an RNTuple's fields in the order of their names
    pd.testing.assert_frame_equal(read_table(path).frame, quakes.frame, check_like=True)
    blocks = list(iter_tables(f"{path}:quakes", rows=250))
    assert [len(b.frame) for b in blocks] == [250, 250, 100]


def test_an_output_takes_no_selector(runner, tmp_path, model_path, quakes_csv):
    out = tmp_path / "p.root"
    result = runner.invoke(cli, ["predict", str(model_path), str(quakes_csv), "-o", f"{out}:t"])
    assert result.exit_code == 1 and "an output takes no ':' selector" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["packed.fits", "packed.fits.gz", "packed.fits.gz:EVENTS"])
def test_gzip_compressed_fits_reads_as_the_plain_file(tmp_path, quakes, name):
    import gzip

    write_table(quakes, tmp_path / "plain.fits")
    (tmp_path / name.split(":")[0]).write_bytes(
        gzip.compress((tmp_path / "plain.fits").read_bytes(), compresslevel=0))
    chunks = list(iter_tables(tmp_path / name, rows=7))
    pd.testing.assert_frame_equal(pd.concat([c.frame for c in chunks], ignore_index=True),
                                  read_table(tmp_path / "plain.fits").frame)
    assert chunks[0].targets == quakes.targets


def test_a_fits_file_of_other_bytes_or_a_compressed_output_is_one_line(tmp_path, quakes):
    import bz2

    write_table(quakes, tmp_path / "plain.fits")
    (tmp_path / "packed.fits").write_bytes(bz2.compress((tmp_path / "plain.fits").read_bytes()))
    with pytest.raises(FcnnError, match="not a readable FITS file: it does not start with "
                                        "'SIMPLE  ='"):
        read_table(tmp_path / "packed.fits")
    with pytest.raises(FcnnError, match="writes FITS files uncompressed; name the output "
                                        "'out.fits'"):
        write_table(quakes, tmp_path / "out.fits.gz")
    assert not (tmp_path / "out.fits.gz").exists()


def test_fits_keeps_unsigned_64_bit_integers_above_2_to_the_63(tmp_path):
    values = np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 1], dtype=np.uint64)
    write_table(Table(pd.DataFrame({"id": values, "x": np.arange(5.0)})), tmp_path / "u.fits")
    back = read_table(tmp_path / "u.fits").frame
    assert back.id.dtype == np.uint64 and back.id.tolist() == values.tolist()
    with fits.open(tmp_path / "u.fits") as hdus:  # and in astropy, as in any FITS reader
        assert hdus[1].header["TZERO1"] == 2**63
        assert hdus[1].data["id"].tolist() == values.tolist()


def test_fits_tnull_values_are_missing_and_nan_options_see_them(runner, tmp_path, quakes,
                                                                model_path):
    frame = quakes.frame.head(30)
    nulled = np.round(frame.tp1.to_numpy()).astype(np.int32)
    nulled[[3, 7]] = -999
    columns = [fits.Column(c, "D", array=frame[c]) for c in frame.columns if c != "tp1"]
    columns += [fits.Column("tp1", "J", null=-999, array=nulled),
                fits.Column("flag", "B", null=255, array=np.r_[255, np.zeros(29, np.uint8)])]
    path = tmp_path / "nulls.fits"
    fits.BinTableHDU.from_columns(columns).writeto(path)
    back = read_table(path).frame
    assert back.tp1.dtype == np.float64 and back.tp1.isna().tolist() == [i in (3, 7)
                                                                          for i in range(30)]
    assert back.tp1[0] == nulled[0]
    assert back.flag.isna().sum() == 1 and back.flag[1] == 0
    result = runner.invoke(cli, ["predict", str(model_path), str(path), "--nan", "drop"])
    assert result.exit_code == 0, result.output
    assert "leaving out 2 row(s)" in result.stderr and len(result.stdout.splitlines()) == 29
    result = runner.invoke(cli, ["predict", str(model_path), str(path)])
    assert result.exit_code == 1 and "2 row(s)" in result.stderr


def foreign_metadata(path, value):
    """A file whose own field for fcnn's metadata holds someone else's ``value``."""
    events = {"e": np.arange(4.0), "n": np.arange(4.0) * 2}
    if path.suffix == ".root":
        with uproot.recreate(path) as file:
            file.mktree("t", {c: np.float64 for c in events}, title=value).extend(events)
    elif path.suffix == ".h5":
        with h5py.File(path, "w") as file:
            for c, v in events.items():
                file[c] = v
            file.attrs["fcnn"] = value
    else:
        hdu = fits.BinTableHDU.from_columns([fits.Column(c, "D", array=v)
                                             for c, v in events.items()])
        hdu.header["FCNN"] = value
        hdu.writeto(path)
    return path


@pytest.mark.parametrize("suffix,value", [(".root", "fcnn inputs for the 2025 analysis"),
                                          (".h5", "version 3 of the selection"),
                                          (".fits", "version 3 of the selection")])
def test_a_foreign_title_or_attribute_is_not_fcnn_metadata(tmp_path, suffix, value):
    table = read_table(foreign_metadata(tmp_path / f"a{suffix}", value))
    assert table.targets == [] and table.frame.n.tolist() == [0, 2, 4, 6]


@pytest.mark.parametrize("suffix,value,said", [
    (".root", "fcnn {\"targets\": [", "malformed fcnn metadata: Expecting value"),
    (".h5", "{\"targets\": 3}", "malformed fcnn metadata: 'targets' is not a list"),
    (".fits", True, "malformed fcnn metadata: keyword FCNN holds bool True, not text")])
def test_fcnn_metadata_of_fcnns_form_but_damaged_is_one_line(tmp_path, suffix, value, said):
    with pytest.raises(FcnnError, match=said):
        read_table(foreign_metadata(tmp_path / f"a{suffix}", value))


def cycles_and_odd_directories(path):
    """Two cycles of a tree 't', and a tree in a directory whose name holds a ':'."""
    with uproot.recreate(path) as file:
        file["t"] = {"u": np.arange(3.0)}
        file["t"] = {"u": np.arange(5.0)}
        file.mkdir("we:ird").mktree("t", {"v": np.float64}).extend({"v": np.arange(2.0)})
    return path


@pytest.mark.parametrize("rows", [None, 7])
def test_root_jagged_branches_read_as_uproot_reads_them(tmp_path, rows):
    """Jagged branches (read through awkward) hold each event's list, in whole reads and in
    blocks alike, beside the flat branches in the tree's order."""
    import dimuon

    path = dimuon.write(tmp_path / "mu.root", 50, seed=4)
    expected = uproot.open(path)["Events"].arrays(library="np")
    tables = [read_table(path)] if rows is None else list(iter_tables(path, rows=rows))
    frame = pd.concat([t.frame for t in tables], ignore_index=True)
    assert list(frame.columns) == ["nMuon", "Muon_E", "Muon_Px", "Muon_Py", "Muon_Pz",
                                   "genWeight"]
    for column in ("Muon_E", "Muon_Px"):
        assert all(np.array_equal(a, b) for a, b in zip(frame[column], expected[column],
                                                        strict=True))
    assert frame.nMuon.tolist() == [len(v) for v in frame.Muon_Px] == expected["nMuon"].tolist()
    np.testing.assert_array_equal(frame.genWeight, expected["genWeight"])


def test_root_cycles_and_directories_with_a_colon(tmp_path):
    path = cycles_and_odd_directories(tmp_path / "c.root")
    assert len(read_table(f"{path}:t").frame) == 5  # the highest cycle, as ROOT reads it
    assert read_table(f"{path}:t;1").frame.u.tolist() == [0, 1, 2]
    assert len(read_table(f"{path}:t;2").frame) == 5
    assert read_table(f"{path}:we:ird/t").frame.v.tolist() == [0, 1]
    assert read_table(f"{path}:/we:ird/t;1").frame.v.tolist() == [0, 1]
    with pytest.raises(FcnnError, match=r"no tree 't;3' in the file; its trees: 't', "
                                        r"'we:ird/t'"):
        read_table(f"{path}:t;3")
    with pytest.raises(FcnnError, match=r"no tree 'we:ird/u' in the file"):
        read_table(f"{path}:we:ird/u")


def with_arrays(path, frame):
    """The quakes with columns of several values per row, each format's own: arrays of three,
    structs, object references, bits, jagged branches; and a complex column 'z'."""
    n, z = len(frame), frame.tp1.to_numpy() + 1j * frame.ts1.to_numpy()
    if path.suffix == ".h5":
        with h5py.File(path, "w") as file:
            fields = [(c, "f8") for c in frame.columns]
            data = np.zeros(n, fields + [("vec", "f4", (3,)), ("nest", [("a", "i4"), ("b", "f8")]),
                                          ("z", "c16")])
            for c in frame.columns:
                data[c] = frame[c]
            data["z"] = z
            file["events"] = data
            refs = file.create_group("refs")
            for c in frame.columns:
                refs[c] = frame[c].to_numpy()
            refs.create_dataset("ref", data=[file["events"].ref] * n, dtype=h5py.ref_dtype)
    elif path.suffix == ".root":
        import awkward as ak

        data = {c: frame[c].to_numpy() for c in frame.columns}
        data["hits"] = ak.Array([[1.0] * (i % 3) for i in range(n)])
        with uproot.recreate(path) as file:
            file.mktree("events", {c: v.type.content if c == "hits" else v.dtype
                                   for c, v in data.items()}).extend(data)
    else:
        columns = [fits.Column(c, "D", array=frame[c]) for c in frame.columns]
        columns += [fits.Column("vec", "3E", array=np.ones((n, 3))),
                    fits.Column("bits", "8X", array=np.zeros((n, 8), bool)),
                    fits.Column("z", "M", array=z)]
        fits.BinTableHDU.from_columns(columns).writeto(path)
    return path


ARRAY_COLUMNS = [("a.h5:/events", "vec", "lists of float32"),
                 ("a.h5:/events", "nest", "structs (fields 'a', 'b')"),
                 ("a.h5:/refs", "ref", "HDF5 Reference objects"),
                 ("a.root", "hits", "lists of float64"),
                 ("a.fits", "vec", "lists of float32"), ("a.fits", "bits", "lists of uint8")]


@pytest.mark.parametrize("source,column,kind", ARRAY_COLUMNS)
@pytest.mark.parametrize("out", ["p.csv", "p.h5", "p.root", "p.fits", "p.parquet"])
def test_keep_refuses_a_column_of_several_values_per_row(runner, tmp_path, quakes, model_path,
                                                         source, column, kind, out):
    file, _, selector = source.partition(":")
    with_arrays(tmp_path / file, quakes.frame.head(20))
    data = f"{tmp_path / file}:{selector}" if selector else str(tmp_path / file)
    result = runner.invoke(cli, ["predict", str(model_path), data, "--keep", f"x,{column}",
                                 "-o", str(tmp_path / out)])
    assert result.exit_code == 1, result.output
    assert f"kept column {column!r} holds {kind}, not one value per row" in result.stderr
    assert not (tmp_path / out).exists()


@pytest.mark.parametrize("source", ["a.h5:/events", "a.fits"])
def test_complex_columns_are_refused_as_features_and_labels(runner, tmp_path, quakes,
                                                            model_path, source):
    file, _, selector = source.partition(":")
    frame = quakes.frame.head(40)
    with_arrays(tmp_path / file, frame)
    data = f"{tmp_path / file}:{selector}" if selector else str(tmp_path / file)
    said = "column 'z' holds complex numbers (complex128), not "
    for options, role in [(["-t", "x", "--features", "tp1,z"], "feature"),
                          (["-t", "z"], "label")]:
        result = runner.invoke(cli, ["train", data, *options, "--epochs", "1", "-q", "-o",
                                     str(tmp_path / "run")])
        assert result.exit_code == 1 and f"{role} {said}" in result.stderr, result.output
        assert "real and imaginary parts" in result.stderr and "Warning" not in result.stderr
    table = read_table(data)
    from fcnn_cli.data.columns import select_columns

    assert "z" not in select_columns(table, ["x"])[0]  # not taken as a feature unasked
    with h5py.File(tmp_path / "c.h5", "w") as h5:  # the model's feature tp1, complex
        for c in frame.columns:
            h5[c] = frame[c].to_numpy() * (1 + 1j if c == "tp1" else 1)
    result = runner.invoke(cli, ["predict", str(model_path), str(tmp_path / "c.h5")])
    assert result.exit_code == 1 and "column 'tp1' holds complex numbers" in result.stderr


def test_a_missing_hdf5_filter_is_named_not_called_damage(tmp_path):
    path = tmp_path / "blosc.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("x", data=np.arange(10.0), chunks=(5,), compression=32001,
                            allow_unknown_filter=True)
        file["y"] = np.arange(10.0)
    with pytest.raises(FcnnError, match=r"blosc.h5: dataset '/x' is compressed with HDF5 filter "
                                        r"32001 \(Blosc\), which this HDF5 library lacks; the "
                                        r"hdf5plugin package may provide it"):
        read_table(path)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_pipe_is_refused_before_anything_is_written(tmp_path, suffix):
    import os

    from fcnn_cli.data.writer import TableWriter

    os.mkfifo(tmp_path / f"out{suffix}")  # opened by nothing: a write would wait for a reader
    with pytest.raises(FcnnError, match="files cannot be written to a pipe or device"):
        TableWriter(tmp_path / f"out{suffix}")



@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_pipe_is_refused_as_input_without_waiting_on_it(tmp_path, suffix):
    import os

    os.mkfifo(tmp_path / f"in{suffix}")  # opened by nothing: opening it would wait for a writer
    with pytest.raises(FcnnError, match="files cannot be read from a pipe or device"):
        iter_tables(tmp_path / f"in{suffix}")


def test_hdf5_paths_through_links_into_other_files_are_refused(tmp_path, quakes):
    write_table(quakes, tmp_path / "other.h5")
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as file:
        for c in quakes.frame.columns:
            file[f"t/{c}"] = quakes.frame[c].to_numpy()
        file["ext"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/")
        file["soft"] = h5py.SoftLink("/ext")
    into = f"in the file '{tmp_path / 'other.h5'}'; fcnn reads only the file it is given"
    for selector in ("", ":/ext", ":ext/", ":/ext/x"):
        with pytest.raises(FcnnError, match=f"^{path}{selector}: '/ext' links to '/' {into}"):
            read_table(f"{path}{selector}")
    with pytest.raises(FcnnError, match=f"^{path}:/soft: '/ext' links to '/' {into}"):
        read_table(f"{path}:/soft")
    assert len(read_table(f"{path}:/t").frame) == len(quakes.frame)


HOP_TO_FIFO = """
import h5py, os, sys
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import read_table
os.chdir(sys.argv[1])
os.mkfifo("fifo.h5")  # opened by nothing: HDF5 opening it would wait for a writer
with h5py.File("ext.h5", "w") as file:
    file["g/x"] = [1.0, 2.0]
    file["g/z"] = h5py.ExternalLink("fifo.h5", "/t")
    file["g/a"] = h5py.SoftLink("/g/z")
    file["g/b"] = h5py.SoftLink("a")
for selector in ("", ":/g", ":/g/a", ":/g/b/x"):
    try:
        read_table("ext.h5" + selector)
    except FcnnError as e:
        print(e)
"""


def test_hdf5_soft_links_to_external_links_are_refused_before_opening(tmp_path):
    """A chain of soft links that ends in an external link is refused link by link: the
    other file (here a FIFO, which would hang) is never opened, even to list the tables."""
    done = subprocess.run([sys.executable, "-c", HOP_TO_FIFO, str(tmp_path)], timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and all("'/g/z' links to '/t' in the file 'fifo.h5'; fcnn reads "
                                   "only the file it is given" in line for line in lines), lines


def test_hdf5_soft_links_never_open_another_file_or_loop(tmp_path):
    import h5py

    (tmp_path / "other.h5").write_bytes(b"garbage, not HDF5 " * 20)
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as file:
        file["g/x"] = [1.0, 2.0]
        file["g/z"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/t")
        file["g/a"] = h5py.SoftLink("/g/z")
        file["loop/a"] = h5py.SoftLink("/loop/b")
        file["loop/b"] = h5py.SoftLink("a")
    with pytest.raises(FcnnError, match="'/g/z' links to '/t' in the file .*other.h5'; fcnn"):
        read_table(path)
    with pytest.raises(FcnnError, match=r"'/loop/a': more than 16 soft links in a row"):
        read_table(f"{path}:/loop/a")


ZEROS = 100_000  # rows of zeros: 8 MB of the quakes' ten columns, a few KB compressed


def _compressed_zeros(path, quakes):
    frame = pd.DataFrame(0.0, index=range(ZEROS), columns=quakes.frame.columns)
    table = Table(frame, quakes.targets)
    if path.suffix == ".gz":
        import gzip

        write_table(table, path.with_suffix(""))
        path.write_bytes(gzip.compress(path.with_suffix("").read_bytes()))
    elif path.suffix in (".root", ".parquet"):  # compressed as fcnn writes them
        write_table(table, path)
        write_table(table, path.with_name("plain.csv"))
    else:
        write_table(table, path.with_name("plain.h5"))
        with h5py.File(path, "w") as file:
            for c in frame.columns:
                file.create_dataset(c, data=frame[c].to_numpy(), chunks=(8192,),
                                    compression="gzip", compression_opts=9)
            file.attrs["fcnn"] = json.dumps({"targets": quakes.targets})
    return path


@pytest.mark.parametrize("name", ["zeros.h5", "zeros.fits.gz", "zeros.root", "zeros.parquet"])
def test_a_table_unpacking_to_over_100_times_its_file_is_refused_by_every_command(
        runner, tmp_path, quakes, model_path, monkeypatch, name):
    from fcnn_cli.data import formats

    path = _compressed_zeros(tmp_path / name, quakes)
    assert ZEROS * 80 > 100 * path.stat().st_size  # a small bomb indeed
    monkeypatch.setattr(formats, "UNPACKED_ANYWAY", 1 << 20)  # no 64 MiB allowed outright
    for args in (["train", path, "-o", tmp_path / "run"],
                 ["evaluate", model_path, path, "-o", tmp_path / "report.json"],
                 ["predict", model_path, path, "-o", tmp_path / "p.csv"]):
        result = runner.invoke(cli, [str(a) for a in args])
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(f"Error: {path}: truncated or inconsistent: it declares ")
        assert "over 100 times the" in result.stderr and len(result.stderr.splitlines()) == 1
        assert {".gz": "gunzip it first", ".h5": "h5repack -f NONE", ".root": "file\n",
                ".parquet": "write it uncompressed"}[path.suffix] in result.stderr + "\n"
    assert not any((tmp_path / made).exists() for made in ("run", "report.json", "p.csv"))
    uncompressed = path.with_name({".gz": "zeros.fits", ".h5": "plain.h5"}.get(path.suffix,
                                                                              "plain.csv"))
    assert len(read_table(uncompressed).frame) == ZEROS  # the same table, stored plainly


def test_a_sound_compressed_hdf5_table_reads(tmp_path, quakes):
    path = tmp_path / "sound.h5"
    with h5py.File(path, "w", track_order=True) as file:
        for c in quakes.frame.columns:
            file.create_dataset(c, data=quakes.frame[c].to_numpy(), compression="gzip")
    pd.testing.assert_frame_equal(read_table(path).frame, quakes.frame, check_dtype=False)
