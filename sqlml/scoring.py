"""Scoring with a stored model: the vectorised DuckDB function behind PREDICT, and EVALUATE.

PREDICT runs inside DuckDB's pipeline: the model is a scalar Arrow UDF taking a STRUCT of
its features, called once per DuckDB vector, on every DuckDB thread, with LightGBM or ONNX
Runtime on one thread per call (a slow model's vector in parts, one thread each).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from sqlml import features, metrics, models, transform
from sqlml.catalog import ModelVersion
from sqlml.errors import CatalogError, ExecutionError, SqlmlError
from sqlml.features import FeatureSpec, quote
from sqlml.models import Model
from sqlml.models import onnx as onnx_models
from sqlml.table_sql import EXPLANATION_TYPE, output_type, score_width

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


def one_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A function argument as one Arrow array (DuckDB hands a ChunkedArray, nearly always of one
    chunk: taken as it is, since combining copies even one)."""
    if isinstance(column, pa.Array):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _key(model: ModelVersion) -> tuple[str, str]:
    return str(model.path), f"{model.meta.get('created_at')}:{model.meta.get('model_sha256')}"


def load(model: ModelVersion) -> tuple[Model, list[FeatureSpec]]:
    """A stored version's model and feature specs, checked against each other; loaded once
    per process (a version never changes: its checksum and creation time key the cache).
    Always from its text: a booster fresh from training predicts about 5% slower."""
    key = _key(model)
    if key in _LOADED:
        return _LOADED[key]
    name = model.meta["trainer"]
    trainer = models.get(name)
    if trainer is None and name != onnx_models.IMPORTED:
        raise ExecutionError(f"Model '{model.name}' was trained with '{name}', which is not installed.")
    specs = [FeatureSpec(**f) for f in model.meta["features"]]
    broken = f"Model '{model.name}' version {model.version} is broken"
    hint = f"Restore its files, or DROP MODEL {model.name} VERSION {model.version} and train it again."
    try:
        data = model.model_data()
        loaded = trainer.load(data, model.meta) if trainer is not None else onnx_models.load(data, model.meta)
    except ValueError as err:
        raise CatalogError(f"{broken}: {model.model_path} is not a whole model ({err}).", hint=hint) from err
    names = loaded.input_names()
    inputs = features.lightgbm_names([n for s in specs for n in s.inputs()])
    if names is not None and names != inputs or names is None and loaded.width != len(inputs):
        found = names if names is not None and len(names) < 20 else f"{loaded.width} inputs"
        raise CatalogError(
            f"{broken}: its model file has features {found}, its metadata {inputs if len(inputs) < 20 else len(inputs)}.",
            hint=hint,
        )
    if len(_LOADED) >= 64:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[key] = (loaded, specs)
    return loaded, specs


def input_type(specs: list[FeatureSpec]) -> str:
    fields = ", ".join(f"{quote(s.name)} {s.fetch_type}" for s in specs)
    return f"STRUCT({fields})"


def scoring_function(model_version: ModelVersion) -> tuple[Callable[[Any, Any], pa.Array], str, str]:
    """The UDF for PREDICT: (function of the features' STRUCT and DuckDB's `threads`, input
    STRUCT type, output type). A model that spends over `HEAVY` seconds of CPU on a vector
    scores the next ones in parts on up to `threads` threads: DuckDB scans a table in row
    groups of 122,880 rows, one per thread, so a smaller table would score on one core."""
    model, specs = load(model_version)
    embedding = bool(model_version.meta.get("embedding"))
    numbers_only = all(s.kind == "numeric" for s in specs)
    order: Literal["C", "F"] = getattr(model, "input_order", "C")  # the matrix layout the model computes from fastest
    cost = [0.0]  # CPU seconds the last vector took

    def part(matrix: Any) -> tuple[np.ndarray, float]:
        start = time.thread_time()  # LightGBM and ONNX Runtime compute on the calling thread
        return scores(model, matrix, embedding), time.thread_time() - start

    def score(struct: pa.StructArray | pa.ChunkedArray, threads: pa.Array | pa.ChunkedArray) -> pa.Array:
        struct = one_array(struct)
        if numbers_only:
            matrix = features.numbers_matrix(struct, order)
        else:
            matrix, _ = features.design(struct.flatten(), specs, len(struct))
        workers = min(int(threads[0].as_py() or 1) if len(threads) else 1, len(struct) // 256)
        if cost[0] > HEAVY and workers > 1:
            step = -(-len(struct) // workers)  # row slices: views of the matrix (dense or CSR), in order
            done = list(_pool().map(part, [matrix[i : i + step] for i in range(0, len(struct), step)]))
            out, cost[0] = np.concatenate([o for o, _ in done]), sum(c for _, c in done)
        else:
            out, cost[0] = part(matrix)
        if out.ndim == 2:
            rows, k = out.shape
            return pa.ListArray.from_arrays(
                pa.array(np.arange(0, rows * k + 1, k, dtype=np.int32)), pa.array(out.ravel())
            )
        return pa.array(out)

    return reported(score), input_type(specs), output_type(model_version.meta)


HEAVY = 0.002  # CPU seconds a vector's scoring takes before PREDICT splits the next ones over threads


@functools.cache  # one pool per process, made on first use
def _pool() -> ThreadPoolExecutor:
    """The threads heavy models score on (LightGBM and ONNX Runtime release the GIL)."""
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="sqlml-score")


def explanation_function(model_version: ModelVersion, top_k: int) -> tuple[Callable[[Any], pa.Array], str, str]:
    """The UDF behind EXPLAIN_PREDICT: per row, the `top_k` columns with the largest absolute
    attribution (exact SHAP values: LightGBM's pred_contrib for trees, coefficient x centred
    input for linear models; summed over a column's inputs), the baseline (the expected raw
    score) and the raw score, which the attributions and baseline add up to."""
    from sqlml.diagnostics import explain_rows

    model, specs = load(model_version)
    meta = model_version.meta
    entry = pa.struct([("feature", pa.string()), ("attribution", pa.float64())])

    def explain(struct: pa.StructArray | pa.ChunkedArray) -> pa.Array:
        struct = one_array(struct)
        matrix, _ = features.design(struct.flatten(), specs, len(struct))
        names, values, baseline = explain_rows(model, matrix, specs, meta)
        rows, k = len(struct), min(top_k, len(names))
        top = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
        picked = np.take_along_axis(values, top, axis=1)
        entries = pa.StructArray.from_arrays(
            [pa.array(np.asarray(names, dtype=object)[top.ravel()], pa.string()), pa.array(picked.ravel())],
            fields=list(entry),
        )
        offsets = pa.array(np.arange(0, rows * k + 1, k, dtype=np.int32))
        return pa.StructArray.from_arrays(
            [pa.ListArray.from_arrays(offsets, entries), pa.array(baseline), pa.array(baseline + values.sum(axis=1))],
            names=["attributions", "baseline", "raw_score"],
        )

    return reported(explain), input_type(specs), EXPLANATION_TYPE


def scores(model: Model, matrix: Any, embedding: bool = False) -> np.ndarray:
    """The model's scores for PREDICT (one thread), with its embedding after them when asked."""
    if embedding:
        return model.predict(matrix, threads=1, embedding=True)  # type: ignore[call-arg]
    return model.predict(matrix, threads=1)


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
        struct, times = one_array(struct), one_array(times)
        t = times.to_numpy(zero_copy_only=False)
        which = np.searchsorted(starts, t, side="right") - 1  # index into history, -1: none yet
        columns = struct.flatten()
        embedding = bool(meta.get("embedding"))
        k = score_width(meta) + int(meta.get("embedding") or 0)
        out = np.full((len(t), k), np.nan)
        version_of = np.full(len(t), -1, dtype=np.int64)
        for index in np.unique(which[which >= 0]):
            version = versions[index]
            if version not in loaded:
                loaded[version] = load(catalog.get(first.name, version))
            model, specs = loaded[version]
            rows = np.flatnonzero(which == index)
            matrix, _ = features.design([c.take(pa.array(rows)) for c in columns], specs, len(rows))
            out[rows] = scores(model, matrix, embedding).reshape(len(rows), k)
            version_of[rows] = version
        missing = version_of < 0
        if score_type.endswith("[]"):
            offsets = pa.array(np.arange(0, len(t) * k + 1, k, dtype=np.int32))
            result: pa.Array = pa.ListArray.from_arrays(offsets, pa.array(out.ravel()), mask=pa.array(missing))
        else:
            result = pa.array(out[:, 0], mask=missing)
        return pa.StructArray.from_arrays([result, pa.array(version_of, mask=missing)], names=["score", "version"])

    return reported(score), [input_type(load(first)[1]), "BIGINT"], f"STRUCT(score {score_type}, version BIGINT)"


@dataclass
class Scored:
    """Rows a model scored, with their labels: what EVALUATE and the diagnostics compute from.
    `y` holds class codes for classifiers; `matrix` is the model's inputs (None for stored scores)."""

    y: np.ndarray
    score: np.ndarray
    groups: np.ndarray | None = None
    matrix: Any = None
    unseen: int = 0

    @property
    def rows(self) -> int:
        return len(self.y)


def scored(
    fetch: Callable[[str], pa.Table], model_version: ModelVersion, source_sql: str | None, rows: pa.Table | None = None
) -> Scored:
    """The model's scores and the labels of `source_sql`'s rows (or of `rows`, a query's output
    already in Arrow)."""
    meta = model_version.meta
    model, specs = load(model_version)
    columns = features.model_columns(specs, meta["label"], meta["label_type"], meta.get("group"))
    if rows is not None:
        table = features.select_arrow(columns, rows)
    else:
        table = fetch(features.select_sql(columns, transform.applied_sql(meta, str(source_sql))))
    if table.num_rows == 0:
        raise ExecutionError(f"The data to evaluate model '{model_version.name}' on has no rows.")
    y = np.zeros(table.num_rows)
    if meta.get("label"):
        y = features.encode_label(table.column(features.LABEL), meta["label"], meta.get("classes"))
    groups = None
    if meta.get("group"):
        groups, order = features.group_sizes(table.column(features.GROUP), meta["group"])
        if order is not None:
            table, y = table.take(pa.array(order)), y[order]
    matrix, unseen = features.design([table.column(s.name) for s in specs], specs, table.num_rows)
    score = model.predict(matrix)  # an affine model's from its float64 terms, as PREDICT's SQL computes them
    return Scored(models.truth(meta["task"], model, matrix, y), score, groups, matrix, unseen)


EVALUATION_FILE = "evaluation.arrow"  # the validation rows' labels and scores, saved by TRAIN


def validation_scores(model_version: ModelVersion) -> Scored | None:
    """The labels and scores of the rows TRAIN kept for validation, or None when it kept none."""
    path = model_version.path / EVALUATION_FILE
    if not path.exists():
        return None
    try:
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
    except (OSError, pa.ArrowInvalid) as err:
        raise CatalogError(
            f"Model '{model_version.name}' version {model_version.version} is broken: {path} is unreadable ({err}).",
            hint="Evaluate it on data instead: ... (MODEL m, TABLE t).",
        ) from err
    score = table.column("score")
    if pa.types.is_list(score.type):
        values = score.combine_chunks()
        values = values.flatten().to_numpy(zero_copy_only=False).reshape(len(values), -1)
    else:
        values = score.to_numpy()
    groups = None
    if "group" in table.column_names:
        groups = np.bincount(table.column("group").to_numpy())
    return Scored(table.column("label").to_numpy(), values, groups)


def evaluate(
    fetch: Callable[[str], pa.Table], model_version: ModelVersion, source_sql: str | None, rows: pa.Table | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """EVALUATE's one row: the stored validation metrics, or metrics on `source_sql`'s rows
    (or on `rows`, a query's output already in Arrow); a binary model's class metrics at
    `threshold` (0.5 when None)."""
    meta = model_version.meta
    head = {"model": model_version.name, "version": model_version.version}
    names = [m.name for m in metrics.for_task(meta["task"])]
    if source_sql is None and rows is None:
        if not meta.get("validation_rows"):
            raise ExecutionError(
                f"Model '{model_version.name}' version {model_version.version} kept no validation rows.",
                hint="It trained on every row (validation = 0 or under 500 rows); use EVALUATE MODEL ... ON (SELECT ...).",
            )
        stored = validation_scores(model_version) if threshold is not None else None
        if stored is not None:
            values = metrics.evaluate(meta["task"], stored.y, stored.score, stored.groups, threshold)
            return {**head, "rows": stored.rows, **values, "unseen_categories": 0}
        return {
            **head,
            "rows": meta["validation_rows"],
            **{n: meta["metrics"].get(n) for n in names},
            "unseen_categories": 0,
        }
    found = scored(fetch, model_version, source_sql, rows)
    values = metrics.evaluate(meta["task"], found.y, found.score, found.groups, threshold)
    return {**head, "rows": found.rows, **values, "unseen_categories": found.unseen}
