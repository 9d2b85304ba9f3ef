"""The command line run in-process, as the end-to-end tests run it, and what its run kept."""

import json

from fcnn_cli.commands import cli


def invoke(runner, *args, code=0):
    """``fcnn ARGS`` through click's runner (``runner``), which must exit with ``code``."""
    result = runner.invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output + str(result.exception)
    return result


def rmse_of(run_dir):
    """The overall test RMSE that a run directory's metrics.json holds."""
    return json.loads((run_dir / "metrics.json").read_text())["test"]["overall"]["rmse"]
