"""The figures of merit as a table: each figure, value and cut; "—" for a figure the rows
cannot resolve, with its reason once under the table."""

import numpy as np
from rich.console import Console

from fcnn_cli.network import merit, metrics
from fcnn_cli.results.merittables import merit_tables
from fcnn_cli.results.report import tables


def shown(items):
    console = Console(width=120, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    for item in items:
        console.print(item)
    return " ".join(console.export_text().split())  # rows that wrap, joined


def figures(weight=None, **options):
    """Figures of 50 background rows (ε_B resolves to 0.02, no finer) and 200 signal rows."""
    rng = np.random.default_rng(0)
    score = np.concatenate([rng.uniform(0, 0.6, 50), rng.uniform(0.3, 1, 200)])
    is_signal = np.arange(250) >= 50
    return {"signal_class": "sig", **merit.report(score, is_signal, weight, **options)}


def test_each_figure_its_value_and_cut():
    report = figures(bkg=0.1)
    text = shown(merit_tables(report))
    assert "Figures of merit (signal: sig; 200 signal and 50 background rows)" in text
    at = report["signal_efficiency_at"][2]  # at ε_B = 0.1
    assert f"ε_S at ε_B = 0.1 │ {at['signal_efficiency']:.3g} ± " \
           f"{at['error_with_cut']:.2g} │ {at['cut']:.4g}" in text
    wp = report["working_point"]
    assert f"working point (ε_B = 0.1) │ │ {wp['cut']:.4g}" in text
    assert f"purity │ {wp['purity']:.3g}" in text


def test_a_figure_the_rows_cannot_resolve_is_a_dash_with_its_reason_once():
    text = shown(merit_tables(figures()))
    assert "ε_S at ε_B = 0.001 │ — │ —" in text and "ε_S at ε_B = 0.01 │ — │ —" in text
    assert text.count("below the first step of the background") == 1
    assert "— ε_S at ε_B = 0.001, ε_S at ε_B = 0.01: below the first step" in text


def test_the_significance_best_cuts_where_the_weights_are_yields():
    report = figures(weight=np.full(250, 0.5), yields=True)
    best = report["significance"]["best"]["z_asimov"]
    text = shown(merit_tables(report))
    assert "weighted)" in text
    assert best["background_rows"] == round(best["background"] / 0.5)  # unit rows of weight ½
    assert f"best Z_Asimov (S = {best['signal']:.4g}, B = {best['background']:.4g}; " \
           f"{best['background_rows']} background rows) │ " \
           f"{best['z_asimov']:.3g} │ {best['cut']:.4g}" in text


def test_a_classification_report_shows_its_figures_after_its_tables():
    labels = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    report = {**metrics.classification(labels, proba, ["bkg", "sig"]), "merit": figures()}
    assert "Figures of merit (signal: sig;" in shown(tables(report, "val"))
    del report["merit"]
    assert "Figures of merit" not in shown(tables(report, "val"))
