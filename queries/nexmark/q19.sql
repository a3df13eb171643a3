-- Nexmark q19, the ten highest bids of each auction (Top-N, an updating query: a higher bid pushes the
-- tenth out). Equal prices are ranked by time, so that the result is one (Flink's query leaves them tied).
-- Run alone from the repository's root (sqlml run queries/nexmark/q19.sql), it reads a small Nexmark sample,
-- queries/data/nexmark_sample.parquet (20,000 events, one a millisecond: 1 person, 3 auctions and 46 bids
-- in every 50; `python bench/nexmark_gen.py --sample` writes it). bench/nexmark.py and the tests stream
-- bench/nexmark_gen.py's events through the same statements instead.
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'queries/data/nexmark_sample.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q19 (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, date_time TIMESTAMP,
    rank_number BIGINT, PRIMARY KEY (auction, rank_number));

INSERT INTO q19
SELECT auction, bidder, price, channel, date_time, rank_number
FROM (SELECT auction, bidder, price, channel, date_time,
             ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, date_time) AS rank_number
      FROM nexmark WHERE event_type = 2)
WHERE rank_number <= 10;

SELECT * FROM q19 ORDER BY auction, rank_number LIMIT 5;
