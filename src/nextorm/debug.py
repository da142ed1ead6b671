"""SQL logging: the ``nextorm.sql`` logger, switched per thread or task, with statement timings.

Also the query statistics of a database (``db.local_stats``): how often each statement ran, and
how long it took.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from time import perf_counter
from types import TracebackType
from typing import Any

# sql_debug_state, (debug, show_values) of this thread or task, is the hot path's: it reads it directly
from ._impl import QueryStat, add_run, sql_debug_state

__all__ = [
    "QueryStat",
    "QueryStats",
    "is_sql_debug",
    "logged_sql",
    "set_sql_debug",
    "sql_debug",
    "sql_debug_state",
    "sql_logger",
]

sql_logger = logging.getLogger("nextorm.sql")

#: what ``logged_sql`` gives while logging is off: entering and leaving it costs next to nothing
_NOT_LOGGED = contextlib.nullcontext()


def set_sql_debug(debug: bool = True, show_values: bool | None = None) -> None:
    """Log every statement to ``nextorm.sql`` (with its parameters when ``show_values``)."""
    current = sql_debug_state.get()
    sql_debug_state.set((bool(debug), current[1] if show_values is None else bool(show_values)))


def sql_debug(value: bool) -> None:
    """Switch statement logging on or off, keeping the ``show_values`` choice."""
    set_sql_debug(value)


def is_sql_debug() -> bool:
    """Whether statements are being logged in this thread or task."""
    return sql_debug_state.get()[0]


def push_sql_debug(debug: bool | None, show_values: bool | None) -> Any:
    """Set the debug state for a session; returns the token to restore it."""
    current = sql_debug_state.get()
    return sql_debug_state.set(
        (
            current[0] if debug is None else bool(debug),
            current[1] if show_values is None else bool(show_values),
        )
    )


def pop_sql_debug(token: Any) -> None:
    """Restore the debug state saved by ``push_sql_debug``."""
    sql_debug_state.reset(token)


def logged_sql(
    sql: str, params: Any = None, many: int | None = None
) -> contextlib.AbstractContextManager[None]:
    """A context around running one statement that logs it, timed, when it ends (if logging is on).

    ``many`` is the row count of an executemany.
    """
    debug, show_values = sql_debug_state.get()
    if not debug:
        return _NOT_LOGGED
    return _TimedStatement(sql, params if show_values else None, many)


class _TimedStatement:
    """Times one statement and logs it when it ends, also when it fails."""

    __slots__ = ("many", "params", "sql", "started")

    def __init__(self, sql: str, params: Any, many: int | None) -> None:
        self.sql = sql
        self.params = params
        self.many = many
        self.started = 0.0

    def __enter__(self) -> None:
        self.started = perf_counter()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _log_statement(self.sql, self.params, self.many, perf_counter() - self.started, exc is not None)


def _level_chosen() -> bool:
    """Whether the application set a level on ``nextorm.sql`` or ``nextorm`` (the root's does not count)."""
    logger: logging.Logger | None = sql_logger
    while logger is not None and logger is not logging.root:
        if logger.level != logging.NOTSET:
            return True
        logger = logger.parent
    return False


def _log_statement(sql: str, params: Any, many: int | None, duration: float, failed: bool) -> None:
    """Log one finished statement at INFO.

    Switching SQL debugging on is the request to see statements, so, as with SQLAlchemy's ``echo``,
    the root logger's level does not hide them: only a level the application set on ``nextorm.sql``
    (or ``nextorm``) and ``logging.disable`` do. The record goes to the application's handlers; with
    no handler configured anywhere it is printed to stdout, as Pony does.
    """
    if sql_logger.manager.disable >= logging.INFO:
        return
    if _level_chosen() and not sql_logger.isEnabledFor(logging.INFO):
        return
    text = sql if many is None else f"EXECUTEMANY ({many})\n{sql}"
    if params:
        text += "\n" + repr(params if many is None else list(params))
    # an SQL comment, so the logged text still runs as it is
    text += f"\n-- {duration * 1000:.3f} ms{' (failed)' if failed else ''}"
    record = sql_logger.makeRecord(
        sql_logger.name,
        logging.INFO,
        __file__,
        0,
        text,
        (),
        None,
        extra={"sql": sql, "params": params, "duration": duration, "failed": failed},
    )
    if sql_logger.hasHandlers():
        sql_logger.handle(record)
    else:
        print(text + "\n")


class QueryStats:
    """A database's query statistics: each thread's own, and the merged ones of all threads.

    Each thread counts its statements in its own ``{sql: QueryStat}`` (``local``), whose ``None``
    key holds the total of all of them. ``merge_local()`` adds this thread's to the ``merged``
    ones, kept for the whole process, and starts the thread's anew. A thread keeps at most
    ``MAX_STATEMENTS`` distinct statements; beyond them only the total counts further ones.
    """

    MAX_STATEMENTS = 10_000

    __slots__ = ("_local", "_lock", "_merged")

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._merged: dict[str | None, QueryStat] = {}

    def local(self) -> dict[str | None, QueryStat]:
        """This thread's statistics (the live dictionary)."""
        stats: dict[str | None, QueryStat] | None = getattr(self._local, "stats", None)
        if stats is None:
            stats = self._local.stats = {None: QueryStat(None)}
        return stats

    def add(self, sql: str, seconds: float) -> None:
        """Count one run of ``sql`` lasting ``seconds`` in this thread's statistics."""
        stats: dict[str | None, QueryStat] | None = getattr(self._local, "stats", None)
        if stats is None:
            stats = self._local.stats = {None: QueryStat(None)}
        add_run(stats, sql, seconds, self.MAX_STATEMENTS)

    def merge_local(self) -> None:
        """Add this thread's statistics to the merged ones and clear them."""
        stats = getattr(self._local, "stats", None)
        self._local.stats = {None: QueryStat(None)}
        if not stats:
            return
        with self._lock:
            merged = self._merged
            for sql, stat in stats.items():
                if sql in merged:
                    merged[sql].merge(stat)
                else:
                    merged[sql] = stat.copy()

    def merged(self) -> dict[str | None, QueryStat]:
        """A copy of the merged statistics of all threads."""
        with self._lock:
            return {sql: stat.copy() for sql, stat in self._merged.items()}
