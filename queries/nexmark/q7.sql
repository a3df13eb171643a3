-- Nexmark q7, highest bid: the maximum price per 10-second tumbling window, joined back to the
-- bids at that price in that window.
-- Run alone from the repository's root (sqlml run queries/nexmark/q7.sql), it reads a small Nexmark sample,
-- queries/data/nexmark_sample.parquet (20,000 events, one a millisecond: 1 person, 3 auctions and 46 bids
-- in every 50; `python bench/nexmark_gen.py --sample` writes it). bench/nexmark.py and the tests stream
-- bench/nexmark_gen.py's events through the same statements instead.
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'queries/data/nexmark_sample.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q7 (window_start TIMESTAMP, auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP);

INSERT INTO q7
WITH bids AS (
    SELECT window_start, window_end, auction, bidder, price, date_time
    FROM TABLE(TUMBLE(TABLE nexmark, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) WHERE event_type = 2
)
SELECT b.window_start, b.auction, b.bidder, b.price, b.date_time
FROM bids AS b
JOIN (SELECT window_start, window_end, max(price) AS maxprice FROM bids GROUP BY window_start, window_end) AS m
  ON b.window_start = m.window_start AND b.window_end = m.window_end AND b.price = m.maxprice;

SELECT * FROM q7 ORDER BY window_start, auction LIMIT 5;
