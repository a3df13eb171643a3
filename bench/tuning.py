"""Hyperparameter search: 20 trials on 100,000 rows x 28 features, against the defaults and a
plain optuna loop over raw LightGBM on the same split, in the same run.

    python bench/tuning.py [--rows 100000] [--trials 20] [--budget 600]

sqlml: `TRAIN ... WITH (num_leaves = HPARAM_RANGE(8, 128), learning_rate = HPARAM_RANGE(0.02, 0.3, 'log'),
min_data_in_leaf = HPARAM_CANDIDATES([10, 20, 50, 100]), feature_fraction = HPARAM_RANGE(0.5, 1.0),
num_boost_round = HPARAM_RANGE(50, 300), trials = N, tuning_seconds = budget, validation = 0.2, seed = 1)`.
Baselines: LightGBM with its defaults (100 rounds) fitted on the same training rows and scored on the same
validation rows (the split is the one sqlml made: its stored validation scores carry the labels, and the rows
are found again by the same seeded permutation); and an optuna loop with the same space, sampler and seed
calling lightgbm.train directly (the overhead of sqlml's search is the ratio of the two).
Target: the tuned validation AUC >= the defaults', within the budget.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FEATURES, make_table  # noqa: E402

SPACE = ("num_leaves = HPARAM_RANGE(8, 128), learning_rate = HPARAM_RANGE(0.02, 0.3, 'log'), "
         "min_data_in_leaf = HPARAM_CANDIDATES([10, 20, 50, 100]), feature_fraction = HPARAM_RANGE(0.5, 1.0), "
         "num_boost_round = HPARAM_RANGE(50, 300)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--budget", type=float, default=600)
    args = parser.parse_args()

    import lightgbm as lgb
    import optuna
    from sklearn.metrics import roc_auc_score

    import sqlml

    con = sqlml.connect(catalog=tempfile.mkdtemp())
    make_table(con.connection, args.rows)  # type: ignore[attr-defined]
    started = time.perf_counter()
    con.sql(f"TRAIN MODEL tuned USING lightgbm_classifier LABEL y WITH ({SPACE}, trials = {args.trials}, "
            f"tuning_seconds = {args.budget}, validation = 0.2, seed = 1) AS SELECT * FROM data")  # fmt: skip
    sqlml_seconds = time.perf_counter() - started
    trials = con.sql("SELECT trial, state, value, seconds, is_best FROM TRIALS(MODEL tuned) ORDER BY trial").fetchall()
    defaults_auc = trials[0][2]
    best_auc = max(t[2] for t in trials if t[2] is not None)
    tuned_auc = con.sql("SELECT auc FROM EVALUATE(MODEL tuned)").fetchall()[0][0]

    # the same split, by the same seeded permutation sqlml uses (training._split)
    data = con.sql("SELECT * FROM data").fetchnumpy()
    x = np.column_stack([data[f"f{j}"] for j in range(FEATURES)])
    y = data["y"].astype(float)
    n_valid = round(len(y) * 0.2)
    valid = np.zeros(len(y), dtype=bool)
    valid[np.random.default_rng(1).permutation(len(y))[:n_valid]] = True
    threads = {"num_threads": 0, "verbosity": -1, "objective": "binary", "seed": 1}
    t0 = time.perf_counter()
    default = lgb.train(threads, lgb.Dataset(x[~valid], y[~valid]), 100)
    raw_default_auc = roc_auc_score(y[valid], default.predict(x[valid]))
    raw_default_seconds = time.perf_counter() - t0

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train_set = lgb.Dataset(x[~valid], y[~valid], free_raw_data=False)

    def objective(trial: optuna.Trial) -> float:
        params = {**threads, "num_leaves": trial.suggest_int("num_leaves", 8, 128),
                  "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
                  "min_data_in_leaf": trial.suggest_categorical("min_data_in_leaf", [10, 20, 50, 100]),
                  "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0)}  # fmt: skip
        booster = lgb.train(params, train_set, trial.suggest_int("num_boost_round", 50, 300))
        return float(roc_auc_score(y[valid], booster.predict(x[valid])))

    t0 = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=1))
    study.optimize(objective, n_trials=args.trials - 1)  # sqlml's trial 0 is the defaults
    raw_seconds = time.perf_counter() - t0 + raw_default_seconds

    print(f"rows={args.rows} features={FEATURES} trials={args.trials} budget={args.budget:.0f}s")
    print(f"sqlml: {len([t for t in trials if t[1] == 'COMPLETE'])} trials in {sqlml_seconds:.1f}s "
          f"(median trial {np.median([t[3] for t in trials if t[3]]):.2f}s)")  # fmt: skip
    print(
        f"  defaults (trial 0) AUC {defaults_auc:.5f}; best trial AUC {best_auc:.5f}; the version's AUC {tuned_auc:.5f}"
    )
    print(f"  raw LightGBM defaults on the same split: AUC {raw_default_auc:.5f}")
    print(
        f"raw optuna + LightGBM: {args.trials} trials in {raw_seconds:.1f}s, best AUC {max(study.best_value, raw_default_auc):.5f}"
    )
    print(f"ratio (sqlml / raw loop) = {sqlml_seconds / raw_seconds:.2f}")
    print(f"target tuned >= defaults: {'met' if tuned_auc >= defaults_auc and tuned_auc >= raw_default_auc - 1e-9 else 'MISSED'}; "
          f"within budget: {'met' if sqlml_seconds <= args.budget + 60 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
