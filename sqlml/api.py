"""The Python face: `sqlml.connect()` and results shaped like DuckDB's relations.

>>> import sqlml, tempfile
>>> con = sqlml.connect(catalog=tempfile.mkdtemp())
>>> con.sql("SELECT 42 AS answer").fetchall()
[(42,)]
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import duckdb
import pyarrow as pa

from sqlml.catalog import Catalog
from sqlml.dialect import Statement, parse
from sqlml.engine import Engine, Output, StreamOutput, duckdb_error
from sqlml.errors import ExecutionError, SqlmlError
from sqlml.models.base import Progress
from sqlml.scope import ScopedConnection, caller_scope

DEFAULT_CATALOG = "catalog"


class Result:
    """The rows a statement returned: `.arrow()`, `.df()`, `.fetchall()`, `.show()`."""

    def __init__(self, output: Output, statement: Statement | None = None) -> None:
        self._output = output
        self._statement = statement

    def _guard(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except duckdb.Error as err:
            raise duckdb_error(err, self._statement) from err

    @property
    def columns(self) -> list[str]:
        if isinstance(self._output, pa.Table):
            return list(self._output.column_names)
        return list(self._output.columns) if self._output is not None else []

    def arrow(self) -> pa.Table:
        """All rows as a pyarrow Table."""
        if isinstance(self._output, pa.Table):
            return self._output
        if self._output is None:
            return pa.table({})
        rel = self._output
        return self._guard(lambda: rel.to_arrow_table())  # type: ignore[no-any-return]

    def df(self) -> Any:
        """All rows as a pandas DataFrame (pandas must be installed)."""
        return self._guard(lambda: self._relation().df())

    def fetchall(self) -> list[tuple[Any, ...]]:
        """All rows as tuples, with DuckDB's Python values (a MAP is a dict)."""
        return self._guard(lambda: self._relation().fetchall())  # type: ignore[no-any-return]

    def fetchnumpy(self) -> dict[str, Any]:
        """All rows as NumPy arrays by column name."""
        return self._guard(lambda: self._relation().fetchnumpy())  # type: ignore[no-any-return]

    def _relation(self) -> duckdb.DuckDBPyRelation:
        if isinstance(self._output, duckdb.DuckDBPyRelation):
            return self._output
        return duckdb.from_arrow(self.arrow())

    def show(self) -> None:
        """Print the rows, as DuckDB's relation.show() does."""
        rel = self._output
        if isinstance(rel, duckdb.DuckDBPyRelation):
            self._guard(rel.show)
        else:
            duckdb.from_arrow(self.arrow()).show()

    def __repr__(self) -> str:
        return f"<sqlml.Result columns={self.columns}>"


class Session:
    """A DuckDB connection plus a model catalog; runs DuckDB SQL and sqlml's statements.

    One session runs one statement at a time: for several threads, give each its own
    `cursor()`, as with DuckDB's connections.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, catalog: Catalog, *, owned: bool = True) -> None:
        self.connection = connection
        self.catalog = catalog
        self._owned = owned  # a connection handed in by the caller is theirs to close
        self._scoped = ScopedConnection(connection)
        self.engine = Engine(cast(duckdb.DuckDBPyConnection, self._scoped), catalog)
        self._busy = threading.Lock()
        self.python_scope = True  # resolve Python objects named in queries from the caller's frame

    def cursor(self) -> Session:
        """A session for another thread: a cursor of the same DuckDB database, the same catalog."""
        other = Session(self.connection.cursor(), self.catalog, owned=True)
        other.python_scope = self.python_scope
        return other

    def set_progress(self, factory: Callable[[str], Progress | None]) -> None:
        """Report boosting rounds: `factory(model_name)` returns `progress(round, total)` or None."""
        self.engine.progress = factory

    def interrupt(self) -> None:
        """Cancel the running statement from another thread (the REPL's Ctrl-C)."""
        if self.engine.streaming:
            self.engine.stop.set()  # a continuous query stops cleanly at its next micro-batch
            return
        self.engine.cancelled = True
        self.connection.interrupt()

    def run(self, script: str) -> Iterator[tuple[Statement, Result | None]]:
        """Run a script statement by statement, yielding each statement and its result."""
        if not self._busy.acquire(blocking=False):
            raise ExecutionError(
                "This session is running a statement in another thread.",
                hint="Give each thread its own session: cur = con.cursor(), as with DuckDB.",
            )
        if self.python_scope:
            self._scoped.scope = caller_scope()
        try:
            for statement in parse(script):
                output = self.engine.execute(statement, self.engine.bind(statement))
                if isinstance(output, StreamOutput):
                    for table in self._guarded(statement, output):
                        yield statement, Result(table, statement)
                else:
                    yield statement, None if output is None else Result(output, statement)
        finally:
            self._busy.release()

    def _guarded(self, statement: Statement, output: StreamOutput) -> Iterator[pa.Table]:
        try:
            yield from output
        except duckdb.Error as err:
            raise duckdb_error(err, statement) from err
        except SqlmlError as err:
            raise err.located(statement.span)

    def stream(self, sql: str) -> Iterator[pa.RecordBatch]:
        """Run a continuous SELECT, yielding Arrow record batches as windows close."""
        for _, result in self.run(sql):
            if result is not None:
                yield from result.arrow().to_batches()

    def push(self, stream: str, data: Any) -> None:
        """Append events to a stream with connector = 'python': a pyarrow Table or RecordBatch,
        a pandas DataFrame, a dict of columns or a list of row dicts. Checked here, so that a
        bad push changes nothing."""
        self.engine.push(stream, data)

    def sql(self, script: str) -> Result | None:
        """Run a script; the last statement's result (None if it returns no rows)."""
        results = [result for _, result in self.run(script)]
        return results[-1] if results else None

    def execute(self, script: str) -> Session:
        """Run a script for its effects; returns the session, as duckdb's execute does."""
        for _, result in self.run(script):
            if result is not None:
                result.arrow()
        return self

    def close(self) -> None:
        """Close the session (and its DuckDB connection, unless the caller handed it in)."""
        if self._owned:
            self.connection.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    database: str = ":memory:",
    catalog: str | os.PathLike[str] | None = None,
    *,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> Session:
    """Open a session on a DuckDB database (or around an existing connection) and a catalog.

    The catalog folder is `catalog`, else $SQLML_CATALOG, else ./catalog.
    """
    root = Path(catalog or os.environ.get("SQLML_CATALOG") or DEFAULT_CATALOG)
    if connection is not None:
        return Session(connection, Catalog(root), owned=False)
    try:
        return Session(duckdb.connect(database), Catalog(root))
    except duckdb.Error as err:
        raise ExecutionError(f"Cannot open the database {database}: {str(err).splitlines()[0]}") from err
