"""Running a TRAIN plan: fetch the rows from DuckDB as Arrow, encode, split, fit, score the
validation rows and save the version.

Data goes DuckDB -> Arrow -> LightGBM with no NumPy copy of the features. The validation
split, when `validation` is not given, follows BigQuery ML's automatic split: none under
500 rows, 20% up to 50,000 rows, and 10,000 rows above that.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml import features, metrics, models, scoring, selection, text, transform, tuning
from sqlml.catalog import Catalog, ModelVersion
from sqlml.errors import ExecutionError
from sqlml.features import quote
from sqlml.models import TrainingData
from sqlml.models.base import Progress, TreeModel
from sqlml.plan import TrainPlan

LABEL, GROUP, WEIGHT = features.LABEL, features.GROUP, features.WEIGHT
FLOAT32_MAX = float(np.finfo(np.float32).max)
SMALL_DATA = 2_000_000  # rows x features under which one LightGBM thread beats several
_BACKGROUND = ThreadPoolExecutor(1, thread_name_prefix="sqlml-fingerprint")


def auto_validation(rows: int) -> float:
    """The validation fraction used when TRAIN does not set one."""
    if rows < 500:
        return 0.0
    if rows <= 50_000:
        return 0.2
    return 10_000 / rows


def training_columns(plan: TrainPlan) -> list[features.Column]:
    """The columns a TRAIN fetches: features (cast for LightGBM), label, group and weight."""
    return features.model_columns(list(plan.features), plan.label, plan.label_type, plan.group, plan.weight)


def training_query(plan: TrainPlan) -> str:
    """The SELECT that fetches the training columns from the TRAIN's query."""
    return features.select_sql(training_columns(plan), plan.query.sql)


def check_values(table: pa.Table, plan: TrainPlan, label: np.ndarray) -> None:
    """Refuse training data a model would silently mistrain on, with counts: a label that is
    NaN or infinite, numeric features beyond float32's range (LightGBM's bins and ONNX's
    inputs are float32), and weights that are missing, negative or infinite."""
    bad = int(np.count_nonzero(~np.isfinite(label)))
    if bad and plan.label is not None:
        raise ExecutionError(
            f"Label '{plan.label}' is NaN or infinite in {bad} of {len(label)} rows.",
            hint=f"Filter them out (WHERE isfinite({plan.label})) or replace them.",
        )
    for spec in plan.features:
        if spec.kind == "vector":
            bad = beyond_float32(pc.list_flatten(table.column(spec.name)))
            if bad:
                raise ExecutionError(
                    f"Vector feature '{spec.name}' has {bad} values that are infinite or beyond float32's range (±3.4e38).",
                    hint="LightGBM cannot split such values; make them NULL (missing) with list_transform, or rescale.",
                )
        if spec.kind != "numeric":
            continue
        bad = beyond_float32(table.column(spec.name))
        if bad:
            raise ExecutionError(
                f"Feature '{spec.name}' is infinite or beyond float32's range (±3.4e38) in {bad} of {len(table)} rows.",
                hint=f"LightGBM cannot split such values; make them NULL (missing) with CASE or nullif, or rescale {spec.name}.",
            )  # fmt: skip
    if plan.weight:
        weight = table.column(WEIGHT)
        values = weight.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            bad = weight.null_count + int(np.count_nonzero(~(np.isfinite(values) & (values >= 0))))
        if bad:
            raise ExecutionError(
                f"Weight '{plan.weight}' is NULL, negative, NaN or infinite in {bad} of {len(values)} rows.",
                hint="Weights are finite numbers of at least 0; filter or fix those rows.",
            )
        if not np.any(values > 0):
            raise ExecutionError(f"Weight '{plan.weight}' is 0 in every row.", hint="Some rows must weigh more than 0.")


def beyond_float32(values: pa.Array | pa.ChunkedArray) -> int:
    """How many values are infinite or beyond float32's range (NULL and NaN are not): a chunk's
    largest and smallest first (NumPy's fmax and fmin pass NaN by, on a view of Arrow's
    values), and the count only where they are out of range.

    >>> beyond_float32(pa.array([1.0, None, float("nan"), float("-inf"), 1e39]))
    2
    >>> beyond_float32(pa.chunked_array([[1e39, None], [], [-3e38, float("inf")]]))
    2
    """
    if not pa.types.is_floating(values.type):
        return 0  # integers and decimals that DuckDB casts to DOUBLE stay in range
    bad = 0
    for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        x = chunk.to_numpy(zero_copy_only=False)  # NULL as NaN
        if np.fmax.reduce(x, initial=0.0) > FLOAT32_MAX or np.fmin.reduce(x, initial=0.0) < -FLOAT32_MAX:
            with np.errstate(invalid="ignore"):
                bad += int(np.count_nonzero(np.abs(x) > FLOAT32_MAX))
    return bad


def fingerprint(table: pa.Table) -> str:
    """A digest of the training data's bytes, to tell whether two versions saw the same rows:
    SHA-256's first 16 bytes (CPUs hash SHA-256 in hardware: 30 ms for 46 MB, blake2b 58)."""
    digest = hashlib.sha256()
    for column in table.columns:
        for chunk in column.chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    digest.update(buf)
    return digest.hexdigest()[:32]


def _split(rows: int, groups: np.ndarray | None, fraction: float, how: str, seed: int) -> np.ndarray | None:
    """A boolean mask of validation rows (None for no split); ranking splits whole groups."""
    units = len(groups) if groups is not None else rows
    n_valid = int(round(units * fraction))
    if n_valid == 0 or n_valid >= units:
        return None
    if how == "sequential":
        unit_mask = np.zeros(units, dtype=bool)
        unit_mask[units - n_valid :] = True
    else:
        unit_mask = np.zeros(units, dtype=bool)
        unit_mask[np.random.default_rng(seed).permutation(units)[:n_valid]] = True
    return np.repeat(unit_mask, groups) if groups is not None else unit_mask


def subset(data: TrainingData, mask: np.ndarray, sizes_mask: np.ndarray | None) -> TrainingData:
    rows = np.flatnonzero(mask)
    groups = data.groups[sizes_mask] if data.groups is not None and sizes_mask is not None else None
    weight = data.weight[mask] if data.weight is not None else None
    features_ = features.take_rows(data.features, rows)
    return TrainingData(features_, data.label[mask], groups, data.categorical, weight, data.names)


def inputs_of(specs: list[features.FeatureSpec], table: pa.Table) -> tuple[Any, int]:
    """The model's input matrix for the training rows: numeric and categorical columns stay
    an Arrow table (LightGBM reads it without a copy); vectors and text make a matrix."""
    if all(s.kind in ("numeric", "categorical") for s in specs):
        return features.encode(table, specs)
    return features.design([table.column(s.name) for s in specs], specs, table.num_rows)


def _importance(plan: TrainPlan, label: np.ndarray, groups: np.ndarray | None, weight: np.ndarray | None,
                categorical: list[str], num_classes: int) -> Callable[[Any, list[str]], np.ndarray]:  # fmt: skip
    """Gain per input in one short LightGBM fit on the training rows (for feature selection);
    the TRAIN's own trainer and parameters when it is LightGBM's."""
    trainer, params = plan.trainer, plan.params
    if not trainer.boosting:  # rank with LightGBM of the same task
        stand_in = models.get(f"lightgbm_{'classifier' if trainer.task == 'classification' else 'regressor'}")
        assert stand_in is not None
        trainer, params = stand_in, {}

    def fit(matrix: Any, names: list[str]) -> np.ndarray:
        params_ = trainer.params_for(params, num_classes)
        params_.setdefault("num_threads", 1 if len(label) * len(names) < SMALL_DATA else 0)
        safe = features.lightgbm_names(names)
        if isinstance(matrix, pa.Table):
            matrix = matrix.rename_columns(safe)
        kinds = set(categorical)
        cats = tuple(c for c, n in zip(safe, names) if n in kinds)
        data = TrainingData(matrix, label, groups, cats, weight, tuple(safe))
        model, _ = trainer.fit(data, None, params_, selection.IMPORTANCE_ROUNDS, None, None)
        assert isinstance(model, TreeModel)
        return model.importance()[1]

    return fit


def select_features(
    plan: TrainPlan, specs: list[features.FeatureSpec], table: pa.Table, train_rows: np.ndarray, label: np.ndarray,
    groups: np.ndarray | None, weight: np.ndarray | None, num_classes: int,
) -> tuple[list[features.FeatureSpec], list[dict[str, Any]]]:  # fmt: skip
    """Rank every input on the training rows, keep `max_features`, and return the narrowed
    specs with the ranking (for FEATURE_RANKING and DESCRIBE)."""
    assert plan.selection is not None
    method, k = plan.selection
    matrix, _ = inputs_of(specs, table.take(pa.array(train_rows)))  # learns LIST vectors' lengths
    names = [n for s in specs for n in s.inputs()]
    columns = [s.name for s in specs for _ in s.inputs()]
    if k > len(names):
        raise ExecutionError(
            f"max_features = {k} is more than the model's {len(names)} inputs.",
            hint=f"Set max_features to at most {len(names)}, or drop feature_selection.",
        )
    categorical = [s.name for s in specs if s.kind == "categorical"]
    task = plan.trainer.task_for(num_classes)
    fit = _importance(plan, label[train_rows], groups, weight[train_rows] if weight is not None else None,
                      categorical, num_classes)  # fmt: skip
    values = selection.scores(method, matrix, label[train_rows], task, names, categorical, fit)
    kept = selection.top(values, k)
    order = selection.ranking(values)
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(1, len(names) + 1)
    kept_set = set(kept.tolist())
    ranking = [
        {"feature": names[i], "column": columns[i], "score": None if np.isnan(values[i]) else float(values[i]),
         "rank": int(rank[i]), "kept": i in kept_set}
        for i in order
    ]  # fmt: skip
    return features.keep_inputs(specs, kept), ranking


def train(
    fetch: Callable[[str], pa.Table],
    plan: TrainPlan,
    catalog: Catalog,
    progress: Progress | None = None,
    base: ModelVersion | None = None,
    lineage: dict[str, Any] | None = None,
    rows: pa.Table | None = None,
    cluster: str | None = None,
) -> ModelVersion:
    """Train, score and store a new version of `plan.name`.

    With `base`, keep boosting that version (LightGBM's init_model) with its classes, category
    codes and text featurizer; `lineage` is stored in the new version's metadata. With `rows`
    (the query's output, already in Arrow), the training columns are taken from them, not fetched.
    With `cluster` (a Dask cluster's address), a search runs its trials on the cluster's workers.
    What is learnt from the data (text buckets and weights, feature selection) is learnt on the
    training rows only, never the validation rows.
    """
    started = time.perf_counter()
    method, k = plan.selection or (None, None)
    learnt = None
    if plan.transform is not None:  # the TRANSFORM's statistics, learnt from the query's rows
        learnt = transform.learn(plan.transform, plan.query.sql, fetch)
        source = transform.select_sql(learnt, plan.query.sql, [plan.label or "", plan.group or "", plan.weight or ""])
        table = fetch(features.select_sql(training_columns(plan), source))
    else:
        table = fetch(training_query(plan)) if rows is None else features.select_arrow(training_columns(plan), rows)
    if table.num_rows == 0:
        raise ExecutionError("The training query returned no rows.", hint="Check its WHERE clause and source.")
    trainer = plan.trainer
    if base is not None:
        specs = [features.FeatureSpec(**f) for f in base.meta["features"]]
        classes = base.meta.get("classes")
    else:
        specs = [copy.deepcopy(s) for s in plan.features]
        classes = None
        if trainer.task == "classification":
            classes = features.learn_classes(table.column(LABEL), str(plan.label))
    num_classes = len(classes) if classes else 0
    if plan.label is None:  # clustering, decomposition: no label (zeros keep the shapes simple)
        label = np.zeros(table.num_rows)
    else:
        label = features.encode_label(table.column(LABEL), plan.label, classes)
    check_values(table, plan, label)
    groups = order = None
    if plan.group:
        groups, order = features.group_sizes(table.column(GROUP), plan.group)
    if trainer.task == "ranking" and (np.any(label < 0) or np.any(label != np.floor(label))):
        raise ExecutionError(f"Ranking label '{plan.label}' must hold whole numbers from 0 (relevance grades).")
    digest = _BACKGROUND.submit(fingerprint, table)  # hashing releases the GIL: it runs beside the fit
    if order is not None:
        table, label = table.take(pa.array(order)), label[order]
    weight = table.column(WEIGHT).to_numpy(zero_copy_only=False) if plan.weight else None

    opts = plan.options
    fraction = auto_validation(len(label)) if opts.validation is None else opts.validation
    mask = _split(len(label), groups, fraction, opts.split, opts.seed if opts.seed is not None else 0)
    train_rows = np.flatnonzero(~mask) if mask is not None else np.arange(len(label))
    unit_mask = None
    if mask is not None and groups is not None:
        unit_mask = mask[np.cumsum(groups) - groups]
    train_groups = groups if unit_mask is None or groups is None else groups[~unit_mask]
    ranking = None
    if base is None:
        features.learn_categories(table, specs)
        task = trainer.task_for(num_classes)
        training_part = table.take(pa.array(train_rows)) if mask is not None else table
        for spec in specs:
            if spec.kind == "text":
                fit = _importance(plan, label[train_rows], train_groups, None, [], num_classes)
                text.learn(spec, training_part.column(spec.name), label[train_rows], task, fit)
        if plan.selection is not None:
            specs, ranking = select_features(plan, specs, table, train_rows, label, train_groups, weight, num_classes)
    encoded, _ = inputs_of(specs, table)
    del table
    names = tuple(features.lightgbm_names([n for s in specs for n in s.inputs()]))
    position = {n: i for i, n in enumerate(n for s in specs for n in s.inputs())}
    categorical = tuple(names[position[s.name]] for s in specs if s.kind == "categorical")
    data = TrainingData(encoded, label, groups, categorical, weight, names)

    train_data, valid_data = data, None
    if mask is not None:
        train_data = subset(data, ~mask, None if unit_mask is None else ~unit_mask)
        valid_data = subset(data, mask, unit_mask)
        del data

    task = trainer.task_for(num_classes)
    params = trainer.params_for(plan.params, num_classes)
    if opts.seed is not None:
        params["seed"] = opts.seed
    if trainer.boosting and "num_threads" not in params:  # OpenMP threads spin: on small data one thread is faster
        params["num_threads"] = 1 if train_data.rows * len(names) < SMALL_DATA else 0
    tuned = None
    rounds = opts.num_boost_round
    if plan.search:
        seed = opts.seed if opts.seed is not None else 0
        tuned = tuning.tune(
            plan, catalog.root / plan.name, train_data, valid_data, params, task, seed, progress, cluster
        )
        params = {**params, **tuned.params}
        rounds = tuned.record["num_boost_round"] or rounds
    if tuned is not None and tuned.model is not None:
        model, used = tuned.model, tuned.used or params
    else:
        model, used = trainer.fit(
            train_data, valid_data, params, rounds, opts.early_stopping_rounds, None if tuned else progress,
            init_model=base.model_text() if base is not None else None,
        )  # fmt: skip

    extra_meta = {
        **({"selection": {"method": method, "max_features": k, "ranking": ranking}} if ranking else {}),
        **({"tuning": tuned.record} if tuned is not None else {}),
        **(
            {"transform": transform.stored(plan.transform, learnt, [plan.label, plan.group, plan.weight])}
            if learnt and plan.transform
            else {}
        ),
    }
    return save_version(
        plan, catalog, task, model, used, specs, len(names), classes, valid_data, train_data.rows, fraction, rounds,
        started, digest.result(), {**extra_meta, **(lineage or {})},
    )  # fmt: skip


def save_version(
    plan: TrainPlan, catalog: Catalog, task: str, model: Any, used: dict[str, Any], specs: list[features.FeatureSpec],
    inputs: int, classes: list[Any] | None, valid_data: TrainingData | None, train_rows: int, fraction: float,
    rounds: int, started: float, digest: str | None, extra_meta: dict[str, Any],
) -> ModelVersion:  # fmt: skip
    """Score the validation rows, then store the version with its metadata (and the validation
    rows' scores, for the diagnostics)."""
    trainer, opts = plan.trainer, plan.options
    scores: dict[str, float] = {}
    extra: dict[str, bytes] = {}
    if valid_data is not None:
        matrix = valid_data.features
        if isinstance(matrix, pa.Table):
            matrix = features.to_matrix(matrix.columns, valid_data.rows)
        y = models.truth(task, model, matrix, valid_data.label)
        predicted = model.predict(matrix)
        scores = metrics.evaluate(task, y, predicted, valid_data.groups)
        if plan.label is not None:  # for the diagnostics of the validation rows (ROC_CURVE(MODEL m), ...)
            extra[scoring.EVALUATION_FILE] = evaluation_bytes(y, predicted, valid_data.groups)
    meta = {
        "task": task,
        "trainer": trainer.name,
        "label": plan.label,
        "label_type": plan.label_type,
        "classes": classes,
        "group": plan.group,
        "weight": plan.weight,
        "features": [s.to_json() for s in specs],
        "inputs": inputs,
        "params": used,
        "num_boost_round": rounds if trainer.boosting else None,
        "early_stopping_rounds": opts.early_stopping_rounds,
        "validation": fraction,
        "split": opts.split,
        "seed": opts.seed,
        "rows": train_rows + (valid_data.rows if valid_data else 0),
        "train_rows": train_rows,
        "validation_rows": valid_data.rows if valid_data else 0,
        "metrics": scores,
        **getattr(model, "info", {}),
        "training_sql": plan.training_sql,
        "fingerprint": digest,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"),
        "duration_s": round(time.perf_counter() - started, 3),
        **extra_meta,
    }
    return catalog.save(plan.name, model.to_bytes(), meta, trainer.model_file, extra)


def train_distributed(con: Any, plan: TrainPlan, catalog: Catalog, address: str) -> ModelVersion:
    """TRAIN WITH (distributed = true): DuckDB writes the encoded training rows as Parquet
    partitions and LightGBM trains over the Dask cluster's workers (see sqlml.distributed)."""
    from sqlml import distributed
    from sqlml.models.lightgbm import LightGBMModel

    started = time.perf_counter()
    trainer, opts = plan.trainer, plan.options
    seed = opts.seed if opts.seed is not None else 0
    prepared = distributed.Prepared(
        con, training_query(plan), lambda n: auto_validation(n) if opts.validation is None else opts.validation, seed,
        grouped=bool(plan.group),
    )  # fmt: skip
    folder = distributed.folder_for(catalog.root)
    try:
        if prepared.rows == 0:
            raise ExecutionError("The training query returned no rows.", hint="Check its WHERE clause and source.")
        label = quote(features.LABEL)
        group = quote(features.GROUP) if plan.group else "0"
        ranking = trainer.task == "ranking"
        grades = f"{label} < 0 OR {label} != floor({label})" if ranking else "false"
        nulls, no_group, bad = (
            prepared.fetch(
                f"SELECT count(*) FILTER (WHERE {label} IS NULL) AS n, count(*) FILTER (WHERE {group} IS NULL) AS g, "
                f"count(*) FILTER (WHERE {grades}) AS b FROM {prepared.table}"
            )
            .to_pylist()[0]
            .values()
        )
        for count, column, hint in [(nulls, plan.label, "or fill them (coalesce)"), (no_group, plan.group, "")]:
            if count:
                raise ExecutionError(
                    f"{'Label' if column == plan.label else 'Group column'} '{column}' is NULL in {count} of "
                    f"{prepared.rows} rows.", hint=f"Filter them out (WHERE {column} IS NOT NULL){' ' + hint if hint else ''}.",
                )  # fmt: skip
        if bad:
            raise ExecutionError(
                f"Ranking label '{plan.label}' must hold whole numbers from 0 (relevance grades); {bad} rows do not."
            )
        classes = None
        if trainer.task == "classification":
            distinct = prepared.fetch(f"SELECT DISTINCT {label} FROM {prepared.table}")
            classes = features.learn_classes(distinct.column(0), str(plan.label))
        specs = [copy.deepcopy(s) for s in plan.features]
        for spec in specs:
            if spec.kind == "categorical":
                values = prepared.fetch(f"SELECT DISTINCT {quote(spec.name)} FROM {prepared.table}").column(0)
                features.learn_categories(pa.table({spec.name: values}), [spec])
        names = features.lightgbm_names([n for s in specs for n in s.inputs()])
        num_classes = len(classes) if classes else 0
        task = trainer.task_for(num_classes)
        params = trainer.params_for(plan.params, num_classes)
        if opts.seed is not None:
            params["seed"] = opts.seed
        valid_table = prepared.fetch(f"SELECT * EXCLUDE (__row) FROM {prepared.table} WHERE {prepared.valid}")
        client = distributed.client_for(address)
        timings = {"prepare_s": round(time.perf_counter() - started, 3)}
        booster = distributed.fit(client, folder, prepared, specs, names, classes, task, params,
                                  opts.num_boost_round, opts.partitions, bool(plan.weight), timings)  # fmt: skip
        model = LightGBMModel(booster)
        valid_data = None
        if valid_table.num_rows:
            groups = None
            if plan.group:
                groups, order = features.group_sizes(valid_table.column(GROUP), plan.group)
                valid_table = valid_table if order is None else valid_table.take(pa.array(order))
            encoded, _ = features.encode(valid_table, specs)
            encoded = encoded.rename_columns(names)
            y = features.encode_label(valid_table.column(features.LABEL), str(plan.label), classes)
            weight = valid_table.column(features.WEIGHT).to_numpy(zero_copy_only=False) if plan.weight else None
            valid_data = TrainingData(encoded, y, groups, (), weight, tuple(names))
        info = {"distributed": {"cluster": address, "workers": len(distributed.workers(client)),
                                "partitions": opts.partitions, **timings}}  # fmt: skip
        return save_version(
            plan, catalog, task, model, params, specs, len(names), classes,
            valid_data, prepared.rows - valid_table.num_rows, prepared.fraction, opts.num_boost_round, started,
            None, info,
        )  # fmt: skip
    finally:
        prepared.drop()
        distributed.remove(folder)


def evaluation_bytes(y: np.ndarray, score: np.ndarray, groups: np.ndarray | None) -> bytes:
    """The validation rows' labels (codes for classes), scores and ranking groups as an Arrow
    IPC file (a portable format that runs nothing when read)."""
    columns: dict[str, Any] = {"label": pa.array(y, pa.float64())}
    if score.ndim == 2:
        rows, k = score.shape
        offsets = pa.array(np.arange(0, rows * k + 1, k, dtype=np.int32))
        columns["score"] = pa.ListArray.from_arrays(offsets, pa.array(score.ravel(), pa.float64()))
    else:
        columns["score"] = pa.array(score, pa.float64())
    if groups is not None:
        columns["group"] = pa.array(np.repeat(np.arange(len(groups)), groups))
    sink = pa.BufferOutputStream()
    table = pa.table(columns)
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())
