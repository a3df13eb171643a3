"""Stream definitions, kept in the DuckDB database (table `sqlml_streams`) so that with a
database file they persist with it, like tables.

A stream has typed columns, a WATERMARK (time column and delay) and connector options.
Beside it sqlml keeps two tables: `<stream>_late` (events that missed windows, with the
windows they missed) and `<stream>_errors` (malformed input, with its raw text and place).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from sqlml.errors import BindError, did_you_mean
from sqlml.features import quote

CONNECTORS = {"files": ("path", "format"), "python": (), "stdin": (), "kafka": ("topic", "bootstrap_servers")}
FORMATS = ("jsonl", "csv", "parquet", "audio", "image")
KAFKA_OPTIONS = ("topic", "bootstrap_servers", "group_id", "start", "idle_timeout", "broker_timeout")
OPTIONS = ("connector", "path", "format", "follow", "batch_size", "checkpoint", *KAFKA_OPTIONS)
# Flink's names for the Kafka connector's options, as its CREATE TABLE ... WITH spells them
FLINK_OPTIONS = {"properties.bootstrap.servers": "bootstrap_servers", "properties.group.id": "group_id",
                 "scan.startup.mode": "start", "scan.startup.timestamp-millis": "start", "value.format": "format"}  # fmt: skip
FLINK_STARTS = {"earliest-offset": "earliest", "latest-offset": "latest", "group-offsets": "group"}


@dataclass
class StreamDef:
    name: str
    columns: list[tuple[str, str]]
    time: str
    delay_us: int
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def connector(self) -> str:
        return str(self.options.get("connector", "files"))

    @property
    def late_table(self) -> str:
        return f"{self.name}_late"

    @property
    def errors_table(self) -> str:
        return f"{self.name}_errors"

    def column_sql(self) -> str:
        return ", ".join(f"{quote(n)} {t}" for n, t in self.columns)


def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the user has a transaction open (BEGIN without COMMIT): statements in auto-commit
    mode each get a new transaction id, statements in one transaction share it."""
    ask = "SELECT current_transaction_id()"
    return bool(con.execute(ask).fetchall() == con.execute(ask).fetchall())


@contextmanager
def atomic(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction around the block, or, inside the user's own transaction, that one
    (which then decides whether the block's changes stand)."""
    if in_transaction(con):
        yield
        return
    con.execute("BEGIN")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


class StreamRegistry:
    """The streams of one DuckDB database."""

    TABLE = "sqlml_streams"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def _ensure(self) -> None:
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (name VARCHAR PRIMARY KEY, definition VARCHAR)")

    def _exists(self) -> bool:
        """Whether the registry table exists (asked without an error, which would abort a
        transaction the user has open)."""
        found = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND database_name = current_database() "
            "AND schema_name = 'main'",
            [self.TABLE],
        ).fetchall()
        return bool(found[0][0])

    def names(self) -> list[str]:
        if not self._exists():
            return []
        return [r[0] for r in self.con.execute(f"SELECT name FROM main.{self.TABLE} ORDER BY name").fetchall()]

    def get(self, name: str) -> StreamDef | None:
        if not self._exists():
            return None
        rows = self.con.execute(f"SELECT definition FROM main.{self.TABLE} WHERE name = ?", [name.lower()]).fetchall()
        if not rows:
            return None
        data = json.loads(rows[0][0])
        data["columns"] = [tuple(c) for c in data["columns"]]
        return StreamDef(**data)

    def require(self, name: str) -> StreamDef:
        found = self.get(name)
        if found is None:
            raise BindError(f"Unknown stream '{name}'.", hint=did_you_mean(name.lower(), self.names()))
        return found

    def create(self, stream: StreamDef, replace: bool) -> None:
        """Store the definition and create its late and errors tables, in one transaction."""
        self._ensure()
        with atomic(self.con):
            if replace:
                self.con.execute(f"DELETE FROM {self.TABLE} WHERE name = ?", [stream.name])
            self.con.execute(f"INSERT INTO {self.TABLE} VALUES (?, ?)", [stream.name, json.dumps(asdict(stream))])
            late = f"CREATE {'OR REPLACE ' if replace else ''}TABLE {quote(stream.late_table)}"
            # the window an event missed; named late_* where the stream has columns of those names
            # (a stream of window results, say)
            taken = {n.lower() for n, _ in stream.columns}
            extra = ", ".join(
                f"{'late_' if name in taken else ''}{name} TIMESTAMP"
                for name in ("window_start", "window_end", "watermark")
            )
            self.con.execute(f"{late} ({stream.column_sql()}, {extra})")
            errors = f"CREATE {'OR REPLACE ' if replace else ''}TABLE {quote(stream.errors_table)}"
            self.con.execute(f"{errors} (raw VARCHAR, file VARCHAR, line BIGINT, error VARCHAR)")

    def drop(self, name: str) -> None:
        stream = self.require(name)
        with atomic(self.con):
            self.con.execute(f"DELETE FROM {self.TABLE} WHERE name = ?", [stream.name])
            self.con.execute(f"DROP TABLE IF EXISTS {quote(stream.late_table)}")
            self.con.execute(f"DROP TABLE IF EXISTS {quote(stream.errors_table)}")
