-- From BigQuery ML's tutorial "Create a classification model with BigQuery ML" (census income).
CREATE OR REPLACE VIEW `census.input_data` AS
SELECT age, workclass, marital_status, education_num, occupation, hours_per_week, income_bracket,
  CASE
    WHEN MOD(functional_weight, 10) < 8 THEN 'training'
    WHEN MOD(functional_weight, 10) = 8 THEN 'evaluation'
    WHEN MOD(functional_weight, 10) = 9 THEN 'prediction'
  END AS dataframe
FROM `bigquery-public-data.ml_datasets.census_adult_income`;

CREATE OR REPLACE MODEL `census.census_model`
  OPTIONS (model_type = 'logistic_reg', auto_class_weights = TRUE, data_split_method = 'NO_SPLIT',
           input_label_cols = ['income_bracket'], max_iterations = 15) AS
SELECT * EXCEPT(dataframe) FROM `census.input_data` WHERE dataframe = 'training';

SELECT * FROM ML.EVALUATE(MODEL `census.census_model`,
  (SELECT * FROM `census.input_data` WHERE dataframe = 'evaluation'));

SELECT * FROM ML.PREDICT(MODEL `census.census_model`,
  (SELECT * FROM `census.input_data` WHERE dataframe = 'prediction'));

SELECT * FROM ML.CONFUSION_MATRIX(MODEL `census.census_model`,
  (SELECT * FROM `census.input_data` WHERE dataframe = 'evaluation'));

SELECT * FROM ML.ROC_CURVE(MODEL `census.census_model`,
  (SELECT * FROM `census.input_data` WHERE dataframe = 'evaluation'), GENERATE_ARRAY(0.4, 0.6, 0.01));
