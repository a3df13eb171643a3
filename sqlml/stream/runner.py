"""The micro-batch runner: events arrive as Arrow batches, window state lives in DuckDB, and
the user's query runs over the windows the watermark has just closed.

Event time follows Flink: the watermark at an event's arrival is the largest event time of
the events before it, minus the stream's delay (a running maximum in arrival order, computed
by DuckDB). An event is late for a window whose end is at or before that watermark: it goes
to `<stream>_late` with the window it missed, and still counts in the windows it is not
late for. A window fires once, when the watermark reaches its end; at the end of a bounded
source the watermark becomes +infinity and every open window fires. Because lateness is
decided per event, results do not depend on how the input was cut into micro-batches.

Each micro-batch is one DuckDB transaction: errors, late events, state, the sink's output
and (where the sink is durable) the checkpoint commit together, so a run killed at any
point resumes from its last checkpoint with no duplicate and no gap.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from sqlml.features import quote
from sqlml.stream.source import Batch, FileSource, PythonSource, StdinSource
from sqlml.stream.streams import StreamDef
from sqlml.stream.window import WindowSpec, first_window_end, last_window_end_sql, window_sql

CHECKPOINTS = "sqlml_checkpoints"
NO_WATERMARK = np.iinfo(np.int64).min
FIRED = "__sqlml_fired"
BATCH = "__sqlml_batch"


@dataclass
class StreamJob:
    """A continuous query: its stream, window (None: stateless, per batch), the SQL that
    produces output from `__sqlml_fired` (or `__sqlml_batch`), and where output goes."""

    text: str
    stream: StreamDef
    window: WindowSpec | None
    query_sql: str
    sink: str  # "select" | "insert" | "copy"
    target: str = ""  # the INSERT's table, or the COPY's folder
    copy_options: str = ""
    durable: bool = False
    needed: tuple[str, ...] = ()  # the stream columns the query reads (empty: all)

    @property
    def query_id(self) -> str:
        return hashlib.sha1(self.text.encode()).hexdigest()[:16]


@dataclass
class Progress:
    events: int = 0
    late: int = 0
    malformed: int = 0
    emitted: int = 0
    windows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Runner:
    """Runs one StreamJob on a connection, yielding each emitted result as an Arrow table."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        job: StreamJob,
        python_sources: dict[str, PythonSource],
        stop: threading.Event | None = None,
    ) -> None:
        self.con = con
        self.job = job
        self.stream = job.stream
        self.progress = Progress()
        self.state = f"sqlml_state_{job.query_id}" if job.durable else f"__sqlml_state_{job.query_id}"
        self.python_sources = python_sources
        self.stop = stop or threading.Event()
        cols = [quote(n) for n, _ in self.stream.columns]
        self.columns = ", ".join(cols)
        # window state keeps only the columns the query reads (and the time column)
        kept = [(n, t) for n, t in self.stream.columns if not job.needed or n in job.needed or n == self.stream.time]
        self.kept = ", ".join(quote(n) for n, _ in kept)
        self.kept_sql = ", ".join(f"{quote(n)} {t}" for n, t in kept)

    # -- checkpoint -------------------------------------------------------------------
    def _restore(self) -> tuple[dict[str, Any] | None, int | None, int]:
        if not self.job.durable:
            return None, None, 0
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (query_id VARCHAR PRIMARY KEY, query VARCHAR, "
            "source_offset VARCHAR, max_event_us BIGINT, seq BIGINT)"
        )
        rows = self.con.execute(
            f"SELECT source_offset, max_event_us, seq FROM {CHECKPOINTS} WHERE query_id = ?", [self.job.query_id]
        ).fetchall()
        if not rows:
            return None, None, 0
        return json.loads(rows[0][0]), rows[0][1], int(rows[0][2])

    def _save(self, offset: dict[str, Any], max_us: int | None, seq: int) -> None:
        if self.job.durable:
            self.con.execute(
                f"INSERT OR REPLACE INTO {CHECKPOINTS} VALUES (?, ?, ?, ?, ?)",
                [self.job.query_id, self.job.text, json.dumps(offset), max_us, seq],
            )

    def _create_state(self) -> None:
        """Window state holds raw events (with the watermark at their arrival), not one row per
        window: windows are expanded when they fire, so a HOP does not store each event 5 times."""
        temp = "" if self.job.durable else "TEMP "
        self.con.execute(
            f"CREATE {temp}TABLE IF NOT EXISTS {self.state} ({self.kept_sql}, __sqlml_seq BIGINT, __sqlml_wm BIGINT)"
        )

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> Iterator[pa.Table]:
        offset, max_us, seq = self._restore()
        # windows ending at or before this have fired (the watermark after the last batch)
        self.closed_up_to: int | None = None if max_us is None else max_us - self.stream.delay_us
        if self.job.window is not None:
            self._create_state()
        if self.stream.connector == "python":
            source: Any = self.python_sources.setdefault(self.stream.name, PythonSource(self.con, self.stream))
        elif self.stream.connector == "stdin":
            source = StdinSource(self.con, self.stream)
        else:
            source = FileSource(self.con, self.stream, offset)
        batches = source.batches(self.stop) if isinstance(source, FileSource) else source.batches()
        for batch in batches:
            emitted, max_us, seq = self._step(batch, max_us, seq, final=False)
            yield from emitted
            if self.stop.is_set():
                break
        if self.stop.is_set():
            return  # stopped, not ended: open windows stay in the checkpointed state
        end = Batch(pa.table({}), pa.table({}), dict(getattr(source, "offset", {})))
        emitted, _, _ = self._step(end, max_us, seq, final=True)
        yield from emitted

    def _step(self, batch: Batch, max_us: int | None, seq: int, final: bool) -> tuple[list[pa.Table], int | None, int]:
        con = self.con
        # one transaction per micro-batch where the output is durable; elsewhere nothing to protect
        transaction = self.job.durable
        if transaction:
            con.execute("BEGIN")
        try:
            if batch.errors.num_rows:
                con.register("__sqlml_errors", batch.errors)
                con.execute(
                    f"INSERT INTO {quote(self.stream.errors_table)} SELECT raw, file, line, error FROM __sqlml_errors"
                )
                con.unregister("__sqlml_errors")
                self.progress.malformed += batch.errors.num_rows
            events = batch.events
            if events.num_rows:
                self.progress.events += events.num_rows
                times = events.column(self.stream.time).cast(pa.int64()).to_numpy()  # microseconds
                # the watermark at each event's arrival: the running maximum of the events before it
                before = np.maximum.accumulate(np.concatenate(([NO_WATERMARK if max_us is None else max_us], times)))[
                    :-1
                ]
                watermark = np.where(before == NO_WATERMARK, NO_WATERMARK, before - self.stream.delay_us)
                events = events.append_column("__sqlml_seq", pa.array(np.arange(seq, seq + events.num_rows)))
                events = events.append_column("__sqlml_wm", pa.array(watermark))
                seq += events.num_rows
                con.register(BATCH + "_raw", events)
            emitted: list[pa.Table] = []
            if self.job.window is None:
                if events.num_rows:
                    con.execute(f"CREATE OR REPLACE TEMP VIEW {BATCH} AS SELECT {self.columns} FROM {BATCH}_raw")
                    emitted += self._emit(seq)
            else:
                if events.num_rows:
                    self._assign(times, watermark)
                    batch_max = int(times.max())
                    max_us = batch_max if max_us is None else max(max_us, batch_max)
                if final or max_us is not None:
                    closing = None if final else max_us - self.stream.delay_us  # type: ignore[operator]
                    emitted += self._fire(closing, self.closed_up_to, seq)
                    self.closed_up_to = closing
            if events.num_rows:
                con.unregister(BATCH + "_raw")
            self._save(batch.offset, max_us, seq)
            if transaction:
                con.execute("COMMIT")
        except BaseException:
            if transaction:
                con.execute("ROLLBACK")
            raise
        return emitted, max_us, seq

    def _assign(self, times: np.ndarray, watermark: np.ndarray) -> None:
        """Record late events, and keep in state every event with a window still open at its arrival."""
        spec, time = self.job.window, quote(self.stream.time)
        assert spec is not None
        raw, late = f"{BATCH}_raw", quote(self.stream.late_table)
        keep = f"INSERT INTO {self.state} SELECT {self.kept}, __sqlml_seq, __sqlml_wm FROM {raw}"
        if spec.kind == "SESSION":
            gap = spec.sizes[0]
            if np.any(times + gap <= watermark):
                self.progress.late += self._count(
                    f"INSERT INTO {late} SELECT {self.columns}, {time}, make_timestamp(epoch_us({time}) + {gap}), "
                    f"make_timestamp(__sqlml_wm) FROM {raw} WHERE epoch_us({time}) + {gap} <= __sqlml_wm"
                )
                keep += f" WHERE epoch_us({time}) + {gap} > __sqlml_wm"
            self.con.execute(keep)
            return
        if np.any(first_window_end(spec, times) <= watermark):
            self.progress.late += self._count(
                f"INSERT INTO {late} SELECT {self.columns}, window_start, window_end, make_timestamp(__sqlml_wm) "
                f"FROM ({window_sql(spec, f'SELECT * FROM {raw}')}) WHERE epoch_us(window_end) <= __sqlml_wm"
            )
            keep += f" WHERE {last_window_end_sql(spec, f'epoch_us({time})')} > __sqlml_wm"
        self.con.execute(keep)

    def _count(self, insert: str) -> int:
        """Run an INSERT and return how many rows it added."""
        return int(self.con.execute(insert).fetchall()[0][0])

    def _fire(self, watermark: int | None, fired_before: int | None, seq: int) -> list[pa.Table]:
        """Run the query over every window ending in (fired_before, watermark] (None: no bound),
        with each event in the windows it was not late for; then drop events with no open window."""
        spec = self.job.window
        assert spec is not None
        time = f"epoch_us({quote(self.stream.time)})"
        closed = "TRUE" if watermark is None else f"epoch_us(window_end) <= {watermark}"
        new = "TRUE" if fired_before is None else f"epoch_us(window_end) > {fired_before}"
        expanded = window_sql(spec, f"SELECT * FROM {self.state}")
        if spec.kind == "SESSION":
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {FIRED}_all AS SELECT * FROM ({expanded}) WHERE {closed}")
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {FIRED} AS SELECT * EXCLUDE (__sqlml_seq, __sqlml_wm) FROM {FIRED}_all"
            )
            delete = f"DELETE FROM {self.state} WHERE __sqlml_seq IN (SELECT __sqlml_seq FROM {FIRED}_all)"
        else:
            # a view: expanding windows is cheaper than writing the expanded rows down
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {FIRED} AS SELECT * EXCLUDE (__sqlml_seq, __sqlml_wm) FROM ({expanded}) "
                f"WHERE {closed} AND {new} AND epoch_us(window_end) > __sqlml_wm"
            )
            done = "TRUE" if watermark is None else f"{last_window_end_sql(spec, time)} <= {watermark}"
            delete = f"DELETE FROM {self.state} WHERE {done}"
        windows = self.con.execute(f"SELECT count(DISTINCT window_end) FROM {FIRED}").fetchall()[0][0]
        if windows:
            self.progress.windows += windows
            emitted = self._emit(seq)
        else:
            emitted = []
        self.con.execute(delete)
        return emitted

    def _emit(self, seq: int) -> list[pa.Table]:
        """Send the query's output to the sink; `seq` (events read so far) names file parts,
        so a resumed run writes the same part names and overwrites, never duplicates."""
        job = self.job
        if job.sink == "select":
            table = self.con.sql(job.query_sql).to_arrow_table()
            self.progress.emitted += table.num_rows
            return [table] if table.num_rows else []
        if job.sink == "insert":
            self.progress.emitted += self._count(f"INSERT INTO {job.target} {job.query_sql}")
            return []
        suffix = "parquet" if "PARQUET" in job.copy_options.upper() else "csv"
        path = f"{job.target.rstrip('/')}/part-{seq:012d}.{suffix}"
        self.progress.emitted += self._count(f"COPY ({job.query_sql}) TO '{path}' {job.copy_options}")
        return []
