import pickle

import numpy as np
import pandas as pd
import pytest
import torch

import forgery
from forgery import in_meta, resigned
from nodes import URANDOM, ZERO, make_device
from fcnn_cli import checkpoint
from fcnn_cli.errors import FcnnError


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


# --- Damaged, edited and special checkpoint files (issue #10) -----------------------------------
# Small predictors built directly (no training), on the earthquake features, so that the CLI
# cases in test_bad_inputs.py can apply them to a real table.

FEATURES = ["tp1", "ts1", "tp2", "ts2", "tp3", "ts3", "tp4", "ts4"]


def tiny_predictor(kind="regress"):
    from fcnn_cli import tasks
    from fcnn_cli.model import MLP, NetConfig
    from fcnn_cli.predictor import Predictor
    from fcnn_cli.preprocess import Scaler

    torch.manual_seed(7)
    if kind == "regress":
        # width 80: the second layer's weights fill 25 600 bytes, room for 16 KB of zeros
        net = MLP(NetConfig(n_in=8, n_out=2, depth=2, width=80, batchnorm=True))
        for name, buffer in net.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
        task = tasks.Regression(["x", "y"], Scaler("standard", [1.0, -2.0], [30.0, 40.0]))
    else:
        net = MLP(NetConfig(n_in=8, n_out=3, depth=1, width=16))
        task = tasks.Classification("kind", ["east", "north", "west"])
    return Predictor(net=net.eval(), features=list(FEATURES),
                     x_scaler=Scaler("standard", [10.0] * 8, [5.0] * 8), task=task,
                     units={"x": "km", "y": "km"} if kind == "regress" else {},
                     feature_range={"min": [0.0] * 8, "max": [40.0] * 8})



def in_tensor(name, change):
    def edit(payload):
        payload["state"][name] = change(payload["state"][name])
    return edit


def set_item(*keys, value):
    def change(d):
        for key in keys[:-1]:
            d = d[key]
        d[keys[-1]] = value(d[keys[-1]]) if callable(value) else value
    return change


def with_nan(t):
    t = t.clone()
    t.view(-1)[3] = float("nan")
    return t


def in_bytes(tensor, start, length, damage):
    """Damage ``length`` bytes of the file from ``start`` bytes into ``tensor``'s data."""
    def edit(data, payload):
        at = data.index(payload["state"][tensor].numpy().tobytes()) + start
        return data[:at] + damage(data[at:at + length]) + data[at + length:]
    return edit


def damaged_pickle(data, payload):
    """20 bytes of the pickled structure, just before the format name, set to 0xFF."""
    at = data.index(b"fcnn-checkpoint")
    return data[:at - 20] + b"\xff" * 20 + data[at:]


def to_version_1(payload):
    del payload["sha256"]
    payload["format_version"] = 1


def both(*edits):
    def edit(payload):
        for e in edits:
            e(payload)
    return edit


W1 = "body.1.0.weight"  # the regression network's 80 × 80 weights
# name: (base predictor, edit of the payload or of the file's bytes, digest recomputed after
# the edit, what the one error line must say)
CORRUPTIONS = {
    "flipped_bytes": ("regress", in_bytes(W1, 4000, 64, lambda b: bytes(c ^ 0xA5 for c in b)),
                      False, "digest"),
    "zeroed_16k": ("regress", in_bytes(W1, 1000, 16384, lambda b: bytes(len(b))), False,
                   "digest"),
    "zeroed_header": ("regress", lambda data, payload: bytes(16384) + data[16384:], False,
                      "not an fcnn checkpoint (not a file written by torch.save)"),
    "pickle_damaged": ("regress", damaged_pickle, False, "not an fcnn checkpoint ("),
    "truncated": ("classify", lambda data, payload: data[:len(data) // 2], False,
                  "not an fcnn checkpoint (not a file written by torch.save)"),
    "nan_weights_stale_digest": ("regress", in_tensor("head.weight", with_nan), False,
                                 "digest"),
    "activation_stale_digest": ("regress", in_meta(set_item("net", "activation", value="relu")),
                                False, "digest"),
    "digest_missing": ("regress", lambda payload: payload.pop("sha256"), False, "digest"),
    "nan_weights": ("regress", in_tensor("head.weight", with_nan), True,
                    "'head.weight' holds NaN"),
    "inf_bias": ("classify", in_tensor("body.0.0.bias", lambda t: t.fill_(float("inf"))), True,
                 "'body.0.0.bias' holds NaN or infinite"),
    "negative_variance": ("regress", in_tensor("body.0.1.running_var", lambda t: -t), True,
                          "negative variance"),
    "float64_weights": ("regress", in_tensor("head.weight", lambda t: t.double()), True,
                        "'head.weight' is torch.float64"),
    "float16_weights": ("regress", in_tensor(W1, lambda t: t.half()), True,
                        f"'{W1}' is torch.float16"),
    "complex_weights": ("classify", in_tensor("head.weight", lambda t: t.to(torch.complex64)),
                        True, "'head.weight' is torch.complex64"),
    "sparse_weights": ("regress", in_tensor("head.weight", lambda t: t.to_sparse()), False,
                       "'head.weight' is not a dense tensor (layout torch.sparse_coo)"),
    "zero_stride_weights": ("regress", in_tensor(W1, lambda t: t[:1, :1].expand(80, 80)), False,
                            f"'{W1}' is not contiguous (strides (0, 0))"),
    "wrong_shape": ("regress", in_tensor("head.weight", lambda t: torch.cat([t, t])), True,
                    "'head.weight' has shape [4, 80]; the network needs [2, 80]"),
    "missing_tensor": ("regress", lambda payload: payload["state"].pop("head.bias"), True,
                       "no tensor 'head.bias'"),
    "extra_tensor": ("classify", lambda payload: payload["state"].update(extra=torch.zeros(3)),
                     True,
                     "'extra' belongs to no layer"),
    "features_short": ("regress", in_meta(set_item("features", value=lambda f: f[:-1])), True,
                       "7 feature name(s) for a network of 8 input(s)"),
    "features_twice": ("classify", in_meta(set_item("features", 1, value="tp1")), True,
                       "features name 'tp1' more than once"),
    "features_not_names": ("regress", in_meta(set_item("features", 0, value=3)), True,
                           "features are not all names"),
    "scaler_short": ("regress", in_meta(set_item("x_scaler", "scale", value=lambda v: v[:-1])),
                     True, "x_scaler scale holds 7 value(s), not 8"),
    "scaler_long": ("classify", in_meta(set_item("x_scaler", "shift", value=lambda v: v * 2)),
                    True, "x_scaler shift holds 16 value(s), not 8"),
    "scaler_zero": ("regress", in_meta(set_item("x_scaler", "scale", 2, value=0.0)), True,
                    "x_scaler scale holds a zero"),
    "scaler_below_float32": ("regress", in_meta(set_item("x_scaler", "scale", 2, value=1e-300)),
                             True, "x_scaler scale holds a zero"),
    "scaler_subnormal": ("regress", in_meta(set_item("x_scaler", "scale", 2, value=1e-45)),
                         True, "x_scaler scale holds a value too small to divide by"),
    "scaler_nan": ("regress", in_meta(set_item("x_scaler", "shift", 0, value=float("nan"))),
                   True, "x_scaler shift holds a value that is not finite"),
    "scaler_text": ("classify", in_meta(set_item("x_scaler", "scale", value="1")), True,
                    "x_scaler scale is not a list of numbers"),
    "scaler_method": ("regress", in_meta(set_item("x_scaler", "method", value="log")), True,
                      "x_scaler: unknown method 'log'"),
    "range_short": ("regress", in_meta(set_item("feature_range", "min", value=lambda v: v[:3])),
                    True, "feature_range min holds 3 value(s), not 8"),
    "range_inverted": ("classify", in_meta(set_item("feature_range", "min", 0, value=99.0)),
                       True, "feature_range has a min above its max"),
    "range_infinite": ("regress", in_meta(set_item("feature_range", "max", 1,
                                                   value=float("inf"))),
                       True, "feature_range max holds a value that is not finite"),
    "range_keys": ("regress", in_meta(set_item("feature_range", value={"lo": [], "hi": []})),
                   True, "feature_range needs exactly 'min' and 'max'"),
    "activation_unknown": ("regress", in_meta(set_item("net", "activation", value="swish")),
                           True, "unknown activation 'swish'"),
    "depth_text": ("regress", in_meta(set_item("net", "depth", value="2")), True,
                   "net: depth is '2'"),
    "width_edited": ("classify", in_meta(set_item("net", "width", value=17)), True,
                     "has shape [16, 8]; the network needs [17, 8]"),
    "net_missing": ("regress", in_meta(lambda meta: meta.pop("net")), True,
                    "no 'net' in the metadata"),
    "targets_extra": ("regress", in_meta(set_item("task", "targets", value=["x", "y", "z"])),
                      True, "3 regression target(s) for a network of 2 output(s)"),
    "target_scaler_short": ("regress", in_meta(set_item("task", "scaler", "shift",
                                                        value=lambda v: v[:1])),
                            True, "target scaler shift holds 1 value(s), not 2"),
    "target_scaler_zero": ("regress", in_meta(set_item("task", "scaler", "scale", 1, value=0)),
                           True, "target scaler scale holds a zero"),
    "classes_fewer": ("classify", in_meta(set_item("task", "classes", value=["east", "west"])),
                      True, "2 classes with a softmax output need 2 network output(s), not 3"),
    "classes_twice": ("classify", in_meta(set_item("task", "classes", 2, value="east")), True,
                      "classes name 'east' more than once"),
    "sigmoid_three_classes": ("classify", in_meta(set_item("task", "output", value="sigmoid")),
                              True, "a sigmoid output is for two classes, not 3"),
    "class_weights_short": ("classify", in_meta(set_item("task", "weights", value=[1.0])), True,
                            "class weights holds 1 value(s), not 3"),
    "kind_unknown": ("regress", in_meta(set_item("task", "kind", value="regression")), True,
                     "unknown task kind 'regression'"),
    "kind_classify_on_regression_head": (
        "regress", in_meta(set_item("task", value={"kind": "classify", "target": "x",
                                                   "classes": ["a", "b", "c"]})),
        True, "3 classes with a softmax output need 3 network output(s), not 2"),
    "kind_regress_on_classifier_head": (
        "classify", in_meta(set_item("task", value={
            "kind": "regress", "targets": ["kind"],
            "scaler": {"method": "none", "shift": [0.0], "scale": [1.0]}})),
        True, "1 regression target(s) for a network of 3 output(s)"),
    "meta_not_json": ("regress", lambda payload: payload.update(meta="{net"), True,
                      "the metadata is not valid JSON"),
    "meta_a_list": ("regress", lambda payload: payload.update(meta="[]"), True,
                    "the metadata is not a JSON object"),
    "state_not_tensors": ("classify", lambda payload: payload.update(state={"w": "1"}), False,
                          "the weights are not a table of named tensors"),
    "version_1_nan_weights": ("regress", both(to_version_1, in_tensor(W1, with_nan)), False,
                              f"'{W1}' holds NaN"),
    "version_1_short_scaler": ("classify", both(to_version_1, in_meta(
        set_item("x_scaler", "shift", value=lambda v: v[:2]))), False,
        "x_scaler shift holds 2 value(s), not 8"),
}


def corrupted(tmp_path, name):
    """A checkpoint damaged as CORRUPTIONS[name] says, at tmp_path/model.pt."""
    base, edit, resign, _ = CORRUPTIONS[name]
    path = tmp_path / "model.pt"
    checkpoint.save(tiny_predictor(base), path)
    payload = torch.load(path, weights_only=True)
    if edit.__code__.co_argcount == 2:  # an edit of the file's bytes
        path.write_bytes(edit(path.read_bytes(), payload))
        return path
    edit(payload)
    if resign:  # a careful forger: the digest matches the edited contents
        forgery.resign(payload)
    torch.save(payload, path)
    return path


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
    from fcnn_cli.model import MLP, NetConfig

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


def special_file(tmp_path, kind):
    """model.pt as a FIFO, a device node (made here, never the system's own) or a link to one."""
    import os

    target = tmp_path / f"node-{kind}"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    else:
        make_device(target, {"zero": ZERO, "urandom": URANDOM}[kind])
    link = tmp_path / "model.pt"
    link.symlink_to(target)
    return link, target


SPECIAL = {"fifo": "a FIFO", "zero": "a character device", "urandom": "a character device",
           "directory": "is a directory"}


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


def test_reads_stop_at_the_size_the_file_had_when_checked(tmp_path):
    import os

    path = tmp_path / "grows.pt"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDONLY)
    try:
        window = checkpoint._Window(fd, os.fstat(fd).st_size)
        with open(path, "ab") as f:
            f.write(b"more and more")
        assert window.read() == b"0123456789"
        window.seek(-4, os.SEEK_END)
        assert window.read(100) == b"6789" and window.read(5) == b""
    finally:
        os.close(fd)


def many_classes_predictor(n_classes):
    """A network with ``n_classes`` outputs whose info carries the full metric report that
    training writes: per-class tables and an n × n confusion matrix."""
    from fcnn_cli import tasks
    from fcnn_cli.model import MLP, NetConfig
    from fcnn_cli.predictor import Predictor
    from fcnn_cli.preprocess import Scaler

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
    from fcnn_cli.tables import Table

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


def test_a_compressed_or_broken_zip_is_refused_before_anything_is_inflated(tmp_path, model_path):
    import zipfile

    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(model_path) as src, \
            zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("model/data/999", bytes(50_000_000))  # 50 MB that deflates to ~50 KB
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(FcnnError, match="compressed entries"):
        checkpoint.load(bomb)
    data = bytearray(model_path.read_bytes())
    data[-35] ^= 0x40  # the zip64 end-of-central-directory locator: zipfile's own error
    broken = tmp_path / "broken.pt"
    broken.write_bytes(bytes(data))
    with pytest.raises(FcnnError, match="not an fcnn checkpoint"):
        checkpoint.load(broken)


def test_a_zip_of_a_version_python_cannot_read_is_refused(tmp_path, model_path):
    data = bytearray(model_path.read_bytes())
    central = data.index(b"PK\x01\x02")  # the first entry of the central directory
    data[central + 6] = 64  # "version needed to extract": 6.4, which zipfile does not implement
    odd = tmp_path / "odd.pt"
    odd.write_bytes(bytes(data))
    with pytest.raises(FcnnError, match="not an fcnn checkpoint"):
        checkpoint.load(odd)


@pytest.mark.cuda
def test_round_trip_on_cuda_within_float32_rounding(tmp_path, quakes):
    """Trained on a GPU, saved, loaded on the CPU and on the GPU: the outputs agree within
    float32 rounding (the GPU's products sum in another order than the CPU's)."""
    from fcnn_cli import train

    result = train.fit(quakes, train.TrainConfig(epochs=2, batch_size=64, device="cuda"))
    path = tmp_path / "m.pt"
    checkpoint.save(result.predictor, path)
    x = result.predictor.feature_matrix(quakes)
    trained = result.predictor.outputs(x)
    for device in ("cuda", "cpu"):
        np.testing.assert_allclose(checkpoint.load(path, device).outputs(x), trained,
                                   rtol=1e-5, atol=1e-5)
    assert checkpoint.load(path).info["device"] == "cuda"

