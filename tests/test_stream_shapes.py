"""Every query shape a stream accepts gives the batch query's result whatever the micro-batch
sizes (1, 7, random, all at once); the shapes whose result would depend on them are refused
when the statement is bound, with a hint."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlml
from tests.test_stream import create, events_table

TUMBLE = "TABLE(TUMBLE(TABLE {ev}, DESCRIPTOR(ts), INTERVAL '2' SECOND))"
HOP = "TABLE(HOP(TABLE {ev}, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '3' SECOND))"

# each shape as the user writes it; {ev} is the stream (or, for the batch reference, a table)
ACCEPTED = {
    "stateless filter": "SELECT k, v * 2 AS w FROM {ev} WHERE v % 3 <> 1",
    "stateless join with a table": "SELECT e.v, n.name FROM {ev} AS e JOIN names AS n ON e.k = n.k",
    "stateless left join keeping the stream": "SELECT e.v, n.name FROM {ev} AS e LEFT JOIN names AS n ON e.k = n.k",
    "stateless CTE chain": "WITH a AS (SELECT k, v FROM {ev} WHERE v > 2), b AS (SELECT k + 1 AS k1, v FROM a) SELECT * FROM b",
    "stateless UNION ALL of one stream": "WITH s AS (SELECT k, v FROM {ev}) SELECT k FROM s WHERE v % 2 = 0 UNION ALL SELECT v FROM s WHERE k = 1",
    "stateless scalar subquery over a table": "SELECT v, (SELECT max(k) FROM names) AS top FROM {ev}",
    "window aggregate": f"SELECT window_start, window_end, k, count(*) AS n, sum(v) AS s FROM {TUMBLE} GROUP BY window_start, window_end, k",
    "window aggregate GROUP BY ALL": f"SELECT window_start, window_end, count(*) AS n FROM {HOP} GROUP BY ALL",
    "window Top-N": (
        "SELECT * FROM (SELECT window_start, window_end, k, count(*) AS n, row_number() OVER "
        f"(PARTITION BY window_start, window_end ORDER BY count(*) DESC, k) AS rn FROM {HOP} "
        "GROUP BY window_start, window_end, k) WHERE rn <= 1"
    ),
    "window rows": f"SELECT window_start, k, v FROM {TUMBLE} WHERE v % 2 = 0",
    "window DISTINCT with bounds": f"SELECT DISTINCT window_start, window_end, k FROM {HOP}",
    "window self-join through a CTE": (
        f"WITH w AS (SELECT * FROM {TUMBLE}) SELECT a.window_start, a.v, b.v AS v2 FROM w AS a JOIN w AS b "
        "ON a.window_start = b.window_start AND a.window_end = b.window_end AND a.k = b.k AND a.v < b.v"
    ),
    "window self-join USING bounds": (
        f"WITH w AS (SELECT * FROM {HOP}) SELECT a.window_end, count(*) AS pairs FROM w AS a JOIN w AS b "
        "USING (window_start, window_end, k) GROUP BY a.window_start, a.window_end"
    ),
    "window UNION of aggregates with bounds": (
        f"WITH w AS (SELECT * FROM {TUMBLE}) SELECT window_start, window_end, 'n' AS what, count(*) AS x FROM w "
        "GROUP BY window_start, window_end UNION SELECT window_start, window_end, 'max', max(v) FROM w "
        "GROUP BY window_start, window_end"
    ),
    "window join with a table": (
        f"SELECT window_start, window_end, n.name, count(*) AS c FROM {TUMBLE} AS w JOIN names AS n ON w.k = n.k "
        "GROUP BY window_start, window_end, n.name"
    ),
    "OVER RANGE aggregates": (
        "SELECT k, v, ts, count(*) OVER (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND "
        "CURRENT ROW) AS n, sum(v) OVER (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND "
        "CURRENT ROW) AS s FROM {ev} WHERE v % 3 <> 1"
    ),
    # equal times in a ROWS frame are in arrival order: the table's rowid is its arrival order
    "OVER ROWS aggregate": (
        "SELECT k, v, min(v) OVER (ORDER BY ts{tie} ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS low, "
        "avg(v) OVER (ORDER BY ts{tie} ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS mean FROM {ev}"
    ),
    "deduplication (first event per key)": (
        "SELECT k, v, ts FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts{tie}) AS rn FROM {ev} "
        "WHERE v % 4 <> 0) WHERE rn = 1"
    ),
    "temporal join with a versioned table": "SELECT e.v, p.price FROM {ev} AS e {asof}",
    "LEFT temporal join with a versioned table": "SELECT e.v, p.price FROM {ev} AS e {asof_left}",
    "window aggregate in a subquery": (
        f"SELECT window_end, n FROM (SELECT window_start, window_end, count(*) AS n FROM {TUMBLE} "
        "GROUP BY window_start, window_end) WHERE n > 1"
    ),
}

# a temporal join as the stream query writes it, and as DuckDB's ASOF JOIN for the batch reference
STREAM_ASOF = {
    "asof": "JOIN prices FOR SYSTEM_TIME AS OF e.ts AS p ON e.k = p.k",
    "asof_left": "LEFT JOIN prices FOR SYSTEM_TIME AS OF e.ts AS p ON e.k = p.k",
}
BATCH_ASOF = {
    "asof": "ASOF JOIN prices AS p ON e.k = p.k AND e.ts >= p.valid_from",
    "asof_left": "ASOF LEFT JOIN prices AS p ON e.k = p.k AND e.ts >= p.valid_from",
}

# updating queries (see sqlml/stream/changelog.py): their output is a changelog
UPDATING = {
    "aggregate per key": "SELECT k, count(*) AS n, sum(v) AS s, max(ts) AS last FROM {ev} GROUP BY k",
    "aggregate by a column and an expression": "SELECT k, v % 2 AS odd, count(*) AS n FROM {ev} GROUP BY k, v % 2",
    "global aggregate through a CTE": "WITH s AS (SELECT * FROM {ev}) SELECT count(*) AS n, min(v) AS lo FROM s",
    "HAVING drops groups": (
        "SELECT k, count(*) AS n FROM {ev} WHERE v % 5 <> 0 GROUP BY k HAVING count(*) BETWEEN 2 AND 4"
    ),
    "DISTINCT": "SELECT DISTINCT k FROM {ev}",
    "median and COUNT DISTINCT by an expression": (
        "SELECT k % 2 AS parity, median(v) AS m, count(DISTINCT k) AS kinds FROM {ev} GROUP BY k % 2"
    ),
    "nested aggregation": "SELECT n, count(*) AS keys FROM (SELECT k, count(*) AS n FROM {ev} GROUP BY k) GROUP BY n",
    "aggregate of a join with a table": (
        "SELECT n.name, count(*) AS c FROM {ev} AS e JOIN names AS n ON e.k = n.k GROUP BY n.name"
    ),
    "Top-N with its row number": (
        "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM {ev}) WHERE rn <= 2"
    ),
    "Top-N without its row number": (
        "SELECT k, v FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v % 7, v) AS n FROM {ev} "
        "WHERE v % 3 <> 0) WHERE n < 4"
    ),
    "keep the last row": (
        "SELECT k, v, ts FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC, v DESC) AS rn "
        "FROM {ev}) WHERE rn = 1"
    ),
    "self-join through a CTE": (
        "WITH s AS (SELECT * FROM {ev}) SELECT a.v, b.v AS v2 FROM s AS a JOIN s AS b ON a.k = b.k AND a.v < b.v"
    ),
    "self-join, insert-only": "SELECT a.v, b.v AS v2 FROM {ev} AS a JOIN {ev} AS b ON a.k = b.k AND a.v <= b.v",
    "three-way self-join, insert-only": (
        "SELECT a.v, b.v AS v2, c.v AS v3 FROM {ev} AS a JOIN {ev} AS b ON a.k = b.k AND b.v = a.v + 1 JOIN {ev} AS c "
        "ON c.k = b.k AND c.v > b.v"
    ),
    "self-join in a UNION ALL": (
        "SELECT a.v, b.v AS v2 FROM {ev} AS a JOIN {ev} AS b ON a.k = b.k AND b.v = a.v + 1 "
        "UNION ALL SELECT v, v FROM {ev} WHERE k = 2"
    ),
    "LEFT self-join without time bounds": (
        "WITH s AS (SELECT * FROM {ev}) SELECT a.v, b.v AS v2 FROM s AS a LEFT JOIN s AS b ON b.v = a.v + 3 AND a.k = b.k"
    ),
}

REFUSED = {
    "UNION over a stream": ("SELECT k FROM ev UNION SELECT k FROM names", "branch of this UNION reads no stream"),
    "UNION of the stream with itself": (
        "WITH s AS (SELECT k FROM ev) SELECT k FROM s UNION SELECT k + 1 FROM s",
        "UNION over a stream compares rows across micro-batches",
    ),
    "UNION ALL with a table": ("SELECT k FROM ev UNION ALL SELECT k FROM names", "reads no stream"),
    "join of different windows": (
        f"WITH w AS (SELECT * FROM {TUMBLE.format(ev='ev')}) SELECT a.v, b.v FROM w AS a JOIN w AS b ON a.k = b.k",
        "must match the windows",
    ),
    "join of windows on the start only": (
        f"WITH w AS (SELECT * FROM {TUMBLE.format(ev='ev')}) SELECT a.v FROM w AS a JOIN w AS b "
        "ON a.window_start = b.window_start",
        "must match the windows",
    ),
    "global aggregate over windows": (f"SELECT count(*) FROM {TUMBLE.format(ev='ev')}", "needs GROUP BY"),
    "DISTINCT over windows without bounds": (f"SELECT DISTINCT k FROM {TUMBLE.format(ev='ev')}", "must keep"),
    "table kept by an outer join": (
        "SELECT n.name, e.v FROM names AS n LEFT JOIN ev AS e ON e.k = n.k",
        "keeps a table's rows",
    ),
    "stream in an IN subquery": ("SELECT name FROM names WHERE k IN (SELECT k FROM ev)", "subquery"),
    "stream rows joined with its windows": (
        f"WITH w AS (SELECT * FROM {TUMBLE.format(ev='ev')}) SELECT * FROM w JOIN ev ON w.k = ev.k",
        "both through a window function and directly",
    ),
    "OVER without a bounded frame": ("SELECT sum(v) OVER (PARTITION BY k ORDER BY ts) FROM ev", "bounded stretch"),
    "OVER UNBOUNDED PRECEDING": (
        "SELECT sum(v) OVER (ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM ev",
        "bounded stretch",
    ),
    "OVER ordered by another column": (
        "SELECT sum(v) OVER (ORDER BY v ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM ev",
        "orders by its time column 'ts', not 'v'",
    ),
    "OVER with two windows": (
        "SELECT sum(v) OVER (ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW), "
        "max(v) OVER (ORDER BY ts ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) FROM ev",
        "same window",
    ),
    "ROW_NUMBER over stream rows": ("SELECT row_number() OVER (ORDER BY ts) FROM ev", "is not supported"),
    "OVER in a CTE": (
        "WITH o AS (SELECT sum(v) OVER (ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s FROM ev) "
        "SELECT * FROM o",
        "outermost SELECT",
    ),
}


def session(tmp_path_factory, table) -> sqlml.Session:
    con = sqlml.connect(catalog=tmp_path_factory.mktemp("c"))
    create(con)
    con.execute("CREATE TABLE names AS SELECT * FROM (VALUES (0, 'zero'), (1, 'one'), (5, 'five')) AS t(k, name)")
    # versions of a price per key (key 2 has none before 50 s), for temporal joins
    con.execute(
        "CREATE TABLE prices (k BIGINT, valid_from TIMESTAMP, price BIGINT, PRIMARY KEY (k, valid_from)); "
        "INSERT INTO prices SELECT k, TIMESTAMP '2025-01-01' + to_seconds(s), k * 100 + s FROM "
        "(VALUES (0, -1), (0, 20), (0, 70), (1, -1), (1, 45), (2, 50), (2, 51)) AS t(k, s)"
    )
    con.connection.register("ev_arrow", table)
    con.execute("CREATE TABLE ev_table AS SELECT * FROM ev_arrow")
    return con


def push_cut(con: sqlml.Session, table, cut: int | list[int]) -> None:
    """Push the events as micro-batches: all of size `cut`, or of the sizes listed (then the rest)."""
    sizes = [cut] * (table.num_rows // cut + 1) if isinstance(cut, int) else cut + [table.num_rows]
    start = 0
    for size in sizes:  # each push is one micro-batch
        if start >= table.num_rows:
            break
        con.push("ev", table.slice(start, size))
        start += size


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gaps=st.lists(st.integers(0, 2500), min_size=1, max_size=60),
    shape=st.sampled_from(sorted(ACCEPTED)),
    cut=st.one_of(st.sampled_from([1, 7, 100_000]), st.lists(st.integers(1, 20), min_size=1, max_size=30)),
)
def test_every_accepted_shape_equals_batch_for_any_micro_batches(tmp_path_factory, gaps, shape, cut):
    offsets = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    table = events_table(offsets, [g % 3 for g in gaps])
    con = session(tmp_path_factory, table)
    push_cut(con, table, cut)
    query = ACCEPTED[shape]
    streamed = [
        row
        for batch in con.stream(query.format(ev="ev", tie="", **STREAM_ASOF))
        for row in zip(*[c.to_pylist() for c in batch.columns])
    ]
    expected = con.sql(query.format(ev="ev_table", tie=", rowid", **BATCH_ASOF)).fetchall()
    assert Counter(streamed) == Counter(expected)


def fold(changes: list[tuple]) -> Counter:
    """Apply a changelog (op first in each row) to an empty result; every retraction must
    remove a row the result has."""
    result: Counter = Counter()
    for op, *row in changes:
        assert op in ("+I", "-U", "+U", "-D"), op
        if op in ("+I", "+U"):
            result[tuple(row)] += 1
        else:
            assert result[tuple(row)] > 0, (op, row)
            result[tuple(row)] -= 1
    return +result


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gaps=st.lists(st.integers(0, 2500), min_size=1, max_size=50),
    shape=st.sampled_from(sorted(UPDATING)),
    cut=st.one_of(st.sampled_from([1, 7, 100_000]), st.lists(st.integers(1, 20), min_size=1, max_size=30)),
)
def test_every_updating_shape_folds_to_batch_for_any_micro_batches(tmp_path_factory, gaps, shape, cut):
    """An updating query's changelog, applied in order, is the batch query's result; events
    out of time order count the same (no watermark, nothing late)."""
    offsets = [sum(gaps[: i + 1]) * (-1) ** i for i in range(len(gaps))]
    table = events_table(offsets, [g % 3 for g in gaps])
    con = session(tmp_path_factory, table)
    push_cut(con, table, cut)
    query = UPDATING[shape]
    changes = [
        row for batch in con.stream(query.format(ev="ev")) for row in zip(*[c.to_pylist() for c in batch.columns])
    ]
    assert fold(changes) == Counter(con.sql(query.format(ev="ev_table")).fetchall())


@pytest.mark.parametrize("shape", sorted(REFUSED))
def test_shapes_that_depend_on_micro_batches_are_refused(con, shape):
    sql, message = REFUSED[shape]
    create(con)
    con.execute("CREATE TABLE names AS SELECT 0 AS k, 'zero' AS name")
    with pytest.raises(sqlml.BindError) as info:
        con.execute(sql)
    assert message in info.value.message, info.value.message
    assert info.value.hint and info.value.line == 1 and info.value.col > 1
