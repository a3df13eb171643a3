-- Nexmark q4, average closing price per category: each auction's highest bid while it was open, averaged
-- per category. An updating query: the table holds the current averages, upserted as bids arrive.
-- Run alone from the repository's root (sqlml run queries/nexmark/q4.sql), it reads a small Nexmark sample,
-- queries/data/nexmark_sample.parquet (20,000 events, one a millisecond: 1 person, 3 auctions and 46 bids
-- in every 50; `python bench/nexmark_gen.py --sample` writes it). bench/nexmark.py and the tests stream
-- bench/nexmark_gen.py's events through the same statements instead.
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'queries/data/nexmark_sample.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q4 (category BIGINT PRIMARY KEY, avg_final DOUBLE);

INSERT INTO q4
WITH auction AS (SELECT auction_id AS id, item_name, initial_bid, date_time, expires, seller, category FROM nexmark WHERE event_type = 1),
     bid AS (SELECT auction, bidder, price, channel, date_time FROM nexmark WHERE event_type = 2)
SELECT Q.category, avg(Q.final)
FROM (
    SELECT max(B.price) AS final, A.category
    FROM auction AS A, bid AS B
    WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
    GROUP BY A.id, A.category
) AS Q
GROUP BY Q.category;

SELECT * FROM q4 ORDER BY category;
