"""fcnn info: a checkpoint as tables or JSON."""

import json


def test_info_as_a_table_and_as_json(run, runner, run_dir):
    table = run(runner, "info", run_dir / "model.pt").output
    for word in ("regression", "8 → 64 → 64 → 64 → 2", "9,026", "tp1", "position", "x, y"):
        assert word in table
    about = json.loads(run(runner, "info", run_dir / "model.pt", "--json").output)
    assert about["network"]["parameters"] == 9026 and about["labels"]["position"] == ["x", "y"]


def test_info_of_no_checkpoint_is_one_line(run, runner, tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_text("hello")
    assert "not an fcnn checkpoint" in run(runner, "info", bad, code=1).output


def test_info_of_versions_nested_deep_is_shown_not_a_traceback(run, runner, run_dir, tmp_path):
    from forgery import in_meta, resigned

    model = tmp_path / "model.pt"
    model.write_bytes((run_dir / "model.pt").read_bytes())
    deep = "x\x1b"
    for _ in range(700):
        deep = [deep]
    resigned(model, in_meta(lambda meta: meta["info"].update(versions={"torch": deep})))
    shown = run(runner, "info", model).output
    assert "Traceback" not in shown and "RecursionError" not in shown and "\x1b" not in shown


def test_info_shows_the_samples_and_their_files(run, runner, samples_run, sample_files):
    table = run(runner, "info", samples_run / "model.pt").output
    assert "sample signal" in table and "sample background" in table
    assert f"{sample_files}/sig_1.csv, {sample_files}/sig_2.csv" in table
    about = json.loads(run(runner, "info", samples_run / "model.pt", "--json").output)
    recipe = about["recipe"]
    assert [s["name"] for s in recipe["samples"]] == ["signal", "background"]
    assert [f["path"] for f in recipe["samples"][1]["files"]] == [str(sample_files / "bkg.csv")]
    assert (recipe["weight"], recipe["where"], recipe["define"]) == (None, None, [])
