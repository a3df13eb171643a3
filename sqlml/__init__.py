"""sqlml: DuckDB SQL plus TRAIN, EVALUATE and PREDICT, with LightGBM models in a catalog folder.

>>> import sqlml, tempfile
>>> con = sqlml.connect(catalog=tempfile.mkdtemp())
>>> con.sql("SHOW MODELS").fetchall()
[]
"""

from sqlml.api import Result, Session, connect
from sqlml.errors import (
    BindError,
    CatalogError,
    ExecutionError,
    SqlmlError,
    SqlmlSyntaxError,
    UnknownModelError,
)

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
