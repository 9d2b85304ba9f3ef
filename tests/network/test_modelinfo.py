import io
import json

import pytest

from fcnn_cli.network import checkpoint, modelinfo
from fcnn_cli.data import simulate
from fcnn_cli.engine import train
from fcnn_cli.data.tables import Table


def _saved(tmp_path, table, name, net=None, categorical=None, **config):
    result = train.fit(table, train.TrainConfig(epochs=1, batch_size=64, **config), net=net,
                       categorical=categorical)
    path = tmp_path / f"{name}.pt"
    checkpoint.save(result.predictor, path)
    return path, result


def test_info_of_a_regression_checkpoint_with_a_position(model_path, trained):
    about = modelinfo.describe(model_path)
    assert about["task"] == "regression"
    assert about["network"]["layers"] == "8 → 64 → 64 → 64 → 2"
    assert about["network"]["parameters"] == 8 * 64 + 64 + 2 * (64 * 64 + 64) + 64 * 2 + 2
    assert about["labels"] == {"columns": [{"name": "x", "unit": "km"},
                                           {"name": "y", "unit": "km"}],
                               "position": ["x", "y"]}
    assert [f["name"] for f in about["features"]][:2] == ["tp1", "ts1"]
    assert about["features"][0]["unit"] == "s"
    assert about["features"][0]["min"] == trained.predictor.feature_range["min"][0]
    assert about["best_epoch"] == trained.predictor.info["best_epoch"]
    assert about["metrics"]["test"]["overall"]["rmse"] == trained.metrics["test"]["overall"]["rmse"]
    assert set(about["versions"]) == {"fcnn", "torch", "python"}
    assert about["training"]["epochs"] == 3
    json.dumps(about)


def test_info_of_classification_named_position_and_batchnorm_checkpoints(tmp_path):
    galaxies, _ = _saved(tmp_path, simulate.galaxies(n=200, size=8, seed=1), "g")
    about = modelinfo.describe(galaxies)
    assert about["task"] == "classification"
    assert about["labels"]["classes"] == ["left", "right"]
    assert about["preprocessing"] == {"features": "standard", "labels": None}
    frame = simulate.earthquakes(n=300, seed=2).frame.rename(columns={"x": "e", "y": "n"})
    named, _ = _saved(tmp_path, Table(frame, ["e", "n"]), "named", position=["n", "e"])
    assert modelinfo.describe(named)["labels"]["position"] == ["n", "e"]
    norm, _ = _saved(tmp_path, simulate.earthquakes(n=300, seed=2), "bn",
                     net={"arch": "batchnorm", "depth": 2, "width": 8})
    about = modelinfo.describe(norm)
    assert about["network"]["batchnorm"] and about["network"]["arch"] == "batchnorm"
    # batch norm's scale and shift count; its running statistics are buffers, not parameters
    assert about["network"]["parameters"] == 8 * 8 + 8 + 8 * 8 + 8 + 8 * 2 + 2 + 2 * 2 * 8


def test_info_refuses_what_the_safe_loader_refuses(tmp_path):
    from fcnn_cli.core.errors import FcnnError

    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x80\x04not a zip")
    with pytest.raises(FcnnError, match="not an fcnn checkpoint"):
        modelinfo.describe(bad)


def _info_text(path):
    from rich.console import Console

    from fcnn_cli.results.report import info_tables

    console = Console(record=True, width=300, file=io.StringIO())
    for table in info_tables(modelinfo.describe(path)):
        console.print(table)
    return console.export_text()


def test_info_of_an_ensemble_shows_its_members_parameters_and_set_options(tmp_path):
    galaxies = simulate.galaxies(n=200, size=8, seed=1)
    path, _ = _saved(tmp_path, galaxies, "e", net={"depth": 1, "width": 4}, ensemble=3,
                     precision="bf16", class_weight="balanced")
    one = 64 * 4 + 4 + 4 * 2 + 2
    assert modelinfo.describe(path)["network"]["parameters"] == 3 * one
    text = _info_text(path)
    assert f"{3 * one:,} (3 members × {one:,})" in text
    assert "precision bf16, class_weight balanced" in text
    single, _ = _saved(tmp_path, galaxies, "s", net={"depth": 1, "width": 4})
    text = _info_text(single)
    assert f"│ {one:,} " in text and "members" not in text
    assert "precision" not in text and "class_weight" not in text  # the defaults go unsaid


# What an edited checkpoint (signed anew) may record in place of each value of its training
# record: every shape JSON has, and numbers where none fit.
SHAPES = {"list": [1, "a"], "text": "\x1b[2J", "number": 7, "huge_integer": 10 ** 400,
          "true": True, "null": None, "nested": {"test": [1], "val": {"overall": [2]}}}
FORGED = {
    **{f"{key}_{shape}": (key, value) for key in ("metrics", "versions", "train_config",
                                                  "best_epoch", "best_epochs", "precision")
       for shape, value in SHAPES.items()},
    "metrics_of_odd_numbers": ("metrics", {"test": {
        "rows": [1], "overall": {"rmse": "1.5", "mae": None, "r2": 10 ** 400},
        "distance": {"mean": float("nan")}}, "train": {"overall": "none"}}),
    "metrics_classification_of_objects": ("metrics", {"test": {
        "task": "classification", "accuracy": {"a": 1}, "cross_entropy": [],
        "roc_auc": -10 ** 400}}),
    "train_config_of_lists": ("train_config", {"epochs": [1, 2], "precision": {"a": "b"},
                                               "class_weight": None}),
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_info_shows_a_checkpoint_whatever_shape_its_training_record_has(runner, tmp_path,
                                                                        model_path, name):
    import shutil

    from forgery import in_meta, resigned

    from fcnn_cli.commands import cli

    key, value = FORGED[name]
    path = tmp_path / "model.pt"
    shutil.copy(model_path, path)
    resigned(path, in_meta(lambda meta: meta["info"].update({key: value})))
    table = runner.invoke(cli, ["info", str(path)])
    assert table.exit_code == 0 and table.exception is None, table.output
    assert "8 → 64 → 64 → 64 → 2" in table.stdout and "\x1b" not in table.output
    shown = runner.invoke(cli, ["info", str(path), "--json"])
    assert shown.exit_code == 0 and shown.exception is None, shown.output
    about = json.loads(shown.stdout)
    assert isinstance(about["metrics"], dict) and isinstance(about["training"], dict)
    assert isinstance(about["versions"], dict)
    assert about["best_epochs"] is None or isinstance(about["best_epochs"], list)
    assert all(isinstance(report, dict) for report in about["metrics"].values())


@pytest.mark.parametrize("key, value, said", [
    ("metrics", [1, 2], "its metrics is [1, 2], not an object: left out"),
    ("versions", "1.0", "its versions is '1.0', not an object: left out"),
    ("best_epochs", 3, "its best_epochs is 3, not a list: left out"),
])
def test_a_training_record_of_another_shape_is_left_out_with_a_warning(
        tmp_path, model_path, logged, key, value, said):
    import shutil

    from forgery import in_meta, resigned

    path = tmp_path / "model.pt"
    shutil.copy(model_path, path)
    resigned(path, in_meta(lambda meta: meta["info"].update({key: value})))
    about = modelinfo.describe(path)
    assert f"{path}: {said}" in logged.text
    assert about[{"metrics": "metrics", "versions": "versions"}.get(key, key)] in ({}, None)


def test_a_split_whose_metrics_are_no_object_is_left_out(tmp_path, model_path, logged):
    import shutil

    from forgery import in_meta, resigned

    path = tmp_path / "model.pt"
    shutil.copy(model_path, path)
    resigned(path, in_meta(lambda meta: meta["info"]["metrics"].update(val=[0.5])))
    about = modelinfo.describe(path)
    assert sorted(about["metrics"]) == ["test", "train"]
    assert "its metrics of 'val' are [0.5], not an object: left out" in logged.text


def test_info_of_a_fill_model_shows_the_medians_and_the_missing_inputs(tmp_path):
    table = simulate.galaxies(n=200, size=8, seed=1)
    features = [c for c in table.frame.columns if c not in table.targets]
    feature = features[1]
    table.frame.loc[::5, feature] = float("nan")
    path, result = _saved(tmp_path, table, "filled", nan="fill")
    about = modelinfo.describe(path)
    filler = result.predictor.filler
    assert about["nan_fill"][1] == {"feature": feature, "median": filler.medians[1],
                                    "indicator": f"{feature}_missing"}
    assert about["nan_fill"][0]["indicator"] is None
    json.dumps(about)
    text = " ".join(_info_text(path).split())
    assert f"filled with the training median: {features[0]} " in text
    assert f"(input {feature}_missing)" in text


def test_info_of_a_model_without_fill_says_nothing_of_filling(tmp_path):
    path, _ = _saved(tmp_path, simulate.galaxies(n=200, size=8, seed=1), "g")
    assert modelinfo.describe(path)["nan_fill"] is None
    assert "missing values" not in _info_text(path)


def _with_stations(levels, n=300):
    """Earthquakes with a column of ``levels`` station names."""
    table = simulate.earthquakes(n=n, seed=2)
    table.frame["station"] = [f"st{i % levels:03d}" for i in range(n)]
    return table


def test_embedded_is_none_unless_a_column_is_embedded(tmp_path):
    plain, _ = _saved(tmp_path, simulate.earthquakes(n=300, seed=2), "plain")
    one_hot, _ = _saved(tmp_path, _with_stations(3), "one_hot")
    embedded, result = _saved(tmp_path, _with_stations(70), "embedded",
                              categorical=["station"])
    assert [modelinfo.describe(p)["categories"] is None for p in (plain, one_hot)] == \
        [True, False]
    assert [modelinfo.describe(p)["embedded"] for p in (plain, one_hot)] == [None, None]
    (_, rows, width), = result.predictor.net.config.levels
    assert rows == 71 and modelinfo.describe(embedded)["embedded"] == {"station": width}
    assert "levels of station │ one-hot, 'st000', 'st001', 'st002', <unknown>" in \
        _info_text(one_hot)
    assert f"levels of station │ embedded, 70 levels, dim {width}, 'st000'" in \
        _info_text(embedded)
