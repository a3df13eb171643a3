-- Nexmark q20, bids expanded with their auction's details, for auctions in category 10 (a regular join of
-- a stream with itself: insert-only, each bid's row out once both its bid and its auction have arrived).
-- Run alone from the repository's root (sqlml run queries/nexmark/q20.sql), it reads a small Nexmark sample,
-- queries/data/nexmark_sample.parquet (20,000 events, one a millisecond: 1 person, 3 auctions and 46 bids
-- in every 50; `python bench/nexmark_gen.py --sample` writes it). bench/nexmark.py and the tests stream
-- bench/nexmark_gen.py's events through the same statements instead.
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'queries/data/nexmark_sample.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q20 (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, date_time TIMESTAMP,
    item_name VARCHAR, initial_bid BIGINT, auction_date_time TIMESTAMP, expires TIMESTAMP, seller BIGINT, category BIGINT);

INSERT INTO q20
WITH auction AS (SELECT auction_id AS id, item_name, initial_bid, date_time, expires, seller, category FROM nexmark WHERE event_type = 1),
     bid AS (SELECT auction, bidder, price, channel, date_time FROM nexmark WHERE event_type = 2)
SELECT B.auction, B.bidder, B.price, B.channel, B.date_time, A.item_name, A.initial_bid, A.date_time, A.expires,
       A.seller, A.category
FROM bid AS B JOIN auction AS A ON B.auction = A.id
WHERE A.category = 10;

SELECT * FROM q20 ORDER BY date_time LIMIT 5;
