"""Python objects as tables, resolved as DuckDB resolves them: from the caller's frame only.

DuckDB's replacement scan looks for a DataFrame or Arrow table of a query's table name in the
Python frame that runs the query. sqlml runs queries from its own frames, so a
`ScopedConnection` runs them in a frame made of the caller's variables: a user's DataFrame
named `train` or `model` is found, sqlml's own variables never are.

>>> import duckdb, pyarrow as pa
>>> con = ScopedConnection(duckdb.connect())
>>> con.scope = ({}, {"events": pa.table({"x": [1, 2]})})
>>> con.sql("SELECT sum(x) FROM events").fetchall()
[(3,)]
"""

from __future__ import annotations

import builtins
import sys
from types import FrameType
from typing import Any

import duckdb

_CALL = {
    name: compile(f"__sqlml_result = __sqlml_con.{name}(*__sqlml_args, **__sqlml_kwargs)", "<sqlml>", "exec")
    for name in ("sql", "execute")
}


def caller_scope(skip_package: str = "sqlml") -> tuple[dict[str, Any], dict[str, Any]]:
    """The globals and locals of the nearest frame outside the sqlml package."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and str(frame.f_globals.get("__name__", "")).split(".")[0] == skip_package:
        frame = frame.f_back
    if frame is None:
        return {}, {}
    return frame.f_globals, dict(frame.f_locals)


class ScopedConnection:
    """A DuckDB connection whose `sql` and `execute` see the Python variables of `scope`
    (globals, locals), and no others; everything else is the connection's own."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.scope: tuple[dict[str, Any], dict[str, Any]] = ({}, {})

    def _run(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> Any:
        env_globals, env_locals = self.scope
        local = {**env_locals, "__sqlml_con": self.con, "__sqlml_args": args, "__sqlml_kwargs": kwargs or {}}
        exec(_CALL[name], env_globals or {"__builtins__": builtins}, local)
        return local["__sqlml_result"]

    def sql(self, query: str, **kwargs: Any) -> Any:
        """`con.sql(query, params=...)` in the scope's frame."""
        return self._run("sql", (query,), kwargs)

    def execute(self, query: str, *params: Any) -> Any:
        return self._run("execute", (query, *params))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)
