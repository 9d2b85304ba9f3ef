"""Training streamed from Parquet pieces: the same scaler and encoding as in memory, seeded
orders, a shuffle buffer that mixes pieces, the split rule, resume, several processes."""

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
import torch

from fcnn_cli.machine import distributed
from fcnn_cli.results import runs
from fcnn_cli.data import sources
from fcnn_cli.engine import stream, train
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.data.tables import read_table
from pieces import three_files, write_parquet


def test_scaler_and_labels_as_in_memory(tmp_path, quake_frame, quake_file):
    """All rows train (validation from a file of its own, no test rows): the one streamed
    pass finds the in-memory scaler and label scaler within float tolerance."""
    val = write_parquet(quake_frame.iloc[:300], tmp_path / "val.parquet", ["x", "y"])
    config = train.TrainConfig(epochs=1, batch_size=256, test_frac=0.0, stream=True)
    streamed = train.fit(sources.open_source(quake_file), config,
                         val_table=sources.FileChunks(val))
    memory = train.fit(read_table(quake_file), train.TrainConfig(epochs=1, batch_size=256,
                                                                  test_frac=0.0),
                       val_table=read_table(val))
    for a, b in ((streamed.predictor.x_scaler, memory.predictor.x_scaler),
                 (streamed.predictor.task.scaler, memory.predictor.task.scaler)):
        np.testing.assert_allclose(a.shift, b.shift, rtol=1e-10)
        np.testing.assert_allclose(a.scale, b.scale, rtol=1e-10)
    assert streamed.sizes == memory.sizes == {"train": 3000, "val": 300, "test": 0}
    np.testing.assert_allclose(streamed.predictor.feature_range["min"],
                               memory.predictor.feature_range["min"])
    # evaluate tells these rows by this digest, whichever way they were trained on
    assert streamed.predictor.info["rows_sha256"] == memory.predictor.info["rows_sha256"]


@pytest.mark.slow
def test_streamed_training_scores_as_in_memory(quake_file):
    config = dict(epochs=8, batch_size=32, seed=2)
    streamed = train.fit(sources.open_source(quake_file),
                         train.TrainConfig(**config, stream=True, shuffle_buffer=1000))
    memory = train.fit(read_table(quake_file), train.TrainConfig(**config))
    distance = [r.metrics["test"]["distance"]["mean"] for r in (streamed, memory)]
    assert distance[0] < 1.5 * distance[1] + 0.5, distance
    assert sum(streamed.sizes.values()) == 3000
    assert abs(streamed.sizes["val"] - 150) < 40 and abs(streamed.sizes["test"] - 150) < 40


def test_split_rule_is_fixed_by_seed_and_fractions():
    positions = np.arange(200_000)
    a = stream.split_of(positions, 0.1, 0.05, seed=3)
    assert np.array_equal(a, stream.split_of(positions, 0.1, 0.05, seed=3))
    assert not np.array_equal(a, stream.split_of(positions, 0.1, 0.05, seed=4))
    shares = np.bincount(a, minlength=3) / len(a)
    np.testing.assert_allclose(shares, [0.85, 0.1, 0.05], atol=0.005)
    # a larger validation share only moves training rows into validation
    b = stream.split_of(positions, 0.2, 0.05, seed=3)
    assert np.array_equal(a == stream.TEST, b == stream.TEST)
    assert (b[a == stream.VAL] == stream.VAL).all()


def _epoch_labels(rows, seed, batch=50, world=distributed.World()):
    generator = torch.Generator().manual_seed(seed)
    batches = list(rows.batches(generator, batch, world, None))
    return batches, torch.cat([y[:, 0] for _, y, _, _ in batches]).numpy()


def _rows(path, **config):
    config = train.TrainConfig(stream=True, **config)
    return stream.prepare(sources.open_source(path), config).on(torch.device("cpu"))


def test_epoch_order_is_seeded(quake_file):
    rows = _rows(quake_file, shuffle_buffer=300)
    _, a = _epoch_labels(rows, 1)
    _, b = _epoch_labels(rows, 1)
    _, c = _epoch_labels(rows, 2)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.array_equal(np.sort(a), np.sort(c))  # the same rows, each once
    assert len(a) == rows.train_rows


def test_shuffle_buffer_mixes_pieces(tmp_path, quake_frame):
    """Rows sorted by their label, 15 pieces: each minibatch draws from across the table, and
    the network still learns."""
    path = write_parquet(quake_frame.sort_values("x"), tmp_path / "sorted.parquet", ["x", "y"])
    rows = _rows(path, shuffle_buffer=1000)
    batches, _ = _epoch_labels(rows, 0)
    spread = np.mean([float(y[:, 0].std()) for _, y, _, _ in batches])
    assert spread > 0.8  # the labels are standardised: a whole table has 1, one piece ~0.07
    result = train.fit(sources.open_source(path), train.TrainConfig(
        epochs=6, batch_size=32, stream=True, shuffle_buffer=1000))
    assert result.metrics["test"]["distance"]["mean"] < 4.0


def test_processes_take_their_own_pieces_and_the_same_steps(quake_file):
    rows = _rows(quake_file, shuffle_buffer=0)
    per_rank = [_epoch_labels(rows, 5, batch=64, world=distributed.World(r, 3))[0]
                for r in range(3)]
    assert len({len(b) for b in per_rank}) == 1  # the same number of steps
    for step in zip(*per_rank):
        assert sum(len(x) for x, _, _, _ in step) == step[0][3]
        assert sum(share for _, _, share, _ in step) == pytest.approx(1.0)
    seen = [set(torch.cat([y[:, 0] for _, y, _, _ in b]).tolist()) for b in per_rank]
    assert not seen[0] & seen[1] and not seen[1] & seen[2]


def test_resume_ends_where_an_uninterrupted_run_ends(quake_file):
    config = train.TrainConfig(epochs=3, batch_size=256, stream=True, shuffle_buffer=500)

    def stop(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    cut = train.fit(sources.open_source(quake_file), config, on_epoch=stop)
    assert cut.interrupted and cut.resume_state["epoch"] == 1
    resumed = train.fit(sources.open_source(quake_file), config, resume=cut.resume_state)
    whole = train.fit(sources.open_source(quake_file), config)
    for a, b in zip(resumed.predictor.net.state_dict().values(),
                    whole.predictor.net.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_refuses_other_data(tmp_path, quake_frame, quake_file):
    config = train.TrainConfig(epochs=2, batch_size=64, stream=True)
    def stop(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    cut = train.fit(sources.open_source(quake_file), config, on_epoch=stop)
    other = write_parquet(quake_frame.iloc[:2500], tmp_path / "o.parquet", ["x", "y"])
    with pytest.raises(FcnnError, match="not the data this run started with"):
        train.fit(sources.open_source(other), config, resume=cut.resume_state)


def test_directory_of_files_with_hive_partitions(tmp_path, quake_frame):
    for k, site in enumerate(["north", "south", "west"]):
        write_parquet(quake_frame.iloc[k * 1000:(k + 1) * 1000],
                      tmp_path / "d" / f"site={site}" / "part.parquet", ["x", "y"], 250)
    source = sources.open_source(tmp_path / "d")
    assert len(source.pieces) == 12 and sum(source.pieces) == 3000
    assert source.read(11).frame["site"].unique().tolist() == ["west"]
    result = train.fit(source, train.TrainConfig(epochs=1, batch_size=64, stream=True))
    assert "site" not in result.predictor.features  # text: left out as in memory
    assert sum(result.sizes.values()) == 3000


def test_classes_and_weights_as_in_memory(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 2))
    label = np.where(x[:, 0] > 0.8, "high", np.where(x[:, 0] < -0.5, "low", "mid"))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "kind": label})
    path = write_parquet(frame, tmp_path / "c.parquet", ["kind"], 150)
    val = write_parquet(frame.iloc[:200], tmp_path / "cv.parquet", ["kind"])
    config = dict(epochs=3, batch_size=32, test_frac=0.0, class_weight="balanced")
    streamed = train.fit(sources.open_source(path), train.TrainConfig(**config, stream=True),
                         val_table=sources.FileChunks(val))
    memory = train.fit(read_table(path), train.TrainConfig(**config),
                       val_table=read_table(val))
    assert streamed.predictor.task.classes == memory.predictor.task.classes
    assert streamed.predictor.info["rows_sha256"] == memory.predictor.info["rows_sha256"]
    np.testing.assert_allclose(streamed.predictor.task.weights, memory.predictor.task.weights)
    accuracy = [r.metrics["val"]["accuracy"] for r in (streamed, memory)]
    assert accuracy[0] > 0.7 and abs(accuracy[0] - accuracy[1]) < 0.1, accuracy


def test_dropped_rows_keep_their_positions(tmp_path, quake_frame):
    frame = quake_frame.copy()
    frame.loc[[5, 777, 2100], "tp2"] = np.nan
    path = write_parquet(frame, tmp_path / "nan.parquet", ["x", "y"])
    config = train.TrainConfig(stream=True, nan="drop")
    prepared = stream.prepare(sources.open_source(path), config)
    assert sum(prepared.sizes.values()) == 2997
    with pytest.raises(FcnnError, match="row 6"):
        stream.prepare(sources.open_source(path), train.TrainConfig(stream=True))


def test_command_line_streams_and_resumes(tmp_path, quake_file, runner):
    import json

    from fcnn_cli.commands import cli

    out = tmp_path / "run"
    args = ["train", str(quake_file), "--stream", "--shuffle-buffer", "400", "--epochs", "3",
            "--batch-size", "128", "-q", "-o", str(out)]
    done = runner.invoke(cli, args)
    assert done.exit_code == 0, done.output
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["stream"] and config["train"]["shuffle_buffer"] == 400
    assert sum(config["sizes"].values()) == 3000

    def stop(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    config = train.TrainConfig(epochs=3, batch_size=128, stream=True, shuffle_buffer=400)
    cut = train.fit(sources.open_source(quake_file), config, on_epoch=stop)
    runs.save_run(cut, tmp_path / "cut", str(quake_file))
    done = runner.invoke(cli, ["train", "--resume", str(tmp_path / "cut"), "-q"])
    assert done.exit_code == 0, done.output
    assert len((tmp_path / "cut" / "history.csv").read_text().splitlines()) == 4
    assert not (tmp_path / "cut" / "state.pt").exists()


def test_a_streamed_run_whose_saved_state_lost_a_bit_is_not_resumed(tmp_path, quake_file):
    import forgery

    def stop(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    config = train.TrainConfig(epochs=3, batch_size=128, stream=True, shuffle_buffer=400)
    cut = train.fit(sources.open_source(quake_file), config, on_epoch=stop)
    run = runs.save_run(cut, tmp_path / "cut", str(quake_file))
    assert runs.load_resume(run).state["epoch"] == 1
    forgery.flip_bit(run / runs.STATE_FILE, lambda s: s["generator"], 100, 0)
    with pytest.raises(FcnnError, match="cannot resume: state.pt does not match the SHA-256"):
        runs.load_resume(run)


def test_command_line_names_a_bad_file_in_one_line(tmp_path, quake_frame, runner):
    from fcnn_cli.commands import cli

    write_parquet(quake_frame, tmp_path / "d" / "a.parquet", ["x", "y"])
    (tmp_path / "d" / "b.parquet").write_bytes(b"PAR1 but not really")
    done = runner.invoke(cli, ["train", str(tmp_path / "d"), "--stream", "-o",
                               str(tmp_path / "r")])
    assert done.exit_code == 1
    assert done.output.count("\n") == 1 and "b.parquet: not a readable Parquet file" in \
        done.output
    done = runner.invoke(cli, ["train", str(tmp_path / "d" / "a.parquet"), "--stream",
                               "--shuffle-buffer", "-1"])
    assert done.exit_code == 2 and "--shuffle-buffer must be ≥ 0" in done.output


def test_messages_count_the_rows_of_each_file(tmp_path, quake_frame):
    frame = quake_frame.iloc[:1000].copy()
    frame.iloc[502, frame.columns.get_loc("tp1")] = np.nan  # row 3 of the second file
    write_parquet(frame.iloc[:500], tmp_path / "d" / "a.parquet", ["x", "y"], 200)
    write_parquet(frame.iloc[500:], tmp_path / "d" / "b.parquet", ["x", "y"], 200)
    with pytest.raises(FcnnError, match=r"b\.parquet: 1 row\(s\) hold NaN.* at row 3;"):
        stream.prepare(sources.open_source(tmp_path / "d"), train.TrainConfig(stream=True))


def test_a_validation_file_needs_the_columns(tmp_path, quake_frame, quake_file):
    val = write_parquet(quake_frame.drop(columns=["tp2"]).iloc[:100], tmp_path / "v.parquet",
                        ["x", "y"])
    config = train.TrainConfig(stream=True, epochs=1)
    with pytest.raises(FcnnError, match=r"v\.parquet: missing column\(s\) 'tp2'"):
        train.fit(sources.open_source(quake_file), config, val_table=sources.FileChunks(val))


def test_pieces_go_from_arrow_to_numpy_with_the_values_of_the_table_path(tmp_path, quake_frame):
    frame = quake_frame.assign(count=np.arange(len(quake_frame)) % 7)  # an integer feature
    frame.loc[[5, 2100], "tp2"] = np.nan  # two pieces take the Table's path and drop them
    path = write_parquet(frame, tmp_path / "q.parquet", ["x", "y"])
    source = sources.open_source(path)
    config = train.TrainConfig(stream=True, nan="drop", seed=3)
    prepared = stream.prepare(source, config)
    columns = prepared.features + prepared.targets
    assert "count" in prepared.features
    assert stream._direct(source.arrow(1, columns), prepared.features, prepared.targets,
                          np.ones(200, bool)) is not None
    assert stream._direct(source.arrow(0, columns), prepared.features, prepared.targets,
                          np.ones(200, bool)) is None
    for part in (stream.TRAIN, stream.VAL, stream.TEST):
        for piece, got in enumerate(prepared.blocks(part)):
            table = prepared._complete(source.read(piece, columns))
            rows = stream._rows_of(table, source.starts[piece], part, config.val_frac,
                                   config.test_frac, config.seed)
            same = prepared.arrays(rows, part)
            assert got[3] is None and same[3] is None  # no event weights
            for a, b in zip(got[:3], same[:3]):
                assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("gone_after", [2, 3], ids=["mid-run", "in-the-final-metrics"])
def test_a_run_whose_data_went_keeps_its_epochs_and_resumes_once_they_are_back(
        tmp_path, quake_frame, gone_after):
    """A file deleted after epoch 2 of 3: training goes back to epoch 2 and says why, with
    the state to resume from; deleted after the last epoch, as the final metrics are read:
    the state as training ended, which a resumed run only measures. Once the file is back
    (copied: another inode, the same rows), the resumed run ends as an uninterrupted one."""
    d = three_files(tmp_path, quake_frame)
    kept = (d / "p1.parquet").read_bytes()
    config = train.TrainConfig(epochs=3, batch_size=128, stream=True, shuffle_buffer=300,
                                threads=1)

    def remove(row):
        if row["epoch"] == gone_after:
            (d / "p1.parquet").unlink()

    cut = train.fit(sources.open_source(d), config, on_epoch=remove)
    assert cut.changed and cut.interrupted and not cut.metrics and cut.sample is None
    assert cut.resume_state["epoch"] == len(cut.history) == gone_after
    when = "training had ended" if gone_after == 3 else "epoch 2"
    assert cut.stopped == f"stopped after {when}: {d / 'p1.parquet'}: changed while the run " \
                          "was reading it (it is gone)"
    (d / "p1.parquet").write_bytes(kept)
    resumed = train.fit(sources.open_source(d), config, resume=cut.resume_state)
    whole = train.fit(sources.open_source(d), config)
    assert resumed.stopped == whole.stopped == "completed" and not resumed.changed
    assert resumed.metrics == whole.metrics
    a, b = resumed.predictor.net.state_dict(), whole.predictor.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_command_line_keeps_a_run_whose_data_changed(tmp_path, quake_frame, runner,
                                                     monkeypatch):
    """Exit status 75 and one line that says how to resume; the run's files and state are
    saved, no plots drawn; once the data are back, --resume ends the run."""
    from fcnn_cli.commands import cli, runjob

    d = three_files(tmp_path, quake_frame)
    kept, run = (d / "p2.parquet").read_bytes(), tmp_path / "run"
    printed = runjob._EpochPrinter.__call__

    def print_and_remove(printer, row):
        printed(printer, row)
        if row["epoch"] == 2:
            (d / "p2.parquet").unlink()

    monkeypatch.setattr(runjob._EpochPrinter, "__call__", print_and_remove)
    done = runner.invoke(cli, ["train", str(d), "--stream", "--epochs", "4", "--batch-size",
                               "128", "-q", "-o", str(run)])
    assert done.exit_code == 75, done.output
    assert done.output == (f"stopped after epoch 2: {d / 'p2.parquet'}: changed while the run "
                           f"was reading it (it is gone); saved the best model so far and the "
                           f"state to resume in {run}; once the data are back as they were, "
                           f"continue with: fcnn train --resume {run}\n")
    assert sorted(p.name for p in run.iterdir()) == [
        ".lock", "config.json", "config.toml", "history.csv", "metrics.json", "model.pt",
        "state.pt"]
    assert json.loads((run / "metrics.json").read_text()) == {}
    assert len(pd.read_csv(run / "history.csv")) == 2
    monkeypatch.undo()
    refused = runner.invoke(cli, ["train", "--resume", str(run), "-q"])
    assert refused.exit_code == 1 and "not the data this run started with" in refused.output
    (d / "p2.parquet").write_bytes(kept)
    done = runner.invoke(cli, ["train", "--resume", str(run), "-q"])
    assert done.exit_code == 0, done.output
    assert list(pd.read_csv(run / "history.csv").epoch) == [1, 2, 3, 4]
    assert not (run / "state.pt").exists() and "val" in json.loads(
        (run / "metrics.json").read_text())


def test_command_line_data_changed_before_an_epoch_ended(tmp_path, quake_frame, runner,
                                                         monkeypatch):
    from fcnn_cli.commands import cli

    d = three_files(tmp_path, quake_frame)
    prepare = stream.prepare

    def prepare_and_truncate(*args, **kwargs):
        prepared = prepare(*args, **kwargs)
        os.truncate(d / "p0.parquet", 10)
        return prepared

    monkeypatch.setattr(stream, "prepare", prepare_and_truncate)
    done = runner.invoke(cli, ["train", str(d), "--stream", "-o", str(tmp_path / "run")])
    assert done.exit_code == 75
    assert re.fullmatch(rf"Error: {re.escape(str(d / 'p0.parquet'))}: changed while the run "
                        r"was reading it \(its size went from \d+ to 10 bytes\); no epoch was "
                        r"complete: nothing saved\n", done.output), done.output
    assert not (tmp_path / "run").exists()




def _weighted_frame(quake_frame, zero_every=7):
    """The quakes with unequal weights, some negative and every ``zero_every``-th 0, and 20 %
    of the pick tp2 missing."""
    rng = np.random.default_rng(6)
    w = rng.uniform(-0.2, 2.0, len(quake_frame))
    w[::zero_every] = 0.0
    frame = quake_frame.assign(w=w)
    frame.loc[rng.random(len(frame)) < 0.2, "tp2"] = np.nan
    return frame


@pytest.mark.parametrize("policy", ["keep", "zero"])
def test_weighted_fill_streams_as_in_memory(tmp_path, quake_frame, policy):
    """A weighted Parquet file with missing values, streamed (validation from a file of its
    own, no test rows): the rows left out, the medians, the scaler over the widened inputs
    and the weights the loss takes are those of the table in memory."""
    frame = _weighted_frame(quake_frame)
    path = write_parquet(frame.iloc[300:], tmp_path / "w.parquet", ["x", "y"])
    val = write_parquet(frame.iloc[:300], tmp_path / "val.parquet", ["x", "y"])
    options = dict(epochs=1, batch_size=256, test_frac=0.0, nan="fill",
                   negative_weights=policy)
    streamed = stream.prepare(sources.open_source(path),
                              train.TrainConfig(**options, stream=True),
                              val=sources.FileChunks(val), weight="w")
    memory = train.prepare(read_table(path), train.TrainConfig(**options), weight="w",
                           val_table=read_table(val))
    assert streamed.sizes == memory.sizes
    negative = int((frame.w.iloc[300:] < 0).sum()) if policy == "zero" else 0
    assert streamed.sizes["train"] == int((frame.w.iloc[300:] != 0).sum()) - negative
    assert streamed.filler == memory.filler and streamed.filler.flagged == ["tp2"]
    np.testing.assert_allclose(streamed.x_scaler.shift, memory.x_scaler.shift, rtol=1e-9)
    np.testing.assert_allclose(streamed.x_scaler.scale, memory.x_scaler.scale, rtol=1e-9)
    np.testing.assert_allclose(streamed.feature_range()["max"], memory.x_range["max"])
    blocks = {part: [np.concatenate(a) for a in zip(*streamed.blocks(part))]
              for part in (stream.TRAIN, stream.VAL)}
    for part, name in ((stream.TRAIN, "train"), (stream.VAL, "val")):
        x, y, truth, w = blocks[part]
        order = np.lexsort(truth.T)  # the same rows, in another order
        other = memory.splits[name]
        mine = np.lexsort(other.truth.T)
        np.testing.assert_allclose(y[order], other.y[mine], rtol=1e-6)
        np.testing.assert_array_equal(w[order], other.weight[mine])
        if name == "val":
            np.testing.assert_array_equal(x[order], other.x[mine])
    assert streamed.task.weighted and memory.task.weighted


def test_a_weighted_file_trains_streamed_with_weighted_validation(tmp_path, quake_frame):
    frame = _weighted_frame(quake_frame).dropna()
    path = write_parquet(frame, tmp_path / "w.parquet", ["x", "y"])
    config = train.TrainConfig(epochs=2, batch_size=64, stream=True, seed=2)
    result = train.fit(sources.open_source(path), config, weight="w")
    assert "w" not in result.predictor.features
    assert sum(result.sizes.values()) == int((frame.w != 0).sum())
    # equal weights: as a file without any, to the bit
    path = write_parquet(frame.assign(w=3.0), tmp_path / "e.parquet", ["x", "y"])
    plain = write_parquet(frame.drop(columns="w"), tmp_path / "p.parquet", ["x", "y"])
    a = train.fit(sources.open_source(path), config, weight="w")
    b = train.fit(sources.open_source(plain), config)
    for k, v in a.predictor.net.state_dict().items():
        assert torch.equal(v, b.predictor.net.state_dict()[k])
    assert not torch.equal(a.predictor.net.state_dict()["head.weight"],
                           result.predictor.net.state_dict()["head.weight"])


def test_a_streamed_run_finds_its_working_point_and_reports_at_it(tmp_path):
    rng = np.random.default_rng(4)
    kind = np.where(rng.random(1500) < 0.4, "signal", "background")
    x = rng.normal(size=(1500, 2)) + (kind == "signal")[:, None]
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "kind": kind})
    path = write_parquet(frame, tmp_path / "s.parquet", ["kind"], 300)
    val = write_parquet(frame.iloc[:400], tmp_path / "sv.parquet", ["kind"])
    result = train.fit(sources.open_source(path), train.TrainConfig(
        epochs=2, batch_size=64, test_frac=0.0, stream=True, working_point="eff=0.6"),
        val_table=sources.FileChunks(val))
    cut = result.predictor.task.working_point["cut"]
    p = result.predictor.predict(read_table(val))
    is_signal = frame.kind.iloc[:400].to_numpy() == "signal"
    passed = p.p_signal.to_numpy() >= cut
    point = result.metrics["val"]["merit"]["working_point"]
    assert point["cut"] == cut and passed[is_signal].mean() >= 0.6
    assert point["signal_efficiency"] == pytest.approx(passed[is_signal].mean())
    assert result.metrics["val"]["accuracy"] == pytest.approx((passed == is_signal).mean())


@pytest.mark.parametrize("method", ["robust", "quantile"])
@pytest.mark.parametrize("nan", ["error", "fill"])
def test_curve_scalers_stream_as_in_memory(tmp_path, quake_frame, method, nan):
    """All rows train (validation from a file of its own, no test rows) and every value fits
    the median sample: the streamed scaler is the in-memory one exactly, over the filled and
    widened inputs too, and so are the scaled validation rows."""
    frame = quake_frame.copy()
    if nan == "fill":
        frame.loc[::5, "tp1"] = np.nan
    path = write_parquet(frame.iloc[300:], tmp_path / "t.parquet", ["x", "y"])
    val = write_parquet(frame.iloc[:300], tmp_path / "val.parquet", ["x", "y"])
    options = dict(epochs=1, batch_size=256, test_frac=0.0, nan=nan, scale=method)
    streamed = stream.prepare(sources.open_source(path),
                              train.TrainConfig(**options, stream=True),
                              val=sources.FileChunks(val))
    memory = train.prepare(read_table(path), train.TrainConfig(**options),
                           val_table=read_table(val))
    assert streamed.x_scaler == memory.x_scaler and streamed.x_scaler.method == method
    x = np.concatenate([chunk[0].numpy() for chunk in stream.Rows(streamed, "cpu").validation()])
    assert np.array_equal(np.sort(x, axis=0), np.sort(memory.x_scaler.transform(
        memory.splits["val"].x), axis=0))
