"""The keys of an updating query (see changelog.py), read from its syntax tree.

Two shapes have them: an aggregation `SELECT k, agg(...) FROM s [WHERE ...] GROUP BY k`, and
a Top-N or keep-last `SELECT ... FROM (SELECT ..., ROW_NUMBER() OVER (PARTITION BY k ORDER BY
...) AS rn FROM s [WHERE ...]) WHERE rn <= N`, where `s` is the stream's events (no join).
The partition is the grouping (or PARTITION BY) columns the output carries; the upsert key
is all of them, plus `rn` for a Top-N that outputs it (a Top-N without it has none).

>>> import sqlglot
>>> q = sqlglot.parse_one("SELECT user_id AS u, count(*) AS n FROM clicks GROUP BY user_id")
>>> keys(q, "clicks", {"user_id", "ts"})
Keys(key=('u',), partition=('user_id',), carried=('u',))
"""

from __future__ import annotations

from typing import NamedTuple

from sqlglot import exp

from sqlml.stream.shapes import reads_star


class Keys(NamedTuple):
    key: tuple[str, ...] | None  # the upsert key, among the output columns (None: none known)
    partition: tuple[str, ...] = ()  # stream columns partitioning the result
    carried: tuple[str, ...] = ()  # the output columns that carry them


def keys(query: exp.Expr, stream: str, stream_columns: set[str]) -> Keys:
    """The keys of an updating query reading once the stream named `stream`, whose columns are
    `stream_columns` (read directly: through a CTE, its columns could mean anything)."""
    if not isinstance(query, exp.Select) or query.args.get("joins") or query.args.get("from_") is None:
        return Keys(None)
    if query.args.get("with_"):
        return Keys(None)
    source = query.args["from_"].this
    if _reads(source, stream):
        return _aggregation(query, stream_columns)
    if isinstance(source, exp.Subquery) and isinstance(source.this, exp.Select):
        return _top_n(query, source.this, stream, stream_columns)
    return Keys(None)


def _reads(source: exp.Expr, stream: str) -> bool:
    return isinstance(source, exp.Table) and not source.args.get("db") and source.name.lower() == stream.lower()


def _aggregation(query: exp.Select, stream_columns: set[str]) -> Keys:
    group = query.args.get("group")
    if group is None:
        has_aggregate = any(not isinstance(a.parent, exp.Window) for a in query.find_all(exp.AggFunc))
        return Keys((), ()) if has_aggregate and not query.args.get("distinct") else Keys(None)
    columns = group.expressions
    if group.args.get("all") or not columns:
        return Keys(None)
    aliases = {e.alias for e in query.expressions if e.alias}
    partition, carried = [], []
    for column in columns:
        if not isinstance(column, exp.Column):  # an expression: no key, but the columns still partition
            continue
        name = column.name
        out = _carrier(query, name)
        if name in aliases and out != name:  # GROUP BY an output's alias, not the stream's column
            return Keys(None)
        if name in stream_columns and out is not None:
            partition.append(name)
            carried.append(out)
    key = tuple(carried) if len(carried) == len(columns) else None
    return Keys(key, tuple(partition), tuple(carried))


def _top_n(query: exp.Select, inner: exp.Select, stream: str, stream_columns: set[str]) -> Keys:
    if inner.args.get("joins") or query.args.get("group") or inner.args.get("with_"):
        return Keys(None)
    if inner.args.get("from_") is None or not _reads(inner.args["from_"].this, stream):
        return Keys(None)
    numbered = [e for e in inner.expressions if isinstance(e.unalias(), exp.Window)]
    if len(numbered) != 1 or not isinstance(numbered[0].unalias().this, exp.RowNumber) or not numbered[0].alias:
        return Keys(None)
    window, rn = numbered[0].unalias(), numbered[0].alias
    limit = _rank_limit(query.args.get("where"), rn)
    if limit is None:
        return Keys(None)
    partition, carried = [], []
    for column in window.args.get("partition_by") or []:
        if not isinstance(column, exp.Column) or column.name not in stream_columns:
            return Keys(None)
        inner_out = _carrier(inner, column.name)
        out = _carrier(query, inner_out) if inner_out else None
        if out is None:
            return Keys(None)
        partition.append(column.name)
        carried.append(out)
    rn_out = _carrier(query, rn)
    key = tuple(carried) if limit == 1 else (*carried, rn_out) if rn_out else None
    return Keys(key, tuple(partition), tuple(carried))


def _rank_limit(where: exp.Where | None, rn: str) -> int | None:
    """N of `WHERE rn <= N` (or `rn < N + 1`, `rn = 1`)."""
    if where is None or not isinstance(where.this, (exp.LTE, exp.LT, exp.EQ)):
        return None
    cond = where.this
    if not isinstance(cond.this, exp.Column) or cond.this.name != rn or not isinstance(cond.expression, exp.Literal):
        return None
    if cond.expression.is_string or not cond.expression.name.isdigit():
        return None
    n = int(cond.expression.name) - (1 if isinstance(cond, exp.LT) else 0)
    return n if not isinstance(cond, exp.EQ) or n == 1 else None


def _carrier(select: exp.Select, name: str) -> str | None:
    """The output column of `select` that is its input column `name` unchanged."""
    for e in select.expressions:
        if isinstance(e.unalias(), exp.Column) and e.unalias().name == name:
            return e.alias_or_name
    return name if reads_star(select) else None
