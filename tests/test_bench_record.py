"""bench/record.py: every benchmark run leaves a dated record, and never replaces one."""

import datetime
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import record  # noqa: E402  (bench/ is a folder of scripts, not a package)


def test_a_record_holds_the_tables_and_what_they_depend_on(tmp_path):
    rows = [("train", 1.5, None), {"case": "predict", "fcnn": 2.0, "peer": 3.0}]
    path = record.write("speed", [record.table("t", ("case", "fcnn", "peer"), rows)],
                        note="alone", directory=tmp_path)
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    assert path == tmp_path / f"speed-{today}.json"
    saved = json.loads(path.read_text())
    assert saved["bench"] == "speed" and saved["date"] == today and saved["note"] == "alone"
    assert saved["cpus"] >= 1 and saved["python"] and "machine" in saved
    assert saved["tables"] == [{"title": "t", "columns": ["case", "fcnn", "peer"], "rows": [
        {"case": "train", "fcnn": 1.5, "peer": None},
        {"case": "predict", "fcnn": 2.0, "peer": 3.0}]}]


def test_a_second_run_on_one_day_gets_a_file_of_its_own(tmp_path):
    first = record.write("memory", [], directory=tmp_path)
    second = record.write("memory", [], directory=tmp_path)
    assert second.name == first.name.replace(".json", "-2.json")
    assert json.loads(first.read_text())["tables"] == []


def test_a_row_of_the_wrong_length_is_refused(tmp_path):
    with pytest.raises(ValueError):
        record.table("t", ("a", "b"), [(1, 2, 3)])


def test_a_printed_table_is_recorded_as_printed():
    from rich.table import Table

    shown = Table(title="peaks")
    shown.add_column("rows")
    shown.add_column("peak")
    shown.add_row("1,000", "0.49 GB")
    assert record.printed(shown) == {"title": "peaks", "columns": ["rows", "peak"],
                                     "rows": [{"rows": "1,000", "peak": "0.49 GB"}]}
