"""The run directory's lock and what check_run_dir and claim say about a directory."""

import json
import fcntl
import os

import pytest

import forgery
from fcnn_cli.results import runs, statefile
from fcnn_cli.core.errors import FcnnError


def held_lock(run):
    """A lock held as another fcnn process holds it while it trains."""
    lock = open(run / runs.LOCK_FILE, "a")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return lock


def test_a_directory_holding_only_a_free_lock_is_reused_without_force(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / runs.LOCK_FILE).touch()  # what a run killed before its first save leaves
    runs.check_run_dir(run)
    with runs.claim(run) as claimed:
        (claimed / "model.pt").write_text("saved")
    assert sorted(p.name for p in run.iterdir()) == [runs.LOCK_FILE, "model.pt"]


@pytest.mark.parametrize("saved", [False, True])
@pytest.mark.parametrize("force", [False, True])
def test_a_held_lock_is_a_run_in_progress_even_with_force(tmp_path, saved, force):
    run = tmp_path / "r"
    run.mkdir()
    if saved:
        (run / "model.pt").write_text("a run's model")
    with held_lock(run):
        for attempt in (lambda: runs.check_run_dir(run, force),
                        lambda: runs.claim(run, force=force).__enter__()):
            with pytest.raises(FcnnError) as e:
                attempt()
            assert "a run is in progress there" in str(e.value)
            assert "--force" not in str(e.value)
    assert not saved or (run / "model.pt").read_text() == "a run's model"


def test_an_interrupted_run_is_named_with_its_resume_command(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    for name in ("model.pt", runs.STATE_FILE, runs.LOCK_FILE):
        (run / name).write_text("x")
    with pytest.raises(FcnnError, match=rf"holds an interrupted run; continue it with: fcnn "
                                        rf"train --resume {run}; .*force=True"):
        runs.check_run_dir(run)
    runs.check_run_dir(run, force=True)
    (run / runs.STATE_FILE).unlink()
    with pytest.raises(FcnnError, match="already holds a run; choose another directory or add "
                                        "force=True"):
        runs.check_run_dir(run)


@pytest.mark.parametrize("made_here, saved, kept", [
    (True, False, False), (True, True, True), (False, False, True)])
def test_an_interrupt_removes_only_a_directory_made_here_with_nothing_saved(
        tmp_path, made_here, saved, kept):
    run = tmp_path / "r"
    if not made_here:
        run.mkdir()
    with pytest.raises(KeyboardInterrupt), runs.claim(run) as claimed:
        if saved:
            (claimed / "model.pt").write_text("the first epochs")
        raise KeyboardInterrupt
    assert run.exists() == kept
    assert not saved or (run / "model.pt").read_text() == "the first epochs"


ENSEMBLE = {"epochs": 3, "batch_size": 64, "ensemble": 2, "threads": 1}


@pytest.fixture
def interrupted_ensemble(tmp_path, quakes_csv):
    """A run directory of 2 members as Ctrl-C leaves it after epoch 1 of 3."""
    from fcnn_cli.engine import train
    from fcnn_cli.data.tables import read_table

    def stop(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    result = train.fit(read_table(quakes_csv), train.TrainConfig(**ENSEMBLE), on_epoch=stop)
    return runs.save_run(result, tmp_path / "cut", str(quakes_csv))


def test_an_interrupted_ensemble_resumes_from_the_command_line(runner, interrupted_ensemble,
                                                               quakes_csv):
    import torch

    from fcnn_cli.network import checkpoint
    from fcnn_cli.engine import train
    from fcnn_cli.commands import cli
    from fcnn_cli.data.tables import read_table

    run = interrupted_ensemble
    whole = train.fit(read_table(quakes_csv), train.TrainConfig(**ENSEMBLE))
    result = runner.invoke(cli, ["train", "--resume", str(run), "-q", "--no-plots"])
    assert result.exit_code == 0, result.output
    assert not (run / runs.STATE_FILE).exists()
    a, b = whole.predictor.net.state_dict(), checkpoint.load(run / "model.pt").net.state_dict()
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("damage, said", [
    (lambda state, single: single, "Error: the saved training state is of a single network, "
                                   "not of an ensemble of 2 members; cannot resume"),
    (lambda state, single: {k: v for k, v in state.items() if k != "generators"},
     "state.pt holds no training state of fcnn"),
    (lambda state, single: {**state, "generators": state["generators"][:1]},
     "damaged or from another version of fcnn (ValueError: not one entry for each of 2 "
     "members); cannot resume"),
], ids=["a_single_network's", "without_generators", "a_member_short"])
def test_a_foreign_or_damaged_ensemble_state_is_refused_in_one_line(
        runner, interrupted_ensemble, interrupted_run, damage, said):
    from fcnn_cli.commands import cli

    run = interrupted_ensemble
    state = forgery.state(run / runs.STATE_FILE)
    single = forgery.state(interrupted_run / runs.STATE_FILE)
    statefile.write_state(damage(state, single), run / runs.STATE_FILE)
    result = runner.invoke(cli, ["train", "--resume", str(run), "-q", "--no-plots"])
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1, result.output
    assert said in result.stderr


SINGLE_EDITS = {
    "epoch_text": ({"epoch": "x"}, "epoch is 'x', not a whole number from 0 to 3"),
    "epoch_negative": ({"epoch": -5}, "epoch is -5, not a whole number from 0 to 3"),
    "epoch_past_the_last": ({"epoch": 4}, "epoch is 4, not a whole number from 0 to 3"),
    "history_of_numbers": ({"history": [1]}, "history row 1 is not epoch 1's numbers"),
    "history_short": ({"history": []}, "history is not a list of 1 epochs' rows"),
    "best_loss_text": ({"best_loss": "a"}, "best_loss is 'a', not a number"),
    "diagnostics_of_numbers": ({"diagnostics": [1, 2]}, "diagnostics are not rows of "
                               "numbers, each of an epoch from 0 to 1"),
    "best_epoch_later": ({"best_epoch": 2}, "best_epoch is 2, not a whole number from 0 to 1"),
}


@pytest.mark.parametrize("edit", sorted(SINGLE_EDITS))
def test_a_resigned_state_of_impossible_progress_is_refused_naming_the_field(interrupted, edit):
    change, said = SINGLE_EDITS[edit]
    path = interrupted / runs.STATE_FILE
    state = forgery.state(path)
    assert state["epoch"] == 1
    statefile.write_state({**state, **change}, path)
    with pytest.raises(FcnnError) as refused:
        runs.load_resume(interrupted)
    assert str(refused.value) == f"{interrupted}: cannot resume: the saved state's {said}"


def test_saved_options_of_no_epochs_are_refused(interrupted):
    config = interrupted / "config.json"
    saved = json.loads(config.read_text())
    config.write_text(json.dumps({**saved, "train": {**saved["train"], "epochs": None}}))
    with pytest.raises(FcnnError) as refused:
        runs.load_resume(interrupted)
    assert str(refused.value) == (f"{interrupted}: cannot resume: config.json is damaged: its "
                                  "train epochs is null, where a run records the epochs it set "
                                  "out to train")


ENSEMBLE_EDITS = {
    "epoch_text": (lambda s: {"epoch": "x"}, "epoch is 'x', not a whole number from 0 to 3"),
    "stopped_ended": (lambda s: {"stopped": ["x"]},
                      "stopped says every cohort had ended: nothing is left to resume"),
    "stopped_number": (lambda s: {"stopped": [1]}, "stopped[0] is neither text nor null"),
    "stopped_not_each": (lambda s: {"stopped": "x"}, "stopped is not a list of 1 cohorts' ends"),
    "history_of_numbers": (lambda s: {"histories": [[1]]},
                           "histories[0] row 1 is not epoch 1's numbers"),
    "history_repeated": (lambda s: {"histories": [s["histories"][0] * 2]},
                         "histories[0] is not a list of 1 epochs' rows"),
    "best_loss_text": (lambda s: {"best": [{**s["best"][0], "loss": "a"}, s["best"][1]]},
                       "best[0].loss is 'a', not a number"),
    "a_member_short": (lambda s: {"best": s["best"][:1]},
                       "best is not a list of each member's progress"),
}


@pytest.mark.parametrize("edit", sorted(ENSEMBLE_EDITS))
def test_a_resigned_ensemble_state_of_impossible_progress_is_refused(interrupted_ensemble, edit):
    change, said = ENSEMBLE_EDITS[edit]
    run, path = interrupted_ensemble, interrupted_ensemble / runs.STATE_FILE
    state = forgery.state(path)
    statefile.write_state({**state, **change(state)}, path)
    with pytest.raises(FcnnError) as refused:
        runs.load_resume(run)
    assert str(refused.value) == f"{run}: cannot resume: the saved state's {said}"


def test_a_file_system_without_locks_warns_and_trains(tmp_path, monkeypatch, caplog):
    import errno
    import fcntl

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with caplog.at_level("WARNING"), runs.claim(tmp_path / "run") as path:
        (path / "model.pt").write_bytes(b"x")
    assert "cannot lock (No locks available)" in caplog.text
    assert not runs.locked(tmp_path / "run")


def weight(state):
    return next(iter(state["model"].values()))


# float32, little-endian: byte 2's highest bit is the exponent's lowest (the value doubles or
# halves: finite, as plausible as before).
SINGLE_PARTS = {
    "weights": (weight, 2, 7),
    "adam_moments": (lambda s: s["optimizer"]["state"][0]["exp_avg_sq"], 2, 7),
    "weight_average": (lambda s: s["average"]["average"][0], 2, 7),
    "row_generator": (lambda s: s["generator"], 100, 0),
}


@pytest.mark.parametrize("part", sorted(SINGLE_PARTS))
def test_a_flipped_bit_in_a_saved_state_is_refused_in_one_line(runner, interrupted, part):
    from fcnn_cli.commands import cli

    state = interrupted / runs.STATE_FILE
    forgery.flip_bit(state, *SINGLE_PARTS[part])
    damaged = state.read_bytes()
    result = runner.invoke(cli, ["train", "--resume", str(interrupted), "-q", "--no-plots"])
    assert result.exit_code == 1 and result.stderr == (
        f"Error: {interrupted}: cannot resume: state.pt does not match the SHA-256 digest "
        "stored with it (the file was damaged or edited)\n")
    assert state.read_bytes() == damaged


@pytest.mark.parametrize("part", [(lambda s: weight({"model": s["model"][1]}), 2, 7),
                                  (lambda s: s["generators"][0], 100, 0)],
                         ids=["member_weights", "member_generator"])
def test_a_flipped_bit_in_an_ensemble_state_is_refused(interrupted_ensemble, part):
    forgery.flip_bit(interrupted_ensemble / runs.STATE_FILE, *part)
    with pytest.raises(FcnnError, match="state.pt does not match the SHA-256 digest"):
        runs.load_resume(interrupted_ensemble)


def test_a_state_without_a_digest_is_refused_as_of_the_older_form(runner, interrupted):
    import torch

    from fcnn_cli.commands import cli

    state = forgery.state(interrupted / runs.STATE_FILE)
    torch.save(state, interrupted / runs.STATE_FILE)  # as fcnn wrote it before it signed it
    result = runner.invoke(cli, ["train", "--resume", str(interrupted), "-q", "--no-plots"])
    assert result.exit_code == 1 and result.stderr == (
        f"Error: {interrupted}: cannot resume: state.pt is of an older form that carries no "
        "digest, so damage to it could not be noticed; train the run again (its model.pt "
        "holds the best weights so far)\n")



def test_a_view_standing_for_more_values_than_the_file_holds_is_never_read(interrupted,
                                                                            monkeypatch):
    """A tensor of 2**40 values on a storage of one (a stride of 0) would take 4 TiB to read
    for the digest: refused at once."""
    import torch

    from fcnn_cli.network import checkpoint

    def never(*args):
        raise AssertionError("read for the digest")

    path = interrupted / runs.STATE_FILE
    state = forgery.state(path)
    torch.save({**state, "torch_rng": torch.zeros(1).expand(2 ** 40),
                statefile.DIGEST_KEY: "0" * 64}, path)
    monkeypatch.setattr(checkpoint, "digest", never)
    with pytest.raises(FcnnError, match="cannot resume: state.pt does not match the SHA-256"):
        runs.load_resume(interrupted)

def fake_run(path, *names):
    """A run directory of small stand-ins for its files."""
    path.mkdir()
    for name in names:
        (path / name).write_text(f"the run's {name}")
    return path


@pytest.mark.parametrize("name", runs.RUN_FILES)
def test_a_file_of_a_run_is_no_output_unless_forced(tmp_path, name):
    run = fake_run(tmp_path / "run", "model.pt", "config.json", "history.csv")
    (tmp_path / "alias").symlink_to("run")  # the same directory by another name
    (tmp_path / "link").symlink_to(f"run/{name}")  # a link to the file, which may not exist
    for path in (run / name, tmp_path / "alias" / name, tmp_path / "link"):
        with pytest.raises(FcnnError) as refused:
            runs.check_output(path)
        assert str(refused.value) == (f"{path}: is the {name} of the run in {str(run)!r}; "
                                      "write the output elsewhere, or add force=True to "
                                      "replace it")
        assert refused.value.options == ("force",)
        runs.check_output(path, force=True)


def test_other_files_and_directories_are_outputs_as_before(tmp_path):
    run = fake_run(tmp_path / "run", "model.pt", "config.json")
    runs.check_output(run / "report.html")
    runs.check_output(run / "evaluation.json")
    runs.check_output("-")
    # A config.json (or model.pt) alone is no run: the file itself may be any file of that name.
    for name in ("config.json", "model.pt"):
        runs.check_output(fake_run(tmp_path / name.replace(".", "_"), name) / name)
    runs.check_output(fake_run(tmp_path / "notes", "history.csv") / "history.csv")
    with pytest.raises(FcnnError, match="is the same file as the input"):  # as fileio's
        runs.check_output(run / "copy.pt", [run / "copy.pt"], force=True)


def test_inputs_of_a_run_are_its_files_and_for_the_report_its_plots(tmp_path):
    run = fake_run(tmp_path / "run", "model.pt")
    (run / runs.PLOTS_DIR).mkdir()
    (run / runs.PLOTS_DIR / "b.png").write_bytes(b"png")
    (run / runs.PLOTS_DIR / "a.png").write_bytes(b"png")
    files = [run / name for name in runs.RUN_FILES]
    assert runs.inputs_of(run, plots=False) == files
    assert runs.inputs_of(run) == files + [run / runs.PLOTS_DIR / n for n in ("a.png", "b.png")]


@pytest.mark.parametrize("where, said", [
    ("run/history.csv", "is the history.csv"), ("run/state.pt", "is the state.pt"),
    ("run/predictions.parquet/plots", "lies inside the predictions.parquet"),
    ("alias/config.toml", "is the config.toml")])
def test_a_directory_of_plots_is_no_file_of_the_run(tmp_path, where, said):
    run = fake_run(tmp_path / "run", "model.pt", "config.json", "history.csv",
                   "predictions.parquet")
    (tmp_path / "alias").symlink_to("run")
    with pytest.raises(FcnnError, match=f"^{tmp_path / where}: {said} of the run in "):
        runs.check_plots_dir(tmp_path / where, run)
    runs.check_plots_dir(run / runs.PLOTS_DIR, run)
    runs.check_plots_dir(run, run)


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_plot_to_replace_may_not_be_a_file_of_the_run(tmp_path, kind):
    run = fake_run(tmp_path / "run", "model.pt", "history.csv")
    out = tmp_path / "plots"
    out.mkdir()
    if kind == "symlink":
        (out / "learning_curves.png").symlink_to(run / "history.csv")
    else:
        os.link(run / "history.csv", out / "learning_curves.png")
    (out / "other.txt").symlink_to(run / "model.pt")  # no plot is written there
    with pytest.raises(FcnnError, match="learning_curves.png: is the same file as the input "
                                        f"{run / 'history.csv'}"):
        runs.check_plots_dir(out, run)


@pytest.mark.parametrize("reader", [False, True], ids=["fifo", "fifo-with-a-reader"])
def test_a_fifo_in_the_locks_place_is_refused_without_hanging(tmp_path, reader):
    import subprocess
    import sys

    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / runs.LOCK_FILE)
    held = os.open(run / runs.LOCK_FILE, os.O_RDONLY | os.O_NONBLOCK) if reader else None
    code = ("import sys; from fcnn_cli.results import runs; from fcnn_cli.core.errors import "
            "FcnnError\nprint(runs.locked(runs.Path(sys.argv[1])))\ntry:\n"
            "    with runs.claim(sys.argv[1], force=True): pass\n"
            "except FcnnError as e: print(e)")
    try:
        done = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True,
                              text=True, timeout=120)
    finally:
        if held is not None:
            os.close(held)
    assert done.returncode == 0, done.stderr
    locked, refusal = done.stdout.splitlines()
    assert locked == "False"
    assert refusal == (f"{run / runs.LOCK_FILE}: not a regular file (a FIFO); the run's lock is "
                       "a file that fcnn writes")


@pytest.mark.parametrize("name", ["plots/learning_curves.png", "seeds.json", "failed.json"])
def test_a_plot_or_sweep_record_of_a_run_is_no_output_unless_forced(tmp_path, name):
    run = fake_run(tmp_path / "run", "model.pt")
    (run / runs.PLOTS_DIR).mkdir()
    (tmp_path / "link").symlink_to(f"run/{name}")
    what = "a plot" if "/" in name else f"the {name}"
    for path in (run / name, tmp_path / "link"):
        with pytest.raises(FcnnError, match=f"^{path}: is {what} of the run in {str(run)!r}; "
                                            "write the output elsewhere, or add force=True"):
            runs.check_output(path)
        runs.check_output(path, force=True)
    with pytest.raises(FcnnError, match="write the output elsewhere$"):  # no --force to add
        runs.check_output(run / name, force=None)


@pytest.mark.parametrize("force", [False, True])
def test_a_runs_lock_is_never_an_output(tmp_path, force):
    run = fake_run(tmp_path / "run", runs.LOCK_FILE)  # a run before its first save
    (tmp_path / "link").symlink_to(run / runs.LOCK_FILE)
    for path in (run / runs.LOCK_FILE, tmp_path / "link"):
        with pytest.raises(FcnnError, match=f"^{path}: is the lock of the run directory "):
            runs.check_output(path, force=force)


def test_plots_may_not_go_onto_another_runs_files_or_plots(tmp_path):
    run = fake_run(tmp_path / "run", "model.pt", "history.csv")
    other = fake_run(tmp_path / "other", "model.pt", "config.json")
    (other / runs.PLOTS_DIR).mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "learning_curves.png").symlink_to(other / "model.pt")
    with pytest.raises(FcnnError, match=f"learning_curves.png: is the model.pt of the run in "
                                        f"{str(other)!r}; write the output elsewhere$"):
        runs.check_plots_dir(out, run)
    with pytest.raises(FcnnError, match=f"^{other / runs.PLOTS_DIR}: is the plots directory of "
                                        f"the run in {str(other)!r}; name another directory "
                                        "for the plots, or add force=True"):
        runs.check_plots_dir(other / runs.PLOTS_DIR, force=False)
    runs.check_plots_dir(other / runs.PLOTS_DIR, force=True)
    (run / runs.PLOTS_DIR).mkdir()
    (run / runs.PLOTS_DIR / "a.png").write_bytes(b"png")
    runs.check_plots_dir(run / runs.PLOTS_DIR, run)  # its own plots, drawn again


def test_a_run_file_linked_out_of_the_run_is_refused_even_forced(tmp_path):
    other = fake_run(tmp_path / "other", "model.pt", "config.json")
    run = fake_run(tmp_path / "run")
    (run / "model.pt").symlink_to(other / "model.pt")
    with pytest.raises(FcnnError, match=f"^{run / 'model.pt'}: is a symbolic link to the "
                                        f"model.pt of the run in {str(other)!r}, outside the "
                                        "run directory"):
        runs.check_run_dir(run, force=True)
    assert (other / "model.pt").read_text() == "the run's model.pt"


def test_the_overtraining_check_and_correlations_are_saved_and_a_rerun_without_them_removes_them(
        tmp_path, trained):
    import dataclasses
    import json

    run = runs.save_run(trained, tmp_path / "run", "quakes.csv")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["overtraining"] == json.loads(json.dumps(trained.overtraining))
    assert {k: v for k, v in metrics.items() if k != "overtraining"} == \
        json.loads(json.dumps(trained.metrics))  # the splits' reports as they were
    saved = json.loads((run / runs.CORRELATIONS_FILE).read_text())
    assert saved["features"] == trained.predictor.features == trained.correlations["features"]
    assert run / runs.CORRELATIONS_FILE in runs.inputs_of(run)
    bare = dataclasses.replace(trained, overtraining=None, correlations=None)
    runs.save_run(bare, run, "quakes.csv")
    assert "overtraining" not in json.loads((run / "metrics.json").read_text())
    assert not (run / runs.CORRELATIONS_FILE).exists()  # never an earlier run's, as this one's


def test_a_run_saved_before_best_by_resumes_keeping_the_lowest_loss(interrupted):
    """Its state holds the best loss: comparing Brier scores with it would take any epoch."""
    path = interrupted / "config.json"
    saved = json.loads(path.read_text())
    del saved["train"]["best_by"]
    path.write_text(json.dumps(saved))
    assert runs.load_resume(interrupted).config.best_by == "loss"
