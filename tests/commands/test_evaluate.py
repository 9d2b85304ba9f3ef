"""fcnn evaluate: the report as tables or JSON, --by bins and their plots, --position."""

import io
import json

import pytest
from click.testing import CliRunner

from fcnn_cli.data.tables import read_table
from fcnn_cli.data.writer import write_table
from fcnn_cli.machine.devices import resolve_device
from fcnn_cli.core.errors import FcnnError


def test_evaluate_writes_report_file(run, runner, model_path, quakes_csv, tmp_path):
    out = tmp_path / "report.json"
    run(runner, "evaluate", model_path, quakes_csv, "-o", out)
    assert json.loads(out.read_text())["rows"] == 600


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA GPU is here")
def test_missing_gpu_is_named_both_ways(run, runner, model_path, quakes_csv):
    with pytest.raises(FcnnError, match=r"^device='cuda': .* \(try device='cpu'\)$"):
        resolve_device("cuda")
    out = run(runner, "evaluate", model_path, quakes_csv, "--device", "cuda", code=1).stderr
    assert out == ("Error: --device cuda: no CUDA GPU is available here (try --device cpu)\n")


def test_evaluate_by_a_column_prints_bins_and_puts_them_in_json(run, runner, run_dir, quakes_csv,
                                                               tmp_path):
    model = run_dir / "model.pt"
    out = run(runner, "evaluate", model, quakes_csv, "--by", "tp1", "--bins", 3).output
    assert "x in bins of tp1 (s)" in out and "Distance in bins of tp1" in out
    report = json.loads(run(runner, "evaluate", model, quakes_csv, "--by", "x", "--by", "y",
                            "--edges=-50,0,50", "--edges=-50,50", "--json").stdout)
    binned = report["binned"]
    assert [a["edges"] for a in binned["by"]] == [[-50, 0, 50], [-50, 50]]
    assert sum(b["count"] for b in binned["bins"]) == report["rows"] == 600


@pytest.mark.parametrize("args, message", [
    (["--bins", "3"], "need --by"), (["--by", "x", "--bins", "3", "--edges", "0,1"],
                                      "--bins or --edges, not both"),
    (["--by", "x", "--edges", "0,a"], "numbers separated by commas"),
    (["--by", "x", "--position", "x"], "2 or 3 labels of a point")])
def test_bad_bins_are_usage_errors(run, runner, run_dir, quakes_csv, args, message):
    out = run(runner, "evaluate", run_dir / "model.pt", quakes_csv, *args, code=2).output
    assert message in " ".join(out.split())


def test_evaluate_position_replaces_the_models(run, runner, run_dir, quakes, tmp_path):
    frame = quakes.frame.assign(z=0.0)
    from fcnn_cli.data.tables import Table

    data = tmp_path / "q.parquet"
    write_table(Table(frame, ["x", "y"], quakes.units), data)
    report = json.loads(run(runner, "evaluate", run_dir / "model.pt", data, "--position",
                            "y,x", "--json").stdout)
    assert report["distance"]["of"] == ["y", "x"]


@pytest.mark.slow
def test_evaluate_plots_and_train_position_from_the_command_line(run, runner, quakes, tmp_path):
    from fcnn_cli.data.tables import Table

    frame = quakes.frame.rename(columns={"x": "east", "y": "north"})
    data = tmp_path / "named.csv"
    write_table(Table(frame, ["east", "north"], {"east": "km", "north": "km"},
                      extra=quakes.extra | {"stations": {**quakes.extra["stations"],
                                                          "columns": ["east", "north"]}}), data)
    out = tmp_path / "run"
    run(runner, "train", data, "--epochs", 2, "--position", "east,north", "-o", out, "-q")
    assert json.loads((out / "config.json").read_text())["train"]["position"] == ["east", "north"]
    assert "distance" in json.loads((out / "metrics.json").read_text())["test"]
    assert (out / "plots" / "position_map.png").is_file()
    report = json.loads(run(runner, "evaluate", out / "model.pt", data, "--by", "east",
                            "--plots", tmp_path / "p", "--json").stdout)
    assert "distance" in report and len(report["plots"]) == 6
    assert (tmp_path / "p" / "binned_east.png").is_file()
    assert read_table(out / "predictions.parquet").extra["stations"]["columns"] == \
        ["east", "north"]


def test_plots_never_go_onto_the_model_nor_the_report_onto_a_plot(run, runner, run_dir,
                                                                 quakes_csv, tmp_path):
    model = run_dir / "model.pt"
    before = model.read_bytes()
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "regression_y.png").symlink_to(model)
    result = run(runner, "evaluate", model, quakes_csv, "--plots", linked, code=1)
    assert f"is the same file as the input {model}" in result.stderr
    out = tmp_path / "out"
    result = run(runner, "evaluate", model, quakes_csv, "--plots", out, "-o",
                 out / "regression_x.png", code=1)
    assert result.stderr == (f"Error: {out / 'regression_x.png'}: is in the plots directory "
                             f"{str(out)!r}, whose PNG files the plots replace; write the "
                             "report elsewhere\n")
    assert model.read_bytes() == before and not out.exists()


# Issue #24: samples of the model's classes, scored with their classes.

def test_samples_are_scored_with_their_classes(run, runner, samples_run, sample_files):
    import numpy as np
    import pandas as pd
    from sklearn.metrics import accuracy_score

    model = samples_run / "model.pt"
    report = json.loads(run(runner, "evaluate", model, "--sample",
                            f"signal={sample_files}/sig_2.csv", "--sample",
                            f"background={sample_files}/bkg.csv", "--json").stdout)
    assert report["rows"] == 400 and report["data"] == "samples signal, background"
    assert [s["name"] for s in report["samples"]] == ["signal", "background"]
    # the same rows as predict scores them, with the classes the samples give
    predicted = [pd.read_csv(io.StringIO(run(runner, "predict", model, sample_files / name)
                                         .stdout))["sample_pred"] for name in
                 ("sig_2.csv", "bkg.csv")]
    truth = ["signal"] * 200 + ["background"] * 200
    assert report["accuracy"] == pytest.approx(accuracy_score(truth, np.concatenate(predicted)))
    # a sample of a name that is no class, a regression model, DATA beside samples
    out = run(runner, "evaluate", model, "--sample", f"top={sample_files}/bkg.csv", code=2).output
    assert "sample 'top' is no class of the model; its classes are 'signal', 'background'" in out
    out = run(runner, "evaluate", model, sample_files / "bkg.csv", "--sample",
              f"signal={sample_files}/bkg.csv", code=2).output
    assert "give DATA or --sample, not both" in out
    assert "missing argument DATA" in run(runner, "evaluate", model, code=2).output


def test_samples_of_a_regression_are_refused(run, runner, run_dir, quakes_csv):
    out = run(runner, "evaluate", run_dir / "model.pt", "--sample", f"a={quakes_csv}",
              code=2).output
    assert "the model is a regression" in out


def test_evaluate_applies_the_selection_and_says_what_it_removed(run, runner, selected_run,
                                                                 sample_files):
    import pandas as pd

    model = selected_run / "model.pt"
    both = ["--sample", f"signal={sample_files}/sig_1.csv", "--sample",
            f"background={sample_files}/bkg.csv"]
    raw = pd.concat([pd.read_csv(sample_files / f) for f in ("sig_1.csv", "bkg.csv")])
    failing = int((raw.n < 1).sum())
    report = json.loads(run(runner, "evaluate", model, *both, "--by", "r", "--bins", 3,
                            "--json").stdout)
    assert report["selection"] == {"where": "n >= 1", "applied": True,
                                   "rows_kept": len(raw) - failing, "rows_removed": failing}
    assert report["rows"] == len(raw) - failing and report["weighted"] is False
    assert report["binned"]["by"][0]["column"] == "r"  # a derived column bins
    every = json.loads(run(runner, "evaluate", model, *both, "--no-select", "--json").stdout)
    assert every["rows"] == len(raw) and every["selection"]["applied"] is False
    table = run(runner, "evaluate", model, *both).stdout
    assert f"n >= 1: removed {failing} row(s), kept {len(raw) - failing}" in table


def test_a_selection_that_removes_every_row_is_named(run, runner, selected_run, sample_files,
                                                     tmp_path):
    import pandas as pd

    frame = pd.read_csv(sample_files / "bkg.csv")
    frame[frame.n < 1].to_csv(tmp_path / "none.csv", index=False)
    out = run(runner, "evaluate", selected_run / "model.pt", "--sample",
              f"background={tmp_path}/none.csv", code=1).output
    assert f"the selection 'n >= 1' removed every row ({int((frame.n < 1).sum())}): none to " \
           "evaluate; --no-select evaluates them all" in out


def test_weights_too_large_to_square_give_one_warning_line(run, runner, samples_run,
                                                           sample_files):
    result = run(runner, "evaluate", samples_run / "model.pt", "--sample",
                 f"signal={sample_files}/sig_1.csv*1e160", "--sample",
                 f"background={sample_files}/bkg.csv*1e160", "--by", "x", "--bins", 2, "--json")
    report = json.loads(result.stdout)
    assert report["roc_auc"] == report["roc_auc"] and report["effective_rows"] > 100
    assert "RuntimeWarning" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "too large or too small" in line] \
        == ["warning: samples signal, background: the weights are too large or too small to "
            "square and sum in floating point: some weighted figures are NaN; scale the "
            "weights nearer 1"]


def _samples(files):
    return ["--sample", f"signal={files}/sig_*.csv", "--sample", f"background={files}/bkg.csv"]


def test_figures_of_merit_at_the_working_point_asked_with_yields(run, runner, samples_run,
                                                                 sample_files):
    import pandas as pd

    lumi = 2.5
    report = json.loads(run(runner, "evaluate", samples_run / "model.pt",
                            *_samples(sample_files), "--weight", "w", "--working-point",
                            "eff=0.6", "--lumi", lumi, "--json").stdout)
    merit = report["merit"]
    assert merit["signal_class"] == "signal"
    assert merit["working_point"]["asked"] == {"signal_efficiency": 0.6}
    assert merit["working_point"]["signal_efficiency"] >= 0.6
    # The weights times the luminosity are the yields the significance scan counts.
    sums = {name: sum(pd.read_csv(f)["w"].sum() for f in sample_files.glob(f"{name}*.csv"))
            for name in ("sig", "bkg")}
    assert merit["signal"]["sum_of_weights"] == pytest.approx(lumi * sums["sig"])
    assert merit["background"]["sum_of_weights"] == pytest.approx(lumi * sums["bkg"])
    best = merit["significance"]["best"]["s_over_sqrt_b"]
    assert best["s_over_sqrt_b"] == pytest.approx(best["signal"] / best["background"] ** 0.5)


def test_figures_of_merit_at_the_threshold_and_as_a_table(run, runner, samples_run,
                                                          sample_files):
    args = ["evaluate", samples_run / "model.pt", *_samples(sample_files), "--threshold", 0.55]
    merit = json.loads(run(runner, *args, "--json").stdout)["merit"]
    assert merit["working_point"]["asked"] == {"threshold": 0.55}
    assert merit["working_point"]["cut"] == 0.55
    out = run(runner, *args).stdout
    assert "Figures of merit (signal: signal;" in out and "working point (cut = 0.55)" in out


@pytest.mark.parametrize("args, message", [
    (["--yields", "--no-weight"], "--yields and --lumi: the significance scan needs event "
                                  "weights"),
    # the model has no weight, the files no scale
    (["--lumi", "2"], "(--weight EXPR or samples' scales); these rows have none"),
    (["--working-point", "eff=2"], "--working-point must be eff=E"),
    (["--signal", "higgs"], "signal 'higgs' is not a class of the model"),
    (["--working-point", "eff=0.7", "--threshold", "0.5"],
     "give --working-point or --threshold, not both"),
    (["--repeats", "3"], "--repeats is the shuffles of --ranking: give --ranking with it")])
def test_figures_of_merit_that_cannot_be_are_refused_in_a_line(run, runner, samples_run,
                                                               sample_files, args, message):
    result = run(runner, "evaluate", samples_run / "model.pt", *_samples(sample_files), *args,
                 code=2)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_regression_refuses_the_figures_of_merit(run, runner, run_dir, quakes_csv):
    result = run(runner, "evaluate", run_dir / "model.pt", quakes_csv, "--lumi", 3, code=2)
    assert "--lumi is for classification; this is regression" in result.stderr
    result = run(runner, "evaluate", run_dir / "model.pt", quakes_csv, "--signal", "x", code=2)
    assert "--signal x is for classification; this is regression" in result.stderr


def test_several_classes_without_a_signal_have_no_figures(run, runner, tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    data = tmp_path / "three.csv"
    pd.DataFrame({"x": rng.normal(size=300), "kind": np.repeat(["a", "b", "c"], 100)}
                 ).to_csv(data, index=False)
    run(runner, "train", data, "-t", "kind", "--epochs", 1, "-q", "--no-plots",
        "-o", tmp_path / "run")
    model = tmp_path / "run" / "model.pt"
    assert "merit" not in json.loads(run(runner, "evaluate", model, data, "--json").stdout)
    out = run(runner, "evaluate", model, data).stdout
    assert out.count("No figures of merit: 3 classes and none is signal") == 1
    merit = json.loads(run(runner, "evaluate", model, data, "--signal", "c", "--json").stdout
                       )["merit"]
    assert merit["signal_class"] == "c" and merit["signal"]["rows"] == 100
    result = run(runner, "evaluate", model, data, "--working-point", "bkg=0.1", code=2)
    assert "none named signal: name the signal class (--signal CLASS)" in result.stderr
    # --signal names the class that --threshold cuts on, as the figures take it.
    report = json.loads(run(runner, "evaluate", model, data, "--signal", "c", "--threshold",
                            "0", "--json").stdout)
    assert report["per_class"]["c"]["recall"] == 1.0 and report["accuracy"] == 1 / 3
    assert report["merit"]["working_point"]["signal_efficiency"] == 1.0


def test_ranking_is_ranks_on_the_same_rows(run, runner, samples_run, sample_files):
    model = samples_run / "model.pt"
    report = json.loads(run(runner, "evaluate", model, *_samples(sample_files), "--ranking",
                            "--repeats", 2, "--json").stdout)
    ranked = json.loads(run(runner, "rank", model, *_samples(sample_files), "--repeats", 2,
                            "--json").stdout)
    assert report["ranking"]["baseline"] == pytest.approx(report["roc_auc"])
    assert report["ranking"]["inputs"] == ranked["inputs"]
    out = run(runner, "evaluate", model, *_samples(sample_files), "--ranking",
              "--repeats", 2).stdout
    assert "2 shuffles each" in out


def test_ranking_of_stdin_is_refused_before_anything_is_read(run, runner, run_dir, quakes_csv):
    # stdin can be read once; the ranking would read it again, and fail late on no rows
    result = run(runner, "evaluate", run_dir / "model.pt", "-", "--ranking",
                 input=quakes_csv.read_text(), code=2)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: --ranking reads DATA a second time, which stdin ('-') cannot "
                      "give: write the rows to a file"], result.stderr


@pytest.fixture(scope="module")
def huge_weight_run(run, tmp_path_factory):
    """Two Gaussian classes, one background row weighted 1e170, trained weighted with a
    working point at ε_S = 0.7."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    d = tmp_path_factory.mktemp("huge")
    x = np.concatenate([rng.normal(0, 1, (300, 2)), rng.normal(1.5, 1, (300, 2))])
    w = np.ones(600)
    w[0] = 1e170
    pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "label": np.repeat(["background", "signal"], 300),
                  "w": w}).to_csv(d / "t.csv", index=False)
    run(CliRunner(), "train", d / "t.csv", "-t", "label", "--weight", "w", "--epochs", 2,
           "--seed", 1, "--working-point", "eff=0.7", "-o", d / "run", "-q", "--no-plots")
    return d


def test_a_weight_of_1e170_trains_saves_and_evaluates(run, runner, huge_weight_run):
    assert (huge_weight_run / "run" / "model.pt").is_file()
    report = json.loads(run(runner, "evaluate", huge_weight_run / "run" / "model.pt",
                            huge_weight_run / "t.csv", "--weight", "w", "--json").stdout)
    rejection = [p["rejection"] for p in report["merit"]["rejection_at"]]
    assert all(r > 1e160 for r in rejection), rejection


def test_the_working_point_records_what_the_run_asked(huge_weight_run):
    metrics = json.loads((huge_weight_run / "run" / "metrics.json").read_text())
    for split in ("val", "test"):
        point = metrics[split]["merit"]["working_point"]
        assert point["asked"] == {"signal_efficiency": 0.7} and 0 < point["cut"] < 1


def test_another_signal_says_it_sets_the_models_working_point_aside(run, runner,
                                                                    huge_weight_run):
    args = ["evaluate", huge_weight_run / "run" / "model.pt", huge_weight_run / "t.csv",
            "--signal", "background"]
    result = run(runner, *args, "--json")
    notes = json.loads(result.stdout)["notes"]
    assert len(notes) == 1 and notes[0].startswith(
        "--signal background: the model's working point (signal where p(signal) ≥ ")
    assert "(chosen at signal efficiency 0.7)) is for signal: set aside" in notes[0]
    assert [line for line in result.stderr.splitlines() if "set aside" in line] == \
        [f"warning: {notes[0]}"]
    assert "notes" not in json.loads(run(runner, *args[:3], "--json").stdout)
