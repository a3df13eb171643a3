"""Continuous training: test-then-train order, retrain and continue against LightGBM called
directly on the same windows, and if_better promotion where the right answer is known."""

from __future__ import annotations

import datetime as dt

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

import sqlml

WINDOW_S = 600  # ten-minute tumbling windows
PER_WINDOW = 300


def clicks(con: sqlml.Session, flips: list[bool], seed: int = 0) -> np.ndarray:
    """A table of windows of clicks; in window k, purchased = x > 0.5, or x < 0.5 where flips[k]."""
    rng = np.random.default_rng(seed)
    n = len(flips) * PER_WINDOW
    x, z = rng.random(n), rng.random(n)
    window = np.repeat(np.arange(len(flips)), PER_WINDOW)
    flip = np.array(flips)[window]
    y = np.where(flip, x < 0.5, x > 0.5) ^ (rng.random(n) < 0.05)
    ts = np.datetime64("2025-01-01T00:00:00", "us") + (
        window * WINDOW_S * 1_000_000 + np.sort(rng.integers(0, WINDOW_S * 1_000_000, n)) % (WINDOW_S * 1_000_000)
    ).astype("timedelta64[us]")
    table = pa.table({"x": x, "z": z, "ts": ts, "purchased": y})
    con.connection.register("clicks_arrow", table)
    con.execute("CREATE TABLE clicks AS SELECT * FROM clicks_arrow ORDER BY ts")
    return window


TRAIN = """TRAIN MODEL cvr USING lightgbm_classifier LABEL purchased
  WITH (update = '{update}', rounds_per_window = 10, promote = '{promote}', seed = 3, min_data_in_leaf = 5)
AS SELECT x, z, purchased FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' MINUTE))"""
PARAMS = {"objective": "binary", "verbosity": -1, "seed": 3, "min_data_in_leaf": 5}


def window_rows(con: sqlml.Session, k: int) -> tuple[np.ndarray, np.ndarray]:
    rows = con.sql(
        f"SELECT x, z, purchased FROM clicks WHERE ts >= TIMESTAMP '2025-01-01' + INTERVAL ({k * WINDOW_S}) SECOND "
        f"AND ts < TIMESTAMP '2025-01-01' + INTERVAL ({(k + 1) * WINDOW_S}) SECOND"
    ).arrow()
    return np.column_stack([rows["x"].to_numpy(), rows["z"].to_numpy()]), rows["purchased"].to_numpy(
        zero_copy_only=False
    ).astype(float)


@pytest.mark.parametrize("update", ["retrain", "continue"])
def test_test_then_train_against_lightgbm_directly(con, update):
    clicks(con, [False] * 5)
    summary = con.sql(TRAIN.format(update=update, promote="always")).arrow().to_pylist()[0]
    assert summary["windows"] == 5 and summary["versions_trained"] == 5 and summary["serving_version"] == 5
    log = con.sql("SELECT window_end, version, role, rows, rows_unscored, auc FROM METRICS(MODEL cvr)").fetchall()
    assert [r[1] for r in log] == [None, 1, 2, 3, 4]
    assert log[0][3:5] == (PER_WINDOW, PER_WINDOW)  # nothing served the first window: counted, not scored
    booster = None
    for k in range(5):
        X, y = window_rows(con, k)
        if k > 0:  # version k (trained on window k-1) scored window k before learning from it
            meta = con.catalog.get("cvr", k).meta
            assert meta["window_end"] < str(log[k][0]) and meta["window_rows"] == PER_WINDOW
            assert log[k][5] == pytest.approx(roc_auc_score(y, booster.predict(X)), abs=1e-9)
        booster = lgb.train(PARAMS, lgb.Dataset(X, label=y), 10, init_model=booster if update == "continue" else None)
        version = con.catalog.get("cvr", k + 1)
        assert version.meta["continued_from"] == (k if update == "continue" and k > 0 else None)
        ours = lgb.Booster(model_str=version.model_text())
        assert ours.num_trees() == (10 * (k + 1) if update == "continue" else 10)
        np.testing.assert_allclose(ours.predict(X), booster.predict(X), atol=1e-9)


def test_if_better_promotes_only_a_better_challenger(con):
    # concept A in window 0, B from window 1 on: v2 (trained on window 1) must replace v1
    # after beating it on window 2; v3 then ties v2 on window 3 and is not promoted
    clicks(con, [False, True, True, True, True])
    con.execute(TRAIN.format(update="retrain", promote="if_better"))
    log = con.sql(
        "SELECT epoch(window_end)::BIGINT, version, role, auc FROM METRICS(MODEL cvr) ORDER BY 1, role DESC"
    ).fetchall()
    by_window = {}
    for end, version, role, auc in log:
        by_window.setdefault(end, []).append((role, version, auc))
    ends = sorted(by_window)
    assert [r[:2] for r in by_window[ends[1]]] == [("serving", 1)]
    serving, challenger = by_window[ends[2]]
    assert serving[:2] == ("serving", 1) and challenger[:2] == ("challenger", 2)
    assert challenger[2] > 0.9 > 0.1 > serving[2]
    assert [r[:2] for r in by_window[ends[3]]] == [("serving", 2), ("challenger", 3)]
    served = con.catalog.serving("cvr")
    assert [h.version for h in served.history] == [1, 2]
    assert "challenger v2 beat v1" in served.history[1].reason
    assert con.sql("SELECT DISTINCT model_version FROM PREDICT(MODEL cvr, TABLE clicks)").fetchall() == [
        (served.version,)
    ]


def test_a_window_that_cannot_train_is_logged_and_the_serving_version_stays(con):
    clicks(con, [False] * 3)
    con.execute(
        "UPDATE clicks SET purchased = false WHERE ts >= TIMESTAMP '2025-01-01 00:10:00' AND ts < TIMESTAMP '2025-01-01 00:20:00'"
    )
    summary = con.sql(TRAIN.format(update="retrain", promote="always")).arrow().to_pylist()[0]
    assert summary["training_failures"] == 1 and summary["versions_trained"] == 2
    failed = con.sql("SELECT role, error FROM METRICS(MODEL cvr) WHERE role = 'training_failed'").fetchall()
    assert failed and "only one class" in failed[0][1]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "TRAIN MODEL m USING lightgbm_classifier LABEL purchased WITH (update = 'retrain') AS SELECT * FROM clicks",
            "needs a window function",
        ),
        (
            "TRAIN MODEL m USING lightgbm_classifier LABEL purchased WITH (update = 'retrian') AS SELECT x, purchased FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' MINUTE))",
            "Did you mean 'retrain'",
        ),
        (
            "TRAIN MODEL m USING lightgbm_classifier LABEL purchased WITH (promote = 'if_beter') AS SELECT x, purchased FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' MINUTE))",
            "Did you mean 'if_better'",
        ),
        (
            "TRAIN MODEL m USING lightgbm_classifier LABEL purchased AS SELECT count(*) AS n, purchased FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' MINUTE)) GROUP BY purchased",
            "one row per event",
        ),
        ("SELECT * FROM METRICS(MODEL nope)", "Unknown model 'nope'"),
        ("SELECT * FROM PREDICT(MODEL fixed, TABLE live)", "PREDICT's input lacks column(s) z"),
    ],
)
def test_continuous_errors(con, sql, message):
    clicks(con, [False])
    con.execute(
        "TRAIN MODEL fixed USING lightgbm_classifier LABEL purchased WITH (num_boost_round = 3) AS SELECT x, z, purchased FROM clicks"
    )
    con.execute("CREATE STREAM live (x DOUBLE, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'python')")
    with pytest.raises(sqlml.SqlmlError) as info:
        con.execute(sql)
    assert message in str(info.value)
    assert info.value.line == 1


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, 1499), max_size=6, unique=True))
def test_point_in_time_predict_over_a_stream(tmp_path_factory, cuts):
    """Each event is scored by the newest version promoted at or before its time (never one
    that trained on its window), whatever the micro-batch boundaries."""
    con = sqlml.connect(catalog=tmp_path_factory.mktemp("c"))
    clicks(con, [False] * 5)
    con.execute(TRAIN.format(update="retrain", promote="always"))
    con.execute(
        "CREATE STREAM live (x DOUBLE, z DOUBLE, ts TIMESTAMP, purchased BOOLEAN, WATERMARK FOR ts AS ts) WITH (connector = 'python')"
    )
    events = con.sql("SELECT x, z, ts, purchased FROM clicks ORDER BY ts").arrow()
    bounds = [0, *sorted(cuts), events.num_rows]
    for a, b in zip(bounds, bounds[1:]):
        con.push("live", events.slice(a, b - a))
    got = []
    for batch in con.stream("SELECT x, z, ts, model_version, probability FROM PREDICT(MODEL cvr, TABLE live)"):
        got += list(zip(*[c.to_pylist() for c in batch.columns]))
    assert len(got) == events.num_rows
    history = con.catalog.serving("cvr").history
    boosters = {h.version: lgb.Booster(model_str=con.catalog.get("cvr", h.version).model_text()) for h in history}
    for x, z, ts, version, probability in got:
        t = int((ts - dt.datetime(1970, 1, 1)) / dt.timedelta(microseconds=1))
        serving = [h.version for h in history if h.since_us <= t]
        assert version == (serving[-1] if serving else None)
        if version is not None:
            assert con.catalog.get("cvr", version).meta["window_end"] <= str(ts)  # no leakage
            assert probability == pytest.approx(boosters[version].predict(np.array([[x, z]]))[0], abs=1e-12)


def test_statement_set_trains_then_scores_point_in_time(tmp_path, monkeypatch):
    from tests.conftest import run_cli

    (tmp_path / "set.sql").write_text(
        "COPY (SELECT (hash(i) % 1000) / 1000.0 AS x, TIMESTAMP '2025-01-01' + INTERVAL (i * 6) SECOND AS ts,\n"
        "  (hash(i) % 1000) / 1000.0 > 0.5 AS purchased FROM range(1000) AS t(i)) TO 'ev.jsonl' (FORMAT json);\n"
        "CREATE STREAM clicks (x DOUBLE, ts TIMESTAMP, purchased BOOLEAN, WATERMARK FOR ts AS ts) WITH (path = 'ev.jsonl');\n"
        "CREATE TABLE scored (x DOUBLE, ts TIMESTAMP, prediction BOOLEAN, model_version BIGINT);\n"
        "EXECUTE STATEMENT SET BEGIN\n"
        "  INSERT INTO scored SELECT x, ts, prediction, model_version FROM PREDICT(MODEL cvr, TABLE clicks);\n"
        "  TRAIN MODEL cvr USING lightgbm_classifier LABEL purchased WITH (update = 'retrain', rounds_per_window = 5, min_data_in_leaf = 5)\n"
        "  AS SELECT x, purchased FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' MINUTE));\n"
        "END;\n"
        "SELECT count(*), count(model_version), min(model_version), max(model_version) FROM scored;\n"
    )
    proc = run_cli("run", "set.sql", "--catalog", "cat", "--format", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "1000,900,1,9"
    assert "cvr: window 2025-01-01 00:10:00 - 2025-01-01 00:20:00: v2 trained, serving v2, auc" in proc.stderr
    (tmp_path / "bad.sql").write_text("EXECUTE STATEMENT SET BEGIN\n  SELECT 1;\nEND;\n")
    proc = run_cli("run", "bad.sql", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.startswith("bad.sql:2:3: error: EXECUTE STATEMENT SET holds TRAIN")
