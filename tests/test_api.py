"""The Python face: parameters in every statement kind that takes values, DuckDB's result
verbs, results bound to their model versions, cursors, and the notebook magic."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest

import sqlml
from sqlml.errors import BindError, ExecutionError


@pytest.fixture
def days(con):
    con.execute(
        "CREATE TABLE days AS SELECT i AS id, i % 7 AS day, (i % 3 = 0) AS y, (i % 3) * 1.0 + (i % 11) / 20 AS x "
        "FROM range(1400) t(i)"
    )
    return con


def count(result: sqlml.Result | None) -> int:
    assert result is not None
    return result.fetchall()[0][0]


def test_parameters_in_duckdb_statements(days):
    assert count(days.sql("SELECT count(*) FROM days WHERE day = ?", params=[3])) == 200
    assert count(days.sql("SELECT count(*) FROM days WHERE day = $d AND y = $flag", params={"d": 3, "flag": True})) > 0
    days.execute("CREATE TABLE picked AS SELECT * FROM days WHERE day = ?", [4])
    days.execute("INSERT INTO picked SELECT * FROM days WHERE day = $1", [5])
    assert count(days.sql("SELECT count(*) FROM picked")) == 400


def test_parameters_in_train_evaluate_and_predict(days):
    days.execute(
        "TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = ?, num_threads = 1, validation = 0) "
        "AS SELECT y, x FROM days WHERE day <> ?",
        [7, 6],
    )
    meta = days.catalog.get("m").meta
    assert meta["num_boost_round"] == 7 and meta["rows"] == 1200  # the value reached LightGBM and the query
    evaluated = days.sql("EVALUATE MODEL m ON (SELECT * FROM days WHERE day = ?)", params=[6]).arrow()
    assert evaluated["rows"][0].as_py() == 200
    named = days.sql("EVALUATE MODEL m ON (SELECT * FROM days WHERE day = $day)", params={"day": 6}).arrow()
    assert named["accuracy"][0].as_py() == evaluated["accuracy"][0].as_py()
    scored = days.sql(
        "SELECT count(*) FROM PREDICT(MODEL m, (SELECT * FROM days WHERE day = ?)) WHERE probability > ?",
        params=[6, 0.5],
    )
    expected = days.sql(
        "SELECT count(*) FROM PREDICT(MODEL m, (SELECT * FROM days WHERE day = 6)) WHERE probability > 0.5"
    )
    assert count(scored) == count(expected) > 0


def test_a_parameter_is_a_value_never_sql(days):
    days.execute("TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = 2) AS SELECT y, x FROM days")
    hostile = "0) OR TRUE; DROP TABLE days; --"
    for sql in [
        "SELECT count(*) FROM days WHERE CAST(day AS VARCHAR) = ?",
        "SELECT count(*) FROM PREDICT(MODEL m, (SELECT * FROM days WHERE CAST(day AS VARCHAR) = ?))",
    ]:
        assert count(days.sql(sql, params=[hostile])) == 0
    with pytest.raises(ExecutionError, match="no rows"):
        days.sql("EVALUATE MODEL m ON (SELECT * FROM days WHERE CAST(day AS VARCHAR) = ?)", params=[hostile])
    with pytest.raises(BindError, match="must be a literal|Bad value"):
        days.execute("TRAIN MODEL z USING lightgbm_classifier LABEL y WITH (objective = ?) AS SELECT y, x FROM days",
                     [hostile])  # fmt: skip
    assert count(days.sql("SELECT count(*) FROM days")) == 1400


def test_parameter_mistakes_are_errors_that_say_which(days):
    days.execute("TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = 2) AS SELECT y, x FROM days")
    with pytest.raises(BindError, match=r"No value for parameter \$2"):
        days.sql("EVALUATE MODEL m ON (SELECT * FROM days WHERE day = ? AND id > ?)", params=[1])
    with pytest.raises(BindError, match=r"Unused: \$2"):
        days.sql("EVALUATE MODEL m ON (SELECT * FROM days WHERE day = ?)", params=[1, 2])
    with pytest.raises(BindError, match="one statement"):
        days.sql("SELECT 1; SELECT ?", params=[1])
    with pytest.raises(ExecutionError):
        days.sql("SELECT ? + ?", params=[1]).fetchall()
    days.execute("CREATE STREAM ev (k BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'python')")
    with pytest.raises(BindError, match="continuous query cannot take parameters"):
        days.sql("SELECT * FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) WHERE k = ?", params=[1])


def test_result_verbs_match_duckdb(con):
    import duckdb

    sql = "SELECT range AS n, range * 0.5 AS half, [range, 1] AS pair FROM range(5)"
    ours, theirs = con.sql(sql), duckdb.sql(sql)
    assert ours.fetchall() == theirs.fetchall()
    assert ours.columns == theirs.columns and ours.types == [str(t) for t in theirs.types]
    assert ours.fetchone() == (0, 0.0, [0, 1])
    assert ours.fetchmany(3) == [(1, 0.5, [1, 1]), (2, 1.0, [2, 1]), (3, 1.5, [3, 1])]
    assert ours.fetchmany(3) == [(4, 2.0, [4, 1])] and ours.fetchone() is None
    np.testing.assert_array_equal(ours.fetchnumpy()["n"], np.arange(5))
    assert isinstance(ours.to_arrow_table(), pa.Table) and ours.to_arrow_table().equals(ours.arrow())
    reader = ours.to_arrow_reader(batch_size=2)
    assert isinstance(reader, pa.RecordBatchReader) and [len(b) for b in reader] == [2, 2, 1]
    assert repr(ours) == repr(duckdb.sql(sql))
    assert ours.df()["n"].tolist() == [0, 1, 2, 3, 4]


def test_results_keep_the_model_version_they_were_made_with(days):
    train = "TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = {}, num_threads = 1) AS SELECT y, x FROM days"
    days.execute(train.format(2))
    first = days.sql("SELECT model_version, probability FROM PREDICT(MODEL m, TABLE days)")
    before = first.fetchall()
    days.execute(train.format(30))
    days.execute("DROP MODEL m VERSION 1")
    assert first.fetchall() == before and {v for v, _ in before} == {1}
    assert {
        v for v, _ in days.sql("SELECT model_version, probability FROM PREDICT(MODEL m, TABLE days)").fetchall()
    } == {2}


def test_cursors_serve_threads(days):
    days.execute("TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = 2) AS SELECT y, x FROM days")
    counts: dict[int, int] = {}

    def score(day: int) -> None:
        cur = days.cursor()
        counts[day] = count(cur.sql("SELECT count(*) FROM PREDICT(MODEL m, (SELECT * FROM days WHERE day = ?))",
                                    params=[day]))  # fmt: skip

    threads = [threading.Thread(target=score, args=(d,)) for d in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == {0: 200, 1: 200, 2: 200, 3: 200}


def test_cell_magic_runs_sql_with_the_notebook_variables(tmp_path, monkeypatch, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("SQLML_CATALOG", str(tmp_path / "cat"))
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "sqlml.magic")
    shell.user_ns["frame"] = pa.table({"x": [1, 2, 3]})
    result = shell.run_cell_magic("sqlml", "", "SELECT sum(x) AS total FROM frame")
    assert result.fetchall() == [(6,)]
    assert shell.run_cell_magic("sqlml", "", "EVALUATE MODEL nope") is None
    assert "error: Unknown model 'nope'." in capsys.readouterr().out


def test_parameters_name_model_versions(days):
    for rounds in (2, 3):
        days.execute(
            f"TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = {rounds}) AS SELECT y, x FROM days"
        )
    assert days.sql(
        "SELECT DISTINCT model_version FROM PREDICT(MODEL m VERSION ?, TABLE days)", params=[1]
    ).fetchall() == [(1,)]
    assert ("model", "version", "1") in days.sql("DESCRIBE MODEL m VERSION $v", params={"v": 1}).fetchall()
    assert days.sql("EXPLAIN MODEL m VERSION ?", params=[2]).fetchall()
    assert (
        days.sql("EVALUATE MODEL m VERSION ? ON (SELECT * FROM days WHERE day = ?)", params=[1, 3])
        .arrow()["version"][0]
        .as_py()
        == 1
    )
    with pytest.raises(BindError, match="Bad VERSION 1 OR 1=1"):
        days.sql("DESCRIBE MODEL m VERSION ?", params=["1 OR 1=1"])
    days.execute("DROP MODEL m VERSION ?", [1])
    assert days.catalog.versions("m") == [2]


def test_a_training_querys_parameter_values_are_kept_with_its_text(days):
    days.execute(
        "TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = ?) AS SELECT y, x FROM days WHERE day > ?",
        [2, 4],
    )
    described = {n: v for s, n, v in days.sql("DESCRIBE MODEL m").fetchall() if s == "model"}
    assert described["training_sql"] == "SELECT y, x FROM days WHERE day > $2"
    assert described["parameters"] == "{'2': 4}"  # the query's own; num_boost_round shows as itself


def test_parameters_of_the_wrong_shape_are_errors(con):
    for bad in ("abc", 5, None.__class__):
        with pytest.raises(BindError, match="Parameters are a list or a dict"):
            con.sql("SELECT ?", params=bad)
