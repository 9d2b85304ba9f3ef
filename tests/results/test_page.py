import base64
import io
import json
from html.parser import HTMLParser

import browser
import pytest

from fcnn_cli.results import page, runs
from fcnn_cli.data import simulate
from fcnn_cli.engine import train


class Collected(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.scripts, self.links, self.values, self.tags = [], 0, 0, [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs["src"])
        self.scripts += tag in ("script", "iframe", "object", "embed")
        self.links += tag == "link" or ("href" in attrs)
        if "data-value" in attrs:
            self.values.append(float(attrs["data-value"]))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    result = train.fit(simulate.earthquakes(n=500, seed=8),
                       train.TrainConfig(epochs=2, batch_size=64))
    run = runs.save_run(result, tmp_path_factory.mktemp("runs") / "r", "quakes.csv")
    return run


@pytest.mark.slow
def test_the_page_holds_every_plot_and_the_numbers_of_metrics_json(run_dir):
    from PIL import Image

    text = page.run_page(run_dir)  # no plots/ yet: drawn for the page alone
    assert not (run_dir / "plots").exists()
    parsed = Collected()
    parsed.feed(text)
    parsed.close()
    assert parsed.scripts == 0 and parsed.links == 0
    assert len(parsed.images) == 8  # the overtraining check's and the correlations' too
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            image.load()
            assert image.size[0] > 300
    metrics = json.loads((run_dir / "metrics.json").read_text())
    check = metrics.pop("overtraining")
    assert all(g["p_value"] in parsed.values for g in check["groups"].values())
    for split, report in metrics.items():
        numbers = [m[k] for m in report["targets"].values() for k in ("mse", "rmse", "mae", "r2")]
        numbers += [report["overall"][k] for k in ("mse", "rmse", "mae", "r2")]
        numbers += [report["distance"][k] for k in ("mean", "median", "p68", "p95", "max")]
        for n in numbers:
            assert n in parsed.values, (split, n)
    assert f"test ({metrics['test']['rows']} rows)" in text


def test_the_page_escapes_names_and_embeds_given_images():
    png = _tiny_png()
    text = page.page("<run>", {"targets": ["<b>"], "sizes": {"train": 3}},
                     {"test": {"task": "classification", "rows": 2, "accuracy": 0.5,
                               "cross_entropy": 0.7, "roc_auc": float("nan"),
                               "per_class": {"<i>": {"precision": 1, "recall": 0.5, "f1": 0.6,
                                                     "support": 2}}}},
                     [("roc", png)])
    assert "<b>" not in text and "&lt;b&gt;" in text and "&lt;i&gt;" in text
    parsed = Collected()
    parsed.feed(text)
    assert parsed.images == ["data:image/png;base64," + base64.b64encode(png).decode()]
    assert 0.5 in parsed.values and 3 in parsed.values


def test_the_page_shows_uncertainties_and_reliability_as_metrics_json_has_them():
    uncertainty = {"nll": 1.25, "crps": 0.375, "coverage_1sigma": 0.6875,
                   "coverage_2sigma": 0.953125, "calibration": [{"level": 0.5, "observed": 0.5625}]}
    regression = {"task": "regression", "rows": 4, "targets": {},
                  "overall": {"mse": 1.0, "rmse": 1.0, "mae": 1.0, "r2": 0.5},
                  "uncertainty": uncertainty}
    classes = {"task": "classification", "rows": 4, "accuracy": 0.75, "cross_entropy": 0.5,
               "roc_auc": 0.875, "per_class": {}, "ece": 0.0625, "mean_entropy": 0.4375,
               "reliability": [{"low": 0.9, "high": 1.0, "rows": 4, "confidence": 0.9375,
                                "accuracy": 0.8125}]}
    for report, numbers in ((regression, [1.25, 0.375, 0.6875, 0.953125, 0.5625]),
                            (classes, [0.0625, 0.4375, 0.9375, 0.8125])):
        parsed = Collected()
        parsed.feed(page.page("run", {"sizes": {}}, {"test": report}, []))
        assert all(n in parsed.values for n in numbers), report["task"]


def test_a_split_name_or_row_count_from_a_file_cannot_add_markup():
    hostile = '"><script>x</script>'
    text = page.page("run", {"sizes": {"train": 3}},
                     {hostile: {"task": "classification", "rows": "<img src=y>", "accuracy": 0.5,
                                "cross_entropy": 0.7, "roc_auc": 0.9}}, [])
    assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;" in text and "&lt;img src=y&gt;" in text


def test_a_directory_that_is_no_run_is_one_line(tmp_path):
    from fcnn_cli.core.errors import FcnnError

    with pytest.raises(FcnnError, match="not a complete run directory"):
        page.run_page(tmp_path)


def _tiny_png():
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (2, 2), "red").save(out, format="PNG")
    return out.getvalue()


def test_only_regular_png_files_of_plots_are_embedded(tmp_path, logged, monkeypatch):
    import os

    monkeypatch.setattr(page, "MAX_IMAGE_BYTES", 4096)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "metrics.json").write_text("{}")
    plots = tmp_path / "plots"
    plots.mkdir()
    png = _tiny_png()
    (plots / "good.png").write_bytes(png)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(png)  # even a PNG behind a link stays out
    (plots / "link.png").symlink_to(secret)
    os.mkfifo(plots / "fifo.png")
    (plots / "sub.png").mkdir()
    (plots / "big.png").write_bytes(png + b"\0" * 5000)
    (plots / "text.png").write_text("not an image")
    text = page.run_page(tmp_path)
    parsed = Collected()
    parsed.feed(text)
    assert parsed.images == ["data:image/png;base64," + base64.b64encode(png).decode()]
    for name in ("link", "fifo", "sub", "big", "text"):
        assert f"{name}.png left out of the page" in logged.text


@pytest.mark.parametrize("metrics, message", [
    ('{"test": {"task": "regression", "targets": {}}}', "metrics.json: malformed: KeyError"),
    ('{"test": [1]}', "metrics.json: malformed"),
    ('{"a":' * 100_000 + "1" + "}" * 100_000, "metrics.json: not readable JSON: nested")])
def test_a_damaged_metrics_json_is_one_line_naming_it(tmp_path, metrics, message):
    from fcnn_cli.core.errors import FcnnError

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "metrics.json").write_text(metrics)
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.png").write_bytes(_tiny_png())
    with pytest.raises(FcnnError, match=message):
        page.run_page(tmp_path)


class Text(HTMLParser):
    """The text a reader sees, and the headings in order."""

    def __init__(self, html):
        super().__init__()
        self.parts, self.headings, self.heading = [], [], None
        self.viewport, self.hidden = False, False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.hidden = tag in ("style", "title")
        self.viewport |= tag == "meta" and attrs.get("name") == "viewport" and \
            attrs.get("content") == "width=device-width, initial-scale=1"
        if tag in ("h2", "h3"):
            self.heading = [tag]

    def handle_endtag(self, tag):
        self.hidden = False
        if tag in ("h2", "h3") and self.heading:
            self.headings.append(f"{self.heading[0]} {''.join(self.heading[1:])}")
            self.heading = None

    def handle_data(self, data):
        if self.heading:
            self.heading.append(data)
        if not self.hidden:
            self.parts.append(data)

    @property
    def text(self):
        return " ".join(" ".join(self.parts).split())


REGRESSION = {"task": "regression", "rows": 40,
              "targets": {"x": {"unit": "km", "mse": 0.25, "rmse": 0.5, "mae": 0.375,
                                "r2": 0.99987}},
              "overall": {"mse": 0.25, "rmse": 0.5, "mae": 0.375, "r2": 0.9999996},
              "distance": {"of": ["x", "y"], "unit": "km", "mean": 0.625, "median": 0.5,
                           "p68": 0.75, "p95": 1.5, "max": 2.0},
              "uncertainty": {"nll": 1.25, "crps": 0.375, "coverage_1sigma": 0.6875,
                              "coverage_2sigma": 0.953125, "calibration": []}}


def test_the_headline_metrics_and_learning_curves_come_first_and_the_configuration_last():
    png = _tiny_png()
    images = [(name, png) for name in ("confusion", "diagnostics", "learning_curves",
                                       "regression_x", "my_own")]
    text = Text(page.page("run", {"sizes": {"train": 30, "val": 5, "test": 5}},
                          {"train": REGRESSION, "test": REGRESSION}, images))
    assert text.viewport
    assert text.headings == [
        "h2 Headline metrics", "h2 Learning curves", "h2 Metrics: training (40 rows)",
        "h2 Metrics: test (40 rows)", "h2 Plots", "h3 Predicted against true: x",
        "h3 Confusion matrix", "h3 Gradients and activations by layer", "h3 My own",
        "h2 Data", "h2 Configuration"]
    said = text.text
    assert ("Headline metrics split rows RMSE MAE R² mean distance (km) "
            "training 40 0.5 0.375 0.99999960 0.625 test 40") in said
    assert ("Training and validation loss per epoch (log scale), the validation headline "
            "metric and the learning rate; the kept epoch is marked. (learning_curves.png)"
            ) in said
    assert "Rows: the true class; columns: the predicted one" in said


def test_numbers_and_names_read_as_words_not_as_python_or_json_keys():
    config = {"data": "/d/q.csv", "val_data": None, "best_epoch": 7,
              "net": {"n_in": 8, "batchnorm": True, "dropout": 0.0, "levels": [[1, 70, 17]]},
              "train": {"val_frac": 0.05, "fast": False, "threads": None}}
    classes = {"task": "classification", "rows": 4, "accuracy": 0.999995,
               "cross_entropy": 0.5, "roc_auc": 0.99987,
               "per_class": {"a": {"precision": 1.0, "recall": 0.75, "f1": 0.857, "support": 4}},
               "ece": 0.0625, "mean_entropy": 0.4375, "reliability": []}
    said = " ".join(Text(page.page("run", config, {"test": report}, [])).text
                    for report in (classes, REGRESSION))
    for raw in ("None", "True", "False", "coverage_1sigma", "roc_auc", "cross_entropy", "r2",
                "val_frac", "n_in", "mean_entropy", "p68", "--levels"):
        assert raw not in said.split(), raw
    for shown in ("validation data –", "--batchnorm yes", "--fast no", "--threads –",
                  "inputs 8", "embedded levels (input, rows, width) [[1, 70, 17]]",
                  "--val-frac 0.05", "accuracy cross-entropy ROC AUC 0.9999950 0.5 "
                  "0.99987", "precision recall F1 support a 1 0.7500", "NLL CRPS within ±1σ "
                  "within ±2σ 1.25 0.375 68.8% 95.3%", "68th percentile 95th percentile",
                  "R² x km 0.25 0.5 0.375 0.99987 overall 0.25 0.5 0.375 0.99999960"):
        assert shown in said, shown


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A run whose data path is one long word, as a deep directory's can be."""
    result = train.fit(simulate.earthquakes(n=300, seed=9),
                       train.TrainConfig(epochs=2, batch_size=64))
    path = "/data/" + "seismic_survey_2026" * 12 + "/quakes.csv"
    return runs.save_run(result, tmp_path_factory.mktemp("runs") / "long", path)


@pytest.mark.slow
@pytest.mark.skipif(browser.CHROMIUM is None,
                    reason="no chromium on this machine (make test installs Debian's)")
@pytest.mark.parametrize("width", [1400, 420])
def test_in_a_browser_the_page_never_scrolls_sideways(long_run, tmp_path, width):
    from PIL import Image

    html = tmp_path / "report.html"
    html.write_text(page.run_page(long_run), encoding="utf-8")
    png, (content, window) = browser.look(html.as_uri(), width, tmp_path / "profile")
    (tmp_path / f"report-{width}.png").write_bytes(png)
    # a phone lays the page out at its own width (the viewport tag), not zoomed out from 980
    assert window == width
    assert content <= window, f"{content - window} pixels of the page lie beyond the window"
    with Image.open(io.BytesIO(png)) as shot:
        assert shot.size[0] == width and shot.size[1] > 2000  # the whole page, plots and all


def test_the_page_states_the_samples_weight_selection_and_definitions():
    recipe = {"samples": [{"name": "<sig>", "scale": 0.5, "where": "n > 1",
                           "files": [{"path": f"/d/s{k}.root", "size": 1, "sha256": "0" * 64}
                                     for k in range(7)]},
                          {"name": "bkg", "scale": 1.0, "where": None, "files": ["/d/b.root"]}],
              "weight": "genWeight", "where": "pt > 20", "objects": ["Muon:2"],
              "define": [["pt", "hypot(px, py)"]], "expanded": None, "label": "sample"}
    text = page.page("run", {"sizes": {}, "recipe": recipe}, {}, [])
    for cell in ("sample &lt;sig&gt;", "/d/s0.root, /d/s1.root, /d/s2.root … (7 files) "
                 "(scale 0.5; where n &gt; 1)", "sample bkg", "/d/b.root",
                 "genWeight", "pt &gt; 20", "Muon:2", "define pt", "hypot(px, py)"):
        assert f"<td>{cell}</td>" in text, cell
    # a recipe of another shape (an edited config.json) shows what it can, never fails
    assert "<td>" in page.page("run", {"sizes": {}, "recipe": {"samples": [3, {"files": 2}],
                                                               "define": [[1]]}}, {}, [])


def _classified(seed, baseline=False):
    """A split's classification report with its figures of merit (a working point, yields)."""
    from fcnn_cli.network import merit
    from scores import table

    score, signal, weight = table(n=3000, seed=seed, weighted=True)
    if baseline:  # a worse model of the same rows
        score = (score + __import__("numpy").random.default_rng(9).normal(
            0, 1, len(score))).astype("float32")
    figures = merit.report(score, signal, weight, eff=0.7, yields=True)
    return {"task": "classification", "rows": 3000, "accuracy": 0.8 - 0.1 * baseline,
            "cross_entropy": 0.45, "roc_auc": 0.87 - 0.05 * baseline, "per_class": {},
            "merit": {"signal_class": "sig", **figures}}


def test_the_page_shows_each_splits_figures_of_merit_and_the_network_beside_its_baselines():
    metrics = {"val": _classified(1), "test": _classified(2),
               "baselines": {"gbdt": {"seconds": 1.25, "val": _classified(1, True),
                                      "test": {**_classified(2, True),
                                               "predict_seconds": 0.375}}},
               "overtraining": None}
    png = _tiny_png()
    text = page.page("run", {"sizes": {}}, metrics,
                     [("rejection", png), ("significance", png), ("roc", png)])
    parsed = Collected()
    parsed.feed(text)
    seen = Text(text)
    for split in ("val", "test"):
        m = metrics[split]["merit"]
        numbers = [p[k] for p in m["signal_efficiency_at"]
                   for k in ("background_efficiency", "signal_efficiency", "error",
                             "error_with_cut", "cut")]
        numbers += [p[k] for p in m["rejection_at"]
                    for k in ("signal_efficiency", "rejection", "error", "error_with_cut",
                              "cut")]
        wp = m["working_point"]
        numbers += [m["separation"], wp["cut"], wp["signal_efficiency"],
                    wp["signal_efficiency_error"], wp["rejection"], wp["purity"]]
        numbers += [b[k] for b in m["significance"]["best"].values()
                    for k in ("cut", "signal", "background", "s_over_sqrt_b", "z_asimov")]
        for n in numbers:
            assert n in parsed.values, (split, n)
    headings = [h.split(" ", 1)[1] for h in seen.headings]  # "h2 Title": the title
    assert "Figures of merit: validation (signal: sig)" in headings
    assert "Figures of merit: test (signal: sig)" in headings
    # The comparison: each split's ε_S at ε_B = 0.01 of the network beside the baseline's.
    comparison = text[text.index('class="baselines"'):]
    rows = comparison[:comparison.index("</table>")].split("</tr>")
    for split, called in (("val", "validation"), ("test", "test")):
        (row,) = [r for r in rows if f"<td>{called}</td><td>ε_S at ε_B = 0.01</td>" in r]
        ours, theirs = (metrics[split]["merit"]["signal_efficiency_at"][1]["signal_efficiency"],
                        metrics["baselines"]["gbdt"][split]["merit"]["signal_efficiency_at"][1]
                        ["signal_efficiency"])
        assert f'data-value="{ours!r}"' in row and f'data-value="{theirs!r}"' in row
        assert ours > theirs
        error = metrics[split]["merit"]["signal_efficiency_at"][1]["error_with_cut"]
        assert f" ± {error:.2g}</td>" in row  # the printed table's rows, errors and all
        (row,) = [r for r in rows if f"<td>{called}</td><td>separation ⟨S²⟩</td>" in r]
        assert f'data-value="{metrics[split]["merit"]["separation"]!r}"' in row
    assert 'data-value="1.25"' in rows[-2] and "fit (seconds)" in rows[-2]
    (row,) = [r for r in rows if "<td>predict (s)</td>" in r]  # the test split's alone
    assert "<td>test</td>" in row and 'data-value="0.375"' in row and "<td>–</td>" in row
    # baselines and overtraining are no splits: no metrics sections of their own.
    assert not any("baselines (" in h or "overtraining" in h for h in headings)
    assert headings.index("The network beside its baselines") > headings.index(
        "Figures of merit: test (signal: sig)")
    assert [h for h in headings if h in ("ROC curves", "Background rejection against signal "
                                         "efficiency", "Significance scan")] == [
        "ROC curves", "Background rejection against signal efficiency", "Significance scan"]


def test_a_figure_the_rows_cannot_resolve_shows_a_dash_and_its_reason_once():
    report = _classified(3)
    for point in report["merit"]["signal_efficiency_at"][:2]:
        point.update(signal_efficiency=float("nan"), reason="below the first step")
    text = page.page("run", {"sizes": {}}, {"test": report}, [])
    assert text.count("below the first step") == 1


def test_a_damaged_working_point_is_left_out_and_the_rest_shown(logged):
    report = _classified(3)
    del report["merit"]["working_point"]["asked"]
    text = page.page("run", {"sizes": {}}, {"test": report}, [])
    parsed = Collected()
    parsed.feed(text)
    assert report["merit"]["rejection_at"][1]["rejection"] in parsed.values
    assert report["merit"]["significance"]["best"]["z_asimov"]["z_asimov"] in parsed.values
    assert "The working point left out: malformed in metrics.json (KeyError &#x27;asked&#x27;)" \
        in text and "Working point (" not in text
    assert "the working point of the test split left out of the page" in logged.text


def test_the_overtraining_section_shows_the_warning_the_p_values_and_the_plot():
    check = {"test": "two-sample Kolmogorov–Smirnov, asymptotic p-value", "alarm_p_value": 0.01,
             "groups": {"a": {"rows": [200, 100], "statistic": 0.25, "p_value": 0.0003125},
                        "b": {"rows": [180, 90], "statistic": 0.0625, "p_value": 0.96875}},
             "overtrained": ["a"], "classes_left_out": 0, "splits": ["train", "test"],
             "warning": "overtraining: … for class 'a' (p = 0.00031)"}
    report = {"task": "classification", "rows": 2, "accuracy": 0.5, "cross_entropy": 0.7,
              "roc_auc": 0.5}
    text = page.page("run", {"sizes": {}}, {"test": report, "overtraining": check},
                     [("overtraining", _tiny_png()), ("roc", _tiny_png())])
    section = text[text.index("<h2>Overtraining check</h2>"):]
    assert "overtraining: … for class &#x27;a&#x27; (p = 0.00031)" in section
    assert section.index("<table") < section.index("Training against held-out outputs") < \
        section.index("<h2>Plots</h2>")  # the plot in its section, not among the others
    parsed = Collected()
    parsed.feed(section[:section.index("<h2>Plots</h2>")])
    assert [0.0003125, 0.96875] == [v for v in parsed.values if v in (0.0003125, 0.96875)]
    assert len(parsed.images) == 1
    assert "Overtraining" not in text[:text.index("<h2>Overtraining check</h2>")]
    silent = page.page("run", {"sizes": {}}, {"test": report, "overtraining": {
        **check, "overtrained": [], "warning": None}}, [])
    assert "No class differs between the train and test rows (every KS p ≥ 0.01)" in silent
