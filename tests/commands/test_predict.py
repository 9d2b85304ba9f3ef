"""fcnn predict: what it writes, --keep (issue #10: a column that would be written twice),
--nan, stdin and stdout."""

import io

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import Table


def test_predict_without_labels_and_to_parquet(run, runner, model_path, quakes, tmp_path):
    features = tmp_path / "features.csv"
    quakes.frame.drop(columns=["x", "y"]).head(7).to_csv(features, index=False)
    out = tmp_path / "p.parquet"
    run(runner, "predict", model_path, features, "-o", out)
    assert list(pd.read_parquet(out).columns) == ["x_pred", "y_pred"]


def test_predict_missing_feature_is_named(run, runner, model_path, quakes, tmp_path):
    path = tmp_path / "partial.csv"
    quakes.frame.drop(columns=["ts3"]).to_csv(path, index=False)
    out = run(runner, "predict", model_path, path, code=1).output
    assert "missing feature column(s) 'ts3'" in out and "partial.csv" in out


def test_stdin_to_stdout_pipeline(run, runner, model_path):
    data = run(runner, "simulate", "earthquakes", "-n", 4, "--seed", 9, "-o", "-").stdout
    out = run(runner, "predict", model_path, "-", input=data).stdout
    assert out.splitlines()[0] == "x_pred,y_pred" and len(out.splitlines()) == 5


def test_not_a_checkpoint(run, runner, quakes_csv):
    out = run(runner, "predict", quakes_csv, quakes_csv, code=1).output
    assert "not an fcnn checkpoint" in out


def test_predict_and_evaluate_take_a_device(run, runner, model_path, quakes_csv):
    out = run(runner, "predict", model_path, quakes_csv, "--device", "cpu").stdout
    assert len(out.splitlines()) == 601
    run(runner, "evaluate", model_path, quakes_csv, "--device", "cpu", "--json")


@pytest.mark.parametrize("keep", [["--keep", "x", "--keep", "x"], ["--keep", "x,y,x"],
                                  ["--keep", "y,x", "--keep", "y"]])
def test_keep_twice_is_a_usage_error(run, runner, model_path, quakes_csv, tmp_path, keep):
    out = tmp_path / "p.csv"
    result = run(runner, "predict", model_path, quakes_csv, *keep, "-o", out, code=2)
    assert "given more than once" in result.stderr and "--keep" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_keep_that_names_a_prediction_column_is_refused(run, runner, model_path, quakes, tmp_path,
                                                        suffix):
    data, out = tmp_path / "d.csv", tmp_path / f"p{suffix}"
    quakes.frame.assign(x_pred=1.0).head(5).to_csv(data, index=False)
    out.write_bytes(b"old")
    result = run(runner, "predict", model_path, data, "--keep", "y,x_pred", "-o", out, code=1)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--keep 'x_pred'" in errors[0]
    assert out.read_bytes() == b"old"
    kept = run(runner, "predict", model_path, data, "--keep", "y", "-o", out)
    assert kept.exit_code == 0


def test_keep_that_names_a_class_probability_is_refused(run, runner, quakes, tmp_path):
    data = tmp_path / "d.csv"
    frame = quakes.frame.head(200).assign(side=lambda f: (f.x > 0).map({True: "east",
                                                                        False: "west"}))
    frame.assign(p_east=0.5).to_csv(data, index=False)
    run(runner, "train", data, "-t", "side", "--features", "tp1,ts1,tp2", "--epochs", 1, "-q",
        "-o", tmp_path / "run")
    result = run(runner, "predict", tmp_path / "run" / "model.pt", data, "--keep", "p_east",
                 code=1)
    assert "--keep 'p_east'" in result.stderr and result.stdout == ""


def test_predict_refuses_a_column_kept_twice(run, runner, model_path, quakes_csv, tmp_path):
    out = tmp_path / "p.csv"
    result = run(runner, "predict", model_path, quakes_csv, "--keep", "x,y", "--keep", "x",
                 "-o", out, code=2)
    assert "'x' given more than once" in result.output and not out.exists()


def test_nan_policy_is_named_both_ways(run, runner, tmp_path, trained, model_path, quakes):
    holes = Table(quakes.frame.copy(), name="holes.csv")
    holes.frame.loc[[1, 5], "tp2"] = np.nan
    with pytest.raises(FcnnError, match="; nan='drop' leaves such rows out$") as error:
        trained.predictor.predict(holes)
    assert error.value.options == ("nan",)
    path = tmp_path / "holes.csv"
    holes.frame.to_csv(path, index=False)
    out = run(runner, "predict", model_path, path, code=1).stderr
    assert out.startswith("Error: ") and out.endswith("; --nan drop leaves such rows out\n")


def test_kept_text_is_copied_as_written(run, runner, model_path, quakes, tmp_path):
    frame = quakes.frame.head(4).copy()
    frame.insert(0, "run", ["007", "0010", "0x1A", "1e3"])  # not all numbers: text
    path = tmp_path / "ids.csv"
    frame.to_csv(path, index=False)
    out = run(runner, "predict", model_path, path, "--keep", "run,tp1").stdout
    lines = out.splitlines()
    assert lines[0].startswith("run,tp1,")
    assert [line.split(",")[0] for line in lines[1:]] == ["007", "0010", "0x1A", "1e3"]
    kept = pd.read_csv(io.StringIO(out))
    assert np.allclose(kept.tp1, frame.tp1)  # a feature kept is still read as a number


def test_kept_columns_keep_the_types_they_are_read_in(run, runner, model_path, quakes,
                                                      tmp_path):
    """Numbers stay numbers from CSV as from Parquet, text stays text."""
    frame = quakes.frame.head(5).assign(event=np.arange(5) * 7, w=np.linspace(0.5, 1, 5),
                                        run=list("abcde"))
    frame.to_csv(tmp_path / "in.csv", index=False)
    frame.to_parquet(tmp_path / "in.parquet")
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"out_{suffix}.parquet"
        run(runner, "predict", model_path, tmp_path / f"in.{suffix}", "--keep", "event,w,run",
            "-o", out)
        kept = pd.read_parquet(out)
        assert kept.event.dtype == np.int64 and kept.w.dtype == np.float64, suffix
        assert pd.api.types.is_string_dtype(kept.run), suffix
        np.testing.assert_array_equal(kept.event, frame.event)
        np.testing.assert_array_equal(kept.w, frame.w)
        assert list(kept.run) == list("abcde")


@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    """A k-fold classifier by the column ``event`` (saved), and its training table as CSV
    and Parquet."""
    from fcnn_cli.data import simulate
    from fcnn_cli.engine import train
    from fcnn_cli.network import checkpoint

    quakes = simulate.earthquakes(n=300, seed=4)
    frame = quakes.frame.drop(columns=["x", "y"]).assign(
        side=np.where(quakes.frame.x > 10, "east", "west"), event=100_000 + np.arange(300))
    config = train.TrainConfig(epochs=2, batch_size=32, threads=1, seed=2, folds=3,
                               fold_by="event")
    result = train.fit(Table(frame, ["side"], name="sides"), config,
                       net={"depth": 1, "width": 8})
    where = tmp_path_factory.mktemp("folded")
    checkpoint.save(result.predictor, where / "model.pt")
    frame.to_csv(where / "sides.csv", index=False)
    frame.to_parquet(where / "sides.parquet")
    return where, result.predictor


def test_a_kept_fold_column_scores_each_row_out_of_fold(run, runner, folded):
    """Issue #25: the fold column kept from a CSV hashes as training hashed it (a number), so
    each row is scored by the network that did not train on it, as without --keep and as
    from Parquet."""
    from fcnn_cli.network.foldrule import FoldRule

    where, predictor = folded
    model = where / "model.pt"

    def scores(data, *keep):
        out = where / "out.parquet"
        run(runner, "predict", model, where / data, *keep, "--members", "-o", out)
        return pd.read_parquet(out)

    kept = scores("sides.csv", "--keep", "event,side")
    plain, parquet = scores("sides.csv"), scores("sides.parquet", "--keep", "event")
    np.testing.assert_array_equal(kept.p_east, plain.p_east)
    np.testing.assert_array_equal(kept.p_east, parquet.p_east)
    fold = FoldRule(3, "event").of_values(kept.event)
    members = kept[[f"p_east_m{k}" for k in range(3)]].to_numpy()
    np.testing.assert_array_equal(kept.p_east, members[np.arange(len(kept)), fold])
    assert predictor.folds == FoldRule(3, "event", 2)


def test_a_row_without_a_fold_value_is_an_error_said_alone(run, runner, folded, tmp_path):
    """No line on how the rows are scored before the error that none is."""
    where, _ = folded
    frame = pd.read_csv(where / "sides.csv")
    frame.loc[4, "event"] = np.nan
    frame.to_csv(tmp_path / "gap.csv", index=False)
    out = run(runner, "predict", where / "model.pt", tmp_path / "gap.csv", code=1).output
    assert out == (f"Error: {tmp_path / 'gap.csv'}: 1 row(s) have no value in the fold column "
                   "'event' (NaN, empty or infinite): such a row has no fold\n")


# Issue #24: a model's recipe applied to the raw table.

def test_a_selection_is_a_column_of_every_row_or_keeps_the_rows_that_pass(run, runner,
                                                                          selected_run,
                                                                          sample_files):
    import io

    model, data = selected_run / "model.pt", sample_files / "bkg.csv"
    raw = pd.read_csv(data)
    every = pd.read_csv(io.StringIO(run(runner, "predict", model, data, "--keep", "r").stdout))
    assert list(every.columns[:2]) == ["r", "selected"] and len(every) == len(raw)
    np.testing.assert_allclose(every.r, raw.x * raw.y)  # made by the model, not the user
    np.testing.assert_array_equal(every.selected, (raw.n >= 1).astype(int))
    only = pd.read_csv(io.StringIO(run(runner, "predict", model, data, "--select").stdout))
    assert "selected" not in only and len(only) == (raw.n >= 1).sum()
    passing = every[every.selected == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(only, passing.drop(columns=["r", "selected"]))


def test_a_raw_column_the_definitions_need_is_named(run, runner, selected_run, sample_files,
                                                    tmp_path):
    pd.read_csv(sample_files / "bkg.csv").drop(columns="y").to_csv(tmp_path / "b.csv",
                                                                   index=False)
    out = run(runner, "predict", selected_run / "model.pt", tmp_path / "b.csv", "-o",
              tmp_path / "out.csv", code=1).output
    assert f"{tmp_path}/b.csv: missing column(s) 'y' that the model reads (a feature, or what " \
        "its definitions, selection or weight are made from)" in out
    assert not (tmp_path / "out.csv").exists()
    pd.read_csv(sample_files / "bkg.csv").assign(selected=1).to_csv(tmp_path / "s.csv",
                                                                    index=False)
    out = run(runner, "predict", selected_run / "model.pt", tmp_path / "s.csv", code=1).output
    assert "has a column 'selected', the name of the column that says which rows pass" in out


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_nan_fill_with_a_model_trained_without_it_says_it_has_no_medians(
        run, runner, model_path, quakes_csv, command):
    out = run(runner, command, model_path, quakes_csv, "--nan", "fill", code=2).output
    assert f"Error: --nan fill: {model_path} was trained without --nan fill, so it keeps no " \
           "training medians to fill missing values with; --nan drop leaves such rows out" \
           in " ".join(out.split())


def test_a_selection_on_the_label_scores_every_row_of_an_unlabelled_table(run, runner, tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["y"] = frame.a + rng.normal(0, 0.1, 200)
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.drop(columns="y").to_csv(tmp_path / "new.csv", index=False)
    run(runner, "train", tmp_path / "t.csv", "-t", "y", "--where", "y > 0", "--epochs", 1,
        "-q", "--no-plots", "-o", tmp_path / "run")
    result = run(runner, "predict", tmp_path / "run" / "model.pt", tmp_path / "new.csv")
    assert result.stdout.splitlines()[0] == "y_pred" and len(result.stdout.splitlines()) == 201
    said = [line for line in result.stderr.splitlines() if "reads the label" in line]
    assert said == [
        f"warning: {tmp_path / 'new.csv'}: the selection 'y > 0' reads the label(s) 'y', which "
        "the table lacks: every row is scored, without a 'selected' column"]
    labelled = run(runner, "predict", tmp_path / "run" / "model.pt", tmp_path / "t.csv")
    assert labelled.stdout.startswith("selected,y_pred\n") and "reads the" not in labelled.stderr


def test_the_working_point_of_the_model_decides_the_class_column(run, runner, samples_run,
                                                                  sample_files, tmp_path):
    """A model whose run chose a working point: its class column is signal exactly where
    p(signal) passes the point's cut; --threshold overrides the cut."""
    import dataclasses

    from fcnn_cli.network import checkpoint

    def predicted(model, *args):
        return pd.read_csv(io.StringIO(run(runner, "predict", model, sample_files / "sig_1.csv",
                                           *args).stdout))

    # Cuts among the probabilities, that split the rows otherwise than the most probable class
    p = predicted(samples_run / "model.pt")["p_signal"]
    cut, other = float(p.quantile(0.5)), float(p.quantile(0.2))
    predictor = checkpoint.load(samples_run / "model.pt", "cpu")
    predictor.task = dataclasses.replace(
        predictor.task, working_point={"asked": {"signal_efficiency": 0.3}, "cut": cut})
    model = tmp_path / "model.pt"
    checkpoint.save(predictor, model)
    for args, threshold in (((), cut), (("--threshold", other), other)):
        out = predicted(model, *args)
        passed = out["p_signal"].to_numpy() >= threshold
        assert 0 < passed.sum() < len(out)
        assert np.array_equal(out["sample_pred"] == "signal", passed)
