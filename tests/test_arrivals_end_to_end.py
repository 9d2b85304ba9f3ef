"""A table whose origin time is unknown, end to end: fcnn trains on each pick after the event's
earliest by default (docs/earthquakes.md), which beats the absolute picks; predict and the ONNX
graph make those inputs from the raw picks of a new table, missing ones too; the lecture's
table trains on its picks as ever."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fcnn_cli.commands import cli
from fcnn_cli.data import simulate, stations
from fcnn_cli.data.tables import Table
from fcnn_cli.data.writer import write_table
from fcnn_cli.network import checkpoint

STATIONS = 6
PICKS = [f"t{phase}{k}" for k in range(1, STATIONS + 1) for phase in "ps"]
REALISTIC = {"stations": stations.irregular(STATIONS, 50.0), "depth": (0.0, 30.0),
             "model": "layered", "origin_unknown": True}


def run(*args, code=0):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output + str(result.exception)
    return result


def table(path, n, seed, **options):
    from fcnn_cli.data import velocity

    options = {**REALISTIC, **options}
    options["model"] = velocity.model_for(options["model"], simulate.CRUSTAL_VP,
                                          simulate.CRUSTAL_VS)
    write_table(simulate.earthquakes(n=n, seed=seed, **options), path)
    return path


def mean_distance(result):
    metrics = json.loads(result)
    return metrics["test"]["distance"]["mean"]


@pytest.mark.slow
def test_the_picks_after_the_earliest_beat_the_absolute_ones(tmp_path):
    data = table(tmp_path / "b.csv", 3000, 0)
    said = run("train", data, "--epochs", 20, "--no-plots", "-o", tmp_path / "relative")
    assert "the origin time is unknown" in said.stderr
    run("train", data, "--epochs", 20, "--no-plots", "-q", "--features", ",".join(PICKS),
        "-o", tmp_path / "absolute")
    relative, absolute = (mean_distance((tmp_path / name / "metrics.json").read_text())
                          for name in ("relative", "absolute"))
    assert checkpoint.load(tmp_path / "relative" / "model.pt").features == \
        [f"d{p}" for p in PICKS]
    assert relative < 0.5 * absolute, (relative, absolute)  # 2.1 against 8.8 km, measured


@pytest.fixture(scope="module")
def missing(tmp_path_factory):
    """A run on picks of which 20 % are missing, and a new table to apply it to."""
    d = tmp_path_factory.mktemp("missing")
    data = table(d / "c.parquet", 1000, 0, noise_p=0.02, missing=0.2)
    said = run("train", data, "--epochs", 2, "--no-plots", "-o", d / "run")
    return d, said, table(d / "new.parquet", 200, 1, noise_p=0.02, missing=0.2)


def shape(predictor):
    return predictor.net.config.width, predictor.net.config.depth


def test_missing_picks_are_filled_and_the_network_is_wider_with_a_note(missing):
    d, said, _ = missing
    assert "20 % of the picks are missing: --nan fill" in said.stderr
    assert "a network of width 128, depth 4" in said.stderr
    predictor = checkpoint.load(d / "run" / "model.pt")
    assert shape(predictor) == (128, 4)
    assert predictor.filler is not None and predictor.inputs[len(PICKS):] == \
        [f"d{p}_missing" for p in PICKS]


def test_predict_makes_the_inputs_from_the_raw_picks_of_a_new_table(missing):
    d, _, new = missing
    written = pd.read_csv(io.StringIO(run("predict", d / "run" / "model.pt", new).stdout))
    raw = pd.read_parquet(new)
    assert raw[PICKS].isna().any().any()
    first = np.fmin.reduce(raw[PICKS].to_numpy(), axis=1)
    by_hand = Table(pd.DataFrame({f"d{p}": raw[p] - first for p in PICKS}), name="by hand")
    predictor = checkpoint.load(d / "run" / "model.pt")
    got = predictor.predict(by_hand)  # the predictor alone: the columns are there
    for c in ("x_pred", "y_pred", "z_pred"):
        np.testing.assert_allclose(written[c], got[c], rtol=0, atol=1e-9)

def test_the_onnx_graph_gives_predicts_values_on_missing_picks(missing):
    pytest.importorskip("onnxruntime")
    import onnx
    import onnxruntime

    d, _, new = missing
    model, path = d / "run" / "model.pt", d / "m.onnx"
    run("export", model, path)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    columns = json.loads(meta["columns"])
    assert sorted(columns) == sorted(PICKS)
    raw = pd.read_parquet(new)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got, *_) = session.run(None, {"columns": raw[columns].to_numpy(np.float64)})
    written = pd.read_csv(io.StringIO(run("predict", model, new).stdout))
    want = written[["x_pred", "y_pred", "z_pred"]].to_numpy()
    # float32 networks both, of the same float64 inputs: within float32's rounding of km
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)


def test_the_lecture_table_trains_on_its_picks_as_ever(tmp_path, quakes_csv):
    said = run("train", quakes_csv, "--epochs", 1, "--no-plots", "-o", tmp_path / "run")
    assert "origin time" not in said.stderr and "--nan fill" not in said.stderr
    predictor = checkpoint.load(tmp_path / "run" / "model.pt")
    assert predictor.features == [f"t{p}{k}" for k in range(1, 5) for p in "ps"]
    assert predictor.recipe is None and predictor.filler is None
    assert shape(predictor) == (64, 3)


def test_features_nan_and_width_given_win(tmp_path):
    data = table(tmp_path / "c.csv", 300, 0, missing=0.2)
    said = run("train", data, "--epochs", 1, "--no-plots", "--features", "tp1,ts1,tp2",
               "--nan", "drop", "--width", 16, "-o", tmp_path / "run")
    assert "the features are" not in said.stderr and "--nan fill" not in said.stderr
    assert "a network of depth 4 (" in said.stderr
    predictor = checkpoint.load(tmp_path / "run" / "model.pt")
    assert predictor.features == ["tp1", "ts1", "tp2"] and predictor.recipe is None
    assert predictor.filler is None and shape(predictor) == (16, 4)


def test_a_streamed_directory_trains_on_the_picks_after_the_earliest(tmp_path):
    (tmp_path / "d").mkdir()
    table(tmp_path / "d" / "c.parquet", 400, 0)
    said = run("train", tmp_path / "d", "--stream", "--epochs", 1, "--no-plots", "-o",
               tmp_path / "run")
    assert "the origin time is unknown" in said.stderr
    assert checkpoint.load(tmp_path / "run" / "model.pt").features == [f"d{p}" for p in PICKS]


def test_features_that_name_picks_after_the_earliest_get_them_defined(tmp_path):
    """A dead station's picks (all missing) cannot be filled: --features leaves them out and
    names the others after the earliest, which fcnn still defines."""
    frame = pd.read_csv(table(tmp_path / "c.csv", 300, 0), comment="#")
    meta = json.loads(open(tmp_path / "c.csv").readline()[len("# fcnn "):])
    frame[["tp6", "ts6"]] = np.nan
    write_table(Table(frame, ["x", "y", "z"], extra=meta), tmp_path / "dead.parquet")
    alive = [f"d{p}" for p in PICKS[:-2]]
    said = run("train", tmp_path / "dead.parquet", "--epochs", 1, "--no-plots", "--features",
               ",".join(alive), "-o", tmp_path / "run")
    assert "--features names picks after the event's earliest" in said.stderr
    predictor = checkpoint.load(tmp_path / "run" / "model.pt")
    assert predictor.features == alive
    # t_first takes every pick, the dead station's too, and skips them where missing
    assert dict(predictor.recipe.define)["t_first"] == f"fmin({', '.join(PICKS)})"
    assert np.isfinite(predictor.recipe.derive(Table(frame, ["x", "y", "z"])).frame[
        "t_first"]).all()


def test_a_definition_of_yours_of_fcnns_name_stands_in_and_the_line_says_so(tmp_path):
    data = table(tmp_path / "c.csv", 300, 0)
    said = run("train", data, "--epochs", 1, "--no-plots", "--define",
               "t_first=fmax(tp1, tp2)", "-o", tmp_path / "run")
    assert "(your --define of t_first stands in for fcnn's)" in said.stderr
    assert dict(checkpoint.load(tmp_path / "run" / "model.pt").recipe.define)["t_first"] == \
        "fmax(tp1, tp2)"


@pytest.mark.parametrize("where", ["file", "directory"])
def test_a_sweep_takes_the_same_defaults_as_train(tmp_path, where):
    (tmp_path / "d").mkdir()
    data = table(tmp_path / "d" / "c.parquet", 300, 0, missing=0.2)
    said = run("sweep", data if where == "file" else tmp_path / "d", "--grid", "width=16,32",
               "--epochs", 1, "--no-plots", "-o", tmp_path / "sweep")
    assert "the features are each pick after the event's earliest" in said.stderr
    configs = sorted((tmp_path / "sweep").glob("*/config.json"))
    assert len(configs) == 2
    for path in configs:
        config = json.loads(path.read_text())
        assert config["features"] == [f"d{p}" for p in PICKS]
        assert config["train"]["nan"] == "fill" and config["net"]["depth"] == 4
    assert sorted(json.loads(p.read_text())["net"]["width"] for p in configs) == [16, 32]


def test_a_sweep_whose_features_name_picks_after_the_earliest_defines_them(tmp_path):
    data = table(tmp_path / "c.parquet", 300, 0)
    run("sweep", data, "--features", "dtp1,dts1,dtp2,dts2", "--grid", "width=16,32", "--epochs",
        1, "--no-plots", "-o", tmp_path / "sweep")
    for path in (tmp_path / "sweep").glob("*/config.json"):
        assert json.loads(path.read_text())["features"] == ["dtp1", "dts1", "dtp2", "dts2"]


def test_a_piped_table_is_read_once_by_training_not_by_the_metadata(tmp_path, quakes_csv):
    """DATA from a pipe cannot be read twice: fcnn reads no metadata of it first."""
    import os
    import threading

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(quakes_csv.read_bytes()))
    writer.start()
    said = run("train", fifo, "--epochs", 1, "--no-plots", "-o", tmp_path / "run")
    writer.join()
    assert checkpoint.load(tmp_path / "run" / "model.pt").features[:2] == ["tp1", "ts1"]
    assert "metadata ask" not in said.stderr  # the lecture's table asks for nothing


def test_print_config_leaves_the_metadatas_choices_open_and_its_file_trains_the_same_run(
        tmp_path):
    data = table(tmp_path / "c.parquet", 300, 0, missing=0.2)
    printed = run("train", data, "--epochs", 1, "--no-plots", "--print-config").stdout
    for key in ("width", "depth", "nan"):
        assert f"# {key}: not set" in printed and f"\n{key} =" not in printed
    (tmp_path / "run.toml").write_text(printed)
    run("train", "--config", tmp_path / "run.toml", "-o", tmp_path / "again")
    run("train", data, "--epochs", 1, "--no-plots", "-o", tmp_path / "direct")
    again, direct = (checkpoint.load(tmp_path / d / "model.pt") for d in ("again", "direct"))
    assert again.features == direct.features == [f"d{p}" for p in PICKS]
    assert shape(again) == shape(direct) == (128, 4) and again.filler is not None
