"""Which query shapes over a stream keep their meaning whatever the micro-batches are.

A continuous query runs once per micro-batch: over the events of the batch (a stream read
directly) or over the rows of the windows that just closed (a stream read through a window
function). Its result equals the batch query's only if no row depends on which other rows
arrived in the same micro-batch. `check(query, reads_stream)` decides that on the query as
it binds, with CTEs and subqueries followed to what they read and set operations taken
branch by branch, and refuses the rest with what would work instead. A refusal that marks
the query as updating (an aggregate, DISTINCT, a join of a stream's events with each other)
sends binding to run it as a changelog instead (see changelog.py).

The rules, for a relation derived from a stream ("stream rows": each event once; "window
rows": each closed window's rows, all at once):
- stream rows: per-row work only (filters, projections, joins with tables). No aggregate,
  OVER, GROUP BY, DISTINCT, ORDER BY or LIMIT, and never joined with stream rows again.
- window rows: GROUP BY, OVER ... PARTITION BY and DISTINCT keep window_start and window_end,
  an aggregate has a GROUP BY, and two window-derived relations join on equal window_start
  and window_end.
- either: set operations are UNION ALL of branches that all read the stream (or UNION,
  INTERSECT, EXCEPT of window rows whose output keeps the window bounds); an outer join keeps
  the stream's side, not a table's; a stream is never read inside an expression's subquery.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from sqlglot import exp

from sqlml import ast

BOUNDS = ("window_start", "window_end")


class Kind(IntEnum):
    """What a relation is derived from."""

    TABLE = 0  # no stream: the same rows every micro-batch
    ROWS = 1  # a stream read directly: the events of the micro-batch
    WINDOWS = 2  # a stream through a window function: the rows of the windows that closed


class ShapeError(Exception):
    """A query shape with no streaming meaning: `node` is where, `hint` what to write."""

    def __init__(self, message: str, node: exp.Expr, hint: str, updating: str = "") -> None:
        super().__init__(message)
        self.message, self.node, self.hint = message, node, hint
        self.updating = updating  # what makes the query an updating one (see changelog.py), if it is


WINDOW_HINT = "Aggregate per window: FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, ..."


def check(
    query: exp.Expr,
    reads_stream: Callable[[exp.Expr], Kind],
    interval_join: exp.Join | None = None,
    dedup: exp.Select | None = None,
) -> Kind:
    """The kind of `query`'s result, or a ShapeError. `reads_stream(node)` says what a table
    or window function node reads (Kind.TABLE for an ordinary table); `interval_join` is a join
    of two streams' events with bounds on their times, and `dedup` the numbering SELECT of a
    deduplication, which binding has found."""
    return _Checker(reads_stream, query, interval_join, dedup).query(query, {})


OVER_HINT = (
    "Write agg(...) OVER (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW) "
    "(or ROWS BETWEEN n PRECEDING AND CURRENT ROW), the same OVER for every aggregate of the SELECT."
)


def over_clauses(select: exp.Select) -> list[exp.Window]:
    """The OVER clauses of a SELECT's own expressions."""
    return [w for w in _own(select, exp.Window) if isinstance(w, exp.Window)]


class _Checker:
    def __init__(
        self, reads_stream: Callable[[exp.Expr], Kind], top: exp.Expr, interval_join: exp.Join | None,
        dedup: exp.Select | None,
    ) -> None:  # fmt: skip
        self.reads_stream = reads_stream
        self.interval_join = interval_join
        self.dedup = dedup
        self.top = top  # OVER aggregates over a stream's events: in the outermost SELECT only

    # -- relations --------------------------------------------------------------------
    def query(self, node: exp.Expr, ctes: dict[str, Kind]) -> Kind:
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            ctes = dict(ctes)
            for cte in with_.expressions:
                ctes[cte.alias_or_name.lower()] = self.query(cte.this, ctes)
        if isinstance(node, exp.SetOperation):
            return self.set_operation(node, ctes)
        if isinstance(node, exp.Subquery):
            return self.query(node.this, ctes)
        if isinstance(node, exp.Select):
            return self.select(node, ctes)
        return Kind.TABLE

    def source(self, node: exp.Expr, ctes: dict[str, Kind]) -> Kind:
        """What one FROM or JOIN source is derived from."""
        if isinstance(node, ast.WindowTable):
            return self.reads_stream(node)
        if isinstance(node, exp.Table):
            name = node.name.lower()
            if not node.args.get("db") and name in ctes:
                return ctes[name]
            return self.reads_stream(node)
        if isinstance(node, (exp.Subquery, exp.Query)):
            return self.query(node, ctes)
        return Kind.TABLE

    def set_operation(self, node: exp.SetOperation, ctes: dict[str, Kind]) -> Kind:
        left, right = self.query(node.this, ctes), self.query(node.expression, ctes)
        kind = max(left, right)
        if kind == Kind.TABLE:
            return kind
        if min(left, right) == Kind.TABLE:
            raise ShapeError(
                f"A branch of this {_set_name(node)} reads no stream: its rows would repeat with every micro-batch.",
                node.expression if right == Kind.TABLE else node.this,
                "Read the stream in every branch, or join the table to the stream's rows instead.",
            )
        distinct = not isinstance(node, exp.Union) or node.args.get("distinct")
        if distinct and (kind == Kind.ROWS or not _keeps_bounds(node)):
            raise ShapeError(
                f"{_set_name(node)} over a stream compares rows across micro-batches.",
                node,
                "Use UNION ALL; or, over window rows, keep window_start and window_end in the output.",
            )
        return kind

    def select(self, node: exp.Select, ctes: dict[str, Kind]) -> Kind:
        from_ = node.args.get("from_")
        kinds: list[tuple[exp.Expr, Kind]] = []
        if from_ is not None:
            kinds.append((from_.this, self.source(from_.this, ctes)))
        for join in node.args.get("joins") or []:
            kind = self.source(join.this, ctes)
            self.join(join, kinds, kind)
            kinds.append((join.this, kind))
        self.subqueries(node, ctes)
        kind = max((k for _, k in kinds), default=Kind.TABLE)
        if kind == Kind.ROWS:
            self.stateless(node)
        elif kind == Kind.WINDOWS:
            self.windowed(node)
        return kind

    def join(self, join: exp.Join, before: list[tuple[exp.Expr, Kind]], kind: Kind) -> None:
        left = max((k for _, k in before), default=Kind.TABLE)
        if join is self.interval_join:
            return
        if left == Kind.ROWS and kind == Kind.ROWS or {left, kind} == {Kind.ROWS, Kind.WINDOWS}:
            raise ShapeError(
                "A stream's events meet each other here only when they arrive in the same micro-batch.",
                join.this,
                "Join two streams (or one stream with itself) through windows: the same window function "
                "on each side, ON a.window_start = b.window_start AND a.window_end = b.window_end.",
                "a join in which a stream's events meet each other" if left == kind else "",
            )
        if left == Kind.WINDOWS and kind == Kind.WINDOWS and not _joins_on_bounds(join):
            raise ShapeError(
                "A join of window rows must match the windows: rows of different windows meet only when "
                "they close in the same micro-batch.",
                join.this,
                "Add ON a.window_start = b.window_start AND a.window_end = b.window_end (or USING (window_start, window_end)).",
            )
        side = (join.args.get("side") or "").upper()
        table_kept = (side in ("RIGHT", "FULL") and left != Kind.TABLE and kind == Kind.TABLE) or (
            side in ("LEFT", "FULL") and left == Kind.TABLE and kind != Kind.TABLE
        )
        if table_kept:
            raise ShapeError(
                f"This {side} JOIN keeps a table's rows that match no event: they would repeat with every micro-batch.",
                join.this,
                "Keep the stream's side: FROM stream LEFT JOIN table.",
            )

    def subqueries(self, node: exp.Select, ctes: dict[str, Kind]) -> None:
        """A stream read inside an expression (IN, EXISTS, a scalar subquery) of this SELECT."""
        for key in ("expressions", "where", "having", "qualify"):
            value = node.args.get(key)
            for part in value if isinstance(value, list) else [value]:
                if part is None:
                    continue
                for sub in part.find_all(exp.Subquery, exp.Select):
                    query = sub.this if isinstance(sub, exp.Subquery) else sub
                    if self.query(query, ctes) != Kind.TABLE:
                        raise ShapeError(
                            "A stream read in a subquery of an expression sees only the current micro-batch.",
                            sub,
                            "Join the stream (or its windows) in FROM instead.",
                        )

    # -- per kind ---------------------------------------------------------------------
    def stateless(self, node: exp.Select) -> None:
        checks: tuple[tuple[str, str], ...] = (
            ("group", "GROUP BY"), ("order", "ORDER BY"), ("limit", "LIMIT"), ("offset", "OFFSET"),
            ("distinct", "DISTINCT"), ("having", "HAVING"), ("qualify", "QUALIFY"),
        )  # fmt: skip
        for key, what in checks:
            if node.args.get(key) is not None:
                self.no_end(node.args[key], what)
        if node is self.dedup:
            return
        overs = over_clauses(node)
        if overs:
            self.over(node, overs)
        for found in _own(node, exp.AggFunc):
            if not (overs and isinstance(found.parent, exp.Window)):
                self.no_end(found, "an aggregate")

    def over(self, node: exp.Select, overs: list[exp.Window]) -> None:
        """Flink's OVER aggregation: aggregates over one frame looking back from each event."""
        if node is not self.top:
            raise ShapeError("OVER over a stream's events is allowed in the outermost SELECT only.", overs[0],
                             "Compute the OVER aggregates in the query itself, not in a CTE or subquery.")  # fmt: skip
        first = overs[0]
        for window in overs:
            spec, order = window.args.get("spec"), window.args.get("order")
            if not isinstance(window.this, exp.AggFunc):
                raise ShapeError(
                    f"{window.this.sql()} OVER a stream's events is not supported; aggregates are.", window, OVER_HINT
                )
            keys = order.expressions if order is not None else []
            if (len(keys) != 1 or not isinstance(keys[0].this, exp.Column) or keys[0].args.get("desc")
                    or spec is None or spec.args.get("start_side") != "PRECEDING" or spec.args.get("end") != "CURRENT ROW"
                    or str(spec.args.get("start")).upper() == "UNBOUNDED" or spec.args.get("kind") not in ("RANGE", "ROWS")):  # fmt: skip
                raise ShapeError(
                    "An OVER aggregation over a stream orders by its time column (ascending) and frames a bounded "
                    "stretch ending at the current row.", window, OVER_HINT,
                )  # fmt: skip
            if _frame(window) != _frame(first):
                raise ShapeError("Every OVER aggregate of the SELECT must use the same window (as in Flink).", window,
                                 OVER_HINT)  # fmt: skip

    def no_end(self, node: exp.Expr, what: str) -> None:
        updating = what in ("GROUP BY", "DISTINCT", "HAVING", "an aggregate")
        raise ShapeError(
            f"A query reading a stream directly cannot use {what}: the stream has no end to wait for.",
            node,
            WINDOW_HINT,
            f"{what} over a stream's events without a window" if updating else "",
        )

    def windowed(self, node: exp.Select) -> None:
        limit = node.args.get("limit") or node.args.get("offset")
        if limit is not None:
            raise ShapeError(
                "LIMIT and OFFSET have no meaning over a stream: results arrive as windows close.",
                limit,
                "Keep the top rows per window with ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY ...) <= N.",
            )
        group = node.args.get("group")
        if group is not None:
            keys = {e.name for e in group.expressions if isinstance(e, exp.Column)}
            if not group.args.get("all") and not set(BOUNDS) <= keys:
                raise ShapeError(
                    "A windowed aggregation over a stream must GROUP BY window_start, window_end.", group, WINDOW_HINT
                )
        elif any(not isinstance(agg.parent, exp.Window) for agg in _own(node, exp.AggFunc)):
            raise ShapeError(
                "An aggregate over window rows needs GROUP BY window_start, window_end: windows close at different times.",
                node,
                WINDOW_HINT,
            )
        for window in _own(node, exp.Window):
            keys = {e.name for e in window.args.get("partition_by") or [] if isinstance(e, exp.Column)}
            if not set(BOUNDS) <= keys:
                raise ShapeError(
                    "An OVER clause over a stream must PARTITION BY window_start, window_end (window Top-N).",
                    window,
                    "ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY ...) <= N",
                )
        if node.args.get("distinct") is not None and not _keeps_bounds(node):
            raise ShapeError(
                "DISTINCT over window rows must keep window_start and window_end, or rows of different windows merge.",
                node.args["distinct"],
                "SELECT DISTINCT window_start, window_end, ...",
            )


def _frame(window: exp.Window) -> str:
    """An OVER clause's window, as text (partition, order and frame)."""
    return "|".join(
        p.sql()
        for p in [*(window.args.get("partition_by") or []), window.args.get("order"), window.args.get("spec")]
        if p
    )


def is_star(e: exp.Expr) -> bool:
    """Whether a SELECT expression is `*` or `t.*`."""
    return isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))


def reads_star(select: exp.Expr) -> bool:
    """Whether a SELECT's list has `*` or `t.*`."""
    return any(is_star(e) for e in select.expressions)


def unqualified(node: exp.Expr) -> exp.Expr:
    """An expression with its columns' table names dropped (to run over one view or table)."""
    return node.transform(lambda n: exp.column(n.name) if isinstance(n, exp.Column) else n)


def _set_name(node: exp.SetOperation) -> str:
    name = type(node).__name__.upper()
    return f"{name} ALL" if isinstance(node, exp.Union) and not node.args.get("distinct") else name


def _output_names(node: exp.Expr) -> set[str] | None:
    """The output column names of a query (None: all of its sources', through *)."""
    while isinstance(node, exp.SetOperation):
        node = node.this
    if isinstance(node, exp.Subquery):
        return _output_names(node.this)
    if not isinstance(node, exp.Select):
        return set()
    names = set()
    for e in node.expressions:
        if is_star(e):
            return None
        names.add(e.alias_or_name)
    return names


def _keeps_bounds(node: exp.Expr) -> bool:
    names = _output_names(node)
    return names is None or set(BOUNDS) <= names


def _joins_on_bounds(join: exp.Join) -> bool:
    using = {i.name for i in join.args.get("using") or []}
    if set(BOUNDS) <= using:
        return True
    on = join.args.get("on")
    equal: set[str] = set()
    for eq in on.find_all(exp.EQ) if on is not None else []:
        a, b = eq.this, eq.expression
        if isinstance(a, exp.Column) and isinstance(b, exp.Column) and a.name == b.name and a.table != b.table:
            equal.add(a.name)
    return set(BOUNDS) <= equal


def _own(select: exp.Select, *types: type[exp.Expr]) -> list[exp.Expr]:
    """The nodes of these types in a SELECT's own expressions, not in its subqueries'."""
    return [
        found for e in select.expressions for found in e.find_all(*types) if found.find_ancestor(exp.Select) is select
    ]
