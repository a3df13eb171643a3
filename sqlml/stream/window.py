"""Flink's window table functions as DuckDB SQL.

`TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), size))`, `HOP(..., slide, size)`,
`CUMULATE(..., step, max_size)` and `SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), gap)`
each become a query over `t` that adds `window_start`, `window_end` and `window_time`
(= window_end - 1 ms, Flink's convention). Windows are aligned to the epoch, as Flink's.
All sizes are whole microseconds. The same SQL serves batch tables and stream state.

>>> import duckdb
>>> sql = window_sql(WindowSpec("TUMBLE", "ts", (60_000_000,)), "SELECT TIMESTAMP '2025-01-01 00:01:30' AS ts")
>>> [str(v) for v in duckdb.sql(sql).fetchall()[0]]
['2025-01-01 00:01:30', '2025-01-01 00:01:00', '2025-01-01 00:02:00', '2025-01-01 00:01:59.999000']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sqlml.features import quote


@dataclass(frozen=True)
class WindowSpec:
    """A window function: its kind, time column, sizes in microseconds (in KINDS order) and,
    for SESSION, the partition columns."""

    kind: str
    time: str
    sizes: tuple[int, ...]
    partition: tuple[str, ...] = ()


def floor_div(a: str, b: int) -> str:
    """Integer floor division in SQL (DuckDB's // truncates toward zero)."""
    return f"((({a}) - (((({a}) % {b}) + {b}) % {b})) // {b})"


def _bounds(start: str, end: str) -> str:
    return (
        f"make_timestamp({start}) AS window_start, make_timestamp({end}) AS window_end, "
        f"make_timestamp({end} - 1000) AS window_time"
    )


def window_sql(spec: WindowSpec, source_sql: str) -> str:
    """A query over `source_sql` that adds the window columns, one row per (row, window)."""
    e = "__sqlml_e"
    base = f"SELECT *, epoch_us({quote(spec.time)}) AS {e} FROM ({source_sql}) AS __sqlml_src"
    if spec.kind == "TUMBLE":
        (size,) = spec.sizes
        return (
            f"SELECT * EXCLUDE ({e}, __sqlml_ws), {_bounds('__sqlml_ws', f'__sqlml_ws + {size}')} "
            f"FROM (SELECT *, {floor_div(e, size)} * {size} AS __sqlml_ws FROM ({base}))"
        )
    if spec.kind == "HOP":
        slide, size = spec.sizes
        return (
            f"SELECT * EXCLUDE ({e}, __sqlml_m), {_bounds(f'__sqlml_m * {slide}', f'__sqlml_m * {slide} + {size}')} "
            f"FROM (SELECT *, unnest(generate_series({floor_div(f'{e} - {size}', slide)} + 1, {floor_div(e, slide)})) "
            f"AS __sqlml_m FROM ({base}))"
        )
    if spec.kind == "CUMULATE":
        step, max_size = spec.sizes
        return (
            f"SELECT * EXCLUDE ({e}, __sqlml_b, __sqlml_j), {_bounds('__sqlml_b', f'__sqlml_b + __sqlml_j * {step}')} "
            f"FROM (SELECT *, unnest(generate_series({floor_div(f'{e} - __sqlml_b', step)} + 1, {max_size // step})) "
            f"AS __sqlml_j FROM (SELECT *, {floor_div(e, max_size)} * {max_size} AS __sqlml_b FROM ({base})))"
        )
    (gap,) = spec.sizes
    keys = ", ".join(quote(k) for k in spec.partition)
    by = f"PARTITION BY {keys} " if keys else ""
    session = f"(PARTITION BY {keys + ', ' if keys else ''}__sqlml_sid)"
    return (
        f"SELECT * EXCLUDE ({e}, __sqlml_new, __sqlml_sid), "
        f"{_bounds(f'min({e}) OVER {session}', f'max({e}) OVER {session} + {gap}')} "
        f"FROM (SELECT *, sum(__sqlml_new) OVER ({by}ORDER BY {e} ROWS UNBOUNDED PRECEDING) AS __sqlml_sid "
        f"FROM (SELECT *, CASE WHEN {e} - lag({e}) OVER ({by}ORDER BY {e}) < {gap} THEN 0 ELSE 1 END AS __sqlml_new "
        f"FROM ({base})))"
    )


def first_window_end(spec: WindowSpec, times: np.ndarray) -> np.ndarray:
    """For each event time (microseconds), the earliest end among the windows it belongs to:
    the event is late for some window exactly when this end is at or before its watermark."""
    if spec.kind == "TUMBLE":
        size = spec.sizes[0]
        return times // size * size + size
    if spec.kind == "HOP":
        slide, size = spec.sizes
        return ((times - size) // slide + 1) * slide + size
    step, max_size = spec.sizes  # CUMULATE: the smallest window past the event
    base = times // max_size * max_size
    return base + ((times - base) // step + 1) * step


def last_window_end_sql(spec: WindowSpec, e: str) -> str:
    """SQL for the end of the last window an event at `e` (microseconds) belongs to: once the
    watermark passes it, the event is needed by no open window."""
    if spec.kind == "TUMBLE":
        size = spec.sizes[0]
        return f"({floor_div(e, size)} * {size} + {size})"
    if spec.kind == "HOP":
        slide, size = spec.sizes
        return f"({floor_div(e, slide)} * {slide} + {size})"
    max_size = spec.sizes[1]
    return f"({floor_div(e, max_size)} * {max_size} + {max_size})"
