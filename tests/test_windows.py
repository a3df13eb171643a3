"""Window table functions on ordinary tables, against a plain Python reference of Flink's
window assignment (epoch-aligned windows, sessions merged when gaps are under the gap)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sqlml

EPOCH_2025 = 1_735_689_600_000_000  # 2025-01-01 in microseconds


def reference(kind: str, events: list[tuple[int, int]], sizes: tuple[int, ...]) -> Counter:
    """(key, window_start_us, window_end_us) -> rows, from (key, event_us) pairs."""
    out: Counter = Counter()
    if kind == "TUMBLE":
        (size,) = sizes
        for key, e in events:
            out[(key, e // size * size, e // size * size + size)] += 1
    elif kind == "HOP":
        slide, size = sizes
        for key, e in events:
            m = e // slide
            while m * slide + size > e:
                out[(key, m * slide, m * slide + size)] += 1
                m -= 1
    elif kind == "CUMULATE":
        step, max_size = sizes
        for key, e in events:
            base = e // max_size * max_size
            for j in range(1, max_size // step + 1):
                if base + j * step > e:
                    out[(key, base, base + j * step)] += 1
    else:
        (gap,) = sizes
        for key in {k for k, _ in events}:
            times = sorted(e for k, e in events if k == key)
            start = last = times[0]
            count = 1
            for e in times[1:]:
                if e - last < gap:
                    count += 1
                else:
                    out[(key, start, last + gap)] += count
                    start, count = e, 1
                last = e
            out[(key, start, last + gap)] += count
    return out


SIZES = {
    "TUMBLE": ("INTERVAL '{0}' MILLISECOND",),
    "HOP": ("INTERVAL '{0}' MILLISECOND", "INTERVAL '{1}' MILLISECOND"),
    "CUMULATE": ("INTERVAL '{0}' MILLISECOND", "INTERVAL '{1}' MILLISECOND"),
    "SESSION": ("INTERVAL '{0}' MILLISECOND",),
}


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(sorted(SIZES)),
    offsets=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 100_000)), min_size=1, max_size=60),
    unit=st.sampled_from([1, 7, 250, 1000]),
    factor=st.integers(1, 5),
)
def test_window_assignment_matches_reference(tmp_path_factory, kind, offsets, unit, factor):
    con = sqlml.connect(catalog=tmp_path_factory.mktemp("c"))
    events = [(k, EPOCH_2025 + ms * 1000) for k, ms in offsets]
    values = ", ".join(f"({k}, make_timestamp({e}::BIGINT))" for k, e in events)
    con.execute(f"CREATE TABLE ev AS SELECT * FROM (VALUES {values}) AS v(k, ts)")
    ms = (unit, unit * factor)
    args = ", ".join(s.format(*ms) for s in SIZES[kind])
    partition = " PARTITION BY k" if kind == "SESSION" else ""
    rows = con.sql(
        f"SELECT k, epoch_us(window_start), epoch_us(window_end), count(*), "
        f"bool_and(window_time = window_end - INTERVAL 1 MILLISECOND) "
        f"FROM TABLE({kind}(TABLE ev{partition}, DESCRIPTOR(ts), {args})) GROUP BY ALL"
    ).fetchall()
    assert all(r[4] for r in rows)
    key = (lambda r: (r[0], r[1], r[2])) if kind == "SESSION" else (lambda r: (0, r[1], r[2]))
    got: Counter = Counter()
    for r in rows:
        got[key(r)] += r[3]
    sizes = tuple(m * 1000 for m in ms[: len(SIZES[kind])])
    expected = reference(kind, events if kind == "SESSION" else [(0, e) for _, e in events], sizes)
    assert got == expected


def test_window_query_shapes_on_a_table(con):
    con.execute(
        "CREATE TABLE clicks AS SELECT TIMESTAMP '2025-01-01' + INTERVAL (i * 7) SECOND AS ts, i % 3 AS item_id, "
        "i % 5 = 0 AS purchased FROM range(100) AS t(i)"
    )
    top = con.sql(
        "SELECT * FROM (SELECT window_start, window_end, item_id, count(*) AS n, "
        "row_number() OVER (PARTITION BY window_start, window_end ORDER BY count(*) DESC, item_id) AS rn "
        "FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, item_id) WHERE rn <= 1 ORDER BY 1"
    ).fetchall()
    assert len(top) == 12
    joined = con.sql(
        "SELECT count(*) FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) AS a "
        "JOIN TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) AS b "
        "ON a.window_start = b.window_start AND a.item_id = b.item_id"
    ).fetchall()
    assert joined[0][0] > 100


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(item_id), INTERVAL '1' MINUTE))", "must be a TIMESTAMP"),
        (
            "SELECT * FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '3' SECOND, INTERVAL '10' SECOND))",
            "whole multiple",
        ),
        ("SELECT * FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MONTH))", "fixed-length INTERVAL"),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(tss), INTERVAL '1' MINUTE))",
            "Unknown time column 'tss'",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE clicks PARTITION BY item_id, DESCRIPTOR(ts), INTERVAL '1' MINUTE))",
            "takes no PARTITION BY",
        ),
        ("SELECT * FROM TABLE(TUMBLE(TABLE clicks, ts, INTERVAL '1' MINUTE))", "Expected DESCRIPTOR(time_column)"),
        ("SELECT * FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))", "HOP needs 2 size argument(s)"),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE nope, DESCRIPTOR(ts), INTERVAL '1' MINUTE))",
            "Table with name nope does not exist",
        ),
    ],
)
def test_window_errors(con, sql, message):
    con.execute("CREATE TABLE clicks AS SELECT TIMESTAMP '2025-01-01' AS ts, 1 AS item_id")
    with pytest.raises(sqlml.SqlmlError) as info:
        con.sql(sql)
    assert message in str(info.value)
    assert info.value.line == 1 and info.value.col > 1
