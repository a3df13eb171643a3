"""Stream sources: they turn input into micro-batches of typed events, in arrival order.

Parsing and type checks run in DuckDB: a line that is not JSON, a value that does not cast
to its column's type, or an event without event time becomes an error row (raw text, file,
line, reason) for `<stream>_errors`, never a dropped event. A source's `offset` says how
far it has read, so a checkpoint can resume it.
"""

from __future__ import annotations

import glob
import itertools
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml.errors import BindError, ExecutionError
from sqlml.features import quote
from sqlml.media import MEDIA_COLUMNS, media_relation
from sqlml.stream.streams import StreamDef

DEFAULT_BATCH = 50_000
MEDIA_BATCH = 256  # files a batch of a media stream
POLL_SECONDS = 0.2  # how often a followed source looks for new data


@dataclass
class Batch:
    """Events (the stream's columns) and error rows (raw, file, line, error) read together."""

    events: pa.Table
    errors: pa.Table
    offset: dict[str, Any]
    # whole rows by line number, when `events` holds only the columns the query reads
    fetch: Callable[[list[int]], pa.Table] | None = None
    # a source that keeps its own watermark (Kafka's, per partition): the watermark at each
    # event's arrival and after the batch, delay applied (None: no watermark yet)
    watermarks: np.ndarray | None = None
    watermark: int | None = None


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
    return (
        f"{', '.join(casts)}, nullif(concat_ws('; ', {', '.join(checks)}), '') AS __sqlml_error, {raw} AS __sqlml_raw"
    )


def _typed_columns(
    con: duckdb.DuckDBPyConnection,
    stream: StreamDef,
    relation: str,
    file: str,
    line: str,
    read: frozenset[str] | None = None,
) -> str:
    """A parsing query for typed input (Parquet, Arrow): columns already of their declared
    type pass through untouched; others are cast, and a failed cast is an error row.

    With `read`, only those columns (and the time column, and any that need a cast, the only
    ones that can fail) are read; `__sqlml_raw` is then left for the caller to fill in."""
    probe = con.sql(f"SELECT * FROM {relation} LIMIT 0")
    found = dict(zip(probe.columns, [str(t) for t in probe.types]))
    missing = [n for n, _ in stream.columns if n not in found]
    if missing:
        raise BindError(f"The input of stream '{stream.name}' lacks column(s) {', '.join(missing)}.")
    casts, checks = [], []
    for name, type_ in stream.columns:
        column = quote(name)
        if found[name].upper() == type_.upper():
            if read is None or name in read or name == stream.time:
                casts.append(column)
        else:
            casts.append(f"TRY_CAST({column} AS {type_}) AS {column}")
            checks.append(
                f"CASE WHEN {column} IS NOT NULL AND TRY_CAST({column} AS {type_}) IS NULL "
                f"THEN '{name}: cannot read ' || CAST({column} AS VARCHAR) || ' as {type_}' END"
            )
    checks.append(f"CASE WHEN {quote(stream.time)} IS NULL THEN '{stream.time}: missing event time' END")
    raw = "NULL" if read is not None else _raw_sql(stream)
    return (
        f"SELECT {', '.join(casts)}, nullif(concat_ws('; ', {', '.join(checks)}), '') AS __sqlml_error, "
        f"CASE WHEN __sqlml_error IS NOT NULL THEN {raw} END AS __sqlml_raw, {file} AS __sqlml_file, "
        f"{line} AS __sqlml_line FROM {relation}"
    )


def _raw_sql(stream: StreamDef) -> str:
    return "CAST(struct_pack(" + ", ".join(f"{quote(n)} := {quote(n)}" for n, _ in stream.columns) + ") AS VARCHAR)"


def _jsonl_sql(stream: StreamDef, lines: str, file: str) -> str:
    """A parsing query for JSON lines; `lines` yields (__line VARCHAR, __n line number)."""
    paths = "[" + ", ".join("'$." + n.replace("'", "''") + "'" for n, _ in stream.columns) + "]"
    sql = (
        f"SELECT {_typed(stream, '__v', '__line')}, {file} AS __sqlml_file, __n AS __sqlml_line FROM ("
        f"SELECT *, CASE WHEN json_valid(__line) THEN json_extract_string(__line, {paths}) END AS __v, "
        f"json_valid(__line) AS __ok FROM ({lines}))"
    )
    return sql.replace(
        "nullif(concat_ws('; ', ", "nullif(concat_ws('; ', CASE WHEN NOT __ok THEN 'not a JSON object' END, ", 1
    )


def csv_lines_sql(stream: StreamDef, lines: str, file: str) -> str:
    """A parsing query for CSV lines, one event each, fields in the stream's column order
    (Flink's 'csv' format: no header; "..." quotes, "" a quote inside; an empty field is NULL);
    `lines` yields (__line VARCHAR, __n line number). A NULL line is a Kafka tombstone."""
    n = len(stream.columns)
    fields = (
        'list_transform(regexp_extract_all(__line || \',\', \'("(?:[^"]|"")*"|[^,]*),\', 1), lambda x: CASE '
        "WHEN x = '' THEN NULL WHEN x[1] = '\"' THEN replace(x[2:-2], '\"\"', '\"') ELSE x END)"
    )
    sql = (
        f"SELECT {_typed(stream, '__v', '__line')}, {file} AS __sqlml_file, __n AS __sqlml_line FROM ("
        f"SELECT *, {fields} AS __v FROM ({lines}))"
    )
    return sql.replace(
        "nullif(concat_ws('; ', ",
        "nullif(concat_ws('; ', CASE WHEN __line IS NULL THEN 'no value (a tombstone)' "
        f"WHEN len(__v) <> {n} THEN 'expected {n} fields, found ' || len(__v) END, ",
        1,
    )


def _split(con: duckdb.DuckDBPyConnection, sql: str, stream: StreamDef) -> tuple[pa.Table, pa.Table]:
    """Good events (the columns read, plus __sqlml_line) and error rows, from a parsing query."""
    parsed = con.sql(sql).to_arrow_table()
    names = [n for n, _ in stream.columns if n in parsed.column_names] + ["__sqlml_line"]
    if parsed.column("__sqlml_error").null_count == parsed.num_rows:  # no error: no compute kernel needed
        return parsed.select(names), _no_errors()
    ok = pc.is_null(parsed.column("__sqlml_error"))
    bad = parsed.filter(pc.invert(ok))
    errors = pa.table(
        {"raw": bad.column("__sqlml_raw"), "file": bad.column("__sqlml_file"),
         "line": bad.column("__sqlml_line").cast(pa.int64()), "error": bad.column("__sqlml_error")}
    )  # fmt: skip
    return parsed.filter(ok).select(names), errors


def _no_errors() -> pa.Table:
    return pa.table({"raw": pa.array([], pa.string()), "file": pa.array([], pa.string()),
                     "line": pa.array([], pa.int64()), "error": pa.array([], pa.string())})  # fmt: skip


def _lines(table: pa.Table, lines: np.ndarray, first: int, last: int) -> pa.Table:
    """The rows whose line number is in (first, last]; rows are in line order, so a slice."""
    start, stop = np.searchsorted(lines, [first, last], side="right")
    return table.slice(int(start), int(stop - start))


class FileSource:
    """Files matching a glob, in name order; jsonl, csv or parquet."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        stream: StreamDef,
        offset: dict[str, Any] | None = None,
        read: frozenset[str] | None = None,
    ) -> None:
        self.con = con
        self.stream = stream
        self.read = read  # Parquet only: the columns to read (None: all)
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
            lines = (
                f"SELECT line AS __line, row_number() OVER () AS __n FROM read_csv('{where}', columns = {{'line': 'VARCHAR'}}, "
                "header = false, delim = chr(31), quote = '', escape = '', auto_detect = false)"
            )
            sql = _jsonl_sql(self.stream, lines, f"'{where}'")
        elif self.format == "csv":
            cols = ", ".join(f"CAST({quote(n)} AS VARCHAR)" for n in names)
            sql = (
                f"SELECT {_typed(self.stream, '__v', '__v::VARCHAR')}, '{where}' AS __sqlml_file, __n + 1 AS __sqlml_line FROM ("
                f"SELECT [{cols}] AS __v, row_number() OVER () AS __n FROM read_csv('{where}', header = true, all_varchar = true))"
            )
        else:
            fast = self._parquet_as_is(path)
            if fast is not None:
                return fast
            relation = f"read_parquet('{where}', file_row_number = true)"
            sql = _typed_columns(self.con, self.stream, relation, f"'{where}'", "file_row_number + 1", self.read)
            good, bad = _split(self.con, sql, self.stream)
            if self.read is not None and bad.num_rows:
                raw = self.con.execute(
                    f"SELECT {_raw_sql(self.stream)} FROM {relation} WHERE list_contains(?, file_row_number + 1) "
                    "ORDER BY file_row_number", [bad.column("line").to_pylist()]
                ).fetchall()  # fmt: skip
                bad = bad.set_column(0, "raw", pa.array([r[0] for r in raw], pa.string()))
            return good, bad
        return _split(self.con, sql, self.stream)

    def _parquet_as_is(self, path: str) -> tuple[pa.Table, pa.Table] | None:
        """A Parquet file read by Arrow, when every column has its declared type (nothing to
        cast, nothing that can fail), Arrow reads the types DuckDB would, and every event has its
        time (else None: the checking query's work)."""
        import pyarrow.parquet as pq

        names = [n for n, _ in self.stream.columns if self.read is None or n in self.read or n == self.stream.time]
        where = path.replace("'", "''")
        probe = self.con.sql(f"SELECT * FROM read_parquet('{where}') LIMIT 0")
        found = dict(zip(probe.columns, [str(t).upper() for t in probe.types]))
        declared = dict(self.stream.columns)
        if any(found.get(n) != t.upper() for n, t in declared.items()):
            return None  # a column missing, or one to cast (read or not): the checking query reports it
        wanted = probe.to_arrow_table().select(names).schema
        table = pq.read_table(path, columns=names)
        if table.schema.remove_metadata() != wanted.remove_metadata() or table.column(self.stream.time).null_count:
            return None
        lines = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
        return table.append_column("__sqlml_line", lines), _no_errors()

    def batches(self, stop: threading.Event | None = None) -> Iterator[Batch]:
        """Micro-batches from where the offset stands. With follow = true, keep watching for
        new files and appended lines until `stop` is set; else end after the last file."""
        follow = bool(self.stream.options.get("follow"))
        while True:
            found = self.files() if not follow else sorted(glob.glob(self.pattern))
            if self.format in MEDIA_COLUMNS:  # one event per file, many files a batch
                yield from self._media_batches([p for p in found if p > self.offset["file"]])
            for path in found if self.format not in MEDIA_COLUMNS else []:
                if path < self.offset["file"]:
                    continue
                yield from self._file_batches(path, complete_lines_only=follow)
            if not follow or stop is None or stop.wait(POLL_SECONDS):
                return

    def _media_batches(self, paths: list[str]) -> Iterator[Batch]:
        """Media files (format 'audio' or 'image'), `batch_size` files a batch, in name order;
        a file that cannot be decoded is an error row naming it and the reason."""
        size = int(self.stream.options.get("batch_size", MEDIA_BATCH))
        for start in range(0, len(paths), size):
            chunk = paths[start : start + size]
            relation = media_relation(self.format, chunk)
            sql = _typed_columns(self.con, self.stream, relation, "filename", "1").replace(
                "nullif(concat_ws('; ', ", "nullif(concat_ws('; ', __media_error, ", 1
            )
            good, bad = _split(self.con, sql, self.stream)
            self.offset = {"file": chunk[-1], "line": 1}
            yield Batch(good.drop_columns(["__sqlml_line"]), bad, dict(self.offset))

    def _file_batches(self, path: str, complete_lines_only: bool) -> Iterator[Batch]:
        good, bad = self._read(path)
        lines = good.num_rows + bad.num_rows
        if complete_lines_only and self.format != "parquet" and not _ends_with_newline(path):
            lines -= 1  # a line still being written
        good_lines = good.column("__sqlml_line").to_numpy()
        bad_lines = bad.column("line").to_numpy()
        projected = self.read is not None and self.format == "parquet"
        if not projected:
            good = good.drop_columns(["__sqlml_line"])
        fetch = (lambda lines: self.whole_rows(path, lines)) if projected else None
        start = self.offset["line"] if path == self.offset["file"] else 0
        for first in range(start, lines, self.batch_size):
            last = min(first + self.batch_size, lines)
            self.offset = {"file": path, "line": last}
            yield Batch(
                _lines(good, good_lines, first, last), _lines(bad, bad_lines, first, last), dict(self.offset), fetch
            )

    def whole_rows(self, path: str, lines: list[int]) -> pa.Table:
        """Every column of the given lines of a Parquet file, with __sqlml_line."""
        where = path.replace("'", "''")
        casts = ", ".join(f"CAST({quote(n)} AS {t}) AS {quote(n)}" for n, t in self.stream.columns)
        return self.con.sql(
            f"SELECT {casts}, file_row_number + 1 AS __sqlml_line FROM read_parquet('{where}', file_row_number = true) "
            "WHERE list_contains(?, file_row_number + 1)", params=[lines]
        ).to_arrow_table()  # fmt: skip


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return True
        f.seek(-1, 2)
        return f.read(1) == b"\n"


def as_table(data: Any, stream: str) -> pa.Table:
    """Pushed data as an Arrow table: a Table, a RecordBatch, a pandas (or any Arrow-exporting)
    DataFrame, a dict of columns or a list of row dicts."""
    try:
        if isinstance(data, pa.Table):
            return data
        if isinstance(data, pa.RecordBatch):
            return pa.Table.from_batches([data])
        if isinstance(data, dict):
            return pa.table(data)
        if isinstance(data, list) and all(isinstance(row, dict) for row in data):
            return pa.Table.from_pylist(data)
        if hasattr(data, "__arrow_c_stream__") or type(data).__name__ == "DataFrame":
            return pa.table(data)
    except (pa.ArrowException, TypeError, ValueError) as err:
        raise BindError(f"Cannot read the data pushed to stream '{stream}': {err}.") from err
    raise BindError(
        f"Cannot push a {type(data).__name__} to stream '{stream}'.",
        hint="Push a pyarrow Table or RecordBatch, a pandas DataFrame, a dict of columns or a list of row dicts.",
    )


class PythonSource:
    """Batches pushed by the embedding program with `con.push(stream, data)`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, stream: StreamDef) -> None:
        self.con = con
        self.stream = stream
        self.queue: deque[pa.Table] = deque()
        self.offset: dict[str, Any] = {"pushed": 0}

    def push(self, data: Any) -> None:
        """Queue events, after checking that they are a table with the stream's columns."""
        table = as_table(data, self.stream.name)
        missing = [n for n, _ in self.stream.columns if n not in table.column_names]
        if missing:
            raise BindError(
                f"Data pushed to stream '{self.stream.name}' lacks column(s) {', '.join(missing)}.",
                hint=f"The stream's columns are {', '.join(n for n, _ in self.stream.columns)}.",
            )
        self.queue.append(table)

    def batches(self) -> Iterator[Batch]:
        names = [n for n, _ in self.stream.columns]
        while self.queue:
            data = self.queue.popleft()
            missing = [n for n in names if n not in data.column_names]
            if missing:
                raise BindError(f"Data pushed to stream '{self.stream.name}' lacks column(s) {', '.join(missing)}.")
            first = self.offset["pushed"]
            self.con.register(
                "__sqlml_pushed",
                data.append_column("__sqlml_n", pa.array(np.arange(first + 1, first + 1 + data.num_rows))),
            )
            sql = _typed_columns(self.con, self.stream, "__sqlml_pushed", "'python'", "__sqlml_n")
            try:
                good, bad = _split(self.con, sql, self.stream)
            finally:
                self.con.unregister("__sqlml_pushed")
            good = good.drop_columns(["__sqlml_line"])
            self.offset = {"pushed": self.offset["pushed"] + data.num_rows}
            yield Batch(good, bad, dict(self.offset))


class StdinSource:
    """JSON lines on standard input, until it ends."""

    def __init__(self, con: duckdb.DuckDBPyConnection, stream: StreamDef, lines: Iterator[str] | None = None) -> None:
        self.con = con
        self.stream = stream
        self.lines = lines if lines is not None else iter(sys.stdin)
        self.batch_size = int(stream.options.get("batch_size", DEFAULT_BATCH))
        self.offset: dict[str, Any] = {"line": 0}

    def batches(self) -> Iterator[Batch]:
        while True:
            chunk = [line.rstrip("\n") for line in itertools.islice(self.lines, self.batch_size)]
            if not chunk:
                return
            first = self.offset["line"]
            self.con.register(
                "__sqlml_stdin", pa.table({"__line": chunk, "__n": np.arange(first + 1, first + 1 + len(chunk))})
            )
            try:
                good, bad = _split(
                    self.con, _jsonl_sql(self.stream, "SELECT * FROM __sqlml_stdin", "'<stdin>'"), self.stream
                )
            finally:
                self.con.unregister("__sqlml_stdin")
            self.offset = {"line": first + len(chunk)}
            yield Batch(good.drop_columns(["__sqlml_line"]), bad, dict(self.offset))


class TableSource:
    """An ordinary table replayed in event-time order, as a bounded stream (a backtest)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, stream: StreamDef, offset: dict[str, Any] | None = None) -> None:
        self.con = con
        self.stream = stream
        self.batch_size = int(stream.options.get("batch_size", DEFAULT_BATCH))
        self.offset: dict[str, Any] = dict(offset or {"row": 0})

    def batches(self) -> Iterator[Batch]:
        time = quote(self.stream.time)
        names = ", ".join(quote(n) for n, _ in self.stream.columns)
        table = self.con.sql(f"SELECT {names} FROM {self.stream.options['path']} ORDER BY {time}").to_arrow_table()
        missing = table.column(self.stream.time).null_count
        if missing:
            raise ExecutionError(
                f"{missing} rows of {self.stream.options['path']} have no {self.stream.time}; they cannot be replayed in time order.",
                hint=f"Filter them out in a view (WHERE {self.stream.time} IS NOT NULL) and train on the view.",
            )
        empty = pa.table({"raw": pa.array([], pa.string()), "file": pa.array([], pa.string()),
                          "line": pa.array([], pa.int64()), "error": pa.array([], pa.string())})  # fmt: skip
        for first in range(self.offset["row"], table.num_rows, self.batch_size):
            self.offset = {"row": min(first + self.batch_size, table.num_rows)}
            yield Batch(table.slice(first, self.batch_size), empty, dict(self.offset))
