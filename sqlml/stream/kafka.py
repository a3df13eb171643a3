"""Kafka: a topic as a stream source, and a topic as the sink of a continuous INSERT.

The source assigns itself every partition of the topic (no consumer-group rebalancing) and
resumes from the offsets in sqlml's checkpoint, which commits in the same DuckDB transaction
as the sink's output; the consumer group's offsets are committed afterwards, for monitoring
only. Messages are JSON objects parsed in DuckDB, as for files: a message that is not one
becomes an error row naming its partition and offset.

Watermarks follow Flink's Kafka source: each partition has its own (the largest event time
read from it, less the stream's delay) and the stream's is the smallest over partitions, so
an event that is in order within its partition is never late however the broker interleaves
partitions. A partition with no message for `idle_timeout` is left out of the minimum until
it sends again, so one silent partition does not hold every window open.

The sink writes exactly once with Kafka transactions: a micro-batch's output is staged in a
DuckDB table (the outbox) in the micro-batch's own transaction, then produced in one Kafka
transaction that also commits the outbox sequence number as an offset of a consumer group of
its own; after a crash, the rows whose number Kafka has are dropped, the rest produced again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from sqlml.errors import BindError, ExecutionError, did_you_mean
from sqlml.features import quote
from sqlml.stream.source import DEFAULT_BATCH, Batch, _jsonl_sql, _split, csv_lines_sql
from sqlml.stream.streams import StreamDef

NO_WATERMARK = int(np.iinfo(np.int64).min)
BROKER_TIMEOUT_US = 30_000_000  # how long the broker may be unreachable before a statement fails
# the group's offsets (monitoring only) are committed this often, and at the end; seldom, as a
# commit in flight when the broker goes away holds the consumer's close for up to a minute
GROUP_COMMIT_SECONDS = 5.0
# a micro-batch is what has arrived since the last one (at most batch_size messages), so that
# a message waits for no timer; with nothing there the source waits this long for the next
WAIT_SECONDS = 0.2
STARTS = ("earliest", "latest", "group")


def _kafka() -> Any:
    try:
        import confluent_kafka
    except ImportError:
        raise ExecutionError(
            "Kafka streams need the confluent-kafka package.", hint="pip install 'sqlml[kafka]'"
        ) from None
    return confluent_kafka


def client_config(stream: StreamDef, **extra: Any) -> dict[str, Any]:
    """librdkafka settings: the bootstrap servers, the `properties.*` options, then `extra`."""
    # librdkafka logs every failed connection to stderr; sqlml reports what matters itself
    config: dict[str, Any] = {"bootstrap.servers": str(stream.options["bootstrap_servers"]), "log_level": 2}
    for key, value in stream.options.items():
        if key.startswith("properties."):
            config[key.removeprefix("properties.")] = value
    return {**config, **extra}


def client(stream: StreamDef, kind: str, **extra: Any) -> Any:
    """A librdkafka Consumer or Producer for the stream; a property librdkafka refuses is the
    user's error, named."""
    kafka = _kafka()
    try:
        return getattr(kafka, kind)(client_config(stream, **extra))
    except kafka.KafkaException as err:
        raise BindError(
            f"Kafka refuses the settings of stream '{stream.name}': {_reason(err)}.",
            hint="properties.* options are passed to librdkafka as they are: see its CONFIGURATION.md for the names.",
        ) from None


def _seconds(stream: StreamDef, option: str, default_us: int) -> float:
    return int(stream.options.get(option, default_us)) / 1e6


def _reason(err: Exception) -> str:
    """librdkafka's own words for a KafkaException."""
    first = err.args[0] if err.args else err
    return str(first.str() if hasattr(first, "str") else first).rstrip(".")


def _unreachable(stream: StreamDef, err: Exception, waited: float) -> ExecutionError:
    return ExecutionError(
        f"Cannot reach the Kafka broker at '{stream.options['bootstrap_servers']}' for stream '{stream.name}' "
        f"(waited {waited:g} s): {_reason(err)}.",
        hint="Check that the broker runs and bootstrap_servers names it; broker_timeout sets how long to wait.",
    )


def partitions(stream: StreamDef, client: Any) -> list[int]:
    """The topic's partitions, asked of the broker; a clear error when it cannot be reached
    or has no such topic."""
    kafka, topic = _kafka(), str(stream.options["topic"])
    timeout = _seconds(stream, "broker_timeout", BROKER_TIMEOUT_US)
    try:
        metadata = client.list_topics(timeout=timeout)
    except kafka.KafkaException as err:
        raise _unreachable(stream, err, timeout) from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise BindError(
            f"The Kafka broker at '{stream.options['bootstrap_servers']}' has no topic '{topic}' (stream '{stream.name}').",
            hint=did_you_mean(topic, [t for t in metadata.topics if not t.startswith("__")])
            or "Create the topic first (kafka-topics --create), or check the topic option.",
        )
    return sorted(found.partitions)


class KafkaSource:
    """Every partition of one topic, from the checkpointed offsets (or `start`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, stream: StreamDef, offset: dict[str, Any] | None = None) -> None:
        self.con = con
        self.stream = stream
        self.topic = str(stream.options["topic"])
        self.batch_size = int(stream.options.get("batch_size", DEFAULT_BATCH))
        self.idle_s = _seconds(stream, "idle_timeout", 0)
        self.follow = bool(stream.options.get("follow", True))
        # per partition: [next offset, largest event time read (µs, or None)]; the watermark
        self.offset: dict[str, Any] = dict(offset or {"partitions": {}, "watermark": None})
        self.broker_down: float | None = None  # when librdkafka last said every broker is down
        self.committed = 0.0  # when the group's offsets were last committed

    def _on_error(self, err: Any) -> None:
        kafka = _kafka()
        if err.code() in (kafka.KafkaError._ALL_BROKERS_DOWN, kafka.KafkaError._TRANSPORT):
            self.broker_down = self.broker_down or time.monotonic()

    def batches(self, stop: Any = None) -> Iterator[Batch]:
        consumer = client(
            self.stream, "Consumer",
            **{"group.id": str(self.stream.options.get("group_id", f"sqlml-{self.stream.name}")),
               "enable.auto.commit": False, "enable.partition.eof": True, "auto.offset.reset": "earliest",
               "isolation.level": "read_committed", "error_cb": self._on_error},
        )  # fmt: skip
        try:
            yield from self._read(consumer, stop)
        finally:
            if self.broker_down is None:  # closing waits for the broker (its group commits)
                consumer.close()

    def _assign(self, consumer: Any) -> list[int]:
        kafka = _kafka()
        ids = partitions(self.stream, consumer)
        saved = self.offset["partitions"]
        start = self.stream.options.get("start", "earliest")
        resume = {p: int(saved[str(p)][0]) for p in ids if saved.get(str(p), [None])[0] is not None}
        new = [p for p in ids if p not in resume]
        begin = dict.fromkeys(new, kafka.OFFSET_END if start == "latest" else kafka.OFFSET_BEGINNING)
        try:
            if start == "group" and new:
                committed = consumer.committed([kafka.TopicPartition(self.topic, p) for p in new], timeout=10)
                begin = {tp.partition: tp.offset if tp.offset >= 0 else kafka.OFFSET_BEGINNING for tp in committed}
            elif start not in STARTS and new:  # a timestamp, in milliseconds since the epoch
                asked = [kafka.TopicPartition(self.topic, p, int(start)) for p in new]
                begin = {tp.partition: tp.offset for tp in consumer.offsets_for_times(asked, timeout=10)}
        except kafka.KafkaException as err:
            raise _unreachable(self.stream, err, 10) from None
        consumer.assign([kafka.TopicPartition(self.topic, p, resume[p] if p in resume else begin[p]) for p in ids])
        for p in new:
            saved.setdefault(str(p), [None, None])
        return ids

    def _read(self, consumer: Any, stop: Any) -> Iterator[Batch]:
        kafka = _kafka()
        ids = self._assign(consumer)
        heard = np.full(len(ids), time.monotonic())  # when each partition last sent a message
        at_end: set[int] = set()
        timeout = _seconds(self.stream, "broker_timeout", BROKER_TIMEOUT_US)
        while True:
            # what has arrived, up to batch_size; when nothing has, wait for the next message
            messages = consumer.consume(self.batch_size, timeout=0)
            if not messages:
                messages = consumer.consume(1, timeout=WAIT_SECONDS)
                messages += consumer.consume(self.batch_size - 1, timeout=0) if messages else []
            values, parts, offsets, reached = [], [], [], False
            for m in messages:  # librdkafka hands over message objects: one pass over them
                err = m.error()
                if err is None:
                    values.append(m.value())
                    parts.append(m.partition())
                    offsets.append(m.offset())
                    at_end.discard(parts[-1])
                elif err.code() == kafka.KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                    reached = True
                elif err.fatal() or not err.retriable():
                    raise ExecutionError(f"Kafka failed reading stream '{self.stream.name}': {err.str()}.")
            if values or reached:
                self.broker_down = None
            elif self.broker_down is not None:
                self._check_broker(consumer, timeout)
            where = np.searchsorted(ids, np.array(parts, np.int64))  # partition ids are sorted
            now = time.monotonic()
            heard[where] = now
            idle = (now - heard >= self.idle_s) if self.idle_s else np.zeros(len(ids), bool)
            if idle.all():  # the last to fall silent were active until then, when the others were already idle
                idle = heard < heard.max()  # (the watermark moves as at that moment, whenever the poll comes)
            before = self.offset["watermark"]
            if values:
                batch = self._batch(values, where, np.array(offsets, np.int64), ids, idle)
            else:  # no message: only idleness can move the watermark
                self._watermarks(ids, where, np.array([], np.int64), idle)
                batch = Batch(
                    pa.table({}), pa.table({}), json.loads(json.dumps(self.offset)), watermark=self.offset["watermark"]
                )
            ended = not self.follow and at_end >= set(ids)
            if values or batch.watermark != before or ended:
                yield batch
                if ended or time.monotonic() - self.committed >= GROUP_COMMIT_SECONDS:
                    self._commit_group(consumer, ids, wait=ended)
            if ended or (stop is not None and stop.is_set()):
                return

    def _check_broker(self, consumer: Any, timeout: float) -> None:
        """Whether the broker is back; an error once it has been away for `timeout` seconds."""
        kafka = _kafka()
        try:
            consumer.list_topics(self.topic, timeout=1)
            self.broker_down = None
        except kafka.KafkaException as err:
            assert self.broker_down is not None
            waited = time.monotonic() - self.broker_down
            if waited >= timeout:
                raise _unreachable(self.stream, err, round(waited, 1)) from None

    def _commit_group(self, consumer: Any, ids: list[int], wait: bool) -> None:
        """Tell the consumer group (when the stream names one) where the committed checkpoint
        stands, for monitoring."""
        kafka = _kafka()
        self.committed = time.monotonic()
        if "group_id" not in self.stream.options or self.broker_down is not None:
            return
        done = [(p, self.offset["partitions"][str(p)][0]) for p in ids]
        offsets = [kafka.TopicPartition(self.topic, p, int(o)) for p, o in done if o is not None]
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=not wait)
            except kafka.KafkaException:
                pass  # monitoring only: the checkpoint holds the offsets that count

    def _batch(
        self, raw: list[bytes | None], where: np.ndarray, offsets: np.ndarray, ids: list[int], idle: np.ndarray
    ) -> Batch:
        """Parse messages (values, their partitions' places in `ids`, offsets) into events and
        error rows, advancing offsets and watermarks."""
        values = pa.array(raw, pa.binary())
        try:
            text = values.cast(pa.string())
        except pa.ArrowInvalid:
            text = pa.array([None if v is None else v.decode("utf-8", "replace") for v in values.to_pylist()])
        files = pa.array([f"{self.topic}/{p}" for p in ids])
        self.con.register(
            "__sqlml_kafka",
            pa.table({"__line": text, "__n": pa.array(np.arange(len(raw))), "__file": files.take(where)}),
        )
        try:
            messages = "SELECT * FROM __sqlml_kafka"
            if self.stream.options.get("format") == "csv":
                sql = csv_lines_sql(self.stream, messages, "__file")
            else:
                sql = _jsonl_sql(self.stream, messages, "__file").replace(
                    "CASE WHEN NOT __ok THEN",
                    "CASE WHEN __line IS NULL THEN 'no value (a tombstone)' WHEN NOT __ok THEN",
                    1,
                )
            good, bad = _split(self.con, sql, self.stream)
        finally:
            self.con.unregister("__sqlml_kafka")
        bad = bad.set_column(2, "line", pa.array(offsets[bad.column("line").to_numpy()]))
        arrival = good.column("__sqlml_line").to_numpy()
        good = good.drop_columns(["__sqlml_line"])
        times = good.column(self.stream.time).cast(pa.int64()).to_numpy()
        marks = self._watermarks(ids, where[arrival], times, idle)
        saved = self.offset["partitions"]
        for k, p in enumerate(ids):  # the next offset of each partition that sent messages
            mine = offsets[where == k]
            if len(mine):
                saved[str(p)][0] = int(mine.max()) + 1
        return Batch(
            good, bad, json.loads(json.dumps(self.offset)), watermarks=marks, watermark=self.offset["watermark"]
        )

    def _watermarks(self, ids: list[int], where: np.ndarray, times: np.ndarray, idle: np.ndarray) -> np.ndarray:
        """The watermark at each event's arrival (delay applied, never going back): the smallest
        over partitions not idle of the largest event time each has sent before the event."""
        saved, delay = self.offset["partitions"], self.stream.delay_us
        previous = self.offset["watermark"]
        start = NO_WATERMARK if previous is None else previous
        best = np.array([NO_WATERMARK if saved[str(p)][1] is None else saved[str(p)][1] for p in ids], np.int64)
        running = np.full((len(ids), len(times)), NO_WATERMARK, np.int64)
        for k in range(len(ids)):
            mine = np.where(where == k, times, NO_WATERMARK)
            running[k] = np.maximum.accumulate(np.concatenate(([best[k]], mine)))[:-1]
            if len(times):
                best[k] = max(best[k], running[k][-1], mine[-1])
            saved[str(ids[k])][1] = None if best[k] == NO_WATERMARK else int(best[k])
        sent = np.zeros(len(ids), bool)
        sent[np.unique(where)] = True
        active = ~idle | sent
        if active.any():
            low = running[active].min(axis=0) if len(times) else np.array([], np.int64)
            marks = np.where(low == NO_WATERMARK, NO_WATERMARK, low - delay)
            final = int(best[active].min())
            after = NO_WATERMARK if final == NO_WATERMARK else final - delay
        else:  # every partition idle: the watermark stays (as in Flink)
            marks, after = np.full(len(times), NO_WATERMARK, np.int64), NO_WATERMARK
        marks = np.maximum.accumulate(np.concatenate(([start], marks)))[1:]
        after = max(start, after)
        self.offset["watermark"] = None if after == NO_WATERMARK else int(after)
        return marks


class KafkaSink:
    """A continuous INSERT into a Kafka stream, exactly once (see the module's docstring)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, stream: StreamDef, query_id: str, durable: bool) -> None:
        self.con = con
        self.stream = stream
        self.topic = str(stream.options["topic"])
        # a run that does not resume (no database file) starts its own transactions and numbering
        self.key = f"sqlml-{query_id}" if durable else f"sqlml-{query_id}-{uuid.uuid4().hex[:8]}"
        self.outbox = f"sqlml_outbox_{query_id}" if durable else f"__sqlml_outbox_{query_id}"
        self.temp = "" if durable else "TEMP "
        self.producer: Any = None
        self.group: Any = None
        self.delivered: int | None = None

    def open(self) -> None:
        """Fence any earlier producer of this query (aborting its open transaction) and drop
        the staged rows Kafka already has."""
        kafka = _kafka()
        self.con.execute(f"CREATE {self.temp}TABLE IF NOT EXISTS {self.outbox} (seq BIGINT, value VARCHAR)")
        self.group = client(self.stream, "Consumer", **{"group.id": self.key, "enable.auto.commit": False})
        partitions(self.stream, self.group)
        timeout = _seconds(self.stream, "broker_timeout", BROKER_TIMEOUT_US)
        self.producer = client(self.stream, "Producer", **{"transactional.id": self.key})
        try:
            self.producer.init_transactions(timeout)
        except kafka.KafkaException as err:
            raise _unreachable(self.stream, err, timeout) from None
        self.deliver()
        self.con.execute(f"DELETE FROM {self.outbox} WHERE seq <= {self._delivered()}")

    def close(self) -> None:
        if self.group is not None:
            self.group.close()

    def _delivered(self) -> int:
        """The number of the last micro-batch Kafka has (asked once: later this run knows)."""
        if self.delivered is None:
            kafka = _kafka()
            try:
                found = self.group.committed([kafka.TopicPartition(self.topic, 0)], timeout=10)
            except kafka.KafkaException as err:
                raise _unreachable(self.stream, err, 10) from None
            self.delivered = max(int(found[0].offset), 0)
        return self.delivered

    def stage(self, query_sql: str, seq: int) -> int:
        """Stage the query's rows as JSON objects with the sink stream's column names (by
        position, as Flink's INSERT INTO); returns how many."""
        probe = self.con.sql(f"SELECT * FROM ({query_sql}) LIMIT 0")
        names = [n for n, _ in self.stream.columns]
        if len(probe.columns) != len(names):
            raise ExecutionError(
                f"The query gives {len(probe.columns)} columns; stream '{self.stream.name}' has {len(names)} "
                f"({', '.join(names)}).",
                hint="Select one expression per column of the stream, in its order.",
            )
        if self.stream.options.get("format") == "csv":  # fields in column order, quoted where needed
            value = " || ',' || ".join(
                f"coalesce(CASE WHEN regexp_matches(CAST(q.{quote(c)} AS VARCHAR), '[,\"\\n]') THEN '\"' || "
                f"replace(CAST(q.{quote(c)} AS VARCHAR), '\"', '\"\"') || '\"' ELSE CAST(q.{quote(c)} AS VARCHAR) END, '')"
                for c in probe.columns
            )
        else:
            fields = ", ".join(f"{quote(n)} := q.{quote(c)}" for n, c in zip(names, probe.columns))
            value = f"to_json(struct_pack({fields}))"
        # what Kafka has is forgotten here, in the micro-batch's transaction (no commit of its own)
        self.con.execute(f"DELETE FROM {self.outbox} WHERE seq <= {self._delivered()}")
        return int(
            self.con.execute(f"INSERT INTO {self.outbox} SELECT {seq}, {value} FROM ({query_sql}) AS q").fetchall()[0][
                0
            ]
        )

    def _produce(self, value: bytes) -> None:
        """One message; when librdkafka's queue is full, wait for it to drain a little."""
        while True:
            try:
                self.producer.produce(self.topic, value)
                self.producer.poll(0)
                return
            except BufferError:
                self.producer.poll(0.1)

    def deliver(self) -> None:
        """Produce the staged rows, one Kafka transaction per micro-batch."""
        kafka = _kafka()
        delivered = self._delivered()
        staged = self.con.sql(f"SELECT seq, value FROM {self.outbox} WHERE seq > {delivered} ORDER BY seq, rowid")
        table = staged.to_arrow_table()
        seqs, values = table.column("seq").to_numpy(), table.column("value").to_pylist()
        timeout = _seconds(self.stream, "broker_timeout", BROKER_TIMEOUT_US)
        try:
            for seq in np.unique(seqs):
                self.producer.begin_transaction()
                for value in values[np.searchsorted(seqs, seq) : np.searchsorted(seqs, seq, side="right")]:
                    self._produce(value.encode())
                marker = [kafka.TopicPartition(self.topic, 0, int(seq))]
                self.producer.send_offsets_to_transaction(marker, self.group.consumer_group_metadata(), timeout)
                self.producer.commit_transaction(timeout)
                self.delivered = int(seq)
        except kafka.KafkaException as err:
            raise ExecutionError(f"Kafka failed writing to stream '{self.stream.name}': {_reason(err)}.") from None
