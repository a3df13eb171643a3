"""`sqlml report`: one self-contained HTML file, rendered by a real headless Chromium (from
Debian's packages) in this test; the screenshot is kept in tests/artifacts/ for a person to look at."""

from __future__ import annotations

import re
import shutil
import subprocess

import pyarrow as pa
import pytest
from PIL import Image
from sklearn import datasets

import sqlml
from tests.conftest import ROOT, run_cli

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture
def trained(catalog):
    data = datasets.load_breast_cancer()
    src = pa.table({**{f"f{i}": data.data[:, i] for i in range(10)}, "y": data.target})  # noqa: F841 (read by name)
    con = sqlml.connect(catalog=catalog)
    con.sql("TRAIN MODEL cancer USING lightgbm_classifier LABEL y WITH (num_threads = 1, num_boost_round = 40, "
            "num_leaves = HPARAM_RANGE(4, 32), trials = 4) AS SELECT * FROM src")  # fmt: skip
    con.sql("TRAIN MODEL plain USING logistic_classifier LABEL y WITH (validation = 0) AS SELECT * FROM src")
    con.close()
    return catalog


def test_the_report_is_one_self_contained_file(tmp_path, trained):
    out = tmp_path / "cancer.html"
    done = run_cli("report", "cancer", "-o", str(out), "--catalog", str(trained))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    for section in ("Metrics", "ROC curve", "Precision-recall curve", "Confusion matrix", "Feature importance",
                    "Training curve", "Tuning trials", "Calibration"):  # fmt: skip
        assert section in page, section
    assert page.count("<svg") >= 5
    # nothing is loaded from elsewhere: no scripts, stylesheets, images or fonts by address
    assert not re.search(r"<(script|link|img|iframe)\b|@import|url\(", page)
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg")


def test_a_model_without_validation_rows_or_trees_still_reports(tmp_path, trained):
    out = tmp_path / "plain.html"
    done = run_cli("report", "plain", "-o", str(out), "--catalog", str(trained))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert "No validation rows were kept" in page and "Feature importance" not in page


def test_an_unknown_model_is_a_user_error(tmp_path, trained):
    done = run_cli("report", "cancr", "--catalog", str(trained), cwd=tmp_path)
    assert done.returncode == 1
    assert "Unknown model 'cancr'" in done.stderr and "Did you mean 'cancer'" in done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.glob("*.html"))


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_report_renders_in_headless_chromium(tmp_path, trained):
    out = tmp_path / "cancer.html"
    assert run_cli("report", "cancer", "-o", str(out), "--catalog", str(trained)).returncode == 0
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1100,2400",
         f"--screenshot={shot}", out.as_uri()],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    image = Image.open(shot).convert("RGB")
    assert image.size == (1100, 2400)
    pixels = list(image.get_flattened_data())
    white = sum(p == (255, 255, 255) for p in pixels)
    assert white < 0.97 * len(pixels)  # not blank
    # the curves and bars are drawn in the chart blue (#2563eb): many such pixels mean the charts rendered
    blue = sum(abs(p[0] - 0x25) < 40 and abs(p[1] - 0x63) < 40 and abs(p[2] - 0xEB) < 40 for p in pixels)
    assert blue > 2000


@pytest.mark.slow
def test_a_continuously_trained_model_reports_its_windows_and_promotions(tmp_path, catalog):
    con = sqlml.connect(catalog=catalog)
    con.execute("""CREATE TABLE clicks AS
        SELECT TIMESTAMP '2025-01-01' + INTERVAL (i * 2) SECOND AS ts, (hash(i) % 1000) / 1000.0 AS x,
               (hash(i) % 1000) / 1000.0 + (hash(i, 1) % 100) / 400.0 > 0.6 AS purchased
        FROM range(3600) AS t(i)""")  # fmt: skip
    con.sql("TRAIN MODEL cvr USING lightgbm_classifier LABEL purchased WITH (rounds_per_window = 5, num_threads = 1) "
            "AS SELECT x, purchased FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '20' MINUTE))")  # fmt: skip
    con.close()
    out = tmp_path / "cvr.html"
    done = run_cli("report", "cvr", "-o", str(out), "--catalog", str(catalog))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert "Continuous training" in page and "auc per window" in page and "Promotions" in page
    assert page.count("<tr>") > 8  # the windows' metrics and the promotions are listed
