"""fcnn report: one HTML page of a run."""

import pytest


@pytest.mark.slow
def test_report_writes_one_page_into_the_run_or_where_told(run, runner, run_dir, tmp_path):
    run(runner, "report", run_dir, "-o", tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    # The run's plots, the overtraining check's and the inputs' correlations among them.
    assert "<h2>Overtraining check</h2>" in text and "Correlations of the inputs" in text
    assert text.startswith("<!DOCTYPE html>") and text.count("data:image/png;base64,") == 8


def test_report_of_a_config_nested_deep_is_shown_not_a_traceback(run, runner, run_dir,
                                                                 tmp_path):
    import json
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    deep = "x"
    for _ in range(900):
        deep = [deep]
    (copy / "config.json").write_text(json.dumps({"nested": deep}))
    result = run(runner, "report", copy, "-o", tmp_path / "r.html")
    assert "Traceback" not in result.output and "RecursionError" not in result.output
