-- Ranking: order search results within each query by graded relevance (0-3).
CREATE OR REPLACE TABLE results AS
SELECT
    q AS query_id,
    d AS doc_id,
    (hash(q * 100 + d) % 100) / 100.0 AS text_match,
    (hash(q * 100 + d + 1) % 100) / 100.0 AS clicks_rate,
    (hash(q * 100 + d + 2) % 50)::INTEGER AS age_days,
    least(3, floor(3.5 * text_match * clicks_rate + (hash(q * 7 + d) % 10) / 20.0))::INTEGER AS relevance
FROM range(600) AS a(q), range(10) AS b(d)
ORDER BY query_id, doc_id;

TRAIN MODEL search USING lightgbm_ranker LABEL relevance GROUP query_id EXCLUDE (doc_id)
  WITH (num_boost_round = 50, seed = 5)
AS SELECT * FROM results;

EVALUATE MODEL search;

SELECT query_id, doc_id, relevance, round(prediction, 3) AS score
FROM PREDICT(MODEL search, (SELECT * FROM results WHERE query_id = 0))
ORDER BY score DESC
LIMIT 5;
