"""The affine models scored in float64 from their terms: linear regression, logistic regression
(binary and multiclass) and PCA over numbers. Each score is the inputs (a NULL or NaN one as
its training mean) times one weight matrix plus a bias, then a link: none, sigmoid or softmax.

TRAIN keeps the terms in the version's metadata (`meta["affine"]`, JSON numbers, the
standardisation folded into the weights), next to the ONNX copy in the catalog. sqlml scores
these models from the terms, in NumPy or (one score: see sqlml.sql_scoring) in SQL, rather than
with ONNX Runtime: scikit-learn's arithmetic in float64, and for PCA with 5 components on
2,048 rows x 28 one BLAS product, 80 µs, where ONNX Runtime's run took 100-110 and the
float32 copy of the inputs 16 more.

>>> a = Affine([0.5], [[2.0]], [1.0], "identity")
>>> a.scores(np.array([[1.0], [np.nan]])).tolist()
[[3.0], [2.0]]
>>> Affine([0.0], [[1.0, -1.0]], [0.0, 0.0], "softmax").scores(np.array([[0.0], [1.0]])).round(4).tolist()
[[0.5, 0.5], [0.8808, 0.1192]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sqlml.models.onnx_graphs import affine_terms, folded

MAX_WEIGHTS = 100_000  # the most numbers a version's metadata keeps as weights (784 inputs x 10 classes: 7,840)


class Affine:
    """`link(x . weights + bias)`, with NaN inputs replaced by `fill` first."""

    def __init__(self, fill: Any, weights: Any, bias: Any, link: str) -> None:
        self.fill = np.asarray(fill, dtype=np.float64)
        # (outputs, inputs), for (outputs, inputs) @ x.T: OpenBLAS computes a few outputs faster this way round
        self.rows = np.ascontiguousarray(np.asarray(weights, dtype=np.float64).T)
        self.bias = np.asarray(bias, dtype=np.float64)
        self.link = link

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Affine | None:
        """A version's terms (see `terms`); None for a version without them."""
        terms = meta.get("affine")
        return None if terms is None else cls(**terms)

    def scores(self, matrix: np.ndarray | Any) -> np.ndarray:
        """The scores of a (rows, inputs) matrix: (rows, outputs), float64."""
        x = matrix if isinstance(matrix, np.ndarray) else matrix.toarray()  # a SciPy matrix (vector inputs)
        z = self._product(x)
        missing = np.isnan(z)  # a NaN input makes its row's products NaN (NaN x 0 is NaN too)
        if missing.any():
            rows = missing.any(axis=1)
            part = x[rows]
            z[rows] = self._product(np.where(np.isnan(part), self.fill, part))
        z += self.bias
        if self.link == "sigmoid":
            with np.errstate(over="ignore"):  # exp(-z) overflows to inf for z < -709: the score is 0, as expit's
                return 1.0 / (1.0 + np.exp(-z))
        if self.link == "softmax":
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
        return z

    def _product(self, x: np.ndarray) -> np.ndarray:
        if len(self.bias) == 1:
            return (x @ self.rows[0])[:, None]
        return np.ascontiguousarray((self.rows @ x.T).T)


def terms(estimator: Any, mean: np.ndarray, scale: np.ndarray, fill: np.ndarray) -> dict[str, Any] | None:
    """What `Affine` needs of a fitted linear or logistic regression or PCA that was trained on
    standardised numbers ((x - mean) / scale, NaN as `fill`), as JSON numbers; None for another
    estimator, or weights too many or not finite."""
    affine = affine_terms(estimator)
    if affine is None:
        return None
    weights, biases = folded(affine[0], affine[1], mean, scale)
    if weights.size > MAX_WEIGHTS or not (np.isfinite(weights).all() and np.isfinite(biases).all()):
        return None
    return {"link": affine[2], "fill": fill.tolist(), "weights": weights.tolist(), "bias": biases.tolist()}
