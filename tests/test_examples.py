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


PONY_APP = EXAMPLES / "pony_app.py"
PONY_PYTHON = os.environ.get("NEXTORM_PONY_PYTHON", "")


def test_pony_app_ports_by_its_import_line(tmp_path: Path) -> None:
    """``examples/pony_app.py`` differs from a Pony application by its import line alone, and prints
    on nextorm what it prints on Pony (run by the interpreter ``NEXTORM_PONY_PYTHON`` names)."""
    source = PONY_APP.read_text()
    nextorm_import = "from nextorm import *  # the one line that differs from the Pony version: from pony.orm import *"
    assert source.count("nextorm") == source.count(nextorm_import) + source.count("nextorm-specific"), (
        "the example may name nextorm only in its import line and its docstring"
    )
    if not PONY_PYTHON:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("NEXTORM_PONY_PYTHON must name an interpreter with pony installed (CI=true)")
        pytest.skip("NEXTORM_PONY_PYTHON is not set: no interpreter with pony to compare with")
    pony_app = tmp_path / "pony_app_on_pony.py"
    pony_app.write_text(source.replace(nextorm_import, "from pony.orm import *"))
    outputs = []
    for python, script in ((sys.executable, PONY_APP), (PONY_PYTHON, pony_app)):
        proc = subprocess.run([python, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{script.name} on {python} failed:\n{proc.stdout}\n{proc.stderr}"
        outputs.append(proc.stdout.splitlines())
    on_nextorm, on_pony = outputs
    assert len(on_nextorm) > 15
    assert on_nextorm == on_pony
