"""Deduplication over a stream (Flink's keep-first-row): `SELECT ... FROM (SELECT *,
ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM s) WHERE rn = 1` outputs each key's
first event by event time, once.

Events wait in state until the watermark is past their time (as in over.py: an event before
the watermark at its arrival is late and goes to `<stream>_late`); then, of those the watermark
has passed, each key not seen before outputs its first (ties in arrival order), and the key is
remembered. So the output is append-only and equals the batch query's at any micro-batch size.
Flink emits the first row at once and retracts it if an earlier one arrives; sqlml waits for
the watermark instead, so that a row once output stands. Memory: the keys seen, as in Flink.

>>> spec = DedupSpec("ts", ("user_id",), None)
>>> spec.key
'row(user_id)'
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlml.features import quote

VIEW = "__sqlml_dedup"


@dataclass(frozen=True)
class DedupSpec:
    """The time column, the PARTITION BY expressions' SQL, and the inner query's WHERE (SQL)."""

    time: str
    partition: tuple[str, ...]
    where: str | None

    @property
    def key(self) -> str:
        return f"row({', '.join(self.partition)})"

    def create_seen_sql(self, seen: str, state: str, temp: str) -> str:
        return f"CREATE {temp}TABLE IF NOT EXISTS {seen} AS SELECT {self.key} AS __sqlml_key FROM {state} WHERE FALSE"

    def candidates_sql(self, state: str, seen: str, columns: str, upto: int | None) -> str:
        """The events the watermark has passed whose key has not output a row yet."""
        bound = "" if upto is None else f" AND epoch_us({quote(self.time)}) < {upto}"
        return (
            f"SELECT {columns} FROM {state} AS __s WHERE NOT EXISTS (SELECT 1 FROM {seen} "
            f"WHERE {seen}.__sqlml_key IS NOT DISTINCT FROM {self.key}){bound}"
        )

    def remember_sql(self, seen: str) -> str:
        """Remember the keys that have just output their row."""
        where = f" WHERE {self.where}" if self.where else ""
        return f"INSERT INTO {seen} SELECT DISTINCT {self.key} FROM {VIEW}{where}"

    def forget_sql(self, state: str, upto: int | None) -> str:
        if upto is None:
            return f"DELETE FROM {state}"
        return f"DELETE FROM {state} WHERE epoch_us({quote(self.time)}) < {upto}"
