"""Faults at the driver boundary: connections whose Nth statement fails (before it runs, after it
ran with its answer lost, or for good), for the reliability tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest


class FaultPlan:
    """Counts the statements sent through wrapped connections and makes statement ``fail_at`` fail."""

    # mode 'before': that statement is refused; 'after': it runs, then the driver raises (the client
    # lost the answer); 'dead': it and every later statement are refused (a dead link)

    def __init__(self, make_error: Callable[[], BaseException]) -> None:
        self.make_error = make_error
        self.statements: list[str] = []
        self.fail_at: int | None = None
        self.mode = "before"
        self.armed = True
        self.injected: BaseException | None = None

    def before(self, sql: str) -> None:
        """Called before a statement is sent."""
        if not self.armed:
            return
        self.statements.append(" ".join(sql.split()[:2]))
        if self.injected is not None and self.mode == "dead":
            raise self.make_error()
        if len(self.statements) - 1 == self.fail_at and self.mode != "after":
            self.injected = self.make_error()
            raise self.injected

    def fails_after(self) -> bool:
        """Whether the statement that just ran is to fail now (the caller discards its cursor first)."""
        return (
            self.armed
            and self.mode == "after"
            and len(self.statements) - 1 == self.fail_at
            and self.injected is None
        )

    def fail(self) -> None:
        """Raise the error of a statement that ran but whose answer is lost."""
        self.injected = self.make_error()
        raise self.injected


class FaultyCursor:
    """A driver cursor whose ``executemany`` goes through the plan."""

    def __init__(self, cursor: Any, plan: FaultPlan) -> None:
        self._cursor = cursor
        self._plan = plan

    def executemany(self, sql: str, rows: Any, **options: Any) -> Any:
        self._plan.before(sql)
        result = self._cursor.executemany(sql, rows, **options)
        if self._plan.fails_after():
            self._cursor.close()
            self._plan.fail()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class AsyncFaultyCursor(FaultyCursor):
    """An asyncio driver cursor whose ``executemany`` goes through the plan."""

    async def executemany(self, sql: str, rows: Any, **options: Any) -> Any:  # type: ignore[override]
        self._plan.before(sql)
        result = await self._cursor.executemany(sql, rows, **options)
        if self._plan.fails_after():
            await self._cursor.close()
            self._plan.fail()
        return result


class FaultyConnection:
    """A driver connection whose statements go through the plan; everything else is the real connection's."""

    cursor_type: type[FaultyCursor] = FaultyCursor

    def __init__(self, conn: Any, plan: FaultPlan) -> None:
        self._conn = conn
        self._plan = plan

    def execute(self, sql: str, params: Any = ()) -> Any:
        self._plan.before(sql)
        result = self._conn.execute(sql, params)
        if self._plan.fails_after():
            result.close()
            self._plan.fail()
        return result

    def executemany(self, sql: str, rows: Any) -> Any:
        self._plan.before(sql)
        result = self._conn.executemany(sql, rows)
        if self._plan.fails_after():
            result.close()
            self._plan.fail()
        return result

    def cursor(self) -> Any:
        return self.cursor_type(self._conn.cursor(), self._plan)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class AsyncFaultyConnection(FaultyConnection):
    """An asyncio driver connection (aiosqlite, psycopg async) whose statements go through the plan."""

    cursor_type = AsyncFaultyCursor

    async def execute(self, sql: str, params: Any = ()) -> Any:  # type: ignore[override]
        self._plan.before(sql)
        result = await self._conn.execute(sql, params)
        if self._plan.fails_after():
            await result.close()
            self._plan.fail()
        return result

    async def executemany(self, sql: str, rows: Any) -> Any:  # type: ignore[override]
        self._plan.before(sql)
        result = await self._conn.executemany(sql, rows)
        if self._plan.fails_after():
            await result.close()
            self._plan.fail()
        return result


def driver_error(kind: str, mode: str) -> Callable[[], BaseException]:
    """A factory of the error the driver raises for an I/O failure of the server or the file.

    A server answers a statement it refused with an error; when a statement ran but its answer
    never came (mode 'after'), the client sees the connection fail instead.
    """
    if kind == "postgres":
        import psycopg

        if mode == "after":
            return lambda: psycopg.OperationalError(
                "consuming input failed: server closed the connection unexpectedly"
            )
        return lambda: psycopg.errors.DiskFull("could not extend file: No space left on device")
    return lambda: sqlite3.OperationalError("disk I/O error")


def wrap_connections(monkeypatch: pytest.MonkeyPatch, database: Any, plan: FaultPlan) -> None:
    """Make every connection sessions of ``database`` take from now on a faulty one (the pool keeps the real one)."""
    provider = database.provider
    acquire, aacquire = provider.acquire, provider.aacquire
    release, arelease, discard, adiscard = (
        provider.release,
        provider.arelease,
        provider.discard,
        provider.adiscard,
    )

    async def faulty_aacquire(readonly: bool = False) -> Any:
        return AsyncFaultyConnection(await aacquire(readonly), plan)

    monkeypatch.setattr(provider, "acquire", lambda readonly=False: FaultyConnection(acquire(readonly), plan))
    monkeypatch.setattr(provider, "aacquire", faulty_aacquire)
    monkeypatch.setattr(provider, "release", lambda conn: release(conn._conn))
    monkeypatch.setattr(provider, "discard", lambda conn: discard(conn._conn))
    monkeypatch.setattr(provider, "arelease", lambda conn: arelease(conn._conn))
    monkeypatch.setattr(provider, "adiscard", lambda conn: adiscard(conn._conn))
    provider.disconnect()
