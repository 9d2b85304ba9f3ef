import numpy as np
import pytest

from fcnn_cli import evaluation, simulate
from fcnn_cli.binned import Binned
from fcnn_cli.errors import FcnnError


def _chunks(table, size):
    from dataclasses import replace

    for start in range(0, len(table.frame), size):
        yield replace(table, frame=table.frame.iloc[start:start + size].reset_index(drop=True),
                      first_row=start)


def test_binned_evaluation_streams_and_equals_the_whole_table_by_hand(trained):
    predictor, table = trained.predictor, simulate.earthquakes(n=700, seed=5)
    streamed = evaluation.evaluate(predictor, _chunks(table, 97), by=["tp1"], bins=4)
    whole = evaluation.evaluate(predictor, [table], by=["tp1"], bins=4)
    assert streamed["binned"] == whole["binned"]
    truth = table.frame[["x", "y"]].to_numpy()
    pred = predictor.predict(table)[["x_pred", "y_pred"]].to_numpy()
    by = Binned(["tp1"], ["x", "y"], point=[0, 1])
    by.add(table.frame["tp1"].to_numpy(), truth, pred)
    _close(by.report(4)["bins"], whole["binned"]["bins"])
    assert sum(b["count"] for b in whole["binned"]["bins"]) == 700
    assert whole["binned"]["by"][0]["unit"] == "s"
    assert whole["rows"] == 700 and "distance" in whole


def _close(a, b):
    for x, y in zip(a, b):
        assert x["count"] == y["count"]
        for t in x["targets"]:
            for k, v in x["targets"][t].items():
                assert v == pytest.approx(y["targets"][t][k], rel=1e-5, abs=1e-9, nan_ok=True)


def test_bins_by_a_column_that_is_not_there_or_not_numbers_are_refused(trained):
    table = simulate.earthquakes(n=50, seed=5)
    with pytest.raises(FcnnError, match="no column 'energy'"):
        evaluation.evaluate(trained.predictor, [table], by=["energy"])
    table.frame["name"] = "a"
    with pytest.raises(FcnnError, match="'name' is not numeric"):
        evaluation.evaluate(trained.predictor, [table], by=["name"])


def test_the_sample_is_bounded_uniform_and_the_same_in_any_chunks(trained):
    task = trained.predictor.task
    truth = np.arange(1000, dtype=np.float64)[:, None].repeat(2, axis=1)
    out = np.zeros((1000, 2), np.float32)
    whole, parts = evaluation.Sample(task, size=100), evaluation.Sample(task, size=100)
    whole.add(None, truth, out)
    for part in np.array_split(np.arange(1000), 9):
        parts.add(None, truth[part], out[part])
    assert len(whole.frame()) == 100
    assert sorted(whole.frame()["x"]) == sorted(parts.frame()["x"])
    assert 300 < whole.frame()["x"].mean() < 700  # not the first rows


def test_evaluate_draws_its_plots(trained, tmp_path):
    report = evaluation.evaluate(trained.predictor, [simulate.earthquakes(n=300, seed=6)],
                                 by=["x", "y"], bins=3, plots=tmp_path / "p")
    names = sorted(p.rsplit("/", 1)[1] for p in report["plots"])
    assert names == ["binned_x_y.png", "distance_cdf.png", "distance_map.png",
                     "position_map.png", "regression_x.png", "regression_y.png"]
    assert all((tmp_path / "p" / n).stat().st_size > 1000 for n in names)


def test_bins_by_an_empty_column_say_it_has_no_finite_values(trained):
    table = simulate.earthquakes(n=50, seed=5)
    table.frame["blank"] = None
    report = evaluation.evaluate(trained.predictor, [table], by=["blank"])
    assert report["binned"]["empty"] == "column 'blank' has no finite values"
    assert report["binned"]["bins"] == []
