"""Stream definitions, kept in the DuckDB database (table `sqlml_streams`) so that with a
database file they persist with it, like tables.

A stream has typed columns, a WATERMARK (time column and delay) and connector options.
Beside it sqlml keeps two tables: `<stream>_late` (events that missed windows, with the
windows they missed) and `<stream>_errors` (malformed input, with its raw text and place).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from sqlml.errors import BindError, did_you_mean
from sqlml.features import quote

CONNECTORS = {"files": ("path", "format"), "python": (), "stdin": ()}
FORMATS = ("jsonl", "csv", "parquet")
OPTIONS = ("connector", "path", "format", "follow", "batch_size", "checkpoint")


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


class StreamRegistry:
    """The streams of one DuckDB database."""

    TABLE = "sqlml_streams"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def _ensure(self) -> None:
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (name VARCHAR PRIMARY KEY, definition VARCHAR)")

    def names(self) -> list[str]:
        try:
            return [r[0] for r in self.con.execute(f"SELECT name FROM {self.TABLE} ORDER BY name").fetchall()]
        except duckdb.CatalogException:
            return []

    def get(self, name: str) -> StreamDef | None:
        try:
            rows = self.con.execute(f"SELECT definition FROM {self.TABLE} WHERE name = ?", [name.lower()]).fetchall()
        except duckdb.CatalogException:
            return None
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
        self.con.execute("BEGIN")
        try:
            if replace:
                self.con.execute(f"DELETE FROM {self.TABLE} WHERE name = ?", [stream.name])
            self.con.execute(f"INSERT INTO {self.TABLE} VALUES (?, ?)", [stream.name, json.dumps(asdict(stream))])
            late = f"CREATE {'OR REPLACE ' if replace else ''}TABLE {quote(stream.late_table)}"
            self.con.execute(
                f"{late} ({stream.column_sql()}, window_start TIMESTAMP, window_end TIMESTAMP, watermark TIMESTAMP)"
            )
            errors = f"CREATE {'OR REPLACE ' if replace else ''}TABLE {quote(stream.errors_table)}"
            self.con.execute(f"{errors} (raw VARCHAR, file VARCHAR, line BIGINT, error VARCHAR)")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def drop(self, name: str) -> None:
        stream = self.require(name)
        self.con.execute("BEGIN")
        try:
            self.con.execute(f"DELETE FROM {self.TABLE} WHERE name = ?", [stream.name])
            self.con.execute(f"DROP TABLE IF EXISTS {quote(stream.late_table)}")
            self.con.execute(f"DROP TABLE IF EXISTS {quote(stream.errors_table)}")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
