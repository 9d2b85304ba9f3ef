"""Parquet files and directories read piece by piece: pieces, directories walked once through
links, bad and changed files named."""

import os
import signal
import subprocess
import sys

import pytest

from fcnn_cli.core.errors import DataChanged, FcnnError
from fcnn_cli.data import simulate, sources
from pieces import three_files, write_parquet


def test_pieces_are_the_row_groups(quake_file):
    source = sources.open_source(quake_file)
    assert source.pieces == [200] * 15
    assert source.targets == ["x", "y"]
    piece = source.read(3, ["x", "tp1"])
    assert list(piece.frame.columns) == ["x", "tp1"] and piece.first_row == 600
    assert piece.row(0) == 601


def test_a_bad_file_in_a_directory_is_named(tmp_path, quake_frame):
    write_parquet(quake_frame, tmp_path / "d" / "a.parquet", ["x", "y"])
    (tmp_path / "d" / "notes.parquet").write_text("not parquet")
    with pytest.raises(FcnnError, match=r"notes\.parquet: not a readable Parquet file") as e:
        sources.open_source(tmp_path / "d")
    assert "\n" not in str(e.value)


def test_streaming_takes_parquet_only(tmp_path, quakes_csv):
    with pytest.raises(FcnnError, match="streaming reads Parquet"):
        sources.open_source(quakes_csv)
    with pytest.raises(FcnnError, match="no such file or directory"):
        sources.open_source(tmp_path / "nowhere.parquet")


def _replace(path, frame):
    """Another table in ``path``'s place, as a writer that renames its output does."""
    new = write_parquet(frame, path.with_name("new.tmp"), ["x", "y"], 250)
    os.replace(new, path)


def _rewrite(path, frame):
    """The same number of bytes written over the file in place, a moment later."""
    data = path.read_bytes()
    path.write_bytes(data)
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))


@pytest.mark.parametrize("change, what", [
    (lambda p, f: p.unlink(), r"it is gone"),
    (lambda p, f: os.truncate(p, 100), r"its size went from \d+ to 100 bytes"),
    (lambda p, f: _replace(p, f.iloc[::-1]), "another file took its place"),
    (_rewrite, "it was written to"),
], ids=["deleted", "truncated", "replaced", "rewritten"])
def test_a_file_that_changed_is_read_no_more(tmp_path, quake_frame, change, what):
    d = three_files(tmp_path, quake_frame)
    val = write_parquet(quake_frame.iloc[:300], tmp_path / "val.parquet", ["x", "y"])
    source, chunks = sources.open_source(d), sources.FileChunks(val)
    assert len(source.arrow(4)) == 250 and len(list(chunks.tables())) == 1
    for path in (d / "p1.parquet", val):
        change(path, quake_frame.iloc[:1000])
    for read in (lambda: source.arrow(4), lambda: list(chunks.tables())):
        with pytest.raises(DataChanged, match=f": changed while the run was reading it "
                                              f"\\({what}\\)$") as e:
            read()
        assert e.value.exit_code == 75 and "\n" not in str(e.value)
    assert len(source.arrow(0)) == 250  # the other files are read as before


def test_links_in_a_directory_are_followed_and_each_file_read_once(tmp_path, quake_frame,
                                                                   logged):
    d, elsewhere = tmp_path / "d", tmp_path / "elsewhere"
    write_parquet(quake_frame.iloc[:1000], d / "a.parquet", ["x", "y"])
    write_parquet(quake_frame.iloc[1000:2000], d / "sub" / "b.parquet", ["x", "y"])
    write_parquet(quake_frame.iloc[2000:], elsewhere / "c.parquet", ["x", "y"])
    (d / "a2.parquet").symlink_to("a.parquet")  # a file of the directory twice
    os.link(d / "a.parquet", d / "hard.parquet")  # and three times
    (d / "alias").symlink_to("sub")  # a directory of the directory twice
    (d / "more").symlink_to(elsewhere)  # a directory elsewhere: taken, once
    (d / "more2").symlink_to(elsewhere)
    (d / "_SUCCESS").write_text("")  # a writer's own files are passed over
    (d / ".part.crc").write_text("")
    source = sources.open_source(d)
    files = {source.read(k, ["x"]).name for k in range(len(source.pieces))}
    assert files == {str(d / "a.parquet"), str(d / "alias" / "b.parquet"),
                     str(d / "more" / "c.parquet")}
    assert sum(source.pieces) == 3000
    left_out = [r.getMessage().split(":")[0] for r in logged.records if "left out" in r.message]
    assert left_out == [str(d / p) for p in ("a2.parquet", "hard.parquet", "more2", "sub")]


@pytest.mark.parametrize("links, cycle", [
    ({"a": ".", "b": "."}, "a"),  # read without end, a run's pyarrow walk never ended
    ({"up": ".."}, "up"),  # once per path through up/, up/d/up/, ...
    ({"sub/back": ".."}, "sub/back"),
], ids=["twice-to-itself", "to-its-parent", "from-below"])
def test_a_link_round_a_cycle_is_refused_at_once(tmp_path, quake_frame, links, cycle):
    d = tmp_path / "d"
    write_parquet(quake_frame, d / "sub" / "q.parquet", ["x", "y"])
    for name, target in links.items():
        (d / name).symlink_to(target)
    done = subprocess.run([sys.executable, "-m", "fcnn_cli", "train", str(d), "--stream",
                           "-o", str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr == (f"Error: {d / cycle}: a symbolic link to a directory that holds it "
                           "(a cycle): its files would be read again and again; remove the "
                           "link\n")
    assert not (tmp_path / "run").exists()


def test_a_link_to_nothing_and_a_fifo_are_named(tmp_path, quake_frame):
    d = tmp_path / "d"
    write_parquet(quake_frame, d / "q.parquet", ["x", "y"])
    (d / "gone.parquet").symlink_to("nothing.parquet")
    with pytest.raises(FcnnError, match=r"gone\.parquet \(a symbolic link to "
                                        r"'nothing\.parquet'\): No such file or directory$"):
        sources.open_source(d)
    (d / "gone.parquet").unlink()
    os.mkfifo(d / "pipe.parquet")  # would block the reading of its footer
    with pytest.raises(FcnnError, match=r"pipe\.parquet: not a regular file"):
        sources.open_source(d)


def test_sigterm_stops_the_walk_of_a_directory(tmp_path, quake_frame):
    """The walk is stalled where a hung file server would stall it (listing the directory);
    SIGTERM still ends the command at once, with nothing saved."""
    d, stall = tmp_path / "d", tmp_path / "stall"
    write_parquet(quake_frame, d / "q.parquet", ["x", "y"])
    os.mkfifo(stall)
    script = f"""
import os, sys
from fcnn_cli.commands import main
listdir = os.listdir
def stalled(path):
    if str(path) == {str(d)!r}:
        print("walking", file=sys.stderr, flush=True)
        open({str(stall)!r}).read()  # no writer ever comes
    return listdir(path)
os.listdir = stalled
sys.argv = ["fcnn", "train", {str(d)!r}, "--stream", "-o", {str(tmp_path / "run")!r}]
main()
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr.readline() == "walking\n"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 143 and err == "interrupted: nothing saved\n"
    assert not (tmp_path / "run").exists()



def _train_streamed(tmp_path, directory, *args, **kwargs):
    """fcnn train --stream in a process of its own, which a hang cannot stop the tests in."""
    return subprocess.run([sys.executable, "-m", "fcnn_cli", "train", str(directory),
                           "--stream", "--epochs", "2", "-q", "-o", str(tmp_path / "run"),
                           *map(str, args)], capture_output=True, text=True, timeout=120,
                          **kwargs)


@pytest.mark.parametrize("flag", ["--val", "--test"])
@pytest.mark.parametrize("kind", ["stdin", "fifo"])
def test_a_validation_file_from_stdin_or_a_pipe_is_read_once(tmp_path, quake_frame, flag,
                                                             kind):
    """Read at every pass, it would be empty on the second (stdin), or its open would wait for
    ever for a writer that has gone (a FIFO)."""
    from fcnn_cli.data.writer import write_table

    write_parquet(quake_frame.iloc[:2000], tmp_path / "d" / "q.parquet", ["x", "y"])
    val = tmp_path / "val.csv"
    write_table(simulate.earthquakes(n=300, seed=7), val)
    if kind == "stdin":
        with open(val, "rb") as table:
            done = _train_streamed(tmp_path, tmp_path / "d", flag, "-", stdin=table)
    else:
        pipe = tmp_path / "pipe.csv"
        os.mkfifo(pipe)
        with open(val, "rb") as table:
            writer = subprocess.Popen(["sh", "-c", f"cat > '{pipe}'"], stdin=table)
        try:
            done = _train_streamed(tmp_path, tmp_path / "d", flag, pipe)
        finally:
            writer.kill()
            writer.wait()
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_a_source_knows_its_files_through_links(tmp_path, quake_frame):
    d = three_files(tmp_path, quake_frame)
    (tmp_path / "soft.parquet").symlink_to(d / "p1.parquet")
    os.link(d / "p2.parquet", tmp_path / "hard.parquet")
    write_parquet(quake_frame.iloc[:100], tmp_path / "other.parquet", ["x", "y"])
    source = sources.open_source(d)
    assert [source.holds(p) for p in (d / "p0.parquet", tmp_path / "soft.parquet",
                                      tmp_path / "hard.parquet", tmp_path / "other.parquet",
                                      tmp_path / "missing.parquet")] == [True] * 3 + [False] * 2


# Issue #24: the Parquet files of a recipe as one source, each piece through its steps.

def test_a_recipe_source_gives_each_piece_through_the_steps(tmp_path, quake_frame):
    import numpy as np

    from fcnn_cli.data.recipe import WEIGHT, Recipe

    d = three_files(tmp_path, quake_frame)
    recipe = Recipe.of_options(samples=[f"a={d}/p0.parquet,{d}/p1.parquet*2", f"b={d}/p2.parquet"],
                               define=["d1=ts1 - tp1"], where="d1 > 0.5", weight="tp2").find()
    source = sources.RecipeSource(recipe)
    assert source.pieces == [250] * 12 and source.starts[4] == 1000
    assert source.targets == ["sample"] and source.classes == ["a", "b"]
    raw = quake_frame.iloc[1250:1500]
    keep = (raw.ts1 - raw.tp1 > 0.5).to_numpy()
    piece = source.read(5, ["d1", "tp1", "sample", WEIGHT])
    assert piece.name == f"{d}/p1.parquet" and piece.first_row == 250
    np.testing.assert_allclose(piece.frame.d1, (raw.ts1 - raw.tp1)[keep])
    np.testing.assert_allclose(piece.frame[WEIGHT], raw.tp2[keep] * 2)
    assert set(piece.frame["sample"]) == {"a"} and piece.file_rows is None
    again = source.read(5, ["d1", "tp1", "sample", WEIGHT], source.arrow(5, ["d1", "tp1",
                                                                          "sample", WEIGHT]))
    assert again.frame.equals(piece.frame)
    assert list(again.frame["sample"].cat.categories) == ["a", "b"]
    assert source.holds(d / "p2.parquet") and not source.holds(tmp_path / "elsewhere")


def test_a_recipe_source_names_a_file_without_a_column_and_one_not_parquet(tmp_path,
                                                                           quake_frame):
    from fcnn_cli.data.recipe import Recipe

    d = three_files(tmp_path, quake_frame)
    write_parquet(quake_frame.drop(columns="ts1").iloc[:500], d / "q.parquet", ["x", "y"])
    recipe = Recipe.of_options(samples=[f"a={d}/p0.parquet", f"b={d}/q.parquet"],
                               define=["d1=ts1 - tp1"]).find()
    source = sources.RecipeSource(recipe)
    with pytest.raises(FcnnError, match=r"q.parquet: no column 'ts1'; the files must agree on "
                                        "the columns used"):
        source.read(4, ["d1"])
    (d / "c.csv").write_text("x\n1\n")
    with pytest.raises(FcnnError, match=r"c.csv: stream reads Parquet files; convert it"):
        sources.RecipeSource(Recipe.of_options(samples=[f"a={d}/c.csv", "b=x.csv"]).find())
