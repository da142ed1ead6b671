"""``db.schema``: the tables, columns, indexes and foreign keys the mapping gives a database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .providers.dialect import Dialect
from .sql import CreateIndex, CreateTable

__all__ = ["Column", "ForeignKeyInfo", "Index", "Schema", "Table"]


@dataclass(eq=False)
class Column:
    """One column of a table as the mapping declares it."""

    table: Table = field(repr=False)
    name: str
    sql_type: str
    is_pk: bool = False
    is_pk_part: bool = False
    is_unique: bool = False
    is_not_null: bool = False

    def __repr__(self) -> str:
        return f"<Column {self.table.name}.{self.name} {self.sql_type}>"


@dataclass(eq=False)
class Index:
    """An index of a table: the primary key, a unique constraint or a plain index."""

    name: str | None
    table: Table = field(repr=False)
    columns: tuple[Column, ...]
    is_pk: bool = False
    is_unique: bool = False


@dataclass(eq=False)
class ForeignKeyInfo:
    """Columns of a table that refer to the primary key of another table."""

    name: str
    table: Table = field(repr=False)
    columns: tuple[Column, ...]
    parent_table: str
    parent_columns: tuple[str, ...]
    on_delete: str | None = None


class Table:
    """A table of the mapping: ``column_list`` in order, ``column_dict``/``columns`` by name,
    ``indexes`` by their tuple of columns, ``foreign_keys``, and ``get_create_command()``."""

    def __init__(self, statement: CreateTable, indexes: Iterable[CreateIndex], dialect: Dialect) -> None:
        self.name = statement.table
        self._statement = statement
        self._dialect = dialect
        self._index_statements = list(indexes)
        composite_pk = set(statement.primary_key)
        self.column_list: list[Column] = []
        for definition in statement.columns:
            is_pk = definition.primary_key or definition.type is None
            name = definition.name
            self.column_list.append(
                Column(
                    self,
                    name,
                    # an auto key's type, without the clauses that make it generated
                    definition.type if definition.type is not None else dialect.auto_pk_type.split()[0],
                    is_pk=is_pk or (len(composite_pk) == 1 and name in composite_pk),
                    is_pk_part=is_pk or name in composite_pk,
                    is_unique=definition.unique or is_pk,
                    is_not_null=definition.not_null or is_pk or name in composite_pk,
                )
            )
        self.column_dict: dict[str, Column] = {column.name: column for column in self.column_list}
        self.columns = self.column_dict
        self.indexes: dict[tuple[Column, ...], Index] = {}
        pk = tuple(c for c in self.column_list if c.is_pk_part)
        if pk:
            self.indexes[pk] = Index(None, self, pk, is_pk=True, is_unique=True)
        for column in self.column_list:
            if column.is_unique and not column.is_pk_part:
                self.indexes[(column,)] = Index(None, self, (column,), is_unique=True)
        for names in statement.unique:
            key = tuple(self.column_dict[name] for name in names)
            self.indexes[key] = Index(None, self, key, is_unique=True)
        for index in self._index_statements:
            key = tuple(self.column_dict[name] for name in _names(index.column))
            self.indexes.setdefault(key, Index(index.name, self, key))
        self.foreign_keys = [
            ForeignKeyInfo(
                fk.constraint_name(self.name),
                self,
                tuple(self.column_dict[name] for name in _names(fk.column)),
                fk.target_table,
                _names(fk.target_column),
                fk.on_delete,
            )
            for fk in statement.foreign_keys
        ]

    def __repr__(self) -> str:
        return f"<Table {self.name}>"

    def get_create_command(self) -> str:
        """The CREATE TABLE statement of this table."""
        return self._statement.sql(self._dialect)

    def create_commands(self) -> list[str]:
        """The CREATE TABLE statement and the CREATE INDEX statements of this table."""
        return [self.get_create_command(), *(index.sql(self._dialect) for index in self._index_statements)]


def _names(column: str | tuple[str, ...]) -> tuple[str, ...]:
    """One column name or several, as a tuple."""
    return (column,) if isinstance(column, str) else column


class Schema:
    """The tables of a mapped database by name (``db.schema.tables``)."""

    command_separator = ";\n\n"

    def __init__(self, tables: list[tuple[CreateTable, list[CreateIndex]]], dialect: Dialect) -> None:
        self._dialect = dialect
        self._statements = [statement for statement, _ in tables]
        self.tables: dict[str, Table] = {
            statement.table: Table(statement, indexes, dialect) for statement, indexes in tables
        }

    def __repr__(self) -> str:
        return f"<Schema {', '.join(self.tables)}>"

    def generate_create_script(self) -> str:
        """The statements that create every table, index and foreign key, as one script."""
        commands = [command for table in self.tables.values() for command in table.create_commands()]
        for statement in self._statements:
            commands += statement.late_sql(self._dialect)
        return self.command_separator.join(commands)
