"""fcnn export: an ONNX graph whose outputs are fcnn predict's, within float32 rounding."""

import copy
import dataclasses
import io
import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from fcnn_cli.commands import cli
from fcnn_cli.data import simulate
from fcnn_cli.data.tables import Table
from fcnn_cli.engine import train
from fcnn_cli.machine.devices import ThreadChooser
from fcnn_cli.network import checkpoint, export
from fcnn_cli.network.foldrule import FoldRule


def onnx_outputs(path, x, threads=0, dtype=np.float32):
    """The graph's outputs for rows ``x`` (threads: onnxruntime's own choice where 0)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: np.asarray(x, dtype)})


def predicted(predictor, frame):
    """predict's columns in the order of the graph's outputs."""
    if predictor.task.kind == "regress":
        names = [[f"{t}_pred" for t in predictor.targets], [f"{t}_std" for t in predictor.targets]]
    else:
        names = [predictor.task.proba_columns(), f"{predictor.task.target}_entropy"]
    return [frame[n].to_numpy() for n in names[:len(export.output_names(predictor))]]


def assert_agree(got, want, reference):
    """Two float32 computations of the model, each within the bound of its rounding of the
    float64 one, are within twice that bound of each other: what ``allowed`` is."""
    assert [np.shape(g) for g in got] == [w.shape for w in want]
    for g, w, (_, allowed) in zip(got, want, reference):
        assert np.all(np.abs(g - w) <= allowed), np.max(np.abs(g - w) / allowed)


def predict_on_threads(predictor, table, threads):
    predictor.threads = ThreadChooser.fixed(threads)
    try:
        return predictor.predict(table)
    finally:
        predictor.threads = None


def test_without_the_onnx_libraries_export_says_how_to_install(runner, model_path, tmp_path,
                                                              monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    result = runner.invoke(cli, ["export", str(model_path), str(tmp_path / "m.onnx")])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {export.INSTALL}\n" and "pip install 'fcnn[onnx]'" in \
        result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_a_graph_that_differs_from_the_model_is_not_written(trained, tmp_path, monkeypatch):
    """A graph of first-layer weights 1 % off, checked against the model's own."""
    pytest.importorskip("onnxruntime")
    onnx_model = export._onnx_model

    def skewed(predictor):
        net = copy.deepcopy(predictor.net)
        with torch.no_grad():
            net.body[0][0].weight.mul_(1.01)
        return onnx_model(dataclasses.replace(predictor, net=net))

    monkeypatch.setattr(export, "_onnx_model", skewed)
    path = tmp_path / "m.onnx"
    path.write_bytes(b"kept")
    with pytest.raises(export.FcnnError, match=r"differ from the model's by [\d.]+ times what "
                                               "float32 rounding allows: not written"):
        export.export(trained.predictor, path)
    assert path.read_bytes() == b"kept"


def test_outputs_that_cannot_be_compared_are_the_worst():
    want = np.zeros((3, 2))
    reference = [(want, np.full((3, 2), 1e-6))]
    assert export.worst([want + 5e-7], reference) == pytest.approx(0.5)
    assert np.isnan(export.worst([np.full((3, 2), np.nan)], reference))
    assert export.worst([np.zeros((3, 1))], reference) == np.inf
    assert export.worst([want, want], reference) == np.inf


def test_the_file_holds_no_trace_of_the_machine_that_wrote_it(trained, tmp_path):
    onnx = pytest.importorskip("onnx")
    import os

    import fcnn_cli

    path = tmp_path / "m.onnx"
    export.export(trained.predictor, path)
    model = onnx.load(path)
    assert all(not node.metadata_props and not node.doc_string for node in model.graph.node)
    assert not model.graph.metadata_props
    assert {p.key for p in model.metadata_props} == {"task", "features", "targets", "units"}
    data = path.read_bytes()  # the exporter's stack traces named the package's own files
    for where in (os.path.dirname(fcnn_cli.__file__), sys.prefix, os.getcwd(), "export.py"):
        assert where.encode() not in data, where


@pytest.fixture(scope="module")
def galaxy_net():
    """1 024 inputs a sum: the case whose rounding a fixed tolerance of 1e-5 did not allow."""
    galaxies = simulate.galaxies(n=300, seed=2)
    result = train.fit(galaxies, train.TrainConfig(epochs=1, seed=2, threads=1),
                       net={"width": 32, "depth": 2})
    return result.predictor


def references(predictor, x, monkeypatch):
    """export.reference's bounds, exact and through the output layer's input (many classes)."""
    exact = export.reference(predictor, x)
    with monkeypatch.context() as patch:
        patch.setattr(export, "EXACT_COLUMNS", 0)
        return exact, export.reference(predictor, x)


@pytest.mark.parametrize("threads", [1, 2])
def test_float32_sums_in_any_order_keep_within_the_bound(galaxy_net, threads, monkeypatch):
    """predict's own float32 arithmetic on 1 or 2 threads, and with the pixels summed in the
    reverse order, is within the bound of its rounding of the float64 model, either bound."""
    predictor = galaxy_net
    x = export._check_rows(predictor, seed=3)
    reverse = predictor.features[::-1]
    backwards = copy.deepcopy(predictor)
    backwards.features, backwards.feature_range = reverse, {}
    backwards.x_scaler = dataclasses.replace(predictor.x_scaler,
                                             shift=predictor.x_scaler.shift[::-1],
                                             scale=predictor.x_scaler.scale[::-1])
    with torch.no_grad():
        backwards.net.body[0][0].weight.copy_(predictor.net.body[0][0].weight.flip(1))
    table = Table(pd.DataFrame(x, columns=predictor.features), name="rows")
    exact, wide = references(predictor, x, monkeypatch)
    assert np.all(exact[0][1] <= wide[0][1])
    for model in (predictor, backwards):
        got = predicted(model, predict_on_threads(model, table, threads))
        for reference in (exact, wide):
            for g, (want, allowed) in zip(got, reference):
                assert np.all(np.abs(g - want) <= allowed / export.MARGIN)
                assert np.max(np.abs(g - want)) > 0  # float32, not float64


NETWORKS = {
    "plain": ({}, {}),
    "resnet": ({"arch": "resnet", "depth": 3}, {}),
    "resnet-identity-elu": ({"arch": "resnet", "depth": 2, "width": 8, "activation": "elu"},
                            {}),
    "batchnorm": ({"arch": "batchnorm"}, {}),
    "selu": ({"arch": "selu", "dropout": 0.05}, {}),
    "minmax-relu": ({"activation": "relu"}, {"scale": "minmax"}),
    "robust": ({}, {"scale": "robust"}),
    "quantile": ({}, {"scale": "quantile"}),
    "gelu-tanh": ({"activation": "gelu"}, {}),
    "tanh": ({"activation": "tanh"}, {}),
    "gaussian": ({"activation": "softplus"}, {"loss": "gaussian"}),
    "ensemble": ({}, {"ensemble": 3}),
    "gaussian-ensemble": ({}, {"loss": "gaussian", "ensemble": 2}),
    "batchnorm-ensemble": ({"arch": "batchnorm"}, {"ensemble": 2}),
    "periodic": ({"embed": "periodic", "embed_dim": 8, "embed_sigma": 1.0}, {}),
    "linear-embedding-ensemble": ({"embed": "linear", "embed_dim": 4}, {"ensemble": 2}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_regression_graph_gives_predict_outputs(quakes, tmp_path, name, monkeypatch):
    pytest.importorskip("onnxruntime")
    net, options = NETWORKS[name]
    result = train.fit(quakes, train.TrainConfig(epochs=2, batch_size=64, seed=1, **options),
                       net={"width": 16, **net})
    predictor = result.predictor
    path = tmp_path / "m.onnx"
    assert export.export(predictor, path) <= 1.0
    x = quakes.frame[predictor.features].to_numpy()
    want = predicted(predictor, predictor.predict(quakes))
    for reference in references(predictor, x, monkeypatch):
        assert_agree(onnx_outputs(path, x), want, reference)
        assert_agree(onnx_outputs(path, x[:1]), [w[:1] for w in want],  # any rows
                     [(w[:1], a[:1]) for w, a in reference])
    import onnx

    model = onnx.load(str(path))
    assert [o.name for o in model.graph.output] == export.output_names(predictor) == \
        ["predictions", "std"][:1 + bool(predictor.members or predictor.task.gaussian)]
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["features"]) == predictor.features
    assert json.loads(meta["targets"]) == ["x", "y"] and meta["task"] == "regress"
    assert json.loads(meta["units"])["x"] == "km"
    assert json.loads(meta.get("members", "null")) == predictor.members


def sides(quakes, classes):
    """East, middle and west of the epicentres; two: east and west; more: bands of x."""
    x = quakes.frame.x
    side = np.where(x > 10, "east", np.where(x < -10, "west", "middle"))
    if classes == 2:
        side = np.where(x > 10, "east", "west")
    elif classes > 3:
        side = pd.qcut(x, classes, labels=[f"band{k:02d}" for k in range(classes)]).astype(str)
    return Table(quakes.frame.drop(columns=["x", "y"]).assign(side=side), ["side"], name="sides")


def assert_same_decisions(proba, classes, decided, allowed):
    """The graph's most probable class is predict's wherever the margin between the first two
    classes exceeds what rounding may move them by."""
    top = np.sort(proba, axis=1)
    clear = top[:, -1] - top[:, -2] > 2 * allowed.max(axis=1)
    assert clear.mean() > 0.9
    assert (np.asarray(classes)[proba.argmax(axis=1)] == decided)[clear].all()


@pytest.mark.slow
@pytest.mark.parametrize("classes, output, members", [(3, "softmax", 1), (2, "sigmoid", 1),
                                                      (2, "softmax", 1), (3, "softmax", 3),
                                                      (2, "sigmoid", 2), (40, "softmax", 2)])
def test_classification_graph_gives_predict_probabilities(quakes, tmp_path, classes, output,
                                                          members, monkeypatch):
    pytest.importorskip("onnxruntime")
    table = sides(quakes, classes)
    result = train.fit(table, train.TrainConfig(epochs=2, batch_size=64, binary_output=output,
                                                ensemble=members))
    predictor = result.predictor
    path = tmp_path / "m.onnx"
    export.export(predictor, path)
    frame = predictor.predict(table)
    x = table.frame[predictor.features].to_numpy()
    got = onnx_outputs(path, x)
    assert got[0].shape == (len(table.frame), classes)
    for reference in references(predictor, x, monkeypatch):
        assert_agree(got, predicted(predictor, frame), reference)
        assert_same_decisions(got[0], predictor.task.classes, frame.side_pred, reference[0][1])
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["classes"]) == predictor.task.classes and meta["task"] == "classify"


def run(runner, *args, code=0):
    result = runner.invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output + str(result.exception)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["earthquakes", "galaxies"])
def test_default_data_sets_graph_equals_fcnn_predict(runner, tmp_path, dataset):
    """The default data sets and network (two epochs: the weights' values do not matter),
    predict on 1 and 2 threads, and the graph on 1 and 2 of onnxruntime's: every pair agrees
    within the bound of their rounding, and so do their classes where it cannot move them."""
    pytest.importorskip("onnxruntime")
    data = tmp_path / "data.parquet"
    run(runner, "simulate", dataset, "-o", data)
    run(runner, "train", data, "--epochs", 2, "-q", "-o", tmp_path / "run")
    model = tmp_path / "run" / "model.pt"
    run(runner, "export", model, tmp_path / "m.onnx")
    rows = slice(None, None, 10)  # of the file's rows: 2 000 of the galaxies' 20 000
    command_line = pd.read_csv(io.StringIO(run(runner, "predict", model, data).stdout))[rows]
    predictor = checkpoint.load(model)
    frame = pd.read_parquet(data)[rows].reset_index(drop=True)
    x = frame[predictor.features].to_numpy()
    reference = export.reference(predictor, x)
    predictions = [command_line.reset_index(drop=True)] + [
        predict_on_threads(predictor, Table(frame, name=dataset), threads) for threads in (1, 2)]
    for threads in (1, 2):
        got = onnx_outputs(tmp_path / "m.onnx", x, threads)
        for want in predictions:
            assert_agree(got, predicted(predictor, want), reference)
            if dataset == "galaxies":
                assert_same_decisions(got[0], predictor.task.classes, want.rotation_pred,
                                      reference[0][1])


def test_a_bf16_trained_network_exports_its_float32_graph(quakes, tmp_path):
    pytest.importorskip("onnxruntime")
    result = train.fit(quakes, train.TrainConfig(epochs=1, precision="bf16", device="cpu"))
    assert result.predictor.precision == "bf16"
    path = tmp_path / "m.onnx"
    assert export.export(result.predictor, path) <= 1.0
    x = quakes.frame[result.predictor.features].to_numpy(np.float32)[:100]
    fp32 = dataclasses.replace(result.predictor, precision="fp32")
    want = result.predictor.task.decode(fp32.outputs(x))
    assert_agree(onnx_outputs(path, x), [want], export.reference(result.predictor, x))


@pytest.fixture(scope="module")
def filling(quakes):
    """A model trained with nan='fill' on quakes missing some values of tp1 and ts2."""
    frame = quakes.frame.copy()
    frame.loc[::5, "tp1"] = np.nan
    frame.loc[::7, "ts2"] = np.nan
    frame.loc[3, "ts2"] = np.inf  # missing too, as predict takes it
    holey = Table(frame, quakes.targets, quakes.units, "holey")
    return train.fit(holey, train.TrainConfig(epochs=2, nan="fill", seed=2)).predictor, holey


def test_a_model_that_fills_missing_values_fills_them_in_the_graph(filling, tmp_path):
    """Features with NaN in: predict's outputs, the medians and indicators in the graph; the
    export's own check drew rows with missing values of the features that had them."""
    pytest.importorskip("onnxruntime")
    predictor, holey = filling
    assert predictor.filler.flagged == ["tp1", "ts2"]
    rows = export._check_rows(predictor, 0)
    assert rows.shape == (512, len(predictor.features)) and rows.dtype == np.float32
    flagged = np.isin(predictor.features, ["tp1", "ts2"])
    assert np.isnan(rows[:, flagged]).any(axis=0).all() and np.isinf(rows[:, flagged]).any()
    assert np.isfinite(rows[:, ~flagged]).all()
    path = tmp_path / "m.onnx"
    assert export.export(predictor, path) <= 1.0
    x = holey.frame[predictor.features].to_numpy(np.float32)
    assert np.isnan(x).any(axis=1).mean() > 0.3
    got = onnx_outputs(path, x)
    assert_agree(got, predicted(predictor, predictor.predict(holey)),
                 export.reference(predictor, x))
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["missing"]) == predictor.filler.to_dict()
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["features"]


def raw_events(n=600, seed=0):
    """Raw columns of pairs: a resonance near 91 against a broad background, some px and
    eta missing."""
    rng = np.random.default_rng(seed)
    px, py, pz = rng.normal(0, 20, (3, n))
    mass = np.where(rng.random(n) < 0.5, rng.normal(91, 3, n), rng.uniform(20, 150, n))
    frame = pd.DataFrame({"px": px, "py": py, "pz": pz,
                          "E": np.sqrt(mass**2 + px**2 + py**2 + pz**2),
                          "nj": rng.integers(0, 4, n), "eta": rng.normal(0, 1.5, n),
                          "label": np.where(np.abs(mass - 91) < 6, "sig", "bkg")})
    frame.loc[rng.random(n) < 0.2, "eta"] = np.nan
    frame.loc[rng.random(n) < 0.1, "px"] = np.nan
    return frame


def test_definitions_and_filling_in_the_graph_give_fcnn_predict_on_raw_columns(runner,
                                                                              tmp_path):
    """--define mass=… and --nan fill: the graph takes the raw columns (float64), computes the
    definitions, fills, and gives what fcnn predict writes of the same raw table."""
    pytest.importorskip("onnxruntime")
    import onnx

    data = tmp_path / "raw.csv"
    frame = raw_events()
    frame.to_csv(data, index=False)
    run(runner, "train", data, "-t", "label", "--define",
        "mass=sqrt(E**2 - px**2 - py**2 - pz**2)", "--define", "pt=hypot(px, py)",
        "--define", "phi=arctan2(py, px) % (2 * pi)", "--features", "mass,pt,phi,eta,nj",
        "--nan", "fill", "--where", "nj < 3", "--epochs", 2, "-q", "-o", tmp_path / "run")
    model, path = tmp_path / "run" / "model.pt", tmp_path / "m.onnx"
    result = run(runner, "export", model, path)
    assert "select the rows where nj < 3 yourself" in result.stderr
    predictor = checkpoint.load(model)
    assert set(predictor.filler.flagged) >= {"mass", "pt", "eta"}
    assert set(predictor.recipe.ranges) == {"E", "px", "py", "pz"}
    saved = onnx.load(str(path))
    meta = {p.key: p.value if p.key in ("task", "selection") else json.loads(p.value)
            for p in saved.metadata_props}
    columns = meta["columns"]
    assert sorted(columns) == ["E", "eta", "nj", "px", "py", "pz"]
    assert [d[0] for d in meta["definitions"]] == ["mass", "pt", "phi"]
    assert meta["selection"] == "nj < 3" and meta["features"] == predictor.features
    (graph_input,) = saved.graph.input
    assert graph_input.name == "columns" and graph_input.type.tensor_type.elem_type == \
        onnx.TensorProto.DOUBLE
    x = frame[columns].to_numpy(np.float64)
    written = pd.read_csv(io.StringIO(run(runner, "predict", model, data).stdout))
    scored = written.p_sig.notna().to_numpy()
    assert scored.all()  # rows out of the selection and missing a value are filled too
    reference = [(w[scored], a[scored]) for w, a in export.reference(predictor, x)]
    got = [g[scored] for g in onnx_outputs(path, x, dtype=np.float64)]
    assert_agree(got, [w[scored] for w in predicted(predictor, written)], reference)
    assert not np.isnan(onnx_outputs(path, x, dtype=np.float64)[0]).any()


def test_a_definition_of_a_list_column_is_refused_in_one_line(runner, trained, tmp_path):
    from fcnn_cli.data.recipe import Recipe

    first = trained.predictor.features[0]
    predictor = dataclasses.replace(
        trained.predictor, recipe=Recipe.of_options(define=[f"{first}=Muon_Px[0] ?? 0"]))
    model, path = tmp_path / "m.pt", tmp_path / "m.onnx"
    checkpoint.save(predictor, model)
    result = run(runner, "export", model, path, code=1)
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: definition '{first}' = Muon_Px[0] ?? 0 reads the list "
                           "column 'Muon_Px', and an ONNX graph takes one number a column")
    assert not path.exists()


def test_a_recipe_whose_features_are_raw_keeps_the_features_input(trained):
    from fcnn_cli.data.recipe import Recipe
    from fcnn_cli.network import onnxinputs

    recipe = Recipe.of_options(define=["w=tp1 * 2"], where="tp1 > 0", weight="w")
    graph_input = onnxinputs.of(dataclasses.replace(trained.predictor, recipe=recipe))
    assert graph_input.name == "features" and graph_input.columns == trained.predictor.features


def test_raw_columns_without_a_recorded_range_take_the_features_or_a_default(trained):
    """A model trained before its recipe recorded ranges: a raw feature's own range."""
    from fcnn_cli.data.recipe import Recipe
    from fcnn_cli.network import onnxinputs

    first = trained.predictor.features[0]
    recipe = Recipe.of_options(define=[f"{first}=sqrt(raw) + {trained.predictor.features[1]}"])
    predictor = dataclasses.replace(trained.predictor, recipe=recipe)
    graph_input = onnxinputs.of(predictor)
    assert graph_input.columns[:2] == ["raw", predictor.features[1]]
    rows = onnxinputs.check_rows(predictor, graph_input, 0)
    lo, hi = onnxinputs.feature_bounds(predictor)
    assert rows.dtype == np.float64 and len(rows) == 512
    assert rows[:, 0].min() >= 0 and rows[:, 0].max() <= 1.2  # sqrt(raw): finite rows alone
    assert rows[:, 1].min() >= lo[1] - 0.1 * (hi[1] - lo[1]) - 1e-9


def test_definitions_that_give_no_number_on_any_row_leave_nothing_to_check(trained):
    from fcnn_cli.data.recipe import Recipe
    from fcnn_cli.network import onnxinputs

    first = trained.predictor.features[0]
    recipe = Recipe.of_options(define=[f"{first}=sqrt(raw)"])
    recipe.ranges = {"raw": [-5.0, -1.0]}
    predictor = dataclasses.replace(trained.predictor, recipe=recipe)
    with pytest.raises(export.FcnnError, match="no rows to check the ONNX graph on"):
        onnxinputs.check_rows(predictor, onnxinputs.of(predictor), 0)


@pytest.mark.slow
def test_a_categorical_model_takes_the_one_hot_inputs_its_metadata_names(tmp_path):
    import onnx

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "region": rng.choice(["a", "b"], 200)})
    frame["y"] = frame["x"] + (frame["region"] == "b")
    predictor = train.fit(Table(frame, ["y"], name="t"), train.TrainConfig(epochs=1)).predictor
    path = tmp_path / "m.onnx"
    export.export(predictor, path)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["categories"]) == {"region": ["a", "b"]}
    inputs = json.loads(meta["features"])
    assert inputs == ["x", "region='a'", "region='b'", "region=<unknown>"]
    new = Table(frame.head(5).assign(region=["a", "b", "c", "b", "a"]), name="new")
    x = predictor.encoded(new).frame[inputs].to_numpy(np.float32)
    got = onnx_outputs(path, x)
    assert np.allclose(got[0][:, 0], predictor.predict(new)["y_pred"], atol=1e-5)


@pytest.fixture(scope="module")
def k_fold(quakes):
    """Networks of 3 folds by an event number, and their table."""
    frame = quakes.frame.assign(event=np.arange(len(quakes.frame)))
    table = Table(frame, quakes.targets, quakes.units, "events", extra=quakes.extra)
    config = train.TrainConfig(epochs=1, batch_size=64, seed=3, folds=3, fold_by="event")
    return table, train.fit(table, config, net={"depth": 1, "width": 8}).predictor


@pytest.mark.slow
def test_a_k_fold_graph_gives_predicts_mean_and_says_so(k_fold, tmp_path, logged):
    """The graph is predict on a table without the fold column (the mean of the networks),
    not its out-of-fold scores of the events trained on: the metadata and a warning say so;
    with folds by position, predict's mean on any table, nothing to warn of."""
    import onnx

    table, predictor = k_fold
    path = tmp_path / "folds.onnx"
    assert export.export(predictor, path) <= 1.0
    warned = [r.getMessage() for r in logged.records if "k-fold" in r.getMessage()]
    assert len(warned) == 1 and "the fold column 'event'" in warned[0]
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["folds"]) == {"k": 3, "by": "event", "seed": 3, "applied": "mean"}
    x = table.frame[predictor.features].to_numpy()
    got = onnx_outputs(path, x)
    mean = predicted(predictor, predictor.predict(Table(table.frame.drop(columns=["event"]),
                                                        table.targets, name="new")))
    assert_agree(got, mean, export.reference(predictor, x))
    out_of_fold = predictor.predict(table)[["x_pred", "y_pred"]].to_numpy()
    assert np.abs(out_of_fold - got[0]).max() > 1e-3
    logged.clear()
    by_position = dataclasses.replace(predictor, folds=FoldRule(3, seed=3))
    export.export(by_position, tmp_path / "position.onnx")
    assert not [r for r in logged.records if "k-fold" in r.getMessage()]
