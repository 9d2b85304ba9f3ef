
import numpy as np
import pandas as pd
import pytest
import torch

from forgery import (CORRUPTIONS, SPECIAL, corrupted, in_meta, resigned, set_item, special_file,
                     tiny_predictor, to_version_1)
from fcnn_cli.network import checkpoint
from fcnn_cli.core.errors import FcnnError


def test_round_trip_gives_identical_predictions(tmp_path, trained, quakes):
    """Loaded where it was trained, the network gives the same outputs: to the bit on a CPU;
    on a GPU within float32 rounding (its kernels need not be the same from call to call)."""
    path = tmp_path / "m.pt"
    checkpoint.save(trained.predictor, path)
    device = trained.predictor.device
    loaded = checkpoint.load(path, device)
    x = trained.predictor.feature_matrix(quakes)
    if device.type == "cpu":
        np.testing.assert_array_equal(loaded.outputs(x), trained.predictor.outputs(x))
    else:
        np.testing.assert_allclose(loaded.outputs(x), trained.predictor.outputs(x),
                                   rtol=1e-5, atol=1e-6)
    assert loaded.features == trained.predictor.features
    assert loaded.targets == ["x", "y"] and loaded.units["x"] == "km"
    assert loaded.net.config == trained.predictor.net.config
    headlines = {"task", "rows", "overall", "distance"}
    assert loaded.info["metrics"] == {split: {k: v for k, v in report.items() if k in headlines}
                                      for split, report in trained.metrics.items()}
    assert loaded.info["versions"]["torch"] == torch.__version__


def test_predict_matches_features_by_name_in_any_order(model_path, quakes):
    from fcnn_cli.data.tables import Table

    predictor = checkpoint.load(model_path)
    shuffled = Table(quakes.frame[quakes.frame.columns[::-1]], name="rev")
    np.testing.assert_array_equal(predictor.predict(shuffled).to_numpy(),
                                  predictor.predict(quakes).to_numpy())


def test_other_files_are_clear_errors(tmp_path, model_path):
    (tmp_path / "text.pt").write_text("hello")
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(model_path.read_bytes()[:500])
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    for name in ("text.pt", "cut.pt", "other.pt", "missing.pt"):
        with pytest.raises(FcnnError, match=name):
            checkpoint.load(tmp_path / name)


def test_future_format_version_is_refused(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": "fcnn-checkpoint", "format_version": 99, "meta": "{}", "state": {}},
               path)
    with pytest.raises(FcnnError, match="newer"):
        checkpoint.load(path)


def test_library_predict_warns_of_rows_far_outside_training_range(model_path, quakes, caplog):
    from fcnn_cli.data.tables import Table

    frame = quakes.frame.copy()
    frame.loc[:4, "tp1"] = 1e4
    predictor = checkpoint.load(model_path)
    predictor.predict(Table(frame, name="far.csv"))
    assert "5 row(s) hold values far outside the training range" in caplog.text


# --- Damaged, edited and special checkpoint files (issue #10) -----------------------------------
# Small predictors built directly (no training), on the earthquake features, so that the CLI
# cases in test_bad_inputs.py can apply them to a real table.

@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corrupted_checkpoint_is_one_line_naming_the_damage(tmp_path, name):
    path = corrupted(tmp_path, name)
    with pytest.raises(FcnnError) as caught:
        checkpoint.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert CORRUPTIONS[name][-1] in message, message
    if not CORRUPTIONS[name][-1].startswith("not an fcnn checkpoint"):
        assert message.startswith(f"{path}: corrupted fcnn checkpoint: "), message


@pytest.mark.parametrize("kind", ["regress", "classify"])
def test_undamaged_tiny_checkpoints_round_trip(tmp_path, quakes, kind):
    predictor = tiny_predictor(kind)
    checkpoint.save(predictor, tmp_path / "m.pt")
    loaded = checkpoint.load(tmp_path / "m.pt")
    x = predictor.feature_matrix(quakes)
    np.testing.assert_array_equal(loaded.outputs(x), predictor.outputs(x))
    assert loaded.task == predictor.task and loaded.feature_range == predictor.feature_range


def test_edit_with_recomputed_digest_that_stays_consistent_predicts_what_it_says(tmp_path,
                                                                                 quakes):
    """A forger who edits the activation and recomputes the digest gets a model that computes
    exactly what the edited file describes: a relu network with the same weights."""
    from fcnn_cli.network.model import MLP, NetConfig

    path = tmp_path / "m.pt"
    predictor = tiny_predictor("classify")
    checkpoint.save(predictor, path)
    resigned(path, in_meta(set_item("net", "activation", value="relu")))
    relu = MLP(NetConfig(**{**predictor.net.config.to_dict(), "activation": "relu"}))
    relu.load_state_dict(predictor.net.state_dict())
    predictor.net = relu.eval()
    expected = predictor.predict(quakes)
    loaded = checkpoint.load(path)
    assert loaded.net.config.activation == "relu"
    np.testing.assert_array_equal(loaded.predict(quakes).to_numpy(), expected.to_numpy())


def test_version_1_file_loads_after_the_checks_with_a_warning(tmp_path, quakes, caplog):
    path = tmp_path / "old.pt"
    predictor = tiny_predictor("regress")
    checkpoint.save(predictor, path)
    payload = torch.load(path, weights_only=True)
    to_version_1(payload)
    torch.save(payload, path)
    loaded = checkpoint.load(path)
    assert "format version 1 carries no digest" in caplog.text and str(path) in caplog.text
    x = predictor.feature_matrix(quakes)
    np.testing.assert_array_equal(loaded.outputs(x), predictor.outputs(x))


def test_saved_file_carries_format_version_2_and_a_digest_of_its_contents(tmp_path):
    path = tmp_path / "m.pt"
    checkpoint.save(tiny_predictor(), path)
    payload = torch.load(path, weights_only=True)
    assert payload["format_version"] == 2 == checkpoint.FORMAT_VERSION
    assert payload["sha256"] == checkpoint.digest(payload["meta"], payload["state"])
    assert len(payload["sha256"]) == 64
    # every part of a tensor counts: its name, dtype, shape and bytes
    state = payload["state"]
    for changed in ({**state, "head.bias2": state.pop("head.bias")},
                    {**state, "head.weight": state["head.weight"].reshape(-1)},
                    {**state, "head.weight": state["head.weight"].view(torch.int32)}):
        assert checkpoint.digest(payload["meta"], changed) != payload["sha256"]


@pytest.mark.parametrize("kind", sorted(SPECIAL))
@pytest.mark.parametrize("via_link", [True, False], ids=["link", "node"])
def test_special_files_are_refused_without_reading(tmp_path, kind, via_link):
    import signal

    link, target = special_file(tmp_path, kind)

    def hung(*_):
        raise TimeoutError("checkpoint.load hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with pytest.raises(FcnnError) as caught:
            checkpoint.load(link if via_link else target)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert SPECIAL[kind] in str(caught.value) and "\n" not in str(caught.value)


def many_classes_predictor(n_classes):
    """A network with ``n_classes`` outputs whose info carries the full metric report that
    training writes: per-class tables and an n × n confusion matrix."""
    from fcnn_cli.network import tasks
    from fcnn_cli.network.model import MLP, NetConfig
    from fcnn_cli.network.predictor import Predictor
    from fcnn_cli.data.preprocess import Scaler

    classes = [f"c{i}" for i in range(n_classes)]
    row = [0] * n_classes  # one row object shared n times: the matrix costs no memory here
    report = {"task": "classification", "rows": 10, "classes": classes, "accuracy": 0.5,
              "cross_entropy": 1.5, "roc_auc": 0.75,
              "per_class": {c: {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
                            for c in classes},
              "confusion_matrix": [row] * n_classes}
    return Predictor(net=MLP(NetConfig(n_in=3, n_out=n_classes, depth=1, width=8)).eval(),
                     features=["a", "b", "c"], x_scaler=Scaler("none", [0.0] * 3, [1.0] * 3),
                     task=tasks.Classification("kind", classes),
                     info={"metrics": {"train": report, "val": report}, "best_epoch": 1})


def test_ten_thousand_classes_make_a_small_checkpoint_that_predicts(tmp_path):
    from fcnn_cli.data.tables import Table

    path = tmp_path / "m.pt"
    predictor = many_classes_predictor(10_000)
    checkpoint.save(predictor, path)
    weights = sum(t.numel() * 4 for t in predictor.net.state_dict().values())
    # weights (360 KB) plus 10 000 class names and small change; the full report's confusion
    # matrix alone would be 300 MB of JSON
    assert path.stat().st_size < weights + 200_000
    loaded = checkpoint.load(path)
    assert loaded.info["metrics"]["val"] == {"task": "classification", "rows": 10,
                                             "accuracy": 0.5, "cross_entropy": 1.5,
                                             "roc_auc": 0.75}
    frame = loaded.predict(Table(pd.DataFrame(np.eye(5, 3), columns=["a", "b", "c"]), name="t"))
    assert frame.shape == (5, 10_001) and list(frame.columns[:2]) == ["kind_pred", "p_c0"]
    np.testing.assert_allclose(frame.iloc[:, 1:].sum(axis=1), 1.0, rtol=1e-9)


@pytest.mark.cuda
def test_round_trip_on_cuda_within_float32_rounding(tmp_path, quakes):
    """Trained on a GPU, saved, loaded on the CPU and on the GPU: the outputs agree within
    float32 rounding (the GPU's products sum in another order than the CPU's)."""
    from fcnn_cli.engine import train

    result = train.fit(quakes, train.TrainConfig(epochs=2, batch_size=64, device="cuda"))
    path = tmp_path / "m.pt"
    checkpoint.save(result.predictor, path)
    x = result.predictor.feature_matrix(quakes)
    trained = result.predictor.outputs(x)
    for device in ("cuda", "cpu"):
        np.testing.assert_allclose(checkpoint.load(path, device).outputs(x), trained,
                                   rtol=1e-5, atol=1e-5)
    assert checkpoint.load(path).info["device"] == "cuda"


def test_a_model_from_stdin_is_refused_naming_its_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FcnnError, match=r"^-: a model is not read from stdin; name its file"):
        checkpoint.load("-")


# Issue #24: the recipe a checkpoint carries is untrusted input too.

HOSTILE_RECIPES = {
    "import": "__import__('os').system('touch pwned')",
    "attribute": "tp1.__class__.__bases__",
    "lambda": "(lambda: 1)()",
    "10 MB": "tp1" + " + tp1" * 2_000_000,
    "nesting": "(" * 200 + "tp1" + ")" * 200,
}


@pytest.mark.parametrize("text", HOSTILE_RECIPES.values(), ids=HOSTILE_RECIPES)
def test_a_hostile_recipe_is_refused_on_load_before_anything_runs(runner, model_path, quakes_csv,
                                                                  tmp_path, monkeypatch, text):
    from fcnn_cli.commands import cli

    path = tmp_path / "model.pt"
    path.write_bytes(model_path.read_bytes())
    recipe = {"samples": [], "label": None, "objects": [], "expanded": None,
              "define": [["tp9", text]], "where": None, "weight": None}
    resigned(path, in_meta(lambda meta: meta.update(recipe=recipe)))
    monkeypatch.chdir(tmp_path)
    for args in (["predict", path, quakes_csv, "-o", tmp_path / "out.csv"], ["info", path],
                 ["evaluate", path, quakes_csv]):
        result = runner.invoke(cli, [str(a) for a in args])
        assert result.exit_code == 1 and "Traceback" not in result.output
        (line,) = result.output.strip().splitlines()
        assert line.startswith(f"Error: {path}: corrupted fcnn checkpoint: recipe: ")
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "pwned").exists()


@pytest.fixture(scope="module")
def filled_model(tmp_path_factory, quakes):
    """A model trained with nan='fill' on quakes missing some values of tp1 and ts2, saved."""
    from fcnn_cli.data.tables import Table
    from fcnn_cli.engine import train

    frame = quakes.frame.copy()
    frame.loc[::5, "tp1"] = np.nan
    frame.loc[::7, "ts2"] = np.nan
    holey = Table(frame, quakes.targets, quakes.units, "holey")
    result = train.fit(holey, train.TrainConfig(epochs=1, nan="fill"))
    path = tmp_path_factory.mktemp("filled") / "m.pt"
    checkpoint.save(result.predictor, path)
    return path, result.predictor, holey


def test_a_model_that_fills_missing_values_round_trips(filled_model):
    path, predictor, holey = filled_model
    loaded = checkpoint.load(path)
    assert loaded.filler == predictor.filler and loaded.filler.flagged == ["tp1", "ts2"]
    assert loaded.features == predictor.features  # the raw names; the indicators besides
    assert loaded.net.config.n_in == len(loaded.features) + 2
    np.testing.assert_array_equal(loaded.predict(holey).to_numpy(),
                                  predictor.predict(holey).to_numpy())


@pytest.mark.parametrize("change, message", [
    (lambda meta: meta["missing"].update(flagged=["tp1"]),
     "8 feature name.s. and 1 missing-value indicator.s. for a network of 10 input"),
    (lambda meta: meta.pop("missing"), "8 feature name.s. for a network of 10 input"),
    (lambda meta: meta["missing"]["medians"].update(tp1=float("inf")), "not a number finite"),
    (lambda meta: meta["missing"].update(flagged=["ts2", "tp1"]), "flagged are not features"),
    (lambda meta: meta.update(missing=[1, 2]), "exactly 'medians' and 'flagged'"),
], ids=["fewer-flags", "no-filler", "inf-median", "unordered", "not-a-table"])
def test_a_tampered_filler_is_refused_in_one_line(tmp_path, filled_model, change, message):
    import shutil

    path = shutil.copy(filled_model[0], tmp_path / "m.pt")
    resigned(path, in_meta(change))
    with pytest.raises(FcnnError, match=f"corrupted fcnn checkpoint: .*{message}"):
        checkpoint.load(path)


def test_a_working_point_round_trips_and_decides_the_class_column(tmp_path):
    from fcnn_cli.data.tables import Table

    predictor = many_classes_predictor(3)
    predictor.task.signal = "c2"
    predictor.task.working_point = {"asked": {"signal_efficiency": 0.7}, "cut": 0.0}
    checkpoint.save(predictor, tmp_path / "m.pt")
    loaded = checkpoint.load(tmp_path / "m.pt")
    assert loaded.task == predictor.task
    frame = loaded.predict(Table(pd.DataFrame(np.eye(4, 3), columns=["a", "b", "c"]), name="t"))
    assert (frame["kind_pred"] == "c2").all()  # every p(c2) ≥ the cut 0


@pytest.mark.parametrize("change, message", [
    (lambda task: task.update(signal="c9"), "the signal class 'c9' is not one of the classes"),
    (lambda task: task["working_point"].update(cut=1.5), "cut 1.5 is not a number in .0, 1."),
    (lambda task: task["working_point"].update(cut="0.5"), "cut '0.5' is not a number"),
    (lambda task: task["working_point"].pop("cut"), "working point is not a dict with a cut"),
    (lambda task: task.update(signal=None), "a working point of several classes without a "
                                            "signal class"),
    (lambda task: task["working_point"].update(asked={"signal_efficiency": "x"}),
     "signal_efficiency 'x' is not a number in .0, 1."),
    (lambda task: task["working_point"].update(asked={"background_efficiency": 0}),
     "background_efficiency 0 is not a number in .0, 1."),
    (lambda task: task["working_point"].update(asked={"signal_efficiency": float("nan")}),
     "signal_efficiency nan is not a number"),
    (lambda task: task["working_point"].update(asked={"threshold": 0.5}),
     "asked {'threshold': 0.5} is not empty or one of signal_efficiency or "
     "background_efficiency"),
    (lambda task: task["working_point"]["asked"].update(background_efficiency=0.1),
     "asked .* is not empty or one of"),
    (lambda task: task["working_point"].update(asked=[0.7]), "asked \\[0.7\\] is not empty"),
], ids=["no-such-class", "cut-above-1", "cut-text", "no-cut", "no-signal", "asked-text",
        "asked-zero", "asked-nan", "asked-other-key", "asked-two-keys", "asked-list"])
def test_a_tampered_working_point_is_refused_in_one_line(tmp_path, change, message):
    predictor = many_classes_predictor(3)
    predictor.task.signal = "c2"
    predictor.task.working_point = {"asked": {"signal_efficiency": 0.7}, "cut": 0.4}
    checkpoint.save(predictor, tmp_path / "m.pt")
    resigned(tmp_path / "m.pt", in_meta(lambda meta: change(meta["task"])))
    with pytest.raises(FcnnError, match=f"corrupted fcnn checkpoint: .*{message}"):
        checkpoint.load(tmp_path / "m.pt")


@pytest.fixture(scope="module")
def curve_models(tmp_path_factory, quakes):
    """Models trained with --scale robust and --scale quantile, saved."""
    from fcnn_cli.engine import train

    models = {}
    for method in ("robust", "quantile"):
        result = train.fit(quakes, train.TrainConfig(epochs=1, scale=method))
        path = tmp_path_factory.mktemp(method) / "m.pt"
        checkpoint.save(result.predictor, path)
        models[method] = path, result.predictor
    return models


@pytest.mark.parametrize("method", ["robust", "quantile"])
def test_a_curve_scaled_model_predicts_as_in_memory(curve_models, quakes, method):
    path, predictor = curve_models[method]
    loaded = checkpoint.load(path)
    assert loaded.x_scaler == predictor.x_scaler and loaded.x_scaler.method == method
    np.testing.assert_array_equal(loaded.predict(quakes).to_numpy(),
                                  predictor.predict(quakes).to_numpy())


def _descending_in_float64(scaler):
    """Column 2 starts 1 + 2⁻⁴⁰, then 1: one float32, but descending as the curve reads it."""
    column = scaler["quantiles"][2]
    column[:] = [1.0 + 2 ** -40, 1.0] + [2.0] * (len(column) - 2)


@pytest.mark.parametrize("method, change, message", [
    ("quantile", lambda s: s["quantiles"][2].reverse(), "quantiles of a column are not asc"),
    ("quantile", _descending_in_float64, "quantiles of a column are not asc"),
    ("quantile", lambda s: s["quantiles"].pop(), "quantiles are not a list of 8 column"),
    ("quantile", lambda s: s["quantiles"][0].append(1e40), "not finite in float32"),
    ("quantile", lambda s: s.update(quantiles=[[0.0]] * 8), "not 2 to 1000 a column"),
    ("quantile", lambda s: s.pop("quantiles"), "quantiles belong to the quantile method"),
    ("robust", lambda s: s.update(quantiles=[[0.0, 1.0]] * 8), "belong to the quantile"),
    ("robust", lambda s: s.update(clip=5), "x_scaler: unknown entries"),
    ("robust", lambda s: s.update(method="spline"), "x_scaler: unknown method"),
], ids=["descending", "descending-in-float64", "short", "too-large", "one-quantile", "no-table",
        "table-of-robust", "unknown-entry", "unknown-method"])
def test_a_tampered_curve_scaler_is_refused_in_one_line(tmp_path, curve_models, method,
                                                        change, message):
    import shutil

    path = shutil.copy(curve_models[method][0], tmp_path / "m.pt")
    resigned(path, in_meta(lambda meta: change(meta["x_scaler"])))
    with pytest.raises(FcnnError, match=f"corrupted fcnn checkpoint: .*{message}") as error:
        checkpoint.load(path)
    assert "\n" not in str(error.value)


def test_a_label_scaler_is_never_a_curve(tmp_path, model_path):
    import shutil

    path = shutil.copy(model_path, tmp_path / "m.pt")
    resigned(path, in_meta(lambda meta: meta["task"]["scaler"].update(method="robust")))
    with pytest.raises(FcnnError, match="target scaler: unknown method 'robust'"):
        checkpoint.load(path)


def test_a_label_scaler_keeps_no_inputs_as_they_are(tmp_path, model_path):
    import shutil

    path = shutil.copy(model_path, tmp_path / "m.pt")

    def keep_first(meta):
        scaler = meta["task"]["scaler"]
        scaler["shift"][0], scaler["scale"][0], scaler["kept"] = 0.0, 1.0, [0]
    resigned(path, in_meta(keep_first))
    with pytest.raises(FcnnError, match="target scaler: kept inputs, which only the features'"):
        checkpoint.load(path)


@pytest.fixture(scope="module")
def categorical_model(tmp_path_factory):
    from fcnn_cli.data.tables import Table
    from fcnn_cli.engine import train

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=120), "region": rng.choice(["b", "a"], 120)})
    frame["y"] = frame["x"] + (frame["region"] == "b")
    table = Table(frame, ["y"], name="t")
    predictor = train.fit(table, train.TrainConfig(epochs=1)).predictor
    path = tmp_path_factory.mktemp("categories") / "m.pt"
    checkpoint.save(predictor, path)
    return path, predictor, table


def test_a_categorical_model_round_trips_with_its_levels(categorical_model):
    path, predictor, table = categorical_model
    loaded = checkpoint.load(path)
    assert loaded.categories.levels == {"region": ["a", "b"]}
    assert loaded.columns == ["x", "region"] and loaded.net.config.n_in == 4
    np.testing.assert_array_equal(loaded.predict(table).to_numpy(),
                                  predictor.predict(table).to_numpy())


@pytest.mark.parametrize("change, message", [
    (lambda meta: meta["categories"].update(region=["b", "a"]), "not distinct and sorted"),
    (lambda meta: meta["categories"].update(region=["a"]), "its inputs are not among"),
    (lambda meta: meta["categories"].update(region=["a", "b", None, None]), "not texts"),
    (lambda meta: meta.pop("categories"), None),
], ids=["unsorted", "fewer", "two-missing", "none"])
def test_tampered_levels_are_refused_in_one_line(tmp_path, categorical_model, change, message):
    import shutil

    path = shutil.copy(categorical_model[0], tmp_path / "m.pt")
    resigned(path, in_meta(change))
    if message is None:  # its inputs are columns then, which a table lacks: named on predict
        with pytest.raises(FcnnError, match="missing feature column.s. \"region='a'\""):
            checkpoint.load(path).predict(categorical_model[2])
        return
    with pytest.raises(FcnnError, match=f"corrupted fcnn checkpoint: .*{message}"):
        checkpoint.load(path)
