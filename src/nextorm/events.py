"""Session events: the listener registry of a database and the order handlers are called in.

``@db.on('before_commit')`` registers ``handler(session)``. The unit of work and the session call
``fire`` at each point of a transaction's life; what an exception in a handler does depends on
the event (see ``EVENTS``): one raised before a change aborts it and rolls the session back, one
raised after it reaches the caller while what happened stays done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .exceptions import OrmError

__all__ = ["EVENTS", "EventHandlerError", "Listeners"]

H = TypeVar("H", bound=Callable[..., Any])

#: the events a handler can be registered for, in the order a transaction meets them
EVENTS = ("after_begin", "before_flush", "after_flush", "before_commit", "after_commit", "after_rollback")


class EventHandlerError(OrmError):
    """``db.on()`` was given an unknown event name or a handler that is not callable."""


class Listeners:
    """The handlers registered on one database, by event, in registration order."""

    __slots__ = ("handlers",)

    def __init__(self) -> None:
        self.handlers: dict[str, list[Callable[[Any], Any]]] = {}

    def on(self, event: str, db: Any) -> Callable[[H], H]:
        """The decorator that registers a handler of ``event`` (``db`` names the database in errors)."""
        if event not in EVENTS:
            raise EventHandlerError(
                f"Unknown event {event!r} for {db!r}.on(): expected one of {', '.join(EVENTS)}"
            )

        def register(handler: H) -> H:
            if not callable(handler):
                raise EventHandlerError(f"{db!r}.on({event!r}) takes a callable, got {handler!r}")
            self.handlers.setdefault(event, []).append(handler)
            return handler

        return register

    def fire(self, event: str, session: Any) -> None:
        """Call every handler of ``event`` with ``session``; the first exception stops and propagates."""
        handlers = self.handlers.get(event)
        if handlers:
            for handler in list(handlers):
                handler(session)
