"""The entities of a ``Database`` as SQLAlchemy ``MetaData``: the tables ``generate_mapping`` creates."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from ..database import (
    Database,
    column_index_name,
    composite_index_name,
    join_table_index_name,
    table_composite_indexes,
    table_unique_keys,
)
from ..exceptions import MappingError
from ..relationships import reference_on_delete
from ..sql import ColumnDef, foreign_key_name

__all__ = ["NAMING_CONVENTION", "build_metadata", "dialect_of", "sql_type"]

#: the names nextorm gives constraints; unique keys are unnamed in CREATE TABLE, and SQLite's table
#: rebuilds give unnamed ones these names so that a migration can drop them by name
NAMING_CONVENTION = {
    "fk": "fk_%(table_name)s__%(column_0_name)s",
    "uq": "uq_%(table_name)s__%(column_0_N_name)s",
    "ix": "idx_%(table_name)s__%(column_0_N_name)s",
}

# "NUMERIC(12, 2) COLLATE x": a type name, its arguments, an optional collation
_SPELLING = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z_ ]*?)\s*(?:\((?P<args>[^)]*)\))?\s*(?:COLLATE\s+(?P<collation>\S+))?\s*$",
    re.IGNORECASE,
)
# SQL synonyms PostgreSQL accepts that SQLAlchemy names otherwise
_SYNONYMS: dict[str, tuple[str, dict[str, Any]]] = {
    "TIMESTAMPTZ": ("TIMESTAMP", {"timezone": True}),
    "TIMESTAMP WITH TIME ZONE": ("TIMESTAMP", {"timezone": True}),
    "TIMESTAMP WITHOUT TIME ZONE": ("TIMESTAMP", {}),
    "TIMETZ": ("TIME", {"timezone": True}),
    "INT": ("INTEGER", {}),
    "INT8": ("BIGINT", {}),
    "BOOL": ("BOOLEAN", {}),
    "CHARACTER VARYING": ("VARCHAR", {}),
}
# the auto-incrementing primary key spelled by the provider: '"id" BIGINT GENERATED ... PRIMARY KEY'
_AUTO_PK = re.compile(
    r'^\s*"(?:[^"]|"")*"\s+(?P<type>[A-Za-z][A-Za-z ]*?(?:\([^)]*\))?)\s+(?:PRIMARY|GENERATED)'
)


def dialect_of(db: Database) -> Dialect:
    """The SQLAlchemy dialect of the database ``db`` is bound to."""
    from sqlalchemy.dialects import postgresql, sqlite

    name = db.provider_name
    if name == "sqlite":
        return sqlite.dialect()  # type: ignore[no-any-return]
    if name == "postgres":
        return postgresql.psycopg.dialect()  # type: ignore[no-any-return]
    raise MappingError(f"Migrations do not support the {name!r} provider")


def sql_type(spelling: str, dialect: Dialect) -> sa.types.TypeEngine[Any]:
    """The SQLAlchemy type of a column type as the provider spells it in CREATE TABLE."""
    match = _SPELLING.match(spelling)
    if match is None:
        raise MappingError(f"Column type {spelling!r} is not one migrations can describe")
    name = " ".join(match["name"].upper().split())
    name, options = _SYNONYMS.get(name, (name, {}))
    args = [int(a) for a in match["args"].split(",")] if match["args"] else []
    module = __import__(f"sqlalchemy.dialects.{dialect.name}", fromlist=["_"])
    type_class = getattr(module, name.replace(" ", "_"), None) or getattr(
        sa.types, name.replace(" ", "_"), None
    )
    if not (isinstance(type_class, type) and issubclass(type_class, sa.types.TypeEngine)):
        raise MappingError(f"Column type {spelling!r} is not one migrations can describe")
    if match["collation"]:
        options = {**options, "collation": match["collation"]}
    if args and name.startswith(("TIMESTAMP", "TIME")):
        options = {**options, "precision": args[0]}  # TIMESTAMP(3): digits of the seconds' fraction
        args = []
    return type_class(*args, **options)  # type: ignore[no-any-return]


def build_metadata(db: Database) -> sa.MetaData:
    """The tables, keys, indexes and join tables ``db.generate_mapping(create_tables=True)`` creates."""
    provider = db._provider_or_fail()
    db._require_mapped_db()
    dialect = dialect_of(db)
    metadata = sa.MetaData(naming_convention={k: v for k, v in NAMING_CONVENTION.items() if k != "uq"})
    for entity in db._root_entities():  # a hierarchy is one table, its root's
        _entity_table(metadata, provider, dialect, entity)
    for attr in db._join_tables():
        owner, target = attr.entity, attr.py_type
        own, other = attr.owner_columns, attr.target_columns
        sa.Table(
            attr.join_table,
            metadata,
            *(
                sa.Column(column, sql_type(provider.dialect.sql_type(leaf), dialect), primary_key=True)
                for names, entity in ((own, owner), (other, target))
                for column, (_, leaf) in zip(names, entity._pk_leaves_)
            ),
            _foreign_key(attr.join_table, own, owner),
            _foreign_key(attr.join_table, other, target),
            sa.Index(join_table_index_name(attr), *other),
        )
    return metadata


def _server_default(attr: Any, dialect: Any) -> Any:
    """The column's DEFAULT of ``sql_default=``, as the tables nextorm creates have it."""
    default = attr.sql_default
    if default is None:
        return None
    return sa.text(dialect.bool_literal(default) if isinstance(default, bool) else default)


def _entity_table(metadata: sa.MetaData, provider: Any, dialect: Dialect, entity: Any) -> sa.Table:
    columns: list[sa.Column[Any]] = []
    elements: list[Any] = []
    options: dict[str, Any] = {}
    for attr in entity._loaded_columns_:  # the columns of every class of the hierarchy
        if attr.is_pk:
            # CREATE TABLE spells no NOT NULL on a one-column key: PostgreSQL implies it, SQLite does not
            nullable = entity._npk_ == 1 and dialect.name == "sqlite"
        else:
            # a subclass's column is empty in the rows of the other classes
            nullable = bool(attr.nullable) or attr.entity is not entity
        if attr.auto:
            spelling = ColumnDef(attr.column, None).sql(provider.dialect)
            match = _AUTO_PK.match(spelling)
            if match is None:
                raise MappingError(
                    f"The {provider.name} key column {spelling!r} is not one migrations can describe"
                )
            extra: list[Any] = []
            if "AS IDENTITY" in spelling.upper():
                extra.append(sa.Identity(always="GENERATED ALWAYS" in spelling.upper()))
            if "AUTOINCREMENT" in spelling.upper():
                options["sqlite_autoincrement"] = True
            column_type = sql_type(match["type"], dialect)
            columns.append(
                sa.Column(
                    attr.column, column_type, *extra, primary_key=True, nullable=nullable, autoincrement=True
                )
            )
            continue
        for column, leaf in zip(attr.column_names, attr.leaves):
            columns.append(
                sa.Column(
                    column,
                    sql_type(
                        provider.dialect.reference_sql_type(attr)
                        if attr.is_reference and attr.width == 1
                        else provider.dialect.sql_type(leaf),
                        dialect,
                    ),
                    primary_key=attr.is_pk,
                    nullable=nullable,
                    # a key nextorm does not generate is not SERIAL/AUTOINCREMENT in a CREATE TABLE
                    autoincrement=False if attr.is_pk else "auto",
                    server_default=_server_default(attr, provider.dialect),
                )
            )
        if attr.is_reference:
            elements.append(
                _foreign_key(
                    entity._table_, attr.column_names, attr.py_type, attr.fk_name, reference_on_delete(attr)
                )
            )
        index = column_index_name(attr)
        if index is not None:
            elements.append(sa.Index(index, *attr.column_names))
    for key in table_unique_keys(entity):
        elements.append(sa.UniqueConstraint(*(c for a in key.attrs for c in a.column_names)))
    for key in table_composite_indexes(entity):
        elements.append(
            sa.Index(composite_index_name(entity, key), *(c for a in key.attrs for c in a.column_names))
        )
    return sa.Table(entity._table_, metadata, *columns, *elements, **options)


def _foreign_key(
    table: str, columns: tuple[str, ...], target: Any, name: str | None = None, on_delete: str | None = None
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        list(columns),
        [f"{target._table_}.{column}" for column in target._pk_columns_],
        name=name or foreign_key_name(table, columns[0] if len(columns) == 1 else columns),
        ondelete=on_delete,
        deferrable=True,
        initially="DEFERRED",
    )
