"""Every example in queries/ runs through the CLI, and its answers are sane."""

from __future__ import annotations

from pathlib import Path

import pytest

import sqlml
from tests.conftest import ROOT, run_cli

QUERIES = sorted((ROOT / "queries").glob("*.sql"))


def test_there_are_examples_for_every_task():
    names = {q.stem for q in QUERIES}
    assert {"quickstart", "multiclass_iris_like", "regression_prices", "ranking_search"} <= names


@pytest.mark.parametrize("path", QUERIES, ids=[q.stem for q in QUERIES])
def test_query_file_runs_in_the_cli(path: Path, tmp_path):
    proc = run_cli("run", str(path), "--catalog", str(tmp_path / "cat"))
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
