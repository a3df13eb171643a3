-- BigQuery ML's census-income tutorial, as written for BigQuery, on a generated stand-in for its public table;
-- then tuning, explanations and diagnostics, and sqlml's own spelling of the same results, composed in SQL.
CREATE SCHEMA IF NOT EXISTS ml_datasets;
CREATE SCHEMA IF NOT EXISTS census;
CREATE OR REPLACE TABLE ml_datasets.census_adult_income AS
SELECT
    CAST(18 + (hash(i, 1) % 50) AS BIGINT) AS age,
    [' Private', ' Self-emp-not-inc', ' Local-gov', ' State-gov'][(1 + hash(i, 2) % 4)::BIGINT] AS workclass,
    CAST(10000 + hash(i, 3) % 1000000 AS BIGINT) AS functional_weight,
    CAST(4 + hash(i, 4) % 12 AS BIGINT) AS education_num,
    [' Married-civ-spouse', ' Never-married', ' Divorced'][(1 + hash(i, 5) % 3)::BIGINT] AS marital_status,
    [' Exec-managerial', ' Craft-repair', ' Sales', ' Adm-clerical'][(1 + hash(i, 6) % 4)::BIGINT] AS occupation,
    CAST(20 + hash(i, 7) % 40 AS BIGINT) AS hours_per_week,
    CASE WHEN 0.05 * (education_num - 10) + 0.03 * (hours_per_week - 40) / 4 + 0.01 * (age - 40)
              + (marital_status = ' Married-civ-spouse')::INT * 0.5 + (hash(i, 8) % 1000) / 1000.0 > 0.9
         THEN ' >50K' ELSE ' <=50K' END AS income_bracket
FROM range(4000) AS t(i);

-- BigQuery ML, unchanged: backquoted names, MOD, * EXCEPT, OPTIONS, STRUCT arguments
CREATE OR REPLACE VIEW `census.input_data` AS
SELECT * EXCEPT(functional_weight),
  CASE WHEN MOD(functional_weight, 10) < 8 THEN 'training'
       WHEN MOD(functional_weight, 10) = 8 THEN 'evaluation'
       ELSE 'prediction' END AS dataframe
FROM `bigquery-public-data.ml_datasets.census_adult_income`;

CREATE OR REPLACE MODEL `census.income_model`
  TRANSFORM (ML.STANDARD_SCALER(age) OVER () AS age, ML.QUANTILE_BUCKETIZE(hours_per_week, 4) OVER () AS hours,
             ML.FEATURE_CROSS(STRUCT(workclass, occupation)) AS work, education_num, marital_status, income_bracket)
  OPTIONS (model_type = 'BOOSTED_TREE_CLASSIFIER', input_label_cols = ['income_bracket'], max_iterations = 60,
           learn_rate = HPARAM_RANGE(0.03, 0.3), max_tree_depth = HPARAM_CANDIDATES([3, 5, 8]), num_trials = 6,
           hparam_tuning_objectives = ['roc_auc'], data_split_method = 'RANDOM', data_split_eval_fraction = 0.25)
AS SELECT * EXCEPT(dataframe) FROM `census.input_data` WHERE dataframe = 'training';

SELECT * FROM ML.EVALUATE(MODEL `census.income_model`,
  (SELECT * FROM `census.input_data` WHERE dataframe = 'evaluation'), STRUCT(0.5 AS threshold));

SELECT trial_id, hyperparameters, eval_loss, is_optimal FROM ML.TRIAL_INFO(MODEL `census.income_model`);

SELECT predicted_income_bracket, predicted_income_bracket_probs, age, occupation
FROM ML.PREDICT(MODEL `census.income_model`, (SELECT * FROM `census.input_data` WHERE dataframe = 'prediction'))
LIMIT 5;

SELECT predicted_income_bracket, probability, top_feature_attributions
FROM ML.EXPLAIN_PREDICT(MODEL `census.income_model`,
  (SELECT * FROM `census.input_data` WHERE dataframe = 'prediction'), STRUCT(3 AS top_k_features))
LIMIT 5;

SELECT * FROM ML.CONFUSION_MATRIX(MODEL `census.income_model`);
SELECT * FROM ML.FEATURE_IMPORTANCE(MODEL `census.income_model`) ORDER BY importance_gain DESC;
SELECT * FROM ML.GLOBAL_EXPLAIN(MODEL `census.income_model`);

-- sqlml's spelling: the same results are tables, so they join, filter and store
CREATE MODEL `census.income_logistic`
  OPTIONS (model_type = 'logistic_reg', input_label_cols = ['income_bracket'], auto_class_weights = TRUE)
AS SELECT * EXCEPT(dataframe) FROM `census.input_data` WHERE dataframe = 'training';

SELECT e.model, e.auc, e.logloss, m.trainer
FROM (SELECT * FROM EVALUATE(MODEL income_model, (SELECT * FROM census.input_data WHERE dataframe = 'evaluation'))
      UNION ALL
      SELECT * FROM EVALUATE(MODEL income_logistic, (SELECT * FROM census.input_data WHERE dataframe = 'evaluation'))) e
JOIN MODELS() m ON m.name = e.model
ORDER BY e.auc DESC;

SELECT threshold, recall, false_positive_rate FROM ROC_CURVE(MODEL income_model)
WHERE false_positive_rate <= 0.1 ORDER BY recall DESC LIMIT 3;
