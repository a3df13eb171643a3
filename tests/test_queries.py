"""Every example in queries/ runs through the CLI, and its answers are sane."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import sqlml
from tests.conftest import ROOT, run_cli

QUERIES = sorted((ROOT / "queries").rglob("*.sql"))  # queries/nexmark/ too: each file runs alone


def test_there_are_examples_for_every_task():
    names = {q.stem for q in QUERIES}
    assert {"quickstart", "multiclass_iris_like", "regression_prices", "ranking_search", "streaming"} <= names


# a CNN and 1,000 clips (test_media.py checks them), five model families, and the updating Nexmark
# queries (test_nexmark.py checks them against batch): run by the slow suite
SLOW = ("image_digits", "speech_digits", "model_zoo", "q4", "q6", "q9", "q15", "q16", "q17", "q18", "q19")


@pytest.mark.parametrize(
    "path",
    [pytest.param(q, marks=pytest.mark.slow) if q.stem in SLOW else q for q in QUERIES],
    ids=[q.stem for q in QUERIES],
)
def test_query_file_runs_in_the_cli(path: Path, tmp_path):
    (tmp_path / "queries").symlink_to(ROOT / "queries")  # the examples read queries/data/ from where they run
    proc = run_cli("run", str(path), "--catalog", str(tmp_path / "cat"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "row" in proc.stdout


def test_quickstart_learns_something(tmp_path):
    con = sqlml.connect(catalog=tmp_path / "cat")
    con.execute((ROOT / "queries" / "quickstart.sql").read_text())
    auc = con.sql("EVALUATE MODEL churn").arrow()["auc"][0].as_py()
    assert auc > 0.65
    top = con.sql("EXPLAIN MODEL churn").fetchall()[0][0]
    assert top == "tenure"


def test_streaming_example_counts_late_and_malformed_events(tmp_path):
    proc = run_cli("run", str(ROOT / "queries" / "streaming.sql"), "--format", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (
        "clicks: 3000 events, 100 windows closed, 15 late (in clicks_late), 1 malformed (in clicks_errors)"
        in proc.stderr
    )
    assert '"stream","events","late","malformed","windows","rows_written"\n"clicks",3000,15,1,100,700' in proc.stdout


def test_realtime_example_shows_the_drift_and_the_recovery(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    con = sqlml.connect(catalog=tmp_path / "cat")
    con.execute((ROOT / "queries" / "realtime_cvr.sql").read_text())
    auc = dict(
        con.sql("SELECT strftime(window_end, '%H:%M'), auc FROM METRICS(MODEL cvr) WHERE auc IS NOT NULL").fetchall()
    )
    before = [v for k, v in auc.items() if "09:00" <= k <= "12:00"]
    after = [v for k, v in auc.items() if "12:30" <= k <= "15:50"]
    assert min(before) > 0.75 and auc["12:10"] < 0.5 and sum(after) / len(after) > 0.85
    # the first version serves from 08:40: its window (to 08:10) plus the 30-minute label horizon
    assert con.sql("SELECT count(*), count(model_version), min(ts) FILTER (WHERE model_version IS NOT NULL) "
                   "FROM scored").fetchall() == [(14400, 13200, dt.datetime(2025, 6, 1, 8, 40))]  # fmt: skip


def test_text_example_scores_the_stream_with_the_stored_featurizer(tmp_path):
    proc = run_cli("run", str(ROOT / "queries" / "text_classification.sql"), "--format", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"m0","urgent offer",true' in proc.stdout and '"m1","project meeting",false' in proc.stdout
    assert '"body:urgent"' in proc.stdout or '"body:winner"' in proc.stdout


@pytest.mark.slow
def test_model_zoo_compares_five_families_side_by_side(tmp_path):
    con = sqlml.connect(catalog=tmp_path / "cat")
    script = (ROOT / "queries" / "model_zoo.sql").read_text()
    con.execute(script[: script.index("-- EVALUATE gives")])
    comparison = con.sql(script[script.index("WITH scored AS") : script.index("-- EVALUATE gives")]).fetchall()
    assert sorted(r[0] for r in comparison) == ["zoo_bayes", "zoo_boosted", "zoo_forest", "zoo_knn", "zoo_logistic"]
    assert all(r[1] == 1000 and r[2] > 0.65 for r in comparison), comparison
