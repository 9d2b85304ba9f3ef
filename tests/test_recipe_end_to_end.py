"""Issue #24's acceptance, end to end: dimuon ROOT files as they come (signal and background in
files of their own, scales, generator weights of which some are negative, jagged muons), trained
with objects, a derived mass and a selection; evaluate's weighted metrics equal scikit-learn's
on predict's output for the same raw files, with no column made by the user."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import dimuon
from fcnn_cli.commands import cli

pytest.importorskip("uproot")
sklearn = pytest.importorskip("sklearn.metrics")

MASS = ("mass=sqrt((Muon_E_0 + Muon_E_1)**2 - (Muon_Px_0 + Muon_Px_1)**2 "
        "- (Muon_Py_0 + Muon_Py_1)**2 - (Muon_Pz_0 + Muon_Pz_1)**2)")
SCALES = {"signal": 0.5, "background": 2.0}


def run(*args, code=0):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output + str(result.exception)
    return result


# The files of each sample: (name, events, seed, mixed); the fresh ones take seed + 10.
FILES = [("sig.root", 400, 1, False), ("bkg_1.root", 300, 2, True), ("bkg_2.root", 300, 3, True)]
WHERE = "mass > 40"


@pytest.fixture(scope="module")
def dimuons(tmp_path_factory):
    """Training files, fresh files of other events, and a run trained on the first."""
    d = tmp_path_factory.mktemp("dimuons")
    (d / "new").mkdir()
    for name, n, seed, mixed in FILES:
        dimuon.write(d / name, n, seed, mixed)
        dimuon.write(d / "new" / name, n, seed + 10, mixed)
    run("train", "--sample", f"signal={d}/sig.root*{SCALES['signal']}",
        "--sample", f"background={d}/bkg_*.root*{SCALES['background']}",
        "--weight", "genWeight", "--objects", "Muon:2", "--define", MASS, "--where", WHERE,
        "--epochs", 8, "--seed", 1, "-o", d / "run", "-q", "--no-plots")
    return d


def samples(d):
    return ["--sample", f"signal={d}/new/sig.root*{SCALES['signal']}",
            "--sample", f"background={d}/new/bkg_*.root*{SCALES['background']}"]


def predicted(d):
    """predict's output on each raw file, with the class, scale and weight of its rows."""
    frames = []
    for name, files in (("signal", ["sig.root"]), ("background", ["bkg_1.root", "bkg_2.root"])):
        for file in files:
            out = run("predict", d / "run" / "model.pt", d / "new" / file,
                      "--keep", "genWeight,mass").stdout
            frames.append(pd.read_csv(io.StringIO(out)).assign(truth=name,
                                                               scale=SCALES[name]))
    return pd.concat(frames, ignore_index=True)


def test_evaluate_on_raw_samples_equals_scikit_learn_on_predicts_output(dimuons):
    report = json.loads(run("evaluate", dimuons / "run" / "model.pt", *samples(dimuons),
                            "--json").stdout)
    rows = predicted(dimuons)
    kept = rows[rows.selected == 1]
    assert (rows.selected == (rows["mass"] > 40)).all() and 0 < len(kept) < len(rows)
    assert report["selection"] == {"where": WHERE, "applied": True,
                                   "rows_kept": len(kept), "rows_removed": len(rows) - len(kept)}
    assert report["rows"] == len(kept) and report["weight"] == "genWeight"
    w = (kept.genWeight * kept.scale).to_numpy()
    assert (w < 0).any()  # negative generator weights, counted as they are
    truth = kept.truth.to_numpy()
    assert report["accuracy"] == pytest.approx(
        sklearn.accuracy_score(truth, kept.sample_pred, sample_weight=w), rel=1e-12)
    proba = kept[["p_background", "p_signal"]].to_numpy()  # scikit-learn's order: sorted
    assert report["cross_entropy"] == pytest.approx(
        sklearn.log_loss(truth, proba, labels=["background", "signal"], sample_weight=w),
        rel=1e-6)
    # scikit-learn's roc_auc_score refuses negative weights: the weighted pairs by hand
    score, positive = kept.p_background.to_numpy(), truth == "background"
    above = np.sign(score[positive][:, None] - score[~positive][None, :]) / 2 + 0.5
    pairs = np.outer(w[positive], w[~positive])
    assert report["roc_auc"] == pytest.approx((pairs * above).sum() / pairs.sum(), rel=1e-9)
    assert report["sum_of_weights"] == pytest.approx(w.sum(), rel=1e-12)


def test_the_model_makes_the_mass_as_numpy_does_and_counts_events_when_told(dimuons):
    rows = predicted(dimuons)
    expected = np.concatenate([dimuon.pair_mass(dimuon.events(n, seed + 10, mixed)[0])
                               for _, n, seed, mixed in FILES])
    np.testing.assert_allclose(rows["mass"], expected, rtol=1e-9)
    counted = json.loads(run("evaluate", dimuons / "run" / "model.pt", *samples(dimuons),
                             "--no-weight", "--no-select", "--json").stdout)
    assert counted["rows"] == len(rows) and "sum_of_weights" not in counted
    assert counted["weighted"] is False and counted["selection"]["applied"] is False
    truth = rows.truth.to_numpy()
    assert counted["accuracy"] == pytest.approx(sklearn.accuracy_score(truth, rows.sample_pred))


def test_the_run_records_the_recipe_and_config_toml_repeats_it(dimuons, tmp_path):
    config = json.loads((dimuons / "run" / "config.json").read_text())
    recipe = config["recipe"]
    assert recipe["define"] == [["mass", MASS.split("=", 1)[1]]]
    assert {"Muon_Px_0", "Muon_E_1", "Muon_1_present"} <= {n for n, _ in recipe["expanded"]}
    assert "genWeight" not in config["features"] and "mass" in config["features"]
    run("train", "--config", dimuons / "run" / "config.toml", "-o", tmp_path / "again", "-q",
        "--no-plots")
    assert (tmp_path / "again" / "metrics.json").read_text() == \
        (dimuons / "run" / "metrics.json").read_text()
