"""The dialect: our statements round-trip, and DuckDB's statements pass through untouched
with the same results as DuckDB on its own."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import sqlml
from sqlml.dialect import Sqlml, parse

FIXTURES = Path(__file__).parent / "fixtures" / "parse"
ROUNDTRIP = [s.text for s in parse((FIXTURES / "roundtrip.sql").read_text())]
DUCKDB = [s.text for s in parse((FIXTURES / "duckdb.sql").read_text())]


@pytest.mark.parametrize("sql", ROUNDTRIP)
def test_roundtrip(sql):
    (statement,) = parse(sql)
    assert statement.node is not None
    assert statement.node.sql(dialect=Sqlml) == sql


def test_duckdb_statements_are_left_to_duckdb():
    assert len(DUCKDB) >= 44
    assert all(s.node is None for s in parse((FIXTURES / "duckdb.sql").read_text()))


def test_duckdb_statements_give_duckdb_results(tmp_path):
    plain = duckdb.connect()
    ours = sqlml.connect(catalog=tmp_path)
    for sql in DUCKDB:
        expected = plain.sql(sql)
        got = ours.sql(sql)
        if expected is None:
            assert got is None, sql
        elif not sql.startswith(("EXPLAIN", "SUMMARIZE")):
            assert got.fetchall() == expected.fetchall(), sql


def test_statement_positions_and_keyword_case():
    statements = parse("SELECT 1;\n  train model M using lightgbm_classifier label y as select 1 as y")
    assert [(s.span.line, s.span.col) for s in statements] == [(1, 1), (2, 3)]
    assert statements[1].kind == "Train"
    assert statements[1].node.this.name == "M"


def test_comments_and_semicolons_inside_strings():
    statements = parse("-- note; not a statement\nSELECT 'a;b' AS x; /* c; */ SHOW MODELS")
    assert [s.kind for s in statements] == ["sql", "ShowModels"]
    assert statements[0].text == "SELECT 'a;b' AS x"
