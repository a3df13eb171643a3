"""The contract every trainer passes, shipped in the package so a plugin author can run it
on their own trainer (as river's estimator checks):

>>> from sqlml import models
>>> check_trainer(models.get("lightgbm_regressor"))

A save/load round trip predicts identically, a seed makes training deterministic, the
parameters a fit reports reproduce the model, and parameters the trainer would not honour
are refused when the statement is bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from sqlml.errors import BindError
from sqlml.models.base import Model, Trainer, TrainingData


def sample_data(trainer: Trainer, seed: int = 0, rows: int = 600) -> TrainingData:
    """A small learnable data set for the trainer's task, with some missing values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    x[rng.random(rows) < 0.05, 2] = np.nan
    features = pa.table({f"f{i}": x[:, i] for i in range(4)})
    score = x[:, 0] + 0.5 * x[:, 1]
    if trainer.task == "classification":
        label = (score > 0).astype(float)
    elif trainer.task == "ranking":
        label = np.clip(np.floor(score + 1.5), 0, 3)
    else:
        label = score
    groups = np.full(rows // 10, 10) if trainer.task == "ranking" else None
    return TrainingData(features, label, groups)


def matrix(data: TrainingData) -> np.ndarray:
    """The features as the row-major float64 matrix models predict from."""
    table = data.features
    assert isinstance(table, pa.Table)
    return np.column_stack([c.to_numpy() for c in table.columns])


def fit(trainer: Trainer, data: TrainingData, **params: Any) -> tuple[Model, dict[str, Any]]:
    """Ten rounds on one thread, with the given (already checked) parameters."""
    return trainer.fit(data, None, trainer.params_for({"num_threads": 1, **params}, 2), 10, None, None)


def check_round_trip(trainer: Trainer) -> None:
    data = sample_data(trainer)
    model, _ = fit(trainer, data)
    again = trainer.load(model.to_text())
    np.testing.assert_array_equal(model.predict(matrix(data)), again.predict(matrix(data)))


def check_seed(trainer: Trainer) -> None:
    params = {"seed": 11, "bagging_fraction": 0.6, "bagging_freq": 1, "feature_fraction": 0.7}
    a, _ = fit(trainer, sample_data(trainer), **params)
    b, _ = fit(trainer, sample_data(trainer), **params)
    assert a.to_text() == b.to_text(), "the same seed trained two different models"
    c, _ = fit(trainer, sample_data(trainer), **{**params, "seed": 12})
    assert a.to_text() != c.to_text(), "another seed trained the same model"


def check_params_round_trip(trainer: Trainer) -> None:
    model, used = fit(trainer, sample_data(trainer), num_leaves=7, learning_rate=0.2)
    assert used["num_leaves"] == 7 and used["learning_rate"] == 0.2, used
    rebuilt, _ = trainer.fit(sample_data(trainer), None, used, 10, None, None)
    assert rebuilt.to_text() == model.to_text(), "the reported parameters did not reproduce the model"


def check_refusals(trainer: Trainer) -> None:
    for key, value in (("num_leafs", 3), ("objective", "binary num_leaves=2"), ("task", "train")):
        try:
            trainer.check_param(key, value)
        except BindError:
            continue
        raise AssertionError(f"{trainer.name} accepted {key} = {value!r}")
    assert trainer.check_param("num_leaves", 3) == ("num_leaves", 3)


def check_load_refuses_garbage(trainer: Trainer) -> None:
    model, _ = fit(trainer, sample_data(trainer))
    text = model.to_text()
    for bad in ("", "garbage", text[: len(text) // 2]):
        try:
            trainer.load(bad)
        except ValueError:
            continue
        raise AssertionError(f"{trainer.name} loaded a broken model text")


CHECKS: tuple[Callable[[Trainer], None], ...] = (
    check_round_trip,
    check_seed,
    check_params_round_trip,
    check_refusals,
    check_load_refuses_garbage,
)


def check_trainer(trainer: Trainer) -> None:
    """Run every check on a trainer; an AssertionError names the first that fails."""
    for check in CHECKS:
        check(trainer)
