"""The CLI as a real process (and once through typer's runner)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sqlml.cli import app
from tests.conftest import run_cli

SCRIPT = """CREATE TABLE t AS SELECT i * 1.0 AS x, i % 2 = 0 AS y FROM range(300) AS t(i);
TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = 3) AS SELECT * FROM t;
SELECT count(*) AS n FROM PREDICT(MODEL m, TABLE t);
"""


def test_run_file_prints_tables(tmp_path):
    (tmp_path / "s.sql").write_text(SCRIPT)
    proc = run_cli("run", "s.sql", "--catalog", "cat", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "│ m " in proc.stdout and "300" in proc.stdout
    assert (tmp_path / "cat" / "m" / "1" / "model.txt").exists()


def test_formats_command_and_stdin(tmp_path):
    proc = run_cli("run", "-c", "SELECT 1 AS a, 'x' AS b, map([1], [2.5]) AS m", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"a": 1, "b": "x", "m": {"1": 2.5}}
    proc = run_cli("run", "-", "--format", "csv", stdin="SELECT 1 AS a UNION ALL SELECT 2 ORDER BY a;", cwd=tmp_path)
    assert proc.stdout.splitlines() == ['"a"', "1", "2"]


def test_several_files_share_one_session_and_db(tmp_path):
    (tmp_path / "a.sql").write_text("CREATE TABLE t AS SELECT 41 AS v;")
    (tmp_path / "b.sql").write_text("SELECT v + 1 AS v FROM t;")
    proc = run_cli("run", "a.sql", "b.sql", "--db", "x.duckdb", "-f", "csv", cwd=tmp_path)
    assert proc.stdout.splitlines() == ['"v"', "42"]
    again = run_cli("run", "-c", "SELECT v FROM t", "--db", "x.duckdb", "-f", "csv", cwd=tmp_path)
    assert again.stdout.splitlines() == ['"v"', "41"]


def test_error_stops_at_first_and_renders(tmp_path):
    (tmp_path / "bad.sql").write_text(
        "SELECT 1;\nSELECT * FROM PREDICT(MODEL nope, TABLE t);\nCREATE TABLE never AS SELECT 1;\n"
    )
    proc = run_cli("run", "bad.sql", "--db", "x.duckdb", "--catalog", "cat", cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == "bad.sql:2:29: error: Unknown model 'nope'."
    assert lines[1] == "  SELECT * FROM PREDICT(MODEL nope, TABLE t);"
    assert lines[2] == "  " + " " * 28 + "^^^^"
    assert "Traceback" not in proc.stderr
    check = run_cli(
        "run",
        "-c",
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'never'",
        "--db",
        "x.duckdb",
        "-f",
        "csv",
        cwd=tmp_path,
    )
    assert check.stdout.splitlines()[1] == "0"


def test_missing_file_and_bad_format(tmp_path):
    proc = run_cli("run", "nope.sql", cwd=tmp_path)
    assert proc.returncode == 1 and "nope.sql: error: cannot read the file" in proc.stderr
    assert run_cli("run", "-c", "SELECT 1", "--format", "xml", cwd=tmp_path).returncode == 2


def test_help_lists_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert "run" in proc.stdout and "repl" in proc.stdout


def test_typer_runner(tmp_path):
    result = CliRunner().invoke(app, ["run", "-c", "SHOW MODELS", "--catalog", str(tmp_path), "-f", "csv"])
    assert result.exit_code == 0
    assert result.stdout.startswith('"name","version","trainer"')


def test_cli_module_loads_no_engine():
    """`sqlml --help` stays fast: importing the CLI (and sqlml itself) loads no DuckDB, Arrow or LightGBM."""
    import subprocess
    import sys

    heavy = "('duckdb', 'pyarrow', 'lightgbm', 'numpy', 'sklearn', 'onnxruntime', 'onnx', 'skl2onnx', 'torch')"
    code = f"import sys, sqlml, sqlml.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_model_families_load_only_when_used():
    """A session that queries and scores a LightGBM model loads neither ONNX Runtime, skl2onnx nor PyTorch."""
    import subprocess
    import sys

    code = (
        "import sys, tempfile, sqlml\n"
        "con = sqlml.connect(catalog=tempfile.mkdtemp())\n"
        "con.sql('CREATE TABLE t AS SELECT i % 2 AS y, i * 1.0 AS x FROM range(100) r(i)')\n"
        "con.sql('TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = 2) AS SELECT * FROM t')\n"
        "con.sql('SELECT * FROM PREDICT(MODEL m, TABLE t)').fetchall()\n"
        "print(sorted(m for m in ('onnxruntime', 'onnx', 'skl2onnx', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
