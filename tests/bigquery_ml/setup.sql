-- Small local stand-ins for the public tables BigQuery ML's tutorials read, with the same
-- names and columns (generated, deterministic: u(i, k) is a uniform number from a hash).
CREATE SCHEMA IF NOT EXISTS ml_datasets;
CREATE SCHEMA IF NOT EXISTS bqml_tutorial;
CREATE SCHEMA IF NOT EXISTS census;
CREATE MACRO u(i, k) AS (hash(i * 7919 + k) % 1000003) / 1000003.0;

CREATE TABLE ml_datasets.penguins AS
SELECT
    ['Adelie Penguin (Pygoscelis adeliae)', 'Gentoo penguin (Pygoscelis papua)', 'Chinstrap penguin (Pygoscelis antarctica)'][1 + i % 3] AS species,
    ['Biscoe', 'Dream', 'Torgersen'][1 + (i // 3) % 3] AS island,
    35 + 5 * (i % 3) + 6 * u(i, 1) AS culmen_length_mm,
    14 + 4 * u(i, 2) AS culmen_depth_mm,
    CAST(180 + 12 * (i % 3) + 15 * u(i, 3) AS DOUBLE) AS flipper_length_mm,
    CASE WHEN i % 41 = 0 THEN NULL ELSE 2800 + 450 * (i % 3) + 20 * (15 * u(i, 3)) + 300 * u(i, 4) END AS body_mass_g,
    CASE WHEN u(i, 5) < 0.5 THEN 'MALE' ELSE 'FEMALE' END AS sex
FROM range(600) AS t(i);

CREATE TABLE ml_datasets.census_adult_income AS
SELECT
    CAST(18 + 50 * u(i, 1) AS BIGINT) AS age,
    [' Private', ' Self-emp-not-inc', ' Local-gov', ' State-gov'][1 + CAST(4 * u(i, 2) AS BIGINT) % 4] AS workclass,
    CAST(10000 + 1000000 * u(i, 3) AS BIGINT) AS functional_weight,
    CAST(4 + 12 * u(i, 4) AS BIGINT) AS education_num,
    [' Married-civ-spouse', ' Never-married', ' Divorced'][1 + CAST(3 * u(i, 5) AS BIGINT) % 3] AS marital_status,
    [' Exec-managerial', ' Craft-repair', ' Sales', ' Adm-clerical'][1 + CAST(4 * u(i, 6) AS BIGINT) % 4] AS occupation,
    CAST(20 + 40 * u(i, 7) AS BIGINT) AS hours_per_week,
    CASE WHEN 0.05 * (education_num - 10) + 0.03 * (hours_per_week - 40) / 4 + 0.01 * (age - 40)
              + (marital_status = ' Married-civ-spouse')::INT * 0.5 + u(i, 8) > 0.9
         THEN ' >50K' ELSE ' <=50K' END AS income_bracket
FROM range(3000) AS t(i);

CREATE TABLE bqml_tutorial.stationstats AS
SELECT
    'Station ' || i AS station_name,
    CAST(600 + 1800 * u(i, 1) * (1 + i % 4) AS DOUBLE) AS duration,
    CAST(100 + 5000 * u(i, 2) / (1 + i % 4) AS BIGINT) AS num_trips,
    CAST(0.5 + 3 * (i % 4) + u(i, 3) AS DOUBLE) AS distance_from_city_center,
    CASE WHEN i % 2 = 0 THEN 'weekday' ELSE 'weekend' END AS isweekday
FROM range(400) AS t(i);
