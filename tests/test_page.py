import base64
import io
import json
from html.parser import HTMLParser

import pytest

from fcnn_cli import page, runs, simulate, train


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
    assert len(parsed.images) == 6
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            image.load()
            assert image.size[0] > 300
    metrics = json.loads((run_dir / "metrics.json").read_text())
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
    from fcnn_cli.errors import FcnnError

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
    from fcnn_cli.errors import FcnnError

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "metrics.json").write_text(metrics)
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.png").write_bytes(_tiny_png())
    with pytest.raises(FcnnError, match=message):
        page.run_page(tmp_path)
