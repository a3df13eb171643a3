"""Trainers, registered under the names users type after USING.

Built-in trainers register themselves through `register`, exactly as a plugin would.

>>> sorted(names())[:4]
['cnn_classifier', 'kmeans', 'knn_classifier', 'knn_regressor']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sqlml.models.base import UNSUPERVISED, Model, Trainer, TrainingData

_REGISTRY: dict[str, Trainer] = {}


def register(trainer: Trainer) -> Trainer:
    """Make a trainer available to `TRAIN MODEL ... USING <trainer.name>`."""
    _REGISTRY[trainer.name] = trainer
    return trainer


def get(name: str) -> Trainer | None:
    return _REGISTRY.get(name.lower())


def names() -> list[str]:
    return list(_REGISTRY)


from sqlml.models import cnn as _cnn  # noqa: E402
from sqlml.models import lightgbm as _lightgbm  # noqa: E402  (registers the built-ins)
from sqlml.models import sklearn as _sklearn  # noqa: E402

_lightgbm.register_builtins(register)
_sklearn.register_builtins(register)
_cnn.register_builtins(register)


def truth(task: str, model: Model, matrix: Any, label: np.ndarray) -> np.ndarray:
    """What a model's scores are measured against: the label (class codes for a classifier),
    or for clustering and decomposition the inputs as the model sees them."""
    if task in UNSUPERVISED:
        return np.asarray(model.model_inputs(matrix))  # type: ignore[attr-defined]
    return label.astype(np.int64) if task in ("binary", "multiclass") else label


__all__ = ["Model", "Trainer", "TrainingData", "get", "names", "register"]
