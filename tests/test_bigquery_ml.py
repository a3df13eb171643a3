"""BigQuery ML scripts (tests/bigquery_ml/*.sql, written from BigQuery ML's tutorials' statements)
run unchanged on local stand-in tables: every statement runs, outputs carry BigQuery ML's
column names, and the metrics equal scikit-learn's on the same rows (the same split)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

import sqlml
from tests.conftest import ROOT, run_cli

SCRIPTS = ROOT / "tests" / "bigquery_ml"
EVALUATE = {
    "binary": ["precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc"],
    "regression": ["mean_absolute_error", "mean_squared_error", "mean_squared_log_error", "median_absolute_error",
                   "r2_score", "explained_variance"],
    "clustering": ["davies_bouldin_index", "mean_squared_distance"],
    "decomposition": ["total_explained_variance_ratio"],
}  # fmt: skip
COLUMNS = {
    "ML.FEATURE_IMPORTANCE": ["feature", "importance_weight", "importance_gain", "importance_cover"],
    "ML.GLOBAL_EXPLAIN": ["feature", "attribution"],
    "ML.TRAINING_INFO": ["training_run", "iteration", "loss", "eval_loss", "learning_rate", "duration_ms"],
    "ML.ROC_CURVE": ["threshold", "recall", "false_positive_rate", "true_positives", "false_positives",
                     "true_negatives", "false_negatives"],
    "ML.EXPLAIN_PREDICT": ["top_feature_attributions", "baseline_prediction_value", "prediction_value",
                           "approximation_error"],
}  # fmt: skip
TASKS = {"linear_regression": "regression", "logistic_regression": "binary", "boosted_tree": "binary",
         "random_forest_sequential": "binary", "kmeans": "clustering", "pca": "decomposition"}  # fmt: skip


def session(tmp_path) -> sqlml.Session:
    con = sqlml.connect(catalog=tmp_path / "catalog")
    con.execute((SCRIPTS / "setup.sql").read_text())
    return con


@pytest.mark.parametrize("script", sorted(TASKS))
def test_every_statement_runs_with_bigquery_ml_columns(tmp_path, script):
    con = session(tmp_path)
    ran = 0
    for statement, result in con.run((SCRIPTS / f"{script}.sql").read_text()):
        ran += 1
        function = next(
            (f for f in (*COLUMNS, "ML.EVALUATE", "ML.PREDICT", "ML.CONFUSION_MATRIX") if f in statement.text), None
        )
        if function is None:
            continue
        columns = result.columns
        assert len(result.fetchall()) > 0, statement.text
        if function == "ML.EVALUATE":
            assert columns == EVALUATE[TASKS[script]]
        elif function == "ML.EXPLAIN_PREDICT":  # after the prediction (and a classifier's probability)
            label = "body_mass_g" if script == "linear_regression" else "income_bracket"
            head = [f"predicted_{label}"] + (["probability"] if script != "linear_regression" else [])
            assert columns[: len(head) + 4] == head + COLUMNS[function]
        elif function in COLUMNS:
            assert columns[: len(COLUMNS[function])] == COLUMNS[function]
        elif function == "ML.CONFUSION_MATRIX":
            assert columns == ["expected_label", "_50K", "_50K_1"]  # ' <=50K' and ' >50K'
        elif TASKS[script] == "clustering":
            assert columns[0] == "CENTROID_ID"
        elif TASKS[script] == "decomposition":
            assert columns[:2] == ["principal_component_1", "principal_component_2"]
        else:
            label = "body_mass_g" if script == "linear_regression" else "income_bracket"
            assert columns[0] == f"predicted_{label}"
            if script != "linear_regression":
                assert columns[1] == f"predicted_{label}_probs"
    assert ran == (SCRIPTS / f"{script}.sql").read_text().count(";")


def run(con: sqlml.Session, script: str) -> None:
    for _ in con.run((SCRIPTS / f"{script}.sql").read_text()):
        pass


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> list[float]:
    cut = p > threshold
    return [metrics.precision_score(y, cut), metrics.recall_score(y, cut), metrics.accuracy_score(y, cut),
            metrics.f1_score(y, cut), metrics.log_loss(y, p), metrics.roc_auc_score(y, p)]  # fmt: skip


def scored(con: sqlml.Session, model: str, rows_sql: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels (1: ' >50K') and P(' >50K') from ML.PREDICT on the rows."""
    rows = con.sql(f"SELECT income_bracket = ' >50K', list_filter(predicted_income_bracket_probs, "
                   f"lambda x: x.label = ' >50K')[1].prob FROM ML.PREDICT(MODEL {model}, ({rows_sql}))").fetchall()  # fmt: skip
    return np.array([r[0] for r in rows], dtype=int), np.array([r[1] for r in rows])


@pytest.mark.parametrize(("script", "model", "view"),
                         [("logistic_regression", "census.census_model", "census.input_data"),
                          ("boosted_tree", "bqml_tutorial.booster_model", "bqml_tutorial.input_view")])  # fmt: skip
def test_classification_metrics_equal_scikit_learn(tmp_path, script, model, view):
    con = session(tmp_path)
    run(con, script)
    evaluation = f"SELECT * FROM {view} WHERE dataframe = 'evaluation'"
    y, p = scored(con, model, evaluation)
    got = con.sql(f"SELECT * FROM ML.EVALUATE(MODEL {model}, ({evaluation}))").fetchone()
    np.testing.assert_allclose(got, classification_metrics(y, p), atol=1e-12)
    got = con.sql(f"SELECT * FROM ML.EVALUATE(MODEL {model}, ({evaluation}), STRUCT(0.55 AS threshold))").fetchone()
    np.testing.assert_allclose(got, classification_metrics(y, p, 0.55), atol=1e-12)
    matrix = con.sql(f"SELECT * FROM ML.CONFUSION_MATRIX(MODEL {model}, ({evaluation}), STRUCT(0.55 AS threshold)) "
                     "ORDER BY expected_label").fetchall()  # fmt: skip
    assert [list(r[1:]) for r in matrix] == metrics.confusion_matrix(y, p > 0.55).tolist()
    roc = con.sql(f"SELECT threshold, true_positives, false_positives FROM ML.ROC_CURVE(MODEL {model}, ({evaluation}), "
                  "GENERATE_ARRAY(0.4, 0.6, 0.01))").fetchall()  # fmt: skip
    assert len(roc) == 21
    for threshold, tp, fp in roc:
        assert (tp, fp) == (np.sum((p > threshold) & (y == 1)), np.sum((p > threshold) & (y == 0)))


def test_a_sequential_split_is_the_last_rows(tmp_path):
    con = session(tmp_path)
    run(con, "random_forest_sequential")
    rows = con.sql("SELECT count(*) FROM ml_datasets.census_adult_income").fetchone()[0]
    last = ("SELECT * FROM ml_datasets.census_adult_income ORDER BY functional_weight "
            f"OFFSET {rows - round(rows * 0.25)}")  # fmt: skip
    y, p = scored(con, "bqml_tutorial.forest_model", last)
    assert len(y) == 750
    got = con.sql("SELECT * FROM ML.EVALUATE(MODEL bqml_tutorial.forest_model)").fetchone()
    np.testing.assert_allclose(got, classification_metrics(y, p), atol=1e-12)
    matrix = con.sql("SELECT * FROM ML.CONFUSION_MATRIX(MODEL bqml_tutorial.forest_model) ORDER BY 1").fetchall()
    assert [list(r[1:]) for r in matrix] == metrics.confusion_matrix(y, p > 0.5).tolist()
    features = con.sql("SELECT feature FROM ML.FEATURE_IMPORTANCE(MODEL bqml_tutorial.forest_model)").fetchall()
    assert "functional_weight" not in {f for (f,) in features}  # the split column is not a feature


def test_regression_metrics_equal_scikit_learn(tmp_path):
    con = session(tmp_path)
    run(con, "linear_regression")
    rows = "SELECT * FROM ml_datasets.penguins WHERE body_mass_g IS NOT NULL"
    pairs = np.array(
        con.sql(
            f"SELECT body_mass_g, predicted_body_mass_g FROM ML.PREDICT(MODEL bqml_tutorial.penguins_model, ({rows}))"
        ).fetchall()
    )
    y, p = pairs[:, 0], pairs[:, 1]
    expected = [metrics.mean_absolute_error(y, p), metrics.mean_squared_error(y, p), metrics.mean_squared_log_error(y, p),
                metrics.median_absolute_error(y, p), metrics.r2_score(y, p), metrics.explained_variance_score(y, p)]  # fmt: skip
    got = con.sql(f"SELECT * FROM ML.EVALUATE(MODEL bqml_tutorial.penguins_model, ({rows}))").fetchone()
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    # without data: the validation rows TRAIN kept (585 rows: an automatic 20% split), as sqlml's own EVALUATE
    mae, r2 = con.sql(
        "SELECT mean_absolute_error, r2_score FROM ML.EVALUATE(MODEL bqml_tutorial.penguins_model)"
    ).fetchone()
    own = con.sql("SELECT mae, r2, rows FROM EVALUATE(MODEL bqml_tutorial.penguins_model)").fetchone()
    assert (mae, r2) == pytest.approx(own[:2], rel=1e-9) and own[2] == 117


def test_unsupervised_metrics_equal_scikit_learn(tmp_path):
    con = session(tmp_path)
    run(con, "kmeans")
    run(con, "pca")
    x = np.array(
        con.sql("SELECT duration, num_trips, distance_from_city_center FROM bqml_tutorial.stationstats").fetchall()
    )
    clusters = [r[0] for r in con.sql("SELECT CENTROID_ID FROM ML.PREDICT(MODEL bqml_tutorial.london_station_clusters, "
                                      "(SELECT * FROM bqml_tutorial.stationstats))").fetchall()]  # fmt: skip
    distances = np.array([r[0][0]["DISTANCE"] for r in con.sql(
        "SELECT NEAREST_CENTROIDS_DISTANCE FROM ML.PREDICT(MODEL bqml_tutorial.london_station_clusters, "
        "(SELECT * FROM bqml_tutorial.stationstats))").fetchall()])  # fmt: skip
    db, msd = con.sql("SELECT * FROM ML.EVALUATE(MODEL bqml_tutorial.london_station_clusters)").fetchone()
    scaled = StandardScaler().fit_transform(x)
    assert db == pytest.approx(metrics.davies_bouldin_score(scaled, clusters), rel=1e-4)  # ONNX Runtime's float32
    assert msd == pytest.approx(np.mean(distances**2), rel=1e-4)
    penguins = np.array(
        con.sql("SELECT culmen_length_mm, culmen_depth_mm, flipper_length_mm FROM ml_datasets.penguins").fetchall()
    )
    expected = PCA(2).fit(StandardScaler().fit_transform(penguins)).explained_variance_ratio_.sum()
    got = con.sql(
        "SELECT total_explained_variance_ratio FROM ML.EVALUATE(MODEL bqml_tutorial.penguins_pca)"
    ).fetchone()[0]
    assert got == pytest.approx(expected, rel=1e-5)


def test_options_sqlml_cannot_honour_are_errors_naming_them(tmp_path):
    con = session(tmp_path)
    cases = {
        "OPTIONS (model_type = 'logistic_reg', input_label_cols = ['sex'], num_trials = 5)": "no parameter has a search space",
        "OPTIONS (model_type = 'logistic_reg', input_label_cols = ['sex'], max_parallel_trials = 4)": "max_parallel_trials",
        "OPTIONS (model_type = 'logistic_reg', input_label_cols = ['sex'], warm_start = TRUE)": "'warm_start'",
        "OPTIONS (model_type = 'logistic_reg', input_label_cols = ['sex'], l2_reg = 0.1)": "l2_reg does not apply",
        "OPTIONS (model_type = 'linear_reg', input_label_cols = ['body_mass_g'], learn_rate = 0.1)": "learn_rate",
        "OPTIONS (model_type = 'boosted_tree_classifier', input_label_cols = ['sex'], num_parallel_tree = 4)": "num_parallel_tree",
        "OPTIONS (model_type = 'logistic_reg', input_label_cols = ['sex'], data_split_method = 'CUSTOM')": "'custom'",
        "OPTIONS (model_type = 'kmeans', distance_type = 'COSINE')": "distance_type",
        "OPTIONS (model_type = 'arima_plus')": "time-series",
        "OPTIONS (model_type = 'logistic_reg', input_label_colums = ['sex'])": "Did you mean 'input_label_cols'",
        "TRANSFORM (ML.ROBUST_SCALER(culmen_length_mm) OVER () AS c, sex) OPTIONS (model_type = 'logistic_reg')": "ML.ROBUST_SCALER",
        "TRANSFORM (culmen_length_mm, sex) OPTIONS (model_type = 'logistic_reg')": "Unknown label column 'label'",
    }
    for options, message in cases.items():
        with pytest.raises(sqlml.SqlmlError) as err:
            con.sql(f"CREATE MODEL bad {options} AS SELECT * FROM ml_datasets.penguins WHERE body_mass_g IS NOT NULL")
        assert message in f"{err.value.message} {err.value.hint}", options
    assert con.sql("SELECT count(*) FROM MODELS()").fetchone() == (0,)


@pytest.mark.slow
def test_cli_runs_a_bigquery_ml_script(tmp_path):
    script = tmp_path / "bq.sql"
    script.write_text((SCRIPTS / "setup.sql").read_text() + (SCRIPTS / "pca.sql").read_text())
    done = run_cli("run", str(script), "--catalog", str(tmp_path / "catalog"))
    assert done.returncode == 0, done.stderr
    assert "principal_component_1" in done.stdout and "total_explained_variance_ratio" in done.stdout


def test_the_queries_of_bigquery_ml_functions_are_bigquery_sql(tmp_path):
    con = session(tmp_path)
    run(con, "linear_regression")
    rows = con.sql("""SELECT predicted_body_mass_g, male FROM ML.PREDICT(MODEL bqml_tutorial.penguins_model,
        (SELECT *, IF(sex = "MALE", 1, 0) AS male FROM ml_datasets.penguins
         WHERE SAFE_CAST(body_mass_g AS INT64) IS NOT NULL LIMIT 5))""").fetchall()  # fmt: skip
    assert len(rows) == 5 and {r[1] for r in rows} <= {0, 1} and all(r[0] > 0 for r in rows)
    # sqlml's own functions read DuckDB's SQL, where "..." quotes a name
    own = con.sql('SELECT "sex" FROM PREDICT(MODEL penguins_model, (SELECT * FROM ml_datasets.penguins LIMIT 3))')
    assert {r[0] for r in own.fetchall()} <= {"MALE", "FEMALE"}
