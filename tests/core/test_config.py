"""The options of a network and of its training: every value checked, once, in config.py."""

import math
import re

import numpy as np

import pytest

from fcnn_cli.core.config import (MAX_COUNT, MAX_SEED, NetConfig, TrainConfig, check_columns,
                             check_threshold, valid_seed)
from fcnn_cli.core.errors import FcnnError


@pytest.mark.parametrize("field", ["lr", "weight_decay", "momentum", "ema", "val_frac",
                                   "test_frac"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_no_float_option_of_training_is_infinite_or_nan(field, value):
    with pytest.raises(FcnnError, match=f"^{field} must be") as error:
        TrainConfig(**{field: value})
    assert field in error.value.options


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_dropout_is_finite(value):
    with pytest.raises(FcnnError, match="^dropout must be in"):
        NetConfig(n_in=1, n_out=1, dropout=value)


@pytest.mark.parametrize("cls, values, message", [
    (TrainConfig, {"epochs": "3"}, "epochs must be an integer or none, not '3'"),
    (TrainConfig, {"epochs": True}, "epochs must be an integer or none, not True"),
    (TrainConfig, {"epochs": 2.0}, "epochs must be an integer or none, not 2.0"),
    (TrainConfig, {"lr": "0.1"}, "lr must be a number, not '0.1'"),
    (TrainConfig, {"fast": "yes"}, "fast must be true or false, not 'yes'"),
    (TrainConfig, {"threads": 2.5}, "threads must be an integer or none, not 2.5"),
    (TrainConfig, {"optimizer": 5}, "optimizer must be a name, not 5"),
    (TrainConfig, {"batch_size": [32] * 50}, r"batch_size must be an integer, not \[32, "
                                             r"32, .*\.\.\.$"),
    (NetConfig, {"n_in": "3"}, "n_in must be an integer, not '3'"),
    (NetConfig, {"depth": [3]}, r"depth must be an integer, not \[3\]"),
    (NetConfig, {"batchnorm": 1}, "batchnorm must be true or false, not 1"),
    (NetConfig, {"activation": 3}, "activation must be a name or none, not 3"),
])
def test_every_option_has_its_type(cls, values, message):
    sizes = {"n_in": 2, "n_out": 1} if cls is NetConfig else {}
    with pytest.raises(FcnnError, match=f"^{message}"):
        cls(**{**sizes, **values})


def test_numpy_numbers_become_python_numbers():
    config = TrainConfig(epochs=np.int64(3), lr=np.float32(0.5), weight_decay=1)
    assert (config.epochs, config.lr, config.weight_decay) == (3, 0.5, 1.0)
    assert type(config.epochs) is int and type(config.lr) is float
    assert type(config.weight_decay) is float
    assert type(NetConfig(n_in=np.int32(2), n_out=1).n_in) is int


@pytest.mark.parametrize("values, message", [
    ({"seed": -1}, "seed must be a whole number from 0 to 9223372036854775807, not -1"),
    ({"seed": 2 ** 64}, "seed must be a whole number from 0"),
    ({"threads": 0}, "threads must be between 1 and 1024, not 0"),
    ({"threads": 10 ** 11}, "threads must be between 1 and 1024"),
])
def test_seed_and_threads_in_range(values, message):
    with pytest.raises(FcnnError, match=f"^{message}"):
        TrainConfig(**values)
    assert TrainConfig(seed=MAX_SEED, threads=1024).seed == MAX_SEED


@pytest.mark.parametrize("values, message", [
    ({"lr": math.inf}, "lr must be finite and > 0, not inf"),
    ({"lr": 0.0}, "lr must be finite and > 0, not 0.0"),
    ({"epochs": 0}, "epochs must be at least 1, not 0"),
    ({"epochs": 10 ** 20}, "epochs must be at most 2147483647, not 100000000000000000000"),
    ({"batch_size": 2 ** 63 - 1}, "batch_size must be at most 2147483647"),
    ({"patience": -1}, "patience must be ≥ 0, not -1"),
    ({"patience": 2 ** 31}, "patience must be at most 2147483647"),
    ({"shuffle_buffer": 2 ** 40}, "shuffle_buffer must be at most 2147483647"),
])
def test_counts_and_rates_are_sane(values, message):
    with pytest.raises(FcnnError, match=f"^{re.escape(message)}"):
        TrainConfig(**values)
    most = TrainConfig(epochs=MAX_COUNT, batch_size=MAX_COUNT, patience=MAX_COUNT)
    assert (most.epochs, most.batch_size, most.patience) == (MAX_COUNT,) * 3


@pytest.mark.parametrize("targets, features, message", [
    (("x", "x"), None, "targets names column 'x' twice"),
    (("x",), ["a", "a"], "features names column 'a' twice"),
    (("x", "y"), ["a", "y"], "column 'y' is both a label and a feature"),
])
def test_columns_are_named_once(targets, features, message):
    with pytest.raises(FcnnError, match=f"^{message}$"):
        check_columns(targets, features)
    check_columns(("x", "y"), ["a", "b"])
    check_columns((), None)


@pytest.mark.parametrize("threshold", [-0.1, 1.5, math.nan, math.inf])
def test_threshold_is_a_probability(threshold):
    with pytest.raises(FcnnError, match=r"^threshold must be in \[0, 1\]"):
        check_threshold(threshold)
    for ok in (None, 0.0, 0.5, 1.0):
        check_threshold(ok)


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 10 ** 20, 1.5, "1", None])
def test_seeds_out_of_range_or_not_whole_are_refused(seed):
    assert not valid_seed(seed)
    with pytest.raises(FcnnError, match="^seed must be (a whole number from 0 to|an integer)"):
        TrainConfig(seed=seed)


@pytest.mark.parametrize("seed", [0, 1, MAX_SEED, np.int64(5), np.uint64(MAX_SEED)])
def test_seeds_every_generator_takes(seed):
    import torch

    assert TrainConfig(seed=seed).seed == seed
    np.random.default_rng(seed)
    torch.manual_seed(seed)
    torch.Generator().manual_seed(int(seed))


def test_precision_is_one_of_three():
    from fcnn_cli.core.config import TrainConfig

    assert TrainConfig().precision == "fp32"
    for precision in ("fp32", "tf32", "bf16"):
        assert TrainConfig(precision=precision).precision == precision
    with pytest.raises(FcnnError, match="^unknown precision 'fp16'; choose from fp32, tf32, "
                                        "bf16$") as error:
        TrainConfig(precision="fp16")
    assert error.value.options == ("precision",)


def test_cli_refuses_an_unknown_precision(runner, quakes_csv):
    from fcnn_cli.commands import cli

    out = runner.invoke(cli, ["train", str(quakes_csv), "--precision", "fp16"])
    assert out.exit_code == 2 and "'fp16' is not one of 'fp32', 'tf32', 'bf16'" in out.output


@pytest.mark.parametrize("position, message", [
    (["x"], "2 or 3 labels of a point, not 1"), (["x", "x"], "column 'x' twice"),
    ("x,y", "position must be a list of names or none"), (["a", "b", "c", "d"], "not 4")])
def test_position_is_checked_with_the_options(position, message):
    with pytest.raises(FcnnError, match=message):
        TrainConfig(position=position)


@pytest.mark.parametrize("by, bins, edges, message", [
    ([], 5, None, "need by"), (["a", "b", "c"], None, None, "1 or 2 columns, not 3"),
    (["a"], 5, [[0, 1]], "bins or edges, not both"), (["a"], 0, None, "between 1 and 1000"),
    (["a", "b"], None, [[0, 1]], "one list for each of the 2"),
    (["a"], None, [[0, 0]], "increasing order"), (["a"], None, [[0, float("inf")]], "finite"),
    (["a", "a"], None, None, "twice"), (["a", "b"], 1000, None, "1000000 bin cells in all"),
    (["a", "b"], None, [list(range(202)), list(range(51))], "10050 bin cells in all")])
def test_bins_are_checked(by, bins, edges, message):
    from fcnn_cli.core.config import check_bins

    with pytest.raises(FcnnError, match=message):
        check_bins(by, bins, edges)


@pytest.mark.parametrize("text, parsed", [("eff=0.7", ("signal_efficiency", 0.7)),
                                          ("bkg=0.01", ("background_efficiency", 0.01)),
                                          (" eff = 1", ("signal_efficiency", 1.0)), (None, None)])
def test_a_working_point_is_a_signal_or_background_efficiency(text, parsed):
    from fcnn_cli.core.config import parse_working_point

    assert parse_working_point(text) == parsed


@pytest.mark.parametrize("options, message", [
    ({"working_point": "eff=0"}, "working_point must be eff=E .* not 'eff=0'"),
    ({"working_point": "sig=0.5"}, "working_point must be eff=E"),
    ({"working_point": "eff=x"}, "working_point must be eff=E"),
    ({"lumi": 0.0}, "lumi must be finite and > 0, not 0.0"),
    ({"lumi": float("inf")}, "lumi must be finite and > 0"),
    ({"baseline": "bdt"}, "unknown baseline 'bdt'; choose from gbdt"),
    ({"signal": "  "}, "signal must name a class, not '  '"),
])
def test_the_figures_of_merit_options_are_checked(options, message):
    with pytest.raises(FcnnError, match=message):
        TrainConfig(**options)


@pytest.mark.parametrize("rows, epochs", [
    (1, 500), (600, 500), (2000, 500), (2001, 500), (3000, 334), (16_667, 60), (18_000, 60),
    (10 ** 9, 60)])
def test_epochs_by_default_pass_a_million_rows_within_bounds(rows, epochs):
    assert TrainConfig().planned(rows).epochs == epochs


def test_given_epochs_are_kept_whatever_the_table():
    config = TrainConfig(epochs=7)
    assert config.planned(600) is config
    assert TrainConfig().epochs is None


@pytest.mark.parametrize("rows, leaves", [(1, True), (4_999, True), (5_000, False),
                                          (10 ** 9, False)])
def test_a_small_table_leaves_its_members_to_fcnn_unless_told(rows, leaves):
    assert TrainConfig().ensemble is None
    assert TrainConfig().leaves_members(rows) is leaves
    assert not TrainConfig(ensemble=1).leaves_members(rows)
    assert not TrainConfig(ensemble=5).leaves_members(rows)
    assert not TrainConfig(epochs=500).leaves_members(rows)  # a run's length asked for


def test_members_left_to_fcnn_are_never_past_the_last_seed():
    assert not TrainConfig(seed=MAX_SEED).leaves_members(100)
    assert TrainConfig(seed=MAX_SEED - 4).leaves_members(100)
