"""The REPL through a real pseudo-terminal."""

from __future__ import annotations

import os
import sys

import pexpect
import pytest

PROMPT = "sqlml> "


@pytest.fixture
def repl(tmp_path):
    env = {**os.environ, "SQLML_HISTORY": str(tmp_path / "history"), "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "dumb"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "sqlml", "repl", "--catalog", str(tmp_path / "cat")],
        env=env,
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )
    child.expect_exact(PROMPT)
    yield child
    child.close(force=True)


def test_multiline_statement_error_and_meta_commands(repl, tmp_path):
    repl.sendline("SELECT 40 + 2 AS answer,")
    repl.expect_exact("...> ")
    repl.sendline("  'x' AS tag;")
    repl.expect_exact("1 row")
    assert "42" in repl.before
    repl.expect_exact(PROMPT)

    repl.sendline("SELECT * FROM PREDICT(MODEL nope, (SELECT 1 AS x));")
    repl.expect_exact("error: Unknown model 'nope'.")
    repl.expect_exact(PROMPT)

    repl.sendline("CREATE TABLE t AS SELECT i * 1.0 AS x, i % 2 = 0 AS y FROM range(300) AS t(i);")
    repl.expect_exact(PROMPT)
    repl.sendline("TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = 3) AS SELECT * FROM t;")
    repl.expect_exact("binary")
    repl.expect_exact(PROMPT)
    repl.sendline(".models")
    repl.expect_exact("lightgbm_classifier")
    repl.expect_exact(PROMPT)
    repl.sendline(".tables")
    repl.expect_exact("t ")
    repl.expect_exact(PROMPT)
    repl.sendline(".timer on")
    repl.expect_exact("Timer is on.")
    repl.sendline("SELECT 1;")
    repl.expect(r"Run time: \d+\.\d+ s")
    repl.sendline(".quit")
    repl.expect(pexpect.EOF)
    assert "SELECT 40 + 2" in (tmp_path / "history").read_text()


def test_ctrl_c_cancels_the_running_statement(repl):
    repl.sendline("SELECT count(*) FROM range(100000000000) AS a(i) WHERE i % 7 = 3;")
    import time

    time.sleep(1.5)
    repl.sendcontrol("c")
    repl.expect("Cancelled|Interrupted|INTERRUPT")
    repl.expect_exact(PROMPT)
    repl.sendline("SELECT 7 AS still_here;")
    repl.expect_exact("still_here")
    repl.expect_exact(PROMPT)


def test_streams_in_the_repl(repl, tmp_path):
    events = tmp_path / "ev.jsonl"
    repl.sendline(
        "COPY (SELECT i AS k, TIMESTAMP '2025-01-01' + INTERVAL (i) SECOND AS ts FROM range(120) AS t(i)) "
        f"TO '{events}' (FORMAT json);"
    )
    repl.expect_exact(PROMPT)
    repl.sendline(f"CREATE STREAM ev (k BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (path = '{events}');")
    repl.expect_exact(PROMPT)
    repl.sendline(
        "SELECT window_start, count(*) AS n FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' MINUTE))"
    )
    repl.expect_exact("...> ")
    repl.sendline("GROUP BY window_start, window_end;")
    repl.expect_exact("2025-01-01 00:01:00")
    repl.expect_exact(PROMPT)
    repl.sendline("SELECT count(*) FROM ev;")
    repl.expect_exact("cannot use an aggregate")
    repl.expect_exact(PROMPT)
