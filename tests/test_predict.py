"""PREDICT is a table function usable wherever DuckDB takes a table."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

import sqlml

SETUP = """
CREATE TABLE customers AS
SELECT i AS id, (i % 40)::INTEGER AS tenure, ['basic', 'pro', 'team'][1 + i % 3] AS plan,
       CASE WHEN i % 17 = 0 THEN NULL ELSE (i % 89) * 1.0 END AS spend,
       ((i % 40) < 10 OR (i % 3 = 0 AND i % 7 < 3)) AS churned
FROM range(2000) AS t(i);
TRAIN MODEL churn USING lightgbm_classifier LABEL churned EXCLUDE (id)
  WITH (num_boost_round = 20, seed = 1) AS SELECT * FROM customers;
"""


@pytest.fixture
def trained(con):
    con.execute(SETUP)
    return con


def test_output_columns_and_types(trained):
    result = trained.sql("SELECT * FROM PREDICT(MODEL churn, TABLE customers) LIMIT 1")
    assert result.columns == [
        "id",
        "tenure",
        "plan",
        "spend",
        "churned",
        "prediction",
        "probability",
        "probabilities",
        "model_version",
    ]
    row = result.arrow().to_pylist()[0]
    assert isinstance(row["prediction"], bool)
    assert row["model_version"] == 1
    assert dict(row["probabilities"])[True] == pytest.approx(row["probability"])


def test_matches_booster_on_nulls_and_categories(trained):
    """NULL features reach the model as missing; categories use the stored mapping."""
    version = trained.catalog.get("churn")
    booster = lgb.Booster(model_str=version.model_text())
    table = trained.sql(
        "SELECT tenure, plan, spend, probability FROM PREDICT(MODEL churn, TABLE customers) ORDER BY id"
    ).arrow()
    codes = {c: float(i) for i, c in enumerate(["basic", "pro", "team"])}
    X = np.column_stack(
        [
            table["tenure"].to_numpy().astype(float),
            [codes[p] for p in table["plan"].to_pylist()],
            np.array([np.nan if v is None else v for v in table["spend"].to_pylist()]),
        ]
    )
    np.testing.assert_allclose(table["probability"].to_numpy(), booster.predict(X), atol=1e-12)


def test_unseen_category_is_missing_and_counted(trained):
    booster = lgb.Booster(model_str=trained.catalog.get("churn").model_text())
    got = trained.sql(
        "SELECT probability FROM PREDICT(MODEL churn, (SELECT 5 AS tenure, 'enterprise' AS plan, 10.0 AS spend))"
    ).fetchall()[0][0]
    assert got == pytest.approx(booster.predict(np.array([[5.0, np.nan, 10.0]]))[0], abs=1e-12)
    row = (
        trained.sql(
            "EVALUATE MODEL churn ON (SELECT * REPLACE (CASE WHEN id < 30 THEN 'enterprise' ELSE plan END AS plan) FROM customers)"
        )
        .arrow()
        .to_pylist()[0]
    )
    assert row["unseen_categories"] == 30


def test_in_joins_ctes_insert_and_copy(trained, tmp_path):
    con = trained
    joined = con.sql(
        "WITH recent AS (SELECT * FROM customers WHERE id >= 1990) "
        "SELECT c.id, p.prediction FROM PREDICT(MODEL churn, TABLE recent) AS p JOIN customers AS c ON c.id = p.id ORDER BY c.id"
    ).fetchall()
    assert [r[0] for r in joined] == list(range(1990, 2000))
    # PREDICT inside a CTE, reading an earlier CTE, in a UNION ALL
    inside = con.sql(
        "WITH recent AS (SELECT * FROM customers WHERE id >= 1990), "
        "scored AS (SELECT 'a' AS model, id FROM PREDICT(MODEL churn, TABLE recent) "
        "UNION ALL SELECT 'b', id FROM PREDICT(MODEL churn, (SELECT * FROM recent WHERE id > 1995))) "
        "SELECT model, count(*) FROM scored GROUP BY model ORDER BY model"
    ).fetchall()
    assert inside == [("a", 10), ("b", 4)]
    con.execute("CREATE TABLE scored (id BIGINT, churn_probability DOUBLE)")
    con.execute(
        "INSERT INTO scored SELECT id, probability FROM PREDICT(MODEL churn, (SELECT * FROM customers WHERE id < 100))"
    )
    assert con.sql("SELECT count(*) FROM scored").fetchall() == [(100,)]
    out = tmp_path / "scored.parquet"
    con.execute(f"COPY (SELECT id, prediction FROM PREDICT(MODEL churn, TABLE customers)) TO '{out}' (FORMAT parquet)")
    assert con.sql(f"SELECT count(*) FROM '{out}'").fetchall() == [(2000,)]
    # the same rows as the join-free query
    direct = con.sql(
        "SELECT id, probability FROM PREDICT(MODEL churn, (SELECT * FROM customers WHERE id < 100)) ORDER BY id"
    ).fetchall()
    assert con.sql("SELECT * FROM scored ORDER BY id").fetchall() == direct


def test_extra_columns_pass_through_and_versions_pin(trained):
    con = trained
    con.execute(
        "TRAIN MODEL churn USING lightgbm_classifier LABEL churned EXCLUDE (id) WITH (num_boost_round = 5) AS SELECT * FROM customers"
    )
    rows = con.sql(
        "SELECT DISTINCT model_version FROM PREDICT(MODEL churn VERSION 1, (SELECT *, 'x' AS note FROM customers))"
    ).fetchall()
    assert rows == [(1,)]
    assert con.sql("SELECT DISTINCT model_version FROM PREDICT(MODEL churn, TABLE customers)").fetchall() == [(2,)]
    assert (
        "note" in con.sql("SELECT * FROM PREDICT(MODEL churn, (SELECT *, 'x' AS note FROM customers)) LIMIT 1").columns
    )


def test_varchar_labels_come_back_as_varchar(con):
    con.execute(
        "CREATE TABLE f AS SELECT ['a', 'b', 'c'][1 + i % 3] AS kind, (i % 3) + (i % 7) / 10.0 AS x FROM range(900) AS t(i);"
        "TRAIN MODEL kinds USING lightgbm_classifier LABEL kind WITH (num_boost_round = 10) AS SELECT * FROM f"
    )
    table = con.sql("SELECT kind, prediction FROM PREDICT(MODEL kinds, TABLE f)").arrow()
    assert str(table.schema.field("prediction").type) == "string"
    assert table["prediction"].to_pylist() == table["kind"].to_pylist()


def test_python_objects_are_queryable(con):
    import pandas as pd
    import pyarrow as pa

    frame = pd.DataFrame({"x": np.arange(600) % 10 * 1.0, "y": (np.arange(600) % 10) > 4})  # noqa: F841 (queried by name)
    con.sql("TRAIN MODEL fromdf USING lightgbm_classifier LABEL y WITH (num_boost_round = 5) AS SELECT * FROM frame")
    arrow_rows = pa.table({"x": [1.0, 9.0]})  # noqa: F841 (queried by name)
    assert [r[0] for r in con.sql("SELECT prediction FROM PREDICT(MODEL fromdf, TABLE arrow_rows)").fetchall()] == [
        False,
        True,
    ]


def test_failed_statement_changes_nothing(trained):
    before = trained.sql("SELECT count(*) FROM customers").fetchall()
    with pytest.raises(sqlml.SqlmlError):
        trained.sql("INSERT INTO customers SELECT * FROM PREDICT(MODEL churn, TABLE customers)")
    assert trained.sql("SELECT count(*) FROM customers").fetchall() == before


def test_files_are_an_input_as_tables_are(trained, tmp_path):
    trained.execute(f"COPY customers TO '{tmp_path}/a.parquet' (FORMAT parquet)")
    trained.execute(f"COPY customers TO '{tmp_path}/b.csv' (FORMAT csv)")
    expected = trained.sql(
        "SELECT prediction, probability FROM PREDICT(MODEL churn, TABLE customers) ORDER BY ALL"
    ).fetchall()
    for path in (f"{tmp_path}/a.parquet", f"{tmp_path}/*.parquet", f"{tmp_path}/b.csv"):
        got = trained.sql(f"SELECT prediction, probability FROM PREDICT(MODEL churn, '{path}') ORDER BY ALL").fetchall()
        assert got == expected, path
    auc = trained.sql(f"SELECT auc FROM EVALUATE(MODEL churn, '{tmp_path}/a.parquet')").fetchall()
    assert auc == trained.sql("SELECT auc FROM EVALUATE(MODEL churn, TABLE customers)").fetchall()
    with pytest.raises(sqlml.SqlmlError, match="No files found|does not exist"):
        trained.sql(f"SELECT * FROM PREDICT(MODEL churn, '{tmp_path}/missing.parquet')")
