-- From BigQuery ML's tutorial "Create a PCA model" (dimensionality reduction).
CREATE OR REPLACE MODEL `bqml_tutorial.penguins_pca`
  OPTIONS (model_type = 'PCA', num_principal_components = 2) AS
SELECT culmen_length_mm, culmen_depth_mm, flipper_length_mm
FROM `bigquery-public-data.ml_datasets.penguins`;

SELECT * FROM ML.EVALUATE(MODEL `bqml_tutorial.penguins_pca`);

SELECT * FROM ML.PREDICT(MODEL `bqml_tutorial.penguins_pca`,
  (SELECT culmen_length_mm, culmen_depth_mm, flipper_length_mm FROM `bigquery-public-data.ml_datasets.penguins`));
