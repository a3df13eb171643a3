-- Nexmark q16, channel statistics per day: q15's counts per channel, with the last minute seen.
-- Run alone from the repository's root (sqlml run queries/nexmark/q16.sql), it reads a small Nexmark sample,
-- queries/data/nexmark_sample.parquet (20,000 events, one a millisecond: 1 person, 3 auctions and 46 bids
-- in every 50; `python bench/nexmark_gen.py --sample` writes it). bench/nexmark.py and the tests stream
-- bench/nexmark_gen.py's events through the same statements instead.
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'queries/data/nexmark_sample.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q16 (channel VARCHAR, day VARCHAR, minute VARCHAR, total_bids BIGINT, rank1_bids BIGINT, rank2_bids BIGINT, rank3_bids BIGINT,
    total_bidders BIGINT, rank1_bidders BIGINT, rank2_bidders BIGINT, rank3_bidders BIGINT, total_auctions BIGINT, rank1_auctions BIGINT, rank2_auctions BIGINT, rank3_auctions BIGINT, PRIMARY KEY (channel, day));

INSERT INTO q16
SELECT channel, strftime(date_time, '%Y-%m-%d') AS day, max(strftime(date_time, '%H:%M')) AS minute,
       count(*) AS total_bids,
       count(*) FILTER (WHERE price < 10000) AS rank1_bids,
       count(*) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bids,
       count(*) FILTER (WHERE price >= 1000000) AS rank3_bids,
       count(DISTINCT bidder) AS total_bidders,
       count(DISTINCT bidder) FILTER (WHERE price < 10000) AS rank1_bidders,
       count(DISTINCT bidder) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bidders,
       count(DISTINCT bidder) FILTER (WHERE price >= 1000000) AS rank3_bidders,
       count(DISTINCT auction) AS total_auctions,
       count(DISTINCT auction) FILTER (WHERE price < 10000) AS rank1_auctions,
       count(DISTINCT auction) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_auctions,
       count(DISTINCT auction) FILTER (WHERE price >= 1000000) AS rank3_auctions
FROM nexmark WHERE event_type = 2
GROUP BY channel, strftime(date_time, '%Y-%m-%d');

SELECT channel, day, total_bids, total_bidders FROM q16 ORDER BY channel;
