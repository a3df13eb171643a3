-- Nexmark q5, hot items: bids per auction in 10-second windows sliding every 2 seconds;
-- Run alone from the repository's root (sqlml run queries/nexmark/q5.sql), it reads a small Nexmark sample,
-- queries/data/nexmark_sample.parquet (20,000 events, one a millisecond: 1 person, 3 auctions and 46 bids
-- in every 50; `python bench/nexmark_gen.py --sample` writes it). bench/nexmark.py and the tests stream
-- bench/nexmark_gen.py's events through the same statements instead.
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'queries/data/nexmark_sample.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q5 (window_start TIMESTAMP, window_end TIMESTAMP, auction BIGINT, num BIGINT);

INSERT INTO q5
SELECT window_start, window_end, auction, num FROM (
    SELECT window_start, window_end, auction, count(*) AS num,
           max(count(*)) OVER (PARTITION BY window_start, window_end) AS max_num
    FROM TABLE(HOP(TABLE nexmark, DESCRIPTOR(date_time), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
    WHERE event_type = 2
    GROUP BY window_start, window_end, auction
) WHERE num = max_num;

SELECT * FROM q5 ORDER BY window_start, auction LIMIT 5;
