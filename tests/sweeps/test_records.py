"""What a sweep keeps of a combination and reads back: a seeds.json edited out of shape or
damaged is no result (one warning, the combination trains again), and never breaks the
leaderboard."""

import json

import pytest

from sweeping import FIXED
from fcnn_cli.commands import cli
from fcnn_cli.sweeps import leaderboard, plan, records, run
from fcnn_cli.sweeps.grid import Sweep


@pytest.fixture(scope="module")
def finished(quakes, tmp_path_factory):
    """A sweep of one finished combination (copy it before changing it)."""
    spec = Sweep({"data": quakes}, FIXED, {"depth": [1]})
    out = tmp_path_factory.mktemp("finished")
    run.run(spec, out)
    return spec, out


def _with_file(entry):
    return lambda saved: next(iter(saved["data_files"].values())).update(entry)


DAMAGED = {
    "no seeds": (lambda s: s.update(seeds=[], metrics=[]),
                 "its 'seeds' are [], not distinct seeds"),
    "a seed twice": (lambda s: s.update(seeds=[0, 0], metrics=s["metrics"] * 2),
                     "its 'seeds' are [0, 0], not distinct seeds"),
    "a seed as text": (lambda s: s.update(seeds=["0"]), "its 'seeds' are ['0'], not distinct"),
    "a negative seed": (lambda s: s.update(seeds=[-1]), "its 'seeds' are [-1], not distinct"),
    "a seed as true": (lambda s: s.update(seeds=[True]), "its 'seeds' are [True], not"),
    "other seeds": (lambda s: s.update(seeds=[5]), "its 'seeds' is [5], not [0]"),
    "another combination": (lambda s: s.update(combination={"depth": 2}),
                            "its 'combination' is {'depth': 2}, not {'depth': 1}"),
    "no combination": (lambda s: s.pop("combination"), "it has no 'combination'"),
    "a depth as text": (lambda s: s["combination"].update(depth="\x1b[5mBLINK"),
                        "its combination's depth must be an integer, not '\\x1b[5mBLINK'"),
    "an unknown option": (lambda s: s["combination"].update(colour=1),
                          "its combination names 'colour', not an option"),
    "data files as numbers": (lambda s: s.update(data_files={"data": 3}),
                              "its data_files' 'data' is 3, not an object"),
    "an unknown data file": (lambda s: s["data_files"].update(x={}),
                             "its data_files name 'x', not one of data, val, test"),
    "a size as text": (_with_file({"size": "big"}),
                       "its data_files' data 'size' is 'big', not a size"),
    "a negative size": (_with_file({"size": -1}), "its data_files' data is {"),
    "a time as a float": (_with_file({"mtime_ns": 1.5}),
                          "its data_files' data 'mtime_ns' is 1.5, not a time"),
    "a digest as a number": (_with_file({"sha256": 5}), "its data_files' data is {"),
    "no path": (lambda s: next(iter(s["data_files"].values())).pop("path"),
                "its data_files' data has no 'path'"),
    "samples' files not a list": (lambda s: s["data_files"].update(files=3),
                                  "its data_files' 'files' is 3, not a list"),
    "a sample's file without its size": (
        lambda s: s["data_files"].update(files=[{"path": "s.root", "mtime_ns": 1}]),
        "its data_files' files[0] has no 'size'"),
    "negative seconds": (lambda s: s.update(seconds=-1), "its 'seconds' is -1, not a time"),
    "seconds not a number": (lambda s: s.update(seconds=float("nan")),
                             "its 'seconds' is nan, not a time"),
    "an unknown mode": (lambda s: s.update(mode="fast"), "its 'mode' is 'fast', not one of "
                                                         "single, ensemble, sequential"),
    "metrics of no seed": (lambda s: s.update(metrics=[]),
                           "its metrics are not one object per seed"),
    "metrics not objects": (lambda s: s.update(metrics=[3]),
                            "its metrics are not one object per seed"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_result_edited_out_of_shape_is_not_finished(finished, tmp_path, caplog, damage):
    """One warning naming the file and what is wrong; the combination trains again."""
    import shutil

    spec, source = finished
    shutil.copytree(source, tmp_path, dirs_exist_ok=True)
    path = tmp_path / spec.key({"depth": 1}) / records.RESULT_FILE
    saved = json.loads(path.read_text())
    edit, said = DAMAGED[damage]
    edit(saved)
    path.write_text(json.dumps(saved))
    with caplog.at_level("WARNING"):
        assert [s for *_, s in plan.plan(spec, tmp_path)] == [plan.NEW]
    (said_once,) = [r.getMessage() for r in caplog.records]
    assert said_once.startswith(f"{path}: not a sweep's result ({said}"), said_once
    assert said_once.endswith("): its combination trains again")


@pytest.mark.parametrize("damage", ["no seeds", "data files as numbers"])
def test_an_edited_result_is_listed_and_trained_again_from_the_command_line(
        runner, finished, tmp_path, damage):
    import shutil

    spec, source = finished
    shutil.copytree(source, tmp_path, dirs_exist_ok=True)
    path = tmp_path / spec.key({"depth": 1}) / records.RESULT_FILE
    saved = json.loads(path.read_text())
    DAMAGED[damage][0](saved)
    path.write_text(json.dumps(saved))
    args = ["sweep", spec.data["data"], "--grid", "depth=1", "--no-plots", "-o", str(tmp_path),
            *(f"--{k.replace('_', '-')}={v}" for k, v in FIXED.items())]
    listed = runner.invoke(cli, [*args, "--dry-run"])
    assert listed.exit_code == 0 and "to train" in listed.output, listed.output
    assert DAMAGED[damage][1] in listed.output and "Traceback" not in listed.output
    trained = runner.invoke(cli, args)
    assert trained.exit_code == 0, trained.output
    saved, row = records.read_result(path)
    assert saved["seeds"] == [0] and row["seeds"] == 1


def test_a_damaged_result_trains_again_andnever_breaks_the_leaderboard(quakes, tmp_path,
                                                                        caplog):
    spec = Sweep({"data": quakes}, FIXED, {"depth": [1, 2]})
    run.run(spec, tmp_path)
    truncated, wrong = (tmp_path / spec.key({"depth": d}) / records.RESULT_FILE for d in (1, 2))
    truncated.write_text(truncated.read_text()[:40])
    wrong.write_text(wrong.read_text().replace('"seconds": ', '"seconds": "abc", "x": '))
    assert leaderboard.leaderboard(tmp_path) == []
    assert f"{truncated}: skipped" in caplog.text and "'seconds' is 'abc'" in caplog.text
    assert [s for *_, s in plan.plan(spec, tmp_path)] == [plan.NEW, plan.NEW]
    assert f"{wrong}: not a sweep's result" in caplog.text
    rows = run.run(spec, tmp_path)
    assert sorted(r["depth"] for r in rows) == [1, 2]
    assert all(isinstance(r["seconds"], float) for r in rows)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / records.FAILED_FILE).write_text('{"seconds": "abc"}')
    assert len(leaderboard.leaderboard(tmp_path)) == 2
