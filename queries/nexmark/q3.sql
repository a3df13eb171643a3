-- Nexmark q3, local item suggestion: sellers in Oregon, Idaho or California of auctions in category 10,
-- a join of auctions with the persons who sell them (Flink's regular join; insert-only: rows once out stand).
-- Run alone from the repository's root (sqlml run queries/nexmark/q3.sql), it reads a small Nexmark sample,
-- queries/data/nexmark_sample.parquet (20,000 events, one a millisecond: 1 person, 3 auctions and 46 bids
-- in every 50; `python bench/nexmark_gen.py --sample` writes it). bench/nexmark.py and the tests stream
-- bench/nexmark_gen.py's events through the same statements instead.
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'queries/data/nexmark_sample.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q3 (name VARCHAR, city VARCHAR, state VARCHAR, id BIGINT);

INSERT INTO q3
WITH auction AS (SELECT auction_id AS id, item_name, initial_bid, date_time, expires, seller, category FROM nexmark WHERE event_type = 1),
     person AS (SELECT person_id AS id, name, city, state FROM nexmark WHERE event_type = 0)
SELECT P.name, P.city, P.state, A.id
FROM auction AS A JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA');

SELECT * FROM q3 ORDER BY id LIMIT 5;
