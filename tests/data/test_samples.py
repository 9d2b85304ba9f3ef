"""Samples: --sample's text and a configuration file's tables, their files found (globs,
directories, comma lists) in a stable order, and what a run records of each file."""

import hashlib
import os

import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data import samples


@pytest.mark.parametrize("text, name, patterns, scale", [
    ("signal=sig.root", "signal", ["sig.root"], 1.0),
    ("ttbar=ttbar_*.root*0.0831", "ttbar", ["ttbar_*.root"], 0.0831),
    ("bkg = a.csv, b.csv*2", "bkg", ["a.csv", "b.csv"], 2.0),
    ("w=dir/*.parquet*1e-3", "w", ["dir/*.parquet"], 1e-3),
    ("z=x.root:Events", "z", ["x.root:Events"], 1.0),
    ("s=sig_*", "s", ["sig_*"], 1.0),  # a trailing glob is no scale
])
def test_a_sample_text_gives_its_name_files_and_scale(text, name, patterns, scale):
    sample = samples.parse(text)
    assert (sample.name, sample.patterns, sample.scale) == (name, patterns, scale)


@pytest.mark.parametrize("text, message", [
    ("sig.root", "write NAME=FILE[,FILE…][*SCALE]"),
    ("=sig.root", "needs a name"),
    ("a b=sig.root", "needs a name"),
    ("s=", "name its files"),
    ("s=a.csv,,b.csv", "name its files"),
    ("s=a.csv*0", "finite number > 0, not 0.0"),
    ("s=a.csv*-2", "finite number > 0, not -2.0"),
    ("s=a.csv*nan", "finite number > 0, not nan"),
    ("s=a.csv*inf", "finite number > 0, not inf"),
])
def test_a_bad_sample_text_is_refused_in_one_line(text, message):
    with pytest.raises(FcnnError, match="^sample .*" + message.replace("[", r"\[")
                       .replace("*", r"\*").replace("+", r"\+")) as e:
        samples.parse(text)
    assert e.value.options == ("samples",)


def test_a_sample_table_takes_files_scale_and_where_only():
    sample = samples.parse({"name": "tt", "files": "a.root", "scale": 2, "where": "n > 1"})
    assert (sample.patterns, sample.scale, sample.where) == (["a.root"], 2.0, "n > 1")
    with pytest.raises(FcnnError, match="unknown key 'weight'; a sample takes files, scale"):
        samples.parse({"name": "tt", "files": ["a.root"], "weight": "w"})
    with pytest.raises(FcnnError, match="scale must be a number, not 'big'"):
        samples.parse({"name": "tt", "files": ["a.root"], "scale": "big"})
    with pytest.raises(FcnnError, match="files must be a file name or a list of them"):
        samples.parse({"name": "tt", "files": [1]})


def test_a_sample_named_twice_is_refused():
    with pytest.raises(FcnnError, match="sample 'a' is given twice"):
        samples.of_options(["a=x.csv", "b=y.csv", "a=z.csv"])


@pytest.fixture
def files(tmp_path):
    for name in ("b_2.csv", "b_10.csv", "a.csv", "notes.txt.bak", ".hidden.csv", "README.TXT"):
        (tmp_path / name).write_text("x\n1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.csv").write_text("x\n1\n")
    return tmp_path


def test_globs_and_directories_give_their_files_sorted_items_in_order(files):
    found = samples.find([str(files / "b_*.csv"), str(files / "a.csv")])
    assert found == [str(files / "b_10.csv"), str(files / "b_2.csv"), str(files / "a.csv")]
    # a directory: its table files (by suffix), not notes (.txt), not hidden ones, nor those of
    # folders below
    assert samples.find([str(files)]) == [str(files / n) for n in ("a.csv", "b_10.csv",
                                                                    "b_2.csv")]


def test_a_selector_stays_after_each_file_a_glob_finds(files):
    for name in ("s1.root", "s2.root"):
        (files / name).write_bytes(b"")
    assert samples.find([str(files / "s*.root:Events")]) == [
        str(files / "s1.root:Events"), str(files / "s2.root:Events")]


def test_a_file_named_like_a_glob_is_that_file(files):
    (files / "run[1].csv").write_text("x\n1\n")
    assert samples.find([str(files / "run[1].csv")]) == [str(files / "run[1].csv")]


def test_nothing_found_and_a_file_twice_are_refused(files):
    with pytest.raises(FcnnError, match=r"nothing_\*\.csv: no file matches"):
        samples.find([str(files / "nothing_*.csv")])
    with pytest.raises(FcnnError, match="a.csv: given twice .* would count twice"):
        samples.find([str(files / "*.csv"), str(files / "a.csv")])
    (files / "empty").mkdir()
    (files / "empty" / "README").write_text("no tables here")
    with pytest.raises(FcnnError, match="empty: holds no table files"):
        samples.find([str(files / "empty")])


def test_a_glob_ending_in_digits_is_no_scale_where_it_names_the_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mc").mkdir()
    for name in ("ttbar_a_2018", "ttbar_b_2018"):
        (tmp_path / "mc" / name).write_text("x\n1\n")
    sample = samples.parse("bkg=mc/ttbar_*2018")
    assert (sample.patterns, sample.scale) == (["mc/ttbar_*2018"], 1.0)
    sample = samples.parse("bkg=mc/ttbar_*2018*0.5")  # a scale after the glob still is one
    assert (sample.patterns, sample.scale) == (["mc/ttbar_*2018"], 0.5)
    sample = samples.parse("bkg=mc/ttbar_*.root*2")  # no file either way: a scale, as ever
    assert (sample.patterns, sample.scale) == (["mc/ttbar_*.root"], 2.0)


def test_a_star_whose_two_readings_name_files_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for name in ("run1.csv", "run_1"):
        (tmp_path / "runs" / name).write_text("x\n1\n")
    with pytest.raises(FcnnError, match=r"^sample 'sig=runs/\*1': ambiguous: 'runs/\*1' names "
                       r"files, and so does 'runs/' at scale 1; write the scale after the "
                       r"glob \('runs/\*1\*1'\), or the sample as a table$") as e:
        samples.parse("sig=runs/*1")
    assert e.value.options == ("samples",)
    assert samples.parse("sig=runs/*1*1").patterns == ["runs/*1"]
    (tmp_path / "runs" / "run_1").unlink()  # the glob names nothing: the directory at scale 1
    assert samples.parse("sig=runs/*1").patterns == ["runs/"]


def test_data_of_several_files_is_a_glob_a_directory_or_a_comma_list(files, tmp_path):
    assert samples.data_patterns(str(files / "a.csv")) is None  # one file: read as ever
    assert samples.data_patterns("-") is None
    assert samples.data_patterns(f"{files / 'a.csv'}, {files / 'b_*.csv'}") == [
        str(files / "a.csv"), str(files / "b_*.csv")]
    assert samples.data_patterns(str(files)) == [str(files)]
    comma = tmp_path / "a,b.csv"  # an existing file of that whole name is one file
    comma.write_text("x\n1\n")
    assert samples.data_patterns(str(comma)) is None


def test_a_record_holds_the_absolute_path_size_and_sha256(files, monkeypatch):
    monkeypatch.chdir(files)
    data = os.urandom(3 * samples.HASH_BLOCK + 17)
    (files / "big.parquet").write_bytes(data)
    assert samples.record("big.parquet") == {"path": str(files / "big.parquet"),
                                             "size": len(data),
                                             "sha256": hashlib.sha256(data).hexdigest()}
    (files / "t.root").write_bytes(data[:100])  # a selector is recorded, the file hashed
    assert samples.record("t.root:Events") == {"path": str(files / "t.root") + ":Events",
                                               "size": 100,
                                               "sha256": hashlib.sha256(data[:100]).hexdigest()}


def test_a_file_in_two_samples_is_refused(files):
    both = samples.of_options([f"a={files}/a.csv", f"b={files}/b_*.csv,{files}/a.csv"])
    for sample in both:
        sample.find()
    with pytest.raises(FcnnError, match="a.csv: given twice in sample 'a' and in sample 'b'"):
        samples.check_once(both)
