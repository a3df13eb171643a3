-- Nexmark q6, average selling price by seller: the average of each seller's last ten closing prices
-- (an auction's highest bid while it was open), an OVER aggregation over an updating query. Flink's own
-- q6 does not run (it reads B.dateTime, which it does not group by); this one orders the auctions by
-- their closing time, A.expires, and is an updating query: a higher bid changes an average.
-- Run alone from the repository's root (sqlml run queries/nexmark/q6.sql), it reads a small Nexmark sample,
-- queries/data/nexmark_sample.parquet (20,000 events, one a millisecond: 1 person, 3 auctions and 46 bids
-- in every 50; `python bench/nexmark_gen.py --sample` writes it). bench/nexmark.py and the tests stream
-- bench/nexmark_gen.py's events through the same statements instead.
CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'queries/data/nexmark_sample.parquet', format = 'parquet');

CREATE OR REPLACE TABLE q6 (seller BIGINT, expires TIMESTAMP, avg_final DOUBLE, PRIMARY KEY (seller, expires));

INSERT INTO q6
WITH auction AS (SELECT auction_id AS id, item_name, initial_bid, date_time, expires, seller, category FROM nexmark WHERE event_type = 1),
     bid AS (SELECT auction, bidder, price, channel, date_time FROM nexmark WHERE event_type = 2)
SELECT Q.seller, Q.expires, avg(Q.final) OVER (PARTITION BY Q.seller ORDER BY Q.expires ROWS BETWEEN 10 PRECEDING AND CURRENT ROW)
FROM (
    SELECT max(B.price) AS final, A.seller, A.expires
    FROM auction AS A, bid AS B
    WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
    GROUP BY A.id, A.seller, A.expires
) AS Q;

SELECT * FROM q6 ORDER BY seller, expires LIMIT 5;
