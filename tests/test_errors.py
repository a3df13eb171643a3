"""Every bad input in tests/fixtures/errors/{cases,more}.sql gives its own message at its own
line:column, through the API, the CLI process (exit 1, no traceback) and one REPL session
(which survives them all), and leaves the catalog and the tables exactly as they were."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import duckdb
import pytest

import sqlml
from tests.conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "errors"


def load_cases(name: str) -> list[tuple[str, int, int, str]]:
    cases, current = [], None
    for line in (FIXTURES / name).read_text().splitlines():
        head = re.match(r"-- error: (\d+):(\d+) (.*)$", line)
        if head:
            current = [int(head[1]), int(head[2]), head[3], []]
            cases.append(current)
        elif current is not None:
            current[3].append(line)
    return [("\n".join(sql).strip() + "\n", line, col, message) for line, col, message, sql in cases]


FIRST, MORE = load_cases("cases.sql"), load_cases("more.sql")
CASES = FIRST + MORE
IDS = [f"{i:02d}-{re.sub(r'[^a-z]+', '_', c[3].lower())[:40]}" for i, c in enumerate(CASES)]


def test_fixture_is_big_enough():
    assert len(MORE) >= 40 and len(CASES) >= 92


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("setup")
    with sqlml.connect(str(root / "db.duckdb"), root / "catalog") as con:
        con.execute((FIXTURES / "setup.sql").read_text())
    (root / "catalog" / "broken" / "1" / "meta.json").write_text("{not json")
    return root


def snapshot(root: Path) -> tuple[dict, dict]:
    catalog = root / "catalog"
    files = {
        str(p.relative_to(catalog)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(catalog.rglob("*"))
        if p.is_file()
    }
    con = duckdb.connect(str(root / "db.duckdb"), read_only=True)
    try:
        names = [r[0] for r in con.sql("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        tables = {n: con.sql(f'SELECT count(*), sum(hash(x)) FROM "{n}" AS x').fetchall()[0] for n in names}
    finally:
        con.close()
    return files, tables


def copy_setup(pristine: Path, target: Path) -> Path:
    shutil.copy(pristine / "db.duckdb", target / "db.duckdb")
    shutil.copytree(pristine / "catalog", target / "catalog")
    return target


@pytest.mark.parametrize(("sql", "line", "col", "message"), CASES, ids=IDS)
def test_api_error(pristine, tmp_path, sql, line, col, message):
    root = copy_setup(pristine, tmp_path)
    before = snapshot(root)
    con = sqlml.connect(str(root / "db.duckdb"), root / "catalog")
    try:
        with pytest.raises(sqlml.SqlmlError) as info:
            con.execute(sql)
    finally:
        con.close()
    err = info.value
    assert message in err.message, err.message
    assert (err.line, err.col) == (line, col), str(err)
    assert snapshot(root) == before


# the CLI runs each case in a process of its own (about 4 s each): the first fixture's cases in the default
# run, the second's with the slow tests (the API and REPL tests take every case in the default run)
CLI_CASES = [pytest.param(*c, marks=pytest.mark.slow) if i >= len(FIRST) else c for i, c in enumerate(CASES)]


@pytest.mark.parametrize(("sql", "line", "col", "message"), CLI_CASES, ids=IDS)
def test_cli_error(pristine, tmp_path, sql, line, col, message):
    root = copy_setup(pristine, tmp_path)
    before = snapshot(root)
    (root / "case.sql").write_text(sql)
    proc = run_cli("run", "case.sql", "--db", "db.duckdb", "--catalog", "catalog", cwd=root)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "[LightGBM]" not in proc.stderr  # LightGBM's own messages never reach the user
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"case.sql:{line}:{col}: error: "), proc.stderr
    assert message in first
    assert "^" in proc.stderr
    assert snapshot(root) == before


@pytest.mark.slow
def test_repl_survives_every_case(pristine, tmp_path):
    """One REPL session takes every bad input in turn: each prints its error, none a traceback
    or an internal error, the session never ends, and nothing is changed."""
    import os
    import sys

    import pexpect

    root = copy_setup(pristine, tmp_path)
    before = snapshot(root)
    env = {**os.environ, "SQLML_HISTORY": str(tmp_path / "history"), "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "dumb"}
    child = pexpect.spawn(
        sys.executable, ["-m", "sqlml", "repl", "--db", "db.duckdb", "--catalog", "catalog"],
        cwd=root, env=env, encoding="utf-8", timeout=120, dimensions=(40, 250),
    )  # fmt: skip
    child.expect_exact("sqlml> ")
    seen = ""
    from sqlml.repl import is_complete

    for sql, _, _, message in CASES:
        line = " ".join(sql.split())
        if not is_complete(line):  # a string or comment left open: the REPL waits for the rest, as psql does
            continue
        child.sendline(line)  # one line: the REPL runs it when it ends with ;
        child.expect_exact("sqlml> ")
        shown = child.before
        seen += shown
        assert "error:" in shown and message[:40] in " ".join(shown.split()), shown
    child.sendline(".quit")
    child.expect(pexpect.EOF)
    assert "Traceback" not in seen and "internal error" not in seen
    assert snapshot(root) == before
