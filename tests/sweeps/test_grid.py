"""The grid: its values of their options' types and their errors, grid files, combinations
counted before they are made, and the keys that name their run directories."""

import re

import pytest

from sweeping import never
from fcnn_cli.commands import cli
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.sweeps import grid
from fcnn_cli.sweeps.grid import Sweep


def test_grid_values_take_their_options_types():
    parsed = grid.parse_grid(["depth=3,10", "arch=plain,resnet", "lr=1e-3,0.01",
                              "batchnorm=true,false", "batch-size=16"])
    assert parsed == {"depth": [3, 10], "arch": ["plain", "resnet"], "lr": [0.001, 0.01],
                      "batchnorm": [True, False], "batch_size": [16]}
    assert type(parsed["lr"][0]) is float and type(parsed["depth"][0]) is int


@pytest.mark.parametrize("items, message", [
    (["depht=3"], "unknown grid key 'depht'; did you mean 'depth'?"),
    (["depth=3,x"], "depth must be an integer, not 'x'"),
    (["depth"], "give KEY=V1,V2"),
    (["depth="], "give KEY=V1,V2"),
    (["seed=1,2"], "seeds are given by seeds="),
    (["stream=true"], "reads its tables into memory"),
    (["depth=1", "depth=2"], "given twice"),
    (["lr=fast"], "lr must be a number"),
])
def test_grid_errors_say_what_is_wrong(items, message):
    with pytest.raises(FcnnError, match=message.replace("?", r"\?")):
        grid.parse_grid(items)


def test_bad_values_and_clashes_are_refused_before_training():
    with pytest.raises(FcnnError, match="unknown option 'epoch'; did you mean 'epochs'"):
        Sweep({"data": "x.csv"}, {"epoch": 2}, {"depth": [1]})
    with pytest.raises(FcnnError, match="unknown architecture 'cnn'"):
        Sweep({"data": "x.csv"}, {}, grid.parse_grid(["arch=plain,cnn"]))
    with pytest.raises(FcnnError, match="depth is both fixed and in the grid"):
        Sweep({"data": "x.csv"}, {"depth": 2}, {"depth": [1, 2]})
    with pytest.raises(FcnnError, match="seeds must be between"):
        Sweep({"data": "x.csv"}, {}, {"depth": [1]}, seeds=0)
    # Options no ensemble takes train their seeds one by one, and are checked all the same.
    Sweep({"data": "x.csv"}, {"diagnostics": True}, {"depth": [1]}, seeds=2)
    with pytest.raises(FcnnError, match="unknown architecture 'cnn'"):
        Sweep({"data": "x.csv"}, {"diagnostics": True}, {"arch": ["cnn"]}, seeds=2)


@pytest.mark.parametrize("args, message", [
    (["--grid", "depht=1"], "unknown --grid key 'depht'; did you mean 'depth'?"),
    (["--grid", "depth=1", "--shard", "3/2"], "--shard must be I/N"),
    (["--grid", "depth=1", "--depth", "2"], "--depth is both fixed and in the --grid"),
    ([], "give a grid"),
    (["--grid", "features=a,b"], "--grid key 'features' is a data option, given once for all "
                                 "combinations: give --features"),
    (["--grid", "targets=a"], "given once for all combinations: give --target"),
    (["--grid", "data=a.csv"], "given once for all combinations: give the data file as DATA"),
    (["--grid", "depth=1", "--seed", str(2**63 - 1), "--seeds", "2"],
     "--seed + --seeds - 1 (the last member's --seed) must be at most"),
])
def test_command_line_errors_are_one_line(runner, args, message, tmp_path):
    result = runner.invoke(cli, ["sweep", "q.csv", *args, "-o", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_combinations_in_a_stable_order():
    values = {"depth": [3, 10], "arch": ["plain", "resnet", "selu"]}
    assert grid.combinations(values) == [
        {"depth": d, "arch": a} for d in (3, 10) for a in ("plain", "resnet", "selu")]


def test_keys_are_stable_and_tell_combinations_apart():
    one = Sweep({"data": "x.csv"}, {"epochs": 2}, {"depth": [1, 2]}, seeds=2)
    keys = [one.key(c) for c in grid.combinations(one.grid)]
    assert keys[0].startswith("depth=1-") and len(set(keys)) == 2
    assert keys == [Sweep({"data": "x.csv"}, {"epochs": 2}, {"depth": [1, 2]},
                          seeds=2).key(c) for c in grid.combinations(one.grid)]
    other = Sweep({"data": "x.csv"}, {"epochs": 3}, {"depth": [1, 2]}, seeds=2)
    assert other.key({"depth": 1}) != keys[0]


def test_keys_ignore_what_does_not_change_the_result(own_quakes, monkeypatch):
    """Typed-out defaults, threads, device and the spelling of the data path name the same
    directory; an option that changes the result does not."""
    monkeypatch.chdir(own_quakes.parent)
    plain = Sweep({"data": "q.csv"}, {"epochs": 1}, {"depth": [1]})
    spelt = Sweep({"data": "./q.csv"}, {"epochs": 1, "batch_size": 32, "threads": 1,
                                        "device": "cpu"}, {"depth": [1]})
    absolute = Sweep({"data": str(own_quakes)}, {"epochs": 1}, {"depth": [1]})
    keys = {s.key({"depth": 1}) for s in (plain, spelt, absolute)}
    assert len(keys) == 1
    other = Sweep({"data": "q.csv"}, {"epochs": 1, "batch_size": 16}, {"depth": [1]})
    assert other.key({"depth": 1}) not in keys


def test_a_typed_dropout_is_not_the_task_default_in_the_key():
    """Left out, a classifier trains with dropout 0.1 (the task's default), so dropout 0 typed
    out is another combination."""
    grid = {"lr": [1e-3]}
    plain = Sweep({"data": "x.csv"}, {}, grid)
    typed = Sweep({"data": "x.csv"}, {"dropout": 0.0}, grid)
    assert plain.key({"lr": 1e-3}) != typed.key({"lr": 1e-3})


def test_the_order_of_the_grid_keys_names_no_other_run():
    one = Sweep({"data": "x.csv"}, {}, {"lr": [1e-3], "init": ["he"]})
    other = Sweep({"data": "x.csv"}, {}, {"init": ["he"], "lr": [1e-3]})
    assert one.key({"lr": 1e-3, "init": "he"}) == other.key({"init": "he", "lr": 1e-3})


@pytest.mark.parametrize("key", ["threads", "device"])
def test_options_of_speed_alone_are_fixed_not_swept(key):
    value = {"threads": 1, "device": "cpu"}[key]
    Sweep({"data": "x.csv"}, {key: value}, {"lr": [1e-3]})  # fixed: taken
    with pytest.raises(FcnnError, match="changes how fast"):
        grid.parse_grid([f"{key}={value}"])


@pytest.mark.parametrize("values", [["lr=1e-3,1e-3"], ["lr=1e-3,0.001"],
                                    ["depth=1,2", "arch=plain,resnet,plain"]])
def test_repeated_grid_values_are_refused(values):
    with pytest.raises(FcnnError, match="is given twice"):
        Sweep({"data": "x.csv"}, {}, grid.parse_grid(values))


def test_repeated_values_in_a_grid_file_are_refused(runner, tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text("[grid]\nlr = [1e-3, 0.001]\n")
    result = runner.invoke(cli, ["sweep", "q.csv", "--grid-file", str(path), "-o",
                                 str(tmp_path / "sw")])
    assert result.exit_code == 2 and "the value 0.001 is given twice" in result.output
    assert not (tmp_path / "sw").exists()


def test_grid_file_holds_the_grid_and_fixed_options(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text('data = "q.csv"\n[grid]\ndepth = [1, 2]\narch = ["plain", "selu"]\n'
                    "[train]\nepochs = 2\n")
    table, fixed = grid.read_grid_file(path)
    assert table == {"depth": [1, 2], "arch": ["plain", "selu"]}
    assert fixed == {"data": str(tmp_path / "q.csv"), "epochs": 2}
    path.write_text("[grid]\ndepth = 3\n")
    with pytest.raises(FcnnError, match="depth must be a list"):
        grid.read_grid_file(path)
    path.write_text("[grid]\nwidht = [3]\n")
    with pytest.raises(FcnnError, match="did you mean 'width'"):
        grid.read_grid_file(path)


def test_the_command_line_replaces_a_grid_of_the_file(runner, quakes, tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text("[grid]\nlr = [0.001, 0.01]\ndepth = [1, 2]\n")
    out = tmp_path / "sw"
    result = runner.invoke(cli, ["sweep", quakes, "--grid-file", str(path), "--lr", "0.5",
                                 "--dry-run", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"--lr on the command line replaces the grid of lr in {path}" in result.output
    assert "Sweep plan (2 combinations" in result.output and "0.001" not in result.output
    spec = Sweep({"data": quakes}, {"lr": 0.5}, {"depth": [1, 2]})
    assert spec.key({"depth": 1}) in result.output


def test_a_grid_is_counted_before_its_combinations_are_made(monkeypatch):
    monkeypatch.setattr(grid, "combinations", never)
    values = {key: list(range(1, 101)) for key in ("depth", "width", "epochs", "batch_size")}
    with pytest.raises(FcnnError, match="^the grid makes 100000000 combinations; a sweep "
                                        "trains at most 10000: split it into several sweeps$"):
        Sweep({"data": "x.csv"}, {}, values)


def test_the_bound_is_on_the_combinations_and_on_one_list_before_its_values(monkeypatch,
                                                                           tmp_path):
    monkeypatch.setattr(grid, "MAX_COMBINATIONS", 6)
    Sweep({"data": "x.csv"}, {}, {"depth": [1, 2], "width": [1, 2, 3]})  # 6: taken
    with pytest.raises(FcnnError, match="the grid makes 8 combinations; a sweep trains at "
                                        "most 6"):
        Sweep({"data": "x.csv"}, {}, {"depth": [1, 2], "width": [1, 2, 3, 4]})
    assert grid.parse_grid(["depth=1,2,3,4,5,6"]) == {"depth": [1, 2, 3, 4, 5, 6]}
    path = tmp_path / "sweep.toml"
    path.write_text("[grid]\ndepth = [1, 2, 3, 4, 5, 6, 7]\n")
    monkeypatch.setattr(grid, "_typed", never)  # refused before any value is read
    with pytest.raises(FcnnError, match="^grid depth: 7 values; a sweep trains at most 6 "
                                        "combinations$"):
        grid.parse_grid(["depth=1,2,3,4,5,6,7"])
    with pytest.raises(FcnnError, match=f"^{path}: \\[grid\\] depth: 7 values; a sweep "
                                        "trains at most 6 combinations$"):
        grid.read_grid_file(path)


def test_a_grid_file_of_a_million_combinations_is_one_line(runner, tmp_path):
    path = tmp_path / "sweep.toml"
    values = list(range(1, 1001))
    path.write_text(f"[grid]\ndepth = {values}\nwidth = {values}\n")
    result = runner.invoke(cli, ["sweep", "q.csv", "--grid-file", str(path), "--dry-run",
                                 "-o", str(tmp_path / "sw")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.splitlines()[-1] == (
        "Error: the grid makes 1000000 combinations; a sweep trains at most 10000: split it "
        "into several sweeps")


def test_a_grid_file_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_bytes("\ufeff[grid]\ndepth = [1, 2]\n".encode("utf-8"))
    assert grid.read_grid_file(path) == ({"depth": [1, 2]}, {})


@pytest.mark.parametrize("text", ["[grid]\ndepth = " + "[" * 3000 + "]" * 3000,
                                  "[grid]\n" + "a." * 3000 + "a = 1"])
def test_a_grid_file_nested_too_deep_is_one_line(runner, tmp_path, text):
    path = tmp_path / "sweep.toml"
    path.write_text(text + "\n")
    result = runner.invoke(cli, ["sweep", "q.csv", "--grid-file", str(path), "--dry-run",
                                 "-o", str(tmp_path / "sw")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.splitlines()[-1] == (
        f"Error: {path}: tables or lists nested more than 16 levels deep; no option takes "
        "such a value")


def test_a_grid_value_nested_too_deep_is_one_line():
    with pytest.raises(FcnnError, match=r"^grid: depth must be an integer, not '\[\[\["):
        grid.parse_grid(["depth=" + "[" * 3000 + "]" * 3000])


@pytest.mark.parametrize("data, grid_, message, option", [
    ({"where": "x >> 1"}, {"depth": [1]}, "'x >> 1', character 4", "where"),
    ({"define": ["m=(x"]}, {"depth": [1]}, "'(x', character 3", "define"),
    ({}, {"where": ["x > 0", "(y > 1"]}, "'(y > 1'", "where"),
    ({}, {"weight": ["w", "w * (2"]}, "'w * (2'", "weight"),
    ({"data": None, "samples": ["a=a.csv"]}, {"depth": [1]}, "give two or more", "samples"),
    ({"data": None, "samples": ["a=a.csv", "b=b.csv"], "val": "v.csv"}, {"depth": [1]},
     "leave out val and test", "samples"),
    ({"data": None, "samples": ["a=a.csv", "b=b.csv"]}, {"task": ["classify", "regress"]},
     "task='regress' takes a label", "samples"),
    ({"where": "x > 0"}, {"where": ["x > 1"]}, "where is both fixed and in the grid", "where"),
])
def test_a_sweeps_recipe_is_checked_before_any_table_is_read(data, grid_, message, option):
    """As fcnn train checks it: every expression of every combination parsed, the samples
    and the task checked, without a file read."""
    with pytest.raises(FcnnError, match=re.escape(message)) as e:
        Sweep({"data": "x.csv", **data}, {}, grid_)
    assert option in e.value.options


def test_a_grid_varies_the_selection_weight_and_definitions():
    parsed = grid.parse_grid(["where=nMuon >= 2,hypot(px, py) > 20 && `p t` > 1",
                              "define=pt=hypot(px, py)", "weight=genWeight,"])
    assert parsed == {"where": ["nMuon >= 2", "hypot(px, py) > 20 && `p t` > 1"],
                      "define": [["pt=hypot(px, py)"]], "weight": ["genWeight", ""]}
    parsed = grid.parse_grid(['where=["nMuon >= 2", "nMuon >= 2 && mass > 40"]',
                              'define=[[], ["r=x / y", "s=r * 2"]]', "lr=[1e-3, 1e-2]"])
    assert parsed == {"where": ["nMuon >= 2", "nMuon >= 2 && mass > 40"],
                      "define": [[], ["r=x / y", "s=r * 2"]], "lr": [1e-3, 1e-2]}
    with pytest.raises(FcnnError, match="grid key 'samples' is a data option, given once"):
        grid.parse_grid(["samples=a=x.csv"])
    with pytest.raises(FcnnError, match="grid key 'objects' is a data option, given once"):
        grid.parse_grid(["objects=Muon:1,Muon:2"])


def test_keys_of_data_options_and_an_empty_selection_is_none():
    spec = Sweep({"data": "x.csv"}, {}, {"where": ["", "x > 0"], "depth": [1]})
    plain = Sweep({"data": "x.csv"}, {}, {"depth": [1]})
    selected = Sweep({"data": "x.csv", "where": "x > 0"}, {}, {"depth": [1]})
    assert spec.key({"where": "", "depth": 1}).endswith(plain.key({"depth": 1})[-10:])
    assert spec.key({"where": "x > 0", "depth": 1}).endswith(
        selected.key({"depth": 1})[-10:])
    assert len({spec.key(c) for c in grid.combinations(spec.grid)}) == 2


def test_samples_are_one_key_however_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    texts = Sweep({"samples": ["s=s.root*2", "b=b.root"]}, {}, {"depth": [1]})
    tables = Sweep({"samples": [{"name": "s", "files": [str(tmp_path / "s.root")],
                                 "scale": 2}, {"name": "b", "files": "./b.root"}]}, {},
                   {"depth": [1]})
    assert texts.key({"depth": 1}) == tables.key({"depth": 1})
    assert texts.data["samples"][0] == {"name": "s", "files": [str(tmp_path / "s.root")],
                                        "scale": 2.0}
