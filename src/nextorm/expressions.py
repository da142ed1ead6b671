"""The expression tree of query conditions and orderings, and the table of operators.

Attributes build these (``Person.age > 18``, ``desc(Person.age)``); queries hand them to
``nextorm.sql``. Nothing here knows the model: an attribute is anything with ``column``,
``columns`` and ``width`` (its columns: several for a reference to a composite key),
``qualname``, ``entity``, ``py_type``, ``ctype`` and ``to_db``. Adding an operator is one row of
``OPERATORS`` (and a dialect spelling when its row is None).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._impl import EntityBase
from .exceptions import AttributeTypeError, QueryError

if TYPE_CHECKING:
    from .providers.dialect import Dialect

__all__ = [
    "ARITHMETIC",
    "OPERATORS",
    "Arith",
    "ColumnRef",
    "ColumnValue",
    "Expr",
    "OrderBy",
    "Path",
    "Value",
    "Var",
    "as_expr",
    "column_sql",
    "expression_for",
]


class Expr:
    """A boolean SQL condition; combine with ``&``, ``|`` and ``~``."""

    __slots__ = ()

    def __and__(self, other: Expr) -> Expr:
        return BoolOp("AND", (self, as_expr(other)))

    def __or__(self, other: Expr) -> Expr:
        return BoolOp("OR", (self, as_expr(other)))

    def __invert__(self) -> Expr:
        return Not(self)

    def __bool__(self) -> bool:
        raise QueryError(
            "A query condition has no truth value: combine conditions with & | ~, not and/or/not"
        )

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The SQL text of the condition, appending bound values to ``params``."""
        raise NotImplementedError

    def entities(self) -> Iterator[Any]:
        """The entities whose rows the condition is about."""
        return iter(())


def as_expr(value: Any) -> Expr:
    """``value`` when it is a condition; QueryError otherwise."""
    if not isinstance(value, Expr):
        raise QueryError(f"Expected a query condition, got {value!r}")
    return value


class BoolOp(Expr):
    __slots__ = ("items", "op")

    def __init__(self, op: str, items: tuple[Expr, ...]) -> None:
        self.op = op
        self.items = items

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return "(" + f" {self.op} ".join(item.sql(dialect, params) for item in self.items) + ")"

    def entities(self) -> Iterator[Any]:
        for item in self.items:
            yield from item.entities()


class Not(Expr):
    __slots__ = ("item",)

    def __init__(self, item: Expr) -> None:
        self.item = item

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return f"NOT {self.item.sql(dialect, params)}"

    def entities(self) -> Iterator[Any]:
        return self.item.entities()


class Compare(Expr):
    """``attr <op> value`` with the value converted by the attribute and bound."""

    __slots__ = ("attr", "op", "value")

    def __init__(self, attr: Any, op: str, value: Any) -> None:
        self.attr = attr
        self.op = op
        self.value = value

    def __repr__(self) -> str:
        return f"<{self.attr!r} {self.op} {self.value!r}>"

    def entities(self) -> Iterator[Any]:
        yield from root_entities(self.attr)

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        if self.attr.width > 1:
            return self._columns_sql(dialect, params)
        column = column_sql(self.attr, dialect)
        op, value = self.op, self.value
        if value is None:
            return f"{column} IS NULL" if op == "==" else f"{column} IS NOT NULL"
        if op == "in":
            return dialect.in_values_sql(column, [_bound(v) for v in value], params)
        spelling = OPERATORS[op]
        if spelling is None:
            return dialect.string_test(op, column, value, params)
        params.append(_bound(value))
        return f"{column} {spelling} {dialect.param}"


    def _columns_sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The comparison of an attribute stored in several columns (a reference to a composite key)."""
        attr = self.attr
        if type(attr) is ColumnRef:
            raise QueryError(
                f"Comparing {attr.qualname}, a reference to a composite key read through a path, "
                "is not supported: compare its key attributes"
            )
        columns = [dialect.column(c) for c in attr.columns]
        op, value = self.op, self.value
        if value is None:
            if op == "==":
                return "(" + " AND ".join(f"{c} IS NULL" for c in columns) + ")"
            return "(" + " OR ".join(f"{c} IS NOT NULL" for c in columns) + ")"
        if op == "in":
            rows = [_bound_columns(attr, v) for v in value]
            if not rows:
                return "0 = 1"
            one = f"({dialect.placeholders(len(columns))})"
            for row in rows:
                params.extend(row)
            return f"({', '.join(columns)}) IN (VALUES {', '.join([one] * len(rows))})"
        params.extend(_bound_columns(attr, value))
        if op == "==":
            return "(" + " AND ".join(f"{c} = {dialect.param}" for c in columns) + ")"
        return "(" + " OR ".join(f"{c} <> {dialect.param}" for c in columns) + ")"


#: every comparison an attribute supports: its SQL operator, or None where each dialect spells it
OPERATORS: dict[str, str | None] = {
    "==": "=",
    "!=": "<>",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "in": "IN",
    "startswith": None,
    "endswith": None,
    "contains": None,
}


def expression_for(attr: Any, op: str, value: Any) -> Expr:
    """Validate ``value`` for ``attr`` and build ``attr <op> value``."""
    if op not in OPERATORS:
        raise QueryError(f"Unknown operator {op!r}")
    if op == "in":
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise AttributeTypeError(f"{attr.qualname}.in_() takes a collection of values, got {value!r}")
        value = [_db_value(attr, v) for v in value]
    elif op in ("startswith", "endswith", "contains"):
        if attr.py_type is not str:
            raise QueryError(
                f"{attr.qualname}.{op}() needs a str attribute, {attr.qualname} is not one (value {value!r})"
            )
        if not isinstance(value, str):
            raise AttributeTypeError(
                f"{attr.qualname}.{op}() takes a str, got {type(value).__name__}: {value!r}"
            )
        attr.ctype.check_text(value)
    elif value is not None:
        if op not in ("==", "!=") and attr.width > 1:
            raise QueryError(
                f"{attr.qualname} refers to a composite key: it can be compared with == and != only, not {op}"
            )
        if op not in ("==", "!=") and isinstance(value, Expr):
            raise QueryError(f"Cannot compare {attr.qualname} with a condition")
        value = _db_value(attr, value)
    return Compare(attr, op, value)


def _db_value(attr: Any, value: Any) -> Any:
    value = attr.ctype.validate(value)
    if isinstance(value, EntityBase):
        return value  # a new object: its key is known once it is flushed, see _bound
    return value if attr.to_db is None else attr.to_db(value)


def _bound(value: Any) -> Any:
    """The value to bind; a new related object is flushed first to learn its key."""
    if isinstance(value, EntityBase):
        # every EntityBase is an Entity: it has _pk_raw_, and its _cache_ is a SessionCache
        if value._pk_raw_() is None:  # type: ignore[attr-defined]
            value._cache_.flush()  # type: ignore[attr-defined]
        return value._pk_raw_()  # type: ignore[attr-defined]
    return value


def _bound_columns(attr: Any, value: Any) -> tuple[Any, ...]:
    """The values to bind for the columns of ``attr``; a new related object is flushed first."""
    if isinstance(value, EntityBase):
        _bound(value)
        return attr.to_db(value)  # type: ignore[no-any-return]
    return value  # type: ignore[no-any-return]


class Value:
    """A SQL value computed from columns (``Person.age + 1``): what ``query.update()`` assigns.

    Combine with ``+ - * /`` and numbers; plain operands are bound parameters.
    """

    __slots__ = ()

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The SQL text of the value, appending bound values to ``params``."""
        raise NotImplementedError

    def attrs(self) -> Iterator[Any]:
        """The attributes whose columns the value reads."""
        return iter(())

    def __add__(self, other: Any) -> Arith:
        return Arith("+", self, other)

    def __radd__(self, other: Any) -> Arith:
        return Arith("+", other, self)

    def __sub__(self, other: Any) -> Arith:
        return Arith("-", self, other)

    def __rsub__(self, other: Any) -> Arith:
        return Arith("-", other, self)

    def __mul__(self, other: Any) -> Arith:
        return Arith("*", self, other)

    def __rmul__(self, other: Any) -> Arith:
        return Arith("*", other, self)

    def __truediv__(self, other: Any) -> Arith:
        return Arith("/", self, other)

    def __rtruediv__(self, other: Any) -> Arith:
        return Arith("/", other, self)


#: the arithmetic a Value supports
ARITHMETIC = ("+", "-", "*", "/")


class ColumnValue(Value):
    """The current value of an attribute's column."""

    __slots__ = ("attr",)

    def __init__(self, attr: Any) -> None:
        self.attr = attr

    def __repr__(self) -> str:
        return self.attr.qualname  # type: ignore[no-any-return]

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return dialect.quote(self.attr.column)

    def attrs(self) -> Iterator[Any]:
        yield self.attr


class Arith(Value):
    """``left <op> right`` of numbers and column values."""

    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: Any, right: Any) -> None:
        for operand in (left, right):
            if not isinstance(operand, Value) and (
                isinstance(operand, bool) or not isinstance(operand, (int, float, Decimal))
            ):
                raise QueryError(f"Cannot compute {left!r} {op} {right!r}: {operand!r} is not a number or column")
        self.op = op
        self.left = left
        self.right = right

    def __repr__(self) -> str:
        return f"({self.left!r} {self.op} {self.right!r})"

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        parts = []
        for operand in (self.left, self.right):
            if isinstance(operand, Value):
                parts.append(operand.sql(dialect, params))
            else:
                params.append(operand)
                parts.append(dialect.param)
        return f"({parts[0]} {self.op} {parts[1]})"

    def attrs(self) -> Iterator[Any]:
        for operand in (self.left, self.right):
            if isinstance(operand, Value):
                yield from operand.attrs()


# -- columns of other tables: paths through references and objects of nested queries --------------


class Var:
    """An object a query ranges over besides its own: a nested generator's or another ``for``'s.

    Each one is a table of its own in the statement (compared by identity).
    """

    __slots__ = ("entity",)

    def __init__(self, entity: Any) -> None:
        self.entity = entity

    def __repr__(self) -> str:
        return f"<{self.entity.__name__} object of a nested query>"


class Path:
    """The object a reference leads to from a source (``p.group``): a joined table.

    ``base`` is None for the query's own object, else a ``Var`` or another ``Path``; equal paths
    are one join.
    """

    __slots__ = ("attr", "base")

    def __init__(self, base: Var | Path | None, attr: Any) -> None:
        self.base = base
        self.attr = attr

    def __eq__(self, other: object) -> bool:
        return type(other) is Path and other.base == self.base and other.attr is self.attr

    def __hash__(self) -> int:
        return hash((self.base, id(self.attr)))

    def root(self) -> Var | None:
        """The source the path starts from (None for the query's own object)."""
        base = self.base
        while type(base) is Path:
            base = base.base
        return base

    def root_entity_name(self) -> str:
        """The name of the entity the path starts from."""
        first = self
        while type(first.base) is Path:
            first = first.base
        base = first.base
        return str((base.entity if base is not None else first.attr.entity).__name__)

    def names(self) -> str:
        """The dotted attribute names from the start of the path (``group.dept``)."""
        prefix = self.base.names() + "." if type(self.base) is Path else ""
        return prefix + self.attr.name


class ColumnRef:
    """An attribute read through a source (``p.group.name``); compares like the attribute itself."""

    __slots__ = ("attr", "column", "columns", "ctype", "py_type", "qualname", "source", "to_db", "width")

    def __init__(self, source: Var | Path | None, attr: Any) -> None:
        self.source = source
        self.attr = attr
        self.column = attr.column
        self.columns = attr.columns
        self.width = attr.width
        self.ctype = attr.ctype
        self.to_db = attr.to_db
        self.py_type = attr.py_type
        if type(source) is Path:
            self.qualname = f"{source.root_entity_name()}.{source.names()}.{attr.name}"
        else:
            self.qualname = attr.qualname

    def __repr__(self) -> str:
        return self.qualname

    @property
    def entity(self) -> Any:
        """The query's entity when the path starts at the query's object, else None."""
        source = self.source
        if source is None:
            return self.attr.entity
        if type(source) is Path and source.root() is None:
            first = source
            while type(first.base) is Path:
                first = first.base
            return first.attr.entity
        return None

    def __eq__(self, other: Any) -> Expr:  # type: ignore[override]
        return expression_for(self, "==", other)

    def __ne__(self, other: Any) -> Expr:  # type: ignore[override]
        return expression_for(self, "!=", other)

    def __lt__(self, other: Any) -> Expr:
        return expression_for(self, "<", other)

    def __le__(self, other: Any) -> Expr:
        return expression_for(self, "<=", other)

    def __gt__(self, other: Any) -> Expr:
        return expression_for(self, ">", other)

    def __ge__(self, other: Any) -> Expr:
        return expression_for(self, ">=", other)

    __hash__ = object.__hash__

    def in_(self, values: Any) -> Expr:
        """``ref IN (values)``."""
        return expression_for(self, "in", values)

    def not_in(self, values: Any) -> Expr:
        """``ref NOT IN (values)``."""
        return ~expression_for(self, "in", values)

    def is_(self, value: None) -> Expr:
        """``ref IS NULL``."""
        return expression_for(self, "==", None)

    def is_not(self, value: None) -> Expr:
        """``ref IS NOT NULL``."""
        return expression_for(self, "!=", None)

    def startswith(self, prefix: str) -> Expr:
        """The string value starts with ``prefix``."""
        return expression_for(self, "startswith", prefix)

    def endswith(self, suffix: str) -> Expr:
        """The string value ends with ``suffix``."""
        return expression_for(self, "endswith", suffix)

    def contains(self, part: str) -> Expr:
        """The string value contains ``part``."""
        return expression_for(self, "contains", part)

    def desc(self) -> OrderBy:
        """Descending order by this column."""
        return OrderBy(self, descending=True)

    def asc(self) -> OrderBy:
        """Ascending order by this column."""
        return OrderBy(self, descending=False)


def column_sql(attr: Any, dialect: Dialect) -> str:
    """The column an attribute (of the query's own table) or a ``ColumnRef`` reads."""
    if type(attr) is ColumnRef:
        return dialect.column_ref(attr)
    return dialect.column(attr.column)


def root_entities(attr: Any) -> Iterator[Any]:
    """The query entity an operand is about (nothing for objects of nested queries)."""
    entity = attr.entity
    if entity is not None:
        yield entity


class OrderBy:
    """One ORDER BY item."""

    __slots__ = ("attr", "descending")

    def __init__(self, attr: Any, descending: bool) -> None:
        self.attr = attr
        self.descending = descending

    def key(self) -> tuple[Any, bool]:
        """The column (a name, or a ``ColumnRef`` of another table) and direction of an ORDER BY."""
        attr = self.attr
        return (attr if type(attr) is ColumnRef else attr.column), self.descending

    def keys(self) -> tuple[tuple[Any, bool], ...]:
        """Every ORDER BY item of ``key()``: one per column of a reference to a composite key."""
        attr = self.attr
        if attr.width == 1:
            return (self.key(),)
        if type(attr) is ColumnRef:
            raise QueryError(f"Ordering by {attr.qualname}, a reference to a composite key through a path, is not supported")
        return tuple((column, self.descending) for column in attr.columns)
