"""The REPL through a real pseudo-terminal (an xterm, so that prompt_toolkit draws as it does
for a person: continuation prompts, history recall)."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pexpect
import pytest

PROMPT = "sqlml>"
ACCEPTED, READY = "\x1b[?2004l", "\x1b[?2004h"  # prompt_toolkit ends and starts reading a line (bracketed paste)
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\r")
UP = "\x1b[A"


def plain(text: str) -> str:
    return ANSI.sub("", text)


class Terminal:
    """A REPL process on a pseudo-terminal of the given width."""

    def __init__(self, tmp_path: Path, width: int = 200, args: tuple[str, ...] = ()) -> None:
        env = {**os.environ, "SQLML_HISTORY": str(tmp_path / "history"), "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"}
        args = args or ("repl", "--catalog", str(tmp_path / "cat"))
        self.child = pexpect.spawn(
            sys.executable, ["-m", "sqlml", *args], env=env, encoding="utf-8", timeout=60,
            dimensions=(40, width), cwd=str(tmp_path),
        )  # fmt: skip
        self.child.expect_exact(PROMPT)

    def run(self, text: str) -> str:
        """Type `text` (lines end with Enter) and return what was printed before the next prompt."""
        for line in text.split("\n"):
            self.child.send(line + "\r")
            time.sleep(0.05)
        self.child.expect_exact(ACCEPTED)
        self.child.expect_exact(READY)
        return plain(self.child.before)

    def close(self) -> None:
        self.child.close(force=True)


@pytest.fixture
def term(tmp_path):
    terminal = Terminal(tmp_path)
    yield terminal
    terminal.close()


def test_multiline_statement_error_and_meta_commands(term, tmp_path):
    term.child.send("SELECT 40 + 2 AS answer,\r")
    term.child.expect_exact("...>")
    term.child.send("  'x' AS tag;\r")
    term.child.expect_exact("1 row")
    assert "42" in plain(term.child.before)
    term.child.expect_exact(READY)

    assert "error: Unknown model 'nope'." in term.run("SELECT * FROM PREDICT(MODEL nope, (SELECT 1 AS x));")
    term.run("CREATE TABLE t AS SELECT i * 1.0 AS x, i % 2 = 0 AS y FROM range(300) AS t(i);")
    assert "binary" in term.run(
        "TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = 3) AS SELECT * FROM t;"
    )
    assert "lightgbm_classifier" in term.run(".models")
    assert "t " in term.run(".tables")
    assert "Timer is on." in term.run(".timer on")
    assert re.search(r"Run time: \d+\.\d+ s", term.run("SELECT 1;"))
    term.child.send(".quit\r")
    term.child.expect(pexpect.EOF)
    assert "SELECT 40 + 2" in (tmp_path / "history").read_text()


def test_history_recalls_a_multiline_statement_whole(term, tmp_path):
    term.run("SELECT 6 * 7 AS answer,\n  'first' AS tag;")
    term.run("SELECT 'other' AS tag;")
    term.child.send(UP + UP)  # the two-line statement, as one entry
    term.child.expect_exact("first")
    term.child.send("\r")
    term.child.expect_exact("1 row")
    assert "42" in plain(term.child.before)
    term.child.expect_exact(READY)
    entries = [e for e in (tmp_path / "history").read_text().split("\n\n") if e.strip()]
    assert any("+SELECT 6 * 7 AS answer,\n+  'first' AS tag;" in e for e in entries)


def test_a_comment_after_the_semicolon_runs_at_once(term):
    out = term.run("SELECT 5 AS five; -- the end")
    assert "five" in out and "1 row" in out and "...>" not in out
    out = term.run("SELECT 'a;b' AS s;")  # a ; in a string does not end it early
    assert "a;b" in out


@pytest.mark.slow
@pytest.mark.parametrize("width", [80, 200])
def test_output_fits_the_terminal(tmp_path, width):
    term = Terminal(tmp_path, width=width)
    try:
        cols = ", ".join(f"{i} AS column_number_{i}" for i in range(30))
        out = term.run(f"SELECT {cols} FROM range(100);")
        lines = [line for line in out.split("\n") if line.startswith(("┃", "│", "┏", "└"))]
        assert lines and max(len(line) for line in lines) <= width
        shown = int(re.search(r"30 columns \((\d+) shown\)", out).group(1))
        assert "100 rows (40 shown)" in out and "column_number_0" in out and "column_number_29" in out
        assert (2 <= shown <= 5) if width == 80 else (8 <= shown < 30)
        assert "Rows shown" not in term.run(".maxrows 4")
        out = term.run("SELECT range AS n FROM range(100);")
        assert "100 rows (4 shown)" in out and "99" in out and "·" in out
        # a model with many features: DESCRIBE still shows its metrics first
        feats = ", ".join(f"(i * {k}) % 7 AS f{k}" for k in range(60))
        term.run(f"CREATE TABLE wide AS SELECT {feats}, i % 2 = 0 AS y FROM range(600) t(i);")
        term.run("TRAIN MODEL w USING lightgbm_classifier LABEL y WITH (num_boost_round = 2) AS SELECT * FROM wide;")
        term.run(".maxrows 20")
        out = term.run("DESCRIBE MODEL w;")
        assert "auc" in out and "accuracy" in out
    finally:
        term.close()


def test_completion_knows_where_it_is(term):
    term.run("CREATE TABLE customers AS SELECT 1 AS tenure, 2.5 AS spend;")
    term.run("CREATE TABLE t AS SELECT i * 1.0 AS x, i % 2 = 0 AS y FROM range(100) AS t(i);")
    term.run("TRAIN MODEL churn USING lightgbm_classifier LABEL y WITH (num_boost_round = 2) AS SELECT * FROM t;")
    for typed, completed in [
        ("SELECT * FROM custo", "customers"),
        ("EVALUATE MODEL chu", "churn"),
        ("SELECT spe", "spend"),
        ("TRAIN MODEL z USING lightgbm_r", "lightgbm_regressor"),
        ("SELECT * FROM PREDICT(MODEL ch", "churn"),
    ]:
        term.child.send(typed + "\t")
        word = re.findall(r"\w+$", typed)[0]
        term.child.expect_exact(completed[len(word) :])  # the screen draws what completion added
        term.child.send("\x03")  # Ctrl-C clears the line
        term.child.expect_exact(READY)


def test_dot_commands_read_write_and_describe(term, tmp_path):
    (tmp_path / "setup.sql").write_text(
        "CREATE TABLE pets AS SELECT 'cat' AS kind, 4 AS legs;\nSELECT 'loaded' AS status;"
    )
    assert "loaded" in term.run(".read setup.sql")
    (tmp_path / "more.sql").write_text("SELECT 'psql spelling' AS status;")
    assert "psql spelling" in term.run("\\i more.sql")
    assert "CREATE TABLE pets" in term.run(".schema pets")
    out = term.run("\\d pets")
    assert "kind" in out and "legs" in out
    term.run(".once once.csv")
    term.run(".mode csv")
    assert term.run("SELECT * FROM pets;").strip() == ""
    assert (tmp_path / "once.csv").read_text() == '"kind","legs"\n"cat",4\n'
    assert '"kind","legs"' in term.run("SELECT * FROM pets;")  # .once ended
    for mode, expected in [("json", '{"kind":"cat","legs":4}'), ("line", "kind = cat"), ("markdown", "| cat | 4 |")]:
        term.run(f".mode {mode}")
        assert expected in term.run("SELECT * FROM pets;")
    term.run(".output out.txt")
    term.run("SELECT 'to the file' AS where_to;")
    term.run(".output")
    assert "to the file" in (tmp_path / "out.txt").read_text()
    assert "ML statements" in term.run(".ml") and "TRAIN MODEL" in term.run(".help ml")
    term.run(".open other.duckdb")
    term.run("CREATE TABLE kept AS SELECT 1 AS one;")
    assert "Catalog Error" in term.run("SELECT * FROM pets;")  # another database now


@pytest.mark.slow
def test_db_before_the_subcommand_and_short_confirmations(tmp_path):
    term = Terminal(tmp_path, args=("--db", "app.duckdb", "--catalog", str(tmp_path / "cat")))
    try:
        assert term.run("CREATE TABLE kept AS SELECT 42 AS answer;").strip() == ""  # no boxed row count
        term.run("CREATE TABLE t AS SELECT i * 1.0 AS x, i % 2 = 0 AS y FROM range(100) AS t(i);")
        term.run("TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = 2) AS SELECT * FROM t;")
        stream = "CREATE STREAM IF NOT EXISTS ev (k BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'python');"
        assert term.run(stream).strip() == ""  # as DuckDB's CLI after CREATE: nothing
        out = term.run(stream)
        assert "┃" not in out and "Stream 'ev' exists; nothing created" in out  # a note is a line, not a table
        assert "dropped_version" in term.run("DROP MODEL m;")  # a row of data is a table
        term.child.send(".quit\r")
        term.child.expect(pexpect.EOF)
    finally:
        term.close()
    again = Terminal(tmp_path, args=("--db", "app.duckdb", "repl"))
    try:
        assert "42" in again.run("SELECT * FROM kept;")
    finally:
        again.close()


def test_ctrl_c_cancels_the_running_statement(term):
    term.child.send("SELECT count(*) FROM range(100000000000) AS a(i) WHERE i % 7 = 3;\r")
    time.sleep(1.5)
    term.child.sendcontrol("c")
    term.child.expect("Cancelled|Interrupted|INTERRUPT")
    term.child.expect_exact(READY)
    assert "still_here" in term.run("SELECT 7 AS still_here;")


def test_streams_in_the_repl(term, tmp_path):
    events = tmp_path / "ev.jsonl"
    term.run(
        "COPY (SELECT i AS k, TIMESTAMP '2025-01-01' + INTERVAL (i) SECOND AS ts FROM range(120) AS t(i)) "
        f"TO '{events}' (FORMAT json);"
    )
    term.run(f"CREATE STREAM ev (k BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (path = '{events}');")
    out = term.run(
        "SELECT window_start, count(*) AS n FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' MINUTE))\n"
        "GROUP BY window_start, window_end;"
    )
    assert "2025-01-01 00:01:00" in out
    assert "+I" in term.run("SELECT count(*) FROM ev;")  # an updating query: its changelog


def test_a_file_that_cannot_be_written_is_an_error_not_an_exit(term, tmp_path):
    out = term.run(f".output {tmp_path}/no/such/dir/out.txt")
    assert "error: cannot write" in out
    assert "still_here" in term.run("SELECT 7 AS still_here;")
