"""SQLite through the standard library's sqlite3: the embedded default."""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from ..exceptions import (
    BindingError,
    ConnectionClosedError,
    OrmError,
    SerializationFailure,
    TransactionIntegrityError,
)
from .base import Provider
from .dialect import DECIMAL_COLLATION, SQLiteDialect

__all__ = ["DECIMAL_COLLATION", "SQLiteProvider", "decimal_collation"]

_memory_numbers = itertools.count(1)

# primary result codes (the low byte of an extended code) that mean "another transaction holds the lock"
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


def _decimal_key(text: str) -> tuple[int, Decimal, str]:
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = None
    if number is not None and number.is_finite():
        return (0, number, "")
    return (1, Decimal(0), text)  # text that is no number (written by other tools) sorts last


def decimal_collation(left: str, right: str) -> int:
    """Compare two Decimal columns' texts by numeric value (``sqlite3.Connection.create_collation``)."""
    a, b = _decimal_key(left), _decimal_key(right)
    return (a > b) - (a < b)


def _text(value: Any) -> Any:
    """A value as the text SQLite's upper/lower would see: numbers as written, blobs in hex."""
    if value is None or isinstance(value, str):
        return value
    return value.hex() if isinstance(value, bytes) else str(value)


def _upper(value: Any) -> Any:
    text = _text(value)
    return None if text is None else text.upper()


def _lower(value: Any) -> Any:
    text = _text(value)
    return None if text is None else text.lower()


def _number(value: Any) -> Any:
    """A number as SQLite hands it to a function (a Decimal column's text as a float)."""
    if isinstance(value, str):
        return float(value)
    return value


def _power(base: Any, exponent: Any) -> float | None:
    """``base ** exponent`` as a float; a power with no real value fails the statement, as on
    PostgreSQL (a negative number to a fractional power, zero to a negative one)."""
    if base is None or exponent is None:
        return None
    result = _number(base) ** _number(exponent)
    if isinstance(result, complex):
        raise ValueError(f"{base} ** {exponent} has no real value")
    return float(result)


class _Connection(sqlite3.Connection):
    """A sqlite3 connection that compares Decimal columns by value (also made by aiosqlite's thread)
    and changes the case of every Unicode letter (SQLite's own upper/lower know only ASCII); it has
    power(), which SQLite builds only with its math functions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.create_collation(DECIMAL_COLLATION, decimal_collation)
        self.create_function("py_upper", 1, _upper, deterministic=True)
        self.create_function("py_lower", 1, _lower, deterministic=True)
        self.create_function("power", 2, _power, deterministic=True)


class SQLiteProvider(Provider):
    """One SQLite file (a connection per thread) or an in-memory database (one shared connection)."""

    name = "sqlite"
    dialect_class = SQLiteDialect

    def __init__(self, filename: str = ":memory:", create_db: bool = False, timeout: float = 5.0) -> None:
        if not isinstance(filename, str):
            raise BindingError(f"SQLite filename must be a str, got {filename!r}")
        # Pony's ":sharedmemory:" names what ":memory:" is here: one in-memory database every
        # connection (thread) of the provider shares
        self.memory = filename in (":memory:", ":sharedmemory:")
        if self.memory:
            # a named database of SQLite's memdb VFS, so that every session can have its own
            # connection; the anchor connection keeps it alive as long as the provider exists.
            # Unlike shared-cache mode (which SQLite discourages), a connection meeting another's
            # open write waits up to ``timeout`` as on a file, instead of failing at once with
            # "database table is locked"
            self.filename = f"file:/nextorm-memory-{next(_memory_numbers)}?vfs=memdb"
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
                factory=_Connection,
            )
        except sqlite3.Error as exc:
            raise BindingError(f"Cannot open SQLite database {self.filename!r}: {exc}") from exc
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    # -- connections and transactions -----------------------------------------------------

    def usable(self, conn: Any) -> bool:
        # a connection left inside a transaction (a BEGIN whose caller saw an error) is not pooled:
        # closing it rolls back and frees the database lock
        try:
            return not conn.in_transaction
        except (sqlite3.ProgrammingError, ValueError):  # ValueError: a closed aiosqlite connection
            return False  # closed under the session

    def usable_for_rollback(self, conn: Any) -> bool:
        # SQLite ends the transaction by itself on some errors (disk full, I/O error); a closed
        # connection has none left either
        try:
            return bool(conn.in_transaction)
        except (sqlite3.ProgrammingError, ValueError):  # ValueError: a closed aiosqlite connection
            return False

    def commit_not_applied(self, conn: Any, exc: BaseException) -> bool:
        # SQLite runs in this process: a COMMIT that failed and left the transaction open (busy,
        # locked) did nothing. One that ended it (an I/O error rolls back by itself) is not told
        # apart from a commit whose answer was lost, so its outcome is reported as unknown.
        try:
            return bool(conn.in_transaction)
        except (sqlite3.ProgrammingError, ValueError):  # ValueError: a closed aiosqlite connection
            return True  # the connection is closed: closing it rolled the transaction back

    def adapt(self, attr: Any) -> None:
        if attr.py_type is Decimal:
            # one text per value (the column's scale): equal numbers are equal texts, as in a unique index
            attr.to_db = attr.ctype.fixed_text

    # -- statements ------------------------------------------------------------------------------

    def insert_returning(self, conn: Any, sql: str, params: Sequence[Any], pk_column: str | None) -> Any:
        if pk_column is None:
            return self.run(conn, sql, params).lastrowid
        return self.run(conn, sql + self.dialect.returning_clause(pk_column), params).rows[0][0]

    def constraint_columns(self, exc: BaseException) -> list[str]:
        # "UNIQUE constraint failed: person.email, person.name" / "NOT NULL constraint failed: person.name"
        match = re.search(r"constraint failed: (.+)$", str(exc))
        if not match:
            return []
        return [part.strip().rpartition(".")[2] for part in match.group(1).split(",")]

    def translate_error(self, exc: BaseException) -> OrmError:
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(exc, sqlite3.IntegrityError):
            error: OrmError = TransactionIntegrityError(f"{type(exc).__name__}: {exc}")
        elif code is not None and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
            error = SerializationFailure(
                f"The database is locked by another transaction ({exc.sqlite_errorname}): {exc}"  # type: ignore[attr-defined]
            )
        elif isinstance(exc, sqlite3.ProgrammingError) and code is None and "closed" in str(exc):
            # the sqlite3 module refuses a closed connection before SQLite runs: there is no code to read
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
            self.filename, timeout=self.timeout, isolation_level=None, uri=self.memory, factory=_Connection
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
        return (await self.arun(conn, sql + self.dialect.returning_clause(pk_column), params)).rows[0][0]
