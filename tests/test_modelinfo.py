import io
import json

import pytest

from fcnn_cli import checkpoint, modelinfo, simulate, train
from fcnn_cli.tables import Table


def _saved(tmp_path, table, name, net=None, **config):
    result = train.fit(table, train.TrainConfig(epochs=1, batch_size=64, **config), net=net)
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
    from fcnn_cli.errors import FcnnError

    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x80\x04not a zip")
    with pytest.raises(FcnnError, match="not an fcnn checkpoint"):
        modelinfo.describe(bad)


def _info_text(path):
    from rich.console import Console

    from fcnn_cli.report import info_tables

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
