"""A model's diagnostics as tables: ROC and precision-recall curves, the confusion matrix,
calibration, the training curve and explanations (exact SHAP values of tree models).

Each function takes scored rows (`sqlml.scoring.Scored`) or a model's metadata and returns
an Arrow table. The curves are scikit-learn's own (`roc_curve`, `precision_recall_curve`,
`calibration_curve`), so their points are what scikit-learn gives on the same rows.

>>> import numpy as np
>>> from sqlml.scoring import Scored
>>> roc_curve(Scored(np.array([0, 0, 1, 1.0]), np.array([0.1, 0.4, 0.35, 0.8]))).column("true_positives").to_pylist()
[0, 1, 1, 2, 2]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from sqlml.errors import ExecutionError
from sqlml.features import FeatureSpec
from sqlml.scoring import Scored


def _binary(sc: Scored, what: str, task: str) -> None:
    if task != "binary":
        raise ExecutionError(
            f"{what} is for binary classifiers; this model is {task}.",
            hint="CONFUSION_MATRIX and EVALUATE work for every classifier.",
        )


def roc_curve(sc: Scored, thresholds: list[float] | None = None, task: str = "binary") -> pa.Table:
    """The ROC curve's points, best threshold first (scikit-learn's roc_curve, intermediate
    points dropped as it does), with the counts at each; or at the given `thresholds`
    (a row is positive when its probability is above the threshold, as in EVALUATE)."""
    _binary(sc, "ROC_CURVE", task)
    y, p = sc.y == 1, sc.score
    positives, negatives = int(y.sum()), int((~y).sum())
    if thresholds is None:
        from sklearn.metrics import roc_curve as sk_roc_curve

        fpr, tpr, cuts = sk_roc_curve(y, p)
        tp = np.rint(tpr * positives).astype(np.int64)
        fp = np.rint(fpr * negatives).astype(np.int64)
    else:
        cuts = np.asarray(thresholds, dtype=np.float64)
        predicted = p[None, :] > cuts[:, None]
        tp = (predicted & y[None, :]).sum(axis=1).astype(np.int64)
        fp = (predicted & ~y[None, :]).sum(axis=1).astype(np.int64)
        tpr = tp / positives if positives else np.zeros(len(cuts))
        fpr = fp / negatives if negatives else np.zeros(len(cuts))
    return pa.table(
        {
            "threshold": pa.array(cuts, pa.float64()),
            "recall": pa.array(tpr, pa.float64()),
            "false_positive_rate": pa.array(fpr, pa.float64()),
            "true_positives": tp,
            "false_positives": fp,
            "true_negatives": negatives - fp,
            "false_negatives": positives - tp,
        }
    )


def pr_curve(sc: Scored, task: str = "binary") -> pa.Table:
    """The precision-recall curve (scikit-learn's precision_recall_curve): one point per
    threshold in rising order, then the end point (precision 1, recall 0) with no threshold."""
    _binary(sc, "PR_CURVE", task)
    from sklearn.metrics import precision_recall_curve

    precision, recall, cuts = precision_recall_curve(sc.y == 1, sc.score)
    return pa.table(
        {
            "threshold": pa.array(np.r_[cuts, np.nan], pa.float64(), mask=np.r_[np.zeros(len(cuts), bool), True]),
            "precision": pa.array(precision, pa.float64()),
            "recall": pa.array(recall, pa.float64()),
        }
    )


def predicted_codes(sc: Scored, task: str, threshold: float | None) -> np.ndarray:
    """Each row's predicted class code: P(positive) above the threshold (0.5), or the likeliest class."""
    if task == "binary":
        return (sc.score > (0.5 if threshold is None else threshold)).astype(np.int64)
    return np.argmax(sc.score, axis=1)


def confusion_matrix(sc: Scored, meta: dict[str, Any], threshold: float | None = None) -> np.ndarray:
    """Counts of (actual, predicted) class, in the model's class order (scikit-learn's confusion_matrix)."""
    task = meta["task"]
    if task not in ("binary", "multiclass"):
        raise ExecutionError(f"CONFUSION_MATRIX is for classifiers; this model is {task}.")
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    k = len(meta["classes"])
    matrix: np.ndarray = sk_confusion_matrix(
        sc.y.astype(np.int64), predicted_codes(sc, task, threshold), labels=range(k)
    )
    return matrix


def confusion_table(sc: Scored, meta: dict[str, Any], threshold: float | None = None) -> pa.Table:
    """CONFUSION_MATRIX: one row per (actual, predicted) pair of classes, zeros included."""
    matrix = confusion_matrix(sc, meta, threshold)
    classes = [str(c) for c in meta["classes"]]
    k = len(classes)
    return pa.table(
        {
            "actual": [classes[i] for i in range(k) for _ in range(k)],
            "predicted": classes * k,
            "count": pa.array(matrix.ravel(), pa.int64()),
        }
    )


def calibration(sc: Scored, bins: int = 10, task: str = "binary") -> pa.Table:
    """Calibration: per bin of predicted probability (equal widths), the mean prediction,
    the share of positives and the rows (scikit-learn's calibration_curve; empty bins left out)."""
    _binary(sc, "CALIBRATION", task)
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(sc.y == 1, sc.score, n_bins=bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.searchsorted(edges[1:-1], sc.score, side="right")
    counts = np.bincount(which, minlength=bins)
    return pa.table(
        {
            "bin": pa.array(np.flatnonzero(counts) + 1, pa.int64()),
            "predicted": pa.array(predicted, pa.float64()),
            "observed": pa.array(observed, pa.float64()),
            "rows": pa.array(counts[counts > 0], pa.int64()),
        }
    )


def training_curve(meta: dict[str, Any]) -> pa.Table:
    """TRAINING_CURVE: the boosting rounds' metric on the training and validation rows."""
    curve = meta.get("training_curve")
    if not curve:
        raise ExecutionError(
            f"Model '{meta['name']}' has no training curve: {meta['trainer']} does not train in rounds.",
            hint="Training curves are kept for the lightgbm_* and random_forest_* trainers.",
        )
    n = len(curve["training"])
    validation = curve.get("validation") or [None] * n
    return pa.table(
        {
            "iteration": pa.array(range(1, n + 1), pa.int64()),
            "metric": [curve["metric"]] * n,
            "training": pa.array(curve["training"], pa.float64()),
            "validation": pa.array(validation, pa.float64()),
            "seconds": pa.array(curve["seconds"][:n], pa.float64()),
        }
    )


def column_contributions(contrib: np.ndarray, specs: list[FeatureSpec]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per-input SHAP values (rows x (inputs + 1), the last being the expected value) summed
    per column (a vector's elements, a text column's buckets): (columns, values rows x columns, baseline)."""
    widths = [len(s.inputs()) for s in specs]
    starts = np.r_[0, np.cumsum(widths)[:-1]]
    values = np.add.reduceat(contrib[:, :-1], starts, axis=1) if widths else contrib[:, :0]
    return [s.name for s in specs], values, contrib[:, -1]


def linear_contributions(model: Any, matrix: Any, linear: dict[str, Any]) -> np.ndarray:
    """A linear model's exact SHAP values (inputs independent), per input then the expected
    value, as pred_contrib lays them out: coefficient x (preprocessed input - its training
    mean), summed over the one-hot columns of a category. rows x classes x (inputs + 1) for a
    multiclass model, whose scores are its classes' logits."""
    z = np.asarray(model.model_inputs(matrix), dtype=np.float64)
    coef, mean = np.asarray(linear["coef"]), np.asarray(linear["mean"])
    owners = np.asarray(linear["owners"])
    width = int(owners.max()) + 1 if len(owners) else 0
    out = np.zeros((len(z), len(coef), width + 1))
    for k, (w, b) in enumerate(zip(coef, linear["intercept"])):
        terms = (z - mean) * w
        for j in range(width):
            out[:, k, j] = terms[:, owners == j].sum(axis=1)
        out[:, k, width] = b + float(w @ mean)
    return out[:, 0, :] if len(coef) == 1 else out


def explain_rows(
    model: Any, matrix: Any, specs: list[FeatureSpec], meta: dict[str, Any]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per-row attributions per column and the baseline, in the model's raw score (log-odds
    for classifiers); for a multiclass model, those of each row's likeliest class."""
    linear = meta.get("linear")
    contrib = linear_contributions(model, matrix, linear) if linear else model.contributions(matrix)
    if contrib.ndim == 3:  # rows x classes x (inputs + 1)
        best = np.argmax(contrib.sum(axis=2), axis=1)
        contrib = contrib[np.arange(len(best)), best]
    return column_contributions(contrib, specs)


def global_explain(model: Any, matrix: Any, specs: list[FeatureSpec], meta: dict[str, Any]) -> pa.Table:
    """GLOBAL_EXPLAIN: each column's mean absolute attribution over the rows, largest first."""
    names, values, _ = explain_rows(model, matrix, specs, meta)
    mean = np.abs(values).mean(axis=0) if len(values) else np.zeros(len(names))
    order = np.argsort(-mean, kind="stable")
    return pa.table({"feature": [names[i] for i in order], "attribution": pa.array(mean[order], pa.float64())})
