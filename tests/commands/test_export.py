"""fcnn export on the command line: what it says of a k-fold model's graph."""

import dataclasses
import json

import numpy as np
import pytest

from fcnn_cli.data.writer import write_table


@pytest.mark.slow
@pytest.mark.parametrize("fold_by, warned", [(["--fold-by", "event"], True), ([], False)])
def test_a_k_fold_model_s_graph_says_it_is_the_mean(run, runner, quakes, tmp_path, fold_by,
                                                     warned):
    """With a fold column one warning line on stderr says that predict, not the graph,
    scores the events trained on out of fold; by position (predict's mean always) none."""
    pytest.importorskip("onnxruntime")
    import onnx

    events = quakes.frame.assign(event=np.arange(len(quakes.frame)))
    write_table(dataclasses.replace(quakes, frame=events), tmp_path / "events.csv")
    run(runner, "train", tmp_path / "events.csv", "--folds", 3, *fold_by, "--epochs", 1,
        "--depth", 1, "--width", 8, "--no-plots", "-q", "-o", tmp_path / "run")
    done = run(runner, "export", tmp_path / "run" / "model.pt", tmp_path / "m.onnx")
    said = [line for line in done.stderr.splitlines() if "k-fold" in line]
    assert len(said) == warned
    if warned:
        assert said[0].startswith("warning: the graph scores every row by the mean of the 3")
        assert "fold column 'event'" in said[0] and "fcnn predict" in said[0]
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(meta["folds"]) == {"k": 3, "by": "event" if fold_by else None,
                                         "seed": 0, "applied": "mean"}
