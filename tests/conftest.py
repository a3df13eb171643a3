"""Shared fixtures: a session on a fresh catalog, and the CLI as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# as the CLI does: LightGBM's idle OpenMP threads wait passively (set before LightGBM loads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import sqlml  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return tmp_path / "catalog"


@pytest.fixture
def con(catalog: Path) -> sqlml.Session:
    session = sqlml.connect(catalog=catalog)
    yield session
    session.close()


def run_cli(
    *args: str, stdin: str | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m sqlml ARGS` as a separate process."""
    env = {k: v for k, v in os.environ.items() if k != "SQLML_CATALOG"}
    return subprocess.run(
        [sys.executable, "-m", "sqlml", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=timeout,
    )
