"""The Python face: `sqlml.connect()` and results shaped like DuckDB's relations.

>>> import sqlml, tempfile
>>> con = sqlml.connect(catalog=tempfile.mkdtemp())
>>> con.sql("SELECT 42 AS answer").fetchall()
[(42,)]
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, Union, cast

import duckdb
import pyarrow as pa

from sqlml import parameters
from sqlml.catalog import Catalog
from sqlml.dialect import Statement, parse
from sqlml.engine import Engine, Output, StreamOutput, duckdb_error
from sqlml.errors import BindError, ExecutionError, SqlmlError
from sqlml.models.base import Progress
from sqlml.parameters import Parameters
from sqlml.scope import ScopedConnection, caller_scope

if TYPE_CHECKING:
    import numpy
    import pandas
    import polars

DEFAULT_CATALOG = "catalog"
T = TypeVar("T")
# what push() takes: Arrow data, a pandas DataFrame, a dict of columns or a list of row dicts
Rows = Union[
    pa.Table, pa.RecordBatch, "pandas.DataFrame", Mapping[str, Sequence[object]], Sequence[Mapping[str, object]]
]


class Result:
    """The rows a statement returned, with DuckDB's verbs: `fetchall()`, `fetchone()`,
    `fetchmany(n)`, `fetchnumpy()`, `df()`, `pl()`, `to_arrow_table()`, `to_arrow_reader()`,
    `show()`, `columns`, `types`; `arrow()` is `to_arrow_table()` (see docs/reference.md).

    A result holds the model versions it scores with from when it was made: a model trained or
    dropped afterwards does not change what it returns.
    """

    def __init__(self, output: Output, statement: Statement | None = None) -> None:
        self._output = output
        self._statement = statement
        self._rows: list[tuple[object, ...]] | None = None  # for fetchone / fetchmany
        self._next = 0

    def _guard(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except duckdb.Error as err:
            raise duckdb_error(err, self._statement) from err

    @property
    def columns(self) -> list[str]:
        """The column names."""
        if isinstance(self._output, pa.Table):
            return list(self._output.column_names)
        return list(self._output.columns) if self._output is not None else []

    @property
    def types(self) -> list[str]:
        """The columns' DuckDB types, as text (`BIGINT`, `DOUBLE[]`)."""
        return [str(t) for t in self._relation().types]

    def to_arrow_table(self) -> pa.Table:
        """All rows as a pyarrow Table."""
        if isinstance(self._output, pa.Table):
            return self._output
        if self._output is None:
            return pa.table({})
        rel = self._output
        return self._guard(lambda: cast(pa.Table, rel.to_arrow_table()))

    def arrow(self) -> pa.Table:
        """All rows as a pyarrow Table (DuckDB 2.0's relation.arrow() returns a reader; sqlml's
        keeps the table it has always returned: use `to_arrow_reader()` for batches)."""
        return self.to_arrow_table()

    def to_arrow_reader(self, batch_size: int = 1_000_000) -> pa.RecordBatchReader:
        """The rows as a pyarrow RecordBatchReader of batches of at most `batch_size` rows."""
        table = self.to_arrow_table()
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=batch_size))

    def fetch_arrow_reader(self, batch_size: int = 1_000_000) -> pa.RecordBatchReader:
        """DuckDB's older name of `to_arrow_reader`."""
        return self.to_arrow_reader(batch_size)

    def df(self) -> pandas.DataFrame:
        """All rows as a pandas DataFrame (pandas must be installed)."""
        return self._guard(lambda: self._relation().df())

    def pl(self) -> polars.DataFrame:
        """All rows as a polars DataFrame (polars must be installed)."""
        return self._guard(lambda: self._relation().pl())

    def fetchall(self) -> list[tuple[object, ...]]:
        """All rows as tuples, with DuckDB's Python values (a MAP is a dict)."""
        return self._guard(lambda: self._relation().fetchall())

    def fetchone(self) -> tuple[object, ...] | None:
        """The next row, or None after the last (as DuckDB's cursor)."""
        rows = self.fetchmany(1)
        return rows[0] if rows else None

    def fetchmany(self, size: int = 1) -> list[tuple[object, ...]]:
        """The next `size` rows (fewer at the end, none after it)."""
        if self._rows is None:
            self._rows = self.fetchall()
        rows = self._rows[self._next : self._next + size]
        self._next += len(rows)
        return rows

    def fetchnumpy(self) -> dict[str, numpy.ndarray]:
        """All rows as NumPy arrays by column name."""
        return self._guard(lambda: self._relation().fetchnumpy())

    def _relation(self) -> duckdb.DuckDBPyRelation:
        if isinstance(self._output, duckdb.DuckDBPyRelation):
            return self._output
        return duckdb.from_arrow(self.to_arrow_table())

    def show(self) -> None:
        """Print the rows, as DuckDB's relation.show() does."""
        rel = self._output
        if isinstance(rel, duckdb.DuckDBPyRelation):
            self._guard(rel.show)
        else:
            duckdb.from_arrow(self.to_arrow_table()).show()

    def __repr__(self) -> str:
        """DuckDB's box of the rows (what a notebook or the Python prompt shows)."""
        return self._guard(lambda: repr(self._relation()))


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
        other.engine.cluster = self.engine.cluster
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

    def run(self, script: str, params: Parameters | None = None) -> Iterator[tuple[Statement, Result | None]]:
        """Run a script statement by statement, yielding each statement and its result.
        With `params` (a list for `?`, a dict for `$name`), the script is one statement."""
        if not self._busy.acquire(blocking=False):
            raise ExecutionError(
                "This session is running a statement in another thread.",
                hint="Give each thread its own session: cur = con.cursor(), as with DuckDB.",
            )
        if self.python_scope:
            self._scoped.scope = caller_scope()
        try:
            statements = self._prepare(script, params)
            for statement in statements:
                output = self.engine.execute(statement, self.engine.bind(statement))
                if isinstance(output, StreamOutput):
                    for table in self._guarded(statement, output):
                        yield statement, Result(table, statement)
                else:
                    yield statement, None if output is None else Result(output, statement)
        finally:
            self.engine.params = self.engine.named = None
            self._busy.release()

    def _prepare(self, script: str, params: Parameters | None) -> list[Statement]:
        """The script's statements, and the engine told of their parameters."""
        statements = parse(script)
        self.engine.params = self.engine.named = None
        if params is None:
            return statements
        parameters.check_shape(params)
        if len(statements) != 1:
            raise BindError(
                f"Parameters go with one statement, and this script has {len(statements)}.",
                statements[1].span if len(statements) > 1 else None,
                "Run the statements one at a time: con.execute(sql, params) for each.",
            )
        self.engine.params = params
        if statements[0].node is not None:  # sqlml's statement: every ? becomes $n
            statements = parse(parameters.numbered(script))
            self.engine.named = parameters.values(script, params)
        return statements

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

    def push(self, stream: str, data: Rows) -> None:
        """Append events to a stream with connector = 'python': a pyarrow Table or RecordBatch,
        a pandas DataFrame, a dict of columns or a list of row dicts. Checked here, so that a
        bad push changes nothing."""
        self.engine.push(stream, data)

    def sql(self, script: str, *, params: Parameters | None = None) -> Result | None:
        """Run a script; the last statement's result (None if it returns no rows).

        `params` are the values of `?` (a list) or `$name` placeholders (a dict), as in DuckDB;
        they are never pasted into the SQL text."""
        results = [result for _, result in self.run(script, params)]
        return results[-1] if results else None

    def execute(self, script: str, parameters: Parameters | None = None) -> Session:
        """Run a script for its effects; returns the session, as duckdb's execute does."""
        for _, result in self.run(script, parameters):
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
    cluster: str | None = None,
) -> Session:
    """Open a session on a DuckDB database (or around an existing connection) and a catalog.

    The catalog folder is `catalog`, else $SQLML_CATALOG, else ./catalog. `cluster` (else
    $SQLML_CLUSTER) is the Dask cluster of TRAIN ... WITH (distributed = true): 'local:N' or
    a scheduler's address, checked now.
    """
    root = Path(catalog or os.environ.get("SQLML_CATALOG") or DEFAULT_CATALOG)
    address = cluster or os.environ.get("SQLML_CLUSTER") or None
    if address is not None:
        from sqlml.distributed import check_address, missing

        if missing():
            raise BindError(str(missing()), hint="Install the extra, or connect without a cluster.")
        address = check_address(address)
    if connection is not None:
        session = Session(connection, Catalog(root), owned=False)
    else:
        try:
            session = Session(duckdb.connect(database), Catalog(root))
        except duckdb.Error as err:
            raise ExecutionError(f"Cannot open the database {database}: {str(err).splitlines()[0]}") from err
    session.engine.cluster = address
    return session
