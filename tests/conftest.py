"""Shared fixtures: both hot-path implementations, fresh databases, clean sessions."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--no-c-extensions`` leaves the compiled parameter out (for interpreters without it)."""
    parser.addoption(
        "--no-c-extensions",
        action="store_true",
        default=os.environ.get("NEXTORM_NO_EXTENSIONS", "") not in ("", "0"),
        help="run hot-path tests against the pure-Python twin only",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``speedups`` over the compiled module and its pure twin."""
    if "speedups" in metafunc.fixturenames:
        params = [pytest.param("_speedups_py", id="pure")]
        if not metafunc.config.getoption("--no-c-extensions"):
            params.insert(0, pytest.param("_speedups", id="compiled", marks=pytest.mark.c_extension))
        metafunc.parametrize("speedups", params, indirect=True)


@pytest.fixture
def speedups(request: pytest.FixtureRequest) -> ModuleType:
    """The hot-path module under test; the compiled one is imported directly, so a missing build errors."""
    return importlib.import_module(f"nextorm.{request.param}")


# -- ORM fixtures --------------------------------------------------------------------------------

import logging  # noqa: E402
import sqlite3  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import nextorm  # noqa: E402
from nextorm import Database, Optional, PrimaryKey, Required, set_sql_debug  # noqa: E402


@pytest.fixture
def db_path(tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A path for a fresh SQLite database file."""
    return str(tmp_path / "test.sqlite")


@pytest.fixture
def db(db_path: str) -> Iterator[Database]:
    """A Database bound to a fresh SQLite file, with no entities yet."""
    database = Database("sqlite", db_path, create_db=True)
    yield database
    database.disconnect()


@pytest.fixture
def Person(db: Database) -> type:
    """The Person entity of DESIGN.md, mapped onto a new table ``person``."""

    class Person(db.Entity):
        _table_ = "person"
        id = PrimaryKey(int, auto=True)
        name = Required(str, max_len=100)
        email = Optional(str, unique=True)
        age = Required(int, default=0)
        score = Required(float, default=0.0)

    db.generate_mapping(create_tables=True)
    return Person


@pytest.fixture
def other_connection(db_path: str) -> Iterator[sqlite3.Connection]:
    """A second, independent connection to the test database (autocommit), playing another client."""
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=5)
    yield conn
    conn.close()


class SqlLog(logging.Handler):
    """Collects the statements nextorm logs."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())

    @property
    def statements(self) -> list[str]:
        """The logged SQL without parameter lines; a batch reads ``EXECUTEMANY (n) <sql>``."""
        result = []
        for record in self.records:
            lines = record.split("\n")
            result.append(f"{lines[0]} {lines[1]}" if lines[0].startswith("EXECUTEMANY") else lines[0])
        return result

    def clear(self) -> None:
        self.records.clear()


@pytest.fixture
def sql_log() -> Iterator[SqlLog]:
    """Every statement nextorm runs (with parameters) while the test runs."""
    handler = SqlLog()
    logger = logging.getLogger("nextorm.sql")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    set_sql_debug(True, show_values=True)
    yield handler
    set_sql_debug(False, show_values=False)
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.fixture(autouse=True)
def no_session_left() -> Iterator[None]:
    """Every test must leave no db_session open behind it."""
    yield
    from nextorm._impl import current_session

    assert current_session.get() is None, "a db_session was left open"


@pytest.fixture(scope="session")
def implementation() -> str:
    """Which hot path the ORM loaded: 'compiled' or 'pure'."""
    return "compiled" if nextorm.COMPILED else "pure"
