"""Shared fixtures: both hot-path implementations, fresh databases, clean sessions."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--no-c-extensions`` leaves the compiled parameter out; ``--soak`` runs the long reliability variants."""
    parser.addoption(
        "--no-c-extensions",
        action="store_true",
        default=os.environ.get("NEXTORM_NO_EXTENSIONS", "") not in ("", "0"),
        help="run hot-path tests against the pure-Python twin only",
    )
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="run the long variants of the reliability tests (full-size loads)",
    )


POSTGRES_DSN = os.environ.get("NEXTORM_TEST_POSTGRES", "")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers the suite uses."""
    config.addinivalue_line(
        "markers", "sqlite_only: the test pins SQLite-specific behaviour (not run on PostgreSQL)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``speedups`` over both hot paths and ``db_kind`` over SQLite and (when configured) PostgreSQL.

    Tests marked ``postgres`` get only the 'postgres' kind; without ``NEXTORM_TEST_POSTGRES`` they
    are deselected, which is a collection error under ``CI=true``.
    """
    if "db_kind" in metafunc.fixturenames:
        if metafunc.definition.get_closest_marker("postgres"):
            if not POSTGRES_DSN and os.environ.get("CI", "").lower() == "true":
                raise pytest.UsageError(
                    f"{metafunc.definition.nodeid} needs PostgreSQL but NEXTORM_TEST_POSTGRES is not set (CI=true)"
                )
            kinds = ["postgres"]  # deselected in pytest_collection_modifyitems without a server
        else:
            kinds = ["sqlite"]
            if POSTGRES_DSN and not metafunc.definition.get_closest_marker("sqlite_only"):
                kinds.append("postgres")
        metafunc.parametrize("db_kind", kinds, indirect=True)
    if "speedups" in metafunc.fixturenames:
        params = [pytest.param("_speedups_py", id="pure")]
        if not metafunc.config.getoption("--no-c-extensions"):
            params.insert(0, pytest.param("_speedups", id="compiled", marks=pytest.mark.c_extension))
        metafunc.parametrize("speedups", params, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (not skip) what cannot run here: twin comparisons under ``--no-c-extensions``,
    PostgreSQL-only tests without ``NEXTORM_TEST_POSTGRES``."""
    no_compiled = config.getoption("--no-c-extensions")
    kept, dropped = [], []
    reasons = config.stash.setdefault(DESELECTED, {})
    for item in items:
        if no_compiled and "twins" in getattr(item, "fixturenames", ()):
            reason = "twin-comparison test{s} deselected: the run leaves the compiled hot path out (--no-c-extensions)"
        elif not POSTGRES_DSN and item.get_closest_marker("postgres") is not None:
            reason = "PostgreSQL test{s} deselected: NEXTORM_TEST_POSTGRES is not set"
        else:
            kept.append(item)
            continue
        reasons[reason] = reasons.get(reason, 0) + 1
        dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


#: why tests were deselected, and how many for each reason
DESELECTED = pytest.StashKey[dict[str, int]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say why tests were deselected, one line per reason."""
    for reason, count in config.stash.get(DESELECTED, {}).items():
        terminalreporter.write_line(f"{count} {reason.format(s='' if count == 1 else 's')}")


@pytest.fixture
def speedups(request: pytest.FixtureRequest) -> ModuleType:
    """The hot-path module under test; the compiled one is imported directly, so a missing build errors."""
    return importlib.import_module(f"nextorm.{request.param}")


# -- ORM fixtures --------------------------------------------------------------------------------

import logging  # noqa: E402
import sqlite3  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import nextorm  # noqa: E402
from nextorm import AsyncDatabase, Database, Optional, PrimaryKey, Required, set_sql_debug  # noqa: E402


@pytest.fixture
def db_path(tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A path for a fresh SQLite database file."""
    return str(tmp_path / "test.sqlite")


@pytest.fixture
def db_kind(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on: 'sqlite' or 'postgres'."""
    return str(request.param)


@pytest.fixture
def pg_schema(db_kind: str) -> Iterator[str | None]:
    """A fresh PostgreSQL schema for the test (dropped afterwards); None on SQLite."""
    if db_kind != "postgres":
        yield None
        return
    import uuid

    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def db(db_kind: str, db_path: str, pg_schema: str | None) -> Iterator[Database]:
    """A Database with no entities yet: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if db_kind == "postgres":
        database = Database("postgres", dsn=POSTGRES_DSN, options=f"-c search_path={pg_schema}")
    else:
        database = Database("sqlite", db_path, create_db=True)
    yield database
    database.disconnect()


@pytest.fixture
def adb(db_kind: str, db_path: str, pg_schema: str | None) -> Iterator[AsyncDatabase]:
    """An AsyncDatabase with no entities yet, on the storage ``db`` uses (the same SQLite file or schema)."""
    if db_kind == "postgres":
        database = AsyncDatabase("postgres", dsn=POSTGRES_DSN, options=f"-c search_path={pg_schema}")
    else:
        database = AsyncDatabase("sqlite", db_path, create_db=True)
    yield database
    database.disconnect()


@pytest.fixture
def another_db(db: Database, db_kind: str, db_path: str, pg_schema: str | None) -> Iterator[Database]:
    """A second Database with no entities yet, on the same storage as ``db`` (same SQLite file or schema)."""
    if db_kind == "postgres":
        database = Database("postgres", dsn=POSTGRES_DSN, options=f"-c search_path={pg_schema}")
    else:
        database = Database("sqlite", db_path)
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


class PostgresClient:
    """Another client of the test schema, with sqlite3's ``execute(sql, params)`` and ``?`` placeholders."""

    def __init__(self, schema: str) -> None:
        import psycopg

        self.conn = psycopg.connect(POSTGRES_DSN, autocommit=True, options=f"-c search_path={schema}")

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.conn.execute(sql.replace("%", "%%").replace("?", "%s"), params)

    def executemany(self, sql: str, rows: Any) -> Any:
        cursor = self.conn.cursor()
        cursor.executemany(sql.replace("%", "%%").replace("?", "%s"), rows)
        return cursor

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def other_connection(db: Database, db_path: str, pg_schema: str | None) -> Iterator[Any]:
    """A second, independent autocommit connection to the test database, playing another client."""
    conn: Any = (
        PostgresClient(pg_schema) if pg_schema else sqlite3.connect(db_path, isolation_level=None, timeout=5)
    )
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
