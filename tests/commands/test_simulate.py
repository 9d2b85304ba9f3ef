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


def test_realistic_earthquakes_from_files_of_stations_and_layers(run, runner, tmp_path):
    import json

    (tmp_path / "net.csv").write_text("name,x,y,elevation\nHILL,10,0,1.2\nLOW,-10,5,0\n")
    (tmp_path / "crust.txt").write_text("0 5.5 3.2\n15 6.3 3.6\n30 7.9 4.4\n")
    out = run(runner, "simulate", "earthquakes", "-n", 4, "--stations", tmp_path / "net.csv",
              "--velocity-model", tmp_path / "crust.txt", "--depth", "5,25", "--origin-time",
              "unknown", "--noise-s", "0.05", "--missing", "0.5", "-o", "-").stdout
    first, header = out.splitlines()[:2]
    meta = json.loads(first.removeprefix("# fcnn "))
    assert header == "x,y,z,t0,tp1,ts1,tp2,ts2" and meta["targets"] == ["x", "y", "z"]
    assert meta["stations"]["names"] == ["HILL", "LOW"] and meta["aside"] == ["t0"]
    assert meta["velocities"]["top"] == [0.0, 15.0, 30.0]
    assert meta["picks"]["noise_p"] == 0.025 and meta["picks"]["missing"] == 0.5


def test_realistic_options_refused_name_their_flags(run, runner, tmp_path):
    for args, says in [(["--noise", "0.1", "--noise-p", "0.1"], "--noise-p"),
                       (["--station", "1,2", "--stations", "3"], "--stations"),
                       (["--stations", tmp_path / "none.csv"], "--stations"),
                       (["--velocity-model", tmp_path / "none.txt"], "--velocity-model"),
                       (["--depth", "9,3"], "--depth"), (["--missing", "1"], "--missing")]:
        result = run(runner, "simulate", "earthquakes", "-n", 3, *args, "-o", "-", code=2)
        assert says in result.output and "Traceback" not in result.output
