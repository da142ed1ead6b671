"""Shared fixtures of the reliability tests: the test's storage, plain clients of it, documented errors, --soak."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

import nextorm
from nextorm import AsyncDatabase, Database

POSTGRES_DSN = os.environ.get("NEXTORM_TEST_POSTGRES", "")

#: every exception class the package documents (``nextorm.__all__``)
DOCUMENTED_ERRORS = frozenset(
    value
    for value in (getattr(nextorm, name) for name in nextorm.__all__)
    if isinstance(value, type) and issubclass(value, BaseException)
)


class Client:
    """A plain autocommit connection to the test's storage (not nextorm's), with ``?`` placeholders."""

    def __init__(self, kind: str, path: str, schema: str | None) -> None:
        self.kind = kind
        if kind == "postgres":
            import psycopg

            self.conn: Any = psycopg.connect(
                POSTGRES_DSN, autocommit=True, options=f"-c search_path={schema}"
            )
        else:
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=10)

    def execute(self, sql: str, params: Any = ()) -> Any:
        """Run one statement; returns the cursor."""
        if self.kind == "postgres":
            sql = sql.replace("%", "%%").replace("?", "%s")
        return self.conn.execute(sql, params)

    def rows(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """All rows of a query, as tuples."""
        return [tuple(row) for row in self.execute(sql, params).fetchall()]

    def backend_pid(self) -> int:
        """The server process of this connection (PostgreSQL)."""
        return int(self.conn.info.backend_pid)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


class Storage:
    """Where a test's data lives (a SQLite file or a PostgreSQL schema): nextorm databases and plain clients on it."""

    def __init__(self, kind: str, path: str, schema: str | None) -> None:
        self.kind = kind
        self.path = path
        self.schema = schema
        self.databases: list[Database] = []
        self.clients: list[Client] = []

    def database(self, asyncio: bool = False, sqlite_timeout: float = 5.0) -> Any:
        """A new Database (AsyncDatabase when ``asyncio``) with no entities, closed after the test."""
        cls = AsyncDatabase if asyncio else Database
        if self.kind == "postgres":
            database = cls("postgres", dsn=POSTGRES_DSN, options=f"-c search_path={self.schema}")
        else:
            database = cls("sqlite", self.path, create_db=True, timeout=sqlite_timeout)
        self.databases.append(database)
        return database

    def client(self) -> Client:
        """A plain autocommit connection, closed after the test."""
        client = Client(self.kind, self.path, self.schema)
        self.clients.append(client)
        return client

    def fetch(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """The rows of a query run on a fresh connection (opened and closed for it): what is committed."""
        client = Client(self.kind, self.path, self.schema)
        try:
            return client.rows(sql, params)
        finally:
            client.close()

    def run(self, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """``asyncio.run(main())``, closing the connections async databases pooled on that loop before it ends."""

        async def wrapper() -> Any:
            try:
                return await main()
            finally:
                for database in self.databases:
                    if isinstance(database, AsyncDatabase):
                        await database.adisconnect()

        return asyncio.run(wrapper())

    def close(self) -> None:
        """Close every client and pooled connection."""
        for client in self.clients:
            client.close()
        for database in self.databases:
            database.disconnect()


@pytest.fixture
def storage(db_kind: str, db_path: str, pg_schema: str | None) -> Iterator[Storage]:
    """The test's storage: a fresh SQLite file, or a fresh PostgreSQL schema."""
    store = Storage(db_kind, db_path, pg_schema)
    yield store
    store.close()


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    """Whether sessions run on a Database ('sync', threads) or an AsyncDatabase ('async', asyncio tasks)."""
    return str(request.param)


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> bool:
    """Whether ``--soak`` asks for the long variants."""
    return bool(request.config.getoption("--soak"))


def error_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it wraps: causes, contexts, ``exceptions`` lists, ``original_exc``."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop()
        if any(current is other for other in seen):
            continue
        seen.append(current)
        wrapped = [current.__cause__, current.__context__, getattr(current, "original_exc", None)]
        todo.extend(e for e in [*wrapped, *(getattr(current, "exceptions", None) or [])] if e is not None)
    return seen


@pytest.fixture
def documented() -> Callable[[BaseException], None]:
    """An assertion: the exception is of a class nextorm documents (listed in ``nextorm.__all__``)."""

    def check(exc: BaseException) -> None:
        assert type(exc) in DOCUMENTED_ERRORS, (
            f"undocumented {type(exc).__module__}.{type(exc).__qualname__}: {exc}"
        )

    return check


@pytest.fixture
def chain() -> Callable[[BaseException], list[BaseException]]:
    """``error_chain``: an exception and every exception it wraps."""
    return error_chain
