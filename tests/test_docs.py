"""Every ```python block of README.md and docs/*.md runs, so the documentation cannot drift.

The convention (also in docs/contributing.md):

- The ```python blocks of one Markdown file run in order, in one namespace of their own, in a
  fresh temporary working directory: a later block may use what an earlier one defined, and
  relative paths such as ``app.db`` land in that directory.
- A block with a top-level ``await``, ``async with`` or ``async for`` is run as a coroutine on
  the file's event loop; one loop serves every block of the file, so an ``AsyncDatabase``
  connected in one block is usable in the next.
- A file whose blocks name the ``postgres`` provider (or a ``postgresql://`` DSN) runs on the
  server of ``NEXTORM_TEST_POSTGRES``, in a fresh schema: every PostgreSQL connection its blocks
  ask for (``host=``, ``user=``, ``dsn=``, ``replicas=``...) is redirected there, and pool
  options are kept. Without that variable such a file is deselected, and the run says so.
- ``reveal_type(x)`` may be written bare, as type checkers accept it: at run time it is
  ``typing.reveal_type``, which prints the type and returns ``x``.
- A block that must not run (a fragment, a shell transcript) is preceded by the line
  ``<!-- docs: no-run -->``; other languages (```bash, ```text) never run.
- A failure names the file and the line of the block, and the traceback points into the
  Markdown file, at the line that failed.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import linecache
import os
import re
import typing
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import nextorm.database
from nextorm import AsyncDatabase, Database

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
NO_RUN = "<!-- docs: no-run -->"
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
#: keyword arguments of Database.bind that say where a PostgreSQL server is
CONNECTION_KEYS = {"dsn", "conninfo", "host", "port", "user", "password", "database", "dbname", "options"}


@dataclass
class Block:
    """One ```python block: the file, the line its code starts on, and the code."""

    path: Path
    line: int
    code: str

    def where(self) -> str:
        """``file:line`` of the block's first line of code, relative to the repository."""
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"

    def compiled(self) -> Any:
        """The block compiled so tracebacks point at the Markdown file's own line numbers.

        The block is the file's source while it runs: queries in Pony's syntax read it there.
        """
        source = "\n" * (self.line - 1) + self.code
        linecache.cache[str(self.path)] = (len(source), None, source.splitlines(True), str(self.path))
        return compile(source, str(self.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

    def needs_postgres(self) -> bool:
        """Whether the code names the postgres provider or a PostgreSQL DSN (comments aside)."""
        try:
            tree = ast.parse(self.code)
        except SyntaxError:
            return False  # reported, with its line, when the block runs
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value in ("postgres", "postgresql") or node.value.startswith("postgresql://"):
                    return True
        return False


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of ``path``, without those marked ``<!-- docs: no-run -->``."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    previous = ""
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            if lines[index].strip():
                previous = lines[index].strip()
            index += 1
            continue
        indent, fence, lang = match["indent"], match["fence"], match["lang"]
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index][len(indent) :] if lines[index].startswith(indent) else lines[index])
            index += 1
        if lang == "python" and previous != NO_RUN:
            blocks.append(Block(path, index - len(body) + 1, "\n".join(body) + "\n"))
        previous = ""
        index += 1
    return blocks


def needs_postgres(path: Path) -> bool:
    """Whether any block of ``path`` needs a PostgreSQL server."""
    return any(block.needs_postgres() for block in python_blocks(path))


RUNNABLE = [path for path in DOCS if python_blocks(path)]
SQLITE_DOCS = [path for path in RUNNABLE if not needs_postgres(path)]
POSTGRES_DOCS = [path for path in RUNNABLE if needs_postgres(path)]


def ids(paths: list[Path]) -> list[str]:
    """Test ids: paths relative to the repository."""
    return [str(path.relative_to(ROOT)) for path in paths]


def run_blocks(path: Path) -> None:
    """Run the blocks of ``path`` in order in one namespace and on one event loop."""
    # reveal_type() is a type checker's built-in; at run time typing's prints the type and passes the value.
    namespace: dict[str, Any] = {"__name__": "__docs__", "reveal_type": typing.reveal_type}
    with asyncio.Runner() as runner:
        try:
            for block in python_blocks(path):
                try:
                    code = block.compiled()
                    if code.co_flags & inspect.CO_COROUTINE:
                        runner.run(eval(code, namespace))
                    else:
                        exec(code, namespace)
                except Exception as exc:
                    raise AssertionError(
                        f"the ```python block at {block.where()} failed: {type(exc).__name__}: {exc}"
                    ) from exc
        finally:
            for value in namespace.values():
                if isinstance(value, AsyncDatabase):
                    runner.run(value.adisconnect())
                elif isinstance(value, Database):
                    value.disconnect()


@pytest.fixture
def docs_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory for one file's blocks."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_blocks_are_found() -> None:
    """The README's tour and asyncio blocks are among the blocks this module runs."""
    assert len(python_blocks(ROOT / "README.md")) >= 2
    assert ROOT / "README.md" in RUNNABLE


def test_failure_names_file_and_line(tmp_path: Path, docs_cwd: Path) -> None:
    """A failing block is reported with its file and line; the traceback points into the Markdown."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n```python\nx = 1\n```\n\n<!-- docs: no-run -->\n```python\nundefined_name\n```\n\n"
        "```bash\nexit 1\n```\n\n```python\nassert x == 1\ny = x / 0\n```\n"
    )
    assert [block.line for block in python_blocks(page)] == [4, 17]
    assert not any(block.needs_postgres() for block in python_blocks(page))
    with pytest.raises(AssertionError, match=r"page\.md:17 failed: ZeroDivisionError") as info:
        run_blocks(page)
    frames = [(frame.filename, frame.lineno) for frame in traceback_frames(info.value.__cause__)]
    assert (str(page), 18) in frames


def test_syntax_error_names_file_and_line(tmp_path: Path, docs_cwd: Path) -> None:
    """A block that does not parse is reported like any other failure, with its file and line."""
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python\nx = (\n```\n")
    with pytest.raises(AssertionError, match=r"page\.md:4 failed: SyntaxError"):
        run_blocks(page)


def test_async_blocks_share_one_event_loop(tmp_path: Path, docs_cwd: Path) -> None:
    """Blocks with a top-level ``await`` run on one loop and see earlier names; ``reveal_type`` is there."""
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nimport asyncio\nawait asyncio.sleep(0)\nloop = asyncio.get_running_loop()\n```\n"
        "```python\nn = 2\n```\n"
        "```python\nawait asyncio.sleep(0)\nassert asyncio.get_running_loop() is loop and n == 2\n```\n"
        "```python\nassert reveal_type(n) == 2\n```\n"
    )
    run_blocks(page)


def traceback_frames(exc: BaseException | None) -> list[Any]:
    """The frames of ``exc``'s traceback."""
    import traceback

    return list(traceback.extract_tb(exc.__traceback__)) if exc is not None else []


@pytest.mark.parametrize("path", SQLITE_DOCS, ids=ids(SQLITE_DOCS))
def test_python_blocks_run(path: Path, docs_cwd: Path) -> None:
    """Every ```python block of the file runs without error."""
    run_blocks(path)


if POSTGRES_DOCS:  # pytest reports an empty parameter list as a skip; without such files there is no test

    @pytest.mark.postgres
    @pytest.mark.parametrize("path", POSTGRES_DOCS, ids=ids(POSTGRES_DOCS))
    def test_python_blocks_run_on_postgres(
        path: Path, db_kind: str, postgres_redirect: str, docs_cwd: Path
    ) -> None:
        """Every ```python block of a file that uses PostgreSQL runs against the test server."""
        run_blocks(path)


@pytest.fixture
def postgres_redirect(monkeypatch: pytest.MonkeyPatch, pg_schema: str) -> Iterator[str]:
    """Send every PostgreSQL connection the blocks ask for to the test server, in ``pg_schema``."""
    options = urllib.parse.quote(f"-c search_path={pg_schema}")
    base = os.environ["NEXTORM_TEST_POSTGRES"]
    dsn = f"{base}{'&' if '?' in base else '?'}options={options}"
    real = nextorm.database.get_provider

    def get_provider(provider: str, *args: Any, **kwargs: Any) -> Any:
        if provider in ("postgres", "postgresql"):
            kwargs = {key: value for key, value in kwargs.items() if key not in CONNECTION_KEYS}
            if "replicas" in kwargs:
                kwargs["replicas"] = [dsn for _ in kwargs["replicas"]]
            return real(provider, dsn=dsn, **kwargs)
        return real(provider, *args, **kwargs)

    monkeypatch.setattr(nextorm.database, "get_provider", get_provider)
    yield dsn
