"""Nexmark q5, q7, q8, q11 (queries/nexmark/) streamed equal the same queries run in batch."""

from __future__ import annotations

import sys
from collections import Counter

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

from nexmark import statements  # noqa: E402
from nexmark_gen import write  # noqa: E402

import sqlml  # noqa: E402


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nexmark")
    write(folder / "nexmark", 30_000, 3, 1_000, 3)
    return folder


@pytest.mark.parametrize("name", ["q5", "q7", "q8", "q11"])
def test_streaming_equals_batch(events, name, monkeypatch):
    monkeypatch.chdir(events)
    create_stream, create_table, insert = statements(name)
    con = sqlml.connect(catalog=events / "cat")
    con.execute(create_stream.replace("format = 'parquet')", "format = 'parquet', batch_size = 4000)"))
    con.execute(create_table)
    summary = con.sql(insert).arrow().to_pylist()[0]
    assert summary["events"] == 30_000 and summary["late"] == 0 and summary["malformed"] == 0
    streamed = Counter(con.sql(f"SELECT * FROM {name}").fetchall())
    assert streamed, "the query produced nothing"
    con.execute("CREATE TABLE nexmark_batch AS SELECT * FROM read_parquet('nexmark/*.parquet')")
    con.execute(
        insert.replace(f"INSERT INTO {name}", f"CREATE TABLE {name}_batch AS").replace(
            "TABLE nexmark", "TABLE nexmark_batch"
        )
    )
    assert streamed == Counter(con.sql(f"SELECT * FROM {name}_batch").fetchall())
