"""The `%%sqlml` cell magic for IPython and Jupyter.

    %load_ext sqlml.magic

    %%sqlml
    SELECT * FROM PREDICT(MODEL churn, TABLE customers) LIMIT 5

The cell runs in a session on an in-memory database (or on the database file named after
`%%sqlml`, one session per file, kept between cells), with the catalog of `sqlml.connect()`.
The notebook's variables (DataFrames, Arrow tables) are tables, as in DuckDB; the cell's value
is its last statement's result. A user error prints as the CLI prints it, without a traceback.
"""

from __future__ import annotations

from typing import Any

from sqlml.api import Result, Session, connect
from sqlml.errors import SqlmlError
from sqlml.render import error_text

_SESSIONS: dict[str, Session] = {}


def run_cell(line: str, cell: str, namespace: dict[str, Any]) -> Result | None:
    """Run a cell's SQL in the session for the database named on the magic's line."""
    database = line.strip() or ":memory:"
    session = _SESSIONS.get(database)
    if session is None:
        session = _SESSIONS[database] = connect(database)
        session.python_scope = False  # the notebook's namespace is the scope, set below
    session._scoped.scope = (namespace, {})
    try:
        return session.sql(cell)
    except SqlmlError as err:
        print(error_text(err, "<cell>", cell))
        return None


def load_ipython_extension(ipython: Any) -> None:
    """Called by `%load_ext sqlml.magic`."""

    def sqlml(line: str, cell: str) -> Result | None:
        return run_cell(line, cell, ipython.user_ns)

    ipython.register_magic_function(sqlml, magic_kind="cell", magic_name="sqlml")
