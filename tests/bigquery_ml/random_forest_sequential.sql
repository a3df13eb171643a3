-- BigQuery ML's random forest classifier ("Create a random forest model"), on a sequential split.
CREATE OR REPLACE MODEL `bqml_tutorial.forest_model`
  OPTIONS (model_type = 'RANDOM_FOREST_CLASSIFIER', num_parallel_tree = 50, tree_method = 'HIST',
           early_stop = FALSE, subsample = 0.85, input_label_cols = ['income_bracket'],
           data_split_method = 'SEQ', data_split_col = 'functional_weight', data_split_eval_fraction = 0.25) AS
SELECT age, workclass, marital_status, education_num, occupation, hours_per_week, income_bracket, functional_weight
FROM `bigquery-public-data.ml_datasets.census_adult_income`;

SELECT * FROM ML.EVALUATE(MODEL `bqml_tutorial.forest_model`);

SELECT * FROM ML.ROC_CURVE(MODEL `bqml_tutorial.forest_model`);

SELECT * FROM ML.CONFUSION_MATRIX(MODEL `bqml_tutorial.forest_model`);
