"""Evaluation metrics, each written once, vectorised with NumPy.

Each metric knows the tasks it works with and whether bigger is better; definitions follow
scikit-learn's (the tests compare against it), including its NDCG, which uses linear gains
and averages the positions of tied scores.

>>> import numpy as np
>>> round(METRICS["auc"].compute(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])), 4)
0.75
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Metric:
    """A metric: its column name, the tasks it fits, its direction and how to compute it.

    `compute(y, score, groups)` takes label codes or values, the model's raw output for the
    task (binary: P(positive); multiclass: an n x k probability matrix; regression: values;
    ranking: scores) and, for ranking, the group sizes in row order.
    """

    name: str
    tasks: tuple[str, ...]
    bigger_is_better: bool
    fn: Callable[..., float]

    def compute(
        self, y: np.ndarray, score: np.ndarray, groups: np.ndarray | None = None, threshold: float | None = None
    ) -> float:
        if "ranking" in self.tasks:
            return float(self.fn(y, score, groups))
        if threshold is not None and self.name in THRESHOLDED:
            return float(self.fn(y, score, threshold))
        return float(self.fn(y, score))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    block = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(x)] - 1
    ranks = np.empty(len(x))
    ranks[order] = (first[block] + last[block]) / 2 + 1
    return ranks


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(p)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_logloss(y: np.ndarray, p: np.ndarray) -> float:
    p_true = np.where(y == 1, p, 1 - p)
    return float(-np.mean(np.log(np.clip(p_true, EPS, 1 - EPS))))


def _binary_counts(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int]:
    pred = p > threshold
    truth = y == 1
    return int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def precision(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    tp, fp, _ = _binary_counts(y, p, threshold)
    return _ratio(tp, tp + fp)


def recall(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    tp, _, fn = _binary_counts(y, p, threshold)
    return _ratio(tp, tp + fn)


def f1(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    tp, fp, fn = _binary_counts(y, p, threshold)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def binary_accuracy(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    return float(np.mean((p > threshold) == (y == 1)))


def multi_accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(np.argmax(proba, axis=1) == y))


def macro_f1(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean F1 over the classes present in the labels or the predictions."""
    k = proba.shape[1]
    pred = np.argmax(proba, axis=1)
    tp = np.bincount(y[pred == y], minlength=k)
    n_pred = np.bincount(pred, minlength=k)
    n_true = np.bincount(y, minlength=k)
    present = (n_pred + n_true) > 0
    scores = np.divide(2 * tp, n_pred + n_true, out=np.zeros(k), where=present)
    return float(scores[present].mean())


def multi_logloss(y: np.ndarray, proba: np.ndarray) -> float:
    p_true = proba[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(p_true, EPS, 1 - EPS))))


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - yhat) ** 2)))


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.mean(np.abs(y - yhat)))


def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    total = float(((y - y.mean()) ** 2).sum())
    residual = float(((y - yhat) ** 2).sum())
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return 1 - residual / total


def ndcg(k: int) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    """NDCG@k averaged over groups; a group with no relevant row scores 0 (as scikit-learn)."""

    def compute(y: np.ndarray, score: np.ndarray, sizes: np.ndarray) -> float:
        group = np.repeat(np.arange(len(sizes)), sizes)
        starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
        # rank rows by descending score within each group
        order = np.lexsort((-score, group))
        pos = np.arange(len(y)) - starts
        discount = np.where(pos < k, 1 / np.log2(pos + 2), 0.0)
        s, g = score[order], group
        # tied scores share the mean of their positions' discounts (scikit-learn's ignore_ties=False)
        new_block = np.r_[True, (s[1:] != s[:-1]) | (g[1:] != g[:-1])]
        block = np.cumsum(new_block) - 1
        block_discount = np.bincount(block, weights=discount) / np.bincount(block)
        dcg = np.bincount(group, weights=y[order] * block_discount[block], minlength=len(sizes))
        ideal_order = np.lexsort((-y, group))
        idcg = np.bincount(group, weights=y[ideal_order] * discount, minlength=len(sizes))
        per_group = np.divide(dcg, idcg, out=np.zeros(len(sizes)), where=idcg > 0)
        return float(per_group.mean())

    return compute


# Unsupervised metrics take the inputs as the model sees them (`x`: imputed, standardised,
# one-hot) in place of a label. Clustering's score is (cluster from 1, distance to its centre).
SILHOUETTE_SAMPLE = 10_000


def inertia(x: np.ndarray, score: np.ndarray) -> float:
    """Sum of squared distances to the nearest centre (scikit-learn's KMeans.inertia_)."""
    return float(np.sum(score[:, 1] ** 2))


def davies_bouldin(x: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import davies_bouldin_score

    labels = score[:, 0].astype(np.int64)
    return float(davies_bouldin_score(x, labels)) if 1 < len(np.unique(labels)) < len(labels) else float("nan")


def silhouette(x: np.ndarray, score: np.ndarray) -> float:
    """Mean silhouette on a fixed sample of at most 10,000 rows (it is quadratic in rows)."""
    from sklearn.metrics import silhouette_score

    labels = score[:, 0].astype(np.int64)
    if not 1 < len(np.unique(labels)) < len(labels):
        return float("nan")
    sample = SILHOUETTE_SAMPLE if len(labels) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(x, labels, sample_size=sample, random_state=0))


def explained_variance(x: np.ndarray, components: np.ndarray) -> float:
    """The share of the inputs' variance the components keep (PCA's summed
    explained_variance_ratio_ on the training rows)."""
    total = float(np.var(x, axis=0, ddof=1).sum())
    return float(np.var(components, axis=0, ddof=1).sum() / total) if total > 0 else float("nan")


_ALL = [
    Metric("auc", ("binary",), True, auc),
    Metric("logloss", ("binary",), False, binary_logloss),
    Metric("accuracy", ("binary",), True, binary_accuracy),
    Metric("precision", ("binary",), True, precision),
    Metric("recall", ("binary",), True, recall),
    Metric("f1", ("binary",), True, f1),
    Metric("accuracy", ("multiclass",), True, multi_accuracy),
    Metric("macro_f1", ("multiclass",), True, macro_f1),
    Metric("logloss", ("multiclass",), False, multi_logloss),
    Metric("rmse", ("regression",), False, rmse),
    Metric("mae", ("regression",), False, mae),
    Metric("r2", ("regression",), True, r2),
    Metric("ndcg_at_1", ("ranking",), True, ndcg(1)),
    Metric("ndcg_at_5", ("ranking",), True, ndcg(5)),
    Metric("ndcg_at_10", ("ranking",), True, ndcg(10)),
    Metric("inertia", ("clustering",), False, inertia),
    Metric("davies_bouldin", ("clustering",), False, davies_bouldin),
    Metric("silhouette", ("clustering",), True, silhouette),
    Metric("explained_variance", ("decomposition",), True, explained_variance),
]
METRICS = {m.name: m for m in _ALL if m.tasks == ("binary",)}
THRESHOLDED = ("accuracy", "precision", "recall", "f1")  # binary metrics of P(positive) > threshold
HEADLINE = {
    "binary": "auc", "multiclass": "macro_f1", "regression": "rmse", "ranking": "ndcg_at_10",
    "clustering": "davies_bouldin", "decomposition": "explained_variance",
}  # fmt: skip


def headline(task: str) -> Metric:
    """The task's headline metric (what SHOW MODELS shows and `if_better` compares)."""
    return next(m for m in for_task(task) if m.name == HEADLINE[task])


def for_task(task: str) -> list[Metric]:
    """The metrics EVALUATE reports for a task, in column order."""
    return [m for m in _ALL if task in m.tasks]


def evaluate(
    task: str, y: np.ndarray, score: np.ndarray, groups: np.ndarray | None = None, threshold: float | None = None
) -> dict[str, float]:
    """Every metric of the task, by name; a binary model's class metrics at `threshold` (0.5
    when None). A metric undefined on these rows (R² of a constant label) is NaN, silently:
    the library prints no NumPy warnings."""
    with np.errstate(all="ignore"):
        return {m.name: m.compute(y, score, groups, threshold) for m in for_task(task)}
