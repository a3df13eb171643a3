"""Interval joins of two streams (Flink's semantics): every pair within the time bounds is
output once, whatever the micro-batches, a LEFT join's unpaired events once with NULLs, and
state forgets events no later event can pair with. The reference is the same join over
tables in plain DuckDB."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlml
from sqlml.stream.interval_join import bounds

T0 = dt.datetime(2024, 5, 1)
CONDITIONS = {
    "clicks then a purchase within 30 minutes": "b.ts BETWEEN c.ts AND c.ts + INTERVAL '30' MINUTE",
    "either side first": "b.ts >= c.ts - INTERVAL '5' MINUTE AND b.ts < c.ts + INTERVAL '10' MINUTE",
    "written from the other side": "c.ts + INTERVAL '1' MINUTE <= b.ts AND c.ts >= b.ts - INTERVAL '20' MINUTE",
}
QUERY = "SELECT c.u, c.x, b.x AS bx, c.ts, b.ts AS bts FROM {c} AS c {join} {b} AS b ON c.u = b.u AND {on}"


def table(rng: random.Random, n: int, span_s: int) -> pa.Table:
    times = sorted(T0 + dt.timedelta(seconds=rng.randrange(span_s)) for _ in range(n))
    return pa.table({"u": [rng.randrange(8) for _ in range(n)], "x": list(range(n)), "ts": times})


def streamed(clicks: pa.Table, buys: pa.Table, cuts: tuple[int, int], on: str, join: str = "JOIN") -> Counter:
    con = sqlml.connect()
    for name in ("clicks", "buys"):
        con.sql(f"CREATE STREAM {name} (u BIGINT, x BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - "
                "INTERVAL '1' SECOND) WITH (connector = 'python')")  # fmt: skip
    for name, data, cut in (("clicks", clicks, cuts[0]), ("buys", buys, cuts[1])):
        for start in range(0, data.num_rows, cut):
            con.push(name, data.slice(start, cut))
    query = QUERY.format(c="clicks", b="buys", on=on, join=join)
    return Counter(tuple(r.values()) for b in con.stream(query) for r in b.to_pylist())


def batch(clicks: pa.Table, buys: pa.Table, on: str, join: str = "JOIN") -> Counter:
    db = duckdb.connect()
    db.register("c1", clicks)
    db.register("b1", buys)
    return Counter(db.sql(QUERY.format(c="c1", b="b1", on=on, join=join)).fetchall())


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    condition=st.sampled_from(sorted(CONDITIONS)),
    join=st.sampled_from(["JOIN", "LEFT JOIN"]),
    cuts=st.tuples(st.sampled_from([1, 3, 16, 10_000]), st.sampled_from([1, 5, 10_000])),
)
def test_an_interval_join_equals_the_batch_join_at_any_micro_batch_size(seed, condition, join, cuts):
    rng = random.Random(seed)
    clicks, buys = table(rng, 70, 4 * 3600), table(rng, 30, 4 * 3600)
    on = CONDITIONS[condition]
    expected = batch(clicks, buys, on, join)
    assert sum(expected.values()) > 0
    assert streamed(clicks, buys, cuts, on, join) == expected


def test_late_events_are_left_out_and_kept_in_late():
    """The query's watermark is the smaller of the two streams': once both are at 2:00 or
    later, a click from 0:00 is late, though a purchase at 0:10 would have paired with it."""
    hours = lambda *h: [T0 + dt.timedelta(hours=x) for x in h]  # noqa: E731
    con = sqlml.connect()
    for name in ("clicks", "buys"):
        con.sql(f"CREATE STREAM {name} (u BIGINT, x BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) "
                "WITH (connector = 'python')")  # fmt: skip
    con.push("clicks", pa.table({"u": [1, 1], "x": [0, 1], "ts": hours(0, 2)}))
    con.push("clicks", pa.table({"u": [1], "x": [2], "ts": hours(0)}))  # read after the purchases below
    con.push("buys", pa.table({"u": [1, 1], "x": [0, 1], "ts": hours(1 / 6, 3)}))
    query = QUERY.format(c="clicks", b="buys", on=CONDITIONS["clicks then a purchase within 30 minutes"], join="JOIN")
    got = [tuple(r.values())[:3] for b in con.stream(query) for r in b.to_pylist()]
    assert got == [(1, 0, 0)]
    assert con.sql("SELECT x, watermark FROM clicks_late").fetchall() == [(2, hours(2)[0])]


def test_bounds_are_read_from_the_condition():
    import sqlglot

    def read(on: str):
        query = sqlglot.parse_one(f"SELECT * FROM a JOIN b ON {on}")
        return bounds(query.args["joins"][0].args["on"], "a", "ts", "b", "ts")

    minute = 60_000_000
    assert read("b.ts BETWEEN a.ts - INTERVAL '1' MINUTE AND a.ts + INTERVAL '2' MINUTE") == (-minute, 2 * minute)
    assert read("a.ts > b.ts - INTERVAL '3' MINUTE AND a.ts <= b.ts") == (0, 3 * minute)
    assert read("a.k = b.k AND b.ts >= a.ts") is None  # no upper bound


def test_a_join_whose_bounds_leave_no_interval_is_refused():
    con = sqlml.connect()
    for name in ("clicks", "buys"):
        con.sql(f"CREATE STREAM {name} (u BIGINT, x BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) "
                "WITH (connector = 'python')")  # fmt: skip
    on = "c.u = b.u AND b.ts BETWEEN c.ts + INTERVAL '2' MINUTE AND c.ts + INTERVAL '1' MINUTE"
    with pytest.raises(sqlml.BindError) as err:
        con.sql(f"SELECT c.x FROM clicks AS c JOIN buys AS b ON {on}")
    assert "no interval" in err.value.message and err.value.line == 1


def test_a_regular_join_of_two_streams_pairs_every_event_even_out_of_order():
    """No time bounds: Flink's regular join, state kept; an event far behind the watermark
    still pairs (nothing is late), as in the batch join."""
    rng = random.Random(4)
    clicks, buys = table(rng, 40, 3600), table(rng, 20, 3600)
    late = pa.table({"u": [1], "x": [99], "ts": [T0]})  # after everything, from the start of time
    query = QUERY.replace("c.u = b.u AND ", "").format(c="{c}", b="{b}", on="c.x % 5 = b.x % 5", join="JOIN")
    db = duckdb.connect()
    db.register("c1", pa.concat_tables([clicks, late]))
    db.register("b1", buys)
    expected = Counter(db.sql(query.format(c="c1", b="b1")).fetchall())
    con = sqlml.connect()
    for name in ("clicks", "buys"):
        con.sql(f"CREATE STREAM {name} (u BIGINT, x BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) "
                "WITH (connector = 'python')")  # fmt: skip
    for start in range(0, 40, 7):
        con.push("clicks", clicks.slice(start, 7))
    con.push("buys", buys)
    con.push("clicks", late)
    got = Counter(tuple(r.values()) for b in con.stream(query.format(c="clicks", b="buys")) for r in b.to_pylist())
    assert got == expected and sum(got.values()) > 100
