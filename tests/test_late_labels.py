"""Labels that arrive late: a continuous TRAIN joins its click windows with the purchases that
follow within 30 minutes. Each window trains (and is tested) once the watermark has passed its
end plus the horizon, so every label it sees is final; a version serves from then on, so no
click is scored by a version that learnt from labels not yet known at the click's time."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import sqlml

HORIZON = dt.timedelta(minutes=30)

DATA = """
COPY (
    SELECT i AS click_id, i % 500 AS user_id, i % 40 AS item_id, round(5 + (hash(i) % 9500) / 100.0, 2) AS price,
           TIMESTAMP '2025-06-01 08:00:00' + INTERVAL (i * 2) SECOND AS ts
    FROM range(0, {n}) AS t(i)
) TO 'clicks.jsonl' (FORMAT json);
COPY (
    SELECT click_id, user_id, item_id, ts + INTERVAL (1 + hash(click_id * 7) % 1790) SECOND AS ts
    FROM read_json('clicks.jsonl')
    WHERE (price < 35 AND item_id % 4 <> 0) <> (hash(click_id * 31) % 100 < 8)
    ORDER BY ts
) TO 'purchases.jsonl' (FORMAT json);
CREATE STREAM clicks (click_id BIGINT, user_id BIGINT, item_id BIGINT, price DOUBLE, ts TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '30' SECOND) WITH (path = 'clicks.jsonl', batch_size = 700);
CREATE STREAM purchases (click_id BIGINT, user_id BIGINT, item_id BIGINT, ts TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '30' SECOND) WITH (path = 'purchases.jsonl', batch_size = 300);
"""

TRAIN = """
TRAIN MODEL cvr USING lightgbm_classifier LABEL purchased
  WITH (update = 'retrain', rounds_per_window = 20, promote = 'always', num_leaves = 7, seed = 7, num_threads = 1)
AS SELECT c.item_id, c.price, p.ts IS NOT NULL AS purchased
   FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' MINUTE, INTERVAL '1' HOUR)) AS c
   LEFT JOIN purchases AS p ON p.click_id = c.click_id AND p.ts BETWEEN c.ts AND c.ts + INTERVAL '30' MINUTE
"""


@pytest.fixture
def session(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    con = sqlml.connect(catalog=tmp_path / "cat")
    con.execute(DATA.format(n=5400))  # three hours, a click every 2 s
    return con


def test_each_window_is_tested_on_final_labels_by_the_version_before_it(session):
    con = session
    summary = con.sql(TRAIN).arrow().to_pylist()[0]
    assert summary["late"] == 0 and summary["windows"] >= 15
    logged = con.sql(
        "SELECT window_start, window_end, version, rows, auc FROM METRICS(MODEL cvr) WHERE role = 'serving' AND auc IS NOT NULL "
        "ORDER BY window_end"
    ).fetchall()
    assert len(logged) >= 14
    con.execute("CREATE TABLE clicks_t AS SELECT * FROM read_json('clicks.jsonl')")
    con.execute("CREATE TABLE purchases_t AS SELECT * FROM read_json('purchases.jsonl')")
    for start, end, version, rows, auc in logged:
        # the slide this window adds (the rest was tested before), labelled by every purchase
        fresh = (
            "SELECT c.item_id, c.price, EXISTS (SELECT 1 FROM purchases_t AS p WHERE p.click_id = c.click_id AND "
            "p.ts BETWEEN c.ts AND c.ts + INTERVAL '30' MINUTE) AS purchased FROM clicks_t AS c "
            f"WHERE c.ts >= TIMESTAMP '{end - dt.timedelta(minutes=10)}' AND c.ts < TIMESTAMP '{end}'"
        )
        scored = con.sql(
            f"SELECT purchased, probability FROM PREDICT(MODEL cvr VERSION {version}, ({fresh}))"
        ).fetchall()
        labels, scores = np.array([r[0] for r in scored]), np.array([r[1] for r in scored])
        assert rows == len(scored) == 300
        assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-9), (start, end, version)


def test_a_version_serves_only_once_its_labels_were_final(session):
    con = session
    con.execute(TRAIN)
    # version v is tested first on the window after the one it trained on (promote = 'always')
    trained_on = dict(con.sql(
        "SELECT version, min(window_end) - INTERVAL 10 MINUTE FROM METRICS(MODEL cvr) WHERE version IS NOT NULL "
        "GROUP BY version"
    ).fetchall())  # fmt: skip
    scored = [
        (r["ts"], r["model_version"])
        for batch in con.stream("SELECT ts, model_version FROM PREDICT(MODEL cvr, (SELECT * FROM clicks))")
        for r in batch.to_pylist()
        if r["model_version"] is not None
    ]
    assert len(scored) > 3000
    assert all(trained_on[version] + HORIZON <= ts for ts, version in scored)
    # and as soon as that: the version trained on the window ending at 09:00 serves from 09:30
    first = min(ts for ts, version in scored if trained_on[version] == dt.datetime(2025, 6, 1, 9, 0))
    assert dt.datetime(2025, 6, 1, 9, 30) <= first < dt.datetime(2025, 6, 1, 9, 30, 3)


@pytest.mark.parametrize(
    ("join", "message"),
    [
        ("JOIN purchases AS p ON p.click_id = c.click_id", "bounded in time"),
        ("RIGHT JOIN purchases AS p ON p.click_id = c.click_id AND p.ts BETWEEN c.ts AND c.ts", "LEFT JOIN"),
    ],
)
def test_a_label_join_without_a_horizon_is_refused(session, join, message):
    with pytest.raises(sqlml.BindError) as err:
        session.execute(
            "TRAIN MODEL m USING lightgbm_classifier LABEL purchased WITH (update = 'retrain') AS "
            "SELECT c.price, p.ts IS NOT NULL AS purchased FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), "
            f"INTERVAL '10' MINUTE)) AS c {join}"
        )
    assert message in err.value.message and err.value.hint
