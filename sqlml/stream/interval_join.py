"""Interval joins of two streams, as Flink runs them: `a JOIN b ON a.k = b.k AND b.ts BETWEEN
a.ts AND a.ts + INTERVAL '30' MINUTE` pairs each event with the other stream's events within
a bounded stretch of event time. Output is append-only: a pair is output once, when the later
of its two events arrives (the earlier waits in state), and state forgets an event once no
event still to come can pair with it.

Times compare as in over.py: an event before the query's watermark at its arrival is late
(it goes to `<stream>_late`; Flink drops it), so an event that is not late has a time at or
after the watermark. With `b.ts - a.ts` within [low, high], an `a` event can still pair while
`a.ts + high` is not before the watermark, and a `b` event while `b.ts - low` is not: each
side's `reach` (high for `a`, -low for `b`) says how long it is kept.

An inner join of two streams without time bounds is Flink's regular join: every event is kept
for as long as the query runs, and none is late (all pairs are found whenever they arrive).

>>> import sqlglot
>>> on = sqlglot.parse_one("SELECT * FROM a JOIN b ON a.k = b.k AND b.ts BETWEEN a.ts AND a.ts + INTERVAL '30' MINUTE")
>>> bounds(on.args["joins"][0].args["on"], "a", "ts", "b", "ts")
(0, 1800000000)
"""

from __future__ import annotations

from sqlglot import exp

from sqlml.features import quote
from sqlml.literals import _MICROSECONDS as UNITS

FOREVER = 2**62  # the reach of both sides of a regular join (no time bounds): every event is kept


def _conjuncts(node: exp.Expr) -> list[exp.Expr]:
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


def _interval(node: exp.Expr) -> int | None:
    """A fixed-length INTERVAL literal in microseconds."""
    unit = node.args.get("unit") if isinstance(node, exp.Interval) else None
    name = unit.name.upper().rstrip("S") if unit is not None else ""
    try:
        return int(round(float(node.this.name) * UNITS[name])) if name in UNITS else None  # as literals.interval_us
    except ValueError:
        return None


def _time_term(node: exp.Expr, names: dict[str, str]) -> tuple[str, int] | None:
    """`x.ts`, `x.ts + INTERVAL ...` or `x.ts - INTERVAL ...` as (x, offset µs); None otherwise."""
    if isinstance(node, exp.Paren):
        return _time_term(node.this, names)
    if isinstance(node, exp.Column) and names.get(node.table.lower()) == node.name:
        return node.table.lower(), 0
    if isinstance(node, (exp.Add, exp.Sub)):
        base, shift = _time_term(node.this, names), _interval(node.expression)
        if base is not None and shift is not None:
            return base[0], base[1] + (shift if isinstance(node, exp.Add) else -shift)
    return None


def bounds(on: exp.Expr, a: str, a_time: str, b: str, b_time: str) -> tuple[int, int] | None:
    """[low, high] in µs such that the ON condition requires low <= b.ts - a.ts <= high (`a`
    and `b` are the two streams' names or aliases in the query); None without both bounds."""
    names = {a.lower(): a_time, b.lower(): b_time}
    low: int | None = None
    high: int | None = None
    comparisons: list[tuple[exp.Expr, str, exp.Expr]] = []
    for part in _conjuncts(on):
        if isinstance(part, exp.Between):
            comparisons += [(part.this, ">=", part.args["low"]), (part.this, "<=", part.args["high"])]
        elif isinstance(part, (exp.GTE, exp.GT, exp.LTE, exp.LT)):
            op = {exp.GTE: ">=", exp.GT: ">=", exp.LTE: "<=", exp.LT: "<="}[type(part)]
            comparisons.append((part.this, op, part.expression))
    for left, op, right in comparisons:
        x, y = _time_term(left, names), _time_term(right, names)
        if x is None or y is None or x[0] == y[0]:
            continue
        # x.ts + cx op y.ts + cy, as b.ts - a.ts op' constant
        if x[0] == b.lower():
            value, up = y[1] - x[1], op == "<="
        else:
            value, up = x[1] - y[1], op == ">="
        if up:
            high = value if high is None else min(high, value)
        else:
            low = value if low is None else max(low, value)
    return (low, high) if low is not None and high is not None else None


def forget_sql(state: str, time: str, reach: int, watermark: int | None) -> str:
    """Drop the events of one side that no event still to come can pair with ("": none)."""
    if watermark is None:
        return f"DELETE FROM {state}"
    if reach >= FOREVER:
        return ""  # a regular join forgets nothing while it runs
    return f"DELETE FROM {state} WHERE epoch_us({quote(time)}) + {reach} < {watermark}"
