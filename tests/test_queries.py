"""Every example in queries/ runs through the CLI, and its answers are sane."""

from __future__ import annotations

from pathlib import Path

import pytest

import sqlml
from tests.conftest import ROOT, run_cli

QUERIES = sorted((ROOT / "queries").glob("*.sql"))


def test_there_are_examples_for_every_task():
    names = {q.stem for q in QUERIES}
    assert {"quickstart", "multiclass_iris_like", "regression_prices", "ranking_search", "streaming"} <= names


@pytest.mark.parametrize("path", QUERIES, ids=[q.stem for q in QUERIES])
def test_query_file_runs_in_the_cli(path: Path, tmp_path):
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
