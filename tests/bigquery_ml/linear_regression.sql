-- From BigQuery ML's tutorial "Create a linear regression model" (penguins).
CREATE OR REPLACE MODEL `bqml_tutorial.penguins_model`
  OPTIONS (model_type = 'linear_reg', input_label_cols = ['body_mass_g']) AS
SELECT * FROM `bigquery-public-data.ml_datasets.penguins` WHERE body_mass_g IS NOT NULL;

SELECT * FROM ML.EVALUATE(MODEL `bqml_tutorial.penguins_model`);

SELECT * FROM ML.EVALUATE(MODEL `bqml_tutorial.penguins_model`,
  (SELECT * FROM `bigquery-public-data.ml_datasets.penguins` WHERE body_mass_g IS NOT NULL));

SELECT * FROM ML.PREDICT(MODEL `bqml_tutorial.penguins_model`,
  (SELECT * FROM `bigquery-public-data.ml_datasets.penguins` WHERE island = 'Biscoe'));

SELECT * FROM ML.EXPLAIN_PREDICT(MODEL `bqml_tutorial.penguins_model`,
  (SELECT * FROM `bigquery-public-data.ml_datasets.penguins` WHERE island = 'Biscoe'), STRUCT(3 AS top_k_features));

SELECT * FROM ML.GLOBAL_EXPLAIN(MODEL `bqml_tutorial.penguins_model`);
