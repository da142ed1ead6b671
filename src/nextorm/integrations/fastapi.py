"""FastAPI integration: a db_session per request, committed before the response is sent.

Routes made by :class:`SessionRoute` (``app.router.route_class = SessionRoute``, or
``APIRouter(route_class=SessionRoute)``) run their endpoint inside ``db_session``, where
FastAPI runs it: an ``async def`` endpoint on the event loop, a plain ``def`` endpoint in the
worker thread. The session commits when the endpoint returns, before FastAPI serializes and
sends the response, so a commit that fails raises from the endpoint and the client gets an
error response, never a 200. Background tasks of the response each get a session of their own.

A ``yield`` dependency is not used for the session on purpose: FastAPI may run the code after
``yield`` once the response has been sent, too late to turn a failed commit into an error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.background import BackgroundTask, BackgroundTasks

from ..exceptions import IsolationError, ObjectNotFound, TransactionIntegrityError
from ..session import DBSessionManager, db_session

__all__ = ["SessionRoute", "add_exception_handlers", "session_route"]


class SessionRoute(APIRoute):
    """An ``APIRoute`` whose endpoint and background tasks run in their own ``db_session``."""

    #: the db_session (or configured manager, e.g. ``db_session(retry=3)``) each request runs in
    session: ClassVar[DBSessionManager] = db_session

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # include_router() re-creates a route from its (already wrapped) endpoint: wrap once.
        if not getattr(endpoint, "_nextorm_session_", False):
            endpoint = self.session(endpoint)
            endpoint._nextorm_session_ = True  # type: ignore[attr-defined]
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's request handler, giving the response's background tasks sessions of their own."""
        handler = super().get_route_handler()
        session = self.session

        @functools.wraps(handler)
        async def handle(request: Request) -> Response:
            response = await handler(request)
            _give_sessions(response.background, session)
            return response

        return handle


def session_route(**options: Any) -> type[SessionRoute]:
    """A ``SessionRoute`` whose sessions take ``db_session(**options)``, e.g. ``retry=3``."""
    return type("SessionRoute", (SessionRoute,), {"session": db_session(**options)})


def _give_sessions(background: BackgroundTask | None, session: DBSessionManager) -> None:
    """Wrap each background task's function in ``session``: it runs after the request's session ended."""
    if background is None:
        return
    tasks = background.tasks if isinstance(background, BackgroundTasks) else [background]
    for task in tasks:
        task.func = session(task.func)


_STATUS = (
    (ObjectNotFound, 404),
    (TransactionIntegrityError, 409),
    (IsolationError, 409),
)


def add_exception_handlers(app: FastAPI) -> None:
    """Answer ``ObjectNotFound`` with 404 and integrity and concurrency conflicts with 409.

    Every other error, a commit the database refused for another reason included, stays a 500.
    """
    for exc_class, status in _STATUS:
        app.add_exception_handler(exc_class, functools.partial(_error_response, status))


async def _error_response(status: int, request: Request, exc: Exception) -> Response:
    """A JSON error body naming the exception, with ``status``."""
    return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=status)
