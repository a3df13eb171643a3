"""The trainer contract (sqlml.models.contract) for every registered trainer, check by
check, plus LightGBM's lean predict against Booster.predict."""

from __future__ import annotations

import numpy as np
import pytest

from sqlml import models
from sqlml.models import contract


@pytest.fixture(params=sorted(models.names()))
def trainer(request):
    trainer = models.get(request.param)
    missing = getattr(trainer, "missing", lambda: None)()
    if missing:
        pytest.skip(missing)
    return trainer


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_contract(trainer, check):
    check(trainer)


@pytest.mark.parametrize("name", [n for n in sorted(models.names()) if models.get(n).model_file == "model.txt"])
def test_fast_predict_equals_booster_predict(name):
    trainer = models.get(name)
    data = contract.sample_data(trainer)
    model, _ = contract.fit(trainer, data)
    X = contract.matrix(data)
    for threads in (0, 1):
        np.testing.assert_allclose(model.predict(X, threads=threads), model.booster.predict(X), atol=1e-12)


def test_a_broken_contract_fails():
    class Forgetful:
        """A trainer whose loaded models forget what they learnt."""

        def __init__(self, inner):
            self.inner, self.name, self.task = inner, "forgetful", inner.task

        def __getattr__(self, attr):
            return getattr(self.inner, attr)

        def load(self, data, meta):
            return self.inner.load(self.inner.load(data, meta).booster.model_to_string(num_iteration=1).encode(), meta)

    with pytest.raises(AssertionError):
        contract.check_round_trip(Forgetful(models.get("lightgbm_regressor")))
