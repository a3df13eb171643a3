"""One contract every registered trainer passes (as river's estimator checks): a save/load
round trip predicts identically, a seed makes training deterministic, and the parameters
used are stored and reproduce the model."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sqlml import models
from sqlml.models import TrainingData


def data_for(trainer, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    n = 600
    x = rng.normal(size=(n, 4))
    x[rng.random(n) < 0.05, 2] = np.nan
    features = pa.table({f"f{i}": x[:, i] for i in range(4)})
    score = x[:, 0] + 0.5 * x[:, 1]
    if trainer.task == "classification":
        label = (score > 0).astype(float)
    elif trainer.task == "ranking":
        label = np.clip(np.floor(score + 1.5), 0, 3)
    else:
        label = score
    groups = np.full(60, 10) if trainer.task == "ranking" else None
    return TrainingData(features, label, groups)


def matrix(data: TrainingData) -> np.ndarray:
    return np.column_stack([c.to_numpy() for c in data.features.columns])


def fit(trainer, data, **params):
    return trainer.fit(data, None, {**trainer.base_params(2), **params}, 10, None, None)


@pytest.fixture(params=sorted(models.names()))
def trainer(request):
    return models.get(request.param)


def test_round_trip_predicts_identically(trainer):
    data = data_for(trainer)
    model, _ = fit(trainer, data)
    again = trainer.load(model.to_text())
    np.testing.assert_array_equal(model.predict(matrix(data)), again.predict(matrix(data)))


def test_fast_predict_equals_booster_predict(trainer):
    data = data_for(trainer)
    model, _ = fit(trainer, data)
    X = matrix(data)
    for threads in (0, 1):
        np.testing.assert_allclose(model.predict(X, threads=threads), model.booster.predict(X), atol=1e-12)


def test_seed_makes_training_deterministic(trainer):
    data = data_for(trainer)
    params = {"seed": 11, "bagging_fraction": 0.6, "bagging_freq": 1, "feature_fraction": 0.7}
    a, _ = fit(trainer, data, **params)
    b, _ = fit(trainer, data_for(trainer), **params)
    assert a.to_text() == b.to_text()
    c, _ = fit(trainer, data_for(trainer), **{**params, "seed": 12})
    assert a.to_text() != c.to_text()


def test_params_round_trip(trainer):
    data = data_for(trainer)
    model, used = fit(trainer, data, num_leaves=7, learning_rate=0.2)
    assert used["num_leaves"] == 7 and used["learning_rate"] == 0.2
    rebuilt, _ = trainer.fit(data_for(trainer), None, used, 10, None, None)
    assert rebuilt.to_text() == model.to_text()


def test_unknown_params_are_named(trainer):
    assert trainer.check_params({"num_leaves": 3, "learning_rate": 0.1, "num_leafs": 3}) == ["num_leafs"]
