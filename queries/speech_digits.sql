-- Spoken digits: read WAV clips, turn them into MFCC features in SQL, train a recogniser on some
-- voices and test it on voices it never heard; then classify clips arriving as a stream of files.
-- The clips (1,000, 8 kHz, espeak-ng's voices with noise) come from bench/spoken_digits.py; a
-- clip's digit and voice are in its file name: <digit>_<voice>_<take>.wav.
CREATE OR REPLACE TABLE clips AS
SELECT regexp_extract(filename, '([0-9])_[^/]*$', 1)::INTEGER AS digit,
       regexp_extract(filename, '_([^_/]+)_[0-9]+\.wav$', 1) AS voice,
       duration,
       mfcc(samples, sample_rate) AS features
FROM read_audio('queries/data/spoken_digits/*.wav');

SELECT count(*) AS clips, count(DISTINCT voice) AS voices, round(avg(duration), 2) AS seconds, len(any_value(features)) AS features
FROM clips;

-- four voices are held out whole: the test is on speakers the model never heard
CREATE OR REPLACE TABLE held_out AS
SELECT unnest(['en-029+m6', 'en-gb-scotland+f2', 'en-gb-x-gbclan+m7', 'en-gb-x-rp+m3']) AS voice;

TRAIN MODEL spoken_digits USING lightgbm_classifier LABEL digit
  WITH (num_boost_round = 300, extra_trees = true, feature_fraction = 0.5, seed = 1, num_threads = 1)
AS SELECT features, digit FROM clips WHERE voice NOT IN (SELECT voice FROM held_out);

SELECT round(accuracy, 3) AS accuracy, round(macro_f1, 3) AS macro_f1, rows
FROM EVALUATE(MODEL spoken_digits, (SELECT features, digit FROM clips WHERE voice IN (SELECT voice FROM held_out)));

-- the held-out voices' clips as a stream of files, one event per file (event time: its
-- modification time), each classified as it is read
CREATE OR REPLACE STREAM incoming (
    filename VARCHAR, last_modified TIMESTAMP, sample_rate INTEGER, samples FLOAT[],
    WATERMARK FOR last_modified AS last_modified - INTERVAL '1' SECOND
) WITH (connector = 'files', path = 'queries/data/spoken_digits/*_en-gb-x-rp+m3_*.wav', format = 'audio', batch_size = 16);

CREATE OR REPLACE TABLE heard (filename VARCHAR, digit INTEGER, prediction INTEGER, probability DOUBLE);
INSERT INTO heard
SELECT filename, regexp_extract(filename, '([0-9])_[^/]*$', 1)::INTEGER, prediction, probability
FROM PREDICT(MODEL spoken_digits, (SELECT filename, mfcc(samples, sample_rate) AS features FROM incoming));

SELECT count(*) AS clips, round(avg((prediction = digit)::INTEGER), 3) AS accuracy FROM heard;
SELECT digit, count(*) AS clips, count(*) FILTER (WHERE prediction = digit) AS right FROM heard GROUP BY digit ORDER BY digit;
