"""OVER aggregations and deduplication over a stream (Flink's semantics): one row per event (or
per key), output once the watermark is past the event's time; events before the watermark at
their arrival are late. The property test in test_stream_shapes.py checks them against the
batch query at any micro-batch size; these check lateness, ties and state."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

import sqlml

T0 = dt.datetime(2024, 5, 1)
RANGE = "OVER (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW)"


def pushed(seconds: list[int], keys: list[int] | None = None, delay: int = 0) -> sqlml.Session:
    con = sqlml.connect()
    con.sql(f"CREATE STREAM ev (k BIGINT, v DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '{delay}' SECOND) "
            "WITH (connector = 'python')")  # fmt: skip
    con.push("ev", pa.table({"k": keys or [0] * len(seconds), "v": [float(s) for s in seconds],
                             "ts": [T0 + dt.timedelta(seconds=s) for s in seconds]}))  # fmt: skip
    return con


def rows(con: sqlml.Session, sql: str) -> list[tuple]:
    return sorted(tuple(r.values()) for b in con.stream(sql) for r in b.to_pylist())


def test_an_event_before_the_watermark_is_late_and_equal_times_are_not():
    con = pushed([10, 20, 20, 15, 30, 26], delay=3)  # watermark at 15's arrival: 20 - 3 = 17; at 26's: 27
    got = rows(con, f"SELECT v, count(*) {RANGE} AS n, sum(v) {RANGE} AS total FROM ev")
    # 15 and 26 are late (before 17 and 27); the second 20 is not (the watermark is 17, Flink's 16.999)
    assert got == [(10.0, 1, 10.0), (20.0, 3, 50.0), (20.0, 3, 50.0), (30.0, 3, 70.0)]
    late = con.sql("SELECT v, window_start, watermark FROM ev_late ORDER BY v").fetchall()
    assert late == [(15.0, None, T0 + dt.timedelta(seconds=17)), (26.0, None, T0 + dt.timedelta(seconds=27))]


def test_rows_frames_count_per_partition_and_order_ties_by_arrival():
    con = pushed([1, 2, 2, 2, 3, 9], keys=[0, 1, 0, 0, 1, 0])
    frame = "OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)"
    got = rows(con, f"SELECT k, ts, list(v) {frame} AS last_two FROM ev")
    seconds = [(k, (t - T0).seconds, [int(x) for x in last]) for k, t, last in got]
    assert seconds == [(0, 1, [1]), (0, 2, [1, 2]), (0, 2, [2, 2]), (0, 9, [2, 9]), (1, 2, [2]), (1, 3, [2, 3])]


def test_state_keeps_only_what_a_later_frame_can_reach(tmp_path):
    """With a database file, the state table is visible after a run stopped mid-stream: an
    hour of events at one per second, a 10-second frame, leaves about 10 seconds of them."""
    con = sqlml.connect(tmp_path / "db.duckdb", catalog=tmp_path / "cat")
    con.sql("CREATE STREAM ev (k BIGINT, v DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'python')")
    con.sql("CREATE TABLE out (v DOUBLE, n BIGINT)")
    seconds = list(range(3600))
    con.push("ev", pa.table({"k": [0] * 3600, "v": [float(s) for s in seconds],
                             "ts": [T0 + dt.timedelta(seconds=s) for s in seconds]}))  # fmt: skip
    runner_state = []
    from sqlml.stream import runner as runner_module

    fire = runner_module.Runner._fire_over

    def spy(self, inp, watermark):
        out = fire(self, inp, watermark)
        runner_state.append(self.con.execute(f"SELECT count(*) FROM {inp.state}").fetchall()[0][0])
        return out

    runner_module.Runner._fire_over = spy
    try:
        con.sql(f"INSERT INTO out SELECT v, count(*) {RANGE} FROM ev")
    finally:
        runner_module.Runner._fire_over = fire
    assert runner_state[0] == 11  # after the batch: 3589..3599 (the frame of a row at 3599 + what waits)
    assert runner_state[-1] == 0  # the source ended: every row out, nothing kept
    db = duckdb.connect()
    expected = db.sql(
        "SELECT s::DOUBLE, count(*) OVER (ORDER BY s RANGE BETWEEN 10 PRECEDING AND CURRENT ROW) FROM range(3600) t(s)"
    ).fetchall()
    assert sorted(con.sql("SELECT * FROM out").fetchall()) == sorted(expected)


def test_deduplication_keeps_each_keys_first_event_and_late_ones_go_to_late():
    con = pushed([10, 20, 5, 15, 30], keys=[1, 1, 2, 1, 2])  # 5 and 15 arrive after 20: late
    got = rows(
        con, "SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM ev) WHERE rn = 1"
    )
    assert got == [(1, 10.0), (2, 30.0)]
    assert con.sql("SELECT k, v FROM ev_late ORDER BY v").fetchall() == [(2, 5.0), (1, 15.0)]
