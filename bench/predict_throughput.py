"""PREDICT over 1,000,000 rows against Booster.predict on the same data in NumPy, in the
same run. Target: rows/s ratio >= 0.9.

    python bench/predict_throughput.py [--rows 1000000] [--repeats 3]

Both sides use 2 threads (LightGBM's OpenMP threads for Booster.predict; DuckDB's threads,
one LightGBM thread each, for PREDICT). The sqlml side scans the DuckDB table, scores every
row and aggregates the probabilities, so the result is not materialised in Python.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import FEATURES, best_of, make_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import lightgbm as lgb
    import numpy as np

    import sqlml

    con = sqlml.connect(catalog=tempfile.mkdtemp())
    con.execute("SET threads = 2")
    make_table(con.connection, args.rows)
    con.sql(
        "TRAIN MODEL bench USING lightgbm_classifier LABEL y WITH (num_boost_round = 100, validation = 0, seed = 1) "
        "AS SELECT * FROM data USING SAMPLE 100000 ROWS (reservoir, 1)"
    )
    booster = lgb.Booster(model_str=con.catalog.get("bench").model_text())
    cols = ", ".join(f"f{j}" for j in range(FEATURES))
    raw = con.connection.sql(f"SELECT {cols} FROM data").fetchnumpy()
    X = np.column_stack([raw[f"f{j}"] for j in range(FEATURES)])

    query = "SELECT sum(probability) FROM PREDICT(MODEL bench, TABLE data)"
    expected = float(booster.predict(X, num_threads=2).sum())
    got = con.sql(query).fetchall()[0][0]
    assert abs(got - expected) < 1e-6 * args.rows, (got, expected)

    lgb_times, sqlml_times = [], []
    for _ in range(args.repeats):
        lgb_times.append(best_of(lambda: booster.predict(X, num_threads=2), 1)[0])
        sqlml_times.append(best_of(lambda: con.sql(query).fetchall(), 1)[0])
    lgb_rate = args.rows / float(np.median(lgb_times))
    sqlml_rate = args.rows / float(np.median(sqlml_times))
    print(f"rows={args.rows} features={FEATURES} trees=100 threads=2 repeats={args.repeats}")
    print(f"Booster.predict on NumPy: {lgb_rate:,.0f} rows/s  {[round(t, 3) for t in lgb_times]}")
    print(f"sqlml PREDICT in DuckDB : {sqlml_rate:,.0f} rows/s  {[round(t, 3) for t in sqlml_times]}")
    print(f"rows/s ratio sqlml/lightgbm: {sqlml_rate / lgb_rate:.3f}  (target >= 0.9)")

    # for information: every output column (class, probability, MAP of probabilities) materialised
    full = "CREATE OR REPLACE TABLE scored AS SELECT * FROM PREDICT(MODEL bench, TABLE data)"
    full_s, _ = best_of(lambda: con.sql(full), args.repeats)
    print(f"sqlml PREDICT, all output columns into a table: {args.rows / full_s:,.0f} rows/s "
          f"(ratio {args.rows / full_s / lgb_rate:.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
