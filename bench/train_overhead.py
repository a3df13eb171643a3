"""TRAIN through sqlml (query, transfer, training, saving) against lightgbm.train on the same
data already in NumPy, in the same run. Target: time ratio <= 1.10, peak memory ratio <= 1.5.

    python bench/train_overhead.py [--rows 1000000] [--repeats 3]

Peak memory is measured in two fresh subprocesses (one per side), each opening the same
DuckDB file of generated data, reading it (into NumPy, or through TRAIN) and training once.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import FEATURES, best_of, make_table, peak_rss_mb  # noqa: E402

ROUNDS = 100
PARAMS = {"objective": "binary", "num_threads": 2, "verbosity": -1, "seed": 1}
WITH = f"num_boost_round = {ROUNDS}, validation = 0, num_threads = 2, seed = 1"


def run_side(side: str, db: str, repeats: int) -> dict[str, float]:
    import lightgbm as lgb
    import numpy as np

    import sqlml

    catalog = tempfile.mkdtemp()
    con = sqlml.connect(db, catalog=catalog)
    after_data = peak_rss_mb()
    if side == "lightgbm":
        cols = ", ".join(f"f{j}" for j in range(FEATURES))
        X = con.connection.sql(f"SELECT {cols} FROM data").fetchnumpy()
        X = np.column_stack([X[f"f{j}"] for j in range(FEATURES)])
        y = con.connection.sql("SELECT y::DOUBLE AS y FROM data").fetchnumpy()["y"]
        seconds, times = best_of(lambda: lgb.train(PARAMS, lgb.Dataset(X, label=y), ROUNDS), repeats)
    else:
        sql = f"TRAIN MODEL bench USING lightgbm_classifier LABEL y WITH ({WITH}) AS SELECT * FROM data"
        seconds, times = best_of(lambda: con.sql(sql), repeats)
    return {"seconds": seconds, "times": times, "peak_mb": peak_rss_mb(), "after_data_mb": after_data}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", choices=["lightgbm", "sqlml"])
    parser.add_argument("--db", help="(internal) the DuckDB file a --side run reads")
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_side(args.side, args.db, args.repeats)))
        return

    # time: both sides in this process, alternating, after one warm-up each
    import lightgbm as lgb
    import numpy as np

    import sqlml

    con = sqlml.connect(catalog=tempfile.mkdtemp())
    make_table(con.connection, args.rows)
    cols = ", ".join(f"f{j}" for j in range(FEATURES))
    raw = con.connection.sql(f"SELECT {cols} FROM data").fetchnumpy()
    X = np.column_stack([raw[f"f{j}"] for j in range(FEATURES)])
    y = con.connection.sql("SELECT y::DOUBLE AS y FROM data").fetchnumpy()["y"]
    sql = f"TRAIN MODEL bench USING lightgbm_classifier LABEL y WITH ({WITH}) AS SELECT * FROM data"
    lgb_times, sqlml_times = [], []
    for _ in range(args.repeats):
        lgb_times.append(best_of(lambda: lgb.train(PARAMS, lgb.Dataset(X, label=y), ROUNDS), 1)[0])
        sqlml_times.append(best_of(lambda: con.sql(sql), 1)[0])
    lgb_s, sqlml_s = float(np.median(lgb_times)), float(np.median(sqlml_times))
    print(f"rows={args.rows} features={FEATURES} rounds={ROUNDS} threads=2 repeats={args.repeats}")
    print(f"lightgbm.train on NumPy : {lgb_s:.3f} s  {[round(t, 3) for t in lgb_times]}")
    print(f"sqlml TRAIN (end to end): {sqlml_s:.3f} s  {[round(t, 3) for t in sqlml_times]}")
    print(f"time ratio sqlml/lightgbm: {sqlml_s / lgb_s:.3f}  (target <= 1.10)")
    db = str(Path(tempfile.mkdtemp()) / "data.duckdb")
    con.execute(f"ATTACH '{db}' AS file; CREATE TABLE file.data AS SELECT * FROM data; DETACH file")
    con.close()

    peaks = {}
    for side in ("lightgbm", "sqlml"):
        out = subprocess.run(
            [sys.executable, __file__, "--side", side, "--db", db, "--repeats", "1"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        peaks[side] = json.loads(out.stdout.strip().splitlines()[-1])
    lg, sq = peaks["lightgbm"], peaks["sqlml"]
    print(f"peak RSS lightgbm side: {lg['peak_mb']:.0f} MB, sqlml side: {sq['peak_mb']:.0f} MB")
    print(f"memory ratio sqlml/lightgbm: {sq['peak_mb'] / lg['peak_mb']:.3f}  (target <= 1.5)")
    lg_inc, sq_inc = lg["peak_mb"] - lg["after_data_mb"], sq["peak_mb"] - sq["after_data_mb"]
    print(f"after start-up: lightgbm side {lg['after_data_mb']:.0f} MB, sqlml side {sq['after_data_mb']:.0f} MB; "
          f"growth: {lg_inc:.0f} MB vs {sq_inc:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
