"""SQL functions sqlml adds to DuckDB: the text featurizer's building blocks, callable in
any query.

- ``tokens(text)`` -> ``VARCHAR[]``: the lower-cased words of a text, as TRAIN ... TEXT
  reads them (scikit-learn's default word pattern: two or more word characters);
- ``ngrams(list, n)`` -> ``VARCHAR[]``: the n-grams of a list of words, joined by spaces
  (a DuckDB macro);
- ``text_hash(text, buckets)`` -> ``MAP(INTEGER, DOUBLE)``: token counts by hash bucket,
  the sparse vector TRAIN ... TEXT starts from (default analyzer, ``text_dim = buckets``).

>>> import duckdb
>>> con = duckdb.connect()
>>> register(con)
>>> con.sql("SELECT tokens('Free money, FREE!') AS t, ngrams(['a', 'b', 'c'], 2) AS g").fetchall()
[(['free', 'money', 'free'], ['a b', 'b c'])]
>>> con.sql("SELECT map_values(text_hash('spam spam eggs', 1024)) AS v").fetchall()
[([2.0, 1.0],)]
"""

from __future__ import annotations

from typing import Any

import duckdb
import duckdb.func
import numpy as np
import pyarrow as pa

from sqlml import text
from sqlml.errors import ExecutionError
from sqlml.scoring import reported

NGRAMS = (
    "CREATE OR REPLACE TEMP MACRO ngrams(words, n) AS "
    "list_transform(range(1, len(words) - n + 2), lambda i: array_to_string(words[i:i + n - 1], ' '))"
)
NAMES = ("tokens", "ngrams", "text_hash")


def _tokens(column: pa.Array) -> pa.Array:
    analyze = text._vectorizer(text.DEFAULTS).build_analyzer()
    return pa.array([analyze(doc) for doc in column.to_pylist()], pa.list_(pa.string()))


def _text_hash(column: pa.Array, buckets: pa.Array) -> pa.Array:
    dim = buckets[0].as_py() if len(buckets) else text.DEFAULTS["text_dim"]
    if not isinstance(dim, int) or not 16 <= dim <= 2**24:
        raise ExecutionError(
            f"text_hash's buckets must be a whole number from 16 to {2**24}, not {dim}.",
            hint="Write text_hash(text, 262144) for TRAIN ... TEXT's default of 2^18 buckets.",
        )
    matrix = text.counts(column, {**text.DEFAULTS, "text_dim": dim})
    matrix.sort_indices()
    return pa.MapArray.from_arrays(
        pa.array(matrix.indptr.astype(np.int32)), pa.array(matrix.indices.astype(np.int32)), pa.array(matrix.data)
    )


def register(con: Any) -> None:
    """Create the functions on a DuckDB connection (once per connection)."""
    create_function(con, "tokens", reported(_tokens), ["VARCHAR"], "VARCHAR[]")
    create_function(con, "text_hash", reported(_text_hash), ["VARCHAR", "INTEGER"], "MAP(INTEGER, DOUBLE)")
    con.execute(NGRAMS)


def create_function(con: Any, name: str, fn: Any, args: list[str], result: str, **options: Any) -> None:
    """An Arrow function on a connection, unless it is there already (the cursors of one database
    share their functions). Asking DuckDB to create it and hearing it exists is the cheap check:
    listing duckdb_functions() costs some 30 ms."""
    try:
        con.create_function(name, fn, [duckdb.sqltype(a) for a in args], duckdb.sqltype(result),
                            type=duckdb.func.ARROW, **options)  # fmt: skip
    except (duckdb.CatalogException, duckdb.NotImplementedException) as err:  # by another cursor / on this one
        if "already" not in str(err):
            raise
