"""``pony.orm.core``: the public names of nextorm under the module Pony applications import.

Pony's exception classes that nextorm has no counterpart for are declared here with Pony's
hierarchy (DB-API errors under ``DatabaseError``) so code naming them still imports; nextorm
never raises them, so a test expecting one fails as it should.
"""

from __future__ import annotations

import builtins

import nextorm
import pony  # Pony exports its package name
import pony.orm._views  # noqa: F401 - Pony's private names its tests read, as views of nextorm's state
from nextorm import *  # noqa: F403
from nextorm import DatabaseError, OrmError, set_sql_debug
from nextorm.attributes import Attribute  # noqa: F401 - listed in __all__

buffer = bytes
unicode = str
PonyRuntimeWarning = nextorm.OrmRuntimeWarning


class _Local:
    """Pony's per-thread state, reduced to what applications read of it: the active db_session."""

    @property
    def db_session(self) -> object:
        """The manager of the current thread's or task's session, or None outside a session."""
        session = nextorm.session.active_session()
        return None if session is None else session.manager


local = _Local()


def sql_debug(value: bool) -> None:
    """Switch statement logging on or off (Pony's ``sql_debug(True)``)."""
    set_sql_debug(value)


class DBException(Exception):
    """Pony's root of the DB-API exception classes."""


class Warning(DBException):
    """DB-API warning."""


class Error(DBException):
    """DB-API error."""


class InterfaceError(Error):
    """DB-API interface error."""


class DataError(DatabaseError):
    """DB-API data error."""


class OperationalError(DatabaseError):
    """DB-API operational error."""


class IntegrityError(DatabaseError):
    """DB-API integrity error."""


class InternalError(DatabaseError):
    """DB-API internal error."""


class ProgrammingError(DatabaseError):
    """DB-API programming error."""


class NotSupportedError(DatabaseError):
    """DB-API not-supported error."""


class TooManyRowsFound(OrmError):
    """Too many rows for the operation."""


class TooManyObjectsFoundError(OrmError):
    """Too many objects for the operation."""


class PermissionError(OrmError):
    """An operation the current user may not do."""


class TableDoesNotExist(OrmError):
    """A table the mapping needs is missing."""


class DatabaseContainsIncorrectValue(RuntimeWarning):
    """A stored value does not match its attribute's type."""


class DatabaseContainsIncorrectEmptyValue(DatabaseContainsIncorrectValue):
    """An empty stored value where the attribute requires one."""


class UnexpectedError(OrmError):
    """An error Pony does not expect."""


_declared = [
    "DBException",
    "Warning",
    "Error",
    "InterfaceError",
    "DataError",
    "OperationalError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
    "TooManyRowsFound",
    "TooManyObjectsFoundError",
    "PermissionError",
    "TableDoesNotExist",
    "DatabaseContainsIncorrectValue",
    "DatabaseContainsIncorrectEmptyValue",
    "UnexpectedError",
    "Attribute",
]
__all__ = sorted(
    {name for name in nextorm.__all__ if not name.startswith("_") and not hasattr(builtins, name)}
    | {"buffer", "unicode", "pony", "sql_debug", "PonyRuntimeWarning", *_declared}
) + [name for name in nextorm.__all__ if hasattr(builtins, name)]
