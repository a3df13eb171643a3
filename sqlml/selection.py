"""Feature selection: rank a model's inputs on the training rows and keep the best k.

Three rankings, all scikit-learn's or LightGBM's own:

- ``importance``: total gain in one short LightGBM fit (50 rounds) with the TRAIN's objective;
  it sees interactions and handles categories and missing values;
- ``chi2``: scikit-learn's chi-squared statistic, for classifiers and non-negative inputs
  (counts, frequencies, one-hot flags); missing values count as 0;
- ``f_test``: scikit-learn's ANOVA F (``f_classif``) for classifiers, ``f_regression``
  otherwise; missing values are replaced by the column mean.

>>> import numpy as np
>>> x = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 2.0], [1.0, 2.0]])
>>> top(scores("f_test", x, np.array([0.0, 1.0, 0.0, 1.0]), "binary", ["a", "b"], [], None), 1).tolist()
[0]
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from sqlml.errors import ExecutionError
from sqlml.features import to_matrix

METHODS = ("importance", "chi2", "f_test")
IMPORTANCE_ROUNDS = 50
CLASSIFIER_TASKS = ("binary", "multiclass")


def scores(
    method: str, matrix: Any, label: np.ndarray, task: str, names: list[str], categorical: list[str],
    fit: Callable[[Any, list[str]], np.ndarray] | None,
) -> np.ndarray:  # fmt: skip
    """A score per input column of `matrix` (higher is better; NaN where undefined).
    `fit(matrix, names)` gives LightGBM's gain per column for 'importance'."""
    if method == "importance":
        if fit is None:
            raise ExecutionError("Feature selection by importance needs a LightGBM fit.")
        return np.asarray(fit(matrix, names), dtype=np.float64)
    if categorical:
        raise ExecutionError(
            f"feature_selection = '{method}' cannot rank categorical feature '{categorical[0]}'.",
            hint="Use feature_selection = 'importance', which ranks categories, or leave the column out.",
        )
    import scipy.sparse as sp
    from sklearn import feature_selection as fs

    if isinstance(matrix, pa.Table):
        matrix = to_matrix(matrix.columns, matrix.num_rows)
    sparse = sp.issparse(matrix)
    if method == "chi2":
        if task not in CLASSIFIER_TASKS:
            raise ExecutionError(
                "feature_selection = 'chi2' ranks features for a classifier.",
                hint="Use 'f_test' or 'importance' for regression and ranking.",
            )
        if not sparse:
            matrix = np.nan_to_num(matrix, nan=0.0)
        lowest = matrix.min(axis=0).toarray().ravel() if sparse else matrix.min(axis=0)
        if np.any(lowest < 0):
            raise ExecutionError(
                f"Feature '{names[int(np.argmax(lowest < 0))]}' has negative values; chi2 ranks counts and frequencies.",
                hint="Use feature_selection = 'f_test' or 'importance'.",
            )
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant columns score NaN, which ranks last
            return np.asarray(fs.chi2(matrix, label)[0], dtype=np.float64)
    if not sparse and np.isnan(matrix).any():
        means = np.nanmean(np.where(np.isnan(matrix).all(axis=0), 0.0, matrix), axis=0)
        matrix = np.where(np.isnan(matrix), means, matrix)
    test = fs.f_classif if task in CLASSIFIER_TASKS else fs.f_regression
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant columns score NaN, which ranks last
        return np.asarray(test(matrix, label)[0], dtype=np.float64)


def top(values: np.ndarray, k: int) -> np.ndarray:
    """The positions of the k best scores, in column order (NaN ranks last; ties keep the
    earlier column)."""
    ranked = ranking(values)
    return np.sort(ranked[: min(k, len(values))])


def ranking(values: np.ndarray) -> np.ndarray:
    """Column positions from best to worst score (NaN last, ties by position)."""
    filled = np.where(np.isnan(values), -np.inf, values)
    return np.lexsort((np.arange(len(values)), -filled))
