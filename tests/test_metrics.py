"""Each metric against scikit-learn's, on random data with ties (1e-9)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from sqlml import metrics


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 300), st.sampled_from([1, 2, 10, 1000]))
def test_binary_metrics(seed, n, levels):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    p = np.round(rng.random(n) * levels) / levels  # ties when levels is small
    got = metrics.evaluate("binary", y, p)
    pred = (p > 0.5).astype(int)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-9)
    assert got["logloss"] == pytest.approx(skm.log_loss(y, p), abs=1e-9)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-9)
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0), abs=1e-9)
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, zero_division=0), abs=1e-9)
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(6, 200), st.integers(3, 6))
def test_multiclass_metrics(seed, n, k):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    y[:k] = np.arange(k)
    proba = rng.random((n, k))
    proba /= proba.sum(axis=1, keepdims=True)
    got = metrics.evaluate("multiclass", y, proba)
    pred = proba.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-9)
    assert got["macro_f1"] == pytest.approx(
        skm.f1_score(y, pred, average="macro", labels=np.unique(np.r_[y, pred])), abs=1e-9
    )
    assert got["logloss"] == pytest.approx(skm.log_loss(y, proba, labels=np.arange(k)), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 300))
def test_regression_metrics(seed, n):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    yhat = y + rng.normal(scale=0.5, size=n)
    got = metrics.evaluate("regression", y, yhat)
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, yhat)), abs=1e-9)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, yhat), abs=1e-9)
    assert got["r2"] == pytest.approx(skm.r2_score(y, yhat), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(2, 25), min_size=1, max_size=30), st.sampled_from([2, 5, 100]))
def test_ndcg_with_ties_and_ragged_groups(seed, sizes, levels):
    rng = np.random.default_rng(seed)
    sizes = np.array(sizes)
    y = rng.integers(0, 4, sizes.sum()).astype(float)
    score = np.round(rng.random(sizes.sum()) * levels) / levels
    bounds = np.r_[0, np.cumsum(sizes)]
    got = metrics.evaluate("ranking", y, score, sizes)
    for k in (1, 5, 10):
        expected = np.mean([skm.ndcg_score([y[a:b]], [score[a:b]], k=k) for a, b in zip(bounds[:-1], bounds[1:])])
        assert got[f"ndcg_at_{k}"] == pytest.approx(expected, abs=1e-9)


def test_metric_directions_and_headlines():
    assert metrics.METRICS["auc"].bigger_is_better and not metrics.METRICS["logloss"].bigger_is_better
    for task, name in metrics.HEADLINE.items():
        assert name in [m.name for m in metrics.for_task(task)]
