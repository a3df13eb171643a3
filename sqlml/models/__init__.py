"""Trainers, registered under the names users type after USING.

Built-in trainers register themselves through `register`, exactly as a plugin would.

>>> sorted(names())
['lightgbm_classifier', 'lightgbm_ranker', 'lightgbm_regressor']
"""

from __future__ import annotations

from sqlml.models.base import Model, Trainer, TrainingData

_REGISTRY: dict[str, Trainer] = {}


def register(trainer: Trainer) -> Trainer:
    """Make a trainer available to `TRAIN MODEL ... USING <trainer.name>`."""
    _REGISTRY[trainer.name] = trainer
    return trainer


def get(name: str) -> Trainer | None:
    return _REGISTRY.get(name.lower())


def names() -> list[str]:
    return list(_REGISTRY)


from sqlml.models import lightgbm as _lightgbm  # noqa: E402  (registers the built-ins)

_lightgbm.register_builtins(register)

__all__ = ["Model", "Trainer", "TrainingData", "get", "names", "register"]
