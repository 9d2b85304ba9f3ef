"""fcnn simulate earthquakes and galaxies."""

import pandas as pd


def test_simulate_writes_csv_parquet_and_stdout(run, runner, tmp_path):
    run(runner, "simulate", "earthquakes", "-n", 10, "-o", tmp_path / "q.csv")
    run(runner, "simulate", "earthquakes", "-n", 10, "-o", tmp_path / "q.parquet")
    a = pd.read_csv(tmp_path / "q.csv", comment="#")
    b = pd.read_parquet(tmp_path / "q.parquet")
    pd.testing.assert_frame_equal(a, b)
    out = run(runner, "simulate", "earthquakes", "-n", 3, "-o", "-").stdout
    assert out.startswith('# fcnn {"targets": ["x", "y"]')
    assert len(out.strip().splitlines()) == 5
