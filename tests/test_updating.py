"""Updating queries over streams (sqlml/stream/changelog.py): GROUP BY without a window, Top-N,
keep-last and joins whose rows change. A SELECT prints the changelog (`op` first); an INSERT
into a table with a PRIMARY KEY applies it as upserts and deletes, ending equal to the batch
query; the sinks that cannot take changes refuse the query when it binds."""

from __future__ import annotations

import csv
import random
from collections import Counter

import pyarrow as pa
import pytest

import sqlml
from tests.test_exactly_once import kill_after, start
from tests.test_stream import T0, create, events_table, write_events
from tests.test_stream_shapes import fold


def push_in_pieces(con: sqlml.Session, stream: str, table: pa.Table, rng: random.Random) -> None:
    start = 0
    while start < table.num_rows:
        size = rng.randint(1, 15)
        con.push(stream, table.slice(start, size))
        start += size


def shuffled_events(rng: random.Random, n: int, keys: int) -> pa.Table:
    offsets = [rng.randint(0, 600_000) for _ in range(n)]  # ten minutes, in no time order
    return events_table(offsets, [rng.randrange(keys) for _ in range(n)])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_upsert_sink_ends_equal_to_the_batch_query(con, seed):
    """Counts per key with a HAVING that drops keys again (deletes), and a row of another
    key already in the table, which the query never touches."""
    rng = random.Random(seed)
    table = shuffled_events(rng, 120, 9)
    create(con)
    con.execute("CREATE TABLE per_key (k BIGINT PRIMARY KEY, n BIGINT, total BIGINT, last TIMESTAMP)")
    con.execute("INSERT INTO per_key VALUES (99, 1, 1, NULL)")
    con.connection.register("ev_arrow", table)
    con.execute("CREATE TABLE ev_table AS SELECT * FROM ev_arrow")
    push_in_pieces(con, "ev", table, rng)
    query = "SELECT k, count(*), sum(v), max(ts) FROM {ev} WHERE v % 4 <> 0 GROUP BY k HAVING count(*) <= 9"
    done = con.sql("INSERT INTO per_key " + query.format(ev="ev")).fetchall()
    assert done[0][5] > 0  # rows_written: the upserts and deletes
    expected = sorted(con.sql(query.format(ev="ev_table")).fetchall()) + [(99, 1, 1, None)]
    assert sorted(con.sql("SELECT * FROM per_key").fetchall()) == expected


def test_keep_last_upserts_the_latest_row_of_each_key(con):
    rng = random.Random(5)
    table = shuffled_events(rng, 80, 6)
    create(con)
    con.execute("CREATE TABLE latest (k BIGINT, v BIGINT, ts TIMESTAMP, PRIMARY KEY (k))")
    push_in_pieces(con, "ev", table, rng)
    con.sql(
        "INSERT INTO latest SELECT k, v, ts FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC, v) "
        "AS rn FROM ev) WHERE rn = 1"
    )
    con.connection.register("ev_arrow", table)
    expected = con.connection.sql(
        "SELECT k, arg_max(v, (ts, -v)), max(ts) FROM ev_arrow GROUP BY k ORDER BY k"
    ).fetchall()
    assert con.sql("SELECT * FROM latest ORDER BY k").fetchall() == expected


def test_the_changelog_pairs_updates_and_marks_deletes(con):
    create(con)
    con.push("ev", events_table([0, 1000], [1, 2]))
    con.push("ev", events_table([2000], [1]))
    con.push("ev", events_table([3000, 4000], [1, 2]))
    rows = [
        tuple(r.values())
        for b in con.stream("SELECT k, count(*) AS n FROM ev GROUP BY k HAVING count(*) < 3")
        for r in b.to_pylist()
    ]
    assert rows == [
        ("+I", 1, 1), ("+I", 2, 1),  # first micro-batch
        ("-U", 1, 1), ("+U", 1, 2),  # key 1 again
        ("-D", 1, 2), ("-U", 2, 1), ("+U", 2, 2),  # key 1 leaves the result (HAVING); key 2 grows
    ]  # fmt: skip


def test_a_query_giving_two_rows_for_one_primary_key_is_an_error(con):
    create(con)
    con.execute("CREATE TABLE by_count (n BIGINT PRIMARY KEY, k BIGINT)")
    con.push("ev", events_table([0, 1000], [1, 2]))
    with pytest.raises(sqlml.SqlmlError) as err:
        con.sql("INSERT INTO by_count SELECT count(*), k FROM ev GROUP BY k")
    assert "gives 2 rows for one PRIMARY KEY of 'by_count' (n = 1)" in err.value.message
    assert "GROUP BY" in (err.value.hint or "")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("INSERT INTO keyed (v, n) SELECT k, count(*) FROM ev GROUP BY k", "leaves out 'k'"),
        ("INSERT INTO keyed SELECT k FROM ev GROUP BY k", "fills 3 columns, but the query gives 1"),
    ],
)
def test_updating_queries_the_sink_cannot_apply_are_refused(con, sql, message):
    create(con)
    con.execute("CREATE TABLE keyed (k BIGINT PRIMARY KEY, n BIGINT, v BIGINT)")
    with pytest.raises(sqlml.SqlmlError) as err:
        con.execute(sql)
    assert message in err.value.message and err.value.line == 1


@pytest.mark.parametrize("side", ["LEFT", "RIGHT", "FULL"])
def test_outer_joins_of_two_streams_fold_to_the_batch_join(con, side):
    """A row without a partner is output with NULLs and retracted when one comes."""
    rng = random.Random(len(side))
    for name in ("clicks", "buys"):
        con.sql(f"CREATE STREAM {name} (k BIGINT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) "
                "WITH (connector = 'python')")  # fmt: skip
    clicks, buys = shuffled_events(rng, 30, 12), shuffled_events(rng, 20, 12)
    con.connection.register("clicks_arrow", clicks)
    con.connection.register("buys_arrow", buys)
    for first in range(0, 30, 6):  # interleaved micro-batches of both streams
        con.push("clicks", clicks.slice(first, 6))
        con.push("buys", buys.slice(first * 2 // 3, 4))
    query = "SELECT c.v, b.v AS bought FROM {c} AS c {side} JOIN {b} AS b ON c.k = b.k"
    changes = [tuple(r.values()) for t in con.stream(query.format(c="clicks", b="buys", side=side))
               for r in t.to_pylist()]  # fmt: skip
    assert any(op == "-D" for op, *_ in changes)  # a NULL-padded row was retracted
    expected = con.connection.sql(query.format(c="clicks_arrow", b="buys_arrow", side=side)).fetchall()
    assert fold(changes) == Counter(expected)


SCRIPT = """CREATE STREAM IF NOT EXISTS clicks (user_id BIGINT, item_id BIGINT, price DOUBLE, purchased BOOLEAN, ts TIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (connector = 'files', path = 'events/*.jsonl', format = 'jsonl', batch_size = 25);
CREATE TABLE IF NOT EXISTS per_item (item_id BIGINT PRIMARY KEY, clicks BIGINT, spend DOUBLE, buyers BIGINT);
INSERT INTO per_item SELECT item_id, count(*), sum(price), count(DISTINCT user_id) FILTER (WHERE purchased)
FROM clicks GROUP BY item_id;
"""


@pytest.mark.slow
def test_an_upsert_sink_killed_at_random_points_ends_equal_to_an_uninterrupted_run(tmp_path):
    import duckdb

    write_events(tmp_path / "events", files=8, per_file=300)
    (tmp_path / "job.sql").write_text(SCRIPT)

    def result(db: str) -> list[tuple]:
        with duckdb.connect(str(tmp_path / db), read_only=True) as c:
            return c.sql("SELECT item_id, clicks, round(spend, 6), buyers FROM per_item ORDER BY item_id").fetchall()

    clean = start(tmp_path, "clean.duckdb")
    _, err = clean.communicate(timeout=300)
    assert clean.returncode == 0, err
    expected = result("clean.duckdb")
    assert sum(r[1] for r in expected) == 2400
    rng, kills = random.Random(3), 0
    while kills < 10:
        if not kill_after(start(tmp_path, "killed.duckdb"), "batch done", rng.randint(1, 6)):
            break
        kills += 1
    assert start(tmp_path, "killed.duckdb").wait(timeout=300) == 0
    assert kills == 10, f"the job finished after {kills} kills; make it longer"
    assert result("killed.duckdb") == expected


def test_an_updating_select_prints_its_changelog_through_the_cli(tmp_path):
    from tests.conftest import run_cli

    events = tmp_path / "ev.jsonl"
    events.write_text("".join(f'{{"k": {i % 2}, "ts": "{T0.isoformat()}"}}\n' for i in range(5)))
    (tmp_path / "q.sql").write_text(
        f"CREATE STREAM ev (k BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (path = '{events}', batch_size = 3);\n"
        "SELECT k, count(*) AS n FROM ev GROUP BY k;\n"
    )
    proc = run_cli("run", "q.sql", "--format", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [r for r in csv.reader(proc.stdout.splitlines()) if r]
    assert rows == [["op", "k", "n"], ["+I", "0", "2"], ["+I", "1", "1"],
                    ["op", "k", "n"], ["-U", "0", "2"], ["+U", "0", "3"], ["-U", "1", "1"], ["+U", "1", "2"]]  # fmt: skip


def test_an_insert_only_self_join_appends_to_a_table_without_a_key(con):
    """A join in which a stream's events meet each other, with no aggregate: rows once out stand,
    so any sink takes them; each pair is found once, from the later of its two events."""
    rng = random.Random(8)
    table = shuffled_events(rng, 60, 5)
    create(con)
    con.execute("CREATE TABLE pairs (a BIGINT, b BIGINT)")
    push_in_pieces(con, "ev", table, rng)
    query = "SELECT a.v, b.v FROM {ev} AS a JOIN {ev} AS b ON a.k = b.k AND a.ts < b.ts"
    con.sql("INSERT INTO pairs " + query.format(ev="ev"))
    con.connection.register("ev_arrow", table)
    expected = con.connection.sql(query.format(ev="ev_arrow")).fetchall()
    assert Counter(con.sql("SELECT * FROM pairs").fetchall()) == Counter(expected) and expected
