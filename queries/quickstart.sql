-- sqlml quickstart: generate customers in DuckDB, train a churn model, evaluate it, score new rows.
CREATE OR REPLACE TABLE customers AS
SELECT
    i AS customer_id,
    (hash(i) % 60)::INTEGER AS tenure,
    ['basic', 'pro', 'team'][1 + (hash(i + 1) % 3)::INTEGER] AS plan,
    round(((hash(i + 2) % 10000) / 100.0), 2) AS spend,
    (hash(i + 3) % 5)::INTEGER AS support_calls,
    -- churn is likelier for short tenure, many support calls and the basic plan
    ((hash(i + 4) % 100) / 100.0) <
        0.05 + 0.4 * (tenure < 12)::INTEGER + 0.08 * support_calls + 0.1 * (plan = 'basic')::INTEGER AS churned
FROM range(5000) AS t(i);

TRAIN MODEL churn USING lightgbm_classifier
  LABEL churned
  EXCLUDE (customer_id)
  WITH (num_leaves = 15, learning_rate = 0.1, num_boost_round = 100, seed = 7)
AS SELECT * FROM customers;

EVALUATE MODEL churn;

SELECT customer_id, plan, tenure, prediction, round(probability, 3) AS probability
FROM PREDICT(MODEL churn, (SELECT * FROM customers WHERE customer_id < 5));

SHOW MODELS;

EXPLAIN MODEL churn;
