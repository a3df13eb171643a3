"""Vector features: TRAIN on a FLOAT[256] column against lightgbm.train on the same NumPy matrix.

    python bench/vectors.py [--rows 100000] [--dim 256] [--repeats 3]

The table is generated in DuckDB. sqlml's time is the whole TRAIN statement (fetching the
vectors from DuckDB, checking them, fitting, saving); the baseline is `lightgbm.train` on the
same float32 matrix with the parameters sqlml reports it used. Target: ratio <= 1.15, and
PREDICT's scores equal LightGBM's own to 1e-9.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import lightgbm as lgb

    import sqlml

    with tempfile.TemporaryDirectory() as tmp:
        con = sqlml.connect(catalog=tmp)
        con.execute(
            f"CREATE TABLE data AS SELECT v, (v[1] + v[2] * v[3] - v[4] + 0.3 * v[{args.dim}] > 0.6) AS y FROM ("
            f"SELECT list_transform(range({args.dim}), lambda j: ((hash(i * {args.dim} + j) % 1000000) / 1e6)::FLOAT)"
            f"::FLOAT[{args.dim}] AS v FROM range({args.rows}) AS t(i))"
        )
        train = (
            "TRAIN MODEL vec USING lightgbm_classifier LABEL y WITH (validation = 0, seed = 7) AS SELECT y, v FROM data"
        )
        ours, ours_all = best_of(lambda: con.sql(train), args.repeats)

        table = con.sql("SELECT v, y FROM data").arrow()
        x = table.column("v").combine_chunks().flatten().to_numpy().reshape(table.num_rows, args.dim)
        y = table.column("y").to_numpy(zero_copy_only=False).astype(np.float64)
        describe = dict((n, v) for s, n, v in con.sql("DESCRIBE MODEL vec").fetchall() if s == "param")
        params = {k: (int(v) if v.lstrip("-").isdigit() else v) for k, v in describe.items()}

        def baseline() -> lgb.Booster:
            return lgb.train(params, lgb.Dataset(x, label=y), 100)

        theirs, theirs_all = best_of(baseline, args.repeats)
        booster = baseline()
        start = time.perf_counter()
        scored = con.sql("SELECT probability FROM PREDICT(MODEL vec, TABLE data)").arrow()
        predict_s = time.perf_counter() - start
        diff = float(np.max(np.abs(scored.column(0).to_numpy() - booster.predict(x))))
    print(f"rows {args.rows} x FLOAT[{args.dim}], params {params}")
    print(f"sqlml TRAIN      median {ours:.2f} s  (all {', '.join(f'{t:.2f}' for t in ours_all)})")
    print(f"lightgbm.train   median {theirs:.2f} s  (all {', '.join(f'{t:.2f}' for t in theirs_all)})")
    print(f"ratio sqlml / lightgbm: {ours / theirs:.3f} (target <= 1.15)")
    print(f"PREDICT {args.rows} rows in {predict_s:.2f} s; max |sqlml - lightgbm| = {diff:.2e} (target <= 1e-9)")


if __name__ == "__main__":
    main()
