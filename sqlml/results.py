"""Computing the result functions a statement calls (EVALUATE(...), ROC_CURVE(...),
ML.EVALUATE(...), ...) into Arrow tables, just before the statement runs.

Which rows a function reads: its input when given; else the validation rows TRAIN kept
(their labels and scores are stored with the version); else, for BigQuery ML's functions,
the training query run again, as BigQuery ML evaluates a model trained without a split on
its training data. Explanations need the inputs themselves: their input, else up to 10,000
rows sampled (with a fixed seed) from the training query.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from sqlml import diagnostics, features, scoring, transform
from sqlml.catalog import ModelVersion
from sqlml.errors import ExecutionError
from sqlml.model_functions import ResultCall, bigquery_class_columns
from sqlml.scoring import Scored

Fetch = Callable[[str], pa.Table]
EXPLAIN_SAMPLE = 10_000


def compute(call: ResultCall, fetch: Fetch, engine: Any) -> pa.Table:
    """The rows of one result function (`engine` answers MODELS, DESCRIBE_MODEL and FEATURE_IMPORTANCE)."""
    from sqlml import plan

    word, model, options = call.function, call.model, dict(call.options)
    threshold = options.get("threshold")
    if word == "MODELS":
        return engine.show_models(plan.ShowModelsPlan())  # type: ignore[no-any-return]
    assert model is not None
    meta = model.meta
    if word == "DESCRIBE_MODEL":
        return engine.describe_model(plan.DescribeModelPlan(model))  # type: ignore[no-any-return]
    if word == "FEATURE_IMPORTANCE":
        return engine.explain_model(plan.ExplainModelPlan(model))  # type: ignore[no-any-return]
    if word == "EVALUATE":
        return pa.Table.from_pylist([scoring.evaluate(fetch, model, call.source_sql, threshold=threshold)])
    if word == "TRAINING_CURVE":
        return diagnostics.training_curve(meta)
    if word == "ML.TRAINING_INFO":
        return training_info(meta)
    if word == "ML.FEATURE_IMPORTANCE":
        return feature_importance(model)
    if word in ("GLOBAL_EXPLAIN", "ML.GLOBAL_EXPLAIN"):
        loaded, specs = scoring.load(model)
        return diagnostics.global_explain(loaded, explain_inputs(fetch, model, call.source_sql), specs, meta)
    if word == "ML.EVALUATE":
        return bigquery_evaluate(fetch, model, call.source_sql, threshold)
    if word in ("TRIALS", "ML.TRIAL_INFO"):
        from sqlml import tuning

        trials = tuning.trials_table(model.path.parent, meta["tuning"]["study"])
        return trials if word == "TRIALS" else trial_info(trials, meta["tuning"]["metric"])
    rows = rows_for(fetch, model, call.source_sql, bigquery=word.startswith("ML."))
    if word in ("ROC_CURVE", "ML.ROC_CURVE"):
        return diagnostics.roc_curve(rows, list(call.values) if call.values else None, meta["task"])
    if word == "PR_CURVE":
        return diagnostics.pr_curve(rows, meta["task"])
    if word == "CALIBRATION":
        return diagnostics.calibration(rows, int(options.get("bins", 10)), meta["task"])
    if word == "CONFUSION_MATRIX":
        return diagnostics.confusion_table(rows, meta, threshold)
    if word == "ML.CONFUSION_MATRIX":
        matrix = diagnostics.confusion_matrix(rows, meta, threshold)
        columns: dict[str, Any] = {"expected_label": meta["classes"]}
        for j, name in enumerate(bigquery_class_columns(meta["classes"])):
            columns[name] = pa.array(matrix[:, j], pa.int64())
        return pa.table(columns)
    raise AssertionError(word)


def rows_for(fetch: Fetch, model: ModelVersion, source_sql: str | None, bigquery: bool = False) -> Scored:
    """The scored rows a diagnostic reads (see the module's docstring)."""
    if source_sql is not None:
        return scoring.scored(fetch, model, source_sql)
    stored = scoring.validation_scores(model)
    if stored is not None:
        return stored
    if bigquery:
        return scoring.scored(fetch, model, training_query(model))
    raise ExecutionError(
        f"Model '{model.name}' version {model.version} kept no validation rows to compute this on.",
        hint="Give it rows: ROC_CURVE(MODEL m, TABLE t) or (MODEL m, (SELECT ...)).",
    )


def training_query(model: ModelVersion) -> str:
    sql = model.meta.get("training_sql")
    if not sql or model.meta.get("parameters"):
        raise ExecutionError(
            f"Model '{model.name}' version {model.version} has no training query to read rows from"
            + (" (it took parameters)." if sql else "."),
            hint="Give it rows: (MODEL m, TABLE t) or (MODEL m, (SELECT ...)).",
        )
    return str(sql)


def explain_inputs(fetch: Fetch, model: ModelVersion, source_sql: str | None) -> Any:
    """The model's input matrix for the rows to explain."""
    specs = [features.FeatureSpec(**f) for f in model.meta["features"]]
    columns = features.model_columns(specs, None, None)
    if source_sql is None:
        source_sql = (
            f"SELECT * FROM ({training_query(model)}) AS __sqlml_rows "
            f"USING SAMPLE reservoir({EXPLAIN_SAMPLE} ROWS) REPEATABLE (0)"
        )
    table = fetch(features.select_sql(columns, transform.applied_sql(model.meta, source_sql, labels=False)))
    if table.num_rows == 0:
        raise ExecutionError(f"There are no rows to explain model '{model.name}' on.")
    matrix, _ = features.design([table.column(s.name) for s in specs], specs, table.num_rows)
    return matrix


def bigquery_evaluate(fetch: Fetch, model: ModelVersion, source_sql: str | None, threshold: float | None) -> pa.Table:
    """ML.EVALUATE's one row, with BigQuery ML's metric names, computed by scikit-learn."""
    task = model.meta["task"]
    if task in ("clustering", "decomposition"):
        if source_sql is None and not model.meta.get("validation_rows"):
            source_sql = training_query(model)  # as BigQuery ML: unsupervised models are evaluated on their input
        row = scoring.evaluate(fetch, model, source_sql)
        if task == "clustering":
            return pa.table({"davies_bouldin_index": [row["davies_bouldin"]],
                             "mean_squared_distance": [row["inertia"] / row["rows"]]})  # fmt: skip
        return pa.table({"total_explained_variance_ratio": [row["explained_variance"]]})
    if task == "ranking":
        row = scoring.evaluate(fetch, model, source_sql)
        return pa.table({k: [v] for k, v in row.items() if k.startswith("ndcg")})
    rows = rows_for(fetch, model, source_sql, bigquery=True)
    return pa.table({k: pa.array([v], pa.float64()) for k, v in bigquery_metrics(rows, task, threshold).items()})


def bigquery_metrics(rows: Scored, task: str, threshold: float | None = None) -> dict[str, float | None]:
    """BigQuery ML's evaluation metrics; multiclass precision, recall, F1 and ROC AUC are macro averages."""
    from sklearn import metrics as m

    y = rows.y
    with np.errstate(all="ignore"):
        if task == "regression":
            p = rows.score
            msle = m.mean_squared_log_error(y, p) if (y > -1).all() and (p > -1).all() else None
            return {
                "mean_absolute_error": m.mean_absolute_error(y, p),
                "mean_squared_error": m.mean_squared_error(y, p),
                "mean_squared_log_error": msle,
                "median_absolute_error": m.median_absolute_error(y, p),
                "r2_score": m.r2_score(y, p),
                "explained_variance": m.explained_variance_score(y, p),
            }
        truth = y.astype(np.int64)
        predicted = diagnostics.predicted_codes(rows, task, threshold)
        if task == "binary":
            proba, average, labels = rows.score, "binary", [0, 1]
            auc = m.roc_auc_score(truth, proba) if len(np.unique(truth)) == 2 else None
        else:
            proba, average, labels = rows.score, "macro", list(range(rows.score.shape[1]))
            present = np.unique(truth)
            auc = (m.roc_auc_score(truth, proba, multi_class="ovr", labels=labels)
                   if len(present) == len(labels) else None)  # fmt: skip
        return {
            "precision": m.precision_score(truth, predicted, average=average, labels=labels, zero_division=0),
            "recall": m.recall_score(truth, predicted, average=average, labels=labels, zero_division=0),
            "accuracy": m.accuracy_score(truth, predicted),
            "f1_score": m.f1_score(truth, predicted, average=average, labels=labels, zero_division=0),
            "log_loss": m.log_loss(truth, proba, labels=labels),
            "roc_auc": auc,
        }


def trial_info(trials: pa.Table, metric: str) -> pa.Table:
    """ML.TRIAL_INFO: BigQuery ML's names for TRIALS' columns."""
    status = {"COMPLETE": "SUCCEEDED", "FAIL": "FAILED", "RUNNING": "RUNNING", "PRUNED": "STOPPED"}
    values = trials.column("value").to_pylist()
    return pa.table(
        {
            "trial_id": trials.column("trial"),
            "hyperparameters": trials.column("params"),
            "hparam_tuning_evaluation_metrics": [None if v is None else f'{{"{metric}": {v!r}}}' for v in values],
            "training_loss": pa.nulls(trials.num_rows, pa.float64()),
            "eval_loss": pa.array(values, pa.float64()),
            "status": [status.get(s, s) for s in trials.column("state").to_pylist()],
            "error_message": trials.column("error"),
            "is_optimal": trials.column("is_best"),
        }
    )


def training_info(meta: dict[str, Any]) -> pa.Table:
    """ML.TRAINING_INFO: per boosting round (from 0), the training and validation loss."""
    curve = diagnostics.training_curve(meta)
    seconds = curve.column("seconds").to_numpy(zero_copy_only=False)
    duration = np.diff(np.r_[0.0, seconds]) * 1000
    rate = float(meta.get("params", {}).get("learning_rate", 0.1))
    n = curve.num_rows
    return pa.table(
        {
            "training_run": pa.array([0] * n, pa.int64()),
            "iteration": pa.array(range(n), pa.int64()),
            "loss": curve.column("training"),
            "eval_loss": curve.column("validation"),
            "learning_rate": pa.array([rate] * n, pa.float64()),
            "duration_ms": pa.array(np.rint(duration).astype(np.int64)),
        }
    )


def feature_importance(model: ModelVersion) -> pa.Table:
    """ML.FEATURE_IMPORTANCE per column: splits (weight), total gain, and the mean number of
    training rows reaching its splits (cover), from the trees' own records."""
    loaded, specs = scoring.load(model)
    dumped = loaded.booster.dump_model()  # type: ignore[attr-defined]
    names = dumped["feature_names"]
    cover = np.zeros(len(names))

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            cover[node["split_feature"]] += node["internal_count"]
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in dumped["tree_info"]:
        walk(tree["tree_structure"])
    _, gain, splits = loaded.importance()  # type: ignore[attr-defined]
    columns = [s.name for s in specs for _ in s.inputs()]
    order = list(dict.fromkeys(columns))
    index = np.array([order.index(c) for c in columns])
    weight = np.bincount(index, weights=splits, minlength=len(order))
    total_gain = np.bincount(index, weights=gain, minlength=len(order))
    total_cover = np.bincount(index, weights=cover, minlength=len(order))
    mean_cover = np.divide(total_cover, weight, out=np.zeros(len(order)), where=weight > 0)
    return pa.table(
        {
            "feature": order,
            "importance_weight": pa.array(weight.astype(np.int64)),
            "importance_gain": pa.array(total_gain, pa.float64()),
            "importance_cover": pa.array(mean_cover, pa.float64()),
        }
    )
