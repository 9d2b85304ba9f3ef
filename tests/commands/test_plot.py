"""fcnn plot, train --no-plots, and where plots may go."""

import pytest


def test_no_plots_draws_none_and_plot_draws_them(run, runner, run_dir, tmp_path):
    assert not (run_dir / "plots").exists()
    out = run(runner, "plot", run_dir, "-o", tmp_path / "p").output.split()
    assert sorted(p.rsplit("/", 1)[1] for p in out) == [
        "correlations.png", "distance_cdf.png", "distance_map.png", "learning_curves.png",
        "overtraining.png", "position_map.png", "regression_x.png", "regression_y.png"]


def test_with_two_cpus_the_command_draws_in_two_processes_the_same_figures(run_dir, tmp_path):
    """As its own process with two CPUs (the tests' OMP_NUM_THREADS=1 gives one) `fcnn plot`
    draws as train's drawer does, the held-out rows' figures in a forked child: the same
    files, byte for byte."""
    import os
    import subprocess
    import sys

    from fcnn_cli.results import plots

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs a second CPU")
    code = ("import sys; import fcnn_cli.results.plots as p; forked = p.side_by_side; "
            "p.side_by_side = lambda *a: print('forked') or forked(*a); "
            "from fcnn_cli.commands import cli; cli.main(sys.argv[1:], prog_name='fcnn')")
    done = subprocess.run([sys.executable, "-c", code, "plot", str(run_dir), "-o",
                           str(tmp_path / "two")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "forked"
    one = plots.plot_run(run_dir, tmp_path / "one")
    assert len(one) == 8
    for path in one:
        assert (tmp_path / "two" / path.name).read_bytes() == path.read_bytes(), path.name


def test_plot_of_a_directory_that_is_no_run_is_one_line(run, runner, tmp_path):
    assert "not a run directory" in run(runner, "plot", tmp_path, code=1).output


def test_plots_go_into_a_directory_not_stdout_or_a_file(run, runner, run_dir, quakes_csv, tmp_path,
                                                       monkeypatch):
    here = tmp_path / "q.csv"
    here.write_text("a\n1\n")
    assert "--output" in run(runner, "plot", run_dir, "-o", here, code=1).output
    assert "exists and is not a directory" in run(runner, "plot", run_dir, "-o", here,
                                                  code=1).output
    monkeypatch.chdir(tmp_path)
    out = run(runner, "evaluate", run_dir / "model.pt", quakes_csv, "--plots", "-",
              code=1).output
    assert "--plots: the PNG files go into a directory" in out and not (tmp_path / "-").exists()
    assert here.read_text() == "a\n1\n"


def test_a_file_in_place_of_the_default_plots_directory_names_no_option(run, runner, run_dir,
                                                                         tmp_path):
    import shutil

    copy = tmp_path / "rd"
    shutil.copytree(run_dir, copy)
    (copy / "plots").write_text("mine\n")
    out = run(runner, "plot", copy, code=1).output
    assert out == f"Error: {copy / 'plots'}: exists and is not a directory\n"
    assert (copy / "plots").read_text() == "mine\n"
