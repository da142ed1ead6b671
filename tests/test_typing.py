"""Types users lean on (README: Typing): mypy --strict and pyright --strict agree with tests/typecheck/model.py.

Each ``# revealed: T`` comment in that file is the type the line's ``reveal_type`` must show, each
``# error`` marks a line both checkers must reject, and no other line may have an error.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parent / "typecheck" / "model.py"


def expectations() -> tuple[dict[int, str], set[int]]:
    """The revealed types by line number and the lines that must fail, read from the model file."""
    revealed, errors = {}, set()
    for number, line in enumerate(MODEL.read_text().splitlines(), start=1):
        if match := re.search(r"# revealed: (.+)$", line):
            revealed[number] = match.group(1).strip()
        elif re.search(r"# error$", line):
            errors.add(number)
    return revealed, errors


def unqualified(type_text: str) -> str:
    """A type as the model file spells it: no module prefixes, no ``def`` before a signature."""
    type_text = re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])", "", type_text)
    return type_text.removeprefix("def ")


def run_mypy(cache: Path) -> tuple[dict[int, str], dict[int, str]]:
    """mypy --strict over the model: revealed types and error messages by line."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            "",
            "--cache-dir",
            str(cache),
            str(MODEL),
        ],
        capture_output=True,
        text=True,
        cwd=MODEL.parent,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    revealed, errors = {}, {}
    for line in done.stdout.splitlines():
        match = re.match(r".*model\.py:(\d+): (error|note): (.*)$", line)
        if not match:
            continue
        number, kind, message = int(match.group(1)), match.group(2), match.group(3)
        if kind == "error":
            errors[number] = message
        elif found := re.match(r'Revealed type is "(.*)"$', message):
            revealed[number] = unqualified(found.group(1))
    return revealed, errors


def run_pyright() -> tuple[dict[int, str], dict[int, str]]:
    """pyright (strict, by the model's own comment) over the model: revealed types and errors by line."""
    done = subprocess.run(
        [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable, str(MODEL)],
        capture_output=True,
        text=True,
        cwd=MODEL.parent,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    report = json.loads(done.stdout)
    revealed, errors = {}, {}
    for diagnostic in report["generalDiagnostics"]:
        number = diagnostic["range"]["start"]["line"] + 1
        message = diagnostic["message"]
        if diagnostic["severity"] == "error":
            errors[number] = message
        elif found := re.match(r'Type of ".*" is "(.*)"$', message, re.DOTALL):
            revealed[number] = unqualified(found.group(1))
    return revealed, errors


@pytest.mark.parametrize("checker", ["mypy", "pyright"])
def test_model_types_as_the_readme_says(checker: str, tmp_path: Path) -> None:
    """Attributes, queries, lookups and db_session-decorated functions have the documented types; wrong ones fail."""
    expected_revealed, expected_errors = expectations()
    assert expected_revealed and expected_errors
    revealed, errors = run_mypy(tmp_path) if checker == "mypy" else run_pyright()
    assert revealed == expected_revealed
    unexpected = {number: message for number, message in errors.items() if number not in expected_errors}
    assert unexpected == {}, f"{checker} rejects lines the model says are right"
    assert sorted(expected_errors - set(errors)) == [], f"{checker} accepts lines the model says are wrong"
