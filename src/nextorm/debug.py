"""SQL logging: the ``nextorm.sql`` logger, switched per thread or task."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

__all__ = ["is_sql_debug", "log_sql", "set_sql_debug", "sql_debug", "sql_logger"]

sql_logger = logging.getLogger("nextorm.sql")

#: (debug, show_values) for the current thread or task
_state: ContextVar[tuple[bool, bool]] = ContextVar("nextorm_sql_debug", default=(False, False))


def set_sql_debug(debug: bool = True, show_values: bool | None = None) -> None:
    """Log every statement to ``nextorm.sql`` (with its parameters when ``show_values``)."""
    current = _state.get()
    _state.set((bool(debug), current[1] if show_values is None else bool(show_values)))


def sql_debug(value: bool) -> None:
    """Switch statement logging on or off, keeping the ``show_values`` choice."""
    set_sql_debug(value)


def is_sql_debug() -> bool:
    """Whether statements are being logged in this thread or task."""
    return _state.get()[0]


def push_sql_debug(debug: bool | None, show_values: bool | None) -> Any:
    """Set the debug state for a session; returns the token to restore it."""
    current = _state.get()
    return _state.set(
        (
            current[0] if debug is None else bool(debug),
            current[1] if show_values is None else bool(show_values),
        )
    )


def pop_sql_debug(token: Any) -> None:
    """Restore the debug state saved by ``push_sql_debug``."""
    _state.reset(token)


def log_sql(sql: str, params: Any = None, many: int | None = None) -> None:
    """Log one statement if logging is on; ``many`` is the row count of an executemany."""
    debug, show_values = _state.get()
    if not debug:
        return
    text = sql if many is None else f"EXECUTEMANY ({many})\n{sql}"
    if show_values and params:
        text += "\n" + repr(params if many is None else list(params))
    if sql_logger.hasHandlers():
        sql_logger.info(text)
    else:
        print(text + "\n")
