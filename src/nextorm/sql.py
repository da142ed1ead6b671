"""Every statement nextorm sends, as a small model rendered to SQL text by a dialect.

The model, loading, the unit of work and queries build these statements; ``render`` spells them
with a ``nextorm.providers.dialect.Dialect``. Conditions are objects with a
``sql(dialect, params)`` method: the expression tree of ``nextorm.expressions`` and the
statement-level conditions below. Values are always bound parameters (appended to ``params`` in
the order of the text); identifiers are always quoted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from .exceptions import QueryError
from .expressions import ColumnRef, Expr, Path, Value, Var, column_sql, decimal_sql
from .providers.dialect import Dialect, NeedsScope

__all__ = [
    "BATCH_SAVEPOINT",
    "AggregateOf",
    "AllEqual",
    "Col",
    "ColumnDef",
    "Comparison",
    "Condition",
    "Count",
    "CreateIndex",
    "CreateTable",
    "Delete",
    "DeleteWhere",
    "DropTable",
    "Equals",
    "Exists",
    "ForeignKey",
    "InQuery",
    "InRows",
    "InSubquery",
    "InValues",
    "Insert",
    "Join",
    "Key",
    "KeyIsNull",
    "KeyMatch",
    "KeysEqual",
    "MemberOf",
    "Scope",
    "Select",
    "Subquery",
    "Update",
    "UpdateWhere",
    "complete_select",
    "key_columns",
    "reference_columns",
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
    return dialect.column(column) if isinstance(column, str) else column.sql(dialect)


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
class InRows:
    """``(c1, c2) IN (VALUES (?, ?), ...)``: the columns of a composite key among ``rows`` of values."""

    columns: tuple[Col | str, ...]
    rows: list[tuple[Any, ...]]

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        if not self.rows:
            return "0 = 1"
        one = f"({dialect.placeholders(len(self.columns))})"
        for row in self.rows:
            params.extend(row)
        columns = ", ".join(_column(c, dialect) for c in self.columns)
        return f"({columns}) IN (VALUES {', '.join([one] * len(self.rows))})"


@dataclass(frozen=True, slots=True)
class AllEqual:
    """``c1 = ? AND c2 = ?``: the columns of a composite key equal to ``values``."""

    columns: tuple[Col | str, ...]
    values: tuple[Any, ...]

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        params.extend(self.values)
        return "(" + " AND ".join(f"{_column(c, dialect)} = {dialect.param}" for c in self.columns) + ")"


@dataclass(frozen=True, slots=True)
class InSubquery:
    """``column IN (SELECT ...)`` (``(c1, c2) IN (SELECT ...)`` for a tuple of columns)."""

    column: Col | str | tuple[Col | str, ...]
    query: Select

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        if isinstance(self.column, tuple):
            columns = ", ".join(_column(c, dialect) for c in self.column)
            return f"({columns}) IN ({self.query.sql(dialect, params)})"
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
    """``JOIN table alias ON left = right [AND ...]`` (``more``: further pairs of a composite key)."""

    table: str
    alias: str
    left: Col
    right: Col
    more: tuple[tuple[Col, Col], ...] = ()

    def on_sql(self, dialect: Dialect) -> str:
        """The ON condition."""
        pairs = ((self.left, self.right), *self.more)
        return " AND ".join(f"{left.sql(dialect)} = {right.sql(dialect)}" for left, right in pairs)


@dataclass(frozen=True, slots=True)
class Select:
    """``SELECT columns FROM table [joins] [WHERE ...] [ORDER BY ...] [LIMIT ...] [FOR UPDATE]``.

    ``columns`` are column names (or qualified ``Col``); ``values`` are value expressions
    (``nextorm.expressions.Value``) selected instead of them, ``label`` names the first one (for a
    query around this one); ``count`` selects ``COUNT(*)`` and ``one`` selects the constant 1
    instead. ``order`` holds (item, descending) pairs, an item being a column name, a value or a
    1-based position in the select list.
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
    values: tuple[Any, ...] = ()
    label: str | None = None
    distinct: bool = False
    group_by: tuple[Any, ...] = ()
    having: Sequence[Condition] = ()
    #: other objects the statement ranges over (``Var``), each a table of its FROM (cross joined)
    sources: tuple[Any, ...] = ()
    #: the ON condition of each of the first sources, LEFT JOINed instead (None: ``ON 1 = 1``)
    joined_on: tuple[Any, ...] = ()

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The statement's text, appending its bound values to ``params``."""
        if isinstance(dialect, Scope):
            # nested in a statement that reads other tables: its own table gets an alias
            return self._text(cast(Dialect, dialect), params, dialect.nested(self.table))
        local: list[Any] = []
        try:
            text = self._text(dialect, local, None)
        except NeedsScope:
            # a condition reads a joined table or holds a nested query: render with aliases
            scope = Scope(dialect, self.table)
            local = []
            text = self._text(cast(Dialect, scope), local, scope)
        params.extend(local)
        return text

    def _text(self, dialect: Dialect, params: list[Any], scope: Scope | None) -> str:
        if self.sources:
            if scope is None:
                raise NeedsScope  # the other tables are named by aliases
            aliases = scope.declare(self.sources)
            # a path from a LEFT JOINed object is LEFT JOINed too (its row may be missing)
            scope.optional.update(self.sources[: len(self.joined_on)])
        if scope is not None:
            dialect = cast(Dialect, scope)
        # rendered before FROM (a joined table is added while its columns are spelled); the
        # parameters are kept in the order of the text
        what_params: list[Any] = []
        if self.count:
            what = "COUNT(*)"
        elif self.one:
            what = "1"
        elif self.values:
            texts = [value.sql(dialect, what_params) for value in self.values]
            if self.label is not None:
                texts[0] += f" AS {dialect.quote(self.label)}"
            what = ", ".join(texts)
        elif scope is not None:
            what = ", ".join(scope.column(c) if type(c) is str else _column(c, dialect) for c in self.columns)
        elif all(type(c) is str for c in self.columns):
            what = dialect.column_list(self.columns)  # type: ignore[arg-type]
        else:
            what = ", ".join(_column(c, dialect) for c in self.columns)
        if self.distinct:
            what = "DISTINCT " + what
        on_params: list[Any] = []
        on_texts = ["1 = 1" if on is None else on.sql(dialect, on_params) for on in self.joined_on]
        rest_params: list[Any] = []
        rest = ""
        if self.where:
            rest = " WHERE " + " AND ".join(c.sql(dialect, rest_params) for c in self.where)
        if self.group_by:
            rest += " GROUP BY " + ", ".join(value.sql(dialect, rest_params) for value in self.group_by)
        if self.having:
            rest += " HAVING " + " AND ".join(c.sql(dialect, rest_params) for c in self.having)
        if self.order:
            rest += " ORDER BY " + ", ".join(
                _order_item(item, dialect, rest_params) + (" DESC" if descending else "")
                for item, descending in self.order
            )
        params += what_params
        params += on_params
        params += rest_params
        sql = f"SELECT {what} FROM {dialect.quote(self.table)}"
        if scope is not None and scope.root != dialect.quote(self.table):
            sql += f" {scope.root}"
        elif self.alias is not None:
            sql += f" {self.alias}"
        for join in self.joins:
            sql += f" JOIN {dialect.quote(join.table)} {join.alias} ON {join.on_sql(dialect)}"
        if self.sources:
            for index, (source, alias) in enumerate(zip(self.sources, aliases)):
                table = f"{dialect.quote(source.entity._table_)} {alias}"
                if index < len(on_texts):
                    sql += f" LEFT JOIN {table} ON {on_texts[index]}"
                else:
                    sql += f" CROSS JOIN {table}"
        if scope is not None:
            sql += "".join(scope.levels[0])
            scope.done()
        sql += rest
        if self.limit is not None or self.offset:
            sql += dialect.limit_clause(self.limit, self.offset, params)
        if self.for_update:
            sql += dialect.for_update_clause(self.for_update)
        return sql


def _order_item(item: Any, dialect: Dialect, params: list[Any]) -> str:
    if type(item) is str:
        return dialect.column(item)
    if type(item) is int:
        return str(item)
    if type(item) is ColumnRef:
        return column_sql(item, dialect)
    return decimal_sql(item, str(item.sql(dialect, params)), dialect)


@dataclass(frozen=True, slots=True)
class Count:
    """``SELECT COUNT(*) FROM (query) AS q``: the rows of a limited query."""

    query: Select

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The statement's text, appending its bound values to ``params``."""
        return f"SELECT COUNT(*) FROM ({self.query.sql(dialect, params)}) AS q"


@dataclass(frozen=True, slots=True)
class AggregateOf:
    """``SELECT aggregate(q.label) FROM (query) AS q``: an aggregate of a grouped or limited query's
    single value, which the inner query names ``label``; ``aggregate`` spells it around a column."""

    query: Select
    aggregate: Any

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The statement's text, appending its bound values to ``params``."""
        inner = self.query.sql(dialect, params)
        outer: list[Any] = []
        text = self.aggregate.sql(dialect, outer)
        params.extend(outer)
        return f"SELECT {text} FROM ({inner}) AS q"


# -- statements that read other tables: joins through references, nested queries -----------


class Scope:
    """The dialect of a statement that reads other tables: it aliases joined and nested tables.

    The statement's own table keeps its name (columns are qualified by it); a reference path
    (``p.group.dept``) is a join named ``tN``, added to the FROM of the statement or nested query
    its path starts from; each object of a nested query (``Var``) is a table ``tN`` of that query.
    Everything else is spelled by the wrapped dialect.
    """

    def __init__(self, dialect: Dialect, root_table: str, parent: Scope | None = None) -> None:
        self.dialect = dialect
        self.root = dialect.quote(root_table)
        self.aliases: dict[Any, str] = {}
        #: the joins of the statement (level 0) and of each nested query being rendered
        self.levels: list[list[str]] = [[]]
        self.level_of: dict[Any, int] = {None: 0}
        self.count = 0
        self.parent = parent
        #: the sources whose row may be missing (LEFT JOINed): paths from them are LEFT JOINed
        self.optional: set[Any] = set()
        if parent is not None:  # a query nested as a whole (``x in q``): aliases stay unique
            self.count = parent.count
            self.root = self.fresh()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dialect, name)

    def nested(self, table: str) -> Scope:
        """The scope of a whole statement nested in this one, its table aliased."""
        return Scope(self.dialect, table, self)

    def done(self) -> None:
        """A nested statement is rendered: its aliases are taken in the enclosing one."""
        if self.parent is not None:
            self.parent.count = self.count

    def column(self, name: str) -> str:
        """A column of the statement's own table, qualified by the table's name."""
        return f"{self.root}.{self.dialect.quote(name)}"

    def column_ref(self, ref: ColumnRef) -> str:
        """A column read through a join or of a nested query's object."""
        return f"{self.alias(ref.source)}.{self.dialect.quote(ref.column)}"

    def column_refs(self, ref: ColumnRef) -> list[str]:
        """Every column of ``ref`` (a reference to a composite key), read as ``column_ref`` reads one."""
        alias = self.alias(ref.source)
        return [f"{alias}.{self.dialect.quote(name)}" for name in ref.column_names]

    def fresh(self) -> str:
        """A new table alias."""
        self.count += 1
        return f"t{self.count}"

    def alias(self, source: Var | Path | None) -> str:
        """The alias of a source, joining a reference path on first use."""
        if source is None:
            return self.root
        alias = self.aliases.get(source)
        if alias is not None:
            return alias
        if type(source) is not Path:
            raise QueryError(f"{source!r} is read outside the nested query that defines it")
        base_alias = self.alias(source.base)
        level = self.level_of[source.base]
        alias = self.fresh()
        attr = source.attr
        target = attr.py_type
        q = self.dialect.quote
        if attr.is_column:
            pairs = zip(target._pk_columns_, attr.columns)
            kind = "JOIN" if attr.is_required and source.base not in self.optional else "LEFT JOIN"
        else:  # the key-less side of a one-to-one: the partner holds the key
            pairs = zip(attr.reverse.columns, attr.entity._pk_columns_)
            kind = "LEFT JOIN"
        if kind == "LEFT JOIN":
            self.optional.add(source)
        # a reference to a composite key joins on every column of the key
        on = " AND ".join(f"{alias}.{q(left)} = {base_alias}.{q(right)}" for left, right in pairs)
        self.levels[level].append(f" {kind} {q(target._table_)} {alias} ON {on}")
        self.aliases[source] = alias
        self.level_of[source] = level
        return alias

    def source_column(self, source: Var, name: str) -> str:
        """A column of another object the statement ranges over, by the alias of its table."""
        return f"{self.alias(source)}.{self.dialect.quote(name)}"

    def declare(self, sources: tuple[Var, ...]) -> list[str]:
        """The other objects the statement itself ranges over: their aliases, in order."""
        aliases = []
        for source in sources:
            alias = self.aliases[source] = self.fresh()
            self.level_of[source] = 0
            aliases.append(alias)
        return aliases

    def enter(self, sources: tuple[Var, ...]) -> list[str]:
        """Start a nested query over ``sources``: their aliases, in order."""
        self.levels.append([])
        level = len(self.levels) - 1
        aliases = []
        for source in sources:
            alias = self.aliases[source] = self.fresh()
            self.level_of[source] = level
            aliases.append(alias)
        return aliases

    def leave(self) -> list[str]:
        """End the innermost nested query: the joins it needs."""
        return self.levels.pop()


def _operand(value: Any, dialect: Dialect, params: list[Any]) -> str:
    """A column, a nested query's value, or a bound value."""
    if type(value) is ColumnRef:
        return dialect.column_ref(value)
    if type(value) is Subquery:
        return f"({value.sql(dialect, params)})"
    if isinstance(value, Value):  # a value computed of the nested query's rows (an aggregate)
        return value.sql(dialect, params)
    params.append(value)
    return str(dialect.param)


class Subquery:
    """``SELECT what FROM sources WHERE ...``: a nested query over objects of other tables.

    ``value`` is what it selects (a ``ColumnRef``; None selects 1); ``aggregate`` names the SQL
    aggregate applied to it (``COUNT`` with no value counts rows).
    """

    __slots__ = ("aggregate", "distinct", "link", "sources", "value", "where")

    def __init__(
        self,
        sources: tuple[Var, ...],
        where: tuple[Any, ...],
        value: Any = None,
        aggregate: str | None = None,
    ) -> None:
        self.sources = sources
        self.where = where
        self.value = value
        self.aggregate = aggregate
        #: whether the aggregate reads distinct values (None: COUNT does, the others do not)
        self.distinct: bool | None = None
        #: the count of a many-to-many collection's members: its ``MemberOf``, read from the join
        #: table alone (each member is there once per owner), else None
        self.link: MemberOf | None = None

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The nested query's text (raises NeedsScope outside a ``Scope``)."""
        if not isinstance(dialect, Scope):
            raise NeedsScope
        if self.link is not None:
            attr, alias, q = self.link.attr, dialect.fresh(), dialect.dialect.quote
            pairs = zip(attr.owner_columns, self.link.owner.sql(dialect))
            where = " AND ".join(f"{alias}.{q(column)} = {owner}" for column, owner in pairs)
            return f"SELECT COUNT(*) FROM {q(attr.join_table)} {alias} WHERE {where}"
        aliases = dialect.enter(self.sources)
        what_params: list[Any] = []
        value, aggregate = self.value, self.aggregate
        if value is None:
            what = "COUNT(*)" if aggregate == "COUNT" else "1"
        else:
            what = _operand(value, cast(Dialect, dialect), what_params)
            if aggregate == "COUNT":
                what = f"COUNT({what})" if self.distinct is False else f"COUNT(DISTINCT {what})"
            elif aggregate is not None:
                if self.distinct:
                    what = f"DISTINCT {what}"
                what = f"COALESCE(SUM({what}), 0)" if aggregate == "SUM" else f"{aggregate}({what})"
        where_params: list[Any] = []
        where = " AND ".join(c.sql(dialect, where_params) for c in self.where)
        joins = dialect.leave()
        q = dialect.dialect.quote
        tables = " CROSS JOIN ".join(f"{q(v.entity._table_)} {a}" for v, a in zip(self.sources, aliases))
        params += what_params
        params += where_params
        return f"SELECT {what} FROM {tables}{''.join(joins)}" + (f" WHERE {where}" if where else "")


class Exists(Expr):
    """``EXISTS (nested query)``."""

    __slots__ = ("query",)

    def __init__(self, query: Subquery) -> None:
        self.query = query

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return f"EXISTS ({self.query.sql(dialect, params)})"


class Comparison(Expr):
    """``left <op> right`` between columns of several tables, nested queries' values and bound values."""

    __slots__ = ("left", "op", "right")

    #: the SQL operator of each comparison
    SPELLING = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

    def __init__(self, left: Any, op: str, right: Any) -> None:
        self.left = left
        self.op = op
        self.right = right

    def __repr__(self) -> str:
        return f"<{self.left!r} {self.op} {self.right!r}>"

    def entities(self) -> Any:
        for side in (self.left, self.right):
            if type(side) is ColumnRef and side.entity is not None:
                yield side.entity

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        left = _operand(self.left, dialect, params)
        return f"{left} {self.SPELLING[self.op]} {_operand(self.right, dialect, params)}"


class InQuery(Expr):
    """``EXISTS (SELECT 1 FROM table WHERE key = column AND ...)``: membership in a query's objects.

    As ``EXISTS``, not ``IN``: a NULL reference is not in the query, so ``not in`` selects it.
    """

    __slots__ = ("column", "query")

    def __init__(self, column: ColumnRef | tuple[ColumnRef, ...], query: Select) -> None:
        self.column = column
        self.query = query

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        if not isinstance(dialect, Scope):
            raise NeedsScope
        query = self.query
        if type(self.column) is tuple:  # a tuple among a query's rows of as many values
            pairs = tuple(_ValueIs(v, dialect.column_ref(c)) for v, c in zip(query.values, self.column))
            found = Select(query.table, where=(*pairs, *query.where), one=True, sources=query.sources)
            return f"EXISTS ({found.sql(cast(Dialect, dialect), params)})"
        outer = dialect.column_ref(self.column)
        if query.limit is not None or query.offset:
            # the rows the limit keeps are a table of their own: the value among them
            inner = query.sql(cast(Dialect, dialect), params)
            alias = dialect.fresh()
            name = dialect.quote(query.label if query.values else query.columns[0])  # type: ignore[arg-type]
            return f"EXISTS (SELECT 1 FROM ({inner}) {alias} WHERE {alias}.{name} = {outer})"
        # a query of objects by its key column; a query of one value by that value
        key: Any = _ValueIs(query.values[0], outer) if query.values else _KeyIs(query.columns[0], outer)  # type: ignore[arg-type]
        found = Select(query.table, where=(key, *query.where), one=True)
        return f"EXISTS ({found.sql(cast(Dialect, dialect), params)})"


@dataclass(frozen=True, slots=True)
class _KeyIs:
    """``key = <a column of the enclosing statement>``."""

    key: str
    outer: str

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return f"{dialect.column(self.key)} = {self.outer}"


@dataclass(frozen=True, slots=True)
class _ValueIs:
    """``value = <a column of the enclosing statement>``."""

    value: Any
    outer: str

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return f"{self.value.sql(dialect, params)} = {self.outer}"


def key_columns(entity: Any) -> tuple[str, ...]:
    """The primary-key columns of an entity."""
    return tuple(entity._pk_columns_)


def reference_columns(attr: Any) -> tuple[str, ...]:
    """The columns of a reference attribute (several for a reference to a composite key)."""
    return tuple(attr.columns)


class Key:
    """The key columns of an object a query reads: ``columns`` of ``source``'s table."""

    __slots__ = ("columns", "source")

    def __init__(self, source: Var | Path | None, columns: tuple[str, ...]) -> None:
        self.source = source
        self.columns = columns

    def sql(self, dialect: Dialect) -> list[str]:
        """Each column, qualified by its table's alias (raises NeedsScope outside a ``Scope``)."""
        if not isinstance(dialect, Scope):
            raise NeedsScope
        alias = dialect.alias(self.source)
        return [f"{alias}.{dialect.dialect.quote(c)}" for c in self.columns]


class KeysEqual(Expr):
    """``left = right`` of two objects' keys, column by column (``negate``: not equal)."""

    __slots__ = ("left", "negate", "right")

    def __init__(self, left: Key, right: Key, negate: bool = False) -> None:
        self.left = left
        self.right = right
        self.negate = negate

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        pairs = zip(self.left.sql(dialect), self.right.sql(dialect))
        text = " AND ".join(f"{a} = {b}" for a, b in pairs)
        return f"NOT ({text})" if self.negate else f"({text})"


class KeyIsNull(Expr):
    """The key columns of an object are NULL (no object: a left join found no row)."""

    __slots__ = ("key", "negate")

    def __init__(self, key: Key, negate: bool = False) -> None:
        self.key = key
        self.negate = negate

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        columns = self.key.sql(dialect)
        if self.negate:
            return "(" + " OR ".join(f"{c} IS NOT NULL" for c in columns) + ")"
        return "(" + " AND ".join(f"{c} IS NULL" for c in columns) + ")"


class MemberOf(Expr):
    """``EXISTS (SELECT 1 FROM join_table WHERE owner = ... AND member = ...)``: a many-to-many collection."""

    __slots__ = ("attr", "member", "owner")

    def __init__(self, member: Key, attr: Any, owner: Key) -> None:
        self.member = member
        self.attr = attr
        self.owner = owner

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        if not isinstance(dialect, Scope):
            raise NeedsScope
        attr = self.attr
        alias = dialect.fresh()
        q = dialect.dialect.quote
        pairs = [
            *zip(attr.owner_columns, self.owner.sql(dialect)),
            *zip(attr.target_columns, self.member.sql(dialect)),
        ]
        where = " AND ".join(f"{alias}.{q(column)} = {other}" for column, other in pairs)
        return f"EXISTS (SELECT 1 FROM {q(attr.join_table)} {alias} WHERE {where})"


# -- changes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Insert:
    """``INSERT INTO table (columns) VALUES (...)``; values are bound per row by the caller.

    ``ignore_conflicts`` skips a row that clashes with a unique key; ``returning`` names the
    column (or columns) of each new row the statement returns; ``rows`` is the number of rows one statement
    inserts (their values bound one row after the other).
    """

    table: str
    columns: tuple[str, ...]
    ignore_conflicts: bool = False
    returning: str | tuple[str, ...] = ()
    rows: int = 1

    def sql(self, dialect: Dialect) -> str:
        """The statement's text."""
        q = dialect.quote
        if self.columns:
            row = f"({dialect.placeholders(len(self.columns))})"
            sql = (
                f"INSERT INTO {q(self.table)} ({', '.join(q(c) for c in self.columns)}) "
                f"VALUES {', '.join([row] * self.rows)}"
            )
        else:
            sql = f"INSERT INTO {q(self.table)} DEFAULT VALUES"  # a row of defaults only (a generated key)
        if self.ignore_conflicts:
            sql += dialect.ignore_conflict_clause()
        if isinstance(self.returning, str):
            sql += dialect.returning_clause(self.returning)
        elif self.returning:
            sql += dialect.returning_clause(*self.returning)
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
class UpdateRows:
    """``UPDATE table SET column = rows.c0, ... FROM (VALUES ...) AS rows WHERE key = rows.c1 ...``:
    ``Update`` of ``rows`` rows in one statement, each row's values bound as ``Update`` binds them
    (the SET values, then the key, then the checked values).

    VALUES starts with a row of NULLs of the table's column types, which types every column of
    VALUES as its table column (a bound string is read as the column's type, as in ``Update``)
    and matches no row: the statement's row count is the number of rows whose key and checked
    values matched.
    """

    table: str
    columns: tuple[str, ...]
    where: KeyMatch
    rows: int

    def sql(self, dialect: Dialect) -> str:
        """The statement's text."""
        q = dialect.quote
        table = q(self.table)
        bound = (*self.columns, *self.where.columns, *(c for c, is_null in self.where.checks if not is_null))
        alias = q("nextorm_rows")
        names = [f"c{i}" for i in range(len(bound))]
        types = ", ".join(dialect.column_typed_null(self.table, c) for c in bound)
        row = f"({dialect.placeholders(len(bound))})"
        sets = ", ".join(f"{q(c)} = {alias}.{n}" for c, n in zip(self.columns, names))
        conditions = [
            f"{table}.{q(c)} = {alias}.{n}" for c, n in zip(self.where.columns, names[len(self.columns) :])
        ]
        checked = iter(names[len(self.columns) + len(self.where.columns) :])
        for column, is_null in self.where.checks:
            match = "IS NULL" if is_null else f"= {alias}.{next(checked)}"
            conditions.append(f"{table}.{q(column)} {match}")
        return (
            f"UPDATE {table} SET {sets} FROM (VALUES ({types}), {', '.join([row] * self.rows)}) "
            f"AS {alias} ({', '.join(names)}) WHERE {' AND '.join(conditions)}"
        )


@dataclass(frozen=True, slots=True)
class UpdateWhere:
    """``UPDATE table SET column = value, ... WHERE ...``: one statement for every matching row.

    A value is a bound parameter, or an expression with ``sql(dialect, params)`` (``age + 1``).
    """

    table: str
    values: tuple[tuple[str, Any], ...]
    where: Sequence[Condition] = ()
    #: the table's primary key columns: conditions reading other tables pick the rows by key
    key: tuple[str, ...] = ()

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The statement's text, appending its bound values to ``params``."""
        q = dialect.quote
        sets = []
        for column, value in self.values:
            if hasattr(value, "sql"):
                sets.append(f"{q(column)} = {value.sql(dialect, params)}")
            else:
                params.append(value)
                sets.append(f"{q(column)} = {dialect.param}")
        sql = f"UPDATE {q(self.table)} SET {', '.join(sets)}"
        if self.where:
            sql += " WHERE " + _rows_where(self.table, self.where, self.key, dialect, params)
        return sql


@dataclass(frozen=True, slots=True)
class Delete:
    """``DELETE FROM table WHERE ...``."""

    table: str
    where: KeyMatch

    def sql(self, dialect: Dialect) -> str:
        """The statement's text."""
        return f"DELETE FROM {dialect.quote(self.table)} WHERE {self.where.sql(dialect, [])}"


@dataclass(frozen=True, slots=True)
class DeleteWhere:
    """``DELETE FROM table WHERE ...``: every row matching the conditions, in one statement."""

    table: str
    where: Sequence[Condition] = ()
    #: the table's primary key columns: conditions reading other tables pick the rows by key
    key: tuple[str, ...] = ()

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The statement's text, appending its bound values to ``params``."""
        sql = f"DELETE FROM {dialect.quote(self.table)}"
        if self.where:
            sql += " WHERE " + _rows_where(self.table, self.where, self.key, dialect, params)
        return sql


def _rows_where(
    table: str, where: Sequence[Condition], key: tuple[str, ...], dialect: Dialect, params: list[Any]
) -> str:
    """The WHERE of a set-based UPDATE/DELETE of ``table``.

    Conditions on the table's own columns are used as they are. A condition that reads another
    table (a reference path such as ``g.teacher.name``) or holds a nested query needs table
    aliases, which UPDATE and DELETE cannot declare portably: the rows are then picked by key,
    ``key IN (SELECT key FROM table JOIN ... WHERE ...)``.
    """
    local: list[Any] = []
    try:
        text = " AND ".join(c.sql(dialect, local) for c in where)
    except NeedsScope:
        if not key:
            raise
        local = []
        rows = Select(table, columns=key, where=where)
        text = InSubquery(key[0] if len(key) == 1 else key, rows).sql(dialect, local)
    params.extend(local)
    return text


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


def foreign_key_name(table: str, column: str | tuple[str, ...]) -> str:
    """The name of the foreign-key constraint on ``table.column`` (migrations find it by this name);
    a constraint over several columns is named after them all."""
    return f"fk_{table}__{column if isinstance(column, str) else '__'.join(column)}"


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """``column`` of a table refers to ``target_table(target_column)``, checked at commit; the two
    are tuples of the same length for a reference to a composite key."""

    column: str | tuple[str, ...]
    target_table: str
    target_column: str | tuple[str, ...]
    #: the constraint's name given by the declaration (``fk_name=``), else None
    name: str | None = None
    #: what the database does to the row when the row it refers to is deleted (``CASCADE``,
    #: ``SET NULL``), else None; see ``reference_on_delete``
    on_delete: str | None = None

    def constraint_name(self, table: str) -> str:
        """The constraint's name: the declared one, else ``foreign_key_name(table, column)``."""
        return self.name if self.name is not None else foreign_key_name(table, self.column)

    def sql(self, dialect: Dialect) -> str:
        """The table constraint (``CONSTRAINT name`` first where the declaration names it)."""
        q = dialect.quote
        own = (self.column,) if isinstance(self.column, str) else self.column
        target = (self.target_column,) if isinstance(self.target_column, str) else self.target_column
        named = (
            f"CONSTRAINT {q(self.name)} " if self.name is not None and not dialect.late_foreign_keys else ""
        )
        action = f" ON DELETE {self.on_delete}" if self.on_delete is not None else ""
        return named + (
            f"FOREIGN KEY ({', '.join(map(q, own))}) REFERENCES {q(self.target_table)} "
            f"({', '.join(map(q, target))}){action} DEFERRABLE INITIALLY DEFERRED"
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
                dialect.quote(self.table), fk.constraint_name(self.table), fk.sql(dialect)
            )
            for fk in self.foreign_keys
        ]


@dataclass(frozen=True, slots=True)
class CreateIndex:
    """``CREATE INDEX IF NOT EXISTS name ON table (column)`` (a tuple of columns for a composite index)."""

    name: str
    table: str
    column: str | tuple[str, ...]

    def sql(self, dialect: Dialect) -> str:
        """The statement's text."""
        q = dialect.quote
        columns = (self.column,) if isinstance(self.column, str) else self.column
        return f"CREATE INDEX IF NOT EXISTS {q(self.name)} ON {q(self.table)} ({', '.join(map(q, columns))})"


@dataclass(frozen=True, slots=True)
class DropTable:
    """``DROP TABLE table``."""

    table: str

    def sql(self, dialect: Dialect) -> str:
        """The statement's text."""
        return f"DROP TABLE {dialect.quote(self.table)}"


#: the first word of a complete query; ``db.select("name from Person")`` gets ``SELECT`` put in front
_QUERY_START = re.compile(r"\s*(\(|(SELECT|WITH|VALUES|TABLE|SHOW|EXPLAIN|PRAGMA)\b)", re.IGNORECASE)


def complete_select(sql: str) -> str:
    """Raw query text, with ``SELECT`` put in front when it was left out (Pony's shorthand)."""
    if not isinstance(sql, str):
        raise TypeError(f"Raw SQL must be a str, got {sql!r}")
    return sql if _QUERY_START.match(sql) else "SELECT " + sql


def render(
    statement: Select | Count | AggregateOf | DeleteWhere | UpdateWhere, dialect: Dialect
) -> tuple[str, list[Any]]:
    """A query's text and its bound values."""
    params: list[Any] = []
    return statement.sql(dialect, params), params
