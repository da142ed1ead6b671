"""SQLite through the standard library's sqlite3: the embedded default."""

from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from ..exceptions import (
    BindingError,
    ConnectionClosedError,
    OrmError,
    SerializationFailure,
    TransactionIntegrityError,
)
from ..types import Json
from .base import Provider

__all__ = ["SQLiteProvider"]

_memory_numbers = itertools.count(1)

_SQL_TYPES = {
    int: "INTEGER",
    str: "TEXT",
    float: "REAL",
    bool: "BOOLEAN",
    datetime: "TEXT",
    date: "TEXT",
    time: "TEXT",
    timedelta: "INTEGER",
    bytes: "BLOB",
    UUID: "TEXT",
    Json: "TEXT",
}


class SQLiteProvider(Provider):
    """One SQLite file (a connection per thread) or an in-memory database (one shared connection)."""

    name = "sqlite"
    param = "?"

    def __init__(self, filename: str = ":memory:", create_db: bool = False, timeout: float = 5.0) -> None:
        if not isinstance(filename, str):
            raise BindingError(f"SQLite filename must be a str, got {filename!r}")
        self.memory = filename == ":memory:"
        if self.memory:
            # a named shared-cache database, so that every session can have its own connection;
            # the anchor connection keeps it alive as long as the provider exists
            self.filename = f"file:nextorm-memory-{next(_memory_numbers)}?mode=memory&cache=shared"
        else:
            self.filename = os.path.abspath(filename)
            if not create_db and not os.path.exists(self.filename):
                raise BindingError(f"Database file is not found: {self.filename!r} (pass create_db=True)")
        super().__init__()
        self.timeout = timeout
        self._anchor = self.connect() if self.memory else None
        if not self.memory:
            self.connect().close()

    def connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.filename,
                timeout=self.timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=self.memory,
            )
        except sqlite3.Error as exc:
            raise BindingError(f"Cannot open SQLite database {self.filename!r}: {exc}") from exc
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    # -- dialect ---------------------------------------------------------------------------------

    def usable(self, conn: Any) -> bool:
        # a connection left inside a transaction (a BEGIN whose caller saw an error) is not pooled:
        # closing it rolls back and frees the database lock
        return not conn.in_transaction

    def usable_for_rollback(self, conn: Any) -> bool:
        # SQLite ends the transaction by itself on some errors (disk full, I/O error)
        return bool(conn.in_transaction)

    def strict_quote(self, name: str) -> str:
        """``name`` quoted so that an unknown column is an error (a double-quoted one may read as a string)."""
        return "`" + name.replace("`", "``") + "`"

    def for_update_clause(self, mode: str) -> str:
        # SQLite locks the whole database instead: the session begins with BEGIN IMMEDIATE.
        return ""

    def string_test(self, op: str, column: str, value: str, params: list[Any]) -> str:
        if value == "":
            return f"{column} IS NOT NULL"
        if op == "startswith":
            params.append(value)
            return f"instr({column}, ?) = 1"
        if op == "contains":
            params.append(value)
            return f"instr({column}, ?) > 0"
        params.extend((len(value), value))
        return f"substr({column}, -?) = ?"

    def sql_type(self, attr: Any) -> str:
        if attr.sql_type:
            return attr.sql_type
        if attr.py_type is Decimal:
            return f"DECIMAL({attr.precision or 12}, {2 if attr.scale is None else attr.scale})"
        return _SQL_TYPES[attr.py_type]

    def in_values_sql(self, column: str, values: list[Any], params: list[Any]) -> str:
        # a long list of ints or strs goes as one JSON parameter: one statement, any length
        if len(values) <= 8 or not all(type(v) in (int, str) for v in values):
            return super().in_values_sql(column, values, params)
        params.append(json.dumps(values))
        return f"{column} IN (SELECT value FROM json_each(?))"

    def auto_pk_sql(self, attr: Any) -> str:
        return f"{self.quote(attr.column)} INTEGER PRIMARY KEY AUTOINCREMENT"

    # -- statements ------------------------------------------------------------------------------

    def insert_returning(self, conn: Any, sql: str, params: Sequence[Any], pk_column: str | None) -> Any:
        if pk_column is None:
            return self.run(conn, sql, params).lastrowid
        return self.run(conn, f"{sql} RETURNING {self.strict_quote(pk_column)}", params).rows[0][0]

    def table_columns_query(self, table: str) -> tuple[str, tuple[Any, ...], int]:
        return f"PRAGMA table_info({self.quote(table)})", (), 1

    def constraint_columns(self, exc: BaseException) -> list[str]:
        # "UNIQUE constraint failed: person.email, person.name" / "NOT NULL constraint failed: person.name"
        match = re.search(r"constraint failed: (.+)$", str(exc))
        if not match:
            return []
        return [part.strip().rpartition(".")[2] for part in match.group(1).split(",")]

    def translate_error(self, exc: BaseException) -> OrmError:
        if isinstance(exc, sqlite3.IntegrityError):
            error: OrmError = TransactionIntegrityError(f"{type(exc).__name__}: {exc}")
        elif isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
            error = SerializationFailure(f"The database is locked by another transaction: {exc}")
        elif isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc):
            error = ConnectionClosedError(f"The database connection was closed: {exc}")
        else:
            return super().translate_error(exc)
        error.original_exc = exc  # type: ignore[attr-defined]
        return error


class AsyncSQLiteProvider(SQLiteProvider):
    """SQLite through aiosqlite for an AsyncDatabase (``pip install "nextorm[async]"``)."""

    is_async = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            import aiosqlite
        except ImportError:
            raise BindingError(
                "The asyncio sqlite provider needs aiosqlite: pip install 'nextorm[async]'"
            ) from None
        self._aiosqlite = aiosqlite
        super().__init__(*args, **kwargs)

    async def aconnect(self) -> Any:
        pending = self._aiosqlite.connect(
            self.filename, timeout=self.timeout, isolation_level=None, uri=self.memory
        )
        # each aiosqlite connection has a worker thread; an idle pooled one must not keep the
        # interpreter alive at exit (aiosqlite >= 0.20 keeps it in _thread, older versions are the thread)
        worker: Any = getattr(pending, "_thread", pending)
        worker.daemon = True
        try:
            conn = await pending
        except sqlite3.Error as exc:
            raise BindingError(f"Cannot open SQLite database {self.filename!r}: {exc}") from exc
        await conn.execute("PRAGMA foreign_keys = ON")
        return conn

    async def ainsert_returning(
        self, conn: Any, sql: str, params: Sequence[Any], pk_column: str | None
    ) -> Any:
        if pk_column is None:
            return (await self.arun(conn, sql, params)).lastrowid
        return (await self.arun(conn, f"{sql} RETURNING {self.strict_quote(pk_column)}", params)).rows[0][0]
