"""Distributed TRAIN on Dask against one process, on this machine.

    python bench/distributed_train.py [--rows 1000000 5000000] [--rounds 50]

For each size: rows x 28 features generated in DuckDB (bench/common.py) into a DuckDB file, and a
held-out 100,000 rows scored by every model. Each side runs in a fresh process (peak memory per
process is VmHWM): `lightgbm.train` on the rows in NumPy (2 threads), sqlml TRAIN on one machine,
and sqlml TRAIN WITH (distributed = true) on a LocalCluster of 1 and of 2 worker processes (one
thread each). 50 rounds of 63 leaves, every row trains (`validation = 0`). The phases of the
distributed TRAIN are timed separately: cluster start, DuckDB writing the Parquet partitions, and
training. Two workers on two cores cannot beat one process with two threads: the point is what
the distribution costs, for docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FEATURES, make_table, peak_rss_mb  # noqa: E402

LEAVES = 63


def side(kind: str, db: str, rounds: int) -> dict[str, float]:
    """One measurement, in this (fresh) process."""
    import duckdb
    import lightgbm as lgb
    import numpy as np
    from sklearn.metrics import roc_auc_score

    con = duckdb.connect(db, read_only=kind == "lightgbm")
    test = con.sql("SELECT * FROM test").fetchnumpy()
    x_test = np.column_stack([test[f"f{j}"] for j in range(FEATURES)])
    out: dict[str, float] = {}
    start = time.perf_counter()
    if kind == "lightgbm":
        data = con.sql("SELECT * FROM data").fetchnumpy()
        x = np.column_stack([data[f"f{j}"] for j in range(FEATURES)])
        booster = lgb.train({"objective": "binary", "num_leaves": LEAVES, "num_threads": 2, "verbosity": -1},
                            lgb.Dataset(x, data["y"].astype(float)), rounds)  # fmt: skip
        predict = booster.predict
    else:
        import sqlml
        from sqlml import distributed

        session = sqlml.connect(connection=con, catalog=tempfile.mkdtemp())
        workers = {"dask-1": 1, "dask-2": 2}.get(kind)
        with_ = f"num_boost_round = {rounds}, num_leaves = {LEAVES}, validation = 0"
        if workers:
            t0 = time.perf_counter()
            session.sql(f"SET cluster = 'local:{workers}'")
            client = distributed.client_for(f"local:{workers}")
            distributed.wait_for_workers(client, workers)
            out["cluster_start_s"] = time.perf_counter() - t0
            with_ += ", distributed = true"
        else:
            with_ += ", num_threads = 2"
        t0 = time.perf_counter()
        session.sql(f"TRAIN MODEL m USING lightgbm_classifier LABEL y WITH ({with_}) AS SELECT * FROM data")
        out["train_statement_s"] = time.perf_counter() - t0
        booster = lgb.Booster(model_file=str(session.engine.catalog.root / "m" / "1" / "model.txt"))
        meta = json.loads((session.engine.catalog.root / "m" / "1" / "meta.json").read_text())
        for key in ("prepare_s", "write_s", "train_s"):
            if key in meta.get("distributed", {}):
                out[key] = meta["distributed"][key]
        predict = booster.predict
        if workers:
            out["worker_peak_mb"] = max(client.run(peak_rss_mb).values())
            distributed.close_all()
    out["seconds"] = time.perf_counter() - start
    out["test_auc"] = float(roc_auc_score(test["y"], predict(x_test)))
    out["driver_peak_mb"] = peak_rss_mb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(side(args.side, args.db, args.rounds)))
        return
    import duckdb

    for rows in args.rows:
        db = str(Path(tempfile.mkdtemp()) / "data.duckdb")
        con = duckdb.connect(db)
        make_table(con, rows + 100_000, "everything")
        con.execute(f"CREATE TABLE data AS SELECT * FROM everything LIMIT {rows}")
        con.execute(f"CREATE TABLE test AS SELECT * FROM everything OFFSET {rows}")
        con.execute("DROP TABLE everything")
        con.close()
        print(f"rows={rows:,} features={FEATURES} rounds={args.rounds} leaves={LEAVES}")
        for kind in ("lightgbm", "sqlml", "dask-1", "dask-2"):
            done = subprocess.run([sys.executable, __file__, "--side", kind, "--db", db, "--rounds", str(args.rounds)],
                                  capture_output=True, text=True, check=False)  # fmt: skip
            if done.returncode:
                print(f"  {kind}: failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            extra = ", ".join(
                f"{k} {v:.1f}" for k, v in result.items() if k not in ("seconds", "test_auc", "driver_peak_mb")
            )
            print(f"  {kind:8s} {result['seconds']:7.1f} s  test AUC {result['test_auc']:.5f}  "
                  f"driver peak {result['driver_peak_mb']:.0f} MB  {extra}")  # fmt: skip


if __name__ == "__main__":
    main()
