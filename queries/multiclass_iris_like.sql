-- Multiclass: three species told apart by two measurements; labels are VARCHAR and come back as VARCHAR.
CREATE OR REPLACE TABLE flowers AS
SELECT
    i AS id,
    ['setosa', 'versicolor', 'virginica'][1 + i % 3] AS species,
    (i % 3) * 1.5 + (hash(i) % 100) / 80.0 AS petal_length,
    (i % 3) * 0.6 + (hash(i + 7) % 100) / 150.0 AS petal_width
FROM range(3000) AS t(i);

TRAIN MODEL species USING lightgbm_classifier LABEL species EXCLUDE (id)
  WITH (num_boost_round = 50, seed = 1)
AS SELECT * FROM flowers;

EVALUATE MODEL species ON (SELECT * FROM flowers WHERE id % 10 = 0);

SELECT species AS actual, prediction, count(*) AS n
FROM PREDICT(MODEL species, TABLE flowers)
GROUP BY ALL ORDER BY ALL;
