"""Saved files edited as a careful forger would edit them (the digest signed anew, so that only
the loader's own checks can refuse them), or damaged as a disk would damage them."""

import json

import torch

from fcnn_cli.network import checkpoint
from fcnn_cli.results import runs
from nodes import URANDOM, ZERO, make_device


def in_meta(change):
    """An edit of a checkpoint's payload that applies ``change`` to its metadata dict."""
    def edit(payload):
        meta = json.loads(payload["meta"])
        change(meta)
        payload["meta"] = json.dumps(meta)
    return edit


def resign(payload):
    payload["sha256"] = checkpoint.digest(payload["meta"], payload["state"])


def resigned(path, edit):
    """The checkpoint at ``path`` with ``edit`` applied to its payload, signed anew."""
    payload = torch.load(path, weights_only=True)
    edit(payload)
    resign(payload)
    torch.save(payload, path)


def state(path):
    """The training state saved at ``path`` without its digest: edited, it is signed anew by
    ``runs.write_state``, so that only the checks of its contents can refuse it."""
    saved = torch.load(path, weights_only=True)
    del saved[runs.DIGEST_KEY]
    return saved


def flip_bit(path, part, byte, bit):
    """Flip one bit of the bytes that the tensor ``part(state)`` of the state file ``path`` has
    in the file, in place, as a disk or a copy damages it; the file still loads."""
    raw = path.read_bytes()
    before = part(torch.load(path, weights_only=True)).clone()
    data = before.contiguous().numpy().tobytes()
    at = raw.find(data)
    while at >= 0:  # where another part holds the same bytes, the next place
        damaged = bytearray(raw)
        damaged[at + byte] ^= 1 << bit
        path.write_bytes(damaged)
        after = part(torch.load(path, weights_only=True))
        if not torch.equal(after, before):
            assert (after != before).sum() == 1
            return
        at = raw.find(data, at + 1)
    raise AssertionError("the part's bytes are not in the file")


# Checkpoints damaged as a disk or a forger would damage them, and nodes in their place.

FEATURES = ["tp1", "ts1", "tp2", "ts2", "tp3", "ts3", "tp4", "ts4"]


def tiny_predictor(kind="regress"):
    from fcnn_cli.network import tasks
    from fcnn_cli.network.model import MLP, NetConfig
    from fcnn_cli.network.predictor import Predictor
    from fcnn_cli.data.preprocess import Scaler

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
    base, edit, signed_anew, _ = CORRUPTIONS[name]
    path = tmp_path / "model.pt"
    checkpoint.save(tiny_predictor(base), path)
    payload = torch.load(path, weights_only=True)
    if edit.__code__.co_argcount == 2:  # an edit of the file's bytes
        path.write_bytes(edit(path.read_bytes(), payload))
        return path
    edit(payload)
    if signed_anew:  # a careful forger: the digest matches the edited contents
        resign(payload)
    torch.save(payload, path)
    return path


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
