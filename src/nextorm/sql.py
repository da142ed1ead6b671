"""Every statement nextorm sends, as a small model rendered to SQL text by a dialect.

The model, loading, the unit of work and queries build these statements; ``render`` spells them
with a ``nextorm.providers.dialect.Dialect``. Conditions are objects with a
``sql(dialect, params)`` method: the expression tree of ``nextorm.expressions`` and the
statement-level conditions below. Values are always bound parameters (appended to ``params`` in
the order of the text); identifiers are always quoted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .providers.dialect import Dialect

__all__ = [
    "BATCH_SAVEPOINT",
    "Col",
    "ColumnDef",
    "Condition",
    "Count",
    "CreateIndex",
    "CreateTable",
    "Delete",
    "DropTable",
    "Equals",
    "ForeignKey",
    "InSubquery",
    "InValues",
    "Insert",
    "Join",
    "KeyMatch",
    "Select",
    "Update",
    "render",
]


#: the savepoint a batch of statements runs in, to be replayed row by row when it fails
BATCH_SAVEPOINT = "nextorm_batch"


class Condition(Protocol):
    """A boolean SQL condition."""

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The text of the condition, appending bound values to ``params``."""
        ...


@dataclass(frozen=True, slots=True)
class Col:
    """A column, optionally qualified by a table alias."""

    name: str
    table: str | None = None

    def sql(self, dialect: Dialect) -> str:
        """The quoted (and qualified) column."""
        quoted = dialect.quote(self.name)
        return quoted if self.table is None else f"{self.table}.{quoted}"


def _column(column: Col | str, dialect: Dialect) -> str:
    return dialect.quote(column) if isinstance(column, str) else column.sql(dialect)


# -- conditions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Equals:
    """``column = value``."""

    column: Col | str
    value: Any

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        params.append(self.value)
        return f"{_column(self.column, dialect)} = {dialect.param}"


@dataclass(frozen=True, slots=True)
class InValues:
    """``column IN (values)``, in the dialect's spelling for a list."""

    column: Col | str
    values: list[Any]

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return dialect.in_values_sql(_column(self.column, dialect), self.values, params)


@dataclass(frozen=True, slots=True)
class InSubquery:
    """``column IN (SELECT ...)``."""

    column: Col | str
    query: Select

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return f"{_column(self.column, dialect)} IN ({self.query.sql(dialect, params)})"


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """The WHERE of a row-by-row UPDATE/DELETE: ``key = ?`` for each of ``columns``, and the
    optimistic checks: ``= ?`` for each of ``checked``, ``IS NULL`` for each of ``null``.

    Its values are bound per row by the caller (in the order key, checked), so it adds none.
    """

    columns: tuple[str, ...]
    checks: tuple[tuple[str, bool], ...] = ()

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        parts = [f"{dialect.quote(c)} = {dialect.param}" for c in self.columns]
        for column, is_null in self.checks:
            quoted = dialect.quote(column)
            parts.append(f"{quoted} IS NULL" if is_null else f"{quoted} = {dialect.param}")
        return " AND ".join(parts)


# -- queries ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    """``JOIN table alias ON left = right``."""

    table: str
    alias: str
    left: Col
    right: Col


@dataclass(frozen=True, slots=True)
class Select:
    """``SELECT columns FROM table [joins] [WHERE ...] [ORDER BY ...] [LIMIT ...] [FOR UPDATE]``.

    ``columns`` are column names (or qualified ``Col``); ``count`` selects ``COUNT(*)`` and
    ``one`` selects the constant 1 instead. ``order`` holds (column, descending) pairs.
    """

    table: str
    columns: tuple[Col | str, ...] = ()
    alias: str | None = None
    joins: tuple[Join, ...] = ()
    where: Sequence[Condition] = ()
    order: tuple[tuple[str, bool], ...] = ()
    limit: int | None = None
    offset: int = 0
    for_update: str | None = None
    count: bool = False
    one: bool = False

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The statement's text, appending its bound values to ``params``."""
        if self.count:
            what = "COUNT(*)"
        elif self.one:
            what = "1"
        elif all(type(c) is str for c in self.columns):
            what = dialect.column_list(self.columns)  # type: ignore[arg-type]
        else:
            what = ", ".join(_column(c, dialect) for c in self.columns)
        sql = f"SELECT {what} FROM {dialect.quote(self.table)}"
        if self.alias is not None:
            sql += f" {self.alias}"
        for join in self.joins:
            sql += (
                f" JOIN {dialect.quote(join.table)} {join.alias}"
                f" ON {join.left.sql(dialect)} = {join.right.sql(dialect)}"
            )
        if self.where:
            sql += " WHERE " + " AND ".join(c.sql(dialect, params) for c in self.where)
        if self.order:
            sql += " ORDER BY " + ", ".join(
                dialect.quote(column) + (" DESC" if descending else "") for column, descending in self.order
            )
        if self.limit is not None or self.offset:
            sql += dialect.limit_clause(self.limit, self.offset, params)
        if self.for_update:
            sql += dialect.for_update_clause(self.for_update)
        return sql


@dataclass(frozen=True, slots=True)
class Count:
    """``SELECT COUNT(*) FROM (query) AS q``: the rows of a limited query."""

    query: Select

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The statement's text, appending its bound values to ``params``."""
        return f"SELECT COUNT(*) FROM ({self.query.sql(dialect, params)}) AS q"


# -- changes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Insert:
    """``INSERT INTO table (columns) VALUES (...)``; values are bound per row by the caller.

    ``ignore_conflicts`` skips a row that clashes with a unique key; ``returning`` names the
    column of the new row the statement returns.
    """

    table: str
    columns: tuple[str, ...]
    ignore_conflicts: bool = False
    returning: str | None = None

    def sql(self, dialect: Dialect) -> str:
        """The statement's text."""
        q = dialect.quote
        if not self.columns:  # a row of defaults only: an entity with nothing but a generated key
            sql = f"INSERT INTO {q(self.table)} DEFAULT VALUES"
        else:
            sql = (
                f"INSERT INTO {q(self.table)} ({', '.join(q(c) for c in self.columns)}) "
                f"VALUES ({dialect.placeholders(len(self.columns))})"
            )
        if self.ignore_conflicts:
            sql += dialect.ignore_conflict_clause()
        if self.returning is not None:
            sql += dialect.returning_clause(self.returning)
        return sql


@dataclass(frozen=True, slots=True)
class Update:
    """``UPDATE table SET column = ?, ... WHERE ...``; the SET values come first in a row."""

    table: str
    columns: tuple[str, ...]
    where: KeyMatch

    def sql(self, dialect: Dialect) -> str:
        """The statement's text."""
        q = dialect.quote
        return (
            f"UPDATE {q(self.table)} SET "
            + ", ".join(f"{q(c)} = {dialect.param}" for c in self.columns)
            + " WHERE "
            + self.where.sql(dialect, [])
        )


@dataclass(frozen=True, slots=True)
class Delete:
    """``DELETE FROM table WHERE ...``."""

    table: str
    where: KeyMatch

    def sql(self, dialect: Dialect) -> str:
        """The statement's text."""
        return f"DELETE FROM {dialect.quote(self.table)} WHERE {self.where.sql(dialect, [])}"


# -- schema -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnDef:
    """One column of CREATE TABLE: ``type`` is the dialect's type name, or None for an auto key."""

    name: str
    type: str | None
    primary_key: bool = False
    not_null: bool = False
    unique: bool = False
    #: the column's DEFAULT: SQL text as declared (``sql_default='now()'``), or True/False
    default: str | bool | None = None

    def sql(self, dialect: Dialect) -> str:
        """The column definition."""
        if self.type is None:
            return f"{dialect.quote(self.name)} {dialect.auto_pk_type}"
        sql = f"{dialect.quote(self.name)} {self.type}"
        if self.primary_key:
            sql += " PRIMARY KEY"
        elif self.not_null:
            sql += " NOT NULL"
        if self.unique:
            sql += " UNIQUE"
        if self.default is not None:
            sql += f" DEFAULT {dialect.bool_literal(self.default) if isinstance(self.default, bool) else self.default}"
        return sql


def foreign_key_name(table: str, column: str) -> str:
    """The name of the foreign-key constraint on ``table.column`` (migrations find it by this name)."""
    return f"fk_{table}__{column}"


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """``column`` of a table refers to ``target_table(target_column)``, checked at commit."""

    column: str
    target_table: str
    target_column: str

    def sql(self, dialect: Dialect) -> str:
        """The table constraint."""
        q = dialect.quote
        return (
            f"FOREIGN KEY ({q(self.column)}) REFERENCES {q(self.target_table)} ({q(self.target_column)}) "
            "DEFERRABLE INITIALLY DEFERRED"
        )


@dataclass(frozen=True, slots=True)
class CreateTable:
    """``CREATE TABLE IF NOT EXISTS`` with its keys and foreign keys."""

    table: str
    columns: tuple[ColumnDef, ...]
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()

    def sql(self, dialect: Dialect) -> str:
        """The CREATE TABLE statement (foreign keys the dialect adds later are left out)."""
        q = dialect.quote
        parts = [column.sql(dialect) for column in self.columns]
        if self.primary_key:
            parts.append(f"PRIMARY KEY ({', '.join(q(c) for c in self.primary_key)})")
        parts += [f"UNIQUE ({', '.join(q(c) for c in columns)})" for columns in self.unique]
        if not dialect.late_foreign_keys:
            parts += [fk.sql(dialect) for fk in self.foreign_keys]
        return f"CREATE TABLE IF NOT EXISTS {q(self.table)} (\n  " + ",\n  ".join(parts) + "\n)"

    def late_sql(self, dialect: Dialect) -> list[str]:
        """The statements to run once every table exists (foreign keys the dialect adds by ALTER TABLE)."""
        if not dialect.late_foreign_keys:
            return []
        return [
            dialect.add_constraint_sql(
                dialect.quote(self.table), foreign_key_name(self.table, fk.column), fk.sql(dialect)
            )
            for fk in self.foreign_keys
        ]


@dataclass(frozen=True, slots=True)
class CreateIndex:
    """``CREATE INDEX IF NOT EXISTS name ON table (column)``."""

    name: str
    table: str
    column: str

    def sql(self, dialect: Dialect) -> str:
        """The statement's text."""
        q = dialect.quote
        return f"CREATE INDEX IF NOT EXISTS {q(self.name)} ON {q(self.table)} ({q(self.column)})"


@dataclass(frozen=True, slots=True)
class DropTable:
    """``DROP TABLE table``."""

    table: str

    def sql(self, dialect: Dialect) -> str:
        """The statement's text."""
        return f"DROP TABLE {dialect.quote(self.table)}"


def render(statement: Select | Count, dialect: Dialect) -> tuple[str, list[Any]]:
    """A query's text and its bound values."""
    params: list[Any] = []
    return statement.sql(dialect, params), params
