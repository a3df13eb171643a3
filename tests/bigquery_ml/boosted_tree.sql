-- From BigQuery ML's tutorial "Use a boosted tree model to predict income" (census income),
-- with the explainable-AI statements of "BigQuery Explainable AI overview".
CREATE OR REPLACE VIEW `bqml_tutorial.input_view` AS
SELECT age, workclass, marital_status, education_num, occupation, hours_per_week, income_bracket, functional_weight,
  CASE
    WHEN MOD(functional_weight, 10) < 8 THEN 'training'
    WHEN MOD(functional_weight, 10) = 8 THEN 'evaluation'
    WHEN MOD(functional_weight, 10) = 9 THEN 'prediction'
  END AS dataframe
FROM `bigquery-public-data.ml_datasets.census_adult_income`;

CREATE OR REPLACE MODEL `bqml_tutorial.booster_model`
  OPTIONS (model_type = 'BOOSTED_TREE_CLASSIFIER', booster_type = 'GBTREE', num_parallel_tree = 1,
           max_iterations = 50, tree_method = 'HIST', early_stop = FALSE, subsample = 0.85,
           input_label_cols = ['income_bracket'], enable_global_explain = TRUE) AS
SELECT * EXCEPT(functional_weight) FROM `bqml_tutorial.input_view` WHERE dataframe = 'training';

SELECT * FROM ML.EVALUATE(MODEL `bqml_tutorial.booster_model`,
  (SELECT * FROM `bqml_tutorial.input_view` WHERE dataframe = 'evaluation'));

SELECT * FROM ML.EVALUATE(MODEL `bqml_tutorial.booster_model`,
  (SELECT * FROM `bqml_tutorial.input_view` WHERE dataframe = 'evaluation'), STRUCT(0.55 AS threshold));

SELECT * FROM ML.PREDICT(MODEL `bqml_tutorial.booster_model`,
  (SELECT * FROM `bqml_tutorial.input_view` WHERE dataframe = 'prediction'));

SELECT * FROM ML.PREDICT(MODEL `bqml_tutorial.booster_model`,
  (SELECT * FROM `bqml_tutorial.input_view` WHERE dataframe = 'prediction'), STRUCT(0.55 AS threshold));

SELECT * FROM ML.FEATURE_IMPORTANCE(MODEL `bqml_tutorial.booster_model`) ORDER BY importance_gain DESC;

SELECT * FROM ML.EXPLAIN_PREDICT(MODEL `bqml_tutorial.booster_model`,
  (SELECT * FROM `bqml_tutorial.input_view` WHERE dataframe = 'prediction'), STRUCT(3 AS top_k_features));

SELECT * FROM ML.GLOBAL_EXPLAIN(MODEL `bqml_tutorial.booster_model`);

SELECT * FROM ML.TRAINING_INFO(MODEL `bqml_tutorial.booster_model`);

SELECT * FROM ML.ROC_CURVE(MODEL `bqml_tutorial.booster_model`,
  (SELECT * FROM `bqml_tutorial.input_view` WHERE dataframe = 'evaluation'));

SELECT * FROM ML.CONFUSION_MATRIX(MODEL `bqml_tutorial.booster_model`,
  (SELECT * FROM `bqml_tutorial.input_view` WHERE dataframe = 'evaluation'), STRUCT(0.55 AS threshold));
