"""What every plot shares: the caller's matplotlib left alone, lengths in a readable unit."""

import numpy as np
import pytest

from fcnn_cli.results.binned import Binned
from fcnn_cli.results.plots import plot_run
from fcnn_cli.results.plots.binned import binned_plot
from fcnn_cli.results.plots.curves import learning_curves
from fcnn_cli.results.plots.positions import distance_cdf, distance_map
from fcnn_cli.results.plots.regression import regression_plot, residual_summary
from plotted import history, metre_errors


def test_drawing_leaves_the_callers_warning_filters_and_backend_alone(quake_run, tmp_path):
    import warnings

    import matplotlib

    backend, filters = matplotlib.get_backend(), list(warnings.filters)
    plot_run(quake_run, tmp_path / "out")
    assert (tmp_path / "out" / "learning_curves.png").is_file()
    assert warnings.filters == filters and matplotlib.get_backend() == backend


def test_metre_size_errors_are_shown_in_metres_in_every_plot(tmp_path, drawn):
    true, pred = metre_errors()
    distance = np.hypot(*(pred - true).T)
    regression_plot(true[:, 0], pred[:, 0], "x", "km", tmp_path / "r.png")
    distance_cdf(distance, "km", tmp_path / "cdf.png")
    distance_map(true, pred, ["x", "y"], "km", tmp_path / "map.png")
    learning_curves(history([0.1, 0.05], [0.1, 0.05], distance=[0.02, 0.0098]),
                    tmp_path / "lc.png", 2, "km")
    b = Binned(["x"], ["x", "y"], point=[0, 1])
    b.add(true[:, :1], true, pred)
    binned_plot(b.report(3), tmp_path / "b.png", {"x": "km", "y": "km"})
    regression, cdf, heat, curves, binned = drawn
    scatter, hist = regression.axes[:2]
    assert scatter.get_ylabel() == hist.get_xlabel() == "residual: predicted − true x (m)"
    assert scatter.get_xlabel() == "true x (km)"  # positions stay in the data's unit
    stats = residual_summary(1000 * (pred[:, 0] - true[:, 0]))
    assert f"resolution (σ) {stats['resolution']:.3g} m" in hist.texts[0].get_text()
    assert 5 < stats["resolution"] < 12
    median = np.percentile(1000 * distance, 50)
    assert cdf.axes[0].get_legend().get_texts()[0].get_text() == f"50 %: {median:.3g} m"
    assert heat.axes[1].get_ylabel() == "mean distance (m)"  # the colour bar
    metric = curves.axes[1]
    assert metric.get_ylabel() == "mean distance (m)"
    assert metric.lines[0].get_ydata() == pytest.approx([20.0, 9.8])
    assert [ax.get_ylabel() for ax in binned.axes[:2]] == ["bias x (m)", "bias y (m)"]
    assert binned.axes[2].get_ylabel() == "distance (m)"


def test_a_recipe_is_stated_at_the_foot_of_every_figure_saved_under_it(tmp_path):
    from fcnn_cli.results.plots import figures

    recipe = {"samples": [{"name": "signal"}, {"name": "back$ground"}], "weight": "genWeight",
              "where": "nMuon >= 2", "objects": ["Muon:2"], "define": [["mass", "sqrt(m2)"]]}
    note = figures.recipe_note(recipe)
    assert note == ("samples signal, back$ground · weight genWeight · where nMuon >= 2 · "
                    "objects Muon:2 · defined mass")
    assert figures.recipe_note(None) == "" and figures.recipe_note({"define": []}) == ""
    many = {"define": [[f"dt{k}", f"t{k} - t0"] for k in range(25)]}
    assert figures.recipe_note(many) == "defined dt0, dt1, dt2 and 22 more"
    assert len(figures.recipe_note({"where": "x > 1 && " * 40})) == figures.NOTE_CHARACTERS
    plt = figures.pyplot()
    noted, plain = plt.figure(), plt.figure()
    with figures.noting(note):
        figures.save(noted, tmp_path / "noted.png")
    figures.save(plain, tmp_path / "plain.png")
    assert [t.get_text() for t in noted.texts] == [note.replace("$", r"\$")]  # no mathematics
    assert plain.texts == [] and (tmp_path / "noted.png").stat().st_size > 0


@pytest.mark.parametrize("constrained", [False, True])
def test_a_figure_is_drawn_once_into_its_file_with_its_layout(tmp_path, monkeypatch,
                                                              constrained):
    """A figure laid out by tight_layout is drawn once (savefig draws twice where a layout
    engine is left set), into the same pixels; a constrained one keeps its layout pass."""
    from matplotlib.figure import Figure

    from fcnn_cli.results.plots.figures import pyplot, save

    def figure():
        fig, ax = pyplot().subplots(layout="constrained" if constrained else None)
        ax.plot([0, 1], [1, 0])
        ax.set(xlabel="a long label of the x axis", ylabel="y", title="a title")
        if not constrained:
            fig.tight_layout()
        return fig

    reference = tmp_path / "reference.png"
    fig = figure()
    fig.savefig(reference, format="png", dpi=100)  # matplotlib's own, twice drawn
    pyplot().close(fig)
    draws = []
    drawn = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, r: draws.append(1) or drawn(self, r))
    save(figure(), tmp_path / "saved.png")
    assert len(draws) == (2 if constrained else 1)
    assert (tmp_path / "saved.png").read_bytes() == reference.read_bytes()
