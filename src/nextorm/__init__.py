"""nextorm: a Pony-style ORM with a compiled session layer.

``from nextorm import db_session`` and the other public names are re-exported
here; ``COMPILED`` tells whether the compiled hot path loaded.
"""

from __future__ import annotations

from ._impl import COMPILED
from .attributes import Optional, PrimaryKey, Required, Set, composite_key, desc
from .database import AsyncDatabase, Database
from .debug import set_sql_debug, sql_debug
from .display import show
from .entity import Entity, EntityProxy, make_proxy
from .exceptions import (
    AttributeTypeError,
    BindingError,
    CacheIndexError,
    CommitException,
    CommitOutcomeUnknown,
    ConnectionClosedError,
    ConstraintError,
    DatabaseError,
    DatabaseSessionIsOver,
    DBSchemaError,
    ERDiagramError,
    ExprEvalError,
    IsolationError,
    MappingError,
    MultipleObjectsFoundError,
    MultipleRowsFound,
    ObjectCopyError,
    ObjectNotFound,
    OperationWithDeletedObjectError,
    OptimisticCheckError,
    OrmError,
    PartialCommitException,
    PendingRollbackError,
    PoolTimeoutError,
    QueryError,
    ReadOnlyAttributeError,
    ReadOnlySessionError,
    RollbackException,
    RowNotFound,
    SerializationFailure,
    TableIsNotEmpty,
    TransactionError,
    TransactionIntegrityError,
    TranslationError,
    UnknownAttributeError,
    UnrepeatableReadError,
    UnresolvableCyclicDependency,
    ValidationError,
)
from .query import Query
from .session import acommit, aflush, arollback, commit, db_session, flush, rollback, with_transaction
from .steps import AsyncRequired
from .translator import between, count, exists, get, select
from .types import Json

__version__ = "0.1.0"

__all__ = [
    "COMPILED",
    "AsyncDatabase",
    "AsyncRequired",
    "AttributeTypeError",
    "BindingError",
    "CacheIndexError",
    "CommitException",
    "CommitOutcomeUnknown",
    "ConnectionClosedError",
    "ConstraintError",
    "DBSchemaError",
    "Database",
    "DatabaseError",
    "DatabaseSessionIsOver",
    "ERDiagramError",
    "Entity",
    "EntityProxy",
    "ExprEvalError",
    "IsolationError",
    "Json",
    "MappingError",
    "MultipleObjectsFoundError",
    "MultipleRowsFound",
    "ObjectCopyError",
    "ObjectNotFound",
    "OperationWithDeletedObjectError",
    "OptimisticCheckError",
    "Optional",
    "OrmError",
    "PartialCommitException",
    "PendingRollbackError",
    "PoolTimeoutError",
    "PrimaryKey",
    "Query",
    "QueryError",
    "ReadOnlyAttributeError",
    "ReadOnlySessionError",
    "Required",
    "RollbackException",
    "RowNotFound",
    "SerializationFailure",
    "Set",
    "TableIsNotEmpty",
    "TransactionError",
    "TransactionIntegrityError",
    "TranslationError",
    "UnknownAttributeError",
    "UnrepeatableReadError",
    "UnresolvableCyclicDependency",
    "ValidationError",
    "__version__",
    "acommit",
    "aflush",
    "arollback",
    "between",
    "commit",
    "composite_key",
    "count",
    "db_session",
    "desc",
    "exists",
    "flush",
    "get",
    "make_proxy",
    "rollback",
    "select",
    "set_sql_debug",
    "show",
    "sql_debug",
    "with_transaction",
]
