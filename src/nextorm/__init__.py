"""nextorm: a Pony-style ORM with a compiled session layer.

``from nextorm import db_session`` and the other public names are re-exported
here; ``COMPILED`` tells whether the compiled hot path loaded.
"""

from __future__ import annotations

from ._impl import COMPILED
from .attributes import Optional, PrimaryKey, Required, Set, composite_key, desc
from .database import AsyncDatabase, Database
from .debug import set_sql_debug, sql_debug
from .entity import Entity, EntityProxy, make_proxy
from .exceptions import (
    AttributeTypeError,
    BindingError,
    CacheIndexError,
    CommitException,
    ConnectionClosedError,
    ConstraintError,
    DatabaseError,
    DatabaseSessionIsOver,
    DBSchemaError,
    ERDiagramError,
    IsolationError,
    MappingError,
    MultipleObjectsFoundError,
    ObjectNotFound,
    OperationWithDeletedObjectError,
    OptimisticCheckError,
    OrmError,
    PartialCommitException,
    PoolTimeoutError,
    QueryError,
    ReadOnlyAttributeError,
    ReadOnlySessionError,
    RollbackException,
    SerializationFailure,
    TableIsNotEmpty,
    TransactionError,
    TransactionIntegrityError,
    UnknownAttributeError,
    UnrepeatableReadError,
    UnresolvableCyclicDependency,
    ValidationError,
)
from .query import Query
from .session import acommit, aflush, arollback, commit, db_session, flush, rollback, with_transaction
from .steps import AsyncRequired
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
    "ConnectionClosedError",
    "ConstraintError",
    "DBSchemaError",
    "Database",
    "DatabaseError",
    "DatabaseSessionIsOver",
    "ERDiagramError",
    "Entity",
    "EntityProxy",
    "IsolationError",
    "Json",
    "MappingError",
    "MultipleObjectsFoundError",
    "ObjectNotFound",
    "OperationWithDeletedObjectError",
    "OptimisticCheckError",
    "Optional",
    "OrmError",
    "PartialCommitException",
    "PoolTimeoutError",
    "PrimaryKey",
    "Query",
    "QueryError",
    "ReadOnlyAttributeError",
    "ReadOnlySessionError",
    "Required",
    "RollbackException",
    "SerializationFailure",
    "Set",
    "TableIsNotEmpty",
    "TransactionError",
    "TransactionIntegrityError",
    "UnknownAttributeError",
    "UnrepeatableReadError",
    "UnresolvableCyclicDependency",
    "ValidationError",
    "__version__",
    "acommit",
    "aflush",
    "arollback",
    "commit",
    "composite_key",
    "db_session",
    "desc",
    "flush",
    "make_proxy",
    "rollback",
    "set_sql_debug",
    "sql_debug",
    "with_transaction",
]
