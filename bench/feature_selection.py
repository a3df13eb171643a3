"""Feature selection: 500 features, 6,000 rows, 40 informative; keep 40 and compare.

    python bench/feature_selection.py

The data comes from scikit-learn's make_classification (seed 0, no shuffle, so the informative
columns are f0..f39). Each method trains with feature_selection on 80% of the rows and is
scored on the other 20%; "all" trains on every feature. Targets: `importance` keeps at least
38 of the 40 informative columns and is at least as accurate as all features.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np
import pyarrow as pa


def main() -> None:
    from sklearn.datasets import make_classification

    import sqlml

    x, y = make_classification(
        n_samples=6000, n_features=500, n_informative=40, n_redundant=0, shuffle=False, random_state=0
    )
    data = pa.table({**{f"f{i}": x[:, i] for i in range(500)}, "y": y, "part": np.arange(6000) % 5})  # noqa: F841 (read by DuckDB)
    informative = {f"f{i}" for i in range(40)}
    with tempfile.TemporaryDirectory() as tmp:
        con = sqlml.connect(catalog=tmp)
        con.execute("CREATE TABLE data AS SELECT * FROM data")
        shifted = ", ".join(f"f{i} + 100 AS f{i}" for i in range(500))  # chi2 needs inputs >= 0
        con.execute(f"CREATE OR REPLACE TABLE chi AS SELECT {shifted}, y, part FROM data")
        print(f"{'method':<12} {'kept informative':>17} {'accuracy':>9} {'TRAIN s':>8} {'final fit s':>12}")
        for method in ("all", "importance", "f_test", "chi2"):
            table = "chi" if method == "chi2" else "data"
            options = "validation = 0, seed = 1, num_threads = 1"
            if method != "all":
                options += f", feature_selection = '{method}', max_features = 40"
            start = time.perf_counter()
            con.sql(
                f"TRAIN MODEL m_{method} USING lightgbm_classifier LABEL y EXCLUDE (part) WITH ({options}) "
                f"AS SELECT * FROM {table} WHERE part <> 0"
            )
            seconds = time.perf_counter() - start
            accuracy = con.sql(f"EVALUATE MODEL m_{method} ON (SELECT * FROM {table} WHERE part = 0)").arrow()
            kept = {
                row[0]
                for row in con.sql(f"SELECT feature FROM FEATURE_RANKING(MODEL m_{method}) WHERE kept").fetchall()
            }
            found = len(kept & informative) if method != "all" else 40
            # the final fit alone: train again on the kept columns only, without selection
            columns = ", ".join(sorted(kept, key=lambda c: int(c[1:]))) if method != "all" else "* EXCLUDE (part)"
            start = time.perf_counter()
            con.sql(
                f"TRAIN MODEL fit_{method} USING lightgbm_classifier LABEL y WITH (validation = 0, seed = 1, "
                f"num_threads = 1) AS SELECT {columns}{', y' if method != 'all' else ''} FROM {table} WHERE part <> 0"
            )
            final = time.perf_counter() - start
            print(f"{method:<12} {found:>14}/40 {accuracy['accuracy'][0].as_py():>9.4f} {seconds:>8.2f} {final:>12.2f}")


if __name__ == "__main__":
    main()
