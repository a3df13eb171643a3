"""Literal values in statements (WITH options, INTERVALs) as Python values.

>>> import sqlglot
>>> literal(sqlglot.parse_one("SELECT [1, -2.5, 'a']").expressions[0])
[1, -2.5, 'a']
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from sqlml.dialect import Sqlml

if TYPE_CHECKING:
    from sqlml.plan import Binder


def literal(node: exp.Expr) -> Any:
    """A WITH parameter's value as Python, or None when it is not a literal."""
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.name
        text = node.name
        return int(text) if re.fullmatch(r"[0-9]+", text) else float(text)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Neg):
        inner = literal(node.this)
        return -inner if isinstance(inner, (int, float)) else None
    if isinstance(node, (exp.Array, exp.Tuple, exp.Paren)):
        values = [literal(e) for e in (node.expressions or [node.this])]
        return None if None in values else values
    return None


_MICROSECONDS = {
    "MICROSECOND": 1, "MILLISECOND": 1_000, "SECOND": 1_000_000, "MINUTE": 60_000_000,
    "HOUR": 3_600_000_000, "DAY": 86_400_000_000, "WEEK": 604_800_000_000,
}  # fmt: skip


def interval_us(binder: Binder, node: exp.Expr, what: str, allow_zero: bool = False) -> int:
    """A fixed-length INTERVAL literal in whole microseconds (months and years vary in length)."""
    unit = node.args.get("unit") if isinstance(node, exp.Interval) else None
    name = unit.name.upper().rstrip("S") if unit is not None else ""
    try:
        amount = float(node.this.name) if isinstance(node, exp.Interval) else None
    except ValueError:
        amount = None
    if amount is None or name not in _MICROSECONDS:
        raise binder.error(
            f"{what} must be a fixed-length INTERVAL, not {node.sql(dialect=Sqlml)}.",
            node,
            "Write INTERVAL 'n' SECOND (or MILLISECOND, MINUTE, HOUR, DAY); months and years vary in length.",
        )
    micros = int(round(amount * _MICROSECONDS[name]))
    if micros < 0 or (micros == 0 and not allow_zero):
        raise binder.error(f"{what} must be longer than zero.", node)
    return micros
