"""The expression tree of query conditions and orderings, and the table of operators.

Attributes build these (``Person.age > 18``, ``desc(Person.age)``); queries hand them to
``nextorm.sql``. Nothing here knows the model: an attribute is anything with ``column``,
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

__all__ = ["ARITHMETIC", "OPERATORS", "Arith", "ColumnValue", "Expr", "OrderBy", "Value", "as_expr", "expression_for"]


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
        yield self.attr.entity

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        column = dialect.quote(self.attr.column)
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


class OrderBy:
    """One ORDER BY item."""

    __slots__ = ("attr", "descending")

    def __init__(self, attr: Any, descending: bool) -> None:
        self.attr = attr
        self.descending = descending

    def key(self) -> tuple[str, bool]:
        """The column and direction of a SELECT's ORDER BY."""
        return self.attr.column, self.descending
