-- Nexmark q6, average selling price by seller: the average of each seller's last ten closing prices
-- (an auction's highest bid while it was open), an OVER aggregation over an updating query. Flink's own
-- q6 does not run (it reads B.dateTime, which it does not group by); this one orders the auctions by
-- their closing time, A.expires, and is an updating query: a higher bid changes an average.
-- Run alone (sqlml run queries/nexmark/q6.sql), it first writes a small Nexmark sample here: 20,000
-- events, 1 person, 3 auctions and 46 bids in every 50, one event per millisecond (bench/nexmark.py and
-- the tests stream bench/nexmark_gen.py's events through the same statements instead).
COPY (
    SELECT (CASE WHEN slot = 0 THEN 0 WHEN slot <= 3 THEN 1 ELSE 2 END)::TINYINT AS event_type,
           CASE WHEN slot = 0 THEN blk END AS person_id,
           CASE WHEN slot = 0 THEN 'person_' || blk END AS name,
           CASE WHEN slot = 0 THEN ['Phoenix', 'Los Angeles', 'San Francisco', 'Boise', 'Portland', 'Bend',
                                    'Redmond', 'Seattle', 'Kent', 'Cheyenne'][1 + (hash(i) % 10)::BIGINT] END AS city,
           CASE WHEN slot = 0 THEN ['AZ', 'CA', 'CA', 'ID', 'OR', 'OR', 'WA', 'WA', 'WA', 'WY'][1 + (hash(i) % 10)::BIGINT] END AS state,
           CASE WHEN slot BETWEEN 1 AND 3 THEN blk * 3 + slot - 1 END AS auction_id,
           CASE WHEN slot BETWEEN 1 AND 3 THEN 'item_' || (blk * 3 + slot - 1) END AS item_name,
           CASE WHEN slot BETWEEN 1 AND 3 THEN greatest(blk - (hash(i, 1) % 5)::BIGINT, 0) END AS seller,
           CASE WHEN slot BETWEEN 1 AND 3 THEN 10 + (blk * 3 + slot - 1) % 5 END AS category,
           CASE WHEN slot BETWEEN 1 AND 3 THEN 100 + (hash(i, 2) % 1000)::BIGINT END AS initial_bid,
           CASE WHEN slot > 3 THEN greatest(blk * 3 + 2 - (hash(i, 3) % 10)::BIGINT, 0) END AS auction,
           CASE WHEN slot > 3 THEN greatest(blk - (hash(i, 4) % 20)::BIGINT, 0) END AS bidder,
           CASE WHEN slot > 3 THEN 100 + ((hash(i, 5) % 1000)::BIGINT * (hash(i, 6) % 100)::BIGINT) // 10 END AS price,
           TIMESTAMP '2025-01-01' + to_milliseconds(i) AS date_time,
           CASE WHEN slot BETWEEN 1 AND 3 THEN TIMESTAMP '2025-01-01' + to_milliseconds(i + 1000 + (hash(i, 7) % 9000)::BIGINT) END AS expires,
           CASE WHEN slot > 3 THEN ['Google', 'Facebook', 'Baidu', 'Apple'][1 + (hash(i, 8) % 4)::BIGINT] END AS channel
    FROM (SELECT i, i % 50 AS slot, i // 50 AS blk FROM range(20000) AS t(i))
) TO 'nexmark_sample.parquet' (FORMAT parquet);

CREATE OR REPLACE STREAM nexmark (
    event_type TINYINT, person_id BIGINT, name VARCHAR, city VARCHAR, state VARCHAR,
    auction_id BIGINT, item_name VARCHAR, seller BIGINT, category BIGINT, initial_bid BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP, expires TIMESTAMP, channel VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (connector = 'files', path = 'nexmark_sample.parquet', format = 'parquet');

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
