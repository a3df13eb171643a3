"""Session windows kept incrementally over a stream.

Each event in state carries the id of its session (`__sqlml_sid`), and a table beside the
state holds each open session once: its key, id, first and last event time (µs). A
micro-batch's events are sessionized together with the open sessions alone, each standing for
all its events as one interval, never with the events already placed: a new event joins a
session when it is within the gap of it, and two sessions it bridges merge (their events are
renumbered, the only update of events in state). So each event is sessionized once, as in the
batch query, instead of once per micro-batch while its session stays open. A session fires when
the watermark passes its last event plus the gap; its events are read back by id.

A session's id is the arrival number of its first event when it opened (or the id of the first
session it merged with), so ids never collide.

>>> from sqlml.stream.window import WindowSpec
>>> s = Sessions(WindowSpec("SESSION", "ts", (10_000_000,), ("user_id",)), "state")
>>> s.closed_sql(None)
'SELECT * FROM state_sessions'
"""

from __future__ import annotations

from sqlml.features import quote
from sqlml.stream.window import WindowSpec

SID = "__sqlml_sid"


class Sessions:
    """The SQL of one stream's incremental sessions, kept in `<state>_sessions`."""

    def __init__(self, spec: WindowSpec, state: str) -> None:
        self.spec, self.state, self.table = spec, state, f"{state}_sessions"
        self.gap = spec.sizes[0]
        self.keys = [quote(k) for k in spec.partition]

    def create_sql(self, temp: str) -> str:
        keys = "".join(f"{k}, " for k in self.keys)
        return (
            f"CREATE {temp}TABLE IF NOT EXISTS {self.table} AS SELECT {keys}0::BIGINT AS {SID}, 0::BIGINT AS __sqlml_s, "
            f"0::BIGINT AS __sqlml_l FROM {self.state} WHERE FALSE"
        )

    def assign_sql(self, events: str) -> list[str]:
        """Statements placing new events (`events`: a query of state rows without their session)
        into sessions: the merged sessions in `__sqlml_merged`, then state and sessions updated."""
        keys = "".join(f"{k}, " for k in self.keys)
        by = f"PARTITION BY {', '.join(self.keys)} " if self.keys else ""
        items = (
            f"SELECT {keys}__sqlml_seq AS __sqlml_id, epoch_us({quote(self.spec.time)}) AS __sqlml_s, "
            f"epoch_us({quote(self.spec.time)}) AS __sqlml_l, TRUE AS __sqlml_fresh FROM ({events}) "
            f"UNION ALL SELECT {keys}{SID}, __sqlml_s, __sqlml_l, FALSE FROM {self.table}"
        )
        breaks = (
            f"SELECT *, CASE WHEN __sqlml_s - max(__sqlml_l) OVER ({by}ORDER BY __sqlml_s, __sqlml_id ROWS BETWEEN "
            f"UNBOUNDED PRECEDING AND 1 PRECEDING) < {self.gap} THEN 0 ELSE 1 END AS __sqlml_brk FROM ({items})"
        )
        # a session's id: its first item's (ordered by start), carried forward to the others
        merged = (
            f"CREATE OR REPLACE TEMP TABLE __sqlml_merged AS SELECT * EXCLUDE (__sqlml_brk), last_value(CASE WHEN "
            f"__sqlml_brk = 1 THEN __sqlml_id END IGNORE NULLS) OVER ({by}ORDER BY __sqlml_s, __sqlml_id ROWS "
            f"UNBOUNDED PRECEDING) AS __sqlml_new FROM ({breaks})"
        )
        return [
            merged,
            f"UPDATE {self.state} SET {SID} = m.__sqlml_new FROM __sqlml_merged AS m "
            f"WHERE NOT m.__sqlml_fresh AND m.__sqlml_id <> m.__sqlml_new AND {self.state}.{SID} = m.__sqlml_id",
            f"DELETE FROM {self.table}",
            f"INSERT INTO {self.table} SELECT {''.join(f'any_value({k}), ' for k in self.keys)}__sqlml_new, "
            "min(__sqlml_s), max(__sqlml_l) FROM __sqlml_merged GROUP BY __sqlml_new",
        ]

    def placed_sql(self) -> str:
        """The session of each new event, by arrival number (after `assign_sql`)."""
        return "SELECT __sqlml_id, __sqlml_new FROM __sqlml_merged WHERE __sqlml_fresh"

    def closed_sql(self, watermark: int | None) -> str:
        """The sessions the watermark has passed (None: all)."""
        where = "" if watermark is None else f" WHERE __sqlml_l + {self.gap} <= {watermark}"
        return f"SELECT * FROM {self.table}{where}"

    def fired_sql(self, closed: str) -> str:
        """The events of the sessions in table `closed`, with their window's bounds."""
        end = f"c.__sqlml_l + {self.gap}"
        return (
            f"SELECT e.* EXCLUDE (__sqlml_seq, __sqlml_wm, {SID}), make_timestamp(c.__sqlml_s) AS window_start, "
            f"make_timestamp({end}) AS window_end, make_timestamp({end} - 1000) AS window_time "
            f"FROM {self.state} AS e JOIN {closed} AS c ON e.{SID} = c.{SID}"
        )

    def forget_sql(self, closed: str) -> list[str]:
        return [
            f"DELETE FROM {self.state} WHERE {SID} IN (SELECT {SID} FROM {closed})",
            f"DELETE FROM {self.table} WHERE {SID} IN (SELECT {SID} FROM {closed})",
        ]
