-- Real-time ML on a click stream: a product site's clicks, each labelled purchase / no purchase.
-- A model is retrained every 10 minutes on the last hour (HOP), tested on each new slide before it
-- learns from it, and every click is scored point in time by the version serving at that moment.
-- Halfway through, the buyers change: expensive items start to sell. Watch the AUC drop and recover.
COPY (
    SELECT i % 500 AS user_id, i % 40 AS item_id,
           round(5 + (hash(i) % 9500) / 100.0, 2) AS price,
           TIMESTAMP '2025-06-01 08:00:00' + INTERVAL (i * 2) SECOND AS ts,
           -- before 12:00 cheap items sell; after it, expensive ones; 8% noise either way
           CASE WHEN ts < TIMESTAMP '2025-06-01 12:00:00' THEN price < 35 AND item_id % 4 <> 0
                ELSE price > 60 END <> (hash(i * 31) % 100 < 8) AS purchased
    FROM range(0, 14400) AS t(i)
) TO 'realtime_clicks.jsonl' (FORMAT json);

CREATE OR REPLACE STREAM clicks (
    user_id BIGINT, item_id BIGINT, price DOUBLE, ts TIMESTAMP, purchased BOOLEAN,
    WATERMARK FOR ts AS ts - INTERVAL '30' SECOND
) WITH (connector = 'files', path = 'realtime_clicks.jsonl', format = 'jsonl', batch_size = 2000);

TRAIN MODEL cvr USING lightgbm_classifier LABEL purchased
  WITH (update = 'retrain', rounds_per_window = 30, promote = 'always', num_leaves = 15, seed = 7)
AS SELECT item_id, price, hour(ts) AS hour, purchased
   FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' MINUTE, INTERVAL '1' HOUR));

-- AUC per window over time, as a bar chart
SELECT strftime(window_end, '%H:%M') AS window_end, version, rows, round(auc, 3) AS auc, bar(auc, 0.0, 1.0, 30) AS chart
FROM METRICS(MODEL cvr) WHERE auc IS NOT NULL AND window_end BETWEEN '2025-06-01 11:00' AND '2025-06-01 13:30'
ORDER BY window_end;

-- every click scored point in time, never by a version that trained on its window
CREATE OR REPLACE TABLE scored (
    user_id BIGINT, item_id BIGINT, price DOUBLE, ts TIMESTAMP, purchased BOOLEAN,
    prediction BOOLEAN, probability DOUBLE, model_version BIGINT
);
INSERT INTO scored
SELECT user_id, item_id, price, ts, purchased, prediction, probability, model_version
FROM PREDICT(MODEL cvr, (SELECT *, hour(ts) AS hour FROM clicks));

SELECT count(*) AS clicks, count(model_version) AS scored, round(avg((prediction = purchased)::INT), 3) AS accuracy
FROM scored;
