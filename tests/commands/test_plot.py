"""fcnn plot, train --no-plots, and where plots may go."""


def test_no_plots_draws_none_and_plot_draws_them(run, runner, run_dir, tmp_path):
    assert not (run_dir / "plots").exists()
    out = run(runner, "plot", run_dir, "-o", tmp_path / "p").output.split()
    assert sorted(p.rsplit("/", 1)[1] for p in out) == [
        "correlations.png", "distance_cdf.png", "distance_map.png", "learning_curves.png",
        "overtraining.png", "position_map.png", "regression_x.png", "regression_y.png"]


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
