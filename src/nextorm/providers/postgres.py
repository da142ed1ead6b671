"""PostgreSQL through psycopg 3 (``pip install nextorm[postgres]``)."""

from __future__ import annotations

import re
import select
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from ..debug import logged_sql
from ..exceptions import (
    BindingError,
    ConnectionClosedError,
    OrmError,
    SerializationFailure,
    TransactionIntegrityError,
)
from ..types import Json
from .base import Provider
from .dialect import PostgresDialect

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.types.json import Jsonb
except ImportError:  # pragma: no cover - exercised only without the extra
    psycopg = None  # type: ignore[assignment]  # PostgresProvider checks for None and names the extra

__all__ = ["PostgresProvider"]

#: types psycopg returns as the Python type itself: no conversion on the way in or out
_NATIVE = frozenset({int, str, float, bool, Decimal, datetime, date, time, timedelta, UUID})

# SQLSTATE classes that mean "try the transaction again"
_RETRYABLE = {"40001": "serialization failure", "40P01": "deadlock detected", "55P03": "lock not available"}


class PostgresProvider(Provider):
    """A PostgreSQL server; one connection per thread, replaced when it breaks."""

    name = "postgres"
    dialect_class = PostgresDialect
    batch_returning = True

    def __init__(
        self,
        dsn: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        **connect_options: Any,
    ) -> None:
        super().__init__()
        if psycopg is None:
            raise BindingError("The postgres provider needs psycopg 3: pip install 'nextorm[postgres]'")
        options: dict[str, Any] = {
            k: v
            for k, v in dict(host=host, port=port, user=user, password=password, dbname=database).items()
            if v is not None
        }
        options.update(connect_options)
        self.dsn = dsn or ""
        self.connect_options = options
        self.dsn_repr = self._describe()
        self._bound = False
        self.connect().close()
        self._bound = True

    def _describe(self) -> str:
        info = psycopg.conninfo.conninfo_to_dict(self.dsn, **self.connect_options)
        info.pop("password", None)
        return f"{info.get('user', '')}@{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

    def connect(self) -> Any:
        try:
            return psycopg.connect(self.dsn, autocommit=True, **self.connect_options)
        except psycopg.Error as exc:
            raise self._connect_error(exc) from exc

    def _connect_error(self, exc: BaseException) -> OrmError:
        """Binding fails when the first connection fails; later, a session's connect can be retried."""
        message = f"Cannot connect to PostgreSQL {self.dsn_repr}: {exc}"
        return ConnectionClosedError(message) if self._bound else BindingError(message)

    # -- connections and transactions -----------------------------------------------------

    def adapt(self, attr: Any) -> None:
        py_type = attr.py_type
        if py_type in _NATIVE:
            attr.to_db = attr.from_db = None
        elif py_type is bytes:
            attr.to_db = None
        elif py_type is Json:
            attr.to_db = Jsonb
            attr.from_db = None

    def usable(self, conn: Any) -> bool:
        if conn.closed or conn.broken or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return False
        # An idle connection has nothing to read; data waiting means the server ended the session
        # (pg_terminate_backend, restart, idle timeout) and the next statement would fail.
        try:
            readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
        except (OSError, ValueError, psycopg.Error):
            return False
        return not readable

    def commit(self, conn: Any) -> None:
        self.run(conn, self.dialect.commit_sql)

    def rollback(self, conn: Any) -> None:
        if self.usable_for_rollback(conn):
            self.run(conn, self.dialect.rollback_sql)

    def usable_for_rollback(self, conn: Any) -> bool:
        return not (conn.closed or conn.broken)

    def commit_not_applied(self, conn: Any, exc: BaseException) -> bool:
        # The server answers a COMMIT it could not apply with an error (serialization failure,
        # deferred constraint, disk full) and a transaction still open or ended. A lost connection
        # gives no answer: the COMMIT may have been applied before the link went down.
        if conn.closed or conn.broken:
            return False
        status = conn.info.transaction_status
        if status in (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR):
            return True
        state = getattr(getattr(exc, "original_exc", exc), "sqlstate", None) or ""
        return status == psycopg.pq.TransactionStatus.IDLE and bool(state) and not state.startswith("08")

    # -- statements ------------------------------------------------------------------------------

    def executemany(self, conn: Any, sql: str, rows: list[Sequence[Any]]) -> int:
        with logged_sql(sql, rows, many=len(rows)):
            try:
                cursor = conn.cursor()
                cursor.executemany(sql, rows)
                return int(cursor.rowcount)
            except Exception as exc:
                raise self.translate_error(exc) from exc

    def insert_returning(self, conn: Any, sql: str, params: Sequence[Any], pk_column: str | None) -> Any:
        if pk_column is None:
            self.run(conn, sql, params)
            return None
        return self.run(conn, sql + self.dialect.returning_clause(pk_column), params).rows[0][0]

    def insert_many_returning(
        self, conn: Any, sql: str, rows: list[Sequence[Any]], pk_column: str
    ) -> list[Any]:
        sql = sql + self.dialect.returning_clause(pk_column)
        with logged_sql(sql, rows, many=len(rows)):
            try:
                cursor = conn.cursor()
                cursor.executemany(sql, rows, returning=True)
                keys = []
                while True:
                    keys.append(cursor.fetchone()[0])
                    if not cursor.nextset():
                        break
            except Exception as exc:
                raise self.translate_error(exc) from exc
        return keys

    def constraint_columns(self, exc: BaseException) -> list[str]:
        diag = getattr(exc, "diag", None)
        if diag is None:
            return []
        if diag.column_name:
            return [diag.column_name]
        # unique violations: 'Key (email)=(a@x) already exists.'
        match = re.search(r"Key \((.+?)\)=", diag.message_detail or "")
        return [part.strip().strip('"') for part in match.group(1).split(",")] if match else []

    def translate_error(self, exc: BaseException) -> OrmError:
        if isinstance(exc, OrmError):
            return exc
        if not isinstance(exc, psycopg.Error):
            return super().translate_error(exc)
        state = getattr(exc, "sqlstate", None) or ""
        if isinstance(exc, pg_errors.IntegrityError):
            error: OrmError = TransactionIntegrityError(f"{type(exc).__name__}: {exc}")
        elif state in _RETRYABLE:
            error = SerializationFailure(
                f"The transaction was aborted ({_RETRYABLE[state]}, SQLSTATE {state}): {exc}"
            )
        elif isinstance(exc, psycopg.OperationalError) and (
            # no SQLSTATE: psycopg itself failed to talk to the server (closed or broken connection)
            not state or state.startswith("08") or state in ("57P01", "57P02", "57P03")
        ):
            error = ConnectionClosedError(f"The connection to PostgreSQL was lost: {exc}")
        else:
            return super().translate_error(exc)
        error.original_exc = exc  # type: ignore[attr-defined]
        return error


class AsyncPostgresProvider(PostgresProvider):
    """PostgreSQL through psycopg 3's asyncio connection, for an AsyncDatabase."""

    is_async = True

    async def aconnect(self) -> Any:
        try:
            return await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, **self.connect_options)
        except psycopg.Error as exc:
            raise self._connect_error(exc) from exc

    async def aexecutemany(self, conn: Any, sql: str, rows: list[Sequence[Any]]) -> int:
        with logged_sql(sql, rows, many=len(rows)):
            try:
                cursor = conn.cursor()
                await cursor.executemany(sql, rows)
                return int(cursor.rowcount)
            except Exception as exc:
                raise self.translate_error(exc) from exc

    async def ainsert_returning(
        self, conn: Any, sql: str, params: Sequence[Any], pk_column: str | None
    ) -> Any:
        if pk_column is None:
            await self.arun(conn, sql, params)
            return None
        return (await self.arun(conn, sql + self.dialect.returning_clause(pk_column), params)).rows[0][0]

    async def ainsert_many_returning(
        self, conn: Any, sql: str, rows: list[Sequence[Any]], pk_column: str
    ) -> list[Any]:
        sql = sql + self.dialect.returning_clause(pk_column)
        with logged_sql(sql, rows, many=len(rows)):
            try:
                cursor = conn.cursor()
                await cursor.executemany(sql, rows, returning=True)
                keys = []
                while True:
                    keys.append((await cursor.fetchone())[0])
                    if not cursor.nextset():
                        break
            except Exception as exc:
                raise self.translate_error(exc) from exc
        return keys
