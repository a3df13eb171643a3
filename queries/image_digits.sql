-- Handwritten digits from PNG files: LightGBM on the pixels, a CNN, and LightGBM on the CNN's
-- embedding, compared in one evaluation table; then images arriving as a stream, classified.
-- The 1,797 images (8 x 8, grayscale) are scikit-learn's digits, written by bench/digit_images.py
-- as <digit>_<index>.png; every fifth index is held out for the test.
CREATE OR REPLACE TABLE images AS
SELECT regexp_extract(filename, '([0-9])_[0-9]+\.png$', 1)::INTEGER AS digit,
       regexp_extract(filename, '_([0-9]+)\.png$', 1)::INTEGER % 5 = 0 AS test,
       CAST(pixels AS FLOAT[64]) AS pixels
FROM read_images('queries/data/digits/*.png', grayscale := true);

TRAIN MODEL digits_pixels USING lightgbm_classifier LABEL digit
  WITH (num_boost_round = 300, extra_trees = true, feature_fraction = 0.5, seed = 1, num_threads = 1)
AS SELECT pixels, digit FROM images WHERE NOT test;

TRAIN MODEL digits_cnn USING cnn_classifier LABEL digit WITH (image_shape = [1, 8, 8], seed = 1)
AS SELECT pixels, digit FROM images WHERE NOT test;

-- the CNN's penultimate layer as features for LightGBM
CREATE OR REPLACE TABLE embedded AS
SELECT embedding, digit, test FROM PREDICT(MODEL digits_cnn, (SELECT pixels, digit, test FROM images));

TRAIN MODEL digits_embedding USING lightgbm_classifier LABEL digit WITH (seed = 1, num_threads = 1)
AS SELECT embedding, digit FROM embedded WHERE NOT test;

SELECT 'lightgbm on pixels' AS model, round(accuracy, 3) AS accuracy, round(macro_f1, 3) AS macro_f1, rows
FROM EVALUATE(MODEL digits_pixels, (SELECT pixels, digit FROM images WHERE test))
UNION ALL
SELECT 'cnn', round(accuracy, 3), round(macro_f1, 3), rows
FROM EVALUATE(MODEL digits_cnn, (SELECT pixels, digit FROM images WHERE test))
UNION ALL
SELECT 'lightgbm on the cnn embedding', round(accuracy, 3), round(macro_f1, 3), rows
FROM EVALUATE(MODEL digits_embedding, (SELECT embedding, digit FROM embedded WHERE test))
ORDER BY accuracy DESC;

-- the held-out images of digits 3 and 8 as a stream of files, one event per file, each
-- classified by the CNN as it is read
CREATE OR REPLACE STREAM arriving (
    filename VARCHAR, last_modified TIMESTAMP, pixels FLOAT[],
    WATERMARK FOR last_modified AS last_modified - INTERVAL '1' SECOND
) WITH (connector = 'files', path = 'queries/data/digits/[38]_*[05].png', format = 'image', batch_size = 32);

CREATE OR REPLACE TABLE seen (filename VARCHAR, digit INTEGER, prediction INTEGER, probability DOUBLE);
INSERT INTO seen
SELECT filename, regexp_extract(filename, '([0-9])_[0-9]+\.png$', 1)::INTEGER, prediction, probability
FROM PREDICT(MODEL digits_cnn, (SELECT filename, CAST(pixels AS FLOAT[64]) AS pixels FROM arriving));

SELECT digit, count(*) AS images, count(*) FILTER (WHERE prediction = digit) AS right FROM seen GROUP BY digit ORDER BY digit;
