import os

import pytest

from nodes import make_device
from fcnn_cli.core.fileio import atomic_path, write_text


def test_replaces_in_one_step_with_ordinary_permissions(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    old_mask = os.umask(0o022)
    try:
        write_text(path, "new")
    finally:
        os.umask(old_mask)
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failure_leaves_the_old_file_and_no_debris(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


# --- Outputs that are inputs, special files, unwritable places (issue #10) -----------------

import errno
import json
import shutil
import stat
import subprocess
import sys
import threading

import pandas as pd

from fcnn_cli.commands import cli
from fcnn_cli.core.errors import FcnnError
from fcnn_cli.core.fileio import check_output, same_file


def fcnn(*args):
    return [sys.executable, "-m", "fcnn_cli", *map(str, args)]


def one_error(text):
    """The single ``Error:`` line of a failed command, which must show no traceback."""
    assert "Traceback" not in text and "Exception ignored" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, text
    return errors[0]


def is_device(path):
    return stat.S_ISCHR(os.lstat(path).st_mode)


def alias(path, kind, name):
    """Another name for ``path``: the same string, a symbolic link, or a hard link."""
    if kind == "plain":
        return path
    other = path.parent / name
    if kind == "symlink":
        other.symlink_to(path.name)
    else:
        os.link(path, other)
    return other


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs in tmp_path (as root only: skipped where mounting is refused)."""
    mounted = []

    def mount(name, options):
        path = tmp_path / name
        path.mkdir()
        if shutil.which("mount") is None or subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "fcnn-test", str(path)],
                capture_output=True).returncode:
            pytest.skip("cannot mount a tmpfs here")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.fixture
def files(tmp_path, model_path, quakes_csv):
    """Private copies of a model and a table, which a test may see destroyed."""
    model, data = tmp_path / "model.pt", tmp_path / "data.csv"
    shutil.copy(model_path, model)
    shutil.copy(quakes_csv, data)
    return model, data


@pytest.mark.parametrize("kind", ["plain", "symlink", "hardlink"])
def test_same_file_through_links(tmp_path, kind):
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n")
    other = alias(data, kind, "other.csv")
    assert same_file(other, data) and same_file(data, other)
    assert not same_file(tmp_path / "new.csv", data)
    with pytest.raises(FcnnError, match=r"is the same file as the input .*data\.csv"):
        check_output(other, [None, tmp_path / "new.csv", data])
    check_output(tmp_path / "new.csv", [data])


def test_a_shared_device_is_not_the_same_file(tmp_path):
    null = make_device(tmp_path / "null", 3)
    assert not same_file(null, null)  # a terminal or /dev/null may be both input and output


@pytest.mark.parametrize("case, words", [
    ("missing_directory", "does not exist"), ("directory", "is a directory"),
    ("under_a_file", "(?i)not a directory"), ("dangling_link_to_nowhere", "does not exist"),
    ("symlink_loop", "symbolic links")])
def test_unwritable_output_paths_are_refused_before_any_work(tmp_path, case, words):
    path = tmp_path / "out.csv"
    if case == "missing_directory":
        path = tmp_path / "nowhere" / "out.csv"
    elif case == "directory":
        path.mkdir()
    elif case == "under_a_file":
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "out.csv"
    elif case == "dangling_link_to_nowhere":
        path.symlink_to(tmp_path / "nowhere" / "target.csv")
    else:
        path.symlink_to(path.name)
    with pytest.raises(FcnnError, match=words) as error:
        check_output(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_dangling_link_to_a_new_file_is_written_through(tmp_path):
    link = tmp_path / "out.csv"
    link.symlink_to("target.csv")
    check_output(link)
    write_text(link, "new")
    assert link.is_symlink() and (tmp_path / "target.csv").read_text() == "new"


def test_read_only_directory(tmp_path, monkeypatch):
    """As root, permission bits stop nothing: os.access is what reports a read-only place."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(tmp_path)
                        else real_access(p, mode, **kw))
    with pytest.raises(FcnnError, match=r"out\.csv: cannot write: the directory .* not "
                                        r"writable \(permission denied\)$"):
        check_output(tmp_path / "out.csv")


def test_a_failed_write_is_one_line_and_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.csv"
    path.write_text("old")

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    with pytest.raises(FcnnError, match=r"^\S*out\.csv: cannot write: Read-only file system$"):
        write_text(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_read_only_file_system(tmpfs, runner, files):
    place = tmpfs("ro", "size=1m")
    (place / "report.json").write_text("old")
    assert subprocess.run(["mount", "-o", "remount,ro", str(place)]).returncode == 0
    with pytest.raises(FcnnError, match="is on a read-only file system$"):
        check_output(place / "report.json")
    model, data = files
    result = runner.invoke(cli, ["evaluate", str(model), str(data), "-o",
                                 str(place / "report.json")])
    assert result.exit_code == 1 and "read-only file system" in one_error(result.stderr)
    assert (place / "report.json").read_text() == "old"


def test_full_disk_leaves_the_old_file_and_no_debris(tmpfs):
    place = tmpfs("small", "size=64k")
    out = place / "quakes.csv"
    out.write_text("old,complete\n1,2\n")
    result = subprocess.run(fcnn("simulate", "earthquakes", "-n", 20_000, "-o", out),
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "quakes.csv: cannot write: No space left on device" in one_error(result.stderr)
    assert out.read_text() == "old,complete\n1,2\n"
    assert [p.name for p in place.iterdir()] == ["quakes.csv"]


@pytest.mark.slow
def test_full_disk_during_training_leaves_no_run_directory(tmpfs, quakes_csv):
    place = tmpfs("small", "size=16k")
    result = subprocess.run(fcnn("train", quakes_csv, "--epochs", 1, "--width", 256, "-q",
                                 "-o", place / "run"), capture_output=True, text=True)
    assert result.returncode == 1
    assert "No space left on device" in one_error(result.stderr)
    assert list(place.iterdir()) == []


def test_a_symlink_output_writes_through_and_stays_a_link(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "report.json"
    target.write_text("old")
    link = tmp_path / "report.json"
    link.symlink_to(target)
    write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real", "report.json"]
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def read_fifo_in_thread(path):
    """Start a reader of FIFO ``path``; returns a function that waits and gives its bytes."""
    got = []
    thread = threading.Thread(target=lambda: got.append(path.read_bytes()), daemon=True)
    thread.start()

    def result():
        thread.join(timeout=60)
        assert not thread.is_alive()
        return got[0]

    return result


def test_a_fifo_is_written_to_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    received = read_fifo_in_thread(fifo)
    write_text(fifo, "a,b\n1,2\n")
    assert received() == b"a,b\n1,2\n"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_device_is_written_to_and_stays_a_device(tmp_path):
    null, full = make_device(tmp_path / "null", 3), make_device(tmp_path / "full", 7)
    write_text(null, "anything")
    with pytest.raises(FcnnError, match=r"full: cannot write: No space left on device$"):
        write_text(full, "x" * 100_000)
    assert is_device(null) and is_device(full)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "null"]


# Each command, asked to write over one of its inputs: (args, the input that must survive).
def _predict(tmp_path, model, data, kind):
    return ["predict", model, data, "-o", alias(data, kind, "out.csv")], data


def _evaluate_over_data(tmp_path, model, data, kind):
    return ["evaluate", model, data, "-o", alias(data, kind, "out.csv")], data


def _evaluate_over_model(tmp_path, model, data, kind):
    return ["evaluate", model, data, "-o", alias(model, kind, "out.pt")], model


def _train_over_data(tmp_path, model, data, kind):
    run = tmp_path / "run"
    run.mkdir()
    history = run / "history.csv"
    shutil.copy(data, history)
    return ["train", alias(history, kind, "h.csv"), "-o", run, "--force", "--epochs", 1], history


def _train_over_val(tmp_path, model, data, kind):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(data, run / "config.json")
    val = alias(run / "config.json", kind, "val.csv")
    if kind == "plain":  # a table needs its suffix: the run's config.json, read as CSV
        val = run / "v.csv"
        val.symlink_to("config.json")
    return ["train", data, "--val", val, "-o", run, "--force", "--epochs", 1], run / "config.json"


def _simulate_preview(tmp_path, model, data, kind):
    table = tmp_path / "galaxies.csv"
    table.write_text("old table\n")
    preview = tmp_path / "galaxies.png"
    if kind == "symlink":
        preview.symlink_to(table.name)
    else:
        os.link(table, preview)
    return ["simulate", "galaxies", "-n", 3, "-o", table, "--preview", preview], table


SAME_FILE = {"predict": _predict, "evaluate_over_data": _evaluate_over_data,
             "evaluate_over_model": _evaluate_over_model, "train_over_data": _train_over_data,
             "train_over_val": _train_over_val, "simulate_preview": _simulate_preview}


@pytest.mark.parametrize("case, kind", [
    (case, kind) for case in sorted(SAME_FILE) for kind in ("plain", "symlink", "hardlink")
    if (case, kind) != ("simulate_preview", "plain")])  # their suffixes differ: never one name
def test_no_command_writes_over_its_input(runner, tmp_path, files, case, kind):
    model, data = files
    args, kept = SAME_FILE[case](tmp_path, model, data, kind)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    result = runner.invoke(cli, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert "is the same file as the input" in one_error(result.stderr)
    assert kept.read_bytes() == before[kept]
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_stdin_that_is_the_output_file_is_refused(files):
    model, data = files
    before = data.read_bytes()
    with open(data, "rb") as stdin:
        result = subprocess.run(fcnn("predict", model, "-", "-o", data), stdin=stdin,
                                capture_output=True, text=True)
    assert result.returncode == 1
    assert "is the same file as the input <stdin>" in one_error(result.stderr)
    assert data.read_bytes() == before


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_stdout_appended_to_an_input_is_refused(files, command):
    """`fcnn predict model.pt data.csv >> data.csv` would read what it writes, without end."""
    model, data = files
    before = data.read_bytes()
    with open(data, "ab") as stdout:
        result = subprocess.run(fcnn(command, model, data), stdout=stdout,
                                stderr=subprocess.PIPE, text=True)
    assert result.returncode == 1
    assert "<stdout>: is the same file as the input" in one_error(result.stderr)
    assert data.read_bytes() == before


@pytest.mark.parametrize("args", [["evaluate", "{model}", "{data}", "-o", "-"],
                                  ["evaluate", "{model}", "{data}", "-o", "-", "--json"],
                                  ["predict", "{model}", "{data}", "-o", "-"],
                                  ["simulate", "earthquakes", "-n", 4, "-o", "-"],
                                  ["simulate", "galaxies", "-n", 4, "--size", 8, "-o", "-"]])
def test_dash_output_is_stdout(runner, tmp_path, files, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    model, data = files
    result = runner.invoke(cli, [str(a).format(model=model, data=data) for a in args])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "-").exists()
    if args[0] == "evaluate":
        assert json.loads(result.stdout)["rows"] == 600  # the JSON once, and nothing else
    else:
        import io

        rows = pd.read_csv(io.StringIO(result.stdout), comment="#")
        assert len(rows) == (600 if args[0] == "predict" else 4)


def test_train_refuses_dash_as_its_run_directory(runner, tmp_path, quakes_csv, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["train", str(quakes_csv), "-o", "-", "--epochs", 1])
    assert result.exit_code == 2 and "run directory" in result.stderr
    assert list(tmp_path.iterdir()) == []


def _fifo_case(tmp_path, model, data, command):
    return {"evaluate": ["evaluate", model, data, "-o"], "predict": ["predict", model, data, "-o"],
            "simulate": ["simulate", "earthquakes", "-n", 5, "-o"]}[command]


@pytest.mark.parametrize("command", ["evaluate", "predict", "simulate"])
def test_commands_write_into_a_fifo(runner, tmp_path, files, command):
    model, data = files
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    received = read_fifo_in_thread(fifo)
    result = runner.invoke(cli, [str(a) for a in _fifo_case(tmp_path, model, data, command)] +
                           [str(fifo)])
    assert result.exit_code == 0, result.output
    text = received().decode()
    if command == "evaluate":
        assert json.loads(text)["rows"] == 600
    else:
        assert len(text.strip().splitlines()) == (601 if command == "predict" else 7)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("command", ["evaluate", "predict", "predict_parquet", "simulate",
                                     "train"])
def test_a_full_device_stays_a_device_and_the_error_is_one_line(runner, tmp_path, files,
                                                                 command):
    model, data = files
    full = make_device(tmp_path / ("full.parquet" if command == "predict_parquet" else
                                   "full.csv"), 7)
    if command == "train":
        run = tmp_path / "run"
        run.mkdir()
        (run / "model.pt").symlink_to(full)
        args = ["train", data, "--epochs", 1, "-q", "-o", run, "--force"]
    else:
        args = _fifo_case(tmp_path, model, data, command.split("_")[0]) + [full]
    result = runner.invoke(cli, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert "cannot write: No space left on device" in one_error(result.stderr)
    assert is_device(full)


@pytest.mark.parametrize("command", ["evaluate", "predict", "simulate"])
def test_a_symlink_output_stays_a_link(runner, tmp_path, files, command):
    model, data = files
    (tmp_path / "real").mkdir()
    target, link = tmp_path / "real" / "out.csv", tmp_path / "out.csv"
    target.write_text("old")
    link.symlink_to(target)
    result = runner.invoke(cli, [str(a) for a in _fifo_case(tmp_path, model, data, command)] +
                           [str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and target.read_text() != "old" and len(target.read_text()) > 100
    assert [p.name for p in target.parent.iterdir()] == ["out.csv"]


@pytest.mark.slow  # real processes that load torch
@pytest.mark.parametrize("args", [["predict", "{model}", "{data}"],
                                  ["simulate", "earthquakes", "-n", 20_000, "-o", "-"],
                                  ["evaluate", "{model}", "{data}", "--json"],
                                  ["evaluate", "{model}", "{data}"]])
def test_full_stdout_is_one_line(tmp_path, files, args):
    model, data = files
    full = make_device(tmp_path / "full", 7)
    with open(full, "wb") as stdout:
        result = subprocess.run(fcnn(*(str(a).format(model=model, data=data) for a in args)),
                                stdout=stdout, stderr=subprocess.PIPE, text=True)
    assert result.returncode == 1, result.stderr
    assert "<stdout>: cannot write: No space left on device" in one_error(result.stderr)


def close_stdin():
    os.close(0)


@pytest.mark.slow  # real processes that load torch
@pytest.mark.parametrize("args", [["predict", "{model}", "-"], ["evaluate", "{model}", "-"],
                                  ["train", "-", "-o", "{run}"]])
def test_closed_stdin_is_one_line(tmp_path, files, args):
    model, _ = files
    result = subprocess.run(fcnn(*(str(a).format(model=model, run=tmp_path / "run")
                                   for a in args)),
                            preexec_fn=close_stdin, capture_output=False,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert result.returncode == 1
    assert "<stdin>: cannot read: it is closed" in one_error(result.stderr)
    assert not (tmp_path / "run").exists()


def test_outputs_are_checked_before_the_model_loads(runner, tmp_path, files):
    _, data = files
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    for command in ("predict", "evaluate"):
        result = runner.invoke(cli, [command, str(junk), str(data), "-o",
                                     str(tmp_path / "nowhere" / "out.csv")])
        assert result.exit_code == 1 and "does not exist" in one_error(result.stderr)


def test_galaxies_write_nothing_when_the_preview_cannot_be_written(runner, tmp_path):
    table = tmp_path / "g.csv"
    result = runner.invoke(cli, ["simulate", "galaxies", "-n", 3, "-o", str(table),
                                 "--preview", str(tmp_path / "nowhere" / "g.png")])
    assert result.exit_code == 1 and "does not exist" in one_error(result.stderr)
    result = runner.invoke(cli, ["simulate", "galaxies", "-n", 3, "-o", str(table),
                                 "--preview", str(tmp_path / "g.jpg")])
    assert result.exit_code == 2 and "PNG" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_replaced_file_keeps_its_mode_and_a_new_one_takes_the_umasks(tmp_path):
    import stat

    from fcnn_cli.core.fileio import write_text

    private = tmp_path / "private.json"
    private.write_text("old")
    private.chmod(0o600)
    write_text(private, "new")
    assert private.read_text() == "new" and stat.S_IMODE(private.stat().st_mode) == 0o600
    fresh = tmp_path / "fresh.json"
    mask = os.umask(0o022)
    try:
        write_text(fresh, "x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644


def test_a_write_failure_of_several_lines_is_one_line():
    from fcnn_cli.core.errors import FcnnError
    from fcnn_cli.core.fileio import writing

    with pytest.raises(FcnnError) as raised, writing("out.h5"):
        raise OSError("Unable to create file (cause)\n  major: File accessibility\n")
    assert str(raised.value) == "out.h5: cannot write: Unable to create file (cause)"


# --- Reading back the files fcnn wrote: regular files of a bounded size only ---------------

def _node(path, kind):
    """``path`` made a FIFO, a device node, a directory, a huge sparse file, or a link to a
    FIFO; what reading it must say."""
    from nodes import ZERO, make_device

    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        make_device(path, ZERO)  # endless zeros: read, it would never end
    elif kind == "directory":
        path.mkdir()
    elif kind == "huge":
        with open(path, "wb") as f:
            os.truncate(f.fileno(), 3 << 30)  # 3 GiB of nothing on the disk
    else:
        os.mkfifo(path.with_name("pipe"))
        path.symlink_to("pipe")
    hint = "; a run's configuration is a file that fcnn writes"
    return {"fifo": "not a regular file (a FIFO)" + hint, "link": "not a regular file (a FIFO)"
            + hint, "device": "not a regular file (a character device)" + hint,
            "directory": "is a directory, not a run's configuration",
            "huge": "larger than 64 MiB"}[kind]


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "huge", "link"])
def test_read_regular_refuses_what_is_no_small_file_without_reading_it(tmp_path, kind):
    import signal

    from fcnn_cli.core.fileio import check_regular, read_regular

    path = tmp_path / "config.json"
    said = _node(path, kind)

    def hung(*_):
        raise TimeoutError("reading hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        for read in (check_regular, read_regular):
            with pytest.raises(FcnnError) as refused:
                read(path, 64 << 20, "config.json", "a run's configuration")
            assert str(refused.value) == f"config.json: {said}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_read_regular_reads_up_to_its_limit_through_links(tmp_path):
    from fcnn_cli.core.fileio import read_regular

    path = tmp_path / "history.csv"
    path.write_bytes(b"epoch\n1\n" * (1 << 17))  # 1 MiB
    (tmp_path / "link.csv").symlink_to(path.name)
    assert read_regular(tmp_path / "link.csv", 1 << 20) == path.read_bytes()
    with pytest.raises(FcnnError, match=rf"^{path}: larger than 0.5 MiB$"):
        read_regular(path, 1 << 19)
    with pytest.raises(FcnnError, match=rf"^{tmp_path / 'gone'}: no such file$"):
        read_regular(tmp_path / "gone", 8)


def test_open_regular_checks_the_descriptor_it_opened(tmp_path, monkeypatch):
    """A path that turns into a FIFO between the look and the open is refused all the same."""
    from fcnn_cli.core import fileio

    path = tmp_path / "metrics.json"
    path.write_text("{}")
    real_open = os.open

    def swapped(name, flags, *args):
        if str(name) == str(path):
            path.unlink()
            os.mkfifo(path)
        return real_open(name, flags, *args)

    monkeypatch.setattr(fileio.os, "open", swapped)
    with pytest.raises(FcnnError, match="not a regular file \\(a FIFO\\)"):
        fileio.read_regular(path, 1 << 20)


def test_a_name_that_is_not_utf8_is_written_as_its_bytes(tmp_path):
    name = os.fsdecode(b"bad\xff.csv")  # as Python holds such a name: a surrogate
    write_text(tmp_path / "out.txt", f"data: {name}\n")
    assert (tmp_path / "out.txt").read_bytes() == b"data: bad\xff.csv\n"


def test_the_temporaries_a_killed_writer_left_are_removed_and_nothing_else(tmp_path):
    from fcnn_cli.core.fileio import remove_temporaries

    (tmp_path / ".roc.png.k2j3_x.tmp").write_bytes(b"half a png")
    kept = [tmp_path / "roc.png", tmp_path / "notes.tmp", tmp_path / ".hidden"]
    for path in kept:
        path.write_text("kept")
    (tmp_path / ".dir.tmp").mkdir()
    remove_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".dir.tmp", *(p.name for p in kept)])
    remove_temporaries(tmp_path / "none")  # a directory not made yet: nothing to remove
