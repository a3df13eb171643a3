-- Nexmark q18, the last bid of each bidder on each auction (keep-last deduplication, an updating query:
-- a later bid replaces the row).
-- Run alone from the repository's root (sqlml run queries/nexmark/q18.sql), it reads a small Nexmark sample,
-- queries/data/nexmark_sample.parquet (20,000 events, one a millisecond: 1 person, 3 auctions and 46 bids
-- in every 50; `python bench/nexmark_gen.py --sample` writes it). bench/nexmark.py and the tests stream
-- bench/nexmark_gen.py's events through the same statements instead.
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'queries/data/nexmark_sample.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q18 (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, date_time TIMESTAMP,
    PRIMARY KEY (bidder, auction));

INSERT INTO q18
SELECT auction, bidder, price, channel, date_time
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY date_time DESC) AS rank_number
      FROM nexmark WHERE event_type = 2)
WHERE rank_number <= 1;

SELECT * FROM q18 ORDER BY bidder, auction LIMIT 5;
