"""The exceptions nextorm raises, one documented class per kind of failure."""

from __future__ import annotations

from typing import Any, TypeVar

_E = TypeVar("_E", bound=BaseException)

__all__ = [
    "AttributeTypeError",
    "BindingError",
    "CacheIndexError",
    "CommitException",
    "CommitOutcomeUnknown",
    "ConnectionClosedError",
    "ConstraintError",
    "DBSchemaError",
    "DatabaseError",
    "DatabaseSessionIsOver",
    "ERDiagramError",
    "ExprEvalError",
    "IncomparableTypesError",
    "IsolationError",
    "MappingError",
    "MultipleObjectsFoundError",
    "MultipleRowsFound",
    "ObjectCopyError",
    "ObjectNotFound",
    "OperationWithDeletedObjectError",
    "OptimisticCheckError",
    "OrmError",
    "OrmRuntimeWarning",
    "PartialCommitException",
    "PendingRollbackError",
    "PoolTimeoutError",
    "QueryAttributeError",
    "QueryError",
    "QueryNameError",
    "ReadOnlyAttributeError",
    "ReadOnlySessionError",
    "RollbackException",
    "RowNotFound",
    "SerializationFailure",
    "TableIsNotEmpty",
    "TransactionError",
    "TransactionIntegrityError",
    "TranslationError",
    "UnknownAttributeError",
    "UnrepeatableReadError",
    "UnresolvableCyclicDependency",
    "UnsupportedQueryError",
    "ValidationError",
]


def noted(error: _E, *notes: str) -> _E:
    """``error`` with ``notes`` added: shown below its message in a traceback, kept in ``__notes__``.

    Where nextorm keeps Pony's wording of a message, the location (query, line, attribute) and
    other details go in a note, so that ``str(error)`` is the message Pony's applications check.
    """
    for note in notes:
        if note:
            error.add_note(note)
    return error


class OrmError(Exception):
    """Base class of every error nextorm raises."""


class OrmRuntimeWarning(RuntimeWarning):
    """A warning about how nextorm is used (an option that has no effect where it is given)."""


class MappingError(OrmError):
    """An entity declaration or its mapping onto tables is wrong."""


class ERDiagramError(MappingError):
    """Entities are declared inconsistently (bad attribute, duplicate name)."""


class DBSchemaError(MappingError):
    """The database schema does not match the entities (missing table, column)."""


class TableIsNotEmpty(MappingError):
    """A table holding rows was to be dropped without ``with_all_data=True``."""


class BindingError(OrmError):
    """A database is bound twice, not bound, or bound with bad arguments."""


class ValidationError(OrmError, ValueError):
    """A value is not acceptable for an attribute (missing, too long, out of range)."""


class AttributeTypeError(ValidationError, TypeError):
    """A value has the wrong type for an attribute.

    Raised by an attribute's check of a value, it has ``attr`` (the attribute) and ``value``.
    """

    attr: Any = None
    value: Any = None


class IncomparableTypesError(AttributeTypeError):
    """A query compares values whose types cannot be compared (a str attribute with an int).

    The message names both types and the comparison as written in the query; a note gives the
    query's location and the attribute's own refusal of the value.
    """


class UnknownAttributeError(OrmError, TypeError, AttributeError):
    """A keyword or attribute name names no attribute of the entity."""


class ReadOnlyAttributeError(OrmError, TypeError):
    """An attribute that cannot be assigned (a primary key) was assigned."""


class QueryError(OrmError, TypeError, ValueError):
    """A query was built wrongly: a bad condition, order, limit, offset, index or slice."""


class TranslationError(QueryError):
    """A generator, lambda or string query uses a construct nextorm cannot translate to SQL.

    The message names the construct and the line of the query; where the source of a query
    cannot be read, it says to write the query as a string or with attribute expressions.
    """


class UnsupportedQueryError(TranslationError, NotImplementedError):
    """A generator, lambda or string query uses a construct nextorm does not translate to SQL.

    Also a ``NotImplementedError`` (Pony's class for these). The message names the construct;
    where it keeps Pony's wording (the construct's text alone, such as ``for x in s.name``), a
    note gives the query and its line.
    """


class QueryAttributeError(TranslationError, AttributeError):
    """A query reads an attribute its value does not have (``s.name.foo``, ``g.students.name.foo``).

    Also an ``AttributeError``, as in Python and Pony; the message names the path as written.
    """


class ExprEvalError(TranslationError):
    """Evaluating a value a query takes from its enclosing scope raised an exception.

    The message reads "`expression` raises ErrorClass: message", naming the part of the query
    that was evaluated as Python; ``expression``, ``query`` (the query's text) and ``line`` (its
    first line in the source) tell where, and a note on the exception repeats the query and line.
    The original exception is the ``__cause__``.
    """

    expression: str | None = None
    query: str | None = None
    line: int | None = None


class QueryNameError(ExprEvalError, NameError):
    """A name a query reads from its enclosing scope is not assigned yet when the query runs.

    Also a ``NameError``; the message names the variable, a note the query and its line.
    """


class ObjectNotFound(OrmError):
    """``Entity[pk]`` found no row."""

    def __init__(self, entity: Any, pkval: Any = None, shown: str | None = None) -> None:
        self.entity = entity
        self.pkval = pkval
        if shown is None:
            shown = ",".join(repr(v) for v in pkval) if isinstance(pkval, tuple) else repr(pkval)
        super().__init__(f"{entity.__name__}[{shown}]")


class ObjectCopyError(OrmError, TypeError):
    """An entity object was copied or pickled: a session holds one object per row."""


class RowNotFound(OrmError):
    """A raw ``db.get()`` found no row."""


class MultipleRowsFound(OrmError):
    """A raw ``db.get()`` found several rows."""


class MultipleObjectsFoundError(OrmError):
    """``get()`` matched more than one row."""


class ConstraintError(OrmError):
    """A relationship forbids the change (a required reference would be left empty)."""


class CacheIndexError(OrmError):
    """Two objects of one session would have the same primary key or unique value."""


class OperationWithDeletedObjectError(OrmError):
    """An object was used after it was deleted."""


class TransactionError(OrmError):
    """A session or transaction was used wrongly or could not complete."""


class UnresolvableCyclicDependency(TransactionError):
    """New objects refer to each other in a cycle, so none can be inserted first."""


class ConnectionClosedError(TransactionError):
    """The database connection was lost."""


class PoolTimeoutError(ConnectionClosedError):
    """No pooled connection became free (or could be opened) within the bind's ``pool_timeout``."""


class ReadOnlySessionError(TransactionError):
    """A ``db_session(readonly=True)`` tried to write: create, assign, delete, flush or a DML statement."""


class PendingChangesError(TransactionError):
    """An object with changes not flushed yet cannot be expunged (flush or roll them back first)."""


class TransactionIntegrityError(TransactionError):
    """The database rejected a write: unique or foreign-key violation, NOT NULL."""


class IsolationError(TransactionError):
    """A concurrent transaction changed data this session relies on."""


class UnrepeatableReadError(IsolationError):
    """A column read earlier in this session has a different value in the database now."""


class OptimisticCheckError(IsolationError):
    """An UPDATE or DELETE found the row changed by another transaction."""


class SerializationFailure(IsolationError):
    """The database aborted the transaction (serialization failure or deadlock); retry it."""


class CommitException(TransactionError):
    """Committing failed and nothing was committed: every database's transaction was ended unapplied."""

    def __init__(self, msg: str, exceptions: list[BaseException] | None = None) -> None:
        super().__init__(msg)
        self.exceptions = exceptions or []


class CommitOutcomeUnknown(TransactionError):
    """COMMIT did not answer (the connection dropped mid-COMMIT): it may or may not have taken effect.

    ``db_session(retry=...)`` never re-runs a function after this error, whatever
    ``retry_exceptions`` says: re-running could write the same rows twice. ``database`` is the
    database whose COMMIT went unanswered; ``committed`` lists the databases committed before it.
    """

    def __init__(
        self,
        msg: str,
        exceptions: list[BaseException] | None = None,
        database: Any = None,
        committed: list[Any] | None = None,
    ) -> None:
        super().__init__(msg)
        self.exceptions = exceptions or []
        self.database = database
        self.committed = committed or []


class PartialCommitException(TransactionError):
    """The first database committed, a later one failed: part of the session's work is stored.

    ``db_session(retry=...)`` never re-runs a function after this error, whatever
    ``retry_exceptions`` says. ``committed`` lists the databases that committed, ``failed`` the
    ones that did not.
    """

    def __init__(
        self,
        msg: str,
        exceptions: list[BaseException] | None = None,
        committed: list[Any] | None = None,
        failed: list[Any] | None = None,
    ) -> None:
        super().__init__(msg)
        self.exceptions = exceptions or []
        self.committed = committed or []
        self.failed = failed or []


class PendingRollbackError(TransactionError):
    """A flush or commit of this session failed: it refuses all work until ``rollback()``.

    ``failure`` is the original error. Leaving the ``db_session`` block rolls back and raises this
    error when the failure was caught inside the block.
    """

    def __init__(self, msg: str, failure: BaseException | None = None) -> None:
        super().__init__(msg)
        self.failure = failure


class RollbackException(TransactionError):
    """Rolling back failed."""

    def __init__(self, msg: str, exceptions: list[BaseException] | None = None) -> None:
        super().__init__(msg)
        self.exceptions = exceptions or []


class DatabaseSessionIsOver(TransactionError):
    """An object was used for database work after its db_session ended."""


class DatabaseError(OrmError):
    """The database driver raised an error that has no more specific class."""
