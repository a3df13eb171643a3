"""The Nexmark queries (queries/nexmark/: window aggregations and joins, regular joins and
updating queries) streamed equal the same queries run in batch."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

from nexmark import QUERIES, batch_sql, rows, statements  # noqa: E402
from nexmark_gen import write, write_sample  # noqa: E402

import sqlml  # noqa: E402


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nexmark")
    write(folder / "nexmark", 30_000, 3, 1_000, 3)
    return folder


SLOW = {"q4", "q6", "q9", "q15", "q16", "q17", "q18", "q19"}  # updating queries: about 1 s each


@pytest.mark.parametrize("name", [pytest.param(q, marks=pytest.mark.slow) if q in SLOW else q for q in QUERIES])
def test_streaming_equals_batch(events, name, monkeypatch):
    monkeypatch.chdir(events)
    create_stream, create_table, insert = statements(name)
    con = sqlml.connect(catalog=events / "cat")
    con.execute(create_stream.replace("format = 'parquet')", "format = 'parquet', batch_size = 4000)"))
    con.execute(create_table)
    summary = con.sql(insert).arrow().to_pylist()[0]
    assert summary["events"] == 30_000 and summary["late"] == 0 and summary["malformed"] == 0
    streamed = rows(con, name)
    assert streamed, "the query produced nothing"
    con.execute("CREATE TABLE nexmark_batch AS SELECT * FROM read_parquet('nexmark/*.parquet')")
    con.execute(batch_sql(name, insert))
    assert streamed == rows(con, f"{name}_batch")


def test_the_committed_sample_is_the_generators(tmp_path):
    """queries/nexmark/ reads queries/data/nexmark_sample.parquet when a file runs alone."""
    import duckdb

    committed, fresh = ROOT / "queries" / "data" / "nexmark_sample.parquet", tmp_path / "sample.parquet"
    write_sample(fresh)
    con = duckdb.connect()
    differ = f"(FROM '{committed}' EXCEPT ALL FROM '{fresh}') UNION ALL (FROM '{fresh}' EXCEPT ALL FROM '{committed}')"
    assert con.execute(f"SELECT count(*) FROM ({differ})").fetchone() == (0,)
    counts = con.execute(f"SELECT count(*), count(expires), count(channel) FROM '{committed}'").fetchone()
    assert counts == (20_000, 1_200, 18_400)
