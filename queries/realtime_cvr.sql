-- Real-time ML on a click stream whose labels arrive late: a product site's clicks, and the purchases
-- that follow some of them within 30 minutes. A model is retrained every 10 minutes on the last hour
-- of clicks (HOP), each labelled by a LEFT JOIN with the purchases: a window trains once the watermark
-- has passed its end plus the 30-minute horizon, so every label it sees is final; it is tested on its
-- new slide (final labels too) by the version before it, and every click is scored point in time by
-- the version serving at that moment, never one that learnt from labels not yet known then.
-- Halfway through, the buyers change: expensive items start to sell. Watch the AUC drop and recover.
COPY (
    SELECT i AS click_id, i % 500 AS user_id, i % 40 AS item_id,
           round(5 + (hash(i) % 9500) / 100.0, 2) AS price,
           TIMESTAMP '2025-06-01 08:00:00' + INTERVAL (i * 2) SECOND AS ts
    FROM range(0, 14400) AS t(i)
) TO 'realtime_clicks.jsonl' (FORMAT json);

-- before 12:00 cheap items sell; after it, expensive ones; 8% noise either way; a purchase comes
-- 1 second to 30 minutes after its click
COPY (
    SELECT click_id, user_id, item_id, ts + INTERVAL (1 + hash(click_id * 7) % 1790) SECOND AS ts
    FROM read_json('realtime_clicks.jsonl')
    WHERE CASE WHEN ts < TIMESTAMP '2025-06-01 12:00:00' THEN price < 35 AND item_id % 4 <> 0
               ELSE price > 60 END <> (hash(click_id * 31) % 100 < 8)
    ORDER BY ts
) TO 'realtime_purchases.jsonl' (FORMAT json);

CREATE OR REPLACE STREAM clicks (
    click_id BIGINT, user_id BIGINT, item_id BIGINT, price DOUBLE, ts TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '30' SECOND
) WITH (connector = 'files', path = 'realtime_clicks.jsonl', format = 'jsonl', batch_size = 2000);

CREATE OR REPLACE STREAM purchases (
    click_id BIGINT, user_id BIGINT, item_id BIGINT, ts TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '30' SECOND
) WITH (connector = 'files', path = 'realtime_purchases.jsonl', format = 'jsonl', batch_size = 1000);

TRAIN MODEL cvr USING lightgbm_classifier LABEL purchased
  WITH (update = 'retrain', rounds_per_window = 30, promote = 'always', num_leaves = 15, seed = 7)
AS SELECT c.item_id, c.price, hour(c.ts) AS hour, p.ts IS NOT NULL AS purchased
   FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' MINUTE, INTERVAL '1' HOUR)) AS c
   LEFT JOIN purchases AS p
     ON p.click_id = c.click_id AND p.ts BETWEEN c.ts AND c.ts + INTERVAL '30' MINUTE;

-- AUC per window over time, on final labels, as a bar chart
SELECT strftime(window_end, '%H:%M') AS window_end, version, rows, round(auc, 3) AS auc, bar(auc, 0.0, 1.0, 30) AS chart
FROM METRICS(MODEL cvr) WHERE auc IS NOT NULL AND window_end BETWEEN '2025-06-01 11:00' AND '2025-06-01 13:30'
ORDER BY window_end;

-- every click scored point in time, as it arrives: the version serving then learnt only from
-- windows whose labels were final by then
CREATE OR REPLACE TABLE scored (
    click_id BIGINT, ts TIMESTAMP, item_id BIGINT, price DOUBLE, prediction BOOLEAN, probability DOUBLE, model_version BIGINT
);
INSERT INTO scored
SELECT click_id, ts, item_id, price, prediction, probability, model_version
FROM PREDICT(MODEL cvr, (SELECT *, hour(ts) AS hour FROM clicks));

-- and judged once the purchases are in
SELECT count(*) AS clicks, count(model_version) AS scored,
       round(avg((s.prediction = (p.click_id IS NOT NULL))::INT), 3) AS accuracy
FROM scored AS s LEFT JOIN read_json('realtime_purchases.jsonl') AS p USING (click_id);
