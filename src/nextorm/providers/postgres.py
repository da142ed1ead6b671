"""PostgreSQL through psycopg 3 (``pip install nextorm[postgres]``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import re
import select
import selectors
import threading
import time as _time
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from ..debug import logged_sql
from ..exceptions import (
    BindingError,
    ConnectionClosedError,
    OrmError,
    PoolTimeoutError,
    SerializationFailure,
    TransactionIntegrityError,
)
from ..types import FloatArray, IntArray, Json, LongStr, StrArray
from .base import Provider
from .dialect import PostgresDialect

try:
    import psycopg
    import psycopg_pool
    from psycopg import errors as pg_errors
    from psycopg.types.json import Jsonb
    from psycopg.types.numeric import Int8
    from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout
except ImportError:  # pragma: no cover - exercised only without the extra
    psycopg = None  # type: ignore[assignment]  # PostgresProvider checks for None and names the extra

__all__ = ["DEFAULT_POOL_SIZE", "DEFAULT_POOL_TIMEOUT", "PostgresProvider"]

#: most connections one process keeps open to one server (per Database; per event loop when async)
DEFAULT_POOL_SIZE = 10
#: seconds a session waits for a pooled connection before PoolTimeoutError
DEFAULT_POOL_TIMEOUT = 30.0
#: seconds a replica that could not be reached is left out before it is tried again
REPLICA_RETRY_INTERVAL = 5.0

#: types psycopg returns as the Python type itself: no conversion on the way in or out
#: arrays are PostgreSQL arrays, which psycopg reads and writes as lists
_ARRAYS = frozenset({IntArray, StrArray, FloatArray})


def _bigint_array(items: list[int]) -> list[Any]:
    """An IntArray value for a BIGINT[] column (psycopg would send small ints as a smallint[])."""
    return [Int8(item) for item in items]


_NATIVE = frozenset({int, str, LongStr, float, bool, Decimal, datetime, date, time, timedelta, UUID})

# SQLSTATE classes that mean "try the transaction again"
_RETRYABLE = {"40001": "serialization failure", "40P01": "deadlock detected", "55P03": "lock not available"}


class PostgresProvider(Provider):
    """A PostgreSQL server (and its read replicas) behind psycopg_pool connection pools."""

    name = "postgres"
    dialect_class = PostgresDialect
    batch_returning = True
    readonly_transactions = True

    def __init__(
        self,
        dsn: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
        replicas: Sequence[str] = (),
        **connect_options: Any,
    ) -> None:
        super().__init__()
        if psycopg is None:
            raise BindingError(
                "The postgres provider needs psycopg 3 and psycopg_pool: pip install 'nextorm[postgres]'"
            )
        if type(pool_size) is not int or pool_size < 1:
            raise BindingError(
                f"pool_size of the postgres provider must be an int of at least 1, got {pool_size!r}"
            )
        if (
            isinstance(pool_timeout, bool)
            or not isinstance(pool_timeout, (int, float))
            or not pool_timeout > 0
        ):
            raise BindingError(
                f"pool_timeout of the postgres provider must be a positive number of seconds, got {pool_timeout!r}"
            )
        if isinstance(replicas, str) or not all(isinstance(r, str) for r in replicas):
            raise BindingError(
                f"replicas of the postgres provider must be a list of DSN strings, got {replicas!r}"
            )
        options: dict[str, Any] = {
            k: v
            for k, v in dict(host=host, port=port, user=user, password=password, dbname=database).items()
            if v is not None
        }
        options.update(connect_options)
        # psycopg prepares a statement run often on its connection; behind PgBouncer in transaction
        # mode the next transaction may run on another server connection that lacks it, so by
        # default nothing is prepared (pass prepare_threshold=5 to a direct server to have it back)
        options.setdefault("prepare_threshold", None)
        options["autocommit"] = True
        self.dsn = dsn or ""
        self.connect_options = options
        self.pool_size = pool_size
        self.pool_timeout = float(pool_timeout)
        self.dsn_repr = self._describe(self.dsn, options)
        try:
            psycopg.connect(self.dsn, **options).close()
        except psycopg.Error as exc:
            raise BindingError(f"Cannot connect to PostgreSQL {self.dsn_repr}: {exc}") from exc
        self.primary = _Server(self, self.dsn, is_replica=False)
        self.replicas = [_Server(self, replica, is_replica=True) for replica in replicas]
        self._next_replica = itertools.count()
        #: the pool that lent each connection in use: it goes back there, even after disconnect()
        self._lent: dict[Any, Any] = {}

    def _describe(self, dsn: str, options: dict[str, Any]) -> str:
        info = psycopg.conninfo.conninfo_to_dict(dsn, **options)
        info.pop("password", None)
        return f"{info.get('user', '')}@{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

    # -- the pools -------------------------------------------------------------------------------

    def _servers(self, readonly: bool) -> list[_Server]:
        """Where a session goes: a readonly one to the healthy replicas in turn, then the primary."""
        if not (readonly and self.replicas):
            return [self.primary]
        start = next(self._next_replica)
        count = len(self.replicas)
        now = _time.monotonic()
        ordered = [self.replicas[(start + i) % count] for i in range(count)]
        return [server for server in ordered if server.down_until <= now] + [self.primary]

    def acquire(self, readonly: bool = False) -> Any:
        if not (readonly and self.replicas):
            conn, pool = self.primary.getconn()
            self._lent[conn] = pool
            return conn
        servers = self._servers(readonly)
        lent = None
        for server in servers[:-1]:
            lent = server.try_getconn()
            if lent is not None:
                break
        conn, pool = lent or servers[-1].getconn()
        self._lent[conn] = pool
        return conn

    def release(self, conn: Any) -> None:
        self._lent.pop(conn).putconn(conn)

    def discard(self, conn: Any) -> None:
        self._close(conn)
        self._lent.pop(conn).putconn(conn)  # closed: the pool replaces it

    def disconnect(self) -> None:
        """Close every pooled connection; those in use are closed when their session ends."""
        for server in [self.primary, *self.replicas]:
            server.close()

    async def aacquire(self, readonly: bool = False) -> Any:
        servers = self._servers(readonly)
        lent = None
        for server in servers[:-1]:
            lent = await server.atry_getconn()
            if lent is not None:
                break
        conn, pool = lent or await servers[-1].agetconn()
        self._lent[conn] = pool
        return conn

    async def arelease(self, conn: Any) -> None:
        await self._lent.pop(conn).putconn(conn)

    async def adiscard(self, conn: Any) -> None:
        await self._aclose(conn)
        await self._lent.pop(conn).putconn(conn)

    async def adisconnect(self) -> None:
        """Close the pooled asyncio connections of the running event loop."""
        for server in [self.primary, *self.replicas]:
            await server.aclose()

    # -- connections and transactions -----------------------------------------------------

    def adapt(self, attr: Any) -> None:
        py_type = attr.py_type
        if py_type in _NATIVE or py_type in _ARRAYS:
            attr.to_db = attr.from_db = None
            if py_type is IntArray:
                attr.to_db = _bigint_array
        elif py_type is bytes:
            attr.to_db = None
        elif py_type is Json:
            attr.to_db = Jsonb
            attr.from_db = None

    def commit(self, conn: Any) -> None:
        self.execute(conn, self.dialect.commit_sql)

    def rollback(self, conn: Any) -> None:
        if self.usable_for_rollback(conn):
            self.execute(conn, self.dialect.rollback_sql)

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

    def open_stream(self, conn: Any, sql: str, params: Sequence[Any], in_transaction: bool) -> Any:
        """A server-side cursor: the server keeps the result and sends ``fetch_stream``'s batches.

        Outside a transaction the cursor is declared WITH HOLD, which a connection in autocommit needs.
        """
        cursor = conn.cursor(name=_stream_name(), withhold=not in_transaction)
        with logged_sql(sql, params):
            try:
                cursor.execute(sql, params)
            except Exception as exc:
                _close_cursor(cursor)
                raise self.translate_error(exc) from exc
        return cursor

    def close_stream(self, cursor: Any) -> None:
        _close_cursor(cursor)

    def send(self, conn: Any, sql: str, params: Sequence[Any] | dict[str, Any]) -> Any:
        numbered = _numbered(sql, params)
        if numbered is None:
            return conn.execute(sql, params)
        return psycopg.RawCursor(conn).execute(numbered, params)

    async def asend(self, conn: Any, sql: str, params: Sequence[Any] | dict[str, Any]) -> Any:
        numbered = _numbered(sql, params)
        if numbered is None:
            return await conn.execute(sql, params)
        return await psycopg.AsyncRawCursor(conn).execute(numbered, params)

    def executemany(self, conn: Any, sql: str, rows: list[Sequence[Any]]) -> int:
        self._statements.sql = sql
        started = _time.perf_counter()
        try:
            with logged_sql(sql, rows, many=len(rows)):
                try:
                    cursor = conn.cursor()
                    cursor.executemany(sql, rows)
                    return int(cursor.rowcount)
                except Exception as exc:
                    raise self.translate_error(exc) from exc
        finally:
            self.stats.add(sql, _time.perf_counter() - started)

    def insert_returning(self, conn: Any, sql: str, params: Sequence[Any], pk_column: str | None) -> Any:
        if pk_column is None:
            self.run(conn, sql, params)
            return None
        return self.run(conn, sql + self.dialect.returning_clause(pk_column), params).rows[0][0]

    def insert_many_returning(
        self, conn: Any, sql: str, rows: list[Sequence[Any]], pk_column: str
    ) -> list[Any]:
        sql = sql + self.dialect.returning_clause(pk_column)
        self._statements.sql = sql
        started = _time.perf_counter()
        try:
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
        finally:
            self.stats.add(sql, _time.perf_counter() - started)
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

    def statement_refused(self, exc: BaseException) -> bool:
        # SQLSTATE class 42: syntax error or access rule violation (a type mismatch among them)
        state = getattr(getattr(exc, "original_exc", exc), "sqlstate", None) or ""
        return state.startswith("42")

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


#: most parameters of a statement whose ``%s`` placeholders psycopg's cache keeps translated;
#: longer ones (a multi-row INSERT) it would scan anew with a regular expression every time
_CACHED_PARAMS = 50


def _numbered(sql: str, params: Any) -> str | None:
    """``sql`` with PostgreSQL's own ``$1, $2, ...`` for its ``%s`` placeholders, for a statement of
    more parameters than psycopg caches; None when psycopg's translation is the one to use (few
    parameters, named ones, a literal ``%%``, or a psycopg without raw cursors)."""
    if type(params) not in (list, tuple) or len(params) <= _CACHED_PARAMS or not _HAS_RAW_CURSOR:
        return None
    return _numbered_text(sql, len(params))


@functools.lru_cache(maxsize=64)
def _numbered_text(sql: str, count: int) -> str | None:
    parts = sql.split("%s")
    # every % must open a %s placeholder: as psycopg does, placeholders inside literals count too
    if len(parts) != count + 1 or sql.count("%") != count:
        return None
    numbered = [parts[0]]
    for number, part in enumerate(parts[1:], 1):
        numbered.append(f"${number}")
        numbered.append(part)
    return "".join(numbered)


_HAS_RAW_CURSOR = psycopg is not None and hasattr(psycopg, "AsyncRawCursor")

_stream_numbers = itertools.count(1)


def _stream_name() -> str:
    return f"nextorm_stream_{next(_stream_numbers)}"


def _close_cursor(cursor: Any) -> None:
    try:
        cursor.close()
    except Exception:
        pass  # a broken connection ends the cursor with it


class AsyncPostgresProvider(PostgresProvider):
    """PostgreSQL through psycopg 3's asyncio connection, for an AsyncDatabase."""

    is_async = True

    async def aopen_stream(self, conn: Any, sql: str, params: Sequence[Any], in_transaction: bool) -> Any:
        cursor = conn.cursor(name=_stream_name(), withhold=not in_transaction)
        with logged_sql(sql, params):
            try:
                await cursor.execute(sql, params)
            except Exception as exc:
                try:
                    await cursor.close()
                except Exception:
                    pass
                raise self.translate_error(exc) from exc
        return cursor

    async def aexecutemany(self, conn: Any, sql: str, rows: list[Sequence[Any]]) -> int:
        self._statements.sql = sql
        started = _time.perf_counter()
        try:
            with logged_sql(sql, rows, many=len(rows)):
                try:
                    cursor = conn.cursor()
                    await cursor.executemany(sql, rows)
                    return int(cursor.rowcount)
                except Exception as exc:
                    raise self.translate_error(exc) from exc
        finally:
            self.stats.add(sql, _time.perf_counter() - started)

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
        self._statements.sql = sql
        started = _time.perf_counter()
        try:
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
        finally:
            self.stats.add(sql, _time.perf_counter() - started)
        return keys


class _Server:
    """One server of a provider (the primary or a replica): a sync pool and an asyncio pool per event loop."""

    def __init__(self, provider: PostgresProvider, dsn: str, is_replica: bool) -> None:
        self.provider = provider
        self.dsn = dsn
        self.is_replica = is_replica
        # what the replica's DSN names (host, port, ...) wins over the primary's bind arguments
        named = psycopg.conninfo.conninfo_to_dict(dsn) if is_replica else {}
        self.options = {k: v for k, v in provider.connect_options.items() if k not in named}
        self.dsn_repr = provider._describe(dsn, self.options)
        #: monotonic time before which this replica is left out (it could not be reached)
        self.down_until = 0.0
        self._pool: Any = None
        # event loop -> its pool, and the async generator that closes the pool when the loop ends
        self._apools: dict[Any, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def _pool_options(self, check: Any, configure: Any) -> dict[str, Any]:
        provider = self.provider
        return dict(
            conninfo=self.dsn,
            kwargs=self.options,
            # connections are opened when sessions need them, and closed after max_idle unused
            min_size=0,
            max_size=provider.pool_size,
            timeout=provider.pool_timeout,
            # a replica's connections are checked by try_getconn, which falls over to the next server
            check=None if self.is_replica else check,
            configure=configure,
            name=f"nextorm {self.dsn_repr}",
            open=False,
        )

    def _timeout_error(self, pool: Any) -> PoolTimeoutError:
        size = self.provider.pool_size
        opened = pool.get_stats().get("pool_size", 0)
        why = "all are in use" if opened >= size else f"only {opened} could be opened"
        return PoolTimeoutError(
            f"No connection to PostgreSQL {self.dsn_repr} within pool_timeout={self.provider.pool_timeout:g} s: "
            f"the pool holds up to pool_size={size} connections and {why}"
        )

    def _mark_down(self) -> None:
        self.down_until = _time.monotonic() + REPLICA_RETRY_INTERVAL

    def _probe_options(self) -> dict[str, Any]:
        timeout = max(2, int(min(self.provider.pool_timeout, 10)))
        return {"connect_timeout": timeout, **self.options}

    # -- blocking --------------------------------------------------------------------------------

    def pool(self) -> Any:
        """The sync pool, opened on first use (again after ``close()``)."""
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ConnectionPool(**self._pool_options(_check_idle, self.provider.connected))
                    self._pool.open()
                pool = self._pool
        return pool

    def getconn(self) -> tuple[Any, Any]:
        """A pooled connection and its pool; PoolTimeoutError after ``pool_timeout``."""
        while True:
            pool = self.pool()
            try:
                return pool.getconn(), pool
            except PoolTimeout:
                raise self._timeout_error(pool) from None
            except psycopg_pool.PoolClosed:
                continue  # db.disconnect() closed it meanwhile: the next one is opened

    def try_getconn(self) -> tuple[Any, Any] | None:
        """A healthy connection of this replica and its pool, or None (and the replica left out a while)."""
        for _ in range(self.provider.pool_size + 1):
            pool = self.pool()
            if not pool.get_stats().get("pool_available", 0) and not self._reachable():
                break
            conn, pool = self.getconn()
            try:
                _check_idle(conn)
            except psycopg.Error:
                pool.putconn(conn)  # closed by the check: the pool replaces it
                continue
            return conn, pool
        self._mark_down()
        return None

    def _reachable(self) -> bool:
        try:
            psycopg.connect(self.dsn, **self._probe_options()).close()
        except psycopg.Error:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- asyncio ---------------------------------------------------------------------------------

    async def apool(self) -> Any:
        """The running event loop's pool, opened on first use and closed when the loop ends."""
        loop = asyncio.get_running_loop()
        entry = self._apools.get(loop)
        if entry is None:
            pool = AsyncConnectionPool(
                connection_class=psycopg.AsyncConnection,
                **self._pool_options(_acheck_idle, self.provider.aconnected),
            )
            closer = self._close_at_loop_end(loop, pool)
            entry = self._apools[loop] = (pool, closer)
            # opening takes the pool's lock, free at this point, and so completes without
            # yielding: no other task can see the pool before it is open
            await pool.open()
            await closer.__anext__()
        return entry[0]

    async def _close_at_loop_end(self, loop: Any, pool: Any) -> AsyncIterator[None]:
        """Suspended while the loop runs; asyncio.run() finalizes it as the loop ends, closing the pool.

        Without it a loop ended without ``adisconnect()`` would keep its pool's connections open.
        """
        try:
            yield
        finally:
            entry = self._apools.get(loop)
            if entry is not None and entry[0] is pool:
                del self._apools[loop]
                # asyncio.run() has cancelled the pool's worker tasks by now, which makes
                # pool.close() stop before closing anything: the idle connections are taken
                # out and closed here first
                while pool.get_stats().get("pool_available", 0):
                    conn = await pool.getconn()
                    await conn.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await pool.close()

    async def agetconn(self) -> tuple[Any, Any]:
        while True:
            pool = await self.apool()
            try:
                return await pool.getconn(), pool
            except PoolTimeout:
                raise self._timeout_error(pool) from None
            except psycopg_pool.PoolClosed:
                continue

    async def atry_getconn(self) -> tuple[Any, Any] | None:
        for _ in range(self.provider.pool_size + 1):
            pool = await self.apool()
            if not pool.get_stats().get("pool_available", 0) and not await self._areachable():
                break
            conn, pool = await self.agetconn()
            try:
                await _acheck_idle(conn)
            except psycopg.Error:
                await pool.putconn(conn)  # closed by the check: the pool replaces it
                continue
            return conn, pool
        self._mark_down()
        return None

    async def _areachable(self) -> bool:
        try:
            await (await psycopg.AsyncConnection.connect(self.dsn, **self._probe_options())).close()
        except psycopg.Error:
            return False
        return True

    async def aclose(self) -> None:
        entry = self._apools.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].close()


def _check_idle(conn: Any) -> None:
    """Close a pooled connection that cannot serve a session and raise; the pool then opens another."""
    problem = _idle_problem(conn)
    if problem is not None:
        conn.close()  # closed, so that the pool replaces it instead of offering it again
        raise psycopg.OperationalError(f"unusable pooled connection: {problem}")


async def _acheck_idle(conn: Any) -> None:
    """``_check_idle`` for an AsyncConnectionPool."""
    problem = _idle_problem(conn)
    if problem is not None:
        await conn.close()
        raise psycopg.OperationalError(f"unusable pooled connection: {problem}")


def _idle_problem(conn: Any) -> str | None:
    """Why a pooled connection cannot serve a session, or None when it can.

    An idle connection has nothing to read: data waiting means the server ended the session
    (pg_terminate_backend, restart, idle timeout) and the next statement would fail.
    """
    try:
        pgconn = conn.pgconn
        if conn.broken or pgconn.status != _CONNECTION_OK or pgconn.transaction_status != _IDLE:
            return "closed or inside a transaction"
        if _readable(pgconn.socket):
            return "the server closed it"
    except (OSError, ValueError, psycopg.Error) as exc:
        return f"its socket failed: {exc}"
    return None


if psycopg is not None:
    _CONNECTION_OK = psycopg.pq.ConnStatus.OK
    _IDLE = psycopg.pq.TransactionStatus.IDLE

if hasattr(select, "poll"):

    def _readable(fd: int) -> bool:
        """Whether ``fd`` has data (or a hang-up) waiting; poll() takes descriptors of any number."""
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))

else:  # pragma: no cover - Windows, whose select() takes sockets of any handle value

    def _readable(fd: int) -> bool:
        """Whether ``fd`` has data (or a hang-up) waiting."""
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            return bool(selector.select(0))
