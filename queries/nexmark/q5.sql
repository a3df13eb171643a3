-- Nexmark q5, hot items: bids per auction in 10-second windows sliding every 2 seconds;
-- keep the auctions whose count is the window's maximum. Reads Nexmark events from nexmark/*.parquet
-- (bench/nexmark_gen.py writes them).
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'nexmark/*.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q5 (window_start TIMESTAMP, window_end TIMESTAMP, auction BIGINT, num BIGINT);

INSERT INTO q5
SELECT window_start, window_end, auction, num FROM (
    SELECT window_start, window_end, auction, count(*) AS num,
           max(count(*)) OVER (PARTITION BY window_start, window_end) AS max_num
    FROM TABLE(HOP(TABLE nexmark, DESCRIPTOR(date_time), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
    WHERE event_type = 2
    GROUP BY window_start, window_end, auction
) WHERE num = max_num;
