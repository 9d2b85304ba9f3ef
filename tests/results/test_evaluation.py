import numpy as np
import pytest

from fcnn_cli.results import evaluation
from fcnn_cli.data import simulate
from fcnn_cli.results.binned import Binned
from fcnn_cli.core.errors import FcnnError


def _chunks(table, size):
    from dataclasses import replace

    for start in range(0, len(table.frame), size):
        yield replace(table, frame=table.frame.iloc[start:start + size].reset_index(drop=True),
                      first_row=start)


def test_binned_evaluation_streams_and_equals_the_whole_table_by_hand(trained):
    predictor, table = trained.predictor, simulate.earthquakes(n=700, seed=5)
    streamed = evaluation.evaluate(predictor, _chunks(table, 97), by=["tp1"], bins=4)
    whole = evaluation.evaluate(predictor, [table], by=["tp1"], bins=4)
    assert streamed["binned"] == whole["binned"]
    truth = table.frame[["x", "y"]].to_numpy()
    pred = predictor.predict(table)[["x_pred", "y_pred"]].to_numpy()
    by = Binned(["tp1"], ["x", "y"], point=[0, 1])
    by.add(table.frame["tp1"].to_numpy(), truth, pred)
    _close(by.report(4)["bins"], whole["binned"]["bins"])
    assert sum(b["count"] for b in whole["binned"]["bins"]) == 700
    assert whole["binned"]["by"][0]["unit"] == "s"
    assert whole["rows"] == 700 and "distance" in whole


def _close(a, b):
    for x, y in zip(a, b):
        assert x["count"] == y["count"]
        for t in x["targets"]:
            for k, v in x["targets"][t].items():
                assert v == pytest.approx(y["targets"][t][k], rel=1e-5, abs=1e-9, nan_ok=True)


def test_bins_by_a_column_that_is_not_there_or_not_numbers_are_refused(trained):
    table = simulate.earthquakes(n=50, seed=5)
    with pytest.raises(FcnnError, match="no column 'energy'"):
        evaluation.evaluate(trained.predictor, [table], by=["energy"])
    table.frame["name"] = "a"
    with pytest.raises(FcnnError, match="'name' is not numeric"):
        evaluation.evaluate(trained.predictor, [table], by=["name"])


def test_the_sample_is_bounded_uniform_and_the_same_in_any_chunks(trained):
    task = trained.predictor.task
    truth = np.arange(1000, dtype=np.float64)[:, None].repeat(2, axis=1)
    out = np.zeros((1000, 2), np.float32)
    whole, parts = evaluation.Sample(task, size=100), evaluation.Sample(task, size=100)
    whole.add(None, truth, out)
    for part in np.array_split(np.arange(1000), 9):
        parts.add(None, truth[part], out[part])
    assert len(whole.frame()) == 100
    assert sorted(whole.frame()["x"]) == sorted(parts.frame()["x"])
    assert 300 < whole.frame()["x"].mean() < 700  # not the first rows


def test_evaluate_draws_its_plots(trained, tmp_path):
    report = evaluation.evaluate(trained.predictor, [simulate.earthquakes(n=300, seed=6)],
                                 by=["x", "y"], bins=3, plots=tmp_path / "p")
    names = sorted(p.rsplit("/", 1)[1] for p in report["plots"])
    assert names == ["binned_x_y.png", "distance_cdf.png", "distance_map.png",
                     "position_map.png", "regression_x.png", "regression_y.png"]
    assert all((tmp_path / "p" / n).stat().st_size > 1000 for n in names)


def test_bins_by_an_empty_column_say_it_has_no_finite_values(trained):
    table = simulate.earthquakes(n=50, seed=5)
    table.frame["blank"] = None
    report = evaluation.evaluate(trained.predictor, [table], by=["blank"])
    assert report["binned"]["empty"] == "column 'blank' has no finite values"
    assert report["binned"]["bins"] == []


def test_the_very_rows_trained_on_are_warned_about_in_any_pieces_and_format(
        trained, quakes_csv, logged):
    from fcnn_cli.data.tables import iter_tables

    report = evaluation.evaluate(trained.predictor, _chunks(simulate.earthquakes(n=600, seed=1),
                                                            97))
    message = ("<table>: the very rows the model was trained on, validation and test splits "
               "included: the scores are optimistic; evaluate on rows it has not seen")
    assert report["warnings"] == [message.replace("<table>", "earthquakes")]
    assert logged.text.count("the very rows the model was trained on") == 1
    # the same rows through a CSV file, read in chunks of another size
    report = evaluation.evaluate(trained.predictor, iter_tables(quakes_csv, rows=250))
    assert report["warnings"] == [message.replace("<table>", str(quakes_csv))]


@pytest.mark.parametrize("change", ["other seed", "one value", "one row fewer"])
def test_other_rows_are_not_warned_about(trained, change, logged):
    table = simulate.earthquakes(n=600, seed=2 if change == "other seed" else 1)
    if change == "one value":
        table.frame.loc[300, "tp1"] += 1e-3
    if change == "one row fewer":
        table.frame = table.frame.iloc[:-1]
    assert evaluation.evaluate(trained.predictor, [table])["warnings"] == []
    assert "trained on" not in logged.text


def test_a_model_that_records_no_digest_of_its_rows_evaluates_without_a_warning(trained):
    from dataclasses import replace

    info = {k: v for k, v in trained.predictor.info.items() if k != "rows_sha256"}
    older = replace(trained.predictor, info=info)  # as checkpoints before the digest load
    report = evaluation.evaluate(older, [simulate.earthquakes(n=600, seed=1)])
    assert report["warnings"] == [] and report["rows"] == 600


def test_class_rows_are_told_by_their_names(tmp_path):
    import pandas as pd

    from fcnn_cli.engine import train
    from fcnn_cli.data.tables import Table

    rng = np.random.default_rng(0)
    a = rng.normal(size=300)
    frame = pd.DataFrame({"a": a, "b": rng.normal(size=300),
                          "kind": np.where(a > 0, "up", "down")})
    result = train.fit(Table(frame, ["kind"]), train.TrainConfig(epochs=1, batch_size=64))
    same = evaluation.evaluate(result.predictor, [Table(frame.copy(), ["kind"])])
    assert "the very rows" in same["warnings"][0]
    frame.loc[7, "kind"] = "up" if frame.loc[7, "kind"] == "down" else "down"
    assert evaluation.evaluate(result.predictor, [Table(frame, ["kind"])])["warnings"] == []


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory trained on a CSV file of its own, through the command line."""
    from click.testing import CliRunner

    from fcnn_cli.commands import cli
    from fcnn_cli.data.writer import write_table

    root = tmp_path_factory.mktemp("evaluate")
    write_table(simulate.earthquakes(n=400, seed=1), root / "quakes.csv")
    result = CliRunner().invoke(cli, ["train", str(root / "quakes.csv"), "--epochs", "2", "-q",
                                      "-o", str(root / "run")])
    assert result.exit_code == 0, result.output
    return root


def test_evaluate_warns_on_stderr_and_in_json_of_the_training_file_or_its_rows(run, tmp_path):
    import json
    import shutil

    from click.testing import CliRunner

    from fcnn_cli.commands import cli
    from fcnn_cli.data.writer import write_table

    model, data = str(run / "run" / "model.pt"), str(run / "quakes.csv")
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    copy = str(shutil.copy(data, tmp_path / "copy.csv"))
    lone = str(shutil.copy(model, tmp_path / "model.pt"))  # no config.json beside it
    cases = [(model, str(link), f"{link}: the file {model} was trained on"),
             (model, copy, f"{copy}: the very rows {model} was trained on"),
             (lone, data, f"{data}: the very rows {lone} was trained on")]
    for model_path, path, said in cases:
        result = CliRunner().invoke(cli, ["evaluate", model_path, path, "--json"])
        assert result.exit_code == 0, result.output
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"warning: {said}")
        report = json.loads(result.stdout)
        assert report["warnings"] == [result.stderr[len("warning: "):].strip()]
        assert report["rows"] == 400
    fresh = tmp_path / "fresh.csv"
    write_table(simulate.earthquakes(n=400, seed=2), fresh)
    result = CliRunner().invoke(cli, ["evaluate", model, str(fresh), "--json"])
    assert result.exit_code == 0 and result.stderr == ""
    assert json.loads(result.stdout)["warnings"] == []


def test_a_run_from_before_the_digest_still_warns_of_its_training_file(run, tmp_path):
    """A checkpoint without the digest (as older runs wrote) beside its config.json: the
    file it names is still told apart, another file with the same rows no longer can be."""
    import shutil

    from click.testing import CliRunner

    from fcnn_cli.network import checkpoint
    from fcnn_cli.commands import cli

    old = tmp_path / "old"
    shutil.copytree(run / "run", old)
    predictor = checkpoint.load(old / "model.pt")
    del predictor.info["rows_sha256"]
    checkpoint.save(predictor, old / "model.pt")
    copy = str(shutil.copy(run / "quakes.csv", tmp_path / "copy.csv"))
    said = CliRunner().invoke(cli, ["evaluate", str(old / "model.pt"), str(run / "quakes.csv")])
    assert said.exit_code == 0 and "the file" in said.stderr and "trained on" in said.stderr
    said = CliRunner().invoke(cli, ["evaluate", str(old / "model.pt"), copy])
    assert said.exit_code == 0 and said.stderr == ""


def test_weighted_evaluation_streams_and_equals_the_weighted_metrics_by_hand(trained):
    from fcnn_cli.network import metrics

    predictor, table = trained.predictor, simulate.earthquakes(n=700, seed=5)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 2.0, 700)
    w[::9] *= -0.5
    table.frame["w"] = w
    streamed = evaluation.evaluate(predictor, _chunks(table, 97), by=["tp1"], bins=4,
                                   weight="w")
    whole = evaluation.evaluate(predictor, [table], by=["tp1"], bins=4, weight="w")
    truth = table.frame[["x", "y"]].to_numpy()
    pred = predictor.predict(table)[["x_pred", "y_pred"]].to_numpy()
    want = metrics.regression(truth, pred, ["x", "y"], predictor.units, weight=w)
    for report in (streamed, whole):
        assert report["rows"] == 700 and report["sum_of_weights"] == pytest.approx(w.sum())
        for key in ("mse", "mae", "r2"):
            assert report["overall"][key] == pytest.approx(want["overall"][key], rel=1e-5)
        assert report["distance"]["mean"] == pytest.approx(want["distance"]["mean"], rel=1e-5)
    by = Binned(["tp1"], ["x", "y"], point=[0, 1])
    by.add(table.frame["tp1"].to_numpy(), truth, pred, weight=w)
    _close(by.report(4)["bins"], whole["binned"]["bins"])
    assert [b["sum_of_weights"] for b in streamed["binned"]["bins"]] == \
        pytest.approx([b["sum_of_weights"] for b in whole["binned"]["bins"]], rel=1e-12)
    plain = evaluation.evaluate(predictor, [table], by=["tp1"], bins=4)
    assert "sum_of_weights" not in plain and plain["overall"]["mse"] != whole["overall"]["mse"]


def test_a_weight_column_that_is_not_there_or_not_finite_is_refused(trained):
    table = simulate.earthquakes(n=50, seed=5)
    with pytest.raises(FcnnError, match="no weight column 'w'"):
        evaluation.evaluate(trained.predictor, [table], weight="w")
    table.frame["w"] = 1.0
    table.frame.loc[3, "w"] = np.nan
    with pytest.raises(FcnnError, match="'w' has 1 row\\(s\\) without a finite weight"):
        evaluation.evaluate(trained.predictor, [table], by=["tp1"], weight="w")
    table.frame["w"] = "heavy"
    with pytest.raises(FcnnError, match="weight column 'w' is not numeric"):
        evaluation.evaluate(trained.predictor, [table], weight="w")


def test_weighted_evaluate_builds_one_report_and_plots_a_weighted_sample(trained, tmp_path,
                                                                         monkeypatch):
    from fcnn_cli.results import plots

    predictor, table = trained.predictor, simulate.earthquakes(n=300, seed=5)
    w = np.random.default_rng(0).uniform(0.1, 2.0, 300)
    table.frame["w"] = w
    built, drawn, metrics = [], [], predictor.task.metrics
    monkeypatch.setattr(predictor.task, "metrics",
                        lambda *a, **k: built.append(a) or metrics(*a, **k))
    monkeypatch.setattr(plots, "plot_sample", lambda sample, out: drawn.append(sample) or [])
    report = evaluation.evaluate(predictor, _chunks(table, 97), plots=tmp_path, weight="w")
    assert len(built) == 1 and report["sum_of_weights"] == pytest.approx(w.sum())
    sample = drawn[0]
    assert sample.extra["weight"] == "weight"
    assert np.sort(sample.frame["weight"]) == pytest.approx(np.sort(w))


def test_the_sample_keeps_the_weight_of_each_row_it_keeps(trained):
    task = trained.predictor.task
    sample = evaluation.Sample(task, size=50, weight="w")
    table = simulate.earthquakes(n=400, seed=4)
    table.frame["w"] = np.arange(400.0)
    out = trained.predictor.outputs(trained.predictor.feature_matrix(table))
    sample.add(table.frame, task.truth(table), out)
    kept = sample.table({}, "test").frame
    rows = kept["weight"].to_numpy(np.int64)
    assert len(kept) == 50 and kept["x"].to_numpy() == pytest.approx(table.frame.x.iloc[rows])
