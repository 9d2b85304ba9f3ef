"""fcnn report: one HTML page of a run."""

import pytest


@pytest.mark.slow
def test_report_writes_one_page_into_the_run_or_where_told(run, runner, run_dir, tmp_path):
    run(runner, "report", run_dir, "-o", tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    assert text.startswith("<!DOCTYPE html>") and text.count("data:image/png;base64,") == 6
