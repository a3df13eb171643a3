"""Temporal joins (Flink's `JOIN t FOR SYSTEM_TIME AS OF s.ts`) of a stream with a versioned
table: each event meets the version valid at its time, never a later one."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

import sqlml

T0 = dt.datetime(2024, 5, 1)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.fixture
def con():
    con = sqlml.connect()
    con.sql("CREATE TABLE prices (item BIGINT, valid_from TIMESTAMP, price DOUBLE, PRIMARY KEY (item, valid_from))")
    con.execute(
        "INSERT INTO prices VALUES (1, ?, 10), (1, ?, 11), (1, ?, 12), (2, ?, 20)", [at(0), at(10), at(20), at(5)]
    )
    con.sql("CREATE STREAM orders (item BIGINT, qty BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) "
            "WITH (connector = 'python')")  # fmt: skip
    con.push("orders", pa.table({"item": [1, 2, 1, 2, 1, 3], "qty": [1, 2, 3, 4, 5, 6],
                                 "ts": [at(3), at(1), at(10), at(7), at(25), at(4)]}))  # fmt: skip
    return con


def rows(con, sql: str) -> list[tuple]:
    return sorted(tuple(r.values()) for b in con.stream(sql) for r in b.to_pylist())


def test_each_event_meets_the_version_valid_at_its_time(con):
    got = rows(
        con, "SELECT o.qty, p.price FROM orders AS o JOIN prices FOR SYSTEM_TIME AS OF o.ts AS p ON o.item = p.item"
    )
    # qty 2 (item 2 at 1 s, before its first version) and 6 (no such item) meet nothing;
    # qty 3 at exactly 10 s meets the version that starts then
    assert got == [(1, 10.0), (3, 11.0), (4, 20.0), (5, 12.0)]


def test_a_left_temporal_join_keeps_events_without_a_version(con):
    got = rows(
        con,
        "SELECT o.qty, p.price FROM orders AS o LEFT JOIN prices FOR SYSTEM_TIME AS OF o.ts AS p ON o.item = p.item",
    )
    assert got == [(1, 10.0), (2, None), (3, 11.0), (4, 20.0), (5, 12.0), (6, None)]


def test_a_table_without_a_versioned_primary_key_is_refused(con):
    con.sql("CREATE TABLE flat (item BIGINT, price DOUBLE)")
    with pytest.raises(sqlml.BindError) as err:
        con.sql("SELECT o.qty FROM orders AS o JOIN flat FOR SYSTEM_TIME AS OF o.ts AS f ON o.item = f.item")
    assert "'flat' is not a versioned table" in err.value.message and "PRIMARY KEY" in err.value.hint
    assert err.value.line == 1 and err.value.col > 1
