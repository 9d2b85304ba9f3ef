"""The baseline interface: the registry, a new baseline joining with one entry, and the file
every baseline is saved in, read as untrusted input."""

import json
import pickle

import numpy as np
import pytest
import torch

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.network import baseline, tasks
from fcnn_cli.network.checkpoint import digest


class Mean:
    """A baseline of the simplest kind, as a physics baseline would join: the weighted mean
    of the training labels for every row."""

    name = "mean"

    def __init__(self):
        self.mean, self.info = None, {}

    def check(self, task, n_features):
        if task.kind != "regress":
            raise FcnnError("the mean baseline is for regression")

    def fit(self, x_train, y_train, w_train, x_val, y_val, w_val, task):
        self.check(task, x_train.shape[1])
        self.mean = np.average(y_train, axis=0, weights=w_train)
        return self

    def predict(self, x):
        return np.repeat(self.mean[None], len(x), axis=0)

    def save(self, path):
        baseline.write(path, self.name, {"info": self.info},
                       {"mean": torch.from_numpy(self.mean)})

    @classmethod
    def load(cls, path):
        name, meta, state = baseline.read(path)
        made = cls()
        made.mean, made.info = state["mean"].numpy(), meta["info"]
        return made


@pytest.fixture
def with_mean(monkeypatch):
    entry = baseline.Entry(__name__, "Mean", "the training labels' weighted mean")
    monkeypatch.setitem(baseline.BASELINES, "mean", entry)


def regression():
    from fcnn_cli.data.preprocess import Scaler

    return tasks.Regression(["x", "y"], Scaler("standard", [0.0, 0.0], [1.0, 1.0]))


def test_gbdt_is_registered_and_offers_the_interface():
    cls = baseline.kind("gbdt")
    made = baseline.make("gbdt", rounds=5)
    assert cls.name == "gbdt" and isinstance(made, cls) and made.options["rounds"] == 5
    assert isinstance(made, baseline.Baseline)
    assert "fcnn[gbdt]" in baseline.BASELINES["gbdt"].summary


def test_an_unknown_baseline_is_one_line_that_names_the_known():
    with pytest.raises(FcnnError, match=r"^unknown baseline 'tmva' \(known: gbdt, locator\)$"):
        baseline.make("tmva")


def test_a_new_baseline_joins_with_one_entry(with_mean, tmp_path):
    y = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 60.0]])
    model = baseline.make("mean").fit(np.zeros((3, 2), np.float32), y, np.array([1, 1, 2.0]),
                                      None, None, None, regression())
    assert isinstance(model, baseline.Baseline)
    model.save(tmp_path / "m.pt")
    loaded = baseline.load(tmp_path / "m.pt")
    assert isinstance(loaded, Mean)
    np.testing.assert_array_equal(loaded.predict(np.zeros((2, 2))), [[3.5, 37.5]] * 2)
    with pytest.raises(FcnnError, match="for regression"):
        loaded.check(tasks.Classification("c", ["a", "b"]), 2)


def saved(tmp_path, with_mean, change=None, sign=True):
    """A baseline file of the mean baseline, its payload changed by ``change``."""
    path = tmp_path / "m.pt"
    Mean().fit(np.zeros((2, 1), np.float32), np.ones((2, 2)), None, None, None, None,
               regression()).save(path)
    if change:
        payload = torch.load(path, weights_only=True)
        change(payload)
        if sign:
            payload["sha256"] = digest(payload["meta"], payload["state"])
        torch.save(payload, path)
    return path


def set_key(key, value):
    return lambda payload: payload.__setitem__(key, value)


@pytest.mark.parametrize("change, sign, said", [
    (set_key("format_version", 2), True, "format version 2 is newer than this fcnn"),
    (set_key("format_version", "1"), True, "not an fcnn baseline \\(format version '1'\\)"),
    (set_key("format", "fcnn-checkpoint"), True, "not an fcnn baseline$"),
    (set_key("baseline", "tmva"), True, "of an unknown kind 'tmva'"),
    (set_key("meta", "{"), True, "metadata is not valid JSON"),
    (set_key("meta", "[]"), True, "not a JSON object"),
    (set_key("state", {"mean": [1.0]}), False, "not a table of named tensors"),
    (lambda p: p["state"].__setitem__("mean", torch.zeros(4)[::2]), False,
     r"not contiguous \(strides \(2,\)\)"),
    (lambda p: p["state"]["mean"].add_(1.0), False, "do not match the SHA-256 digest"),
    (lambda p: p.pop("sha256"), False, "do not match the SHA-256 digest"),
])
def test_a_damaged_envelope_is_refused_in_one_line(tmp_path, with_mean, change, sign, said):
    path = saved(tmp_path, with_mean, change, sign)
    with pytest.raises(FcnnError, match=said) as e:
        baseline.load(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


class Planted:
    """A pickle that would leave a file behind if unpickling ran it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_file_that_would_run_code_is_refused_without_running_it(tmp_path, with_mean):
    marker = tmp_path / "ran"
    path = saved(tmp_path, with_mean, lambda p: p.__setitem__("meta", Planted(marker)),
                 sign=False)
    with pytest.raises(FcnnError, match="refused: the file holds Python objects") as e:
        baseline.load(path)
    assert not marker.exists() and "\n" not in str(e.value)


@pytest.mark.parametrize("content, said", [
    (b"not a model\n", "not an fcnn baseline"),
    (pickle.dumps({"format": "fcnn-baseline"}), "not an fcnn baseline"),
    (json.dumps({"format": "fcnn-baseline"}).encode(), "not an fcnn baseline"),
])
def test_other_files_are_refused_in_one_line(tmp_path, content, said):
    path = tmp_path / "m.pt"
    path.write_bytes(content)
    with pytest.raises(FcnnError, match=said) as e:
        baseline.load(path)
    assert "\n" not in str(e.value)


def test_a_baseline_is_not_read_from_stdin():
    with pytest.raises(FcnnError, match="not read from stdin"):
        baseline.load("-")


def test_a_file_of_another_baseline_is_refused_by_a_class(tmp_path, with_mean):
    from fcnn_cli.network.gbdt import GradientBoostedTrees

    with pytest.raises(FcnnError, match="a mean baseline, not a gbdt one"):
        GradientBoostedTrees.load(saved(tmp_path, with_mean))


def test_the_options_baseline_names_are_the_baselines_table():
    from fcnn_cli.core.config import BASELINE_NAMES
    from fcnn_cli.network.baseline import BASELINES

    assert set(BASELINE_NAMES) == set(BASELINES)
