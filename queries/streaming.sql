-- Streaming: replay a generated click stream and write per-minute metrics as windows close.
-- The events are written by DuckDB first (two files of JSON lines, one of them out of order and
-- with one malformed line), then read back as a stream with a 5-second watermark delay.
COPY (
    SELECT i % 50 AS user_id, i % 7 AS item_id, round(5 + (i % 13) * 1.5, 2) AS price,
           (hash(i) % 10 = 0) AS purchased,
           TIMESTAMP '2025-06-01 12:00:00' + INTERVAL (i * 2) SECOND AS ts
    FROM range(0, 1500) AS t(i)
) TO 'streaming_events_1.jsonl' (FORMAT json);
COPY (
    SELECT i % 50 AS user_id, i % 7 AS item_id, round(5 + (i % 13) * 1.5, 2) AS price,
           (hash(i) % 10 = 0) AS purchased,
           -- every 100th event arrives 3 minutes after its time: late for its 1-minute window
           TIMESTAMP '2025-06-01 12:00:00' + INTERVAL (i * 2 - CASE WHEN i % 100 = 0 THEN 180 ELSE 0 END) SECOND AS ts
    FROM range(1500, 3000) AS t(i)
    UNION ALL SELECT NULL, NULL, NULL, NULL, NULL
) TO 'streaming_events_2.jsonl' (FORMAT json);

CREATE OR REPLACE STREAM clicks (
    user_id BIGINT, item_id BIGINT, price DOUBLE, purchased BOOLEAN, ts TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (connector = 'files', path = 'streaming_events_*.jsonl', format = 'jsonl', batch_size = 500);

CREATE OR REPLACE TABLE clicks_per_minute (
    window_start TIMESTAMP, window_end TIMESTAMP, item_id BIGINT, clicks BIGINT, cvr DOUBLE, revenue DOUBLE
);

INSERT INTO clicks_per_minute
SELECT window_start, window_end, item_id, count(*) AS clicks, avg(purchased::INT) AS cvr,
       sum(CASE WHEN purchased THEN price ELSE 0 END) AS revenue
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, item_id;

-- the five busiest minutes, and what the stream could not use
SELECT window_start, sum(clicks) AS clicks, round(avg(cvr), 3) AS cvr, sum(revenue) AS revenue
FROM clicks_per_minute GROUP BY window_start ORDER BY clicks DESC, window_start LIMIT 5;
SELECT count(*) AS late_events FROM clicks_late;
SELECT raw, error FROM clicks_errors;
