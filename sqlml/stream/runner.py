"""The micro-batch runner: events arrive as Arrow batches, window state lives in DuckDB, and
the user's query runs over the windows the watermark has just closed.

Event time follows Flink: the watermark at an event's arrival is the largest event time of
the events before it, minus the stream's delay (a running maximum in arrival order, computed
with NumPy); a query reading several streams (a window join) uses the smallest of their
watermarks, and a stream that has ended no longer holds it back. An event is late for a
window whose end is at or before that watermark: it goes to `<stream>_late` with the window
it missed, and still counts in the windows it is not late for. A window fires once, when the
watermark reaches its end; when every source has ended the watermark becomes +infinity and
every open window fires. Lateness is decided per event, so results do not depend on how one
stream's input was cut into micro-batches.

Window state keeps raw events (only the columns the query reads) with the watermark at their
arrival; windows are expanded when they fire. Where the output is durable, each micro-batch
is one DuckDB transaction: errors, late events, state, the sink's output and the checkpoint
commit together, so a run killed at any point resumes from its last checkpoint with no
duplicate and no gap.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml.features import quote
from sqlml.stream.changelog import Changelog, ChangelogSpec, State
from sqlml.stream.dedup import DedupSpec
from sqlml.stream.interval_join import FOREVER, forget_sql
from sqlml.stream.kafka import KafkaSink, KafkaSource
from sqlml.stream.over import OverSpec
from sqlml.stream.sessions import SID, Sessions
from sqlml.stream.source import Batch, FileSource, PythonSource, StdinSource, TableSource
from sqlml.stream.streams import StreamDef, atomic
from sqlml.stream.temporal import due_sql, forget_versions_sql
from sqlml.stream.window import WindowSpec, first_window_end, last_window_end_sql, window_sql

CHECKPOINTS = "sqlml_checkpoints"
NO_WATERMARK = int(np.iinfo(np.int64).min)
BATCH = "__sqlml_batch"
OVER_VIEW = "__sqlml_over"


@dataclass(frozen=True)
class StreamInput:
    """One stream a query reads: through a window function (`window`) or directly (None);
    `view` is the name the rewritten query reads it by."""

    stream: StreamDef
    window: WindowSpec | None
    view: str
    needed: tuple[str, ...] = ()  # the stream columns the query reads (empty: all)
    over: OverSpec | None = None  # read directly, through OVER aggregates
    reach: int | None = None  # one side of an interval join: how long past its time an event can pair (µs)
    dedup: DedupSpec | None = None  # read directly, keeping each key's first event
    # a continuous TRAIN's labels: the window input fires `fire_delay` µs after its windows end,
    # and the label stream's events (`lookup`: the bounds of their time less the window stream's)
    # are kept until no window still to fire can reach them
    fire_delay: int = 0
    lookup: tuple[int, int] | None = None
    # a temporal join against a stream (see temporal.py): the events (`probe`) and the versions,
    # by their key columns
    probe: bool = False
    versions: tuple[str, ...] | None = None


class Sink(str, Enum):
    """Where a continuous query's output goes."""

    SELECT = "select"  # back to the caller, as windows close
    INSERT = "insert"  # into a table
    COPY = "copy"  # into numbered files in a folder
    CALL = "call"  # to a function (a continuous TRAIN's learner)
    KAFKA = "kafka"  # into a Kafka stream's topic


@dataclass(frozen=True)
class StreamJob:
    """A continuous query: the streams it reads, its SQL over their views, and its sink."""

    text: str
    inputs: tuple[StreamInput, ...]
    query_sql: str
    sink: Sink
    target: str = ""  # the INSERT's table, or the COPY's folder
    copy_options: str = ""
    sink_stream: StreamDef | None = None  # the Kafka stream an INSERT writes to
    # a LEFT interval join: the query with each side's arrival number (`__sqlml_seq_0`, `_1`),
    # which fills `__sqlml_out`, the table `query_sql` reads (see interval_join.py)
    outer_sql: str = ""
    changelog: ChangelogSpec | None = None  # an updating query (see changelog.py)

    @property
    def query_id(self) -> str:
        return hashlib.sha1(self.text.encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        return ", ".join(i.stream.name for i in self.inputs)


@dataclass
class Progress:
    events: int = 0
    late: int = 0
    malformed: int = 0
    emitted: int = 0
    windows: int = 0


@dataclass
class _Input:
    """The running state of one input."""

    spec: StreamInput
    state: str
    kept: str
    kept_sql: str
    columns: str
    source: Any = None
    batches: Iterator[Batch] | None = None
    offset: dict[str, Any] = field(default_factory=dict)
    max_us: int | None = None
    ended: bool = False
    sessions: Sessions | None = None  # a SESSION window's open sessions

    @property
    def stream(self) -> StreamDef:
        return self.spec.stream

    @property
    def keeps_state(self) -> bool:
        """Whether events wait in state (windows, OVER aggregates, joins, deduplication, labels)."""
        spec = self.spec
        return (
            spec.window is not None or spec.over is not None or spec.reach is not None or spec.dedup is not None
            or spec.lookup is not None or spec.probe or spec.versions is not None
        )  # fmt: skip

    def watermark(self) -> int | None:
        """This input's watermark: None before its first event, +inf (None too) once ended."""
        if self.ended or self.max_us is None:
            return None
        return self.max_us - self.stream.delay_us


class Runner:
    """Runs one StreamJob on a connection, yielding each emitted result as an Arrow table."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        job: StreamJob,
        python_sources: dict[str, PythonSource],
        stop: threading.Event | None = None,
        on_batch: Callable[[Progress], None] | None = None,
        durable: bool = False,
        callback: Callable[[pa.Table], None] | None = None,
    ) -> None:
        self.con = con
        self.job = job
        self.durable = durable  # state and checkpoints in the database, each micro-batch one transaction
        self.callback = callback  # receives the output, for Sink.CALL
        self.on_batch = on_batch  # told after each micro-batch is done (committed, where durable)
        self.progress = Progress()
        self.python_sources = python_sources
        self.stop = stop or threading.Event()
        self.inputs = [self._input(k, spec) for k, spec in enumerate(job.inputs)]
        self.seq = 0
        self.parts = 0  # COPY files written, part of the checkpoint
        self.closed_up_to: int | None = None  # windows ending at or before this have fired
        self.changelog: Changelog | None = None
        if job.changelog is not None:
            prefix = "sqlml_state" if durable else "__sqlml_state"
            result = f"{prefix}_{job.query_id}_result"
            self.changelog = Changelog(con, job.changelog, result, "" if durable else "TEMP ")
        self.kafka: KafkaSink | None = None
        if job.sink == Sink.KAFKA:
            assert job.sink_stream is not None
            self.kafka = KafkaSink(con, job.sink_stream, job.query_id, durable)

    def _input(self, k: int, spec: StreamInput) -> _Input:
        stream = spec.stream
        kept = [(n, t) for n, t in stream.columns if not spec.needed or n in spec.needed or n == stream.time]
        prefix = "sqlml_state" if self.durable else "__sqlml_state"
        return _Input(
            spec,
            state=f"{prefix}_{self.job.query_id}_{k}",
            kept=", ".join(quote(n) for n, _ in kept),
            kept_sql=", ".join(f"{quote(n)} {t}" for n, t in kept),
            columns=", ".join(quote(n) for n, _ in stream.columns),
            sessions=Sessions(spec.window, f"{prefix}_{self.job.query_id}_{k}")
            if spec.window and spec.window.kind == "SESSION"
            else None,
        )

    # -- checkpoint -------------------------------------------------------------------
    def _restore(self) -> None:
        if not self.durable:
            return
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (query_id VARCHAR PRIMARY KEY, query VARCHAR, progress VARCHAR, seq BIGINT)"
        )
        rows = self.con.execute(
            f"SELECT progress, seq FROM {CHECKPOINTS} WHERE query_id = ?", [self.job.query_id]
        ).fetchall()
        if not rows:
            return
        saved = json.loads(rows[0][0])
        for inp, offset, max_us, ended in zip(self.inputs, saved["offsets"], saved["max"], saved["ended"]):
            inp.offset, inp.max_us, inp.ended = offset, max_us, ended
        self.seq = int(rows[0][1])
        self.parts = int(saved.get("parts", 0))
        self.closed_up_to = self._watermark()

    def _save(self) -> None:
        if self.durable:
            progress = {
                "offsets": [i.offset for i in self.inputs],
                "max": [i.max_us for i in self.inputs],
                "ended": [i.ended for i in self.inputs],
                "parts": self.parts,
            }
            self.con.execute(
                f"INSERT OR REPLACE INTO {CHECKPOINTS} VALUES (?, ?, ?, ?)",
                [self.job.query_id, self.job.text, json.dumps(progress), self.seq],
            )

    def _watermark(self) -> int | None:
        """The query's watermark: the smallest of its inputs' (None: none yet, or all ended)."""
        marks = [i.watermark() for i in self.inputs if not i.ended]
        if any(m is None for m in marks) or not marks:
            return None
        return min(m for m in marks if m is not None)

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> Iterator[pa.Table]:
        self._restore()
        if self.kafka is not None:
            self.kafka.open()
        try:
            yield from self._run()
        finally:
            if self.kafka is not None:
                self.kafka.close()

    def _run(self) -> Iterator[pa.Table]:
        for inp in self.inputs:
            temp = "" if self.durable else "TEMP "
            if inp.keeps_state:
                self.con.execute(
                    f"CREATE {temp}TABLE IF NOT EXISTS {inp.state} ({inp.kept_sql}, __sqlml_seq BIGINT, __sqlml_wm BIGINT"
                    f"{', __sqlml_paired BOOLEAN' if self.job.outer_sql else ''}"
                    f"{f', {SID} BIGINT' if inp.sessions else ''})"
                )
                if inp.sessions is not None:
                    self.con.execute(inp.sessions.create_sql(temp))
            inp.source = self._open(inp)
            follows = isinstance(inp.source, (FileSource, KafkaSource))
            inp.batches = inp.source.batches(self.stop) if follows else inp.source.batches()
        if self.changelog is not None:  # every event, for as long as the query runs
            self.changelog.open(self._states())
        while not all(i.ended for i in self.inputs):
            for inp in self.inputs:
                if inp.ended:
                    continue
                assert inp.batches is not None
                batch = next(inp.batches, None)
                if batch is None and self.stop.is_set():
                    return  # stopped, not ended: open windows stay in the checkpointed state
                if batch is None:
                    inp.ended = True
                    batch = Batch(pa.table({}), pa.table({}), dict(inp.offset))
                yield from self._step(inp, batch)
                if self.stop.is_set():
                    return  # stopped, not ended: open windows stay in the checkpointed state
        yield from self._step(None, None)  # every source has ended: all windows fire

    def _open(self, inp: _Input) -> Any:
        stream = inp.stream
        if stream.connector == "python":
            return self.python_sources.setdefault(stream.name, PythonSource(self.con, stream))
        if stream.connector == "stdin":
            return StdinSource(self.con, stream)
        if stream.connector == "table":
            return TableSource(self.con, stream, inp.offset or None)
        if stream.connector == "kafka":
            return KafkaSource(self.con, stream, inp.offset or None)
        read = frozenset(inp.spec.needed) if inp.spec.needed and inp.spec.window is not None else None
        return FileSource(self.con, stream, inp.offset or None, read)

    def _step(self, inp: _Input | None, batch: Batch | None) -> list[pa.Table]:
        # one transaction per micro-batch where the output is durable; elsewhere nothing to protect
        with atomic(self.con) if self.durable else nullcontext():
            emitted: list[pa.Table] = []
            if inp is not None and batch is not None:
                inp.offset = batch.offset
                self._errors(inp, batch.errors)
                if batch.events.num_rows:
                    emitted += self._events(inp, batch)
                if batch.watermark is not None:  # the source keeps its own (Kafka's, per partition)
                    inp.max_us = batch.watermark + inp.stream.delay_us
            if any(i.keeps_state for i in self.inputs):
                final = all(i.ended for i in self.inputs)
                watermark = None if final else self._watermark()
                if final or watermark is not None:
                    emitted += self._fire(watermark)
                    self.closed_up_to = watermark
            self._save()
        if self.kafka is not None:  # the micro-batch has committed: now Kafka gets its output
            self.kafka.deliver()
        if self.on_batch is not None:
            self.on_batch(self.progress)
        return emitted

    def _errors(self, inp: _Input, errors: pa.Table) -> None:
        if errors.num_rows:
            self.con.register("__sqlml_errors", errors)
            self.con.execute(
                f"INSERT INTO {quote(inp.stream.errors_table)} SELECT raw, file, line, error FROM __sqlml_errors"
            )
            self.con.unregister("__sqlml_errors")
            self.progress.malformed += errors.num_rows

    def _events(self, inp: _Input, batch: Batch) -> list[pa.Table]:
        events, fetch = batch.events, batch.fetch
        self.progress.events += events.num_rows
        times = events.column(inp.stream.time).cast(pa.int64()).to_numpy()  # microseconds
        # the watermark at each event's arrival: the running maximum of this stream's events
        # before it, less the delay (or the source's own), and no later than the other streams'
        if batch.watermarks is not None:
            watermark = batch.watermarks
        else:
            start = NO_WATERMARK if inp.max_us is None else inp.max_us
            before = np.maximum.accumulate(np.concatenate(([start], times)))[:-1]
            watermark = np.where(before == NO_WATERMARK, NO_WATERMARK, before - inp.stream.delay_us)
            inp.max_us = int(times.max()) if inp.max_us is None else max(inp.max_us, int(times.max()))
        others = [o for o in self.inputs if o is not inp and not o.ended]
        if others:
            marks = [o.watermark() for o in others]
            ceiling = NO_WATERMARK if any(m is None for m in marks) else min(m for m in marks if m is not None)
            watermark = np.minimum(watermark, ceiling)
        events = events.append_column("__sqlml_seq", pa.array(np.arange(self.seq, self.seq + events.num_rows)))
        events = events.append_column("__sqlml_wm", pa.array(watermark))
        self.seq += events.num_rows
        self.con.register(BATCH + "_raw", events)
        try:
            if self.changelog is not None:
                return self._update(inp)
            if not inp.keeps_state:
                self.con.execute(f"CREATE OR REPLACE TEMP VIEW {BATCH} AS SELECT {inp.columns} FROM {BATCH}_raw")
                return self._emit()
            if inp.spec.over is not None or inp.spec.dedup is not None or inp.spec.probe or inp.spec.versions:
                self.con.execute(f"INSERT INTO {inp.state} {self._not_late(inp, times, watermark)}")
                return []
            if inp.spec.reach is not None:
                return self._pair(inp, times, watermark)
            if inp.spec.lookup is not None:
                self._keep_labels(inp)
                return []
            self._assign(inp, times, watermark, fetch)
            return []
        finally:
            self.con.unregister(BATCH + "_raw")

    def _states(self) -> list[State]:
        return [State(i.state, i.kept, i.kept_sql) for i in self.inputs]

    def _update(self, inp: _Input) -> list[pa.Table]:
        """An updating query's step: keep the new events, work out the changes, output them."""
        assert self.changelog is not None and self.job.changelog is not None
        if not self.changelog.step(self._states(), self.inputs.index(inp), f"{BATCH}_raw"):
            return []
        if self.job.sink == Sink.SELECT:
            table = self.con.sql(self.changelog.changes_sql()).to_arrow_table()
            self.progress.emitted += table.num_rows
            return [table]
        if self.job.changelog.insert_only:  # rows that stand: appended by any sink
            return self._emit()
        self.progress.emitted += self.changelog.upsert(self.job.target)
        return []

    def _assign(
        self, inp: _Input, times: np.ndarray, watermark: np.ndarray, fetch: Callable[[list[int]], pa.Table] | None
    ) -> None:
        """Record late events, and keep in state every event with a window still open at its arrival."""
        spec, time, delay = inp.spec.window, quote(inp.stream.time), inp.spec.fire_delay
        assert spec is not None
        raw = f"{BATCH}_raw"
        keep = f"INSERT INTO {inp.state} SELECT {inp.kept}, __sqlml_seq, __sqlml_wm FROM {raw}"
        if inp.sessions is not None:
            gap, fresh = spec.sizes[0], f"SELECT * FROM {raw}"
            if np.any(times + gap <= watermark):
                self._late(inp, f"SELECT *, {time} AS window_start, make_timestamp(epoch_us({time}) + {gap}) AS window_end "
                                f"FROM {raw} WHERE epoch_us({time}) + {gap} <= __sqlml_wm", fetch)  # fmt: skip
                fresh += f" WHERE epoch_us({time}) + {gap} > __sqlml_wm"
            for sql in inp.sessions.assign_sql(fresh):
                self.con.execute(sql)
            keep = (f"INSERT INTO {inp.state} SELECT {inp.kept}, __sqlml_seq, __sqlml_wm, __sqlml_new FROM ({fresh}) "
                    f"JOIN ({inp.sessions.placed_sql()}) ON __sqlml_seq = __sqlml_id")  # fmt: skip
        elif np.any(first_window_end(spec, times) + delay <= watermark):
            self._late(
                inp,
                f"SELECT * FROM ({window_sql(spec, f'SELECT * FROM {raw}')}) "
                f"WHERE epoch_us(window_end) + {delay} <= __sqlml_wm",
                fetch,
            )
            keep += f" WHERE {last_window_end_sql(spec, f'epoch_us({time})')} + {delay} > __sqlml_wm"
        self.con.execute(keep)

    def _label_reach_sql(self, inp: _Input) -> str:
        """When the last window a label event can reach fires (µs): the window input's last
        window holding an event at the label's time less `low`, plus the horizon."""
        window = self.inputs[0].spec
        assert inp.spec.lookup is not None and window.window is not None
        low = inp.spec.lookup[0]
        end = last_window_end_sql(window.window, f"(epoch_us({quote(inp.stream.time)}) - {low})")
        return f"{end} + {window.fire_delay}"

    def _keep_labels(self, inp: _Input) -> None:
        """Keep a label stream's events; one whose every window has fired is late."""
        raw, reach = f"{BATCH}_raw", self._label_reach_sql(inp)
        late = f"SELECT *, NULL::TIMESTAMP AS window_start, NULL::TIMESTAMP AS window_end FROM {raw} WHERE {reach} <= __sqlml_wm"
        if self.con.execute(f"SELECT count(*) FROM ({late})").fetchall()[0][0]:
            self._late(inp, late, None)
        self.con.execute(
            f"INSERT INTO {inp.state} SELECT {inp.kept}, __sqlml_seq, __sqlml_wm FROM {raw} WHERE {reach} > __sqlml_wm"
        )

    def _not_late(self, inp: _Input, times: np.ndarray, watermark: np.ndarray) -> str:
        """For OVER aggregates and interval joins, an event before the watermark at its arrival
        is late (see over.py): write those to `<stream>_late`; returns a query of the others."""
        raw, time = f"{BATCH}_raw", f"epoch_us({quote(inp.stream.time)})"
        keep = f"SELECT {inp.kept}, __sqlml_seq, __sqlml_wm FROM {raw}"
        if np.any(times < watermark):
            self._late(inp, f"SELECT *, NULL::TIMESTAMP AS window_start, NULL::TIMESTAMP AS window_end FROM {raw} "
                            f"WHERE {time} < __sqlml_wm", None)  # fmt: skip
            keep += f" WHERE {time} >= __sqlml_wm"
        return keep

    def _pair(self, inp: _Input, times: np.ndarray, watermark: np.ndarray) -> list[pa.Table]:
        """An interval join's step: this side's new events meet the other side's kept ones (a
        pair is output when its later event arrives), then wait in state themselves."""
        if inp.spec.reach is not None and inp.spec.reach >= FOREVER:  # a regular join: nothing is late
            keep = f"SELECT {inp.kept}, __sqlml_seq, __sqlml_wm FROM {BATCH}_raw"
        else:
            keep = self._not_late(inp, times, watermark)
        self._join_view(inp, f"({keep})")
        for other in self.inputs:
            if other is not inp:
                self._join_view(other, other.state)
        if not self.job.outer_sql:
            emitted = self._emit()
            self.con.execute(f"INSERT INTO {inp.state} {keep}")
            return emitted
        # a LEFT join: the pairs only (an event of the left side with no partner yet is output
        # with NULLs when it can no longer pair), and the left side's events marked paired
        self.con.execute(f"INSERT INTO {inp.state} SELECT *, FALSE FROM ({keep})")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE __sqlml_out AS SELECT * FROM ({self.job.outer_sql}) "
                         "WHERE __sqlml_seq_1 IS NOT NULL")  # fmt: skip
        self.con.execute(f"UPDATE {self.inputs[0].state} SET __sqlml_paired = TRUE "
                         "WHERE __sqlml_seq IN (SELECT __sqlml_seq_0 FROM __sqlml_out)")  # fmt: skip
        return self._emit()

    def _join_view(self, inp: _Input, rows: str, where: str = "TRUE") -> None:
        """An interval join side's view over `rows` (a table or a parenthesised query)."""
        k = self.inputs.index(inp)
        seq = f", __sqlml_seq AS __sqlml_seq_{k}" if self.job.outer_sql else ""
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {inp.spec.view} AS SELECT {inp.kept}{seq} FROM {rows} WHERE {where}"
        )

    def _unpaired(self, watermark: int | None) -> list[pa.Table]:
        """A LEFT interval join's left events that can no longer pair, output with NULLs."""
        left, right = self.inputs
        assert left.spec.reach is not None
        reach = (
            "TRUE" if watermark is None else f"epoch_us({quote(left.stream.time)}) + {left.spec.reach} < {watermark}"
        )
        self._join_view(left, left.state, f"{reach} AND NOT __sqlml_paired")
        self._join_view(right, right.state, "FALSE")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE __sqlml_out AS {self.job.outer_sql}")
        due = self.con.execute("SELECT count(*) FROM __sqlml_out").fetchall()[0][0]
        return self._emit() if due else []

    def _fire_dedup(self, inp: _Input, watermark: int | None) -> list[pa.Table]:
        """Output the first event of each key not seen yet among those the watermark has passed."""
        spec = inp.spec.dedup
        assert spec is not None
        seen = f"{inp.state}_seen"
        self.con.execute(spec.create_seen_sql(seen, inp.state, "" if self.durable else "TEMP "))
        view = spec.candidates_sql(inp.state, seen, f"{inp.kept}, __sqlml_seq", watermark)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {inp.spec.view} AS {view}")
        due = self.con.execute(f"SELECT count(*) FROM {inp.spec.view}").fetchall()[0][0]
        emitted = self._emit() if due else []
        self.con.execute(spec.remember_sql(seen))
        self.con.execute(spec.forget_sql(inp.state, watermark))
        return emitted

    def _fire_temporal(self, watermark: int | None) -> list[pa.Table]:
        """Output the events the watermark has passed, each with its key's version at its time;
        then forget them, and the versions no event still to come can need."""
        probe, versions = self.inputs
        assert versions.spec.versions is not None
        due = due_sql(probe.stream.time, watermark)
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {probe.spec.view} AS SELECT {probe.kept} FROM {probe.state} WHERE {due}"
        )
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {versions.spec.view} AS SELECT {versions.kept} FROM {versions.state}"
        )
        emitted = self._emit() if self.con.execute(f"SELECT count(*) FROM {probe.spec.view}").fetchall()[0][0] else []
        self.con.execute(f"DELETE FROM {probe.state} WHERE {due}")
        self.con.execute(forget_versions_sql(versions.state, versions.stream.time, versions.spec.versions, watermark))
        return emitted

    def _fire_over(self, inp: _Input, watermark: int | None) -> list[pa.Table]:
        """Output the rows of the events the watermark has passed since the last time, then
        forget the events no later frame reaches."""
        spec = inp.spec.over
        assert spec is not None
        view = spec.view_sql(inp.state, inp.kept, self.closed_up_to, watermark)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {OVER_VIEW} AS {view}")
        due = self.con.execute(f"SELECT count(*) FROM {OVER_VIEW} WHERE __sqlml_new").fetchall()[0][0]
        emitted = self._emit() if due else []
        self.con.execute(spec.forget_sql(inp.state, watermark))
        return emitted

    def _late(self, inp: _Input, late_sql: str, fetch: Callable[[list[int]], pa.Table] | None) -> None:
        """Write late (event, window) rows to `<stream>_late`, with the whole event even when the
        batch holds only the columns the query reads."""
        target = quote(inp.stream.late_table)
        if fetch is None:
            self.progress.late += self._count(
                f"INSERT INTO {target} SELECT {inp.columns}, window_start, window_end, make_timestamp(__sqlml_wm) FROM ({late_sql})"
            )
            return
        late = self.con.sql(
            f"SELECT __sqlml_line, window_start, window_end, __sqlml_wm FROM ({late_sql})"
        ).to_arrow_table()
        self.con.register("__sqlml_late", late)
        self.con.register("__sqlml_whole", fetch(pc.unique(late.column("__sqlml_line")).to_pylist()))
        try:
            whole = ", ".join(f"w.{quote(n)}" for n, _ in inp.stream.columns)
            self.progress.late += self._count(
                f"INSERT INTO {target} SELECT {whole}, l.window_start, l.window_end, make_timestamp(l.__sqlml_wm) "
                "FROM __sqlml_late AS l JOIN __sqlml_whole AS w USING (__sqlml_line)"
            )
        finally:
            self.con.unregister("__sqlml_late")
            self.con.unregister("__sqlml_whole")

    def _count(self, insert: str) -> int:
        """Run an INSERT (or COPY) and return how many rows it wrote."""
        return int(self.con.execute(insert).fetchall()[0][0])

    def _fire(self, watermark: int | None) -> list[pa.Table]:
        """Run the query over every window ending in (closed_up_to, watermark] (None: no bound),
        each event in the windows it was not late for; then drop events no open window needs."""
        if self.inputs[0].spec.over is not None:  # OVER aggregates read one stream
            return self._fire_over(self.inputs[0], watermark)
        if self.inputs[0].spec.dedup is not None:
            return self._fire_dedup(self.inputs[0], watermark)
        if self.inputs[0].spec.probe:
            return self._fire_temporal(watermark)
        if self.inputs[0].spec.reach is not None:  # an interval join: forget who can no longer pair
            emitted = self._unpaired(watermark) if self.job.outer_sql else []
            for inp in self.inputs:
                assert inp.spec.reach is not None
                forget = forget_sql(inp.state, inp.stream.time, inp.spec.reach, watermark)
                if forget:
                    self.con.execute(forget)
            return emitted
        deletes = []
        for inp in self.inputs:
            spec, delay = inp.spec.window, inp.spec.fire_delay
            if inp.spec.lookup is not None:  # a label stream: all it keeps, then what no window can reach
                self.con.execute(f"CREATE OR REPLACE TEMP VIEW {inp.spec.view} AS SELECT {inp.kept} FROM {inp.state}")
                done = "TRUE" if watermark is None else f"{self._label_reach_sql(inp)} <= {watermark}"
                deletes.append(f"DELETE FROM {inp.state} WHERE {done}")
            if spec is None:
                continue
            closed = "TRUE" if watermark is None else f"epoch_us(window_end) + {delay} <= {watermark}"
            expanded = window_sql(spec, f"SELECT * FROM {inp.state}")
            if inp.sessions is not None:
                done = f"{inp.spec.view}_closed"
                self.con.execute(f"CREATE OR REPLACE TEMP TABLE {done} AS {inp.sessions.closed_sql(watermark)}")
                self.con.execute(f"CREATE OR REPLACE TEMP VIEW {inp.spec.view} AS {inp.sessions.fired_sql(done)}")
                deletes += inp.sessions.forget_sql(done)
                continue
            new = "TRUE" if self.closed_up_to is None else f"epoch_us(window_end) + {delay} > {self.closed_up_to}"
            # a view: expanding windows again is cheaper than writing the expanded rows down
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {inp.spec.view} AS SELECT * EXCLUDE (__sqlml_seq, __sqlml_wm) FROM ({expanded}) "
                f"WHERE {closed} AND {new} AND epoch_us(window_end) + {delay} > __sqlml_wm"
            )
            done = (
                "TRUE"
                if watermark is None
                else f"{last_window_end_sql(spec, f'epoch_us({quote(inp.stream.time)})')} + {delay} <= {watermark}"
            )
            deletes.append(f"DELETE FROM {inp.state} WHERE {done}")
        views = " UNION ALL ".join(
            f"SELECT window_start, window_end FROM {i.spec.view}" for i in self.inputs if i.spec.window
        )
        windows = self.con.execute(f"SELECT count(*) FROM (SELECT DISTINCT * FROM ({views}))").fetchall()[0][0]
        emitted = self._emit() if windows else []
        self.progress.windows += windows
        for delete in deletes:
            self.con.execute(delete)
        return emitted

    def _emit(self) -> list[pa.Table]:
        """Send the query's output to the sink. COPY parts are numbered by a counter kept in the
        checkpoint, so a resumed run writes the same names and overwrites, never duplicates."""
        job = self.job
        if job.sink == Sink.CALL:
            table = self.con.sql(job.query_sql).to_arrow_table()
            assert self.callback is not None
            self.callback(table)
            return []
        if job.sink == Sink.SELECT:
            table = self.con.sql(job.query_sql).to_arrow_table()
            self.progress.emitted += table.num_rows
            return [table] if table.num_rows else []
        if job.sink == Sink.INSERT:
            self.progress.emitted += self._count(f"INSERT INTO {job.target} {job.query_sql}")
            return []
        if self.kafka is not None:  # numbered by the same checkpointed counter as COPY's parts
            self.parts += 1
            self.progress.emitted += self.kafka.stage(job.query_sql, self.parts)
            return []
        suffix = "parquet" if "PARQUET" in job.copy_options.upper() else "csv"
        self.parts += 1
        path = f"{job.target.rstrip('/')}/part-{self.parts:06d}.{suffix}"
        self.progress.emitted += self._count(f"COPY ({job.query_sql}) TO '{path}' {job.copy_options}")
        return []
