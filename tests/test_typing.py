"""Types users lean on (README: Typing): mypy --strict and pyright --strict over typed examples.

Each ``# revealed: T`` comment in an example is the type the line's ``reveal_type`` must show, each
``# error`` marks a line the checker must reject, and no other line may have an error.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
#: the README's model in the typed spelling, for both checkers
MODEL = TESTS / "typecheck" / "model.py"
#: Pony's ``db.Entity`` spelling, which only pyright accepts
PONY_SPELLING = TESTS / "typecheck" / "pony_spelling.py"
QUICKSTART = TESTS.parent / "examples" / "quickstart.py"


def expectations(path: Path) -> tuple[dict[int, str], set[int]]:
    """The revealed types by line number and the lines that must fail, read from an example file."""
    revealed, errors = {}, set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if match := re.search(r"# revealed: (.+)$", line):
            revealed[number] = match.group(1).strip()
        elif re.search(r"# error$", line):
            errors.add(number)
    return revealed, errors


def unqualified(type_text: str) -> str:
    """A type as the model file spells it: no module prefixes, no ``def`` before a signature."""
    type_text = re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])", "", type_text)
    return type_text.removeprefix("def ")


def run_mypy(path: Path, scratch: Path) -> tuple[dict[int, str], dict[int, str]]:
    """mypy --strict over an example: revealed types and error messages by line."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            "",
            "--cache-dir",
            str(scratch / "mypy_cache"),
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=scratch,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    revealed, errors = {}, {}
    for line in done.stdout.splitlines():
        match = re.match(rf".*{re.escape(path.name)}:(\d+): (error|note): (.*)$", line)
        if not match:
            continue
        number, kind, message = int(match.group(1)), match.group(2), match.group(3)
        if kind == "error":
            errors[number] = message
        elif found := re.match(r'Revealed type is "(.*)"$', message):
            revealed[number] = unqualified(found.group(1))
    return revealed, errors


def run_pyright(path: Path, scratch: Path) -> tuple[dict[int, str], dict[int, str]]:
    """pyright in strict mode over an example: revealed types and errors by line."""
    config = scratch / "pyrightconfig.json"
    config.write_text(json.dumps({"typeCheckingMode": "strict"}))
    command = ["-m", "pyright", "--outputjson", "-p", str(config), "--pythonpath", sys.executable, str(path)]
    done = subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        cwd=scratch,
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


def check(checker: str, path: Path, scratch: Path) -> None:
    """Run ``checker`` over ``path`` and compare what it reveals and rejects with the file's comments."""
    expected_revealed, expected_errors = expectations(path)
    revealed, errors = (run_mypy if checker == "mypy" else run_pyright)(path, scratch)
    assert revealed == expected_revealed
    unexpected = {number: message for number, message in errors.items() if number not in expected_errors}
    assert unexpected == {}, f"{checker} rejects lines the model says are right"
    assert sorted(expected_errors - set(errors)) == [], f"{checker} accepts lines the model says are wrong"


@pytest.mark.parametrize("checker", ["mypy", "pyright"])
def test_model_types_as_the_readme_says(checker: str, tmp_path: Path) -> None:
    """Attributes, queries, lookups and db_session-decorated functions have the documented types; wrong ones fail."""
    check(checker, MODEL, tmp_path)


def test_pony_spelling_types_under_pyright(tmp_path: Path) -> None:
    """``class Person(db.Entity)`` gives the same precise types under pyright."""
    check("pyright", PONY_SPELLING, tmp_path)


@pytest.mark.parametrize("checker", ["mypy", "pyright"])
def test_quickstart_example_type_checks(checker: str, tmp_path: Path) -> None:
    """examples/quickstart.py passes both checkers in strict mode."""
    check(checker, QUICKSTART, tmp_path)
