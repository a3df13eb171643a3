-- Nexmark q11, user sessions: bids per bidder per session, a session ending after 10 seconds
-- without a bid from that bidder.
-- Run alone from the repository's root (sqlml run queries/nexmark/q11.sql), it reads a small Nexmark sample,
-- queries/data/nexmark_sample.parquet (20,000 events, one a millisecond: 1 person, 3 auctions and 46 bids
-- in every 50; `python bench/nexmark_gen.py --sample` writes it). bench/nexmark.py and the tests stream
-- bench/nexmark_gen.py's events through the same statements instead.
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'queries/data/nexmark_sample.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q11 (bidder BIGINT, bid_count BIGINT, window_start TIMESTAMP, window_end TIMESTAMP);

INSERT INTO q11
SELECT bidder, count(*) AS bid_count, window_start, window_end
FROM TABLE(SESSION(TABLE nexmark PARTITION BY bidder, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
WHERE event_type = 2
GROUP BY bidder, window_start, window_end;

SELECT * FROM q11 ORDER BY bid_count DESC, bidder, window_start LIMIT 5;
