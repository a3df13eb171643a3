-- Text classification: a spam filter trained on the words of messages, in SQL.
-- TEXT (subject, body) marks the columns as free text: tokenized, hashed and reduced to the
-- buckets that best separate spam from ham (chi-squared), all stored with the model.
-- Then new messages arrive as a stream of JSON lines and are scored with the same featurizer.
CREATE OR REPLACE TABLE messages AS
WITH vocabulary AS (
    SELECT ['free', 'winner', 'prize', 'cash', 'offer', 'click', 'urgent', 'credit', 'bonus', 'deal'] AS spammy,
           ['meeting', 'lunch', 'report', 'project', 'tomorrow', 'thanks', 'review', 'schedule', 'notes', 'call'] AS work,
           ['the', 'a', 'you', 'we', 'for', 'your', 'this', 'today', 'please', 'now', 'here', 'is'] AS common
), labelled AS (
    SELECT i AS id, (hash(i) % 3 = 0) AS is_spam FROM range(3000) AS t(i)
)
SELECT id, is_spam,
       -- a message draws 40% of its words from its own kind, the rest from common words
       array_to_string(list_transform(range(3), lambda j:
           CASE WHEN hash(id * 31 + j) % 10 < 4 THEN (CASE WHEN is_spam THEN spammy ELSE work END)[1 + (hash(id * 7 + j) % 10)::BIGINT]
                ELSE common[1 + (hash(id * 11 + j) % 12)::BIGINT] END), ' ') AS subject,
       CASE WHEN id % 50 = 0 THEN NULL  -- a few messages have no body: an empty document
            ELSE array_to_string(list_transform(range(12), lambda j:
                CASE WHEN hash(id * 131 + j) % 10 < 4 THEN (CASE WHEN is_spam THEN spammy ELSE work END)[1 + (hash(id * 17 + j) % 10)::BIGINT]
                     ELSE common[1 + (hash(id * 13 + j) % 12)::BIGINT] END), ' ') END AS body
FROM labelled, vocabulary;

TRAIN MODEL spam USING lightgbm_classifier LABEL is_spam TEXT (subject, body)
WITH (ngrams = 2, text_features = 200, num_boost_round = 50)
AS SELECT is_spam, subject, body FROM messages WHERE id % 5 <> 0;

EVALUATE MODEL spam ON (SELECT * FROM messages WHERE id % 5 = 0);

-- the words that separate spam from ham best (chi-squared on the training rows)
SELECT feature, round(score, 1) AS chi2 FROM FEATURE_RANKING(MODEL spam) LIMIT 5;

-- the featurizer's building blocks are SQL functions too
SELECT tokens('Claim your FREE prize now!') AS words, ngrams(tokens('Claim your FREE prize now!'), 2) AS bigrams;

-- new messages, as a stream of JSON lines
COPY (
    SELECT 'm' || i AS message_id, TIMESTAMP '2025-06-01 09:00:00' + INTERVAL (i) MINUTE AS ts,
           CASE WHEN i % 2 = 0 THEN 'urgent offer' ELSE 'project meeting' END AS subject,
           CASE WHEN i % 2 = 0 THEN 'click here now for your free cash prize' ELSE 'thanks for the notes see you at lunch tomorrow' END AS body
    FROM range(6) AS t(i)
) TO 'text_messages.jsonl' (FORMAT json);

CREATE OR REPLACE STREAM inbox (
    message_id VARCHAR, ts TIMESTAMP, subject VARCHAR, body VARCHAR,
    WATERMARK FOR ts AS ts - INTERVAL '1' MINUTE
) WITH (connector = 'files', path = 'text_messages.jsonl', format = 'jsonl');

SELECT message_id, subject, prediction AS is_spam, round(probability, 3) AS probability
FROM PREDICT(MODEL spam, TABLE inbox);
