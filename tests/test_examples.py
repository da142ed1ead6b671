"""Every script under ``examples/`` runs to completion, as the README and the docs tell users to run it.

Each runs in a fresh interpreter on its default (SQLite) database; the scripts that read
``NEXTORM_EXAMPLE_DSN`` run again on PostgreSQL, in a fresh schema of the database named by
``NEXTORM_TEST_POSTGRES``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


POSTGRES_SCRIPTS = [script for script in SCRIPTS if "NEXTORM_EXAMPLE_DSN" in script.read_text()]


def run_example(script: Path, cwd: Path, dsn: str | None = None) -> None:
    """Run ``script`` in a fresh interpreter (on ``dsn`` when given); fail with its output unless it exits 0."""
    env = {key: value for key, value in os.environ.items() if key != "NEXTORM_EXAMPLE_DSN"}
    if dsn is not None:
        env["NEXTORM_EXAMPLE_DSN"] = dsn
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.name for script in SCRIPTS])
def test_example_runs_on_sqlite(script: Path, tmp_path: Path) -> None:
    """The script exits 0 with its default database."""
    run_example(script, tmp_path)


@pytest.mark.postgres
@pytest.mark.parametrize("script", POSTGRES_SCRIPTS, ids=[script.name for script in POSTGRES_SCRIPTS])
def test_example_runs_on_postgres(script: Path, db_kind: str, pg_schema: str, tmp_path: Path) -> None:
    """A script that reads ``NEXTORM_EXAMPLE_DSN`` exits 0 on PostgreSQL, in a schema of its own."""
    dsn = os.environ["NEXTORM_TEST_POSTGRES"]
    options = urllib.parse.quote(f"-c search_path={pg_schema}")
    run_example(script, tmp_path, f"{dsn}{'&' if '?' in dsn else '?'}options={options}")
