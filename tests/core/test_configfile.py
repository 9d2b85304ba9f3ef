"""Configuration files of fcnn train: one list of options for flags and keys, the order in which
they override each other, their error messages, and the run that config.toml repeats."""

import json
import tomllib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fcnn_cli.core import configfile
from fcnn_cli.commands import cli
from fcnn_cli.commands.options import with_flags
from fcnn_cli.core.config import (ACTIVATIONS, DataConfig, NetConfig, TrainConfig, option_fields,
                             typed)
from fcnn_cli.core.errors import FcnnError

# How a command runs: options of the command line only, never keys of a file; but for those
# a file may give as a default beneath the command line (plots).
COMMAND_LINE = {"config_file", "print_config", "nproc", "output", "force", "resume", "quiet"}
RUN_DEFAULTS = {"plots"}


def run(runner, *args, code=0, input=None):
    result = runner.invoke(cli, [str(a) for a in args], input=input)
    assert result.exit_code == code, result.output + str(result.exception)
    return result


def printed(runner, *args):
    return tomllib.loads(run(runner, "train", *args, "--print-config").stdout)


def flat(document):
    return {**{k: v for k, v in document.items() if not isinstance(v, dict)},
            **document.get("net", {}), **document.get("train", {})}


def test_options_and_keys_are_one_list():
    train = cli.commands["train"]
    options = {p.name for p in train.params} - COMMAND_LINE - RUN_DEFAULTS
    assert set(configfile.RUN_DEFAULTS) == RUN_DEFAULTS
    assert options == set(configfile.FIELDS)
    assert set(configfile.COMMAND_LINE) == {n.removesuffix("_file") for n in COMMAND_LINE}
    flags = {o for p in train.params for o in p.opts}
    for key in configfile.FIELDS:
        # the name=value form: the names that are words too (where, nan) are flags only so
        assert key == "data" or with_flags(f"{key}=1", [key]).split()[0] in flags
    # every field of the option dataclasses but the network's sizes and the embeddings of
    # levels (which the data make) is an option
    every = [f.name for cls in (DataConfig, NetConfig, TrainConfig) for f in
             __import__("dataclasses").fields(cls)]
    assert sorted(set(every) - set(configfile.FIELDS)) == ["levels", "n_in", "n_out"]


def test_activation_choices_are_the_activation_table():
    (activation,) = [p for p in cli.commands["train"].params if p.name == "activation"]
    assert tuple(activation.type.choices) == tuple(ACTIVATIONS)


def test_every_option_field_has_help_and_a_default_of_its_type():
    for cls in (DataConfig, NetConfig, TrainConfig):
        for f in option_fields(cls):
            assert f.metadata["help"].rstrip(")").endswith("."), f.name
            assert typed(f, f.default) == f.default, f.name
            assert f.metadata["choices"] is None or f.default in (None, *f.metadata["choices"])


def test_print_config_prints_every_key_with_its_default(runner, quakes_csv):
    document = printed(runner, quakes_csv)
    unset = {f.name for f in option_fields(TrainConfig) if f.default is None}  # TOML has no none
    assert unset >= {"threads"}
    unset.add("nan")  # left to the data's metadata (where picks are missing: fill)
    assert set(document["train"]) == {f.name for f in option_fields(TrainConfig)} - unset
    assert document["net"]["activation"] == "silu" and "dropout" not in document["net"]
    assert not {"width", "depth"} & set(document["net"])  # left to the data's metadata too
    assert document["data"] == str(quakes_csv) and "targets" not in document
    # the keys left to the data are there too, as comments that say what applies
    lines = run(runner, "train", quakes_csv, "--print-config").stdout.splitlines()
    for line in ("# dropout: not set; the default: 0.1 for classification, 0 for regression",
                 "# position: not set; the default: labels named like x, y (z)",
                 "# threads: not set; the default: one for small networks, else timed among "
                 "the CPUs this process may use",
                 "# targets: not set; the default: the labels recorded in the file",
                 "# features: not set; the default: every other numeric column, and those of "
                 "text or booleans of at most 64 levels",
                 "# val: not set", "# test: not set", "# width: not set", "# depth: not set",
                 "# nan: not set"):
        assert line in lines


def test_command_line_overrides_the_file_which_overrides_the_defaults(runner, tmp_path,
                                                                      quakes_csv):
    path = tmp_path / "run.toml"
    path.write_text('epochs = 5\nfast = false\n[net]\ndepth = 2\nbatchnorm = true\n'
                    '[train]\nlr = 0.01\n')
    values = flat(printed(runner, quakes_csv, "--config", path, "--epochs", 7, "--fast",
                          "--no-batchnorm"))
    assert (values["epochs"], values["fast"], values["batchnorm"]) == (7, True, False)
    assert (values["depth"], values["lr"]) == (2, 0.01)  # from the file
    assert values["batch_size"] == 32 and "width" not in values  # the default; left open
    assert values["data"] == str(quakes_csv)


def test_paths_in_a_file_are_taken_from_its_directory(runner, tmp_path, quakes_csv):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "run.toml"
    path.write_text('data = "../d.csv"\nval = "/abs/v.csv"\ntargets = ["x"]\n')
    values = flat(printed(runner, "--config", path))
    assert values["data"] == str(tmp_path / "d.csv") and values["val"] == "/abs/v.csv"
    assert flat(printed(runner, quakes_csv, "--config", path))["data"] == str(quakes_csv)


@pytest.mark.parametrize("text, message", [
    ("depht = 3", "run.toml: unknown key 'depht'; did you mean 'depth'?"),
    ("[train]\nbatch-size = 3", "run.toml: [train] unknown key 'batch-size'; did you mean "
                                "'batch_size'?"),
    ("zzz = 1", "run.toml: unknown key 'zzz'; fcnn train --print-config shows every key"),
    ("[nett]\ndepth = 3", "run.toml: unknown section [nett]; did you mean [net]?"),
    ("[train]\ndepth = 3", "run.toml: [train] 'depth' belongs in [net]"),
    ("[net]\ndata = 'x.csv'", "run.toml: [net] 'data' belongs in the top, outside any section"),
    ("depth = 3\n[net]\ndepth = 4", "run.toml: [net] 'depth' is given twice"),
    ("output = 'runs/x'", "run.toml: 'output': how a command runs is given on its command line "
                          "(-o), not in a configuration file"),
    ("net = 3", "run.toml: 'net' must be a section (a table): [net] with its keys on the lines "
                "below it, not net = 3"),
    ("[[net]]\ndepth = 3", "run.toml: 'net' must be a section (a table): [net] with its keys "
                           "on the lines below it, not [[net]]"),
    ("train = 'fast'", "run.toml: 'train' must be a section (a table): [train]"),
    ("out = 'r1'", "run.toml: 'out': how a command runs is given on its command line (-o)"),
    ("[train]\no = 'r1'", "run.toml: [train] 'o': how a command runs is given on its command "
                          "line (-o)"),
    ("run_dir = 'r1'", "run.toml: 'run_dir': how a command runs is given on its command line "
                       "(-o)"),
    ("[train]\nplots = false", "run.toml: [train] 'plots' belongs at the top, outside any "
                              "section"),
    ("plots = 'no'", "run.toml: plots must be true or false, not 'no'"),
    ("data = ''", "run.toml: data must be a path, not an empty string"),
    ("test = ''", "run.toml: test must be a path, not an empty string"),
    ("[train]\nlr = inf", "run.toml: lr must be finite and > 0, not inf"),
    ("epochs = 99999999999999999999", "run.toml: epochs must be at most 2147483647, not "
                                      "99999999999999999999"),
    ("[train]\nepochs = '3'", "run.toml: [train] epochs must be an integer, not '3'"),
    ("[train]\nepochs = 2.5", "run.toml: [train] epochs must be an integer, not 2.5"),
    ("[train]\nlr = true", "run.toml: [train] lr must be a number, not True"),
    ("threads = 'all'", "run.toml: threads must be an integer, not 'all'"),
    ("targets = 'x'", "run.toml: targets must be a list of names, not 'x'"),
    ("features = []", "run.toml: features must be a list of column names, not []"),
    ("[net]\nactivation = 'rleu'", "run.toml: unknown activation 'rleu'; choose from relu"),
    ("[train]\nepochs = 0", "run.toml: epochs must be at least 1, not 0"),
    ("epochs = [", "run.toml: not a TOML file: "),
    # nested 3000 deep: beyond the parser's recursion (lists, inline tables), or parsed
    # without it (dotted keys, table headers) but beyond a recursive reader's
    ("epochs = " + "[" * 3000 + "]" * 3000, "run.toml: tables or lists nested more than 16 "
                                             "levels deep"),
    ("epochs = " + "{a = " * 3000 + "1" + "}" * 3000, "run.toml: tables or lists nested more"),
    ("a" + ".a" * 3000 + " = 1", "run.toml: tables or lists nested more than 16 levels deep"),
    ("[a" + ".a" * 3000 + "]", "run.toml: tables or lists nested more than 16 levels deep"),
])
def test_mistakes_in_a_file_name_the_key_the_value_and_what_was_expected(runner, tmp_path,
                                                                       monkeypatch, text,
                                                                       message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.toml").write_text(text + "\n")
    out = run(runner, "train", "d.csv", "--config", "run.toml", code=2).stderr
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {message}"), out


@pytest.mark.parametrize("depth, deep", [(configfile.MAX_DEPTH, False),
                                         (configfile.MAX_DEPTH + 1, True)])
def test_nesting_is_refused_beyond_its_bound_only(tmp_path, depth, deep):
    """The document is one level, the value's lists the rest."""
    path = tmp_path / "run.toml"
    path.write_text("v = " + "[" * (depth - 1) + "]" * (depth - 1) + "\n")
    if deep:
        with pytest.raises(FcnnError, match=f"nested more than {configfile.MAX_DEPTH} levels"):
            configfile.parse(path)
    else:
        value = configfile.parse(path)["v"]
        for _ in range(depth - 2):
            (value,) = value
        assert value == []


def test_a_byte_order_mark_is_not_part_of_the_file(runner, tmp_path):
    """Some editors start a UTF-8 file with one: it is read as the same file without it."""
    path = tmp_path / "run.toml"
    path.write_bytes("\ufeff[train]\nepochs = 7\n".encode("utf-8"))
    assert configfile.read_config(path) == {"epochs": 7}
    assert flat(printed(runner, "d.csv", "--config", path))["epochs"] == 7
    path.write_bytes("\ufeff\ufeff[train]\nepochs = 7\n".encode("utf-8"))  # one mark only
    with pytest.raises(FcnnError, match="not a TOML file"):
        configfile.parse(path)


def test_a_mistake_that_the_command_line_shares_names_flags(runner, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("val_frac = 0.5\n")
    out = run(runner, "train", "d.csv", "--config", path, "--test-frac", 0.5, code=2).stderr
    assert "Error: --val-frac plus --test-frac must be below 1" in out


def test_a_missing_file_is_one_line(runner, tmp_path):
    out = run(runner, "train", "d.csv", "--config", tmp_path / "none.toml", code=2).stderr
    assert "none.toml: cannot read the configuration file: No such file" in out


def test_resume_takes_no_configuration_file(runner, interrupted, tmp_path):
    (tmp_path / "run.toml").write_text("epochs = 5\n")
    out = run(runner, "train", "--resume", interrupted, "--config", tmp_path / "run.toml",
              code=2).stderr
    assert "it does not take --config" in out


def test_config_toml_repeats_the_run(runner, tmp_path, quakes_csv):
    first = tmp_path / "first"
    run(runner, "train", quakes_csv, "--features", "tp1,ts1,tp2,ts2,tp3", "--arch", "resnet",
        "--depth", 3, "--width", 16, "--epochs", 3, "--batch-size", 64, "--seed", 11,
        "--lr", 0.003, "--device", "cpu", "-q", "-o", first)
    again = tmp_path / "again"
    run(runner, "train", "--config", first / "config.toml", "-q", "-o", again)
    assert (again / "metrics.json").read_text() == (first / "metrics.json").read_text()
    assert (again / "config.toml").read_text() == (first / "config.toml").read_text()
    saved = json.loads((again / "config.json").read_text())
    assert saved["train"]["seed"] == 11 and saved["features"] == ["tp1", "ts1", "tp2", "ts2",
                                                                  "tp3"]
    other = tmp_path / "other"  # and the command line still overrides it
    run(runner, "train", "--config", first / "config.toml", "--seed", 12, "-q", "-o", other)
    assert (other / "metrics.json").read_text() != (first / "metrics.json").read_text()


def test_config_toml_records_the_device_as_given(runner, tmp_path, quakes_csv):
    run(runner, "train", quakes_csv, "--epochs", 1, "-q", "-o", tmp_path / "r")
    # auto stays auto, so that the file reruns on a machine with or without a GPU
    saved = tomllib.loads((tmp_path / "r" / "config.toml").read_text())
    assert saved["train"]["device"] == "auto"
    assert json.loads((tmp_path / "r" / "config.json").read_text())["device"] == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_device_the_machine_lacks_is_named_as_the_files_key(runner, tmp_path, quakes_csv):
    path = tmp_path / "run.toml"
    path.write_text('[train]\ndevice = "cuda"\nepochs = 1\n')
    out = run(runner, "train", quakes_csv, "--config", path, "-o", tmp_path / "r", code=1).stderr
    assert f"Error: {path}: device='cuda': no CUDA GPU is available here" in out
    run(runner, "train", quakes_csv, "--config", path, "--device", "cpu", "-q", "-o",
        tmp_path / "r")  # the command line overrides it


def test_a_run_from_stdin_says_so_in_its_config_toml(runner, tmp_path, quakes_csv):
    run(runner, "train", "-", "--epochs", 1, "-q", "-o", tmp_path / "r",
        input=quakes_csv.read_text())
    text = (tmp_path / "r" / "config.toml").read_text()
    assert "# data: the run read stdin" in text and "data =" not in text


names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(path=names, columns=st.lists(names, min_size=1, max_size=40, unique=True),
       lr=st.floats(min_value=1e-300, max_value=1e300), seed=st.integers(0, 2 ** 63 - 1))
def test_written_options_read_back_as_they_were(path, columns, lr, seed):
    text = configfile.dumps({"data": "/" + path, "features": columns}, {"depth": 3},
                            {"lr": lr, "seed": seed, "fast": False})
    document = tomllib.loads(text)
    assert document["data"] == "/" + path and document["features"] == columns
    assert document["train"] == {"lr": lr, "seed": seed, "fast": False}


def test_a_path_no_utf8_file_can_hold_is_refused():
    with pytest.raises(FcnnError, match="cannot be written in a TOML file"):
        configfile.dumps({"data": "/d\udcff.csv"}, {}, {})


def test_sample_configuration_trains(runner, tmp_path):
    import pathlib

    sample = pathlib.Path(__file__).parents[2] / "sample_data" / "quakes.toml"
    values = flat(printed(runner, "--config", sample))
    assert values["data"] == str(sample.parent / "quakes.csv") and values["arch"] == "resnet"
    run(runner, "train", "--config", sample, "--epochs", 1, "-q", "-o", tmp_path / "r")
    assert json.loads((tmp_path / "r" / "config.json").read_text())["net"]["arch"] == "resnet"


def test_samples_tables_read_in_order_with_paths_from_the_files_directory(tmp_path):
    path = tmp_path / "sub" / "run.toml"
    path.parent.mkdir()
    path.write_text('define = ["pt=hypot(px, py)"]\nwhere = "pt > 20"\nweight = "genWeight"\n'
                    '[samples.ttbar]\nfiles = ["tt_*.root", "/abs/tt.root"]\nscale = 0.0831\n'
                    'where = "nJet >= 4"\n[samples.wjets]\nfiles = "w.root"\n')
    values = configfile.read_config(str(path))
    assert values["samples"] == [
        {"name": "ttbar", "files": [str(path.parent / "tt_*.root"), "/abs/tt.root"],
         "scale": 0.0831, "where": "nJet >= 4"},
        {"name": "wjets", "files": str(path.parent / "w.root")}]
    assert (values["define"], values["where"], values["weight"]) == \
        (["pt=hypot(px, py)"], "pt > 20", "genWeight")
    path.write_text('samples = ["sig=s.root*0.5", "bkg=a.root, /abs/b.root"]\n')
    assert configfile.read_config(str(path))["samples"] == [
        f"sig={path.parent / 's.root*0.5'}", f"bkg={path.parent / 'a.root'},/abs/b.root"]


def test_a_sample_that_is_not_a_table_is_named(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[samples]\nttbar = "tt.root"\n')
    with pytest.raises(FcnnError, match=r"\[samples\] 'ttbar' must be a table: "
                                        r"\[samples.ttbar\] with files"):
        configfile.read_config(str(path))


def test_samples_are_written_as_tables_that_read_back(tmp_path):
    samples = [{"name": "tt bar", "files": ["/d/a.root", "/d/b.root"], "scale": 0.5,
                "where": 'n > 1 and "my col" < 2'}, {"name": "w", "files": ["/d/w.root"],
                                                     "scale": 1.0}]
    text = configfile.dumps({"data": None, "samples": samples, "define": ["m=sqrt(x)"]},
                            {}, {})
    assert '[samples."tt bar"]' in text and "# samples: the [samples.NAME] tables below" in text
    path = tmp_path / "c.toml"
    path.write_text(text)
    values = configfile.read_config(str(path))
    assert values["samples"] == samples and values["define"] == ["m=sqrt(x)"]


def test_each_file_of_a_data_of_several_is_taken_from_the_files_directory(runner, tmp_path,
                                                                         monkeypatch):
    path = tmp_path / "sub" / "run.toml"
    path.parent.mkdir()
    path.write_text('data = "a.csv, /abs/b.csv,c_*.csv"\n')
    assert configfile.read_config(str(path))["data"] == \
        f"{path.parent / 'a.csv'},/abs/b.csv,{path.parent / 'c_*.csv'}"
    monkeypatch.chdir(tmp_path)
    assert printed(runner, "a.csv,b.csv")["data"] == f"{tmp_path / 'a.csv'},{tmp_path / 'b.csv'}"
