-- Nexmark q8, monitor new users: persons who opened an auction in the same 10-second tumbling
-- window in which they registered (persons joined to auctions on seller = person id).
-- Run alone from the repository's root (sqlml run queries/nexmark/q8.sql), it reads a small Nexmark sample,
-- queries/data/nexmark_sample.parquet (20,000 events, one a millisecond: 1 person, 3 auctions and 46 bids
-- in every 50; `python bench/nexmark_gen.py --sample` writes it). bench/nexmark.py and the tests stream
-- bench/nexmark_gen.py's events through the same statements instead.
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'queries/data/nexmark_sample.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q8 (person_id BIGINT, name VARCHAR, window_start TIMESTAMP);

INSERT INTO q8
WITH w AS (
    SELECT event_type, person_id, name, seller, window_start, window_end
    FROM TABLE(TUMBLE(TABLE nexmark, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
)
SELECT p.person_id, p.name, p.window_start
FROM (SELECT person_id, name, window_start, window_end FROM w WHERE event_type = 0) AS p
JOIN (SELECT DISTINCT seller, window_start, window_end FROM w WHERE event_type = 1) AS a
  ON p.person_id = a.seller AND p.window_start = a.window_start AND p.window_end = a.window_end;

SELECT * FROM q8 ORDER BY window_start, person_id LIMIT 5;
