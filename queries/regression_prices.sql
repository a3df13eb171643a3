-- Regression: house prices from size, rooms and district (a categorical feature).
CREATE OR REPLACE TABLE houses AS
SELECT
    i AS id,
    40 + (hash(i) % 160)::INTEGER AS size_m2,
    1 + (hash(i + 1) % 6)::INTEGER AS rooms,
    ['north', 'south', 'centre', 'harbour'][1 + (hash(i + 2) % 4)::INTEGER] AS district,
FROM range(4000) AS t(i);

CREATE OR REPLACE TABLE sales AS
SELECT *, size_m2 * 3000 + rooms * 10000
          + CASE district WHEN 'centre' THEN 150000 WHEN 'harbour' THEN 80000 ELSE 0 END
          + (hash(id + 9) % 20000)::DOUBLE AS price
FROM houses;

TRAIN MODEL price USING lightgbm_regressor LABEL price EXCLUDE (id)
  WITH (num_boost_round = 200, learning_rate = 0.1, early_stopping_rounds = 20, seed = 3)
AS SELECT * FROM sales;

EVALUATE MODEL price;

SELECT district, round(avg(price)) AS actual, round(avg(prediction)) AS predicted
FROM PREDICT(MODEL price, TABLE sales)
GROUP BY district ORDER BY district;
