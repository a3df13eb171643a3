"""Binding sqlml's table functions over a model's results (EVALUATE(...), ROC_CURVE(...),
MODELS(), ...) and BigQuery ML's (ML.EVALUATE(...), ...), and the named arguments of the
PREDICT-like ones.

A result function is computed when its statement runs, into an Arrow table registered on
the connection under a fresh name; the query reads it as a subquery, so its rows can be
joined, filtered, unioned and stored like any table's. Each function's columns are known
when binding, so a query over one can be described before it runs.

>>> [name for name, _ in result_columns("ML.ROC_CURVE", {"task": "binary"})][:3]
['threshold', 'recall', 'false_positive_rate']
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from sqlml import ast
from sqlml.catalog import ModelVersion
from sqlml.features import quote
from sqlml.literals import literal
from sqlml.metrics import for_task
from sqlml.models.base import UNSUPERVISED
from sqlml.models.onnx import IMPORTED

if TYPE_CHECKING:
    from sqlml.plan import Binder

# each function's named arguments: (name, check, what it must be)
_FRACTION = (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1, "a number from 0 to 1")
_COUNT = (lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000, "a whole number from 1 to 1000")
_FALSE = (lambda v: v is False, "FALSE (class-level explanations are not offered)")
_BOOL = (lambda v: isinstance(v, bool), "TRUE or FALSE")
ARGUMENTS: dict[str, dict[str, tuple[Any, str]]] = {
    "PREDICT": {"threshold": _FRACTION, "distributed": _BOOL},
    "EXPLAIN_PREDICT": {"threshold": _FRACTION, "top_k": _COUNT},
    "ML.PREDICT": {"threshold": _FRACTION},
    "ML.EXPLAIN_PREDICT": {"threshold": _FRACTION, "top_k_features": _COUNT},
    "EVALUATE": {"threshold": _FRACTION},
    "ML.EVALUATE": {"threshold": _FRACTION},
    "CONFUSION_MATRIX": {"threshold": _FRACTION},
    "ML.CONFUSION_MATRIX": {"threshold": _FRACTION},
    "CALIBRATION": {"bins": _COUNT},
    "ML.GLOBAL_EXPLAIN": {"class_level_explain": _FALSE},
}
# what each function needs of the model
_CLASSIFIER = ("CONFUSION_MATRIX", "ML.CONFUSION_MATRIX")
_BINARY = ("ROC_CURVE", "PR_CURVE", "CALIBRATION", "ML.ROC_CURVE")
_TREES = ("FEATURE_IMPORTANCE", "ML.FEATURE_IMPORTANCE")  # the splits of trees
_EXPLAINED = ("GLOBAL_EXPLAIN", "ML.GLOBAL_EXPLAIN", "EXPLAIN_PREDICT", "ML.EXPLAIN_PREDICT")  # trees and linear models
_BQ_EVALUATE = {
    "binary": ["precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc"],
    "multiclass": ["precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc"],
    "regression": ["mean_absolute_error", "mean_squared_error", "mean_squared_log_error", "median_absolute_error",
                   "r2_score", "explained_variance"],
    "clustering": ["davies_bouldin_index", "mean_squared_distance"],
    "decomposition": ["total_explained_variance_ratio"],
}  # fmt: skip


@dataclass(frozen=True)
class ResultCall:
    """A result function a statement calls: computed into `table` before the statement runs."""

    table: str
    function: str
    model: ModelVersion | None
    source_sql: str | None
    options: tuple[tuple[str, Any], ...]
    values: tuple[float, ...] | None  # ML.ROC_CURVE's thresholds
    columns: tuple[tuple[str, str], ...]


def result_columns(function: str, meta: dict[str, Any]) -> list[tuple[str, str]]:
    """A result function's columns and their DuckDB types, for a model's metadata."""
    task = meta.get("task", "")
    if function == "EVALUATE":
        return [("model", "VARCHAR"), ("version", "BIGINT"), ("rows", "BIGINT"),
                *[(m.name, "DOUBLE") for m in for_task(task)], ("unseen_categories", "BIGINT")]  # fmt: skip
    if function == "ML.EVALUATE":
        names = _BQ_EVALUATE.get(task) or [m.name for m in for_task(task)]
        return [(n, "DOUBLE") for n in names]
    if function == "MODELS":
        return [("name", "VARCHAR"), ("version", "BIGINT"), ("trainer", "VARCHAR"), ("task", "VARCHAR"),
                ("label", "VARCHAR"), ("rows", "BIGINT"), ("metric", "VARCHAR"), ("value", "DOUBLE"),
                ("created_at", "TIMESTAMPTZ"), ("error", "VARCHAR")]  # fmt: skip
    if function == "DESCRIBE_MODEL":
        return [("section", "VARCHAR"), ("name", "VARCHAR"), ("value", "VARCHAR")]
    if function == "FEATURE_IMPORTANCE":
        return [("feature", "VARCHAR"), ("column", "VARCHAR"), ("level", "VARCHAR"), ("gain", "DOUBLE"),
                ("splits", "BIGINT"), ("share", "DOUBLE")]  # fmt: skip
    if function == "ML.FEATURE_IMPORTANCE":
        return [("feature", "VARCHAR"), ("importance_weight", "BIGINT"), ("importance_gain", "DOUBLE"),
                ("importance_cover", "DOUBLE")]  # fmt: skip
    if function in ("ROC_CURVE", "ML.ROC_CURVE"):
        return [("threshold", "DOUBLE"), ("recall", "DOUBLE"), ("false_positive_rate", "DOUBLE"),
                ("true_positives", "BIGINT"), ("false_positives", "BIGINT"), ("true_negatives", "BIGINT"),
                ("false_negatives", "BIGINT")]  # fmt: skip
    if function == "PR_CURVE":
        return [("threshold", "DOUBLE"), ("precision", "DOUBLE"), ("recall", "DOUBLE")]
    if function == "CONFUSION_MATRIX":
        return [("actual", "VARCHAR"), ("predicted", "VARCHAR"), ("count", "BIGINT")]
    if function == "ML.CONFUSION_MATRIX":
        return [("expected_label", meta.get("label_type") or "VARCHAR"),
                *[(c, "BIGINT") for c in bigquery_class_columns(meta.get("classes") or [])]]  # fmt: skip
    if function == "CALIBRATION":
        return [("bin", "BIGINT"), ("predicted", "DOUBLE"), ("observed", "DOUBLE"), ("rows", "BIGINT")]
    if function == "TRAINING_CURVE":
        return [("iteration", "BIGINT"), ("metric", "VARCHAR"), ("training", "DOUBLE"), ("validation", "DOUBLE"),
                ("seconds", "DOUBLE")]  # fmt: skip
    if function == "ML.TRAINING_INFO":
        return [("training_run", "BIGINT"), ("iteration", "BIGINT"), ("loss", "DOUBLE"), ("eval_loss", "DOUBLE"),
                ("learning_rate", "DOUBLE"), ("duration_ms", "BIGINT")]  # fmt: skip
    if function in ("GLOBAL_EXPLAIN", "ML.GLOBAL_EXPLAIN"):
        return [("feature", "VARCHAR"), ("attribution", "DOUBLE")]
    if function == "TRIALS":
        return [("trial", "BIGINT"), ("state", "VARCHAR"), ("value", "DOUBLE"), ("params", "JSON"),
                ("seconds", "DOUBLE"), ("error", "VARCHAR"), ("is_best", "BOOLEAN"), ("worker", "VARCHAR")]  # fmt: skip
    if function == "ML.TRIAL_INFO":
        return [("trial_id", "BIGINT"), ("hyperparameters", "JSON"), ("hparam_tuning_evaluation_metrics", "JSON"),
                ("training_loss", "DOUBLE"), ("eval_loss", "DOUBLE"), ("status", "VARCHAR"),
                ("error_message", "VARCHAR"), ("is_optimal", "BOOLEAN")]  # fmt: skip
    raise AssertionError(function)


def bigquery_class_columns(classes: list[Any]) -> list[str]:
    """ML.CONFUSION_MATRIX's column for each class: its value with each run of characters a
    column name cannot hold made one `_`, `_` before one that does not start with a letter,
    and `_1`, `_2` after names taken already.

    >>> bigquery_class_columns([" <=50K", " >50K", "yes"])
    ['_50K', '_50K_1', 'yes']
    """
    names: list[str] = []
    for value in classes:
        text = re.sub(r"[^0-9A-Za-z_]+", "_", str(value))
        name = text if text[:1].isalpha() or text[:1] == "_" else f"_{text}"
        base, n = name, 0
        while name.lower() in (taken.lower() for taken in names):
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


def arguments(binder: Binder, word: str, options: list[exp.Expr] | None) -> dict[str, Any]:
    """A function's named arguments, checked: unknown names and bad values are bind errors."""
    allowed = ARGUMENTS.get(word, {})
    found: dict[str, Any] = {}
    for prop in options or []:
        key = prop.this.name.lower()
        if key not in allowed:
            from sqlml.errors import did_you_mean

            hint = did_you_mean(key, list(allowed)) or (
                f"{word} takes {', '.join(allowed)}." if allowed else f"{word} takes no named arguments."
            )
            if key == "trial_id":
                hint = "sqlml's models hold one trial: leave trial_id out."
            raise binder.error(f"{word} has no argument '{key}'.", prop.this, hint)
        value = literal(prop.expression)
        ok, wanted = allowed[key]
        if value is None or not ok(value):
            raise binder.error(f"Bad value for {word}'s {key}: expected {wanted}.", prop.expression)
        found[key] = value
    return found


def check_model(binder: Binder, word: str, model: ModelVersion, node: exp.Expr) -> None:
    """Refuse a function the model cannot answer (a ROC curve of a regressor, ...)."""
    meta = model.meta
    task = meta["task"]
    if word in _BINARY and task != "binary":
        raise binder.error(
            f"{word} is for binary classifiers; model '{model.name}' is {task}.", node,
            "CONFUSION_MATRIX and EVALUATE work for every classifier." if task == "multiclass" else None,
        )  # fmt: skip
    if word in _CLASSIFIER and task not in ("binary", "multiclass"):
        raise binder.error(f"{word} is for classifiers; model '{model.name}' is {task}.", node)
    trees = meta["trainer"] != IMPORTED and meta["trainer"].startswith(("lightgbm_", "random_forest_"))
    if word in _TREES and not trees:
        raise binder.error(
            f"{word} reads the splits of tree models; model '{model.name}' is {meta['trainer']}.", node,
            "EXPLAIN_PREDICT and GLOBAL_EXPLAIN explain linear models too; EVALUATE measures any model.",
        )  # fmt: skip
    if word in _EXPLAINED and not trees and not meta.get("linear"):
        raise binder.error(
            f"{word} explains tree models (exact SHAP values from LightGBM) and linear models (coefficient x "
            f"centred input); model '{model.name}' is {meta['trainer']}.", node,
            "Train a lightgbm_*, random_forest_*, linear_regressor or logistic_classifier model on the same columns "
            "to explain them; EVALUATE measures any model.",
        )  # fmt: skip
    if word in ("TRAINING_CURVE", "ML.TRAINING_INFO") and not meta.get("training_curve"):
        raise binder.error(
            f"Model '{model.name}' has no training curve: {meta['trainer']} does not train in rounds.", node,
            "Training curves are kept for the lightgbm_* and random_forest_* trainers.",
        )  # fmt: skip
    if word in ("TRIALS", "ML.TRIAL_INFO") and not meta.get("tuning"):
        raise binder.error(
            f"Model '{model.name}' version {model.version} was not tuned.", node,
            "Tune with a search space: WITH (num_leaves = HPARAM_RANGE(8, 128), trials = 20).",
        )  # fmt: skip
    if word in ("EVALUATE", "ML.EVALUATE") and task not in UNSUPERVISED and not meta.get("label"):
        raise binder.error(
            f"Model '{model.name}' has no label column to be evaluated against.", node,
            f"It was imported without one: IMPORT MODEL {model.name} FROM '...' WITH (label = 'column', ...).",
        )  # fmt: skip


def bind_result(binder: Binder, node: ast.ModelFunction) -> None:
    """Check a result function and rewrite it into a subquery over the table it computes."""
    word = node.this
    model = binder.model(node.args["model"]) if node.args.get("model") is not None else None
    options = arguments(binder, word, node.args.get("options"))
    if model is not None:
        check_model(binder, word, model, node.args["model"].this)
    values = None
    if node.args.get("values"):
        if word != "ML.ROC_CURVE" or len(node.args["values"]) != 1:
            raise binder.error(f"{word} takes its arguments by name.", node.args["values"][0], "Write name => value.")
        values = _thresholds(binder, node.args["values"][0])
    source_sql = None
    source = node.args.get("source")
    if source is not None:
        if word in ("MODELS", "DESCRIBE_MODEL", "FEATURE_IMPORTANCE", "ML.FEATURE_IMPORTANCE", "TRAINING_CURVE",
                    "ML.TRAINING_INFO", "TRIALS", "ML.TRIAL_INFO"):  # fmt: skip
            raise binder.error(f"{word} reads the model only; it takes no input rows.", source.this)
        binder.refuse_streams(source.this, source.this)
        plan, given = binder.query(source, source.this)
        assert model is not None
        with_label = word not in ("GLOBAL_EXPLAIN", "ML.GLOBAL_EXPLAIN")
        binder.require_columns(model, given, source.this, f"{word}'s input", with_label=with_label)
        source_sql = plan.sql
    columns = result_columns(word, model.meta if model is not None else {})
    table = f"__sqlml_result_{uuid.uuid4().hex[:12]}"
    binder.results.append(ResultCall(table, word, model, source_sql, tuple(options.items()), values, tuple(columns)))
    names = ", ".join(f"CAST({quote(n)} AS {t}) AS {quote(n)}" for n, t in columns)
    rewrite = f"(SELECT {names} FROM {table})"
    binder.stand_ins.append(
        (rewrite, "(SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {quote(n)}" for n, t in columns) + " WHERE false)")
    )
    node.set("rewrite", rewrite)


def _thresholds(binder: Binder, node: exp.Expr) -> tuple[float, ...]:
    """ML.ROC_CURVE's thresholds: GENERATE_ARRAY(start, end, step) or a list of numbers."""
    if isinstance(node, exp.Anonymous) and node.name.upper() == "GENERATE_ARRAY" and len(node.expressions) == 3:
        start, end, step = (literal(e) for e in node.expressions)
        if all(isinstance(v, (int, float)) for v in (start, end, step)) and step != 0:
            count = math.floor((end - start) / step + 1e-9) + 1  # BigQuery's: a negative step counts down
            if count <= 0:
                raise binder.error(
                    f"GENERATE_ARRAY({start}, {end}, {step}) makes no thresholds: the step leads away from the end.",
                    node, f"GENERATE_ARRAY({min(start, end)}, {max(start, end)}, {abs(step)})",
                )  # fmt: skip
            return tuple(round(start + i * step, 12) for i in range(count))
    value = literal(node)
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return tuple(float(v) for v in value)
    raise binder.error(
        "ML.ROC_CURVE's thresholds are GENERATE_ARRAY(start, end, step) or a list of numbers.", node,
        "ML.ROC_CURVE(MODEL m, TABLE t, GENERATE_ARRAY(0.1, 0.9, 0.1))",
    )  # fmt: skip
