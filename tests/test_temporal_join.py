"""Temporal joins (Flink's `JOIN t FOR SYSTEM_TIME AS OF s.ts`) of a stream with a versioned
table, or with a stream of versions: each event meets the version valid at its time, never a
later one."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def stream_of(rng, n: int, keys: int, disorder_ms: int) -> pa.Table:
    """n events over a minute, out of time order by up to `disorder_ms`."""
    times = sorted(rng.randint(0, 60_000) for _ in range(n))
    arrival = sorted(range(n), key=lambda i: times[i] + rng.randint(0, disorder_ms))
    return pa.table({"k": [rng.randrange(keys) for _ in range(n)], "v": list(range(n)),
                     "ts": [T0 + dt.timedelta(milliseconds=times[i]) for i in arrival]})  # fmt: skip


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), side=st.sampled_from(["", "LEFT "]), cut=st.integers(1, 25))
def test_a_temporal_join_against_a_stream_of_versions_equals_batch(seed, side, cut):
    """Orders and versions of rates interleaved in micro-batches of any size, out of order
    within the watermark's delay: each order meets the version valid at its time, as the batch
    ASOF join has it, and nothing is late."""
    rng = random.Random(seed)
    con = sqlml.connect()
    for name in ("orders", "rates"):
        con.sql(f"CREATE STREAM {name} (k BIGINT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) "
                "WITH (connector = 'python')")  # fmt: skip
    orders, rates = stream_of(rng, 60, 4, 1500), stream_of(rng, 25, 4, 1500)
    pieces = (cut, max(1, cut * 25 // 60))
    for i in range(60):  # the two streams' micro-batches interleaved
        if i * pieces[0] < 60:
            con.push("orders", orders.slice(i * pieces[0], pieces[0]))
        if i * pieces[1] < 25:
            con.push("rates", rates.slice(i * pieces[1], pieces[1]))
    query = ("SELECT o.v, o.ts, r.v AS version, r.ts AS valid_from FROM {o} AS o {side}JOIN {r} FOR SYSTEM_TIME AS OF "
             "o.ts AS r ON o.k = r.k")  # fmt: skip
    streamed = rows(con, query.format(o="orders", r="rates", side=side))
    con.connection.register("orders_t", orders)
    con.connection.register("rates_t", rates)
    batch = sorted(con.connection.sql(
        f"SELECT o.v, o.ts, r.v, r.ts FROM orders_t AS o ASOF {side}JOIN rates_t AS r ON o.k = r.k AND o.ts >= r.ts"
    ).fetchall())  # fmt: skip
    assert con.sql("SELECT (SELECT count(*) FROM orders_late) + (SELECT count(*) FROM rates_late)").fetchall() == [(0,)]
    assert streamed == batch and streamed
