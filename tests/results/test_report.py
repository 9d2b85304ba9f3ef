import numpy as np
import pytest
from rich.console import Console

from fcnn_cli.network import metrics
from fcnn_cli.results import report

# classification_tables for the three-class report below, as it has always looked
SMALL = """\
three.csv (6 rows)                    
┏━━━━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━┓
┃ accuracy ┃ cross-entropy ┃ ROC AUC ┃
┡━━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━┩
│   66.67% │        0.7136 │  0.9028 │
└──────────┴───────────────┴─────────┘
Per class                                        
┏━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━━━━━┓
┃ class ┃ precision ┃ recall ┃     F1 ┃ support ┃
┡━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━━━━━┩
│ left  │    0.5000 │ 0.5000 │ 0.5000 │       2 │
│ rest  │    0.6667 │ 0.6667 │ 0.6667 │       3 │
│ up    │    1.0000 │ 1.0000 │ 1.0000 │       1 │
└───────┴───────────┴────────┴────────┴─────────┘
Confusion matrix (rows: true class,    
columns: predicted)                    
┏━━━━━━━━━━━━━━━━━━┳━━━━━━┳━━━━━━┳━━━━┓
┃ true \\ predicted ┃ left ┃ rest ┃ up ┃
┡━━━━━━━━━━━━━━━━━━╇━━━━━━╇━━━━━━╇━━━━┩
│ left             │    1 │    1 │  0 │
│ rest             │    1 │    2 │  0 │
│ up               │    0 │    0 │  1 │
└──────────────────┴──────┴──────┴────┘
Reliability (expected calibration error 0.2333)       
┏━━━━━━━━━━━━━━━━┳━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┓
┃ confidence bin ┃ rows ┃ mean confidence ┃ accuracy ┃
┡━━━━━━━━━━━━━━━━╇━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━┩
│        0.5–0.6 │    1 │           0.500 │    0.000 │
│        0.6–0.7 │    1 │           0.600 │    1.000 │
│        0.8–0.9 │    3 │           0.800 │    0.667 │
│        0.9–1.0 │    1 │           0.900 │    1.000 │
└────────────────┴──────┴─────────────────┴──────────┘
"""


def render(rep, title="data.csv"):
    console = Console(width=100, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    for item in report.classification_tables(rep, title):
        console.print(item)
    return console.export_text()


def small_report(classes=("left", "rest", "up")):
    proba = np.array([[.9, .05, .05], [.4, .5, .1], [.3, .6, .1], [.8, .1, .1], [.1, .8, .1],
                      [.1, .1, .8]])
    return metrics.classification(np.array([0, 0, 1, 1, 1, 2]), proba, list(classes))


def many_report(k, n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.5, y, rng.integers(0, k, n))
    streamed = metrics.Classification([f"class{i}" for i in range(k)])
    for s in range(0, n, 1000):
        proba = np.full((len(y[s:s + 1000]), k), 0.1 / k, dtype=np.float32)
        proba[np.arange(len(proba)), pred[s:s + 1000]] = 0.9
        streamed.add(y[s:s + 1000], proba)
    return streamed.report()


def flat(text):
    return " ".join(text.split())


def class_rows(text):
    return [line for line in text.splitlines() if line.startswith("│ class")]


def test_few_classes_look_as_they_always_did():
    assert render(small_report(), "three.csv") == SMALL


def test_up_to_the_full_report_the_note_points_to_the_json():
    text = render(many_report(30))
    assert len(class_rows(text)) == 2 * report.TABLE_CLASSES  # per class + confusions
    assert "Confusion matrix" not in text and "Most frequent confusions" in text
    text = flat(text)
    assert "The 20 classes with the most rows of 30; all are in the JSON report" in text
    assert "the full confusion matrix is in the JSON report" in text
    assert "not computed" not in text


def test_many_classes_cap_the_tables_and_say_what_is_not_kept():
    rep = many_report(10_000)
    text = render(rep)
    assert len(class_rows(text)) == 2 * report.TABLE_CLASSES
    assert "macro avg" in text and "weighted avg" in text
    text = flat(text)
    assert "The 20 classes with the most rows of 10000" in text
    assert "lists 50 and the averages; per-class numbers of the other 9950 are not kept" in text
    assert f"20 of the {50 + rep['left_out']['confusions']} (true, predicted) pairs" in text
    assert "ROC AUC is not computed past 50 classes" in text
    assert len(text) < 6_000


@pytest.mark.parametrize("name", ["[/]", "[bold]x", "a\\", "[red]"])
def test_names_with_brackets_are_shown_as_they_are(name):
    text = render(small_report((name, "b", "c")), title=f"dir{name}/t.csv")
    assert f"dir{name}/t.csv (6 rows)" in text
    assert f"│ {name} " in text
    regression = metrics.regression(np.zeros((2, 1)), np.ones((2, 1)), [name], {name: name})
    console = Console(width=100, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    for item in report.tables(regression, name):
        console.print(item)
    assert f"│ {name} " in console.export_text()


def test_bin_bounds_are_shown_with_sane_digits():
    assert report._range(0.0, 10.0) == "0 – 10"
    assert report._range(-1e308, 1e308) == "-1e+308 – 1e+308"
    assert report._range(1e300, 2e300) == "1e+300 – 2e+300"
    assert report._range(1.0, 1.0 + 1e-9) == "1 – 1.000000001"


def test_binned_tables_leave_out_empty_bins_and_count_them():
    from fcnn_cli.results import binned

    b = binned.Binned(["e"], ["t"])
    b.add(np.array([0.0, 0.1, 9.9, 10.0]), np.zeros(4), np.ones(4))
    text = flat(render_tables(report.binned_tables(b.report(10))))
    assert "8 empty bins not shown" in text
    assert "0.0 – 1.0" in text and "9.0 – 10.0" in text and "1.0 – 2.0" not in text


def render_tables(tables):
    console = Console(width=200, record=True, file=__import__("io").StringIO())
    for t in tables:
        console.print(t)
    return console.export_text()


def test_binned_tables_say_where_the_other_recalls_are():
    from fcnn_cli.results import binned

    classes = [f"c{i}" for i in range(report.TABLE_RECALLS + 3)]
    b = binned.Binned(["e"], ["k"], classes=classes)
    b.add(np.array([0.0, 1.0]), np.array([0, 6]), np.array([0, 5]))
    text = flat(render_tables(report.binned_tables(b.report(2))))
    assert "recall c3" in text and "recall c4" not in text
    assert "The recall of 3 more classes is in --json." in text


def test_rows_outside_the_bins_are_split_into_non_finite_and_out_of_range():
    from fcnn_cli.results import binned

    b = binned.Binned(["e"], ["t"])
    b.add(np.array([0.0, 1.0, np.nan, 5.0]), np.zeros(4), np.ones(4))
    text = flat(render_tables(report.binned_tables(b.report(edges=[[0.0, 1.0, 2.0]]))))
    assert "2 outside the bins: 1 NaN or infinite, 1 out of range" in text


@pytest.mark.parametrize("value, places, shown", [
    (0.99987, 4, "0.99987"), (0.9028, 4, "0.9028"), (0.95, 6, "0.950000"),
    (0.999976, 6, "0.999976"), (0.9999996, 6, "0.99999960"), (1.0, 6, "1"),
    (-3.25, 6, "-3.25"), (float("nan"), 4, "–")])
def test_a_score_near_1_shows_how_near(value, places, shown):
    assert report.score(value, places) == shown


def test_r2_and_roc_auc_near_1_are_not_rounded_to_1():
    rep = small_report()
    rep["roc_auc"] = 0.99987
    assert "│ 0.99987 │" in render(rep)
    overall = {"mse": 1e-6, "rmse": 1e-3, "mae": 1e-3, "r2": 0.9999996}
    console = Console(width=100, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    for item in report.regression_tables({"rows": 9, "targets": {"x": {**overall, "unit": "m"}},
                                          "overall": overall}):
        console.print(item)
    text = console.export_text()
    assert text.count("0.99999960") == 2 and "1.000000" not in text


def test_the_mse_is_in_the_square_of_the_unit():
    regression = metrics.regression(np.zeros((2, 1)), np.full((2, 1), 2.0), ["x"], {"x": "km"})
    text = render_tables(report.tables(regression, "t"))
    header = next(line for line in text.splitlines() if "RMSE" in line)
    assert [c.strip() for c in header.split("┃")[1:5]] == ["target", "unit", "MSE (unit²)",
                                                          "RMSE"]
    row = next(line for line in text.splitlines() if line.startswith("│ x "))
    assert [c.strip() for c in row.split("│")[1:5]] == ["x", "km", "4", "2"]


def test_errors_of_metres_in_km_are_printed_in_metres_and_the_json_keeps_km():
    truth = np.zeros((2, 2))
    regression = metrics.regression(truth, np.full((2, 2), 0.024), ["x", "y"],
                                    {"x": "km", "y": "km"}, position=("x", "y"))
    text = render_tables(report.tables(regression, "t"))
    row = next(line for line in text.splitlines() if line.startswith("│ x "))
    assert [c.strip() for c in row.split("│")[1:5]] == ["x", "m", "576", "24"]
    assert "(x, y) (m)" in text and "│ 33.94 │" in text
    assert regression["targets"]["x"]["rmse"] == pytest.approx(0.024)
    assert regression["distance"]["unit"] == "km"


def weighted_report():
    proba = np.array([[.9, .1], [.4, .6], [.3, .7], [.8, .2]])
    rep = metrics.Classification(["s", "b"])
    rep.add(np.array([0, 0, 1, 1]), proba, weight=np.array([2.0, 0.5, 1.5, -0.25]))
    return rep.report()


def test_a_weighted_report_says_so_and_shows_the_sums_of_weights_beside_the_counts():
    text = flat(render(weighted_report()))
    assert "data.csv, weighted (4 rows, sum of weights 3.75, effective rows" in text
    assert "Per class, weighted" in text and "Reliability, weighted" in text
    assert "│ s │ 1.1429 │ 0.8000 │ 0.9412 │ 2 │ 2.5 │" in text
    assert "│ s │ 1 (2) │ 1 (0.5) │" in text and "│ b │ 1 (-0.25) │ 1 (1.5) │" in text


def test_an_unweighted_report_shows_no_sums_of_weights():
    text = render(small_report())
    assert "weight" not in text


def test_a_working_point_is_said_in_one_way_with_its_class_and_what_it_was_chosen_at():
    point = {"asked": {"background_efficiency": 0.05}, "cut": 0.123456789}
    assert report.working_point_text(point, "ttH") == \
        "ttH where p(ttH) ≥ 0.123457 (chosen at background efficiency 0.05)"
    assert report.working_point_text({"asked": {}, "cut": 0.5}, "s") == "s where p(s) ≥ 0.5"


def test_the_kept_weights_mean_distance_is_shown_only_for_a_position():
    """fcnn info's metrics: one label (or labels that are no position) has no distance."""
    def shown(with_distance):
        split = {"rows": 30, "overall": {"rmse": 1.5, "mae": 1.25, "r2": 0.75},
                 **({"distance": {"mean": 2.5}} if with_distance else {})}
        console = Console(width=100, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
        for item in report._metrics_tables({"val": split, "test": split}):
            console.print(item)
        return console.export_text()

    one = shown(False)
    assert "┃ split ┃ rows ┃ RMSE ┃  MAE ┃       R² ┃\n" in one
    assert "│ test  │   30 │  1.5 │ 1.25 │ 0.750000 │\n" in one
    assert "distance" not in one and "–" not in one
    position = shown(True)
    assert "mean distance ┃" in position and "│           2.5 │" in position
