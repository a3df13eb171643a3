"""Every bad input in tests/fixtures/errors/cases.sql gives its own message at its own
line:column, through the API and through the CLI process (exit 1, no traceback), and
leaves the catalog and the tables exactly as they were."""

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


def load_cases() -> list[tuple[str, int, int, str]]:
    cases, current = [], None
    for line in (FIXTURES / "cases.sql").read_text().splitlines():
        head = re.match(r"-- error: (\d+):(\d+) (.*)$", line)
        if head:
            current = [int(head[1]), int(head[2]), head[3], []]
            cases.append(current)
        elif current is not None:
            current[3].append(line)
    return [("\n".join(sql).strip() + "\n", line, col, message) for line, col, message, sql in cases]


CASES = load_cases()
IDS = [f"{i:02d}-{re.sub(r'[^a-z]+', '_', c[3].lower())[:40]}" for i, c in enumerate(CASES)]


def test_fixture_is_big_enough():
    assert len(CASES) >= 40


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


@pytest.mark.parametrize(("sql", "line", "col", "message"), CASES, ids=IDS)
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
