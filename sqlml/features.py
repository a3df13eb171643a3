"""How table columns become LightGBM inputs.

Numeric and BOOLEAN columns are cast to DOUBLE by DuckDB; VARCHAR and ENUM columns become
LightGBM categorical features, coded by their position in the sorted list of categories
seen in training (an unseen category is missing, NULL). Everything else is refused, since
LightGBM aborts the process on Arrow types it does not know.

>>> import pyarrow as pa
>>> spec = FeatureSpec("plan", "VARCHAR", "categorical", ["basic", "pro"])
>>> encode_column(pa.chunked_array([["pro", "gold", None]]), spec).to_pylist()
[1.0, None, None]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml.errors import ExecutionError

_NUMERIC = {
    "boolean", "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint",
    "uinteger", "ubigint", "uhugeint", "float", "double", "decimal",
}  # fmt: skip
_CATEGORICAL = {"varchar", "enum"}


@dataclass
class FeatureSpec:
    """One model input: its column name, DuckDB type, kind and (for categoricals) categories."""

    name: str
    type: str
    kind: str  # "numeric" | "categorical"
    categories: list[Any] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def kind_of(duckdb_type: Any) -> str | None:
    """'numeric', 'categorical', or None for a type LightGBM cannot take."""
    type_id = getattr(duckdb_type, "id", str(duckdb_type).lower())
    if type_id in _NUMERIC:
        return "numeric"
    if type_id in _CATEGORICAL:
        return "categorical"
    return None


def quote(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


# one column of the rows a model trains on or is evaluated on:
# (output name, input column, DuckDB type to cast to; None keeps the input's type)
Column = tuple[str, str, "str | None"]
LABEL, GROUP, WEIGHT = "__sqlml_label", "__sqlml_group", "__sqlml_weight"
_ARROW_TYPES = {"DOUBLE": pa.float64(), "VARCHAR": pa.string()}


def model_columns(specs: list[FeatureSpec], label: str, label_type: str, group: str | None = None,
                  weight: str | None = None) -> list[Column]:  # fmt: skip
    """The columns fetched to train or evaluate: numeric features as DOUBLE, categorical ones
    as text, the label (an ENUM label as the VARCHAR its model stores), group and weight."""
    columns: list[Column] = [(s.name, s.name, "DOUBLE" if s.kind == "numeric" else "VARCHAR") for s in specs]
    columns.append((LABEL, label, "VARCHAR" if label_type == "VARCHAR" else None))
    if group:
        columns.append((GROUP, group, None))
    if weight:
        columns.append((WEIGHT, weight, "DOUBLE"))
    return columns


def select_sql(columns: list[Column], source_sql: str) -> str:
    """The query fetching `columns` from a query's rows, for DuckDB to run."""
    cols = [f"CAST({quote(src)} AS {cast}) AS {quote(out)}" if cast else f"{quote(src)} AS {quote(out)}"
            for out, src, cast in columns]  # fmt: skip
    return f"SELECT {', '.join(cols)} FROM ({source_sql}) AS __sqlml_input"


def select_arrow(columns: list[Column], table: pa.Table) -> pa.Table:
    """The same columns taken from rows already in Arrow (a closed window's), without a query."""
    arrays = [
        table.column(src) if cast is None else pc.cast(table.column(src), _ARROW_TYPES[cast])
        for _, src, cast in columns
    ]
    return pa.table(arrays, names=[out for out, _, _ in columns])


def learn_categories(table: pa.Table, specs: list[FeatureSpec]) -> None:
    """Fill in each categorical spec's sorted list of categories from training data."""
    for spec in specs:
        if spec.kind == "categorical":
            values = pc.unique(table.column(spec.name)).drop_null()
            spec.categories = values.take(pc.sort_indices(values)).to_pylist()


def encode_column(column: pa.ChunkedArray | pa.Array, spec: FeatureSpec) -> pa.ChunkedArray | pa.Array:
    """A categorical column as DOUBLE codes (NULL where unseen); numeric columns pass through."""
    if spec.kind != "categorical":
        return column
    codes = pc.index_in(column, value_set=pa.array(spec.categories, pa.string()))
    return pc.cast(codes, pa.float64())


def encode(table: pa.Table, specs: list[FeatureSpec]) -> tuple[pa.Table, int]:
    """The features as a table of DOUBLE columns, and how many categorical values were unseen."""
    columns, unseen = [], 0
    for spec in specs:
        raw = table.column(spec.name)
        coded = encode_column(raw, spec)
        if spec.kind == "categorical":
            unseen += coded.null_count - raw.null_count
        columns.append(coded)
    return pa.table(columns, names=[s.name for s in specs]), unseen


def to_matrix(columns: list[pa.Array | pa.ChunkedArray], rows: int) -> np.ndarray:
    """A row-major float64 matrix (rows x features), NULL as NaN: the layout LightGBM predicts
    fastest from, filled one column at a time."""
    out = np.empty((rows, len(columns)), dtype=np.float64)
    for i, col in enumerate(columns):
        out[:, i] = (
            col.to_numpy(zero_copy_only=False)
            if col.null_count == 0
            else pc.fill_null(col, np.nan).to_numpy(zero_copy_only=False)
        )
    return out


def learn_classes(column: pa.ChunkedArray, label: str) -> list[Any]:
    """The sorted distinct labels of a classifier; at least two."""
    values = pc.unique(column).drop_null()
    classes = values.take(pc.sort_indices(values)).to_pylist()
    if len(classes) < 2:
        raise ExecutionError(
            f"Label '{label}' has only one class ({classes[0]!r})." if classes else f"Label '{label}' has no values.",
            hint="A classifier needs rows of at least two classes; check the query's WHERE clause.",
        )
    return classes


def encode_label(column: pa.ChunkedArray, label: str, classes: list[Any] | None) -> np.ndarray:
    """The label as float64: class codes when `classes` is given, else the values.

    NULL labels, and labels outside `classes`, are errors with their counts: rows are never
    dropped silently.
    """
    if column.null_count:
        raise ExecutionError(
            f"Label '{label}' is NULL in {column.null_count} of {len(column)} rows.",
            hint=f"Filter them out (WHERE {label} IS NOT NULL) or fill them (coalesce).",
        )
    if classes is None:
        return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    try:
        known = pa.array(classes, column.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise ExecutionError(
            f"Label '{label}' has type {column.type}, but the model's classes are {classes}.",
            hint="Cast the label to the type it had in training.",
        ) from err
    codes = pc.index_in(column, value_set=known)
    if codes.null_count:
        unknown = pc.unique(pc.filter(column, pc.is_null(codes))).to_pylist()[:5]
        raise ExecutionError(
            f"Label '{label}' has {codes.null_count} rows with values the model was not trained on: {unknown}.",
            hint=f"The model knows the classes {classes}.",
        )
    return np.asarray(pc.cast(codes, pa.float64()).to_numpy(zero_copy_only=False))


def group_sizes(column: pa.ChunkedArray, group: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Sizes of the runs of equal group ids, and the stable order that makes groups
    contiguous when they are not (None when they already are)."""
    if column.null_count:
        raise ExecutionError(
            f"Group column '{group}' is NULL in {column.null_count} rows.",
            hint=f"Filter them out (WHERE {group} IS NOT NULL).",
        )
    codes = pc.dictionary_encode(column.combine_chunks()).indices.to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    order = None
    if len(starts) != len(np.unique(codes)):
        order = np.argsort(codes, kind="stable")
        codes = codes[order]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    return np.diff(np.r_[starts, len(codes)]), order
