"""How table columns become model inputs.

A feature column is one of four kinds:

- numeric (numbers and BOOLEAN): one input, as DOUBLE;
- categorical (VARCHAR, ENUM): one input, coded by its position in the sorted list of
  categories seen in training (an unseen category is missing, NULL);
- vector (``FLOAT[n]``, ``DOUBLE[n]``, or a LIST of numbers of one length): n inputs named
  ``col[1]`` .. ``col[n]``, taken from Arrow's contiguous values without a loop over rows;
- text (a VARCHAR named in ``TEXT (...)``): hashed token buckets, see `sqlml.text`.

Everything else is refused, since LightGBM aborts the process on Arrow types it does not know.

>>> import pyarrow as pa
>>> spec = FeatureSpec("plan", "VARCHAR", "categorical", ["basic", "pro"])
>>> encode_column(pa.chunked_array([["pro", "gold", None]]), spec).to_pylist()
[1.0, None, None]
>>> vec = FeatureSpec("v", "FLOAT[2]", "vector", size=2)
>>> vec.inputs()
['v[1]', 'v[2]']
>>> vector_block(pa.array([[1.0, 2.0], None], pa.list_(pa.float32(), 2)), vec).tolist()
[[1.0, 2.0], [nan, nan]]
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml.errors import ExecutionError

_NUMERIC = {
    "boolean", "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint",
    "uinteger", "ubigint", "uhugeint", "float", "double", "decimal",
}  # fmt: skip
_CATEGORICAL = {"varchar", "enum"}
_FLOAT_VECTOR = re.compile(r"^(FLOAT|DOUBLE)\[\d*\]$")
# LightGBM refuses these characters in feature names and turns whitespace into _
_LIGHTGBM_NAME = str.maketrans({"[": "(", "]": ")", "{": "(", "}": ")", '"': "'", ",": ";", ":": "="})


@dataclass
class FeatureSpec:
    """One feature column: its name, DuckDB type, kind, and what training learnt of it
    (categories; a vector's length and kept elements; a text column's featurizer)."""

    name: str
    type: str
    kind: str  # "numeric" | "categorical" | "vector" | "text"
    categories: list[Any] = field(default_factory=list)
    size: int = 0  # vector: values per row (0 until training has seen the rows)
    keep: list[int] | None = None  # vector: kept element positions (None: all); text: kept buckets
    text: dict[str, Any] | None = None  # text: options and learnt weights (see sqlml.text)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, 0) or k in ("name", "type", "kind")}

    def inputs(self) -> list[str]:
        """The names of the model inputs this column becomes."""
        if self.kind == "vector":
            positions = self.keep if self.keep is not None else range(self.size)
            return [f"{self.name}[{i + 1}]" for i in positions]
        if self.kind == "text":
            return [f"{self.name}:{token}" for token in (self.text or {}).get("tokens", [])]
        return [self.name]

    @property
    def fetch_type(self) -> str:
        """The DuckDB type the column is cast to when fetched, and in PREDICT's input."""
        if self.kind == "numeric":
            return "DOUBLE"
        if self.kind == "vector":
            return "FLOAT[]" if self.type.startswith("FLOAT[") else "DOUBLE[]"
        return "VARCHAR"


def lightgbm_name(name: str) -> str:
    """An input's name as LightGBM stores it (it refuses JSON's special characters).

    >>> lightgbm_name('pixels[3]')
    'pixels(3)'
    """
    return re.sub(r"\s", "_", name.translate(_LIGHTGBM_NAME))


def lightgbm_names(names: list[str]) -> list[str]:
    """Every input's LightGBM name, made unique (two names may map to one: 'a b' and 'a_b').

    >>> lightgbm_names(['a b', 'a_b', 'v[1]'])
    ['a_b', 'a_b~2', 'v(1)']
    """
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        safe = base = lightgbm_name(name)
        k = 1
        while safe in seen:
            k += 1
            safe = f"{base}~{k}"
        seen.add(safe)
        out.append(safe)
    return out


def kind_of(duckdb_type: Any) -> str | None:
    """'numeric', 'categorical', 'vector', or None for a type a model cannot take."""
    type_id = getattr(duckdb_type, "id", str(duckdb_type).lower())
    if type_id in _NUMERIC:
        return "numeric"
    if type_id in _CATEGORICAL:
        return "categorical"
    if type_id in ("array", "list"):
        child = dict(duckdb_type.children)["child"]
        return "vector" if getattr(child, "id", None) in _NUMERIC else None
    return None


def vector_size(duckdb_type: Any) -> int:
    """The length of a fixed-size ARRAY type; 0 for a LIST (known only from its rows)."""
    return int(dict(duckdb_type.children).get("size", 0)) if getattr(duckdb_type, "id", "") == "array" else 0


def quote(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


# one column of the rows a model trains on or is evaluated on:
# (output name, input column, DuckDB type to cast to; None keeps the input's type)
Column = tuple[str, str, "str | None"]
LABEL, GROUP, WEIGHT = "__sqlml_label", "__sqlml_group", "__sqlml_weight"
_ARROW_TYPES = {
    "DOUBLE": pa.float64(),
    "VARCHAR": pa.string(),
    "DOUBLE[]": pa.list_(pa.float64()),
    "FLOAT[]": pa.list_(pa.float32()),
}


def model_columns(specs: list[FeatureSpec], label: str | None, label_type: str | None, group: str | None = None,
                  weight: str | None = None) -> list[Column]:  # fmt: skip
    """The columns fetched to train or evaluate: features as their `fetch_type` (a FLOAT or
    DOUBLE vector as it is), the label (an ENUM label as the VARCHAR its model stores),
    group and weight."""
    columns: list[Column] = [
        (s.name, s.name, None if s.kind == "vector" and _FLOAT_VECTOR.match(s.type) else s.fetch_type) for s in specs
    ]
    if label is not None:  # None: a model that learns without a label (clustering, decomposition)
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
    """Numeric and categorical features as a table of DOUBLE columns (named as LightGBM
    stores them), and how many categorical values were unseen."""
    columns, unseen = [], 0
    for spec in specs:
        raw = table.column(spec.name)
        coded = encode_column(raw, spec)
        if spec.kind == "categorical":
            unseen += coded.null_count - raw.null_count
        columns.append(coded)
    return pa.table(columns, names=lightgbm_names([s.name for s in specs])), unseen


def to_matrix(columns: list[pa.Array | pa.ChunkedArray], rows: int, order: Literal["C", "F"] = "C") -> np.ndarray:
    """A (rows x features) float64 matrix, NULL as NaN, filled one column at a time: row-major
    (`order = "C"`, the layout LightGBM predicts fastest from) or column-major ("F", filled
    with contiguous writes, for scikit-learn's fits)."""
    if order == "C" and columns and all(isinstance(c, pa.Array) for c in columns):  # one batch: one C++ call
        return _tensor(pa.RecordBatch.from_arrays(columns, names=[str(i) for i in range(len(columns))]))
    out = np.empty((rows, len(columns)), dtype=np.float64, order=order)
    for i, col in enumerate(columns):
        start = 0
        for chunk in col.chunks if isinstance(col, pa.ChunkedArray) else [col]:  # no joined copy of the chunks
            filled = chunk if chunk.null_count == 0 else pc.fill_null(chunk, np.nan)
            out[start : start + len(chunk), i] = filled.to_numpy(zero_copy_only=False)
            start += len(chunk)
    return out


def numbers_matrix(struct: pa.StructArray, order: Literal["C", "F"] = "C") -> np.ndarray:
    """A STRUCT of numeric features (PREDICT's input) as a float64 matrix, NULL as NaN, in one
    Arrow call: row-major, or column-major (`order = "F"`: a copy of each column, half the time
    of the row-major transpose, for models whose arithmetic takes either)."""
    return _tensor(pa.RecordBatch.from_struct_array(struct), order)


def _tensor(batch: pa.RecordBatch, order: Literal["C", "F"] = "C") -> np.ndarray:
    """A batch of numeric columns as a float64 matrix, NULL as NaN (Arrow's C++ writes it:
    several times faster than a NumPy write per column)."""
    return np.asarray(batch.to_tensor(null_to_nan=True, row_major=order == "C"), dtype=np.float64)


def vector_block(column: pa.Array | pa.ChunkedArray, spec: FeatureSpec) -> np.ndarray:
    """A vector column as a (rows x kept elements) matrix, NULL as NaN, a view of Arrow's
    values where it can be. Rows of another length than the spec's are an error with counts;
    a spec of size 0 takes its length from the rows."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(array) == 0:
        return np.empty((0, len(spec.inputs())), dtype=np.float64)
    if pa.types.is_fixed_size_list(array.type):
        counts = [{"values": array.type.list_size, "counts": len(array) - array.null_count}]
    else:
        counts = pc.value_counts(pc.list_value_length(array).drop_null()).to_pylist()
    counts = [c for c in counts if c["counts"]]
    if not spec.size and all(c["values"] == 0 for c in counts):
        raise ExecutionError(
            f"Vector feature '{spec.name}' is NULL or empty in every row.", hint="Leave it out with EXCLUDE."
        )
    if not spec.size and len(counts) == 1:
        spec.size = int(counts[0]["values"])
    if not spec.size or any(c["values"] != spec.size for c in counts):
        found = ", ".join(f"{c['values']} ({c['counts']} rows)" for c in sorted(counts, key=lambda c: -c["counts"]))
        expected = f"the model's {spec.size}" if spec.size else "one length"
        raise ExecutionError(
            f"Vector feature '{spec.name}' has rows of lengths {found}; every row needs {expected}.",
            hint=f"Pad or cut the vectors to one length (e.g. CAST({spec.name} AS FLOAT[n])), or filter the others out.",
        )
    valid = array if array.null_count == 0 else array.filter(array.is_valid())
    values = valid.flatten()
    if values.null_count:
        values = pc.fill_null(values, np.nan)
    matrix = values.to_numpy(zero_copy_only=False).reshape(len(valid), spec.size)
    if array.null_count:
        full = np.full((len(array), spec.size), np.nan, dtype=matrix.dtype)
        full[np.asarray(array.is_valid())] = matrix
        matrix = full
    return matrix if spec.keep is None else matrix[:, spec.keep]


def design(columns: list[pa.Array | pa.ChunkedArray], specs: list[FeatureSpec], rows: int) -> tuple[Any, int]:
    """The model's input matrix for the feature columns (aligned with `specs`) and how many
    categorical values were unseen: dense row-major (float32 when every input is), or a CSR
    matrix when a text feature is among them (its buckets are mostly empty)."""
    from sqlml import text

    if all(spec.kind in ("numeric", "categorical") for spec in specs):  # the common case: one matrix, filled once
        coded = [encode_column(column, spec) for column, spec in zip(columns, specs)]
        unseen = sum(c.null_count - column.null_count for c, column in zip(coded, columns))
        return to_matrix(coded, rows), unseen
    blocks: list[Any] = []
    unseen = 0
    for column, spec in zip(columns, specs):
        if spec.kind == "vector":
            blocks.append(vector_block(column, spec))
        elif spec.kind == "text":
            blocks.append(text.transform(column, spec))
        else:
            coded = encode_column(column, spec)
            if spec.kind == "categorical":
                unseen += coded.null_count - column.null_count
            blocks.append(to_matrix([coded], rows))
    if any(spec.kind == "text" for spec in specs):
        import scipy.sparse as sp

        return sp.hstack(blocks, format="csr", dtype=np.float64), unseen
    if len(blocks) == 1:
        return blocks[0], unseen
    dtype = np.float32 if all(b.dtype == np.float32 for b in blocks) else np.float64
    return np.ascontiguousarray(np.hstack(blocks), dtype=dtype), unseen


def take_rows(matrix: Any, rows: np.ndarray) -> Any:
    """The given rows of an input matrix: an Arrow table, a NumPy array or a CSR matrix."""
    return matrix.take(pa.array(rows)) if isinstance(matrix, pa.Table) else matrix[rows]


def keep_inputs(specs: list[FeatureSpec], kept: np.ndarray) -> list[FeatureSpec]:
    """The specs narrowed to the inputs at positions `kept` (sorted): columns without a kept
    input are dropped, vectors and text keep only the chosen elements."""
    out, start, kept_set = [], 0, set(kept.tolist())
    for spec in specs:
        width = len(spec.inputs())
        mine = [i - start for i in range(start, start + width) if i in kept_set]
        start += width
        if not mine:
            continue
        if spec.kind == "vector":
            positions = spec.keep if spec.keep is not None else list(range(spec.size))
            spec.keep = [positions[i] for i in mine]
        elif spec.kind == "text":
            from sqlml import text

            text.narrow(spec, mine)
        out.append(spec)
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
