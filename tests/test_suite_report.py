"""The test run says why it deselected tests (README, "Development")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_run_without_postgres_says_why_tests_were_deselected(tmp_path: Path) -> None:
    """Without ``NEXTORM_TEST_POSTGRES`` the summary counts the PostgreSQL tests it left out, and why."""
    env = {key: value for key, value in os.environ.items() if key not in ("NEXTORM_TEST_POSTGRES", "CI")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "tests" / "test_examples.py"),
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_example_runs_on_postgres" not in proc.stdout
    summary = re.search(
        r"^(\d+) PostgreSQL tests? deselected: NEXTORM_TEST_POSTGRES is not set$", proc.stdout, re.M
    )
    assert summary is not None, proc.stdout
    assert f"{summary[1]} deselected" in proc.stdout.splitlines()[-1]
