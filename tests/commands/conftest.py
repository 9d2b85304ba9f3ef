"""What the tests of the commands share: fcnn run in a CliRunner, and a trained run."""

import pytest
from click.testing import CliRunner

from fcnn_cli.commands import cli


def invoke(runner, *args, input=None, code=0):
    """fcnn with ``args`` in ``runner``; it must exit with ``code``, and fail without a
    traceback."""
    result = runner.invoke(cli, [str(a) for a in args], input=input)
    assert result.exit_code == code, result.output + str(result.exception)
    if code:
        assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="session")
def run():
    """``run(runner, "train", data, …, code=2)``: see invoke."""
    return invoke


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, quakes_csv):
    """A run of two epochs without plots, for the commands that show one."""
    out = tmp_path_factory.mktemp("runs") / "run"
    invoke(CliRunner(), "train", quakes_csv, "--epochs", 2, "-o", out, "-q", "--no-plots")
    return out


def write_samples(directory, rows=200, seed=0):
    """Two signal files and one background file of the same columns: x separates the classes,
    w is an event weight (a few negative) and n a count that selections cut on."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    for name, centre in (("sig_1", 1.0), ("sig_2", 1.0), ("bkg", -1.0)):
        pd.DataFrame({"x": rng.normal(centre, 1, rows), "y": rng.normal(0, 1, rows),
                      "w": rng.uniform(-0.2, 1.5, rows), "n": rng.integers(0, 4, rows)}
                     ).to_csv(directory / f"{name}.csv", index=False)
    return directory


@pytest.fixture(scope="session")
def sample_files(tmp_path_factory):
    return write_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="session")
def samples_run(tmp_path_factory, sample_files):
    """A run trained on a signal sample of two files (a glob) and a background sample."""
    out = tmp_path_factory.mktemp("runs") / "samples"
    invoke(CliRunner(), "train", "--sample", f"signal={sample_files}/sig_*.csv",
           "--sample", f"background={sample_files}/bkg.csv", "--epochs", 2, "-o", out, "-q",
           "--no-plots")
    return out


@pytest.fixture(scope="session")
def selected_run(tmp_path_factory, sample_files):
    """A run of the samples with a derived column and a selection."""
    out = tmp_path_factory.mktemp("runs") / "selected"
    invoke(CliRunner(), "train", "--sample", f"signal={sample_files}/sig_*.csv",
           "--sample", f"background={sample_files}/bkg.csv", "--define", "r=x * y",
           "--where", "n >= 1", "--epochs", 2, "-o", out, "-q", "--no-plots")
    return out
