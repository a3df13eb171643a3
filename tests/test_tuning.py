"""Hyperparameter search: the result is the best trial (never worse than the defaults, trial 0),
trials are listed, a killed search resumes where it stopped, and bad searches are bind errors."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sqlml
from tests.conftest import ROOT

DATA = """CREATE OR REPLACE TABLE t AS
SELECT x1, x2, x3, c, ((x1 + 2 * x2 + (c = 'b')::INT + (hash(i, 9) % 1000) / 500.0) > 2.2)::INT AS y
FROM (SELECT i, (hash(i, 1) % 1000) / 1000.0 AS x1, (hash(i, 2) % 1000) / 1000.0 AS x2,
             (hash(i, 3) % 1000) / 1000.0 AS x3, ['a', 'b', 'c'][(1 + hash(i, 4) % 3)::BIGINT] AS c FROM range({rows}) AS r(i));
"""
SEARCH = ("num_leaves = HPARAM_RANGE(4, 64), learning_rate = HPARAM_RANGE(0.02, 0.3, 'log'), "
          "min_data_in_leaf = HPARAM_CANDIDATES([5, 20, 50])")  # fmt: skip


def test_the_model_is_the_best_trial_and_never_worse_than_the_defaults(con):
    con.sql(DATA.format(rows=4000))
    con.sql(f"TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_threads = 1, {SEARCH}, trials = 8, seed = 2) "
            "AS SELECT * FROM t")  # fmt: skip
    trials = con.sql("SELECT trial, state, value, params, is_best FROM TRIALS(MODEL m) ORDER BY trial").fetchall()
    assert [t[0] for t in trials] == list(range(8)) and {t[1] for t in trials} == {"COMPLETE"}
    assert json.loads(trials[0][3]) == {"defaults": True}
    best = max(trials, key=lambda t: t[2])
    assert best[4] and sum(t[4] for t in trials) == 1
    assert best[2] >= trials[0][2]  # at least as good as the defaults on the validation rows
    auc = con.sql("SELECT auc FROM EVALUATE(MODEL m)").fetchone()[0]
    assert auc == pytest.approx(best[2], abs=1e-12)  # the version is the best trial's model
    params = dict(con.sql("SELECT name, value FROM DESCRIBE_MODEL(MODEL m) WHERE section = 'param'").fetchall())
    for key, value in json.loads(best[3]).items():
        if key != "defaults":
            assert params[key] == str(value)


def test_cross_validation_and_a_searched_number_of_rounds(con):
    con.sql(DATA.format(rows=2000))
    con.sql("TRAIN MODEL cv USING lightgbm_classifier LABEL y WITH (num_threads = 1, folds = 3, trials = 4, "
            "num_boost_round = HPARAM_CANDIDATES([20, 40]), tuning_metric = 'logloss') AS SELECT * FROM t")  # fmt: skip
    trials = con.sql("SELECT value, params, is_best FROM TRIALS(MODEL cv)").fetchall()
    best = min(trials, key=lambda t: t[0])  # logloss: smaller is better
    assert best[2]
    rounds = con.sql("SELECT value FROM DESCRIBE_MODEL(MODEL cv) WHERE name = 'num_boost_round'").fetchone()[0]
    assert rounds == str(json.loads(best[1]).get("num_boost_round", 100))
    assert con.sql("SELECT count(*) FROM TRAINING_CURVE(MODEL cv)").fetchone()[0] == int(rounds)


def test_scikit_learn_families_tune_too(con):
    con.sql(DATA.format(rows=1000))
    with pytest.raises(sqlml.SqlmlError, match="C"):  # each candidate is checked by scikit-learn's own validation
        con.sql(
            "TRAIN MODEL lr USING logistic_classifier LABEL y WITH (C = HPARAM_CANDIDATES([1, -1])) AS SELECT * FROM t"
        )
    con.sql("TRAIN MODEL lr USING logistic_classifier LABEL y WITH (C = HPARAM_RANGE(0.01, 10, 'log'), trials = 3) "
            "AS SELECT * FROM t")  # fmt: skip
    assert con.sql("SELECT count(*) FROM TRIALS(MODEL lr) WHERE state = 'COMPLETE'").fetchone() == (3,)


def _complete(db: Path) -> list[tuple[int, float]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=1) as c:
            return c.execute("SELECT t.number, v.value FROM trials t JOIN trial_values v USING (trial_id) "
                             "WHERE t.state = 'COMPLETE' ORDER BY t.number").fetchall()  # fmt: skip
    except sqlite3.OperationalError:  # the schema is being created
        return []


@pytest.mark.slow
def test_a_killed_search_resumes_where_it_stopped(tmp_path):
    script = tmp_path / "tune.sql"
    script.write_text(DATA.format(rows=60_000) + f"TRAIN MODEL m USING lightgbm_classifier LABEL y WITH "
                      f"(num_threads = 1, {SEARCH}, trials = 12, seed = 4) AS SELECT * FROM t;\n")  # fmt: skip
    catalog = tmp_path / "catalog"
    command = [sys.executable, "-m", "sqlml", "run", str(script), "--catalog", str(catalog)]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = catalog / "m" / "tuning.db"
    deadline = time.monotonic() + 240
    while len(_complete(db)) < 5 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = _complete(db)
    assert 5 <= len(before) < 12, "the search ended before it could be killed"
    assert not (catalog / "m" / "1").exists()  # no version: the search had not finished
    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    con = sqlml.connect(catalog=catalog)
    trials = con.sql("SELECT trial, state, value, error FROM TRIALS(MODEL m) ORDER BY trial").fetchall()
    complete = [(t[0], t[2]) for t in trials if t[1] == "COMPLETE"]
    assert len(complete) == 12
    assert complete[: len(before)] == before  # the first run's trials are kept as they were
    resumed = [t for t in trials if t[0] >= len(before)]
    interrupted = [t for t in resumed if t[1] == "FAIL"]
    assert all(t[3] == "interrupted" for t in interrupted) and len(interrupted) <= 1
    # the second run went on from the first's next trial
    assert resumed[0][0] == len(before) and len(trials) == 12 + len(interrupted)


@pytest.mark.parametrize(
    ("with_", "message"),
    [
        ("trials = 5", "trials configures a search, but no parameter has a search space"),
        ("num_leaves = HPARAM_RANGE(64, 4)", "Bad search space for num_leaves"),
        ("num_leaves = HPARAM_RANGE(4, 64, 'cubic')", "Bad search space"),
        ("num_leavs = HPARAM_RANGE(4, 64)", "Did you mean 'num_leaves'"),
        ("validation = HPARAM_RANGE(0.1, 0.3)", "only trainer parameters and num_boost_round are searched"),
        ("num_leaves = HPARAM_RANGE(4, 64), folds = 1", "Bad value 1 for folds"),
    ],
)
def test_bad_searches_are_bind_errors(con, with_, message):
    con.sql(DATA.format(rows=100))
    with pytest.raises(sqlml.SqlmlError) as err:
        con.sql(f"TRAIN MODEL bad USING lightgbm_classifier LABEL y WITH ({with_}) AS SELECT * FROM t")
    assert message in f"{err.value.message} {err.value.hint}"
    assert not con.sql("SELECT * FROM MODELS()").fetchall()


def test_a_search_without_validation_rows_is_refused(con):
    con.sql(DATA.format(rows=300))  # under 500 rows: no automatic validation split
    with pytest.raises(sqlml.SqlmlError, match="validation rows"):
        con.sql(
            "TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_leaves = HPARAM_RANGE(4, 8)) AS SELECT * FROM t"
        )
    assert not con.sql("SELECT * FROM MODELS()").fetchall()


def test_bigquery_ml_tuning_options(con):
    con.sql(DATA.format(rows=2000))
    con.sql("CREATE MODEL bq OPTIONS (model_type = 'boosted_tree_classifier', input_label_cols = ['y'], num_trials = 4, "
            "learn_rate = HPARAM_RANGE(0.05, 0.5), max_tree_depth = HPARAM_CANDIDATES([3, 6]), "
            "hparam_tuning_objectives = ['log_loss']) AS SELECT * FROM t")  # fmt: skip
    info = con.sql("SELECT * FROM ML.TRIAL_INFO(MODEL bq) ORDER BY trial_id")
    assert info.columns == ["trial_id", "hyperparameters", "hparam_tuning_evaluation_metrics", "training_loss",
                            "eval_loss", "status", "error_message", "is_optimal"]  # fmt: skip
    rows = info.fetchall()
    assert len(rows) == 4 and {r[5] for r in rows} == {"SUCCEEDED"}
    assert all("logloss" in r[2] for r in rows)
    best = min(rows, key=lambda r: r[4])
    assert best[7]
    chosen = json.loads(best[1])
    assert chosen == {"defaults": True} or 0.05 <= chosen["learning_rate"] <= 0.5
