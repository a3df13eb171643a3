"""Explanations and diagnostics against LightGBM and scikit-learn called directly on the same rows.

The reference scores come from the stored LightGBM model loaded by LightGBM itself, and the
curves from scikit-learn's own functions on those scores: what is tested is that sqlml reads
the right rows, labels and scores and reports every point.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pytest
from sklearn import datasets, metrics
from sklearn.calibration import calibration_curve

import sqlml
from sqlml.errors import BindError, ExecutionError


def dataset(name: str) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    data = {"breast_cancer": datasets.load_breast_cancer, "wine": datasets.load_wine,
            "diabetes": datasets.load_diabetes}[name]()  # fmt: skip
    x, y = data.data, data.target
    return pa.table({**{f"f{i}": x[:, i] for i in range(x.shape[1])}, "y": y}), x, y


@pytest.fixture
def binary(con, catalog):
    src, x, y = dataset("breast_cancer")
    con.sql("TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_threads = 1, num_boost_round = 30, seed = 1) "
            "AS SELECT * FROM src")  # fmt: skip
    booster = lgb.Booster(model_file=str(catalog / "m" / "1" / "model.txt"))
    return src, x, y, booster


def test_explanations_equal_lightgbm_pred_contrib(con, binary):
    src, x, y, booster = binary
    rows = con.sql(
        "SELECT attributions, baseline, raw_score FROM EXPLAIN_PREDICT(MODEL m, TABLE src, top_k => 30)"
    ).fetchall()
    contrib = booster.predict(x, pred_contrib=True)
    raw = booster.predict(x, raw_score=True)
    assert len(rows) == len(y)
    for i, (attributions, baseline, raw_score) in enumerate(rows):
        got = {a["feature"]: a["attribution"] for a in attributions}
        np.testing.assert_allclose([got[f"f{j}"] for j in range(30)], contrib[i, :30], rtol=0, atol=1e-9)
        assert baseline == pytest.approx(contrib[i, 30], abs=1e-9)
        assert raw_score == pytest.approx(raw[i], abs=1e-9)
        assert baseline + sum(got.values()) == pytest.approx(raw[i], abs=1e-9)  # they add up to the raw score
        magnitudes = [abs(a["attribution"]) for a in attributions]
        assert magnitudes == sorted(magnitudes, reverse=True)


def test_top_k_keeps_the_largest(con, binary):
    src, x, _, booster = binary
    contrib = booster.predict(x[:5], pred_contrib=True)[:, :30]
    rows = con.sql(
        "SELECT attributions FROM EXPLAIN_PREDICT(MODEL m, (SELECT * FROM src LIMIT 5), top_k => 3)"
    ).fetchall()
    for i, (attributions,) in enumerate(rows):
        expected = [f"f{j}" for j in np.argsort(-np.abs(contrib[i]), kind="stable")[:3]]
        assert [a["feature"] for a in attributions] == expected


def test_multiclass_explanations_are_the_predicted_class(con, catalog):
    src, x, _ = dataset("wine")
    con.sql(
        "TRAIN MODEL w USING lightgbm_classifier LABEL y WITH (num_threads = 1, num_boost_round = 10) AS SELECT * FROM src"
    )
    booster = lgb.Booster(model_file=str(catalog / "w" / "1" / "model.txt"))
    contrib = booster.predict(x, pred_contrib=True).reshape(len(x), 3, 14)
    predicted = np.argmax(booster.predict(x), axis=1)
    rows = con.sql(
        "SELECT prediction, attributions, raw_score FROM EXPLAIN_PREDICT(MODEL w, TABLE src, top_k => 13)"
    ).fetchall()
    for i, (prediction, attributions, raw_score) in enumerate(rows):
        assert prediction == predicted[i]
        got = {a["feature"]: a["attribution"] for a in attributions}
        np.testing.assert_allclose([got[f"f{j}"] for j in range(13)], contrib[i, predicted[i], :13], atol=1e-9)
        assert raw_score == pytest.approx(contrib[i, predicted[i]].sum(), abs=1e-9)


def test_global_explanation_is_the_mean_absolute_attribution(con, binary):
    src, x, _, booster = binary
    got = dict(con.sql("SELECT feature, attribution FROM GLOBAL_EXPLAIN(MODEL m, TABLE src)").fetchall())
    expected = np.abs(booster.predict(x, pred_contrib=True)[:, :30]).mean(axis=0)
    np.testing.assert_allclose([got[f"f{j}"] for j in range(30)], expected, atol=1e-9)
    ordered = [r[0] for r in con.sql("SELECT attribution FROM GLOBAL_EXPLAIN(MODEL m, TABLE src)").fetchall()]
    assert ordered == sorted(ordered, reverse=True)


def test_roc_and_pr_curves_equal_scikit_learn(con, binary):
    src, x, y, booster = binary
    p = booster.predict(x)
    fpr, tpr, thresholds = metrics.roc_curve(y, p)
    roc = con.sql("SELECT threshold, false_positive_rate, recall, true_positives, false_positives, true_negatives, "
                  "false_negatives FROM ROC_CURVE(MODEL m, TABLE src)").fetchnumpy()  # fmt: skip
    np.testing.assert_array_equal(roc["threshold"], thresholds)
    np.testing.assert_allclose(roc["false_positive_rate"], fpr, atol=1e-12)
    np.testing.assert_allclose(roc["recall"], tpr, atol=1e-12)
    for i, t in enumerate(thresholds):
        assert roc["true_positives"][i] == np.sum((p >= t) & (y == 1))
        assert roc["false_positives"][i] == np.sum((p >= t) & (y == 0))
    assert (roc["true_positives"] + roc["false_negatives"] == (y == 1).sum()).all()
    assert (roc["false_positives"] + roc["true_negatives"] == (y == 0).sum()).all()
    precision, recall, cuts = metrics.precision_recall_curve(y, p)
    pr = con.sql("SELECT threshold, precision, recall FROM PR_CURVE(MODEL m, TABLE src)").fetchall()
    np.testing.assert_allclose([r[1] for r in pr], precision, atol=1e-12)
    np.testing.assert_allclose([r[2] for r in pr], recall, atol=1e-12)
    np.testing.assert_array_equal([r[0] for r in pr[:-1]], cuts)
    assert pr[-1][0] is None


def test_curves_of_the_validation_rows_agree_with_evaluate(con, binary):
    auc = con.sql("SELECT auc, rows FROM EVALUATE(MODEL m)").fetchone()
    points = con.sql("SELECT false_positive_rate, recall FROM ROC_CURVE(MODEL m) ORDER BY 1, 2").fetchnumpy()
    assert metrics.auc(points["false_positive_rate"], points["recall"]) == pytest.approx(auc[0], abs=1e-12)
    assert auc[1] == round(569 * 0.2)
    total = con.sql("SELECT sum(count) FROM CONFUSION_MATRIX(MODEL m)").fetchone()[0]
    assert total == auc[1]


def test_threshold_in_evaluate_predict_and_confusion_matrix(con, binary):
    src, x, y, booster = binary
    p = booster.predict(x)
    row = con.sql(
        "SELECT precision, recall, f1, accuracy, auc FROM EVALUATE(MODEL m, TABLE src, threshold => 0.3)"
    ).fetchone()
    cut = p > 0.3
    np.testing.assert_allclose(row[:4], [metrics.precision_score(y, cut), metrics.recall_score(y, cut),
                                         metrics.f1_score(y, cut), metrics.accuracy_score(y, cut)], atol=1e-12)  # fmt: skip
    assert row[4] == pytest.approx(metrics.roc_auc_score(y, p), abs=1e-12)  # the threshold moves class metrics only
    predicted = [
        r[0] for r in con.sql("SELECT prediction FROM PREDICT(MODEL m, TABLE src, threshold => 0.3)").fetchall()
    ]
    np.testing.assert_array_equal(predicted, cut.astype(int))
    counts = con.sql("SELECT actual, predicted, count FROM CONFUSION_MATRIX(MODEL m, TABLE src, threshold => 0.3) "
                     "ORDER BY actual, predicted").fetchall()  # fmt: skip
    assert [c for *_, c in counts] == metrics.confusion_matrix(y, cut).ravel().tolist()


def test_multiclass_confusion_matrix_equals_scikit_learn(con, catalog):
    src, x, y = dataset("wine")
    con.sql(
        "TRAIN MODEL w USING lightgbm_classifier LABEL y WITH (num_threads = 1, num_boost_round = 5) AS SELECT * FROM src"
    )
    booster = lgb.Booster(model_file=str(catalog / "w" / "1" / "model.txt"))
    expected = metrics.confusion_matrix(y, np.argmax(booster.predict(x), axis=1))
    got = con.sql("SELECT count FROM CONFUSION_MATRIX(MODEL w, TABLE src) ORDER BY actual, predicted").fetchall()
    assert [c for (c,) in got] == expected.ravel().tolist()
    bq = con.sql("SELECT * FROM ML.CONFUSION_MATRIX(MODEL w, TABLE src) ORDER BY expected_label").fetchall()
    assert [list(r[1:]) for r in bq] == expected.tolist()


def test_calibration_equals_scikit_learn(con, binary):
    src, x, y, booster = binary
    observed, predicted = calibration_curve(y, booster.predict(x), n_bins=5)
    got = con.sql(
        "SELECT predicted, observed, rows FROM CALIBRATION(MODEL m, TABLE src, bins => 5) ORDER BY bin"
    ).fetchall()
    np.testing.assert_allclose([r[0] for r in got], predicted, atol=1e-12)
    np.testing.assert_allclose([r[1] for r in got], observed, atol=1e-12)
    assert sum(r[2] for r in got) == len(y)


def test_training_curve_ends_at_the_validation_metric(con, binary):
    curve = con.sql(
        "SELECT iteration, metric, training, validation FROM TRAINING_CURVE(MODEL m) ORDER BY iteration"
    ).fetchall()
    assert [r[0] for r in curve] == list(range(1, 31))
    assert {r[1] for r in curve} == {"binary_logloss"}
    assert curve[-1][2] < curve[0][2]  # the training loss falls
    logloss = con.sql("SELECT logloss FROM EVALUATE(MODEL m)").fetchone()[0]
    assert curve[-1][3] == pytest.approx(logloss, rel=1e-9)
    info = con.sql("SELECT iteration, loss, eval_loss FROM ML.TRAINING_INFO(MODEL m) ORDER BY iteration").fetchall()
    assert [(i + 1, loss, ev) for i, loss, ev in info] == [(r[0], r[2], r[3]) for r in curve]


def test_early_stopped_curve_names_the_best_round(con):
    src, _, _ = dataset("breast_cancer")
    con.sql("TRAIN MODEL es USING lightgbm_classifier LABEL y WITH (num_threads = 1, num_boost_round = 500, "
            "early_stopping_rounds = 5, learning_rate = 0.5) AS SELECT * FROM src")  # fmt: skip
    rounds = con.sql("SELECT count(*) FROM TRAINING_CURVE(MODEL es)").fetchone()[0]
    assert rounds < 500  # the curve runs to where training stopped, past the best round


def test_feature_importance_equals_lightgbm(con, binary):
    _, _, _, booster = binary
    got = {r[0]: r[1:] for r in con.sql("SELECT * FROM ML.FEATURE_IMPORTANCE(MODEL m)").fetchall()}
    splits, gain = booster.feature_importance("split"), booster.feature_importance("gain")
    for j in range(30):
        weight, total_gain, cover = got[f"f{j}"]
        assert weight == splits[j]
        assert total_gain == pytest.approx(gain[j], rel=1e-9)
        assert (cover > 0) == (splits[j] > 0)


def test_result_functions_compose(con, binary):
    src, *_ = binary
    con.sql("TRAIN MODEL m2 USING logistic_classifier LABEL y WITH (validation = 0.2) AS SELECT * FROM src")
    both = con.sql("SELECT model, auc FROM EVALUATE(MODEL m, TABLE src) UNION ALL "
                   "SELECT model, auc FROM EVALUATE(MODEL m2, TABLE src) ORDER BY model").fetchall()  # fmt: skip
    assert [r[0] for r in both] == ["m", "m2"] and all(0.9 < r[1] <= 1 for r in both)
    con.sql("CREATE TABLE roc AS SELECT * FROM ROC_CURVE(MODEL m, TABLE src) WHERE false_positive_rate < 0.1")
    assert con.sql("SELECT max(false_positive_rate) < 0.1, count(*) > 0 FROM roc").fetchone() == (True, True)
    joined = con.sql("SELECT m.name, e.rows FROM MODELS() m JOIN EVALUATE(MODEL m) e ON m.name = e.model").fetchall()
    assert joined == [("m", 114)]
    described = con.sql("SELECT value FROM DESCRIBE_MODEL(MODEL m) WHERE name = 'trainer'").fetchall()
    assert described == [("lightgbm_classifier",)]
    with_cte = con.sql("WITH e AS (SELECT * FROM FEATURE_IMPORTANCE(MODEL m)) SELECT count(*) FROM e").fetchone()
    assert with_cte == (30,)


def test_a_failing_function_changes_nothing(con, binary):
    src, *_ = binary
    con.sql(
        "TRAIN MODEL r USING lightgbm_regressor LABEL y WITH (num_threads = 1, num_boost_round = 5) AS SELECT * FROM src"
    )
    with pytest.raises(BindError, match="ROC_CURVE is for binary classifiers"):
        con.sql("CREATE TABLE x AS SELECT * FROM ROC_CURVE(MODEL r, TABLE src)")
    with pytest.raises(ExecutionError, match="kept no validation rows"):
        con.sql("TRAIN MODEL small USING lightgbm_classifier LABEL y WITH (validation = 0, num_boost_round = 2) "
                "AS SELECT * FROM src; CREATE TABLE x AS SELECT * FROM ROC_CURVE(MODEL small)")  # fmt: skip
    assert con.sql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'x'").fetchone() == (0,)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM EVALUATE(MODEL m, threshold => 2)", "Bad value for EVALUATE's threshold"),
        ("SELECT * FROM EVALUATE(MODEL m, treshold => 0.2)", "Did you mean 'threshold'"),
        ("SELECT * FROM TRAINING_CURVE(MODEL m, TABLE src)", "takes no input rows"),
        ("SELECT * FROM EXPLAIN_PREDICT(MODEL nb, TABLE src)", "explains tree models"),
        ("SELECT * FROM FEATURE_IMPORTANCE(MODEL lin)", "reads the splits of tree models"),
        ("SELECT * FROM TRAINING_CURVE(MODEL lin)", "has no training curve"),
        ("SELECT * FROM PREDICT(MODEL w, TABLE src, threshold => 0.2)", "threshold is for binary classifiers"),
        ("SELECT * FROM ROC_CURVE(MODEL mm)", "Did you mean 'm'"),
        ("SELECT * FROM ML.EVALUATE(MODEL m, STRUCT(1 AS trial_id))", "one trial"),
    ],
)
def test_bad_calls_are_bind_errors(con, binary, sql, message):
    src, *_ = binary
    con.sql("TRAIN MODEL lin USING logistic_classifier LABEL y AS SELECT * FROM src")
    con.sql("TRAIN MODEL nb USING naive_bayes LABEL y AS SELECT * FROM src")
    wine, _, _ = dataset("wine")  # noqa: F841 (read by name)
    con.sql("TRAIN MODEL w USING lightgbm_classifier LABEL y WITH (num_boost_round = 2) AS SELECT * FROM wine")
    with pytest.raises(sqlml.SqlmlError) as err:
        con.sql(sql)
    assert message in f"{err.value.message} {err.value.hint}"


@pytest.mark.parametrize("data", ["breast_cancer", "wine", "diabetes"])
def test_linear_explanations_are_coefficients_times_centred_inputs(con, data):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    src, x, y = dataset(data)
    trainer = "linear_regressor" if data == "diabetes" else "logistic_classifier"
    con.sql(f"TRAIN MODEL lin USING {trainer} LABEL y WITH (validation = 0) AS SELECT * FROM src")
    estimator = LinearRegression() if data == "diabetes" else LogisticRegression(max_iter=1000, random_state=0)
    reference = make_pipeline(SimpleImputer(keep_empty_features=True), StandardScaler(), estimator)
    reference.fit(np.asfortranarray(x), y)
    z = reference[:-1].transform(x)
    coef = np.atleast_2d(reference[-1].coef_)
    logits = z @ coef.T + reference[-1].intercept_
    k = np.argmax(logits, axis=1) if coef.shape[0] > 1 else np.zeros(len(y), dtype=int)
    expected = coef[k] * (z - z.mean(axis=0))
    width = x.shape[1]
    rows = con.sql(
        f"SELECT attributions, baseline, raw_score FROM EXPLAIN_PREDICT(MODEL lin, TABLE src, top_k => {width})"
    ).fetchall()
    for i, (attributions, baseline, raw_score) in enumerate(rows):
        got = {a["feature"]: a["attribution"] for a in attributions}
        np.testing.assert_allclose([got[f"f{j}"] for j in range(width)], expected[i], atol=2e-3, rtol=1e-3)
        assert raw_score == pytest.approx(logits[i, k[i]], abs=2e-3, rel=1e-3)  # float32 inputs in ONNX
        assert baseline + sum(got.values()) == pytest.approx(raw_score, abs=1e-9)
    if data == "breast_cancer":  # the raw score is the log-odds of PREDICT's probability
        p = np.array([r[0] for r in con.sql("SELECT probability FROM PREDICT(MODEL lin, TABLE src)").fetchall()])
        inside = (p > 1e-4) & (p < 1 - 1e-4)  # float32 probabilities saturate beyond
        assert inside.sum() > 100
        logit = np.log(p[inside] / (1 - p[inside]))
        np.testing.assert_allclose(np.array([r[2] for r in rows])[inside], logit, atol=5e-3)
    glob = dict(con.sql("SELECT feature, attribution FROM GLOBAL_EXPLAIN(MODEL lin, TABLE src)").fetchall())
    np.testing.assert_allclose([glob[f"f{j}"] for j in range(width)],
                               np.abs(expected).mean(axis=0), atol=2e-3, rtol=1e-3)  # fmt: skip


def test_a_linear_models_categories_are_explained_as_one_column(con):
    src = pa.table({"x": np.linspace(0, 1, 600), "c": ["a", "b", "c"] * 200, "y": [0, 1] * 300})  # noqa: F841
    con.sql("TRAIN MODEL cat USING logistic_classifier LABEL y WITH (validation = 0) AS SELECT * FROM src")
    rows = con.sql(
        "SELECT attributions, baseline, raw_score FROM EXPLAIN_PREDICT(MODEL cat, TABLE src, top_k => 5)"
    ).fetchall()
    for attributions, baseline, raw_score in rows[:20]:
        assert sorted(a["feature"] for a in attributions) == ["c", "x"]
        assert baseline + sum(a["attribution"] for a in attributions) == pytest.approx(raw_score, abs=1e-9)
