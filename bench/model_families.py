"""The model families: TRAIN and PREDICT through sqlml against the same library called directly.

    python bench/model_families.py [--rows 200000] [--repeats 5] [--predict-repeats 9] [--only logistic_classifier,...]

Data: `rows` x 28 features generated in DuckDB (bench/common.py), a BOOLEAN label for the
classifiers and a numeric one for the regressors; every model trains on every row
(`validation = 0`). The baseline for a scikit-learn family is the same pipeline sqlml builds
(mean imputer, StandardScaler, the estimator with the same parameters) fitted on the same
NumPy matrix, and its predict_proba / predict / transform on the same rows; for the random
forests it is `lightgbm.train` with `boosting = 'rf'` (the library sqlml's forests are), and on one more line
scikit-learn's RandomForestClassifier of the same shape (50 trees of at most 127 leaves, 0.6 of the features per
split, 0.632 of the rows per tree, 5 rows a leaf; fitted once: it takes 100 s). sqlml's times are whole statements:
TRAIN (fetch from DuckDB, fit, convert to ONNX, save) and
`SELECT sum(...) FROM PREDICT(MODEL m, TABLE data)` (ONNX Runtime inside DuckDB's pipeline).
k-NN scores `knn_rows` rows (every prediction searches all training rows; both sides).
sqlml and the baseline run in turn (medians of each), so that the machine's drift falls on both.
Targets: TRAIN ratio <= 1.2, PREDICT throughput ratio (sqlml rows/s over the baseline's) >= 0.8.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FEATURES, alternating, make_table  # noqa: E402

SKLEARN_FOREST = "random_forest_classifier vs scikit-learn"


def families() -> list[tuple[str, str, str, Callable[[], Any]]]:
    """(trainer, WITH parameters, label column, the estimator scikit-learn fits)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import LinearSVC

    return [
        ("linear_regressor", "", "target", LinearRegression),
        ("logistic_classifier", "", "y", lambda: LogisticRegression(max_iter=1000, random_state=0)),
        ("linear_svc", "", "y", lambda: CalibratedClassifierCV(LinearSVC(random_state=0), method="sigmoid", cv=3)),
        ("naive_bayes", "", "y", GaussianNB),
        ("knn_classifier", "", "y", KNeighborsClassifier),
        ("kmeans", "n_clusters = 8", None, lambda: KMeans(n_clusters=8, random_state=0)),
        ("pca", "n_components = 5", None, lambda: PCA(n_components=5, random_state=0)),
        ("random_forest_classifier", "num_boost_round = 50", "y", lambda: None),
        (SKLEARN_FOREST, "num_boost_round = 50", "y", lambda: RandomForestClassifier(
            n_estimators=50, max_leaf_nodes=127, max_features=0.6, max_samples=0.632, min_samples_leaf=5, n_jobs=1,
            random_state=0)),
    ]  # fmt: skip


def score_column(trainer: str) -> str:
    if trainer in ("kmeans",):
        return "distance"
    if trainer == "pca":
        return "components[1]"
    return "prediction" if trainer.endswith("regressor") else "probability"


def baseline(trainer: str, label: str | None, make: Callable[[], Any], x: np.ndarray, y: np.ndarray | None,
             scored: np.ndarray) -> tuple[Callable[[], Any], Callable[[], Any]]:  # fmt: skip
    """The library called directly: (fit, score), the score of the last fit."""
    import lightgbm as lgb
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if trainer == SKLEARN_FOREST:  # trees need no scaling: the forest alone
        forest = make()
        return lambda: forest.fit(x, y), lambda: forest.predict_proba(scored)
    if trainer.startswith("random_forest"):
        rf = {"objective": "binary", "boosting": "rf", "bagging_fraction": 0.632, "bagging_freq": 1,
              "feature_fraction_bynode": 0.6, "num_leaves": 127, "min_data_in_leaf": 5, "num_threads": 1,
              "verbosity": -1}  # fmt: skip
        fitted: list[Any] = []
        return lambda: fitted.append(lgb.train(rf, lgb.Dataset(x, y), 50)), lambda: fitted[-1].predict(scored)
    pipeline = make_pipeline(SimpleImputer(keep_empty_features=True), StandardScaler(), make())
    method = "predict" if label == "target" else "transform" if label is None else "predict_proba"
    return lambda: pipeline.fit(x, y), lambda: getattr(pipeline, method)(scored)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--knn-rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--predict-repeats", type=int, default=9)
    parser.add_argument("--only", default="")
    args = parser.parse_args()

    import sqlml

    only = set(filter(None, args.only.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        con = sqlml.connect(catalog=tmp)
        make_table(con, args.rows)  # type: ignore[arg-type]
        con.execute(
            "CREATE OR REPLACE TABLE data AS SELECT *, f0 * 3 + f1 - 2 * f2 * f3 + sin(6 * f4) AS target FROM data"
        )
        con.execute(f"CREATE TABLE knn_data AS SELECT * FROM data LIMIT {args.knn_rows}")
        table = con.sql("SELECT * FROM data").arrow()
        x = np.column_stack([table.column(f"f{i}").to_numpy() for i in range(FEATURES)])
        labels = {"y": table.column("y").to_numpy(zero_copy_only=False).astype(np.int64),
                  "target": table.column("target").to_numpy()}  # fmt: skip
        features = ", ".join(f"f{i}" for i in range(FEATURES))
        print(
            f"{args.rows} rows x {FEATURES} features; medians of {args.repeats} fits and {args.predict_repeats} "
            "scorings, sqlml and the baseline in turn"
        )
        print(
            f"{'trainer':40} {'train s':>8} {'base s':>8} {'ratio':>6} {'rows/s':>10} {'base rows/s':>11} {'ratio':>6}"
        )
        con.execute("CREATE TABLE warm AS SELECT * FROM data LIMIT 1000")
        for trainer, params, label, make in families():
            if only and trainer not in only:
                continue
            y = labels[label] if label else None
            scored_rows = args.knn_rows if trainer.startswith("knn") else args.rows
            fit, score = baseline(trainer, label, make, x, y, x[:scored_rows])
            # untimed: first imports (scikit-learn, skl2onnx, ONNX Runtime) and first sessions on both sides
            warm = f"LABEL {label} " if label else ""
            using = trainer.split(" ")[0]
            con.sql(f"TRAIN MODEL w USING {using} {warm}WITH (validation = 0) AS SELECT * EXCLUDE (y, target) "
                    f"{', ' + label if label else ''} FROM warm")  # fmt: skip
            con.sql("SELECT count(*) FROM PREDICT(MODEL w, TABLE warm)").fetchall()
            with_ = ", ".join(
                filter(None, [params, "validation = 0", "num_threads = 1" if "forest" in trainer else ""])
            )
            label_sql = f"LABEL {label} " if label else ""
            columns = f"{label}, {features}" if label else features
            train = f"TRAIN MODEL m USING {using} {label_sql}WITH ({with_}) AS SELECT {columns} FROM data"
            repeats = 1 if trainer == SKLEARN_FOREST else args.repeats  # its fit takes 100 s
            ours, theirs = alternating(lambda train=train: con.sql(train), fit, repeats)
            source = "knn_data" if trainer.startswith("knn") else "data"
            predict = f"SELECT sum({score_column(trainer)}) FROM PREDICT(MODEL m, TABLE {source})"
            con.sql(predict).fetchall()  # untimed: the new version's first load
            score()
            ours_predict, theirs_predict = alternating(
                lambda predict=predict: con.sql(predict).fetchall(), score, args.predict_repeats
            )
            ours_rate, theirs_rate = scored_rows / ours_predict, scored_rows / theirs_predict
            print(f"{trainer:40} {ours:8.2f} {theirs:8.2f} {ours / theirs:6.2f} {ours_rate:10,.0f} "
                  f"{theirs_rate:11,.0f} {ours_rate / theirs_rate:6.2f}", flush=True)  # fmt: skip
            con.execute("DROP MODEL m")
            con.execute("DROP MODEL w")


if __name__ == "__main__":
    main()
