"""The README's SQL session and Python example run as written, and the reference documents
every statement, trainer, parameter, metric and CLI command."""

from __future__ import annotations

import re
import runpy

from sqlml import metrics, models
from sqlml.cli import app
from sqlml.train_options import OPTIONS
from tests.conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text()
REFERENCE = (ROOT / "docs" / "reference.md").read_text()
BIGQUERY_ML = (ROOT / "docs" / "bigquery-ml.md").read_text()


def block(after: str, lang: str) -> str:
    section = README[README.index(after) :]
    return re.search(rf"```{lang}\n(.*?)```", section, re.S).group(1)


def test_readme_sql_session_runs_and_error_example_is_true(tmp_path):
    session = block("## A SQL session", "sql")
    (tmp_path / "session.sql").write_text(session)
    proc = run_cli("run", "session.sql", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "churn" in proc.stdout and "lightgbm_classifier" in proc.stdout

    (tmp_path / "session.sql").write_text(session.replace("EVALUATE MODEL churn;", "EVALUATE MODEL chrun;"))
    proc = run_cli("run", "session.sql", cwd=tmp_path)
    shown = block("Errors point at the place", "text")
    assert proc.stderr.strip() == shown.strip()


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    (tmp_path / "example.py").write_text(block("## The same in Python", "python"))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(tmp_path / "example.py"))
    out = capsys.readouterr().out
    assert "3000 ['prediction', 'probability', 'probabilities', 'model_version']" in out


def test_bigquery_ml_mapping_names_every_option_and_function():
    from sqlml.bigquery import _NOT_HERE, KNOWN, MODEL_TYPES
    from sqlml.bigquery_sql import BIGQUERY_ML_MISSING

    for option in KNOWN:
        assert f"`{option}`" in BIGQUERY_ML, option
    for model_type in [*MODEL_TYPES, "onnx"]:
        assert model_type in BIGQUERY_ML, model_type
    for name in BIGQUERY_ML_MISSING:
        assert name in BIGQUERY_ML, name
    assert len(_NOT_HERE) >= 10


def test_readme_commands_are_the_ci_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[dev,torch,dask,kafka]'" in README and "pip install -e '.[dev,torch,dask,kafka]'" in ci
    assert "sqlml run queries/quickstart.sql" in README and "sqlml run queries/quickstart.sql" in ci


def test_reference_documents_everything():
    for heading in [
        "TRAIN MODEL",
        "EVALUATE MODEL",
        "PREDICT",
        "SHOW MODELS",
        "DESCRIBE MODEL",
        "EXPLAIN MODEL",
        "DROP MODEL",
        "IMPORT MODEL",
        "Model families",
        "TRANSFORM",
        "Hyperparameter search",
        "Result functions",
        "CREATE MODEL (BigQuery ML)",
    ]:
        assert f"\n## {heading}\n" in REFERENCE, heading
    from sqlml.bigquery_sql import MODEL_FUNCTIONS, PREDICT_FUNCTIONS, PREPROCESSING

    for function in (*MODEL_FUNCTIONS, *PREDICT_FUNCTIONS, *PREPROCESSING):
        assert f"`{function}(" in REFERENCE + BIGQUERY_ML or f"`{function}`" in REFERENCE + BIGQUERY_ML, function
    for name in models.names():
        assert name in REFERENCE
    for option in OPTIONS:
        assert f"`{option}`" in REFERENCE
    for task in metrics.HEADLINE:
        for metric in metrics.for_task(task):
            assert metric.name in REFERENCE
    for command in app.registered_commands:
        assert f"`sqlml {command.name or command.callback.__name__}" in REFERENCE
    from sqlml.repl import Repl

    for meta in [*Repl.__new__(Repl).commands(), ".quit", ".exit", "\\q"]:
        assert f"`{meta}" in REFERENCE.replace("\\\\", "\\"), meta
    import inspect

    from sqlml.api import Result, Session

    for cls in (Session, Result):
        for name, _ in inspect.getmembers(cls):
            if not name.startswith("_"):
                assert f"`{name}" in REFERENCE, f"{cls.__name__}.{name}"
    from sqlml.dialect import WINDOW_KINDS
    from sqlml.stream.streams import CONNECTORS, FORMATS
    from sqlml.stream.streams import OPTIONS as STREAM_OPTIONS

    for word in [*WINDOW_KINDS, *CONNECTORS, *FORMATS, *STREAM_OPTIONS]:
        assert word in REFERENCE, word
