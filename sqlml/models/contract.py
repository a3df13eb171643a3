"""The contract every trainer passes, shipped in the package so a plugin author can run it
on their own trainer (as river's estimator checks):

>>> from sqlml import models
>>> check_trainer(models.get("lightgbm_regressor"))

A save/load round trip predicts identically, a seed makes training deterministic, the
parameters a fit reports reproduce the model, parameters the trainer would not honour are
refused when the statement is bound, and broken model files are refused when loaded.

A trainer tells the checks two things of its own (both optional): `example`, parameters
that change its model (for the reproduction check), and `randomised`, parameters under
which another seed trains another model.
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
    elif trainer.task == "regression":
        label = score
    else:  # clustering and decomposition learn without a label
        label = np.zeros(rows)
    groups = np.full(rows // 10, 10) if trainer.task == "ranking" else None
    return TrainingData(features, label, groups)


def matrix(data: TrainingData) -> np.ndarray:
    """The features as the row-major float64 matrix models predict from."""
    table = data.features
    assert isinstance(table, pa.Table)
    return np.column_stack([c.to_numpy() for c in table.columns])


def fit(trainer: Trainer, data: TrainingData, **params: Any) -> tuple[Model, dict[str, Any]]:
    """Ten rounds (for boosted trees) on one thread, with the given (already checked) parameters."""
    if trainer.boosting:
        params = {"num_threads": 1, **params}
    return trainer.fit(data, None, trainer.params_for(params, 2), 10, None, None)


def _meta(trainer: Trainer, model: Model) -> dict[str, Any]:
    """The metadata a version of this model would have (what loading needs of it)."""
    return {"task": trainer.task_for(2), "trainer": trainer.name, **getattr(model, "info", {})}


def check_round_trip(trainer: Trainer) -> None:
    data = sample_data(trainer)
    model, _ = fit(trainer, data)
    again = trainer.load(model.to_bytes(), _meta(trainer, model))
    np.testing.assert_array_equal(model.predict(matrix(data)), again.predict(matrix(data)))
    assert again.width == 4, f"the loaded model takes {again.width} inputs, not 4"


def check_seed(trainer: Trainer) -> None:
    params = {"seed": 11, **dict(getattr(trainer, "randomised", ()))}
    a, _ = fit(trainer, sample_data(trainer), **params)
    b, _ = fit(trainer, sample_data(trainer), **params)
    assert a.to_bytes() == b.to_bytes(), "the same seed trained two different models"
    if getattr(trainer, "randomised", ()):
        c, _ = fit(trainer, sample_data(trainer), **{**params, "seed": 12})
        assert a.to_bytes() != c.to_bytes(), "another seed trained the same model"


def check_params_round_trip(trainer: Trainer) -> None:
    example = dict(getattr(trainer, "example", ()))
    for key, value in example.items():
        assert trainer.check_param(key, value) == (key, value), f"{trainer.name} refused its example {key}"
    model, used = fit(trainer, sample_data(trainer), **example)
    assert all(used[k] == v for k, v in example.items()), used
    plain, _ = fit(trainer, sample_data(trainer))
    if example:
        assert plain.to_bytes() != model.to_bytes(), f"{trainer.name} ignored its example parameters"
    rebuilt, _ = trainer.fit(sample_data(trainer), None, dict(used), 10, None, None)
    assert rebuilt.to_bytes() == model.to_bytes(), "the reported parameters did not reproduce the model"


def check_refusals(trainer: Trainer) -> None:
    for key, value in (("no_such_parameter", 3), ("verbose", 1), ("task", "train")):
        try:
            trainer.check_param(key, value)
        except BindError as err:
            assert err.hint, f"{trainer.name} refused {key} without a hint"
            continue
        raise AssertionError(f"{trainer.name} accepted {key} = {value!r}")


def check_load_refuses_garbage(trainer: Trainer) -> None:
    model, _ = fit(trainer, sample_data(trainer))
    data, meta = model.to_bytes(), _meta(trainer, model)
    for bad in (b"", b"garbage", data[: len(data) // 2]):
        try:
            trainer.load(bad, meta)
        except ValueError:
            continue
        raise AssertionError(f"{trainer.name} loaded a broken model file")


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
