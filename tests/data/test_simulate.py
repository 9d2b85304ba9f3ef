import json

import numpy as np
import pandas as pd
import pytest

from fcnn_cli.data import simulate
from fcnn_cli.core.errors import FcnnError


def test_travel_time_is_distance_over_velocity():
    t = simulate.travel_times([[3.0, 4.0], [0.0, 0.0]], [[0.0, 0.0], [6.0, 8.0]], 2.0)
    np.testing.assert_allclose(t, [[2.5, 2.5], [0.0, 5.0]])


def test_columns_and_arrival_times_match_the_formula():
    stations = [(-10.0, 0.0), (10.0, 0.0)]
    table = simulate.earthquakes(n=50, seed=4, extent=20, stations=stations, vp=6.0, vs=3.5)
    f = table.frame
    assert list(f.columns) == ["x", "y", "tp1", "ts1", "tp2", "ts2"]
    assert table.targets == ["x", "y"]
    assert table.units["x"] == "km" and table.units["tp1"] == "s"
    d1 = np.hypot(f.x + 10.0, f.y)
    np.testing.assert_allclose(f.tp1, d1 / 6.0)
    np.testing.assert_allclose(f.ts1, d1 / 3.5)
    assert f[["x", "y"]].abs().max().max() <= 20.0


def test_default_stations_near_corners_and_region():
    f = simulate.earthquakes(n=2000, seed=0).frame
    assert f.x.between(-50, 50).all() and f.y.between(-50, 50).all()
    # uniform: the mean is near zero and each quadrant gets about a quarter
    assert abs(f.x.mean()) < 3 and abs(f.y.mean()) < 3
    assert 0.2 < ((f.x > 0) & (f.y > 0)).mean() < 0.3
    for sx, sy in simulate.DEFAULT_STATIONS:
        assert 35 < abs(sx) <= 50 and 35 < abs(sy) <= 50


def test_seed_repeats_and_differs():
    a = simulate.earthquakes(n=20, seed=7).frame
    b = simulate.earthquakes(n=20, seed=7).frame
    c = simulate.earthquakes(n=20, seed=8).frame
    assert a.equals(b)
    assert not a.equals(c)


def test_noise_has_the_requested_spread():
    clean = simulate.earthquakes(n=5000, seed=2).frame
    noisy = simulate.earthquakes(n=5000, seed=2, noise=0.05).frame
    diff = (noisy.tp3 - clean.tp3).to_numpy()
    assert np.allclose(noisy.x, clean.x)
    assert 0.045 < diff.std() < 0.055


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"vs": 7.0}, {"noise": -1.0}, {"extent": 0.0}])
def test_invalid_options_are_user_errors(kwargs):
    with pytest.raises(FcnnError):
        simulate.earthquakes(**kwargs)


STATIONS = [(1.0, 2.0), (3.0, -4.0), (50.0, 50.0), (-7.0, 9.0), (0.0, 0.0)]


def joined(tables):
    tables = list(tables)
    assert [t.first_row for t in tables] == [sum(len(u.frame) for u in tables[:i])
                                             for i in range(len(tables))]
    return pd.concat([t.frame for t in tables], ignore_index=True)


@pytest.mark.parametrize("rows", [1, 7, 333, 599, 100_000])
@pytest.mark.parametrize("kwargs", [dict(n=600, seed=3), dict(n=600, seed=5, noise=0.05,
                                                              stations=STATIONS)])
def test_earthquakes_in_chunks_equal_all_at_once(kwargs, rows):
    whole = simulate.earthquakes(**kwargs)
    chunks = list(simulate.earthquake_tables(**kwargs, rows=rows))
    assert len(chunks) == -(-600 // rows) and all(len(t.frame) <= rows for t in chunks)
    assert chunks[0].targets == whole.targets and chunks[0].units == whole.units
    pd.testing.assert_frame_equal(joined(chunks), whole.frame, check_exact=True)


@pytest.mark.parametrize("rows", [1, 100, 499])
@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_galaxies_in_chunks_equal_all_at_once(noise, rows):
    whole = simulate.galaxies(n=500, seed=4, size=12, noise=noise)
    chunks = list(simulate.galaxy_tables(n=500, seed=4, size=12, noise=noise, rows=rows))
    assert len(chunks) == -(-500 // rows) and chunks[0].targets == ["rotation"]
    pd.testing.assert_frame_equal(joined(chunks), whole.frame, check_exact=True)


# sha256 of files made before simulate chunked its output (the figures in docs/ come from them)
BEFORE_CHUNKING = {
    ("earthquakes",): "b6f451884be44eaffc0ac992d45ab90454d2de60cf7131e90356c9ecaa162faa",
    ("earthquakes", "-n", "70000", "--noise", "0.01", "--seed", "3"):
        "9e2d681c3df9280374818a6e0c9605b5b83f3d3b1a05f488b45952dee7d47b48",
    ("galaxies", "-n", "3000", "--size", "16", "--noise", "0.1", "--seed", "2"):
        "39a7e53a9f12c0e3664564d18b35af26e10abd344e9d5db7220fea528dec841e",
}


@pytest.mark.parametrize("args", sorted(BEFORE_CHUNKING))
def test_files_are_those_made_before_chunking(runner, tmp_path, monkeypatch, args):
    import hashlib

    from fcnn_cli.commands import cli

    monkeypatch.setattr(simulate, "CHUNK_ROWS", 20_000)  # 70 000 rows: four chunks
    monkeypatch.setattr(simulate, "GALAXY_CHUNK_PIXELS", 256 * 1000)  # three chunks
    out = tmp_path / "out.csv"
    result = runner.invoke(cli, ["simulate", *args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    # The station metadata and a noisy table's pick noise came later: the metadata line as it
    # was then, the rows as written.
    first, rest = out.read_bytes().split(b"\n", 1)
    meta = json.loads(first.removeprefix(b"# fcnn "))
    meta.pop("stations", None), meta.pop("velocities", None), meta.pop("picks", None)
    before = b"# fcnn " + json.dumps(meta).encode() + b"\n" + rest
    assert hashlib.sha256(before).hexdigest() == BEFORE_CHUNKING[args]


def test_earthquakes_record_their_stations_and_velocities(tmp_path):
    from fcnn_cli.data.tables import read_table
    from fcnn_cli.data.writer import write_table

    stations = ((0.0, 1.5), (-3.0, 4.0))
    table = simulate.earthquakes(n=5, seed=1, stations=stations, vp=5.0, vs=3.0)
    path = tmp_path / "q.parquet"
    write_table(table, path)
    for back in (read_table(path), table):
        assert back.extra["stations"] == {"columns": ["x", "y"], "unit": "km",
                                          "names": ["1", "2"],
                                          "positions": [[0.0, 1.5], [-3.0, 4.0]]}
        assert back.extra["velocities"] == {"vp": 5.0, "vs": 3.0, "unit": "km/s"}


def test_sample_data_is_what_the_readme_says(tmp_path):
    """Byte for byte what the simulator writes now: rows, labels, units, stations, velocities."""
    from pathlib import Path

    from fcnn_cli.data.writer import write_table

    write_table(simulate.earthquakes(n=500, seed=42), tmp_path / "quakes.csv")
    sample = (Path(__file__).parents[2] / "sample_data" / "quakes.csv").read_bytes()
    assert sample == (tmp_path / "quakes.csv").read_bytes()
    assert b'"stations": {"columns": ["x", "y"]' in sample.split(b"\n")[0]


def test_many_rows_stream_in_bounded_memory():
    import tracemalloc

    n, rows = 1_000_000, 10_000  # all at once: 10 float64 columns, 80 MB and more
    tracemalloc.start()
    try:
        count = 0
        for table in simulate.earthquake_tables(n=n, seed=1, noise=0.01, rows=rows):
            assert len(table.frame) <= rows
            count += len(table.frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == n
    assert peak < 40 * 2 ** 20  # the normals skipped in batches: 4M float64 = 32 MB
    tracemalloc.start()
    try:
        for _ in simulate.galaxy_tables(n=2000, seed=1, size=32, rows=100):
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2 ** 20  # all at once: 2000 images, 8 MB of pixels, 80 MB of work


def test_cli_writes_in_chunks(runner, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from fcnn_cli.commands import cli

    monkeypatch.setattr(simulate, "CHUNK_ROWS", 1000)
    monkeypatch.setattr(simulate, "GALAXY_CHUNK_PIXELS", 144 * 64)
    out = tmp_path / "q.parquet"
    result = runner.invoke(cli, ["simulate", "earthquakes", "-n", "25000", "--noise", "0.1",
                                 "--seed", "6", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.ParquetFile(out).num_row_groups == 25  # a row group a chunk
    pd.testing.assert_frame_equal(pd.read_parquet(out),
                                  simulate.earthquakes(n=25000, seed=6, noise=0.1).frame)
    out, png = tmp_path / "g.parquet", tmp_path / "g.png"
    result = runner.invoke(cli, ["simulate", "galaxies", "-n", "300", "--size", "12",
                                 "--preview", str(png), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.ParquetFile(out).num_row_groups == 5 and png.read_bytes()[:4] == b"\x89PNG"
    pd.testing.assert_frame_equal(pd.read_parquet(out),
                                  simulate.galaxies(n=300, size=12).frame)


@pytest.mark.parametrize("kwargs", [{"extent": float("nan")}, {"extent": float("inf")},
                                    {"noise": float("nan")}, {"noise": float("inf")},
                                    {"vp": float("inf")}, {"vs": float("nan")},
                                    {"stations": [(0.0, float("nan"))]}, {"seed": -1},
                                    {"seed": 2 ** 63}, {"seed": 1.5}, {"extent": 1e308},
                                    {"vs": 1e-320}])
def test_non_finite_options_and_bad_seeds_are_user_errors(kwargs):
    with pytest.raises(FcnnError):
        simulate.earthquakes(**kwargs)
    with pytest.raises(FcnnError):
        simulate.earthquake_tables(**kwargs)  # at once, before the first row
    if set(kwargs) <= {"noise", "seed"}:
        with pytest.raises(FcnnError):
            simulate.galaxy_tables(**kwargs)


def test_seeds_up_to_the_limit_and_numpy_integers_work():
    from fcnn_cli.core.config import MAX_SEED

    assert len(simulate.earthquakes(n=3, seed=MAX_SEED).frame) == 3
    a = simulate.earthquakes(n=3, seed=np.int64(7)).frame
    assert a.equals(simulate.earthquakes(n=3, seed=7).frame)


def test_a_noisy_lecture_table_records_its_pick_noise_for_the_locator():
    """Without it the locator would weigh the picks as exact and send every event to its
    grid search."""
    assert "picks" not in simulate.earthquakes(n=10, seed=1).extra
    picks = simulate.earthquakes(n=10, seed=1, noise=0.05).extra["picks"]
    assert (picks["noise_p"], picks["noise_s"]) == (0.05, 0.05)
