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

A key partitions the work when the query's rows for one value of some stream columns depend
only on that value's events: `GROUP BY k` over the stream's events, or `ROW_NUMBER() OVER
(PARTITION BY k ...)`, with `k` in the output. An upsert key (the GROUP BY columns, or the
partition of a keep-last) pairs a retraction with its insertion as `-U`/`+U`; without one they
are `-D` and `+I`.

>>> spec = ChangelogSpec(("k", "n"), key=("k",), partition=("k",), carried=("k",))
>>> spec.op_sql("__sqlml_plus", "__sqlml_minus", "+U", "+I")
"CASE WHEN EXISTS (SELECT 1 FROM __sqlml_minus AS o WHERE o.\\"k\\" IS NOT DISTINCT FROM c.\\"k\\") THEN '+U' ELSE '+I' END"
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from sqlml.errors import ExecutionError
from sqlml.features import quote

NEW, PLUS, MINUS, TOUCHED = "__sqlml_new", "__sqlml_plus", "__sqlml_minus", "__sqlml_touched"


@dataclass(frozen=True)
class ChangelogSpec:
    """What binding found out about an updating query.

    `columns`: its output columns, in order. `key`: the upsert key among them (None: unknown;
    an empty tuple: the query has one row). `partition`: stream columns whose values partition
    the result, and `carried`: the output columns holding them (both empty: recompute all).
    `sink_key`: for an INSERT, the output columns that land in the target's PRIMARY KEY,
    `target_key` those key columns, and `table` the target."""

    columns: tuple[str, ...]
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


class Changelog:
    """The runner's side of an updating query: `step` recomputes and compares, then the sink
    reads the changes as `changes_sql()` (with an op column) or applies them with `upsert`."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, spec: ChangelogSpec, query_sql: str, result: str, temp: str
    ) -> None:
        self.con, self.spec, self.query_sql, self.result, self.temp = con, spec, query_sql, result, temp

    def open(self) -> None:
        self.con.execute(
            f"CREATE {self.temp}TABLE IF NOT EXISTS {self.result} AS SELECT * FROM ({self.query_sql}) WHERE FALSE"
        )

    def step(self, views: list[tuple[str, str, str]], batch: str | None) -> int:
        """Recompute after new events: `views` are (view, state table, columns) for each
        stream; `batch` the new events (None: recompute all). Returns how many rows changed."""
        spec, con = self.spec, self.con
        partitioned = batch is not None and bool(spec.partition)
        if partitioned:
            keys = ", ".join(quote(p) for p in spec.partition)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {TOUCHED} AS SELECT DISTINCT {keys} FROM {batch}")
        for view, state, columns in views:
            where = ""
            if partitioned:
                where = f" WHERE EXISTS (SELECT 1 FROM {TOUCHED} AS t WHERE {spec.match('t', 's', spec.partition, spec.partition)})"
            con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {columns} FROM {state} AS s{where}")
        old = f"SELECT * FROM {self.result}"
        if partitioned:
            touched = (
                f"EXISTS (SELECT 1 FROM {TOUCHED} AS t WHERE {spec.match('t', 'r', spec.partition, spec.carried)})"
            )
            old = f"SELECT * FROM {self.result} AS r WHERE {touched}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {NEW} AS {self.query_sql}")
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
        inserted = int(con.execute(f"INSERT OR REPLACE INTO {into} SELECT * FROM {PLUS}").fetchall()[0][0])
        return deleted + inserted
