"""One test per class of defect found by trying sqlml as a demanding new user would: silent
wrong answers, exceptions that escaped, and states a user could not get out of."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

import sqlml
from tests.conftest import ROOT

TABLE = "CREATE TABLE t AS SELECT i * 1.0 AS x, (i * 7 % 13) * 1.0 AS z, (i % 3 = 0) AS y FROM range(600) AS t(i)"
TRAIN = "TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = 5, num_threads = 1) AS SELECT * FROM t"


@pytest.fixture
def trained(con):
    con.execute(TABLE)
    con.execute(TRAIN)
    return con


# -- silent wrong answers -------------------------------------------------------------------
def test_predict_outputs_replace_input_columns_of_the_same_name(trained):
    scored = trained.sql(
        "SELECT * FROM PREDICT(MODEL m, (SELECT x, z, 'old' AS prediction, 0.5 AS probability, 7 AS model_version FROM t))"
    )
    assert scored.columns == ["x", "z", "prediction", "probability", "probabilities", "model_version"]
    fresh = trained.sql("SELECT prediction, probability, model_version FROM PREDICT(MODEL m, TABLE t)").fetchall()
    again = trained.sql(
        "SELECT prediction, probability, model_version FROM PREDICT(MODEL m, (SELECT * FROM PREDICT(MODEL m, TABLE t)))"
    )
    assert again.fetchall() == fresh


def test_binding_does_not_depend_on_what_ran_before(tmp_path, trained):
    """PREDICT nested in PREDICT, and inside TRAIN's and EVALUATE's queries, in a new session."""
    con = sqlml.connect(catalog=trained.catalog.root, connection=trained.connection)
    inner = "(SELECT x, z, y, probability AS p FROM PREDICT(MODEL m, TABLE t))"
    assert con.sql(f"SELECT count(*) FROM PREDICT(MODEL m, {inner})").fetchall() == [(600,)]
    fresh = sqlml.connect(catalog=trained.catalog.root, connection=duckdb.connect())
    fresh.execute(TABLE)
    fresh.execute(
        f"TRAIN MODEL stacked USING lightgbm_classifier LABEL y WITH (num_boost_round = 3) AS SELECT * FROM {inner}"
    )
    assert fresh.sql(f"EVALUATE MODEL m ON {inner}").fetchall()[0][2] == 600


def test_parameter_aliases_are_honoured_and_reported(trained):
    trained.execute(
        "TRAIN MODEL a USING lightgbm_classifier LABEL y WITH (num_iterations = 7, random_state = 3, num_leaf = 5) AS SELECT * FROM t"
    )
    described = {(s, n): v for s, n, v in trained.sql("DESCRIBE MODEL a").fetchall()}
    assert described[("model", "num_boost_round")] == "7" and described[("model", "seed")] == "3"
    assert described[("param", "num_leaves")] == "5"
    booster = lgb.Booster(model_str=trained.catalog.get("a").model_text())
    assert booster.num_trees() == 7
    assert max(t["num_leaves"] for t in booster.dump_model()["tree_info"]) <= 5


def test_weight_clause_trains_as_lightgbm_with_weights(con):
    con.execute(TABLE.replace("AS y", "AS y, 1 + (i % 4) * 1.0 AS w"))
    con.execute(
        "TRAIN MODEL w USING lightgbm_classifier LABEL y WEIGHT w WITH (num_boost_round = 5, validation = 0, num_threads = 1) "
        "AS SELECT * FROM t"
    )
    data = con.sql("SELECT x, z, y::DOUBLE AS y, w FROM t").fetchnumpy()
    X = np.column_stack([data["x"], data["z"]])
    meta = con.catalog.get("w").meta
    direct = lgb.train(meta["params"], lgb.Dataset(X, label=data["y"], weight=data["w"]), 5)
    ours = con.sql("SELECT probability FROM PREDICT(MODEL w, TABLE t)").fetchnumpy()["probability"]
    np.testing.assert_allclose(ours, direct.predict(X), atol=1e-12)
    assert meta["weight"] == "w"


def test_enum_label_from_a_pandas_categorical_trains(con):
    frame = pd.DataFrame({"x": np.arange(600.0), "label": pd.Categorical(["a", "b", "c"] * 200)})  # noqa: F841
    con.execute("TRAIN MODEL e USING lightgbm_classifier LABEL label WITH (num_boost_round = 3) AS SELECT * FROM frame")
    assert con.sql("SELECT DISTINCT prediction FROM PREDICT(MODEL e, TABLE frame) ORDER BY 1").fetchall() == [
        ("a",),
        ("b",),
        ("c",),
    ]


# -- Python objects, sessions, threads ----------------------------------------------------------
NAMES = [
    "train",
    "metrics",
    "features",
    "model",
    "params",
    "source",
    "plan",
    "node",
    "specs",
    "trainer",
    "options",
    "script",
]


@pytest.mark.parametrize("name", NAMES)
def test_python_objects_resolve_from_the_callers_frame_only(con, name):
    """A user's DataFrame named like one of sqlml's own variables or modules is the user's,
    through TRAIN, PREDICT and EVALUATE (DuckDB resolves names from the calling frame only)."""
    scope = {"con": con, name: pd.DataFrame({"x": np.arange(600.0), "y": np.arange(600) % 3 == 0})}
    exec(
        f"con.execute('TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = 2) AS SELECT * FROM {name}')",
        {},
        scope,
    )
    exec(f"result = con.sql('SELECT count(*) FROM PREDICT(MODEL m, TABLE {name})').fetchall()", {}, scope)
    assert scope["result"] == [(600,)]
    exec(f"result = con.sql('EVALUATE MODEL m ON TABLE {name}').fetchall()", {}, scope)
    assert scope["result"][0][2] == 600


def test_sqlml_variables_are_never_tables(con):
    with pytest.raises(sqlml.SqlmlError) as info:
        con.sql("SELECT * FROM statement")  # a local variable of sqlml's, never visible
    assert "statement" in info.value.message


def test_two_sessions_over_one_connection_both_predict_and_leave_it_as_it_was(trained):
    raw = duckdb.connect()
    raw.execute("CREATE TABLE t AS SELECT i * 1.0 AS x, i * 0.5 AS z FROM range(10) AS t(i)")
    settings = raw.sql("SELECT current_setting('python_scan_all_frames')").fetchall()
    a = sqlml.connect(catalog=trained.catalog.root, connection=raw)
    b = sqlml.connect(catalog=trained.catalog.root, connection=raw)
    assert a.sql("SELECT count(*) FROM PREDICT(MODEL m, TABLE t)").fetchall() == [(10,)]
    assert b.sql("SELECT count(*) FROM PREDICT(MODEL m, TABLE t)").fetchall() == [(10,)]
    a.close()
    b.close()
    assert raw.sql("SELECT current_setting('python_scan_all_frames')").fetchall() == settings
    assert raw.sql("SELECT count(*) FROM t").fetchall() == [(10,)]  # still open


def test_one_session_in_two_threads_says_to_use_cursors(trained):
    errors: list[BaseException] = []
    started = threading.Event()

    def long_query() -> None:
        started.set()
        try:
            trained.sql("SELECT sum(i) FROM range(300000000) AS t(i)").fetchall()
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    worker = threading.Thread(target=long_query)
    worker.start()
    started.wait()
    seen = []
    while worker.is_alive() and not seen:
        try:
            trained.sql("SELECT 1").fetchall()
        except sqlml.SqlmlError as err:
            seen.append(err)
    worker.join()
    assert all(isinstance(e, sqlml.SqlmlError) for e in errors)
    if seen:  # the two statements met: the second was refused with the pattern to use
        assert "cursor()" in seen[0].hint
    cursor = trained.cursor()
    results: list[list] = []
    threads = [
        threading.Thread(
            target=lambda c=c: results.append(c.sql("SELECT count(*) FROM PREDICT(MODEL m, TABLE t)").fetchall())
        )
        for c in (cursor, trained.cursor())
    ]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results == [[(600,)], [(600,)]]


def test_a_bad_push_is_refused_and_the_stream_goes_on(con):
    con.execute("CREATE STREAM ev (k BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'python')")
    for bad in ({"k": [1]}, 42, ["not", "rows"]):
        with pytest.raises(sqlml.BindError):
            con.push("ev", bad)
    con.push("ev", {"k": [1, 2], "ts": [pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-01 00:00:05")]})
    con.push("ev", [{"k": 3, "ts": pd.Timestamp("2025-01-01 00:00:20")}])
    rows = [r for b in con.stream("SELECT k FROM ev") for r in b.column(0).to_pylist()]
    assert rows == [1, 2, 3]


def test_transactions_work_in_a_database_without_streams(con):
    con.execute("BEGIN; CREATE TABLE a AS SELECT 1 AS v; ROLLBACK;")
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'a'").fetchall() == [(0,)]
    con.execute("BEGIN; CREATE TABLE a AS SELECT 1 AS v; INSERT INTO a VALUES (2); COMMIT;")
    assert con.sql("SELECT sum(v) FROM a").fetchall() == [(3,)]
    con.execute("BEGIN; CREATE STREAM s (ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'python'); ROLLBACK;")
    assert con.engine.streams.names() == []


def test_train_over_a_stream_without_windows_says_how(con):
    con.execute(
        "CREATE STREAM clicks (x DOUBLE, y BOOLEAN, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'python')"
    )
    with pytest.raises(sqlml.BindError) as info:
        con.execute("TRAIN MODEL c USING lightgbm_classifier LABEL y AS SELECT x, y FROM clicks")
    assert "'clicks' is a stream" in info.value.message and "TUMBLE(TABLE clicks" in info.value.hint


# -- the catalog: no dead ends ------------------------------------------------------------------
def test_corrupt_metadata_shows_in_show_models_and_drops(trained):
    trained.execute("TRAIN MODEL other USING lightgbm_classifier LABEL y WITH (num_boost_round = 2) AS SELECT * FROM t")
    (trained.catalog.root / "m" / "1" / "meta.json").write_text("{oops")
    shown = trained.sql("SHOW MODELS").arrow().to_pylist()
    assert [(r["name"], r["error"] is not None) for r in shown] == [("m", True), ("other", False)]
    assert trained.sql("DROP MODEL m").fetchall() == [("m", 1, None)]
    assert trained.catalog.names() == ["other"]


def test_version_numbers_are_never_reused_even_after_the_whole_model_is_dropped(trained):
    trained.execute(TRAIN)
    trained.execute("DROP MODEL m")
    trained.execute(TRAIN)
    assert trained.catalog.versions("m") == [3]


def test_dropping_the_serving_version_repoints_serving_and_says_so(trained):
    trained.execute(TRAIN)
    trained.execute(TRAIN)
    trained.catalog.set_serving("m", 3, "test", 0)
    rows = trained.sql("DROP MODEL m VERSION 3").fetchall()
    assert rows == [("m", 3, "version 3 was dropped; version 2 serves now")]
    assert trained.catalog.serving("m").version == 2
    assert trained.sql("SELECT DISTINCT model_version FROM PREDICT(MODEL m, TABLE t)").fetchall() == [(2,)]


@pytest.mark.parametrize("damage", ["truncate", "edit", "features"])
def test_broken_model_files_are_catalog_errors_not_crashes(trained, damage):
    path = trained.catalog.root / "m" / "1" / "model.txt"
    text = path.read_text()
    if damage == "truncate":
        path.write_text(text[: len(text) // 3])
    elif damage == "edit":
        path.write_text(text.replace("feature_names=x z", "feature_names=x q"))
    else:  # metadata edited to another feature list: the checksum still matches the model
        meta = json.loads((path.parent / "meta.json").read_text())
        meta["features"][1]["name"] = "q"
        (path.parent / "meta.json").write_text(json.dumps(meta))
    check = (
        "import sqlml, sys\ncon = sqlml.connect(catalog=sys.argv[1])\ncon.execute(sys.argv[2])\n"
        "try:\n    con.sql(sys.argv[3]).fetchall()\nexcept sqlml.CatalogError as err:\n    print('CatalogError:', err)\n"
    )  # a subprocess: a model LightGBM aborted on would end the process (exit 134), not raise
    proc = subprocess.run(
        [sys.executable, "-c", check, str(trained.catalog.root), "CREATE TABLE t AS SELECT 1.0 AS x, 2.0 AS z, 2.0 AS q",
         "SELECT * FROM PREDICT(MODEL m, TABLE t)"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("CatalogError:") and "DROP MODEL m VERSION 1" in proc.stdout
    assert proc.stderr == ""


def test_a_read_only_catalog_serves_every_read(trained, tmp_path):
    root = trained.catalog.root
    trained.execute(
        "CREATE TABLE ev_t AS SELECT x, z, y, TIMESTAMP '2025-01-01' + INTERVAL (x) SECOND AS ts FROM t;"
        "TRAIN MODEL c USING lightgbm_classifier LABEL y WITH (update = 'retrain', num_boost_round = 3) "
        "AS SELECT x, z, y FROM TABLE(TUMBLE(TABLE ev_t, DESCRIPTOR(ts), INTERVAL '200' SECOND))"
    )
    folders = [root, *[p for p in root.rglob("*") if p.is_dir()]]
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(root)]).returncode:
        pytest.skip("making a folder read-only needs chattr as root")
    try:
        subprocess.run(["chattr", "+i", *map(str, folders)], check=True)
        before = sorted(str(p) for p in root.rglob("*"))
        assert trained.sql("SHOW MODELS").fetchall()
        assert trained.sql("DESCRIBE MODEL c").fetchall()
        assert trained.sql("SELECT count(*) FROM PREDICT(MODEL m, TABLE t)").fetchall() == [(600,)]
        assert trained.sql("EVALUATE MODEL m ON TABLE t").fetchall()[0][2] == 600
        assert trained.sql("SELECT count(*) FROM METRICS(MODEL c)").fetchall()[0][0] > 0
        with pytest.raises(sqlml.CatalogError) as info:
            trained.execute(TRAIN)
        assert "Cannot write to the catalog" in info.value.message
        assert sorted(str(p) for p in root.rglob("*")) == before
    finally:
        subprocess.run(["chattr", "-i", *map(str, folders)], check=False)


def test_a_catalog_path_that_is_a_file_is_a_catalog_error(tmp_path):
    (tmp_path / "catalog").write_text("not a folder")
    con = sqlml.connect(catalog=tmp_path / "catalog")
    con.execute(TABLE)
    with pytest.raises(sqlml.CatalogError) as info:
        con.execute(TRAIN)
    assert "Cannot write to the catalog" in info.value.message and info.value.hint


def test_small_data_trains_on_one_thread_unless_told(trained):
    trained.execute("TRAIN MODEL one USING lightgbm_classifier LABEL y WITH (num_boost_round = 2) AS SELECT * FROM t")
    assert trained.catalog.get("one").meta["params"]["num_threads"] == 1
    trained.execute("TRAIN MODEL two USING lightgbm_classifier LABEL y WITH (num_threads = 2) AS SELECT * FROM t")
    assert trained.catalog.get("two").meta["params"]["num_threads"] == 2


def test_progress_always_closes(trained):
    events: list[str] = []

    class Recorder:
        def __call__(self, done: int, total: int) -> None:
            events.append("round")

        def close(self) -> None:
            events.append("close")

    trained.set_progress(lambda name: Recorder())
    trained.execute(
        "TRAIN MODEL es USING lightgbm_classifier LABEL y WITH (num_boost_round = 500, early_stopping_rounds = 2) AS SELECT * FROM t"
    )
    assert events[-1] == "close" and events.count("round") < 500  # stopped early, and the bar closed
    events.clear()
    with pytest.raises(sqlml.SqlmlError):
        trained.execute("TRAIN MODEL bad USING lightgbm_classifier LABEL y WITH (num_leaves = 1) AS SELECT * FROM t")
    assert events == ["close"]


# -- the CLI and the REPL -------------------------------------------------------------------------
def cli(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sqlml", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_json_is_strict_and_keeps_every_column(tmp_path):
    sql = "SELECT 'nan'::DOUBLE AS a, 'inf'::DOUBLE AS a, [1.0, 'nan'::DOUBLE] AS \"odd \"\"name\"\"\";"
    proc = cli("run", "-c", sql, "-f", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [
        {"a": None, "a_1": None, 'odd "name"': [1.0, None]}
    ]
    proc = cli("run", "-c", "SELECT 1 AS a WHERE false", "-f", "json", cwd=tmp_path)
    assert proc.stdout == ""
    proc = cli(
        "run",
        "-c",
        "SET threads = 1; CREATE TABLE t (a INT); INSERT INTO t VALUES (1); CHECKPOINT; SELECT * FROM t",
        "-f",
        "csv",
        cwd=tmp_path,
    )
    assert proc.stdout.splitlines() == ['"a"', "1"]  # no status blocks for statements that return no rows


def test_sigterm_cancels_the_running_statement_and_exits_non_zero(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "sqlml", "run", "--db", "x.duckdb", "-f", "csv", "-c",
         "CREATE TABLE kept AS SELECT 1 AS v; SELECT 'started' AS s; "
         "CREATE TABLE never AS SELECT sum(a.i * b.i) AS s FROM range(100000) AS a(i), range(100000) AS b(i)"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    while "started" not in proc.stdout.readline():
        pass
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    err = proc.stderr.read()
    assert "Stopped by SIGTERM" in err and "Traceback" not in err
    con = duckdb.connect(str(tmp_path / "x.duckdb"), read_only=True)
    assert [r[0] for r in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()] == ["kept"]


def test_repl_survives_an_internal_error(tmp_path, capsys):
    from sqlml.repl import Repl

    session = sqlml.connect(catalog=tmp_path / "cat")
    session.execute("CREATE TABLE kept AS SELECT 42 AS v")
    repl = Repl(session, history=str(tmp_path / "history"))
    real = session.engine.execute

    def broken(statement, bound):  # a bug inside the engine, injected
        raise RuntimeError("boom")

    session.engine.execute = broken  # type: ignore[method-assign]
    repl.run("SELECT 1;")
    out = capsys.readouterr().out
    assert "internal error: RuntimeError: boom" in out and ".debug on" in out and "Traceback" not in out
    session.engine.execute = real  # type: ignore[method-assign]
    repl.run("SELECT v FROM kept;")
    assert "42" in capsys.readouterr().out


def test_library_prints_nothing_on_lightgbm_errors(tmp_path):
    code = (
        "import sqlml, tempfile\ncon = sqlml.connect(catalog=tempfile.mkdtemp())\n"
        "con.execute('CREATE TABLE t AS SELECT i * 1.0 AS x, i % 2 = 0 AS y FROM range(100) t(i)')\n"
        "try:\n    con.execute('TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_leaves = 1) AS SELECT * FROM t')\n"
        "except sqlml.SqlmlError as err:\n    print(err.message)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "num_leaves" in proc.stdout


def test_omp_wait_policy_is_passive_in_the_cli(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import os, sys; sys.argv = ['sqlml', '--help']\nfrom sqlml.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\nprint(os.environ['OMP_WAIT_POLICY'])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.stdout.strip().endswith("PASSIVE")


def test_a_locked_database_is_an_error_not_a_traceback(tmp_path):
    holder = duckdb.connect(str(tmp_path / "x.duckdb"))  # this process holds the file's lock
    try:
        proc = cli("run", "--db", "x.duckdb", "-c", "SELECT 1", cwd=tmp_path)
    finally:
        holder.close()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("sqlml: error: Cannot open the database x.duckdb")
