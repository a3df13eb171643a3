"""sqlml: DuckDB SQL plus TRAIN, EVALUATE and PREDICT, with LightGBM models in a catalog folder.

>>> import sqlml, tempfile
>>> con = sqlml.connect(catalog=tempfile.mkdtemp())
>>> con.sql("SHOW MODELS").fetchall()
[]
"""

from typing import TYPE_CHECKING, Any

from sqlml.errors import (
    BindError,
    CatalogError,
    ExecutionError,
    SqlmlError,
    SqlmlSyntaxError,
    UnknownModelError,
)

if TYPE_CHECKING:
    from sqlml.api import Result, Session, connect

__version__ = "0.1.0"
__all__ = [
    "BindError",
    "CatalogError",
    "ExecutionError",
    "Result",
    "Session",
    "SqlmlError",
    "SqlmlSyntaxError",
    "UnknownModelError",
    "connect",
]


def __getattr__(name: str) -> Any:
    """`connect`, `Session` and `Result` load DuckDB and Arrow on first use, so that
    `import sqlml` (and `sqlml --help`) stays light."""
    if name in ("Result", "Session", "connect"):
        from sqlml import api

        return getattr(api, name)
    raise AttributeError(f"module 'sqlml' has no attribute '{name}'")
