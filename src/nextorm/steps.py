"""One unit-of-work logic, two ways to run its IO.

Everything that talks to a database is written once, as a generator of *steps*:
it yields a request ``(cache, name, args)`` and receives the result.
``run_sync`` performs ``cache.<name>(*args)``; ``run_async`` awaits
``cache.a<name>(*args)``. A failed request is thrown back into the generator,
so its ``try``/``except`` handling works the same both ways.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from .exceptions import TransactionError

__all__ = ["NO_STEPS", "AsyncRequired", "Result", "Steps", "bridge_loop", "perform", "run_async", "run_sync"]

T = TypeVar("T")
#: a generator of requests ``(cache, name, args)`` returning ``T``
Steps = Generator[tuple[Any, str, tuple[Any, ...]], Any, T]

#: a step sequence that makes no request and returns None (an exhausted iterator: safe to share)
NO_STEPS: Steps[None] = cast(Steps[None], iter(()))


#: in a thread running sync code for an async session (``nextorm.run_sync``): the event loop its IO runs on
bridge_loop: ContextVar[Any] = ContextVar("nextorm_bridge_loop", default=None)


class AsyncRequired(TransactionError):
    """A synchronous call needs IO on an AsyncDatabase: use the awaitable twin it names."""


class Result:
    """What one statement gave back: rows (when it returns any), row count, last row id."""

    __slots__ = ("_position", "description", "lastrowid", "rowcount", "rows")

    def __init__(self, rows: list[Any], description: Any, rowcount: int, lastrowid: Any = None) -> None:
        self.rows = rows
        self.description = description
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self._position = 0

    def fetchone(self) -> Any:
        """The next row, or None (DB-API cursor style)."""
        if self._position >= len(self.rows):
            return None
        self._position += 1
        return self.rows[self._position - 1]

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        rows = self.rows[self._position :]
        self._position = len(self.rows)
        return rows

    def fetchmany(self, size: int = 1) -> list[Any]:
        """Up to ``size`` more rows."""
        rows = self.rows[self._position : self._position + size]
        self._position += len(rows)
        return rows

    def __iter__(self) -> Any:
        return iter(self.fetchall())


def run_sync(steps: Steps[T], awaitable: str = "") -> T:
    """Run ``steps`` with blocking IO; on an async database raise AsyncRequired naming ``awaitable``."""
    try:
        request = next(steps)
        while True:
            cache, name, args = request
            if cache.is_async and bridge_loop.get() is None:
                # not thrown into the steps: their error handling is for failed IO, not for a wrong call
                steps.close()
                raise _async_required(cache, awaitable)
            try:
                result = perform(cache, name, args)
            except BaseException as exc:
                request = steps.throw(exc)
            else:
                request = steps.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def perform(cache: Any, name: str, args: tuple[Any, ...], awaitable: str = "") -> Any:
    """One request ``cache.<name>(*args)`` with blocking IO, at once: what ``run_sync`` does per step.

    The direct path of a single statement: its sync face calls this instead of running a step
    sequence; on an async database it raises AsyncRequired naming ``awaitable``.
    """
    if not cache.is_async:
        return getattr(cache, name)(*args)
    loop = bridge_loop.get()
    if loop is None:
        raise _async_required(cache, awaitable)
    # sync code of an async session (run_sync): the IO runs on the session's loop
    return asyncio.run_coroutine_threadsafe(getattr(cache, "a" + name)(*args), loop).result()


def _async_required(cache: Any, awaitable: str) -> AsyncRequired:
    return AsyncRequired(
        f"This call needs IO on an async database ({cache.db!r}): use {awaitable or 'its awaitable twin'}"
    )


async def run_async(steps: Steps[T]) -> T:
    """Run ``steps`` awaiting each IO request."""
    try:
        request = next(steps)
        while True:
            cache, name, args = request
            try:
                if cache.is_async:
                    result = await getattr(cache, "a" + name)(*args)
                else:
                    result = getattr(cache, name)(*args)
            except BaseException as exc:
                request = steps.throw(exc)
            else:
                request = steps.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
