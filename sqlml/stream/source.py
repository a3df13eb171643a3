"""Stream sources: they turn input into micro-batches of typed events, in arrival order.

Parsing and type checks run in DuckDB: a line that is not JSON, a value that does not cast
to its column's type, or an event without event time becomes an error row (raw text, file,
line, reason) for `<stream>_errors`, never a dropped event. A source's `offset` says how
far it has read, so a checkpoint can resume it.
"""

from __future__ import annotations

import glob
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sqlml.errors import BindError
from sqlml.features import quote
from sqlml.stream.streams import StreamDef

DEFAULT_BATCH = 50_000


@dataclass
class Batch:
    """Events (the stream's columns) and error rows (raw, file, line, error) read together."""

    events: pa.Table
    errors: pa.Table
    offset: dict[str, Any]


def _typed(stream: StreamDef, values: str, raw: str) -> str:
    """SELECT list casting `values[i]` (text) to each column, with an error description."""
    casts, checks = [], []
    for i, (name, type_) in enumerate(stream.columns, start=1):
        casts.append(f"TRY_CAST({values}[{i}] AS {type_}) AS {quote(name)}")
        checks.append(
            f"CASE WHEN {values}[{i}] IS NOT NULL AND TRY_CAST({values}[{i}] AS {type_}) IS NULL "
            f"THEN '{name}: cannot read ' || {values}[{i}] || ' as {type_}' END"
        )
    time_index = [n for n, _ in stream.columns].index(stream.time) + 1
    checks.append(f"CASE WHEN {values}[{time_index}] IS NULL THEN '{stream.time}: missing event time' END")
    return f"{', '.join(casts)}, concat_ws('; ', {', '.join(checks)}) AS __sqlml_error, {raw} AS __sqlml_raw"


def _split(con: duckdb.DuckDBPyConnection, sql: str, stream: StreamDef) -> tuple[pa.Table, pa.Table]:
    """Good events (columns plus __sqlml_line) and error rows, from a parsing query."""
    names = ", ".join(quote(n) for n, _ in stream.columns)
    con.register("__sqlml_parsed", con.sql(sql).to_arrow_table())
    try:
        good = con.sql(f"SELECT {names}, __sqlml_line FROM __sqlml_parsed WHERE __sqlml_error = ''").to_arrow_table()
        bad = con.sql(
            "SELECT __sqlml_raw AS raw, __sqlml_file AS file, __sqlml_line AS line, __sqlml_error AS error "
            "FROM __sqlml_parsed WHERE __sqlml_error <> ''"
        ).to_arrow_table()
    finally:
        con.unregister("__sqlml_parsed")
    return good, bad


def _lines(table: pa.Table, column: str, first: int, last: int) -> pa.Table:
    """The rows whose line number is in (first, last]."""
    lines = table.column(column)
    return table.filter(pc.and_(pc.greater(lines, first), pc.less_equal(lines, last)))


class FileSource:
    """Files matching a glob, in name order; jsonl, csv or parquet."""

    def __init__(self, con: duckdb.DuckDBPyConnection, stream: StreamDef, offset: dict[str, Any] | None = None) -> None:
        self.con = con
        self.stream = stream
        self.pattern = str(stream.options["path"])
        self.format = str(stream.options.get("format", "jsonl"))
        self.batch_size = int(stream.options.get("batch_size", DEFAULT_BATCH))
        self.offset = dict(offset or {"file": "", "line": 0})

    def files(self) -> list[str]:
        found = sorted(glob.glob(self.pattern))
        if not found:
            raise BindError(
                f"The path '{self.pattern}' of stream '{self.stream.name}' matches no files.",
                hint="Check the path (it is relative to the working directory) and the glob pattern.",
            )
        return found

    def _read(self, path: str) -> tuple[pa.Table, pa.Table]:
        names = [n for n, _ in self.stream.columns]
        where = path.replace("'", "''")
        if self.format == "jsonl":
            paths = "[" + ", ".join("'$." + n.replace("'", "''") + "'" for n in names) + "]"
            sql = (
                f"SELECT {_typed(self.stream, '__v', '__line')}, '{where}' AS __sqlml_file, __n AS __sqlml_line FROM ("
                f"SELECT __line, __n, CASE WHEN json_valid(__line) THEN json_extract_string(__line, {paths}) END AS __v, "
                f"json_valid(__line) AS __ok FROM (SELECT line AS __line, row_number() OVER () AS __n FROM read_csv('{where}', "
                "columns = {'line': 'VARCHAR'}, header = false, delim = chr(31), quote = '', escape = '', auto_detect = false)))"
            )
            sql = sql.replace(
                "concat_ws('; ', ", "concat_ws('; ', CASE WHEN NOT __ok THEN 'not a JSON object' END, ", 1
            )
        elif self.format == "csv":
            cols = ", ".join(f"CAST({quote(n)} AS VARCHAR)" for n in names)
            sql = (
                f"SELECT {_typed(self.stream, '__v', '__v::VARCHAR')}, '{where}' AS __sqlml_file, __n + 1 AS __sqlml_line FROM ("
                f"SELECT [{cols}] AS __v, row_number() OVER () AS __n FROM read_csv('{where}', header = true, all_varchar = true))"
            )
        else:
            cols = ", ".join(f"CAST({quote(n)} AS VARCHAR)" for n in names)
            sql = (
                f"SELECT {_typed(self.stream, '__v', '__v::VARCHAR')}, '{where}' AS __sqlml_file, __n AS __sqlml_line FROM ("
                f"SELECT [{cols}] AS __v, row_number() OVER () AS __n FROM read_parquet('{where}'))"
            )
        return _split(self.con, sql, self.stream)

    def batches(self) -> Iterator[Batch]:
        for path in self.files():
            if path < self.offset["file"]:
                continue
            good, bad = self._read(path)
            lines = good.num_rows + bad.num_rows
            start = self.offset["line"] if path == self.offset["file"] else 0
            for first in range(start, lines, self.batch_size):
                last = min(first + self.batch_size, lines)
                self.offset = {"file": path, "line": last}
                events = _lines(good, "__sqlml_line", first, last).drop_columns(["__sqlml_line"])
                yield Batch(events, _lines(bad, "line", first, last), dict(self.offset))


class PythonSource:
    """Batches pushed by the embedding program with `con.push(stream, data)`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, stream: StreamDef) -> None:
        self.con = con
        self.stream = stream
        self.queue: deque[pa.Table] = deque()
        self.offset: dict[str, Any] = {"pushed": 0}

    def push(self, data: Any) -> None:
        self.queue.append(data if isinstance(data, pa.Table) else pa.Table.from_pandas(data))

    def batches(self) -> Iterator[Batch]:
        names = [n for n, _ in self.stream.columns]
        while self.queue:
            data = self.queue.popleft()
            missing = [n for n in names if n not in data.column_names]
            if missing:
                raise BindError(f"Data pushed to stream '{self.stream.name}' lacks column(s) {', '.join(missing)}.")
            cols = ", ".join(f"CAST({quote(n)} AS VARCHAR)" for n in names)
            sql = (
                f"SELECT {_typed(self.stream, '__v', '__v::VARCHAR')}, 'python' AS __sqlml_file, __n AS __sqlml_line "
                f"FROM (SELECT [{cols}] AS __v, {self.offset['pushed']} + row_number() OVER () AS __n FROM __sqlml_pushed)"
            )
            self.con.register("__sqlml_pushed", data)
            try:
                good, bad = _split(self.con, sql, self.stream)
            finally:
                self.con.unregister("__sqlml_pushed")
            good = good.drop_columns(["__sqlml_line"])
            self.offset = {"pushed": self.offset["pushed"] + data.num_rows}
            yield Batch(good, bad, dict(self.offset))
