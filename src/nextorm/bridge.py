"""Sync code in async sessions: ``await run_sync(fn, *args)`` runs ``fn`` against the same session.

``fn`` runs in a worker thread that borrows the awaiting task's session (``borrowed_task``); each
blocking IO request it makes (a query, an attribute load, a flush) is sent back to the event loop
and run there on the session's own async connection, while the task waits for ``fn`` to return.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

from ._impl import borrowed_task, current_task
from .session import require_session
from .steps import bridge_loop

__all__ = ["run_sync"]

T = TypeVar("T")


async def run_sync(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the plain function ``fn(*args, **kwargs)`` with the sync API inside the current async session.

    Queries, attribute loads and flushes in ``fn`` use the session's connection and transaction;
    the result (or exception) of ``fn`` is returned (or raised) here.
    """
    require_session()
    loop = asyncio.get_running_loop()
    task = current_task()
    context = contextvars.copy_context()

    def call() -> T:
        borrowed_task.set(task)
        bridge_loop.set(loop)
        return fn(*args, **kwargs)

    return await loop.run_in_executor(None, context.run, call)
