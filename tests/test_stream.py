"""Streams: streaming results equal batch results for in-order input, whatever the
micro-batch sizes; out-of-order input follows the lateness rule (checked against a plain
reference); malformed events are kept; unsupported shapes are refused."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlml

T0 = dt.datetime(2025, 1, 1)

QUERIES = {
    "agg": "SELECT window_start, window_end, k, count(*) AS n, sum(v) AS total FROM {src} GROUP BY window_start, window_end, k",
    "topn": (
        "SELECT * FROM (SELECT window_start, window_end, k, count(*) AS n, "
        "row_number() OVER (PARTITION BY window_start, window_end ORDER BY count(*) DESC, k) AS rn "
        "FROM {src} GROUP BY window_start, window_end, k) WHERE rn <= 2"
    ),
    "rows": "SELECT k, v, ts, window_start, window_end FROM {src} WHERE v % 2 = 0",
}
WINDOWS = {
    "TUMBLE": "INTERVAL '{a}' SECOND",
    "HOP": "INTERVAL '{a}' SECOND, INTERVAL '{b}' SECOND",
    "CUMULATE": "INTERVAL '{a}' SECOND, INTERVAL '{b}' SECOND",
    "SESSION": "INTERVAL '{a}' SECOND",
}


def events_table(offsets_ms: list[int], keys: list[int]) -> pa.Table:
    return pa.table(
        {
            "k": pa.array(keys, pa.int64()),
            "v": pa.array(range(len(keys)), pa.int64()),
            "ts": pa.array([T0 + dt.timedelta(milliseconds=ms) for ms in offsets_ms], pa.timestamp("us")),
        }
    )


def create(con: sqlml.Session, delay_s: int = 0) -> None:
    con.execute(
        "CREATE STREAM ev (k BIGINT, v BIGINT, ts TIMESTAMP, "
        f"WATERMARK FOR ts AS ts - INTERVAL '{delay_s}' SECOND) WITH (connector = 'python')"
    )


def run_stream(con: sqlml.Session, table: pa.Table, batch: int, sql: str) -> list[tuple]:
    for start in range(0, table.num_rows, batch):
        con.push("ev", table.slice(start, batch))
    rows: list[tuple] = []
    for record_batch in con.stream(sql):
        rows += list(zip(*[c.to_pylist() for c in record_batch.columns]))
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gaps=st.lists(st.integers(0, 4000), min_size=1, max_size=80),
    kind=st.sampled_from(sorted(WINDOWS)),
    shape=st.sampled_from(sorted(QUERIES)),
    size=st.integers(1, 4),
    factor=st.integers(1, 3),
    batch=st.sampled_from([1, 7, 10_000]),
)
def test_streaming_equals_batch_for_in_order_input(tmp_path_factory, gaps, kind, shape, size, factor, batch):
    offsets = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    table = events_table(offsets, [g % 3 for g in gaps])
    con = sqlml.connect(catalog=tmp_path_factory.mktemp("c"))
    create(con)
    con.connection.register("ev_arrow", table)
    con.execute("CREATE TABLE ev_table AS SELECT * FROM ev_arrow")
    partition = " PARTITION BY k" if kind == "SESSION" else ""
    args = WINDOWS[kind].format(a=size, b=size * factor)
    query = QUERIES[shape]
    streamed = run_stream(
        con, table, batch, query.format(src=f"TABLE({kind}(TABLE ev{partition}, DESCRIPTOR(ts), {args}))")
    )
    batch_rows = con.sql(
        query.format(src=f"TABLE({kind}(TABLE ev_table{partition}, DESCRIPTOR(ts), {args}))")
    ).fetchall()
    assert Counter(streamed) == Counter(batch_rows)
    assert con.sql("SELECT count(*) FROM ev_late").fetchall() == [(0,)]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gaps=st.lists(st.integers(0, 3000), min_size=1, max_size=80),
    jitter=st.lists(st.integers(0, 4999), min_size=80, max_size=80),
    size=st.integers(1, 4),
    batch=st.sampled_from([1, 3, 10_000]),
)
def test_sessions_equal_batch_when_events_arrive_out_of_order_within_the_delay(
    tmp_path_factory, gaps, jitter, size, batch
):
    """Out of order by up to 5 s, with a 5 s watermark delay: nothing is late, and an event
    arriving between two open sessions merges them, as the batch query has them."""
    offsets = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    arrival = sorted(range(len(offsets)), key=lambda i: offsets[i] + jitter[i])
    table = events_table([offsets[i] for i in arrival], [gaps[i] % 2 for i in arrival])
    con = sqlml.connect(catalog=tmp_path_factory.mktemp("c"))
    create(con, delay_s=5)
    con.connection.register("ev_arrow", table)
    con.execute("CREATE TABLE ev_table AS SELECT * FROM ev_arrow")
    query = (
        "SELECT k, window_start, window_end, count(*) AS n, min(v) AS first FROM TABLE(SESSION(TABLE {src} "
        f"PARTITION BY k, DESCRIPTOR(ts), INTERVAL '{size}' SECOND)) GROUP BY k, window_start, window_end"
    )
    streamed = run_stream(con, table, batch, query.format(src="ev"))
    assert Counter(streamed) == Counter(con.sql(query.format(src="ev_table")).fetchall())
    assert con.sql("SELECT count(*) FROM ev_late").fetchall() == [(0,)]


def reference_lateness(offsets_ms: list[int], delay_ms: int, size_ms: int, slide_ms: int) -> tuple[Counter, Counter]:
    """Per-event Flink semantics for HOP (TUMBLE when slide = size): counts per window, late per window."""
    counts: Counter = Counter()
    late: Counter = Counter()
    highest = None
    for e in offsets_ms:
        watermark = None if highest is None else highest - delay_ms
        m = e // slide_ms
        while m * slide_ms + size_ms > e:
            window = (m * slide_ms, m * slide_ms + size_ms)
            if watermark is not None and window[1] <= watermark:
                late[window] += 1
            else:
                counts[window] += 1
            m -= 1
        highest = e if highest is None else max(highest, e)
    return counts, late


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=st.lists(st.integers(0, 3000), min_size=1, max_size=80),
    jitter=st.lists(st.integers(-6000, 6000), min_size=80, max_size=80),
    delay=st.integers(0, 3),
    hop=st.booleans(),
    batch=st.sampled_from([1, 7, 10_000]),
)
def test_out_of_order_events_follow_the_lateness_rule(tmp_path_factory, base, jitter, delay, hop, batch):
    times = [sum(base[: i + 1]) for i in range(len(base))]
    offsets = [max(0, t + j) + 100_000 for t, j in zip(times, jitter)]
    size, slide = (4000, 2000) if hop else (4000, 4000)
    counts, late = reference_lateness(offsets, delay * 1000, size, slide)
    con = sqlml.connect(catalog=tmp_path_factory.mktemp("c"))
    create(con, delay)
    window = (
        "HOP(TABLE ev, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '4' SECOND)"
        if hop
        else "TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '4' SECOND)"
    )
    sql = f"SELECT epoch_ms(window_start) - epoch_ms(TIMESTAMP '2025-01-01'), epoch_ms(window_end) - epoch_ms(TIMESTAMP '2025-01-01'), count(*) FROM TABLE({window}) GROUP BY window_start, window_end"
    rows = run_stream(con, events_table(offsets, [0] * len(offsets)), batch, sql)
    assert Counter({(a, b): n for a, b, n in rows}) == counts
    got_late = con.sql(
        "SELECT epoch_ms(window_start) - epoch_ms(TIMESTAMP '2025-01-01'), epoch_ms(window_end) - epoch_ms(TIMESTAMP '2025-01-01'), count(*) FROM ev_late GROUP BY ALL"
    ).fetchall()
    assert Counter({(a, b): n for a, b, n in got_late}) == late


def write_events(folder, files: int = 3, per_file: int = 200, bad_line_in: int = 1) -> None:
    folder.mkdir(exist_ok=True)
    for f in range(files):
        with open(folder / f"part-{f:03d}.jsonl", "w") as out:
            for i in range(per_file):
                n = f * per_file + i
                ts = T0 + dt.timedelta(seconds=n * 1.5)
                out.write(
                    json.dumps(
                        {"user_id": n % 17, "item_id": n % 5, "price": n % 10, "purchased": n % 7 == 0, "ts": str(ts)}
                    )
                    + "\n"
                )
            if f == bad_line_in:
                out.write('{"user_id": "abc", "ts": "2025-01-01 00:00:00"}\nnot json at all\n')


CLICKS = """CREATE STREAM clicks (user_id BIGINT, item_id BIGINT, price DOUBLE, purchased BOOLEAN, ts TIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (connector = 'files', path = '{path}', format = 'jsonl', batch_size = {batch});"""
PER_MINUTE = """INSERT INTO per_minute SELECT window_start, window_end, item_id, count(*) AS clicks, avg(purchased::INT) AS cvr
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, item_id;"""


def test_file_stream_into_a_table_keeps_malformed_events(tmp_path):
    write_events(tmp_path / "events")
    con = sqlml.connect(catalog=tmp_path / "cat")
    con.execute(CLICKS.format(path=tmp_path / "events" / "*.jsonl", batch=64))
    con.execute(
        "CREATE TABLE per_minute (window_start TIMESTAMP, window_end TIMESTAMP, item_id BIGINT, clicks BIGINT, cvr DOUBLE)"
    )
    summary = con.sql(PER_MINUTE).arrow().to_pylist()[0]
    assert summary["events"] == 600 and summary["malformed"] == 2 and summary["late"] == 0
    assert con.sql("SELECT sum(clicks) FROM per_minute").fetchall() == [(600,)]
    errors = con.sql("SELECT line, error FROM clicks_errors ORDER BY line").fetchall()
    assert errors == [(201, "user_id: cannot read abc as BIGINT"), (202, "not a JSON object; ts: missing event time")]
    batch = con.sql(
        "SELECT time_bucket(INTERVAL 1 MINUTE, ts), item_id, count(*) FROM read_json('"
        + str(tmp_path / "events" / "*.jsonl")
        + "', format = 'newline_delimited', ignore_errors = true, "
        "columns = {user_id: 'BIGINT', item_id: 'BIGINT', price: 'DOUBLE', purchased: 'BOOLEAN', ts: 'TIMESTAMP'}) "
        "WHERE ts IS NOT NULL AND user_id IS NOT NULL GROUP BY ALL"
    ).fetchall()
    assert sorted(batch) == sorted(con.sql("SELECT window_start, item_id, clicks FROM per_minute").fetchall())


def test_stateless_filter_and_join_with_a_table(con):
    create(con)
    con.execute("CREATE TABLE names AS SELECT * FROM (VALUES (0, 'zero'), (1, 'one')) AS t(k, name)")
    table = events_table([0, 1000, 2000, 3000], [0, 1, 2, 1])
    rows = run_stream(con, table, 2, "SELECT e.v, n.name FROM ev AS e JOIN names AS n ON e.k = n.k WHERE e.v > 0")
    assert sorted(rows) == [(1, "one"), (3, "one")]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("COPY (SELECT count(*) FROM ev) TO 'out/'", "COPY writes files that stay as written"),
        ("SELECT k FROM ev ORDER BY k", "cannot use ORDER BY"),
        (
            "SELECT k, count(*) FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k",
            "must GROUP BY window_start, window_end",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' SECOND)) LIMIT 3",
            "LIMIT and OFFSET have no meaning",
        ),
        ("INSERT INTO plain SELECT k, count(*) FROM ev GROUP BY k", "Table 'plain' has no PRIMARY KEY"),
        ("CREATE TABLE copy_of AS SELECT * FROM ev", "'ev' is a stream, which cannot be used here"),
        (
            "CREATE TABLE w AS SELECT * FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' SECOND))",
            "'ev' is a stream",
        ),
        (
            "CREATE STREAM s2 (ts TIMESTAMP, WATERMARK FOR tss AS tss - INTERVAL '1' SECOND) WITH (connector = 'python')",
            "WATERMARK FOR names 'tss'",
        ),
        (
            "CREATE STREAM s2 (ts TIMESTAMP, WATERMARK FOR ts AS ts + INTERVAL '1' SECOND) WITH (connector = 'python')",
            "time column minus a fixed INTERVAL",
        ),
        (
            "CREATE STREAM s2 (ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' MONTH) WITH (connector = 'python')",
            "fixed-length INTERVAL",
        ),
        ("CREATE STREAM s2 (n BIGINT, WATERMARK FOR n AS n) WITH (connector = 'python')", "must be a TIMESTAMP"),
        (
            "CREATE STREAM s2 (ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'kinesis')",
            "Unknown connector 'kinesis'",
        ),
        (
            "CREATE STREAM s2 (ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'files', path = '*.jsonl', format = 'jsnl')",
            "Did you mean 'jsonl'",
        ),
        (
            "CREATE STREAM s2 (ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'files', path = 'nowhere/*.jsonl')",
            "matches no files",
        ),
        (
            "CREATE STREAM s2 (ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (conector = 'files')",
            "Unknown stream option 'conector'",
        ),
        ("CREATE STREAM s2 (ts TIMESTAMP)", "A stream needs a WATERMARK clause"),
        (
            "CREATE STREAM ev (ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'python')",
            "Stream 'ev' already exists",
        ),
        ("DROP STREAM evv", "Unknown stream 'evv'"),
    ],
)
def test_stream_errors(con, sql, message):
    create(con)
    con.execute("CREATE TABLE plain (k BIGINT, n BIGINT)")
    with pytest.raises(sqlml.SqlmlError) as info:
        con.execute(sql)
    assert message in str(info.value)
    assert info.value.line == 1 and info.value.col >= 1


def test_streams_persist_with_the_database(tmp_path):
    db = str(tmp_path / "x.duckdb")
    with sqlml.connect(db, tmp_path / "cat") as con:
        create(con)
    with sqlml.connect(db, tmp_path / "cat") as con:
        assert con.engine.streams.names() == ["ev"]
        con.execute("DROP STREAM ev")
        assert con.engine.streams.names() == []
        assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'ev_%'").fetchall() == [(0,)]


def test_stdin_stream_through_the_cli(tmp_path):
    from tests.conftest import run_cli

    script = tmp_path / "s.sql"
    script.write_text(
        "CREATE STREAM ev (k BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'stdin', batch_size = 2);\n"
        "SELECT window_start, count(*) AS n FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '10' SECOND)) "
        "GROUP BY window_start, window_end;\n"
    )
    lines = [json.dumps({"k": i, "ts": str(T0 + dt.timedelta(seconds=3 * i))}) for i in range(10)] + ["oops"]
    proc = run_cli("run", str(script), "--format", "csv", stdin="\n".join(lines) + "\n", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if not line.startswith('"')]
    assert rows == ["2025-01-01 00:00:00.000000,4", "2025-01-01 00:00:10.000000,3", "2025-01-01 00:00:20.000000,3"]
    assert "ev: 10 events, 3 windows closed, 0 late (in ev_late), 1 malformed (in ev_errors)" in proc.stderr


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gaps_a=st.lists(st.integers(0, 3000), min_size=1, max_size=40),
    gaps_b=st.lists(st.integers(0, 3000), min_size=1, max_size=40),
    kind=st.sampled_from(["TUMBLE", "HOP", "CUMULATE"]),
    batch=st.sampled_from([1, 7, 10_000]),
)
def test_window_join_of_two_streams_equals_batch(tmp_path_factory, gaps_a, gaps_b, kind, batch):
    con = sqlml.connect(catalog=tmp_path_factory.mktemp("c"))
    tables = {}
    for name, gaps in (("a", gaps_a), ("b", gaps_b)):
        con.execute(
            f"CREATE STREAM {name} (k BIGINT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'python')"
        )
        offsets = [sum(gaps[: i + 1]) for i in range(len(gaps))]
        tables[name] = events_table(offsets, [g % 2 for g in gaps])
        con.connection.register(f"{name}_arrow", tables[name])
        con.execute(f"CREATE TABLE {name}_table AS SELECT * FROM {name}_arrow")
        for start in range(0, tables[name].num_rows, batch):
            con.push(name, tables[name].slice(start, batch))
    args = WINDOWS[kind].format(a=2, b=4)
    query = (
        "SELECT x.window_start, x.window_end, x.k, count(*) AS n, sum(x.v + y.v) AS s "
        "FROM TABLE({kind}(TABLE {a}, DESCRIPTOR(ts), {args})) AS x "
        "JOIN TABLE({kind}(TABLE {b}, DESCRIPTOR(ts), {args})) AS y "
        "ON x.window_start = y.window_start AND x.window_end = y.window_end AND x.k = y.k "
        "GROUP BY x.window_start, x.window_end, x.k"
    )
    streamed = []
    for record_batch in con.stream(query.format(kind=kind, a="a", b="b", args=args)):
        streamed += list(zip(*[c.to_pylist() for c in record_batch.columns]))
    expected = con.sql(query.format(kind=kind, a="a_table", b="b_table", args=args)).fetchall()
    assert Counter(streamed) == Counter(expected)


def test_stream_errors_through_the_cli(tmp_path):
    from tests.conftest import run_cli

    (tmp_path / "bad.sql").write_text(
        "CREATE STREAM ev (k BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts)\n  WITH (connector = 'files', path = 'none/*.jsonl');\n"
    )
    proc = run_cli("run", "bad.sql", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("bad.sql:2:37: error: The path 'none/*.jsonl' matches no files.")


def test_parquet_stream_reads_only_needed_columns_but_keeps_whole_late_and_bad_rows(tmp_path):
    con = sqlml.connect(catalog=tmp_path / "cat")
    path = tmp_path / "ev.parquet"
    # k is text in the file, declared BIGINT: 'x' cannot be read; event 4 arrives 30 s late
    con.execute(
        f"COPY (SELECT * FROM (VALUES ('1', 'a', TIMESTAMP '2025-01-01 00:00:01'), ('x', 'b', TIMESTAMP '2025-01-01 00:00:02'), "
        f"('3', 'c', TIMESTAMP '2025-01-01 00:00:40'), ('4', 'd', TIMESTAMP '2025-01-01 00:00:05'), "
        f"('5', 'e', TIMESTAMP '2025-01-01 00:00:50')) AS t(k, note, ts)) TO '{path}' (FORMAT parquet)"
    )
    con.execute(
        "CREATE STREAM ev (k BIGINT, note VARCHAR, ts TIMESTAMP, WATERMARK FOR ts AS ts) "
        f"WITH (connector = 'files', path = '{path}', format = 'parquet')"
    )
    counts = [
        n
        for batch in con.stream(
            "SELECT count(note) AS n FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end"
        )
        for n in batch.column(0).to_pylist()
    ]
    assert counts == [1, 1, 1]
    assert con.sql("SELECT k, note, window_end FROM ev_late").fetchall() == [
        (4, "d", dt.datetime(2025, 1, 1, 0, 0, 10))
    ]
    (raw, line, error) = con.sql("SELECT raw, line, error FROM ev_errors").fetchall()[0]
    assert line == 2 and "cannot read x as BIGINT" in error and "'note': b" in raw
