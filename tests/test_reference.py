"""Same answers as LightGBM itself and as scikit-learn's metrics (acceptance: 1e-9)."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pytest
from sklearn import datasets
from sklearn import metrics as skm

PARAMS = {"num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 5, "seed": 7}
ROUNDS = 40


def load(con, name: str, X: np.ndarray, y: np.ndarray, extra: dict | None = None) -> list[str]:
    cols = [f"f{i}" for i in range(X.shape[1])]
    table = pa.table({"row_id": np.arange(len(y)), **{c: X[:, i] for i, c in enumerate(cols)}, "y": y, **(extra or {})})
    con.connection.register(f"{name}_arrow", table)
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_arrow")
    return cols


def with_clause() -> str:
    return ", ".join(f"{k} = {v}" for k, v in PARAMS.items()) + f", num_boost_round = {ROUNDS}, validation = 0"


def direct(objective: dict, X: np.ndarray, y: np.ndarray, group: np.ndarray | None = None) -> lgb.Booster:
    params = {"verbosity": -1, **objective, **PARAMS}
    return lgb.train(params, lgb.Dataset(X, label=y, group=group), ROUNDS)


def test_binary_breast_cancer(con):
    X, y = datasets.load_breast_cancer(return_X_y=True)
    load(con, "bc", X, y.astype(np.int64))
    con.execute(
        f"TRAIN MODEL bc USING lightgbm_classifier LABEL y EXCLUDE (row_id) WITH ({with_clause()}) AS SELECT * FROM bc"
    )
    got = con.sql("SELECT probability, prediction FROM PREDICT(MODEL bc, TABLE bc) ORDER BY row_id").arrow()
    expected = direct({"objective": "binary"}, X, y).predict(X)
    np.testing.assert_allclose(got["probability"].to_numpy(), expected, rtol=0, atol=1e-9)
    assert got["prediction"].to_pylist() == [int(p > 0.5) for p in expected]

    row = con.sql("EVALUATE MODEL bc ON TABLE bc").arrow().to_pylist()[0]
    assert row["rows"] == len(y)
    pred = (expected > 0.5).astype(int)
    reference = {
        "auc": skm.roc_auc_score(y, expected),
        "logloss": skm.log_loss(y, expected),
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
    }
    for name, value in reference.items():
        assert row[name] == pytest.approx(value, abs=1e-9), name


def test_multiclass_wine(con):
    X, y = datasets.load_wine(return_X_y=True)
    load(con, "wine", X, y.astype(np.int32))
    con.execute(
        f"TRAIN MODEL wine USING lightgbm_classifier LABEL y EXCLUDE (row_id) WITH ({with_clause()}) AS SELECT * FROM wine"
    )
    got = con.sql(
        "SELECT prediction, probability, map_extract_value(probabilities, 0) AS p0, "
        "map_extract_value(probabilities, 1) AS p1, map_extract_value(probabilities, 2) AS p2 "
        "FROM PREDICT(MODEL wine, TABLE wine) ORDER BY row_id"
    ).arrow()
    expected = direct({"objective": "multiclass", "num_class": 3}, X, y).predict(X)
    matrix = np.column_stack([got[c].to_numpy() for c in ("p0", "p1", "p2")])
    np.testing.assert_allclose(matrix, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got["probability"].to_numpy(), expected.max(axis=1), rtol=0, atol=1e-9)
    assert got["prediction"].to_pylist() == list(expected.argmax(axis=1))

    row = con.sql("EVALUATE MODEL wine ON TABLE wine").arrow().to_pylist()[0]
    pred = expected.argmax(axis=1)
    assert row["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-9)
    assert row["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-9)
    assert row["logloss"] == pytest.approx(skm.log_loss(y, expected), abs=1e-9)


def test_regression_diabetes(con):
    X, y = datasets.load_diabetes(return_X_y=True)
    load(con, "diabetes", X, y)
    con.execute(
        f"TRAIN MODEL dia USING lightgbm_regressor LABEL y EXCLUDE (row_id) WITH ({with_clause()}) AS SELECT * FROM diabetes"
    )
    got = con.sql("SELECT prediction FROM PREDICT(MODEL dia, TABLE diabetes) ORDER BY row_id").arrow()
    expected = direct({"objective": "regression"}, X, y).predict(X)
    np.testing.assert_allclose(got["prediction"].to_numpy(), expected, rtol=0, atol=1e-9)

    row = con.sql("EVALUATE MODEL dia ON TABLE diabetes").arrow().to_pylist()[0]
    assert row["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, expected)), abs=1e-9)
    assert row["mae"] == pytest.approx(skm.mean_absolute_error(y, expected), abs=1e-9)
    assert row["r2"] == pytest.approx(skm.r2_score(y, expected), abs=1e-9)


def ranking_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Queries of 5 to 20 documents; relevance 0-3 driven by two of six features."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 21, size=150)
    X = rng.normal(size=(sizes.sum(), 6))
    score = X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=len(X))
    y = np.clip(np.floor(score + 1.5), 0, 3).astype(np.int64)
    return X, y, sizes


def test_ranking(con):
    X, y, sizes = ranking_data()
    qid = np.repeat(np.arange(len(sizes)), sizes)
    load(con, "rank", X, y, {"qid": qid})
    con.execute(
        f"TRAIN MODEL rk USING lightgbm_ranker LABEL y GROUP qid EXCLUDE (row_id) WITH ({with_clause()}) AS SELECT * FROM rank"
    )
    got = con.sql("SELECT prediction FROM PREDICT(MODEL rk, TABLE rank) ORDER BY row_id").arrow()
    expected = direct({"objective": "lambdarank"}, X, y, sizes).predict(X)
    np.testing.assert_allclose(got["prediction"].to_numpy(), expected, rtol=0, atol=1e-9)

    row = con.sql("EVALUATE MODEL rk ON TABLE rank").arrow().to_pylist()[0]
    bounds = np.r_[0, np.cumsum(sizes)]
    for k in (1, 5, 10):
        per_query = [
            skm.ndcg_score([y[a:b]], [expected[a:b]], k=k) if y[a:b].any() else 0.0
            for a, b in zip(bounds[:-1], bounds[1:])
        ]
        assert row[f"ndcg_at_{k}"] == pytest.approx(np.mean(per_query), abs=1e-9), k


def test_same_seed_same_predictions(con):
    X, y = datasets.load_breast_cancer(return_X_y=True)
    load(con, "bc", X, y.astype(np.int64))
    sql = "TRAIN MODEL m USING lightgbm_classifier LABEL y EXCLUDE (row_id) WITH (seed = 3, bagging_fraction = 0.7, bagging_freq = 1, feature_fraction = 0.8) AS SELECT * FROM bc"
    con.execute(sql)
    con.execute(sql)
    a = con.sql("SELECT probability FROM PREDICT(MODEL m VERSION 1, TABLE bc) ORDER BY row_id").arrow()
    b = con.sql("SELECT probability FROM PREDICT(MODEL m VERSION 2, TABLE bc) ORDER BY row_id").arrow()
    assert a.equals(b)
    v1, v2 = con.catalog.get("m", 1), con.catalog.get("m", 2)
    assert v1.meta["fingerprint"] == v2.meta["fingerprint"]
    assert v1.meta["metrics"] == v2.meta["metrics"]
