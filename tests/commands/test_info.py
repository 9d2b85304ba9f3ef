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
