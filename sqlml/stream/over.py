"""OVER aggregations over a stream, as Flink runs them: one output row per event, emitted when
the watermark passes the event's time, over a frame that looks back from it.

`agg(...) OVER (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND
CURRENT ROW)` (or `ROWS BETWEEN n PRECEDING AND CURRENT ROW`). State keeps the events the
watermark has not passed and, of those it has, only what a later event's frame can reach: the
last `size` of event time (RANGE), or the last n events of each partition (ROWS). Each time
the watermark moves, the query runs over that state with the events it passed marked new,
and only their rows are output.

Times compare as Flink's do, whose watermark is one millisecond behind sqlml's (the largest
time less the delay, less 1 ms): an event's row is output once the watermark is past its
time, and an event whose time is before the watermark at its arrival is late (Flink drops it;
sqlml keeps it in `<stream>_late`), so events with the largest time so far are never late.
Events with equal times are ordered by arrival in a ROWS frame, and are peers in a RANGE frame.

>>> spec = OverSpec("ts", "RANGE", 3_600_000_000, ())
>>> spec.forget_sql("state", 7_200_000_000)
'DELETE FROM state WHERE epoch_us("ts") < 3600000000'
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from sqlml.features import quote
from sqlml.stream.shapes import reads_star

NEW = "__sqlml_new"  # true for the rows to output this time
SEQ = "__sqlml_seq"  # arrival order


@dataclass(frozen=True)
class OverSpec:
    """The one window of a query's OVER aggregates: time column, frame kind ('RANGE': `size`
    microseconds of event time; 'ROWS': `size` events) and the PARTITION BY expressions' SQL."""

    time: str
    kind: str
    size: int
    partition: tuple[str, ...]

    def view_sql(self, state: str, columns: str, done: int | None, upto: int | None) -> str:
        """The rows the query reads: kept events before `upto` (the watermark; None: all), those
        not before `done` (the previous one; None: all) marked new."""
        time = f"epoch_us({quote(self.time)})"
        new = "TRUE" if done is None else f"{time} >= {done}"
        bound = "" if upto is None else f" WHERE {time} < {upto}"
        return f"SELECT {columns}, {SEQ}, {new} AS {NEW} FROM {state}{bound}"

    def forget_sql(self, state: str, upto: int | None) -> str:
        """Drop the events no later event's frame can reach, once the watermark is at `upto`."""
        time = f"epoch_us({quote(self.time)})"
        if upto is None:
            return f"DELETE FROM {state}"
        if self.kind == "RANGE":  # a later row's frame starts at or after upto - size
            return f"DELETE FROM {state} WHERE {time} < {upto - self.size}"
        partition = f"PARTITION BY {', '.join(self.partition)} " if self.partition else ""
        ranked = (
            f"SELECT {SEQ}, row_number() OVER ({partition}ORDER BY {quote(self.time)} DESC, {SEQ} DESC) AS __r "
            f"FROM {state} WHERE {time} < {upto}"
        )
        return f"DELETE FROM {state} WHERE {SEQ} IN (SELECT {SEQ} FROM ({ranked}) WHERE __r > {self.size})"


def prepare(query: exp.Select, spec: OverSpec) -> str:
    """Make the query's AST run as it must each time (ROWS frames ordered by arrival among equal
    times, the new-row mark selected); returns the hidden columns for `only_new`."""
    star = reads_star(query)
    if spec.kind == "ROWS":
        for window in query.find_all(exp.Window):
            window.args["order"].append("expressions", exp.Ordered(this=exp.column(SEQ)))
    if not star:
        query.select(exp.column(NEW), copy=False)
    return f"{NEW}, {SEQ}" if star else NEW


def only_new(sql: str, hidden: str) -> str:
    """The query's rows for the new events, without the hidden columns."""
    return f"SELECT * EXCLUDE ({hidden}) FROM ({sql}) WHERE {NEW}"
