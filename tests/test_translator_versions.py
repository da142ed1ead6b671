"""Generator, lambda and text queries translate the same on every Python from 3.11 on the machine.

The queries of tests/translator_queries.py run under each interpreter ``pyenv`` knows (README,
"Queries in Pony's syntax": translated from the syntax tree, so no Python version changes them),
on the pure-Python twin, and must give this interpreter's statements, parameters and results.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nextorm

WORKER = Path(__file__).with_name("translator_queries.py")


def other_pythons() -> list[Path]:
    """The interpreters of pyenv's versions from 3.11 on, other than this one."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = []
    for directory in sorted((root / "versions").glob("3.*")):
        parts = directory.name.split(".")
        python = directory / "bin" / "python"
        if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) >= 11 and python.exists():
            if directory.name != ".".join(map(str, sys.version_info[:3])):
                found.append(python)
    return found


def run_queries(python: str, package_parent: Path) -> dict:  # type: ignore[type-arg]
    """The worker's report under ``python`` with nextorm imported from ``package_parent``."""
    env = dict(
        os.environ, PYTHONPATH=str(package_parent), NEXTORM_NO_EXTENSIONS="1", PYTHONDONTWRITEBYTECODE="1"
    )
    done = subprocess.run(
        [python, "-s", str(WORKER)], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def pure_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the nextorm package without its compiled module (it is built for one Python only)."""
    parent = tmp_path_factory.mktemp("pure")
    shutil.copytree(
        Path(nextorm.__file__).parent,
        parent / "nextorm",
        ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"),
    )
    return parent


@pytest.fixture(scope="module")
def reference(pure_package: Path) -> dict:  # type: ignore[type-arg]
    """The report of this interpreter."""
    return run_queries(sys.executable, pure_package)


def test_reference_report_translates_and_refuses(reference: dict) -> None:  # type: ignore[type-arg]
    """The worker's queries translate (with results) and its unsupported one is refused by name."""
    queries = reference["queries"]
    assert queries["generator"]["result"] == ["Bob", "Dan"]
    assert queries["multiline"]["result"] == ["Bob", "Dan"]
    assert queries["order"]["result"] == ["Dan", "Cyn", "Bob", "Ann"]
    assert queries["reference-path"]["result"] == ["Ann", "Bob"]
    assert queries["collection"]["result"] == ["Ann", "Bob"]
    assert queries["nested-exists"]["result"] == ["Bob", "Cyn", "Dan"]
    assert queries["in-subquery"]["result"] == ["Ann", "Dan"]
    assert queries["several-for"]["result"] == ["Bob"]
    assert queries["left-join"]["result"] == ["blue", "red"]
    assert queries["over-a-query"]["result"] == ["Bob"]
    assert queries["unsupported"]["error"] == "UnsupportedQueryError"
    assert "The operator LShift" in queries["unsupported"]["message"]
    assert queries["arithmetic"]["result"] == ["Bob", "Cyn", "Dan"]
    assert queries["aggregates-grouped"]["result"] == [[True, 3, 100]]
    assert queries["order-position"]["result"][0] == ["Dan", 50]
    assert queries["f-string"]["result"] == ["Ann"]


@pytest.mark.parametrize("python", other_pythons(), ids=lambda p: p.parent.parent.name)
def test_queries_translate_the_same_under_every_python(
    python: Path, pure_package: Path, reference: dict
) -> None:  # type: ignore[type-arg]
    """Each interpreter gives the statements, parameters, results and errors this one gives."""
    report = run_queries(str(python), pure_package)
    assert report["python"] == python.parent.parent.name
    assert report["queries"] == reference["queries"]
