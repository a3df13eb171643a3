"""Scoring with a stored model: the vectorised DuckDB function behind PREDICT, and EVALUATE.

PREDICT runs inside DuckDB's pipeline: the model is a scalar Arrow UDF taking a STRUCT of
its features, called once per DuckDB vector, on every DuckDB thread, with LightGBM on one
thread per call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from sqlml import features, metrics, models
from sqlml.catalog import ModelVersion
from sqlml.errors import CatalogError, ExecutionError, SqlmlError
from sqlml.features import FeatureSpec, quote
from sqlml.models import Model
from sqlml.plan import output_type

_LOADED: dict[tuple[str, str], tuple[Model, list[FeatureSpec]]] = {}
_FAILED: list[SqlmlError] = []  # the last error a scoring function raised inside DuckDB


def reported(fn: Callable[..., pa.Array]) -> Callable[..., pa.Array]:
    """`fn` keeping the SqlmlError it raises, which DuckDB turns into text, for `failure`."""

    @functools.wraps(fn)  # DuckDB counts the parameters of the signature
    def call(*args: Any) -> pa.Array:
        try:
            return fn(*args)
        except SqlmlError as err:
            _FAILED[:] = [err]
            raise

    return call


def failure() -> SqlmlError | None:
    """The error the last failing scoring function raised (once)."""
    return _FAILED.pop() if _FAILED else None


def _key(model: ModelVersion) -> tuple[str, str]:
    return str(model.path), f"{model.meta.get('created_at')}:{model.meta.get('model_sha256')}"


def load(model: ModelVersion) -> tuple[Model, list[FeatureSpec]]:
    """A stored version's model and feature specs, checked against each other; loaded once
    per process (a version never changes: its checksum and creation time key the cache).
    Always from its text: a booster fresh from training predicts about 5% slower."""
    key = _key(model)
    if key in _LOADED:
        return _LOADED[key]
    trainer = models.get(model.meta["trainer"])
    if trainer is None:
        raise ExecutionError(
            f"Model '{model.name}' was trained with '{model.meta['trainer']}', which is not installed."
        )
    specs = [FeatureSpec(**f) for f in model.meta["features"]]
    broken = f"Model '{model.name}' version {model.version} is broken"
    hint = f"Restore its files, or DROP MODEL {model.name} VERSION {model.version} and train it again."
    try:
        loaded = trainer.load(model.model_text())
    except ValueError as err:
        raise CatalogError(f"{broken}: {model.path / 'model.txt'} is not a whole model ({err}).", hint=hint) from err
    names = loaded.importance()[0]
    inputs = features.lightgbm_names([n for s in specs for n in s.inputs()])
    if names != inputs:
        shown = names if len(names) < 20 else f"{len(names)} inputs"
        raise CatalogError(
            f"{broken}: its model file has features {shown}, its metadata {inputs if len(inputs) < 20 else len(inputs)}.",
            hint=hint,
        )
    if len(_LOADED) >= 64:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[key] = (loaded, specs)
    return loaded, specs


def input_type(specs: list[FeatureSpec]) -> str:
    fields = ", ".join(f"{quote(s.name)} {s.fetch_type}" for s in specs)
    return f"STRUCT({fields})"


def scoring_function(model_version: ModelVersion) -> tuple[Callable[[Any], pa.Array], str, str]:
    """The UDF for PREDICT: (function, input STRUCT type, output type)."""
    model, specs = load(model_version)

    def score(struct: pa.StructArray | pa.ChunkedArray) -> pa.Array:
        if isinstance(struct, pa.ChunkedArray):
            struct = struct.combine_chunks()
        matrix, _ = features.design(struct.flatten(), specs, len(struct))
        out = model.predict(matrix, threads=1)
        if out.ndim == 2:
            rows, k = out.shape
            return pa.ListArray.from_arrays(
                pa.array(np.arange(0, rows * k + 1, k, dtype=np.int32)), pa.array(out.ravel())
            )
        return pa.array(out)

    return reported(score), input_type(specs), output_type(model_version.meta)


def point_in_time_function(
    catalog: Any, first: ModelVersion, history: tuple[tuple[int, int], ...]
) -> tuple[Callable[[Any, Any], pa.Array], list[str], str]:
    """The UDF for PREDICT over a stream: each event scored by the newest version promoted at
    or before its event time (`history`: (serving from µs, version), in promotion order).
    Events older than the first promotion get NULL: no version existed yet that had not seen them.
    """
    starts = np.array([since for since, _ in history], dtype=np.int64)
    versions = [v for _, v in history]
    loaded: dict[int, tuple[Model, list[FeatureSpec]]] = {}
    meta = first.meta
    score_type = output_type(meta)

    def score(struct: Any, times: Any) -> pa.Array:
        if isinstance(struct, pa.ChunkedArray):
            struct, times = struct.combine_chunks(), times.combine_chunks()
        t = times.to_numpy(zero_copy_only=False)
        which = np.searchsorted(starts, t, side="right") - 1  # index into history, -1: none yet
        columns = struct.flatten()
        k = len(meta["classes"]) if meta["task"] == "multiclass" else 1
        out = np.full((len(t), k), np.nan)
        version_of = np.full(len(t), -1, dtype=np.int64)
        for index in np.unique(which[which >= 0]):
            version = versions[index]
            if version not in loaded:
                loaded[version] = load(catalog.get(first.name, version))
            model, specs = loaded[version]
            rows = np.flatnonzero(which == index)
            matrix, _ = features.design([c.take(pa.array(rows)) for c in columns], specs, len(rows))
            out[rows] = model.predict(matrix, threads=1).reshape(len(rows), k)
            version_of[rows] = version
        missing = version_of < 0
        if k > 1:
            offsets = pa.array(np.arange(0, len(t) * k + 1, k, dtype=np.int32))
            scores: pa.Array = pa.ListArray.from_arrays(offsets, pa.array(out.ravel()), mask=pa.array(missing))
        else:
            scores = pa.array(out[:, 0], mask=missing)
        return pa.StructArray.from_arrays([scores, pa.array(version_of, mask=missing)], names=["score", "version"])

    return reported(score), [input_type(load(first)[1]), "BIGINT"], f"STRUCT(score {score_type}, version BIGINT)"


def evaluate(
    fetch: Callable[[str], pa.Table], model_version: ModelVersion, source_sql: str | None, rows: pa.Table | None = None
) -> dict[str, Any]:
    """EVALUATE's one row: the stored validation metrics, or metrics on `source_sql`'s rows
    (or on `rows`, a query's output already in Arrow)."""
    meta = model_version.meta
    head = {"model": model_version.name, "version": model_version.version}
    names = [m.name for m in metrics.for_task(meta["task"])]
    if source_sql is None and rows is None:
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
    columns = features.model_columns(specs, meta["label"], meta["label_type"], meta.get("group"))
    if rows is not None:
        table = features.select_arrow(columns, rows)
    else:
        table = fetch(features.select_sql(columns, str(source_sql)))
    if table.num_rows == 0:
        raise ExecutionError("EVALUATE's ON query returned no rows.")
    y = features.encode_label(table.column(features.LABEL), meta["label"], meta.get("classes"))
    groups = None
    if meta.get("group"):
        groups, order = features.group_sizes(table.column(features.GROUP), meta["group"])
        if order is not None:
            table, y = table.take(pa.array(order)), y[order]
    matrix, unseen = features.design([table.column(s.name) for s in specs], specs, table.num_rows)
    score = model.predict(matrix)
    if meta.get("classes"):
        y = y.astype(np.int64)
    values = metrics.evaluate(meta["task"], y, score, groups)
    return {**head, "rows": table.num_rows, **values, "unseen_categories": unseen}
