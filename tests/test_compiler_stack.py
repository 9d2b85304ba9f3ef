"""The commands never import torch's compiler stack (``torch._dynamo``, about a second of every
run): each runs in one fresh interpreter that says after each command whether it is loaded."""

import subprocess
import sys

import pytest

RUN = """
import sys
from fcnn_cli.commands import cli
for args in sys.argv[1:]:
    try:
        cli.main(args.split(), prog_name="fcnn", standalone_mode=False)
    except SystemExit as done:
        assert not done.code, (args, done.code)
    print(args.split()[0], "torch._dynamo" in sys.modules)
"""


@pytest.mark.slow
def test_train_evaluate_predict_never_import_dynamo(tmp_path, quakes_csv):
    run = tmp_path / "run"
    commands = [f"train {quakes_csv} -o {run} --epochs 2 -q",
                f"train {quakes_csv} -o {tmp_path / 'slow'} --epochs 2 --no-fast --no-plots -q",
                f"evaluate {run / 'model.pt'} {quakes_csv}",
                f"predict {run / 'model.pt'} {quakes_csv} -o {tmp_path / 'out.csv'}"]
    done = subprocess.run([sys.executable, "-c", RUN, *commands], capture_output=True,
                          text=True, check=True)
    said = [line.split() for line in done.stdout.splitlines() if line.endswith(("True", "False"))]
    assert said == [["train", "False"], ["train", "False"], ["evaluate", "False"],
                    ["predict", "False"]]
