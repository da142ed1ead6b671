"""What every database provider supplies: connections, transactions, error mapping (and its dialect)."""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading
import weakref
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

from ..debug import QueryStats, logged_sql, sql_debug_state
from ..exceptions import DatabaseError, OrmError
from ..steps import Result
from .dialect import Dialect

__all__ = ["Provider"]


def _close_quietly(cursor: Any) -> None:
    if cursor is not None:
        try:
            cursor.close()
        except Exception:
            pass  # the statement's own error is the one to report


class Provider:
    """The dialect and connection handling of one database; subclassed per database."""

    name = ""
    #: the spelling of this database's SQL
    dialect_class: type[Dialect] = Dialect
    #: whether ``insert_many_returning`` sends one batch (else it runs one INSERT per row)
    batch_returning = False
    #: whether sessions do IO through the ``a``-prefixed awaitable methods
    is_async = False
    #: whether ``send`` is ``conn.execute(sql, params)`` (set for each subclass from its ``send``)
    sends_directly = True
    #: whether a readonly db_session runs in a READ ONLY transaction of the database
    readonly_transactions = False
    #: most idle asyncio connections kept per event loop for the next sessions
    async_idle_limit = 16

    def __init__(self) -> None:
        self.dialect = self.dialect_class()
        # idle connections: every session takes its own and gives it back when it ends
        self._idle: list[Any] = []
        # idle asyncio connections per event loop (a loop's connections serve only that loop)
        self._aidle: dict[Any, list[Any]] = {}
        # asyncio connections whose statement was cancelled while the driver still ran it
        self._interrupted: weakref.WeakSet[Any] = weakref.WeakSet()
        self._pool_lock = threading.Lock()
        #: the statement each thread ran last (``db.last_sql``)
        self._statements = threading.local()
        #: how often each statement ran and how long it took (``db.local_stats``)
        self.stats = QueryStats()
        #: called with each new connection before a session uses it (``Database.on_connect``); its
        #: results are awaited on an asyncio connection where they are awaitable
        self.on_connect: Callable[[Any], list[Any]] | None = None

    @property
    def last_sql(self) -> str | None:
        """The last statement this thread ran (transaction control left out), or None."""
        return getattr(self._statements, "sql", None)

    def forget_last_sql(self) -> None:
        """Make ``last_sql`` None for this thread until its next statement."""
        self._statements.sql = None

    def connected(self, conn: Any) -> None:
        """A new connection was opened: run the ``on_connect`` callback on it.

        A coroutine function cannot run on a blocking connection (the one an AsyncDatabase maps
        its tables with): it runs on the asyncio connections only.
        """
        if self.on_connect is not None:
            for result in self.on_connect(conn):
                if inspect.iscoroutine(result):
                    result.close()

    async def aconnected(self, conn: Any) -> None:
        """A new asyncio connection was opened: run the ``on_connect`` callback, awaiting coroutines."""
        if self.on_connect is not None:
            for result in self.on_connect(conn):
                if inspect.isawaitable(result):
                    await result

    # -- connections and transactions -----------------------------------------------------

    def adapt(self, attr: Any) -> None:
        """Set ``attr.to_db``/``attr.from_db`` for this driver (the column type's converters by default)."""

    def connect(self) -> Any:
        """A new DB-API connection."""
        raise NotImplementedError

    def usable(self, conn: Any) -> bool:
        """Whether an idle connection can serve another session."""
        return True

    def acquire(self, readonly: bool = False) -> Any:
        """A connection of the session's own: an idle one from the pool, or a new one.

        ``readonly`` sessions may be served by a read replica where the provider has them.
        """
        with self._pool_lock:
            while self._idle:
                conn = self._idle.pop()
                if self.usable(conn):
                    return conn
                self._close(conn)
        conn = self.connect()
        try:
            self.connected(conn)
        except BaseException:
            self._close(conn)
            raise
        return conn

    def release(self, conn: Any) -> None:
        """Give a session's connection (with no transaction open) back to the pool."""
        if self.usable(conn):
            with self._pool_lock:
                self._idle.append(conn)
        else:
            self._close(conn)

    def discard(self, conn: Any) -> None:
        """Drop a connection that failed instead of pooling it."""
        self._close(conn)

    @staticmethod
    def _close(conn: Any) -> None:
        try:
            conn.close()
        except Exception:
            pass

    def begin(self, conn: Any, immediate: bool, serializable: bool = False, readonly: bool = False) -> None:
        """Open a transaction (a write-locking one when ``immediate``, SERIALIZABLE or READ ONLY when asked)."""
        self.execute(conn, self.dialect.begin_sql(immediate, serializable, readonly))

    def commit(self, conn: Any) -> None:
        """Commit the open transaction."""
        self.execute(conn, self.dialect.commit_sql)

    def rollback(self, conn: Any) -> None:
        """Roll the open transaction back."""
        if self.usable_for_rollback(conn):
            self.execute(conn, self.dialect.rollback_sql)

    def disconnect(self) -> None:
        """Close the idle pooled connections."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._close(conn)

    # -- statements ------------------------------------------------------------------------------

    def run(self, conn: Any, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Result:
        """Run one statement; returns its rows (all fetched), row count and last row id."""
        self._statements.sql = sql
        started = perf_counter()
        try:
            return self.execute(conn, sql, params)
        finally:
            self.stats.add(sql, perf_counter() - started)

    def logged_rows(self, conn: Any, sql: str, params: Sequence[Any] | dict[str, Any]) -> list[Any]:
        """The rows of one statement, logged to ``nextorm.sql`` (``read_rows`` with SQL debugging on)."""
        with logged_sql(sql, params):
            return self._rows(conn, sql, params)[1]

    def execute(self, conn: Any, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Result:
        """``run()`` without making ``sql`` the last statement (for transaction control)."""
        if sql_debug_state.get()[0]:
            with logged_sql(sql, params):
                return self._statement(conn, sql, params)
        # not logging (mostly): no context to enter and leave around every statement
        return self._statement(conn, sql, params)

    def _statement(self, conn: Any, sql: str, params: Sequence[Any] | dict[str, Any]) -> Result:
        cursor, rows = self._rows(conn, sql, params)
        return Result(rows, cursor.description, cursor.rowcount, getattr(cursor, "lastrowid", None))

    def _rows(self, conn: Any, sql: str, params: Sequence[Any] | dict[str, Any]) -> tuple[Any, list[Any]]:
        """Send one statement; its cursor and all its rows (none when it returns none)."""
        cursor = None
        try:
            cursor = self.send(conn, sql, params)
            if cursor.description is None:
                rows = []
            elif gc.isenabled():
                # the cyclic GC paused while the rows arrive: a large result allocates a tuple per row
                # while every object loaded before is alive, and the collector would sweep that
                # growing heap again and again without finding garbage.
                # fetchall() does not wait (the statement ran in send), so the pause is short.
                gc.disable()
                try:
                    rows = cursor.fetchall()
                finally:
                    gc.enable()
            else:
                rows = cursor.fetchall()
        except Exception as exc:
            raise self.statement_failed(cursor, exc) from exc
        return cursor, rows

    def statement_failed(self, cursor: Any, exc: Exception) -> OrmError:
        """The error to raise for ``exc``, raised by the driver running a statement on ``cursor``
        (None if it was not made), which is closed: an unfinished statement would keep its locks
        while the error lives."""
        _close_quietly(cursor)
        return self.translate_error(exc)

    def send(self, conn: Any, sql: str, params: Sequence[Any] | dict[str, Any]) -> Any:
        """Send one statement with its parameters; returns the driver's cursor."""
        return conn.execute(sql, params)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # a class that sends otherwise says so to the compiled read_rows, which calls conn.execute itself
        cls.sends_directly = cls.send is Provider.send

    def executemany(self, conn: Any, sql: str, rows: list[Sequence[Any]]) -> int:
        """Run one statement for each row; returns the total row count."""
        self._statements.sql = sql
        started = perf_counter()
        try:
            with logged_sql(sql, rows, many=len(rows)):
                try:
                    return conn.executemany(sql, rows).rowcount
                except Exception as exc:
                    raise self.translate_error(exc) from exc
        finally:
            self.stats.add(sql, perf_counter() - started)

    # -- streaming ------------------------------------------------------------------------------

    def open_stream(self, conn: Any, sql: str, params: Sequence[Any], in_transaction: bool) -> Any:
        """Run a SELECT whose rows are fetched in batches by ``fetch_stream``; returns its cursor."""
        cursor = None
        with logged_sql(sql, params):
            try:
                cursor = conn.execute(sql, params)
            except Exception as exc:
                _close_quietly(cursor)
                raise self.translate_error(exc) from exc
        return cursor

    def fetch_stream(self, cursor: Any, size: int) -> list[Any]:
        """Up to ``size`` more rows of a stream (an empty list at its end)."""
        try:
            return list(cursor.fetchmany(size))
        except Exception as exc:
            raise self.translate_error(exc) from exc

    def close_stream(self, cursor: Any) -> None:
        """Release a stream's cursor."""
        _close_quietly(cursor)

    async def aopen_stream(self, conn: Any, sql: str, params: Sequence[Any], in_transaction: bool) -> Any:
        """Awaitable ``open_stream()``."""
        with logged_sql(sql, params):
            try:
                return await conn.execute(sql, params)
            except Exception as exc:
                raise self.translate_error(exc) from exc

    async def afetch_stream(self, cursor: Any, size: int) -> list[Any]:
        """Awaitable ``fetch_stream()``."""
        try:
            return list(await cursor.fetchmany(size))
        except Exception as exc:
            raise self.translate_error(exc) from exc

    async def aclose_stream(self, cursor: Any) -> None:
        """Awaitable ``close_stream()``."""
        try:
            await cursor.close()
        except Exception:
            pass

    def insert_returning(self, conn: Any, sql: str, params: Sequence[Any], pk_column: str) -> Any:
        """Run an INSERT and return the generated primary key."""
        raise NotImplementedError

    def insert_many_returning(
        self, conn: Any, sql: str, rows: list[Sequence[Any]], pk_column: str
    ) -> list[Any]:
        """Run an INSERT per row and return the generated primary keys in order."""
        return [self.insert_returning(conn, sql, row, pk_column) for row in rows]

    # -- the awaitable twins (used by an AsyncDatabase's sessions) ------------------------------

    async def aconnect(self) -> Any:
        """A new connection of the asyncio driver."""
        raise NotImplementedError(f"The {self.name} provider has no asyncio driver")

    async def aacquire(self, readonly: bool = False) -> Any:
        """Awaitable ``acquire()``: asyncio connections are pooled per event loop."""
        idle = self._aidle.get(asyncio.get_running_loop())
        if idle is None:
            await self._aclose_abandoned()
        while idle:
            conn = idle.pop()
            if self.usable(conn):
                return conn
            await self._aclose(conn)
        conn = await self.aconnect()
        try:
            await self.aconnected(conn)
        except BaseException:
            await self._aclose(conn)
            raise
        return conn

    async def arelease(self, conn: Any) -> None:
        """Awaitable ``release()``: kept for the loop's next session unless ``async_idle_limit`` are idle."""
        if self.usable(conn) and conn not in self._interrupted:
            idle = self._aidle.setdefault(asyncio.get_running_loop(), [])
            if len(idle) < self.async_idle_limit:
                idle.append(conn)
                return
        await self._aclose(conn)

    async def adiscard(self, conn: Any) -> None:
        """Awaitable ``discard()``."""
        await self._aclose(conn)

    async def adisconnect(self) -> None:
        """Close the idle asyncio connections of the running event loop."""
        for conn in self._aidle.pop(asyncio.get_running_loop(), []):
            await self._aclose(conn)

    async def _aclose_abandoned(self) -> None:
        """Close the idle connections of event loops that ended without ``adisconnect()``."""
        for loop in [loop for loop in self._aidle if loop.is_closed()]:
            for conn in self._aidle.pop(loop, []):
                await self._aclose(conn)

    @staticmethod
    async def _aclose(conn: Any) -> None:
        try:
            await conn.close()
        except Exception:
            pass

    async def arun(self, conn: Any, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Result:
        """Awaitable ``run()``."""
        self._statements.sql = sql
        started = perf_counter()
        try:
            return await self.aexecute(conn, sql, params)
        finally:
            self.stats.add(sql, perf_counter() - started)

    async def asend(self, conn: Any, sql: str, params: Sequence[Any] | dict[str, Any]) -> Any:
        """Awaitable ``send()``."""
        return await conn.execute(sql, params)

    async def aexecute(self, conn: Any, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Result:
        """Awaitable ``execute()``."""
        cursor = None
        with logged_sql(sql, params):
            try:
                cursor = await self.asend(conn, sql, params)
                description = cursor.description
                rows = list(await cursor.fetchall()) if description is not None else []
            except asyncio.CancelledError:
                # the statement may go on in the driver (a BEGIN waiting for a lock takes it later):
                # the connection is closed at the session's end rather than pooled
                self._interrupted.add(conn)
                raise
            except Exception as exc:
                if cursor is not None:
                    try:
                        await cursor.close()
                    except Exception:
                        pass  # the statement's own error is the one to report
                raise self.translate_error(exc) from exc
        return Result(rows, description, cursor.rowcount, getattr(cursor, "lastrowid", None))

    async def aexecutemany(self, conn: Any, sql: str, rows: list[Sequence[Any]]) -> int:
        """Awaitable ``executemany()``."""
        self._statements.sql = sql
        started = perf_counter()
        try:
            with logged_sql(sql, rows, many=len(rows)):
                try:
                    cursor = await conn.executemany(sql, rows)
                    return int(cursor.rowcount)
                except asyncio.CancelledError:
                    self._interrupted.add(conn)
                    raise
                except Exception as exc:
                    raise self.translate_error(exc) from exc
        finally:
            self.stats.add(sql, perf_counter() - started)

    async def abegin(
        self, conn: Any, immediate: bool, serializable: bool = False, readonly: bool = False
    ) -> None:
        """Awaitable ``begin()``."""
        await self.aexecute(conn, self.dialect.begin_sql(immediate, serializable, readonly))

    async def acommit(self, conn: Any) -> None:
        """Awaitable ``commit()``."""
        await self.aexecute(conn, self.dialect.commit_sql)

    async def arollback(self, conn: Any) -> None:
        """Awaitable ``rollback()``."""
        if self.usable_for_rollback(conn):
            await self.aexecute(conn, self.dialect.rollback_sql)

    async def ainsert_returning(
        self, conn: Any, sql: str, params: Sequence[Any], pk_column: str | None
    ) -> Any:
        """Awaitable ``insert_returning()``."""
        raise NotImplementedError

    async def ainsert_many_returning(
        self, conn: Any, sql: str, rows: list[Sequence[Any]], pk_column: str
    ) -> list[Any]:
        """Awaitable ``insert_many_returning()``."""
        return [await self.ainsert_returning(conn, sql, row, pk_column) for row in rows]

    def usable_for_rollback(self, conn: Any) -> bool:
        """Whether a ROLLBACK can be sent on ``conn`` (not on a broken connection)."""
        return True

    def commit_not_applied(self, conn: Any, exc: BaseException) -> bool:
        """Whether a COMMIT that raised ``exc`` certainly did not take effect (else its outcome is unknown).

        Asked right after the failure, before anything else is sent on ``conn``; it does no IO.
        """
        return False

    def constraint_columns(self, exc: BaseException) -> list[str]:
        """The columns a constraint violation reported by the driver is about."""
        return []

    def statement_refused(self, exc: BaseException) -> bool:
        """Whether the database refused a statement as written (its types or syntax) before running it."""
        return False

    def translate_error(self, exc: BaseException) -> OrmError:
        """The nextorm exception for a driver exception."""
        if isinstance(exc, OrmError):
            return exc
        error = DatabaseError(f"{type(exc).__name__}: {exc}")
        error.original_exc = exc  # type: ignore[attr-defined]
        return error
