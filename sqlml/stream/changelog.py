"""Updating queries over streams, as Flink runs them: GROUP BY without a window, Top-N and
keep-last ROW_NUMBER filters, and joins in which a stream's events meet each other. Their
result changes as events arrive, so their output is a changelog: `+I` a new row, `-U` and
`+U` a row before and after an update, `-D` a row gone.

Every event counts as soon as it arrives (no watermark is waited for and none is late, as in
Flink, where these operators ignore event time). State keeps the events the query reads, and
the current result. Each micro-batch runs the query again over the events of the keys it
touched (all of them when the query has no such key) and compares with the result it had:
rows gone are retractions, rows new are insertions. So the result after any micro-batch is
the batch query over the events so far, exactly, whatever the aggregate (a median, COUNT
DISTINCT) and whatever the micro-batch size.

An insert-only query (inner joins, filters, projections: a stream joined with
itself, say) never retracts a row, so its new rows are worked out from the new events alone:
with the new events in stream reference i, the references before it read the events before
them and those after it all events (the delta rule of incremental view maintenance), each new
row found once.

A key partitions the work when the query's rows for one value of some stream columns depend
only on that value's events: `GROUP BY k` over the stream's events, or `ROW_NUMBER() OVER
(PARTITION BY k ...)`, with `k` in the output. An upsert key (the GROUP BY columns, or the
partition of a keep-last) pairs a retraction with its insertion as `-U`/`+U`; without one they
are `-D` and `+I`.

>>> spec = ChangelogSpec("SELECT ...", ("k", "n"), (0,), key=("k",), partition=("k",), carried=("k",))
>>> print(spec.op_sql("__sqlml_plus", "__sqlml_minus", "+U", "+I"))
CASE WHEN EXISTS (SELECT 1 FROM __sqlml_minus AS o WHERE o."k" IS NOT DISTINCT FROM c."k") THEN '+U' ELSE '+I' END
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import duckdb

from sqlml.errors import ExecutionError
from sqlml.features import quote

NEW, PLUS, MINUS, TOUCHED = "__sqlml_new", "__sqlml_plus", "__sqlml_minus", "__sqlml_touched"
VIEW = "__sqlml_updating_"  # + the stream reference's number: the view the query reads it by


@dataclass(frozen=True)
class ChangelogSpec:
    """What binding found out about an updating query.

    `sql`: the query, each stream reference j read as the view VIEW + j; `columns`: its output
    columns, in order. `insert_only`: inner joins and filters only, whose rows once out
    stand (then the new rows are worked out from the new events alone). `key`: the upsert key among them (None: unknown;
    an empty tuple: the query has one row). `partition`: stream columns whose values partition
    the result, and `carried`: the output columns holding them (both empty: recompute all).
    `sink_key`: for an INSERT, the output columns that land in the target's PRIMARY KEY,
    `target_key` those key columns, and `table` the target."""

    sql: str
    columns: tuple[str, ...]
    occurrences: tuple[int, ...]  # for each stream reference (view VIEW + j), the input it reads
    insert_only: bool = False
    key: tuple[str, ...] | None = None
    partition: tuple[str, ...] = ()
    carried: tuple[str, ...] = ()
    sink_key: tuple[str, ...] = ()
    target_key: tuple[str, ...] = ()
    table: str = ""  # the INSERT's target table (SQL)

    def match(self, left: str, right: str, left_cols: tuple[str, ...], right_cols: tuple[str, ...]) -> str:
        """`left` and `right` agree on the given columns (NULL equal to NULL)."""
        pairs = [f"{left}.{quote(a)} IS NOT DISTINCT FROM {right}.{quote(b)}" for a, b in zip(left_cols, right_cols)]
        return " AND ".join(pairs) or "TRUE"

    def op_sql(self, rows: str, other: str, paired: str, alone: str) -> str:
        """The op of each row `c` of `rows`: `paired` when `other` has a row of its upsert key."""
        if self.key is None:
            return f"'{alone}'"
        match = self.match("o", "c", self.key, self.key)
        return f"CASE WHEN EXISTS (SELECT 1 FROM {other} AS o WHERE {match}) THEN '{paired}' ELSE '{alone}' END"


class State(NamedTuple):
    """One stream's kept events: the table, its columns (quoted, comma-separated) and their
    definitions."""

    table: str
    names: str
    definitions: str


class Changelog:
    """The runner's side of an updating query: `step` keeps a micro-batch's events and works out
    the changes, which the sink reads as `changes_sql()` (with an op column), applies with
    `upsert`, or (insert-only) appends from PLUS."""

    def __init__(self, con: duckdb.DuckDBPyConnection, spec: ChangelogSpec, result: str, temp: str) -> None:
        self.con, self.spec, self.result, self.temp = con, spec, result, temp

    def open(self, states: list[State]) -> None:
        """Create the state tables and the result."""
        for state in states:
            self.con.execute(f"CREATE {self.temp}TABLE IF NOT EXISTS {state.table} ({state.definitions})")
        if not self.spec.insert_only:
            self._views(states, lambda j: "")
            self.con.execute(
                f"CREATE {self.temp}TABLE IF NOT EXISTS {self.result} AS SELECT * FROM ({self.spec.sql}) WHERE FALSE"
            )

    def _views(self, states: list[State], rows: Callable[[int], str]) -> None:
        """Point each stream reference's view at `rows(j)`, or (when empty) at its whole state."""
        for j, k in enumerate(self.spec.occurrences):
            source = rows(j) or f"SELECT {states[k].names} FROM {states[k].table}"
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {VIEW}{j} AS {source}")

    def step(self, states: list[State], arrived: int, batch: str) -> int:
        """Keep the events `batch` brought to input `arrived` and work out the changes in PLUS and
        MINUS; returns how many there are."""
        if self.spec.insert_only:
            return self._delta(states, arrived, batch)
        spec, con = self.spec, self.con
        state = states[arrived]
        con.execute(f"INSERT INTO {state.table} SELECT {state.names} FROM {batch}")
        partitioned = bool(spec.partition)
        if partitioned:
            keys = ", ".join(quote(p) for p in spec.partition)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {TOUCHED} AS SELECT DISTINCT {keys} FROM {batch}")
            mine = f"EXISTS (SELECT 1 FROM {TOUCHED} AS t WHERE {spec.match('t', 's', spec.partition, spec.partition)})"
            events = f"SELECT {state.names} FROM {state.table} AS s WHERE {mine}"  # the touched keys' events
            self._views(states, lambda j: events)
        else:
            self._views(states, lambda j: "")
        old = f"SELECT * FROM {self.result}"
        if partitioned:
            touched = (
                f"EXISTS (SELECT 1 FROM {TOUCHED} AS t WHERE {spec.match('t', 'r', spec.partition, spec.carried)})"
            )
            old = f"SELECT * FROM {self.result} AS r WHERE {touched}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {NEW} AS {spec.sql}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {MINUS} AS {old} EXCEPT ALL SELECT * FROM {NEW}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {PLUS} AS SELECT * FROM {NEW} EXCEPT ALL {old}")
        changed = int(
            con.execute(f"SELECT (SELECT count(*) FROM {MINUS}) + (SELECT count(*) FROM {PLUS})").fetchall()[0][0]
        )
        if changed:
            con.execute(
                f"DELETE FROM {self.result} AS r WHERE {touched}" if partitioned else f"DELETE FROM {self.result}"
            )
            con.execute(f"INSERT INTO {self.result} SELECT * FROM {NEW}")
        return changed

    def _delta(self, states: list[State], arrived: int, batch: str) -> int:
        """An insert-only query (inner joins, filters): the new rows are those with a new
        event in some reference of the arrived stream: reference i reads the new events, the
        references before it the state before them, those after it the state with them."""
        state = states[arrived]
        refs = [j for j, k in enumerate(self.spec.occurrences) if k == arrived]
        self._views(states, lambda j: "")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {PLUS} AS SELECT * FROM ({self.spec.sql}) WHERE FALSE")
        for i in refs:

            def rows(j: int, i: int = i) -> str:
                if self.spec.occurrences[j] != arrived or j < i:
                    return ""
                new = f"SELECT {state.names} FROM {batch}"
                return new if j == i else f"SELECT {state.names} FROM {state.table} UNION ALL {new}"

            self._views(states, rows)
            self.con.execute(f"INSERT INTO {PLUS} {self.spec.sql}")
        self.con.execute(f"INSERT INTO {state.table} SELECT {state.names} FROM {batch}")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {MINUS} AS SELECT * FROM {PLUS} WHERE FALSE")
        return int(self.con.execute(f"SELECT count(*) FROM {PLUS}").fetchall()[0][0])

    def changes_sql(self) -> str:
        """The last step's changes with Flink's op column: each key's retraction just before
        its insertion (without a key, retractions first), in key order."""
        spec = self.spec
        ranked = (
            f"SELECT 0 AS __sqlml_r, {spec.op_sql(MINUS, PLUS, '-U', '-D')} AS op, c.* FROM {MINUS} AS c UNION ALL "
            f"SELECT 1, {spec.op_sql(PLUS, MINUS, '+U', '+I')}, c.* FROM {PLUS} AS c"
        )
        key = [quote(c) for c in spec.key or ()]
        order = [*key, "__sqlml_r"] if key else ["__sqlml_r", *(quote(c) for c in spec.columns)]
        return f"SELECT * EXCLUDE (__sqlml_r) FROM ({ranked}) ORDER BY {', '.join(order)}"

    def upsert(self, into: str) -> int:
        """Apply the last step's changes to a table with a PRIMARY KEY (Flink's upsert sink):
        a key whose row is gone is deleted, a new or changed row replaces its key's."""
        spec, con, table = self.spec, self.con, self.spec.table
        doubled = con.execute(
            f"SELECT {', '.join(quote(c) for c in spec.sink_key)}, count(*) FROM {PLUS} GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
        ).fetchall()
        if doubled:
            key = ", ".join(f"{k} = {v!r}" for k, v in zip(spec.target_key, doubled[0]))
            raise ExecutionError(
                f"The query gives {doubled[0][-1]} rows for one PRIMARY KEY of '{table}' ({key}): an upsert keeps one.",
                hint=f"Make the query's rows unique on the columns that fill {', '.join(spec.target_key)} "
                "(GROUP BY them), or give the table the query's own key.",
            )
        gone = spec.match("m", "p", spec.sink_key, spec.sink_key)
        on = " AND ".join(f"{table_col} = m.{quote(c)}" for table_col, c in zip(
            (f"{table}.{quote(k)}" for k in spec.target_key), spec.sink_key))  # fmt: skip
        deleted = int(con.execute(
            f"DELETE FROM {table} USING {MINUS} AS m WHERE {on} AND NOT EXISTS (SELECT 1 FROM {PLUS} AS p WHERE {gone})"
        ).fetchall()[0][0])  # fmt: skip
        # in key order: DuckDB's index takes sorted keys about twice as fast
        order = ", ".join(quote(c) for c in spec.sink_key)
        inserted = int(
            con.execute(f"INSERT OR REPLACE INTO {into} SELECT * FROM {PLUS} ORDER BY {order}").fetchall()[0][0]
        )
        return deleted + inserted
