-- Five model families on the same data, compared side by side; then k-means segments and PCA.
CREATE OR REPLACE TABLE customers AS
SELECT
    i AS customer_id,
    (hash(i) % 60)::INTEGER AS tenure,
    ['basic', 'pro', 'team'][1 + (hash(i + 1) % 3)::INTEGER] AS plan,
    round(((hash(i + 2) % 10000) / 100.0), 2) AS spend,
    (hash(i + 3) % 5)::INTEGER AS support_calls,
    ((hash(i + 4) % 100) / 100.0) <
        0.05 + 0.4 * (tenure < 12)::INTEGER + 0.08 * support_calls + 0.1 * (plan = 'basic')::INTEGER AS churned
FROM range(5000) AS t(i);

CREATE OR REPLACE TABLE training AS SELECT * EXCLUDE (customer_id) FROM customers WHERE customer_id % 5 <> 0;
CREATE OR REPLACE TABLE holdout AS SELECT * FROM customers WHERE customer_id % 5 = 0;

-- the same statement for every family; the scikit-learn ones standardise and one-hot inside the model
TRAIN MODEL zoo_boosted USING lightgbm_classifier LABEL churned WITH (num_leaves = 15, seed = 7) AS SELECT * FROM training;
TRAIN MODEL zoo_forest USING random_forest_classifier LABEL churned WITH (seed = 7) AS SELECT * FROM training;
TRAIN MODEL zoo_logistic USING logistic_classifier LABEL churned WITH (C = 0.5) AS SELECT * FROM training;
TRAIN MODEL zoo_bayes USING naive_bayes LABEL churned AS SELECT * FROM training;
TRAIN MODEL zoo_knn USING knn_classifier LABEL churned WITH (n_neighbors = 25) AS SELECT * FROM training;

-- one table, side by side: PREDICT is a table function, so its rows union, join and aggregate like any other
WITH scored AS (
    SELECT 'zoo_boosted' AS model, churned, prediction, probability FROM PREDICT(MODEL zoo_boosted, TABLE holdout)
    UNION ALL
    SELECT 'zoo_forest', churned, prediction, probability FROM PREDICT(MODEL zoo_forest, TABLE holdout)
    UNION ALL
    SELECT 'zoo_logistic', churned, prediction, probability FROM PREDICT(MODEL zoo_logistic, TABLE holdout)
    UNION ALL
    SELECT 'zoo_bayes', churned, prediction, probability FROM PREDICT(MODEL zoo_bayes, TABLE holdout)
    UNION ALL
    SELECT 'zoo_knn', churned, prediction, probability FROM PREDICT(MODEL zoo_knn, TABLE holdout)
)
SELECT
    model,
    count(*) AS rows,
    round(avg((prediction = churned)::INTEGER), 4) AS accuracy,
    round(-avg(ln(greatest(CASE WHEN churned THEN probability ELSE 1 - probability END, 1e-15))), 4) AS logloss,
    round(avg((probability - churned::INTEGER) ^ 2), 4) AS brier
FROM scored
GROUP BY model
ORDER BY logloss;

-- EVALUATE gives every metric of the task (AUC among them) for one model at a time
EVALUATE MODEL zoo_logistic ON TABLE holdout;

-- k-means: customer segments (no LABEL); clusters are numbered from 1
TRAIN MODEL segments USING kmeans WITH (n_clusters = 4, seed = 1)
AS SELECT tenure, plan, spend, support_calls FROM customers;

SELECT cluster, count(*) AS customers, round(avg(tenure), 1) AS tenure, round(avg(spend), 1) AS spend,
       round(avg(churned::INTEGER), 3) AS churn_rate
FROM PREDICT(MODEL segments, TABLE customers)
GROUP BY cluster
ORDER BY cluster;

EVALUATE MODEL segments ON TABLE customers;

-- PCA: two components of the numbers, a vector feature for the next model
TRAIN MODEL shape USING pca WITH (n_components = 2) AS SELECT tenure, spend, support_calls FROM customers;

DESCRIBE MODEL shape;

TRAIN MODEL churn_on_components USING logistic_classifier LABEL churned
AS SELECT churned, components FROM PREDICT(MODEL shape, (SELECT * FROM customers WHERE customer_id % 5 <> 0));

EVALUATE MODEL churn_on_components ON (SELECT * FROM PREDICT(MODEL shape, TABLE holdout));
