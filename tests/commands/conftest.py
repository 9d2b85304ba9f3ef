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
