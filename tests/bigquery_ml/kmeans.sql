-- From BigQuery ML's tutorial "Create a k-means model to cluster London bicycle hires" (stations).
CREATE OR REPLACE MODEL `bqml_tutorial.london_station_clusters`
  OPTIONS (model_type = 'kmeans', num_clusters = 4) AS
SELECT * EXCEPT(station_name, isweekday) FROM `bqml_tutorial.stationstats`;

SELECT * FROM ML.EVALUATE(MODEL `bqml_tutorial.london_station_clusters`);

SELECT * EXCEPT(nearest_centroids_distance)
FROM ML.PREDICT(MODEL `bqml_tutorial.london_station_clusters`,
  (SELECT * FROM `bqml_tutorial.stationstats` WHERE station_name LIKE '%1%'));
