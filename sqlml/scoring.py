"""Scoring with a stored model: the vectorised DuckDB function behind PREDICT, and EVALUATE.

PREDICT runs inside DuckDB's pipeline: the model is a scalar Arrow UDF taking a STRUCT of
its features, called once per DuckDB vector, on every DuckDB thread, with LightGBM on one
thread per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from sqlml import features, metrics, models
from sqlml.catalog import ModelVersion
from sqlml.errors import ExecutionError
from sqlml.features import FeatureSpec, quote
from sqlml.models import Model

_ARROW_TYPES = {
    "BOOLEAN": pa.bool_(), "TINYINT": pa.int8(), "SMALLINT": pa.int16(), "INTEGER": pa.int32(),
    "BIGINT": pa.int64(), "UTINYINT": pa.uint8(), "USMALLINT": pa.uint16(), "UINTEGER": pa.uint32(),
    "UBIGINT": pa.uint64(), "VARCHAR": pa.string(),
}  # fmt: skip


def load(model: ModelVersion) -> tuple[Model, list[FeatureSpec]]:
    trainer = models.get(model.meta["trainer"])
    if trainer is None:
        raise ExecutionError(
            f"Model '{model.name}' was trained with '{model.meta['trainer']}', which is not installed."
        )
    specs = [FeatureSpec(**f) for f in model.meta["features"]]
    return trainer.load(model.model_text()), specs


def output_type(meta: dict[str, Any]) -> str:
    """The DuckDB type of the scoring function's STRUCT result."""
    if meta["task"] in ("binary", "multiclass"):
        label = meta["label_type"]
        return f"STRUCT(prediction {label}, probability DOUBLE, probabilities MAP({label}, DOUBLE))"
    return "STRUCT(prediction DOUBLE)"


def input_type(specs: list[FeatureSpec]) -> str:
    fields = ", ".join(f"{quote(s.name)} {'DOUBLE' if s.kind == 'numeric' else 'VARCHAR'}" for s in specs)
    return f"STRUCT({fields})"


def class_outputs(meta: dict[str, Any], score: np.ndarray) -> dict[str, pa.Array]:
    """prediction, probability and probabilities for a classifier's scores."""
    classes = pa.array(meta["classes"], _ARROW_TYPES.get(meta["label_type"]))
    proba = np.column_stack([1 - score, score]) if score.ndim == 1 else score
    code = np.argmax(proba, axis=1)
    rows, k = proba.shape
    probabilities = pa.MapArray.from_arrays(
        pa.array(np.arange(0, rows * k + 1, k, dtype=np.int32)),
        classes.take(pa.array(np.tile(np.arange(k), rows))),
        pa.array(proba.ravel()),
    )
    return {
        "prediction": classes.take(pa.array(code)),
        "probability": pa.array(score if score.ndim == 1 else proba[np.arange(rows), code]),
        "probabilities": probabilities,
    }


def scoring_function(model_version: ModelVersion) -> tuple[Callable[[Any], pa.Array], str, str]:
    """The UDF for PREDICT: (function, input STRUCT type, output STRUCT type)."""
    model, specs = load(model_version)
    meta = model_version.meta

    def score(struct: pa.StructArray | pa.ChunkedArray) -> pa.Array:
        if isinstance(struct, pa.ChunkedArray):
            struct = struct.combine_chunks()
        columns = [features.encode_column(col, spec) for col, spec in zip(struct.flatten(), specs)]
        out = model.predict(features.to_matrix(columns, len(struct)), threads=1)
        if meta["task"] in ("binary", "multiclass"):
            fields = class_outputs(meta, out)
        else:
            fields = {"prediction": pa.array(out)}
        return pa.StructArray.from_arrays(list(fields.values()), names=list(fields))

    return score, input_type(specs), output_type(meta)


def evaluate(fetch: Callable[[str], pa.Table], model_version: ModelVersion, source_sql: str | None) -> dict[str, Any]:
    """EVALUATE's one row: the stored validation metrics, or metrics on `source_sql`'s rows."""
    meta = model_version.meta
    head = {"model": model_version.name, "version": model_version.version}
    names = [m.name for m in metrics.for_task(meta["task"])]
    if source_sql is None:
        if not meta.get("validation_rows"):
            raise ExecutionError(
                f"Model '{model_version.name}' version {model_version.version} kept no validation rows.",
                hint="It trained on every row (validation = 0 or under 500 rows); use EVALUATE MODEL ... ON (SELECT ...).",
            )
        return {
            **head,
            "rows": meta["validation_rows"],
            **{n: meta["metrics"].get(n) for n in names},
            "unseen_categories": 0,
        }
    model, specs = load(model_version)
    cols = features.select_list(specs) + [f"{quote(meta['label'])} AS __sqlml_label"]
    if meta.get("group"):
        cols.append(f"{quote(meta['group'])} AS __sqlml_group")
    table = fetch(f"SELECT {', '.join(cols)} FROM ({source_sql}) AS __sqlml_input")
    if table.num_rows == 0:
        raise ExecutionError("EVALUATE's ON query returned no rows.")
    y = features.encode_label(table.column("__sqlml_label"), meta["label"], meta.get("classes"))
    groups = None
    if meta.get("group"):
        groups, order = features.group_sizes(table.column("__sqlml_group"), meta["group"])
        if order is not None:
            table, y = table.take(pa.array(order)), y[order]
    encoded, unseen = features.encode(table, specs)
    score = model.predict(features.to_matrix(encoded.columns, encoded.num_rows))
    if meta.get("classes"):
        y = y.astype(np.int64)
    values = metrics.evaluate(meta["task"], y, score, groups)
    return {**head, "rows": table.num_rows, **values, "unseen_categories": unseen}
