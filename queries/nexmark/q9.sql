-- Nexmark q9, winning bids: each auction with its highest bid while it was open (the earliest of equal
-- prices). An updating query (Top-1 over a join): a better bid replaces the auction's row.
-- Run alone from the repository's root (sqlml run queries/nexmark/q9.sql), it reads a small Nexmark sample,
-- queries/data/nexmark_sample.parquet (20,000 events, one a millisecond: 1 person, 3 auctions and 46 bids
-- in every 50; `python bench/nexmark_gen.py --sample` writes it). bench/nexmark.py and the tests stream
-- bench/nexmark_gen.py's events through the same statements instead.
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'queries/data/nexmark_sample.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q9 (id BIGINT PRIMARY KEY, item_name VARCHAR, initial_bid BIGINT, date_time TIMESTAMP, expires TIMESTAMP,
    seller BIGINT, category BIGINT, auction BIGINT, bidder BIGINT, price BIGINT, bid_date_time TIMESTAMP);

INSERT INTO q9
WITH auction AS (SELECT auction_id AS id, item_name, initial_bid, date_time, expires, seller, category FROM nexmark WHERE event_type = 1),
     bid AS (SELECT auction, bidder, price, channel, date_time FROM nexmark WHERE event_type = 2)
SELECT id, item_name, initial_bid, date_time, expires, seller, category, auction, bidder, price, bid_date_time
FROM (
    SELECT A.*, B.auction, B.bidder, B.price, B.date_time AS bid_date_time,
           ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.date_time ASC) AS rownum
    FROM auction AS A, bid AS B
    WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
)
WHERE rownum <= 1;

SELECT id, price, bidder FROM q9 ORDER BY id LIMIT 5;
