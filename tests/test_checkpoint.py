import pickle

import numpy as np
import pytest
import torch

from fcnn_cli import checkpoint
from fcnn_cli.errors import FcnnError


def test_round_trip_gives_identical_predictions(tmp_path, trained, quakes):
    path = tmp_path / "m.pt"
    checkpoint.save(trained.predictor, path)
    loaded = checkpoint.load(path)
    x = trained.predictor.feature_matrix(quakes)
    np.testing.assert_array_equal(loaded.outputs(x), trained.predictor.outputs(x))
    assert loaded.features == trained.predictor.features
    assert loaded.targets == ["x", "y"] and loaded.units["x"] == "km"
    assert loaded.net.config == trained.predictor.net.config
    assert loaded.info["metrics"] == trained.metrics
    assert loaded.info["versions"]["torch"] == torch.__version__


def test_predict_matches_features_by_name_in_any_order(model_path, quakes):
    from fcnn_cli.tables import Table

    predictor = checkpoint.load(model_path)
    shuffled = Table(quakes.frame[quakes.frame.columns[::-1]], name="rev")
    np.testing.assert_array_equal(predictor.predict(shuffled).to_numpy(),
                                  predictor.predict(quakes).to_numpy())


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_pickled_code_is_refused_and_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": "fcnn-checkpoint", "format_version": 1, "x": _RunsCode()}, path)
    with pytest.raises(FcnnError, match="refused"):
        checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()
    path.write_bytes(pickle.dumps(_RunsCode()))
    with pytest.raises(FcnnError):
        checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()


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
    from fcnn_cli.tables import Table

    frame = quakes.frame.copy()
    frame.loc[:4, "tp1"] = 1e4
    predictor = checkpoint.load(model_path)
    predictor.predict(Table(frame, name="far.csv"))
    assert "5 row(s) hold values far outside the training range" in caplog.text
