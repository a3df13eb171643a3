"""Temporal joins against a stream of versions, as Flink's event-time temporal join:
`SELECT ... FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.currency =
r.currency`, where each event of `rates` is a new version of its key's row, valid from its time.

An order waits in state until the watermark (the smaller of the two streams') is past its
time; by then every version that can be valid at its time has arrived (a version arriving
later, before the watermark, is late), and the order meets the latest version of its key at or
before its time (DuckDB's ASOF JOIN), never a later one. Versions are kept while an order still
to come can need them: of those the watermark has passed, only each key's latest. An event of
either stream before the watermark at its arrival is late (`<stream>_late`), as in over.py.

>>> print(forget_versions_sql("v", "ts", ("currency",), 5))
DELETE FROM v WHERE epoch_us("ts") < 5 AND EXISTS (SELECT 1 FROM v AS n WHERE n."currency" IS NOT DISTINCT FROM v."currency" AND epoch_us(n."ts") < 5 AND n."ts" > v."ts")
"""

from __future__ import annotations

from sqlml.features import quote


def due_sql(time: str, watermark: int | None) -> str:
    """The events the watermark has passed (all of them at the end)."""
    return "TRUE" if watermark is None else f"epoch_us({quote(time)}) < {watermark}"


def forget_versions_sql(state: str, time: str, keys: tuple[str, ...], watermark: int | None) -> str:
    """Drop the versions a later one of the same key, also passed by the watermark, replaces."""
    if watermark is None:
        return f"DELETE FROM {state}"
    same = " AND ".join(f"n.{quote(k)} IS NOT DISTINCT FROM {state}.{quote(k)}" for k in keys)
    t = quote(time)
    return (
        f"DELETE FROM {state} WHERE epoch_us({t}) < {watermark} AND EXISTS (SELECT 1 FROM {state} AS n WHERE "
        f"{same} AND epoch_us(n.{t}) < {watermark} AND n.{t} > {state}.{t})"
    )
