"""The affine models scored from their terms in float64 (sqlml.models.affine): linear
regression and binary logistic regression over numeric inputs in SQL by DuckDB
(sqlml.sql_scoring), PCA and multiclass logistic regression in NumPy inside PREDICT's function.

Tolerance: 1e-9 against scikit-learn called directly (float64 both ways; ONNX's float32 would
miss it by four orders), and 1e-4 for a version served by its ONNX copy.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pytest
from sklearn import datasets
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sqlml

TOL = 1e-9


@pytest.fixture
def con(tmp_path):
    return sqlml.connect(catalog=str(tmp_path / "catalog"))


def with_holes(name: str) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """A bundled data set with a tenth of its inputs missing: NULL in even columns, NaN in odd."""
    data = getattr(datasets, f"load_{name}")()
    x, y = data.data, data.target
    x = np.where(np.random.default_rng(11).random(x.shape) < 0.1, np.nan, x)
    columns = {f"f{i}": pa.array(x[:, i], from_pandas=i % 2 == 0) for i in range(x.shape[1])}
    return pa.table({"id": np.arange(len(y)), **columns, "y": y}), x, y


def reference(estimator: object) -> object:
    return make_pipeline(SimpleImputer(keep_empty_features=True), StandardScaler(), estimator)


def udf_calls(con) -> int:
    """How many Python scoring functions the session's DuckDB holds."""
    found = con.sql("SELECT count(*) FROM duckdb_functions() WHERE function_name LIKE 'sqlml_predict%'")
    return int(found.fetchone()[0])


CASES = [
    ("breast_cancer", "logistic_classifier", "C = 0.5", lambda: LogisticRegression(C=0.5, max_iter=1000),
     "predict_proba", "map_values(probabilities)"),
    ("breast_cancer", "logistic_classifier", "C = 0.5, l1_ratio = 1, solver = 'saga', max_iter = 3000",
     lambda: LogisticRegression(C=0.5, l1_ratio=1, solver="saga", max_iter=3000, random_state=0),
     "predict_proba", "map_values(probabilities)"),
    ("diabetes", "linear_regressor", "fit_intercept = TRUE", LinearRegression, "predict", "prediction"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "trainer", "params", "make", "method", "column"), CASES,
                         ids=[f"{c[1]}:{c[0]}:{c[2][:12]}" for c in CASES])  # fmt: skip
def test_sql_scores_equal_scikit_learn_in_float64(con, data, trainer, params, make, method, column):
    src, x, y = with_holes(data)
    con.sql(f"TRAIN MODEL m USING {trainer} LABEL y WITH ({params}, validation = 0) "
            "AS SELECT * EXCLUDE (id) FROM src")  # fmt: skip
    fitted = reference(make()).fit(np.asfortranarray(x), y)
    expected = getattr(fitted, method)(x)
    rows = con.sql(f"SELECT {column} FROM PREDICT(MODEL m, TABLE src) ORDER BY id").fetchall()
    got = np.array([r[0] for r in rows], dtype=np.float64)
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)
    bigquery = con.sql("SELECT * FROM ML.PREDICT(MODEL m, TABLE src) ORDER BY id").fetchall()
    assert len(bigquery) == len(y)
    assert udf_calls(con) == 0  # no Python function was made for it
    if "l1_ratio" in params:  # the L1 penalty's zero weights are left out of the sum
        assert 0 < sum(w == 0 for w in fitted[-1].coef_[0])


def test_transform_columns_are_scored_in_sql(con):
    """A TRANSFORM's columns are the model's inputs: the SQL score reads them as the ONNX
    scorer did (each computed once), then scores as scikit-learn does on them."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=300), rng.normal(size=300)
    src = pa.table({"id": np.arange(300), "a": a, "b": b, "y": 2 * a - 3 * a * b + rng.normal(0, 0.1, 300)})
    con.sql("TRAIN MODEL t USING linear_regressor LABEL y TRANSFORM (a, a * b AS ab, y) "
            "WITH (validation = 0) AS SELECT * FROM src")  # fmt: skip
    features = np.column_stack([a, a * b])
    fitted = reference(LinearRegression()).fit(np.asfortranarray(features), src.column("y").to_numpy())
    rows = con.sql("SELECT prediction FROM PREDICT(MODEL t, TABLE src) ORDER BY id").fetchall()
    np.testing.assert_allclose([r[0] for r in rows], fitted.predict(features), rtol=TOL, atol=TOL)
    assert udf_calls(con) == 0
    # EVALUATE applies the TRANSFORM, then scores the computed columns from the same terms
    result = con.sql("EVALUATE MODEL t ON TABLE src")
    rmse = dict(zip(result.columns, result.fetchone()))["rmse"]
    residual = fitted.predict(features) - src.column("y").to_numpy()
    assert rmse == pytest.approx(np.sqrt(np.mean(residual**2)), abs=1e-12)


@pytest.mark.parametrize("holdout", [False, True])
def test_evaluate_scores_as_predict_does(con, holdout):
    """EVALUATE on a query scores from the same terms as PREDICT's SQL: its log loss and AUC equal
    scikit-learn's metrics of PREDICT's probabilities to the last bits (ONNX's float32 copy
    would be 1e-8 away); so do TRAIN's own validation metrics, from the same terms in NumPy."""
    from sklearn.metrics import log_loss, roc_auc_score

    src, _, y = with_holes("breast_cancer")
    validation = "0.25, split = 'sequential'" if holdout else "0"
    con.sql(f"TRAIN MODEL m USING logistic_classifier LABEL y WITH (validation = {validation}) "
            "AS SELECT * EXCLUDE (id) FROM src")  # fmt: skip
    rows = con.sql("SELECT probability FROM PREDICT(MODEL m, TABLE src) ORDER BY id").fetchall()
    p = np.array([r[0] for r in rows])
    result = con.sql("EVALUATE MODEL m ON TABLE src")
    row = dict(zip(result.columns, result.fetchone()))
    assert row["logloss"] == pytest.approx(log_loss(y, p), abs=1e-12)
    assert row["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    if holdout:  # the last quarter, as TRAIN kept it
        stored = con.sql("EVALUATE MODEL m")
        kept = dict(zip(stored.columns, stored.fetchone()))
        held = slice(len(y) - kept["rows"], None)
        assert kept["logloss"] == pytest.approx(log_loss(y[held], p[held]), abs=1e-12)


def test_extreme_inputs_saturate_and_do_not_fail(con):
    """A logistic model's score far past exp's range is a probability of 0 or 1 (no overflow
    error), as scikit-learn's expit gives; NULL and NaN are the training mean."""
    con.sql(
        "CREATE TABLE t AS SELECT i AS id, i / 100.0 AS a, (i * 7 % 13) / 13.0 AS b, i > 50 AS y FROM range(100) r(i)"
    )
    con.sql("TRAIN MODEL m USING logistic_classifier LABEL y WITH (validation = 0) AS SELECT a, b, y FROM t")
    got = con.sql("SELECT id, probability FROM PREDICT(MODEL m, (SELECT * FROM (VALUES "
                  "(1, 1e300, 0.5), (2, -1e300, 0.5), (3, NULL, NULL), (4, 'NaN'::DOUBLE, NULL)) v(id, a, b))) "
                  "ORDER BY id").fetchall()  # fmt: skip
    x = con.sql("SELECT a, b FROM t").fetchnumpy()
    fitted = reference(LogisticRegression(max_iter=1000)).fit(np.column_stack([x["a"], x["b"]]), np.arange(100) > 50)
    expected = fitted.predict_proba(np.array([[1e300, 0.5], [-1e300, 0.5], [np.nan, np.nan], [np.nan, np.nan]]))
    np.testing.assert_allclose([p for _, p in got], expected[:, 1], rtol=TOL, atol=TOL)
    assert [p for _, p in got][:2] == [1.0, 0.0]


@pytest.mark.parametrize(("statement", "columns"), [
    ("TRAIN MODEL o USING logistic_classifier LABEL y WITH (validation = 0) AS SELECT * EXCLUDE (id) FROM w3",
     "map_values(probabilities)"),  # three classes: a softmax
    ("TRAIN MODEL o USING pca WITH (n_components = 1, validation = 0) AS SELECT * EXCLUDE (id, y) FROM w3",
     "components"),
    ("TRAIN MODEL o USING kmeans WITH (n_clusters = 3, validation = 0) AS SELECT * EXCLUDE (id, y) FROM w3",
     "cluster"),
    ("TRAIN MODEL o USING linear_regressor LABEL y WITH (validation = 0) AS SELECT f0, f1, kind, y FROM w3",
     "prediction"),  # a category input
    ("TRAIN MODEL o USING naive_bayes LABEL y WITH (validation = 0) AS SELECT * EXCLUDE (id) FROM w3",
     "probability"),
])  # fmt: skip
def test_other_models_keep_their_scoring_function(con, statement, columns):
    """Several outputs or a category input, and the other families: a Python function scores
    (NumPy for the softmax and PCA, ONNX Runtime for the rest; a one-component PCA returns a
    one-element vector)."""
    src, _, _ = with_holes("wine")  # noqa: F841 (DuckDB reads it by name)
    con.sql("CREATE TABLE w3 AS SELECT *, CASE WHEN id % 3 = 0 THEN 'a' ELSE 'b' END AS kind FROM src")
    con.sql(statement)
    got = con.sql(f"SELECT {columns} FROM PREDICT(MODEL o, TABLE w3)").fetchall()
    assert len(got) == 178 and udf_calls(con) == 1
    if columns == "components":
        assert all(len(c) == 1 for (c,) in got)


def test_odd_names_and_types_score_as_numbers(con):
    """Inputs named with spaces, quotes and capitals, BOOLEAN and INTEGER inputs (as 1/0 and
    their values), a source that already has a `prediction` column, and two PREDICTs of the
    model joined in one query."""
    rng = np.random.default_rng(9)
    n = 200
    a, flag, count = rng.normal(size=n), rng.random(n) < 0.4, rng.integers(0, 9, n)
    y = 1.5 * a - 2 * flag + 0.3 * count + rng.normal(0, 0.1, n)
    src = pa.table({"id": np.arange(n), 'my "a"': a, "Flag": flag, "count": count, "y": y,  # noqa: F841
                    "prediction": np.zeros(n)})  # fmt: skip
    con.sql("TRAIN MODEL odd USING linear_regressor LABEL y WITH (validation = 0) "
            "AS SELECT \"my \"\"a\"\"\", \"Flag\", \"count\", y FROM src")  # fmt: skip
    x = np.column_stack([a, flag.astype(float), count.astype(float)])
    expected = reference(LinearRegression()).fit(np.asfortranarray(x), y).predict(x)
    rows = con.sql("SELECT p.id, p.prediction, q.prediction FROM PREDICT(MODEL odd, TABLE src) AS p "
                   "JOIN PREDICT(MODEL odd, TABLE src) AS q USING (id) ORDER BY p.id").fetchall()  # fmt: skip
    np.testing.assert_allclose([r[1] for r in rows], expected, rtol=TOL, atol=TOL)
    assert [r[1] for r in rows] == [r[2] for r in rows] and udf_calls(con) == 0


@pytest.mark.parametrize(("data", "trainer", "params", "make", "method", "column"), [
    ("wine", "logistic_classifier", "C = 0.5", lambda: LogisticRegression(C=0.5, max_iter=1000),
     "predict_proba", "map_values(probabilities)"),
    ("digits", "logistic_classifier", "C = 0.05", lambda: LogisticRegression(C=0.05, max_iter=1000),
     "predict_proba", "map_values(probabilities)"),
    ("wine", "pca", "n_components = 3", lambda: PCA(3, random_state=0), "transform", "components"),
    ("digits", "pca", "n_components = 5, whiten = TRUE", lambda: PCA(5, whiten=True, random_state=0), "transform",
     "components"),
])  # fmt: skip
def test_several_outputs_are_scored_in_numpy_in_float64(con, tmp_path, data, trainer, params, make, method, column):
    """A softmax and PCA's components come from the affine terms in NumPy: scikit-learn's
    scores within 1e-9, NULL and NaN inputs as the training mean; the same numbers reach
    EVALUATE. A version without the terms (trained before sqlml kept them) is served by its
    ONNX copy, within float32's 1e-4."""
    from sklearn.metrics import log_loss

    src, x, y = with_holes(data)
    label, drop = ("LABEL y ", "id") if trainer != "pca" else ("", "id, y")
    con.sql(f"TRAIN MODEL m USING {trainer} {label}WITH ({params}, validation = 0) "
            f"AS SELECT * EXCLUDE ({drop}) FROM src")  # fmt: skip
    fitted = reference(make())
    fitted = fitted.fit(np.asfortranarray(x), y) if method == "predict_proba" else fitted.fit(np.asfortranarray(x))
    expected = getattr(fitted, method)(x)
    query = f"SELECT {column} FROM PREDICT(MODEL m, TABLE src) ORDER BY id"
    got = np.array([r[0] for r in con.sql(query).fetchall()], dtype=np.float64)
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)
    assert udf_calls(con) == 1
    if method == "predict_proba":
        result = con.sql("EVALUATE MODEL m ON TABLE src")
        assert dict(zip(result.columns, result.fetchone()))["logloss"] == pytest.approx(log_loss(y, got), abs=1e-12)
    shutil.copytree(tmp_path / "catalog", tmp_path / "old")  # another path: a version this process has not loaded
    meta_file = tmp_path / "old" / "m" / "1" / "meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["affine"]
    meta_file.write_text(json.dumps(meta))
    old = sqlml.connect(catalog=str(tmp_path / "old"))
    served = np.array([r[0] for r in old.sql(query).fetchall()], dtype=np.float64)
    np.testing.assert_allclose(served, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(served - expected).max() > TOL  # float32: the ONNX copy served it


def test_a_vector_input_is_scored_from_the_terms(con):
    """Digits as one FLOAT[64] vector column (as images are given): a multiclass logistic
    regression and PCA scored from their terms equal scikit-learn's on the 64 numbers within
    1e-9; a NULL vector is every element's training mean (components 0)."""
    data = datasets.load_digits()
    x, y = data.data[:600].astype(np.float32), data.target[:600]
    src = pa.table({"id": np.arange(600), "px": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 64),  # noqa: F841
                    "y": y})  # fmt: skip
    con.sql("TRAIN MODEL m USING logistic_classifier LABEL y WITH (C = 0.05, validation = 0) AS SELECT px, y FROM src")
    con.sql("TRAIN MODEL p USING pca WITH (n_components = 4, validation = 0) AS SELECT px FROM src")
    x64 = np.asfortranarray(x, dtype=np.float64)
    expected = reference(LogisticRegression(C=0.05, max_iter=1000)).fit(x64, y).predict_proba(x64)
    got = [
        r[0]
        for r in con.sql("SELECT map_values(probabilities) FROM PREDICT(MODEL m, TABLE src) ORDER BY id").fetchall()
    ]
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)
    components = reference(PCA(4, random_state=0)).fit(x64).transform(x64)
    got = [r[0] for r in con.sql("SELECT components FROM PREDICT(MODEL p, TABLE src) ORDER BY id").fetchall()]
    np.testing.assert_allclose(got, components, rtol=TOL, atol=TOL)
    (empty,) = con.sql("SELECT components FROM PREDICT(MODEL p, (SELECT NULL::FLOAT[64] AS px))").fetchone()
    np.testing.assert_allclose(empty, np.zeros(4), atol=TOL)
