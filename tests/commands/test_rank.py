"""fcnn rank: the table, --json, --plots, a model with definitions, weights, the refusals."""

import json

import pytest

from fcnn_cli.data.tables import Table
from fcnn_cli.data.writer import write_table
from ranked import abc_frame, abc_model


@pytest.fixture(scope="module")
def abc(tmp_path_factory):
    """(a model trained on a, b and c, a table of new rows to rank on)."""
    from fcnn_cli.network import checkpoint

    directory = tmp_path_factory.mktemp("abc")
    checkpoint.save(abc_model(), directory / "model.pt")
    write_table(Table(abc_frame(1500, seed=5), ["label"]), directory / "rows.csv")
    return directory / "model.pt", directory / "rows.csv"


def test_json_ranks_a_before_b_before_c(run, runner, abc):
    report = json.loads(run(runner, "rank", *abc, "--repeats", 3, "--json").stdout)
    assert set(report) >= {"model", "data", "metric", "unit", "higher_is_better", "baseline",
                           "rows", "weighted", "repeats", "seed", "inputs", "warnings"}
    assert [e["name"] for e in report["inputs"]] == ["a", "b", "c"]
    assert set(report["inputs"][0]) == {"name", "kind", "mean", "std", "drops"}
    assert report["metric"] == "roc_auc" and report["rows"] == 1500
    assert not report["weighted"] and report["repeats"] == 3


def test_the_table_and_the_plots(run, runner, abc, tmp_path):
    out = run(runner, "rank", *abc, "--repeats", 2, "--plots", tmp_path / "p").stdout
    assert "roc_auc" in out and out.index(" a ") < out.index(" b ") < out.index(" c ")
    assert (tmp_path / "p" / "importance.png").is_file()
    assert (tmp_path / "p" / "correlations.png").is_file()


def test_rows_samples_and_weight_weighs(run, runner, abc):
    report = json.loads(run(runner, "rank", *abc, "--rows", 500, "--repeats", 2,
                            "--weight", "w", "--json").stdout)
    assert report["rows"] == 500 and report["weighted"] and report["weight"] == "w"


@pytest.mark.parametrize("args, message", [
    ([], "missing argument DATA"), (["--repeats", "0"], "give 1 or more"),
    (["--weight", "w", "--no-weight"], "not both")])
def test_bad_arguments_are_usage_errors(run, runner, abc, args, message):
    model, data = abc
    given = [model] if not args else [model, data]
    out = run(runner, "rank", *given, *args, code=2).output
    assert message in " ".join(out.split())


def test_a_model_with_a_definition_ranks_its_raw_columns(run, runner, selected_run,
                                                         sample_files):
    report = json.loads(run(runner, "rank", selected_run / "model.pt", "--sample",
                            f"signal={sample_files}/sig_1.csv", "--sample",
                            f"background={sample_files}/bkg.csv", "--repeats", 2,
                            "--json").stdout)
    kinds = {(e["name"], e["kind"]) for e in report["inputs"]}
    assert {("r", "feature"), ("x", "raw"), ("y", "raw")} <= kinds
    assert report["selection"]["where"] == "n >= 1"


def test_the_training_file_is_warned_of(run, runner, run_dir, quakes_csv):
    result = run(runner, "rank", run_dir / "model.pt", quakes_csv, "--repeats", 1, "--json")
    report = json.loads(result.stdout)
    assert report["metric"] == "mean_distance" and report["unit"] == "km"
    assert report["warnings"] and not report["higher_is_better"]
