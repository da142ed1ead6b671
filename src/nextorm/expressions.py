"""The expression tree of query conditions and orderings, and the table of operators.

Attributes build these (``Person.age > 18``, ``desc(Person.age)``); queries hand them to
``nextorm.sql``. Nothing here knows the model: an attribute is anything with ``column``,
``column_names`` and ``width`` (its columns: several for a reference to a composite key),
``qualname``, ``entity``, ``py_type``, ``ctype`` and ``to_db``. Adding an operator is one row of
``OPERATORS`` (and a dialect spelling when its row is None).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from ._impl import EntityBase
from .exceptions import (
    AttributeTypeError,
    IncomparableTypesError,
    QueryError,
    TranslationError,
    UnknownAttributeError,
    noted,
)
from .types import COLUMN_TYPES, Json

if TYPE_CHECKING:
    from .providers.dialect import Dialect

_E = TypeVar("_E", bound=BaseException)

__all__ = [
    "FUNCTIONS",
    "OPERATORS",
    "Aggregate",
    "ArrayContains",
    "ArrayItem",
    "ArrayLength",
    "ArraySlice",
    "Case",
    "Column",
    "ColumnRef",
    "ConditionValue",
    "Expr",
    "Func",
    "JsonContains",
    "JsonLength",
    "JsonPath",
    "JsonScalar",
    "JsonTruth",
    "Label",
    "Operand",
    "OrderBy",
    "Param",
    "Path",
    "RawSQL",
    "RowCompare",
    "RowValue",
    "StringItem",
    "StringSlice",
    "StringTest",
    "TableColumn",
    "Value",
    "ValueCompare",
    "Var",
    "as_expr",
    "case",
    "check_entities",
    "coalesce",
    "column_sql",
    "compare_of",
    "concat",
    "desc",
    "expression_for",
    "raw_sql",
    "value_of",
]


class Expr:
    """A boolean SQL condition; combine with ``&``, ``|`` and ``~``."""

    __slots__ = ()

    #: whether a raw SQL fragment is part of it (its query then names the table as Pony does)
    raw = False

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

    def is_aggregate(self) -> bool:
        """Whether the condition compares aggregates (it belongs in HAVING)."""
        return False


def as_expr(value: Any) -> Expr:
    """``value`` when it is a condition (or a raw SQL fragment); QueryError otherwise."""
    if isinstance(value, RawSQL):
        return value.as_condition()
    if not isinstance(value, Expr):
        raise QueryError(f"Expected a query condition, got {value!r}")
    return value


class BoolOp(Expr):
    __slots__ = ("items", "op", "raw")

    def __init__(self, op: str, items: tuple[Expr, ...]) -> None:
        self.op = op
        self.items = items
        self.raw = any(item.raw for item in items)

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return "(" + f" {self.op} ".join(item.sql(dialect, params) for item in self.items) + ")"

    def entities(self) -> Iterator[Any]:
        for item in self.items:
            yield from item.entities()

    def is_aggregate(self) -> bool:
        return any(item.is_aggregate() for item in self.items)


class Truthy(BoolOp):
    """``value`` tested as Python tests it: not NULL and not ``empty`` (0, ``''``); its negation
    reads ``value IS NULL OR value = empty``, the same rows as ``NOT (...)`` spelled directly.

    A column of the query's own rows that is never NULL (a ``Required`` attribute of the root
    entity) is compared with ``empty`` alone.
    """

    __slots__ = ("falsy",)

    def __init__(self, value: Any, empty: Any) -> None:
        if (
            type(value) is ColumnRef
            and value.source is None
            and value.owner is None
            and _never_null(value.attr)
        ):
            super().__init__("AND", (value != empty,))
            self.falsy: Expr = value == empty
            return
        super().__init__("AND", (value.is_not(None), value != empty))
        self.falsy = BoolOp("OR", (value.is_(None), value == empty))

    def __invert__(self) -> Expr:
        return self.falsy


class Not(Expr):
    __slots__ = ("item", "raw")

    def __init__(self, item: Expr) -> None:
        self.item = item
        self.raw = item.raw

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return f"NOT {self.item.sql(dialect, params)}"

    def entities(self) -> Iterator[Any]:
        return self.item.entities()

    def is_aggregate(self) -> bool:
        return self.item.is_aggregate()


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

    def attrs(self) -> Iterator[Any]:
        yield self.attr

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
        # read through a path (``g.course == c``), column by column of the joined row
        columns = (
            dialect.column_refs(attr)
            if type(attr) is ColumnRef
            else [dialect.column(c) for c in attr.column_names]
        )
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


def compare_of(attr: Any, op: str, value: Any) -> Compare:
    """``Compare(attr, op, value)`` without calling the class, which reaches ``__init__`` through C:
    the comparisons every query makes are made here."""
    expr: Compare = _new_expr(Compare)
    expr.attr = attr
    expr.op = op
    expr.value = value
    return expr


_new_expr = object.__new__


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
    if isinstance(value, Operand):
        if op not in ("in", "startswith", "endswith", "contains"):
            return compare(op, Column(attr), value)
        if op in ("startswith", "endswith"):
            return StringTest(op, Column(attr), value)  # a prefix the query computes (raw_sql('UPPER($y)'))
    if op == "==" or op == "!=":
        if value is not None:
            value = _db_value(attr, _as_compared(attr, value))
    elif op == "in":
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise AttributeTypeError(f"{attr.qualname}.in_() takes a collection of values, got {value!r}")
        value = [_db_value(attr, _as_compared(attr, v)) for v in value]
    elif op in ("startswith", "endswith", "contains"):
        if attr.py_type is not str:
            raise QueryError(
                f"{attr.qualname}.{op}() needs a str attribute, {attr.qualname} is not one (value {value!r})"
            )
        if not isinstance(value, str):
            raise _string_test_error(attr.qualname, op, value)
        attr.ctype.check_text(value)
    elif value is None:
        error = AttributeTypeError(
            f"{attr.qualname} {op} None: None is compared with == and != only (IS NULL)"
        )
        error.attr, error.value = attr, None  # type: ignore[attr-defined]
        raise error
    else:
        if attr.width > 1:
            raise QueryError(
                f"{attr.qualname} refers to a composite key: it can be compared with == and != only, not {op}"
            )
        if isinstance(value, Expr):
            raise QueryError(f"Cannot compare {attr.qualname} with a condition")
        value = _db_value(attr, _as_compared(attr, value))
    return compare_of(attr, op, value)


def _as_compared(attr: Any, value: Any) -> Any:
    """A date compared with a datetime attribute is its midnight; any other value is itself."""
    if attr.py_type is datetime and type(value) is date:
        return datetime.combine(value, time())
    return value


def _db_value(attr: Any, value: Any) -> Any:
    if type(value) is float and attr.py_type is int and math.isfinite(value):
        return value  # an int column compared with a float: compared as numbers (x > 102.5)
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


class Operand:
    """What values and entity attributes share: arithmetic and the functions of the table below."""

    __slots__ = ()

    def _value_(self) -> Value:
        raise NotImplementedError

    def __add__(self, other: Any) -> Value:
        return arithmetic("+", self, other)

    def __radd__(self, other: Any) -> Value:
        return arithmetic("+", other, self)

    def __sub__(self, other: Any) -> Value:
        return arithmetic("-", self, other)

    def __rsub__(self, other: Any) -> Value:
        return arithmetic("-", other, self)

    def __mul__(self, other: Any) -> Value:
        return arithmetic("*", self, other)

    def __rmul__(self, other: Any) -> Value:
        return arithmetic("*", other, self)

    def __truediv__(self, other: Any) -> Value:
        return arithmetic("/", self, other)

    def __rtruediv__(self, other: Any) -> Value:
        return arithmetic("/", other, self)

    def __floordiv__(self, other: Any) -> Value:
        return arithmetic("//", self, other)

    def __rfloordiv__(self, other: Any) -> Value:
        return arithmetic("//", other, self)

    def __mod__(self, other: Any) -> Value:
        return arithmetic("%", self, other)

    def __rmod__(self, other: Any) -> Value:
        return arithmetic("%", other, self)

    def __pow__(self, other: Any) -> Value:
        return arithmetic("**", self, other)

    def __rpow__(self, other: Any) -> Value:
        return arithmetic("**", other, self)

    def __abs__(self) -> Value:
        return function("abs", self)

    def lower(self) -> Value:
        """The string in lower case."""
        return function("lower", self)

    def upper(self) -> Value:
        """The string in upper case."""
        return function("upper", self)

    def strip(self, chars: Any = None) -> Value:
        """The string without leading and trailing whitespace (or ``chars``)."""
        return (
            function("strip", self)
            if chars is None
            else function("strip_chars", self, self._chars(chars, "strip"))
        )

    def lstrip(self, chars: Any = None) -> Value:
        """The string without leading whitespace (or ``chars``)."""
        return (
            function("lstrip", self)
            if chars is None
            else function("lstrip_chars", self, self._chars(chars, "lstrip"))
        )

    def rstrip(self, chars: Any = None) -> Value:
        """The string without trailing whitespace (or ``chars``)."""
        return (
            function("rstrip", self)
            if chars is None
            else function("rstrip_chars", self, self._chars(chars, "rstrip"))
        )

    def _chars(self, chars: Any, method: str) -> Any:
        """The ``chars`` argument of ``strip()`` and its kin: a str, or a str value the query computes."""
        if isinstance(chars, str) or (isinstance(chars, Operand) and value_of(chars).py_type is str):
            return chars
        written = f"{self._value_()!r}.{method}({chars!r})"
        kind = _type_name(value_of(chars).py_type) if isinstance(chars, Operand) else type(chars).__name__
        raise written_as(
            QueryError(f"'chars' argument must be of 'str' type in {written}, got: {kind!r}"), written
        )

    def length(self) -> Value:
        """The number of characters of the string (``len()`` in a generator query)."""
        return function("len", self)

    def substring(self, start: Any, stop: Any = None) -> Value:
        """``value[start:stop]`` of a string, with Python's bounds: negative from the end, None for
        an end; each an int or an int value the query computes."""
        value = self._value_()
        what = f"A slice bound of {value!r} in a query"
        start = None if start is None else _index_value(start, what)
        stop = None if stop is None else _index_value(stop, what)
        if all(bound is None or (type(bound) is int and bound >= 0) for bound in (start, stop)):
            first = (start or 0) + 1
            if stop is None:
                return function("substr", value, first)
            return function("substr_len", value, first, max(stop - (start or 0), 0))
        _check_text(value, "slice")
        return StringSlice(value, start, stop)

    def __getitem__(self, key: Any) -> Value:
        if isinstance(key, slice):
            written = f"{self._value_()!r}[{_slice_text(key)}]"
            if key.step not in (None, 1):
                raise written_as(QueryError(f"Step is not supported in {written}"), written)
            for name, bound in (("start", key.start), ("stop", key.stop)):
                wrong = None if bound is None else _non_index_type(bound)
                if wrong is not None:
                    raise written_as(
                        QueryError(
                            f"Invalid type of {name} index (expected 'int', got {wrong!r}) in string slice {written}"
                        ),
                        written,
                    )
            return self.substring(key.start, key.stop)
        wrong = _non_index_type(key)
        if wrong is not None:
            written = f"{self._value_()!r}[{key!r}]"
            raise written_as(
                QueryError(f"String indices must be integers. Got {wrong!r} in expression {written}"), written
            )
        index = _index_value(key, f"An index into {self._value_()!r} in a query")
        if type(index) is int and index >= 0:
            return self.substring(index, index + 1)
        value = self._value_()
        _check_text(value, "index")
        return StringItem(value, index)

    @property
    def year(self) -> Value:
        """The year of a date or datetime."""
        return function("year", self)

    @property
    def month(self) -> Value:
        """The month of a date or datetime."""
        return function("month", self)

    @property
    def day(self) -> Value:
        """The day of the month of a date or datetime."""
        return function("day", self)

    @property
    def hour(self) -> Value:
        """The hour of a datetime or time."""
        return function("hour", self)

    @property
    def minute(self) -> Value:
        """The minute of a datetime or time."""
        return function("minute", self)

    @property
    def second(self) -> Value:
        """The second of a datetime or time."""
        return function("second", self)

    def date(self) -> Value:
        """The date of a datetime."""
        return function("date", self)


def _bound_columns(attr: Any, value: Any) -> tuple[Any, ...]:
    """The values to bind for the columns of ``attr``; a new related object is flushed first."""
    if isinstance(value, EntityBase):
        _bound(value)
        return attr.to_db(value)  # type: ignore[no-any-return]
    return value  # type: ignore[no-any-return]


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
        base: Any = self.base
        while type(base) is Path:
            base = base.base
        return base

    def root_entity_name(self) -> str:
        """The name of the entity the path starts from."""
        first = self
        while type(first.base) is Path:
            first = first.base
        base: Any = first.base
        return str((base.entity if base is not None else first.attr.entity).__name__)

    def names(self) -> str:
        """The dotted attribute names from the start of the path (``group.dept``)."""
        prefix = self.base.names() + "." if type(self.base) is Path else ""
        return prefix + self.attr.name


class ColumnOperand(Operand):
    """What a column read in a query offers, declared attribute or path alike: ordering
    comparisons, ``in_``, ``is_``, the string tests and ``desc``/``asc`` (each subclass has its own
    ``==``/``!=`` and a ``qualname`` naming it)."""

    __slots__ = ()

    qualname: str

    def __lt__(self, other: Any) -> Expr:
        return expression_for(self, "<", other)

    def __le__(self, other: Any) -> Expr:
        return expression_for(self, "<=", other)

    def __gt__(self, other: Any) -> Expr:
        return expression_for(self, ">", other)

    def __ge__(self, other: Any) -> Expr:
        return expression_for(self, ">=", other)

    def in_(self, values: Any) -> Expr:
        """``column IN (values)``."""
        return expression_for(self, "in", values)

    def not_in(self, values: Any) -> Expr:
        """``column NOT IN (values)``."""
        return ~expression_for(self, "in", values)

    def is_(self, value: Any) -> Expr:
        """``column IS NULL`` (only None is accepted)."""
        if value is not None:
            raise QueryError(f"{self.qualname}.is_() accepts only None, got {value!r}")
        return expression_for(self, "==", None)

    def is_not(self, value: Any) -> Expr:
        """``column IS NOT NULL`` (only None is accepted)."""
        if value is not None:
            raise QueryError(f"{self.qualname}.is_not() accepts only None, got {value!r}")
        return expression_for(self, "!=", None)

    def startswith(self, prefix: str) -> Expr:
        """The string value starts with ``prefix`` (case-sensitive)."""
        return expression_for(self, "startswith", prefix)

    def endswith(self, suffix: str) -> Expr:
        """The string value ends with ``suffix`` (case-sensitive)."""
        return expression_for(self, "endswith", suffix)

    def contains(self, part: str) -> Expr:
        """The string value contains ``part`` (case-sensitive)."""
        return expression_for(self, "contains", part)

    def desc(self) -> OrderBy:
        """Descending order by this column."""
        return OrderBy(self, descending=True)

    def asc(self) -> OrderBy:
        """Ascending order by this column."""
        return OrderBy(self, descending=False)


class ColumnRef(ColumnOperand):
    """An attribute read through a source (``p.group.name``); compares like the attribute itself."""

    __slots__ = (
        "attr",
        "column",
        "column_names",
        "ctype",
        "owner",
        "py_type",
        "qualname",
        "source",
        "to_db",
        "width",
    )

    def __init__(self, source: Var | Path | None, attr: Any) -> None:
        self.source = source
        self.attr = attr
        #: the entity whose row holds the column when that is not ``attr``'s (a referenced key read
        #: as the reference's own column: ``s.group.id`` is a column of Student typed as Group.id)
        self.owner: Any = None
        self.column = attr.column
        self.column_names = attr.column_names
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

    def _value_(self) -> Value:
        return Column(self)

    @property
    def entity(self) -> Any:
        """The query's entity when the path starts at the query's object, else None."""
        source = self.source
        if source is None:
            return self.attr.entity if self.owner is None else self.owner
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

    __hash__ = object.__hash__


def _never_null(attr: Any) -> bool:
    """Whether every row of ``attr``'s table holds a value in its column (NOT NULL, not a subclass's)."""
    entity = getattr(attr, "entity", None)
    return not getattr(attr, "nullable", True) and entity is not None and entity._root_ is entity


def column_sql(attr: Any, dialect: Dialect) -> str:
    """The column an attribute (of the query's own table) or a ``ColumnRef`` reads."""
    if type(attr) is ColumnRef:
        return dialect.column_ref(attr)
    return dialect.column(attr.column)


def check_entities(entity: Any, conditions: Any) -> None:
    """UnknownAttributeError unless each condition is about ``entity`` (or a base or subclass of it)."""
    for condition in conditions:
        if type(condition) is Compare and condition.attr.entity is entity:
            continue  # the most frequent: a comparison of one of the entity's own attributes
        for other in condition.entities():
            if other is not entity and not issubclass(entity, other) and not issubclass(other, entity):
                raise UnknownAttributeError(
                    f"A condition on {other.__name__} cannot filter {entity.__name__} objects: {condition!r}"
                )


def root_entities(attr: Any) -> Iterator[Any]:
    """The query entity an operand is about (nothing for objects of nested queries)."""
    entity = attr.entity
    if entity is not None:
        yield entity


class OrderBy:
    """One ORDER BY item: an attribute, a value expression or a 1-based position in the select list."""

    __slots__ = ("attr", "descending")

    def __init__(self, attr: Any, descending: bool) -> None:
        self.attr = attr
        self.descending = descending

    def key(self) -> tuple[Any, bool]:
        """The column name (or value, or position) and direction of a SELECT's ORDER BY."""
        attr = self.attr
        if isinstance(attr, (Value, int)) or type(attr) is ColumnRef:
            return attr, self.descending
        return attr.column, self.descending

    def keys(self) -> tuple[tuple[Any, bool], ...]:
        """Every ORDER BY item of ``key()``: one per column of a reference to a composite key."""
        attr = self.attr
        if isinstance(attr, (Value, int)) or attr.width == 1:
            return (self.key(),)
        if type(attr) is ColumnRef:
            raise QueryError(
                f"Ordering by {attr.qualname}, a reference to a composite key through a path, is not supported"
            )
        return tuple((column, self.descending) for column in attr.column_names)


# -- values ---------------------------------------------------------------------------------------
#
# A value is anything a query computes from its rows: a column, a bound literal, an operation of
# the table below, an aggregate, a raw SQL fragment. Comparing values makes a condition.

_NUMERIC = (bool, int, float, Decimal)


class Value(Operand):
    """A value computed by a query; comparisons make conditions."""

    __slots__ = ("py_type",)

    py_type: Any
    #: whether a raw SQL fragment is part of it
    raw = False

    def _value_(self) -> Value:
        return self

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        """The SQL text of the value, appending bound values to ``params``."""
        raise NotImplementedError

    def entities(self) -> Iterator[Any]:
        """The entities whose rows the value reads."""
        return iter(())

    def is_aggregate(self) -> bool:
        """Whether the value aggregates rows (COUNT, SUM...): then a query groups by the others."""
        return False

    def attrs(self) -> Iterator[Any]:
        """The attributes whose columns the value reads."""
        for name in ("args", "arg"):
            parts = getattr(self, name, None)
            for part in parts if isinstance(parts, tuple) else (parts,) if parts is not None else ():
                yield from part.attrs()

    def bind(self, value: Any) -> Value:
        """A Python value compared with this one, bound as the database compares it."""
        return Param(value)

    def from_db(self, value: Any) -> Any:
        """A value the database returned for this one, as Python sees it."""
        if value is None:
            return None
        column_type = COLUMN_TYPES.get(self.py_type)
        convert = None if column_type is None else column_type.from_db
        return value if convert is None else convert(value)

    __hash__ = object.__hash__

    def __eq__(self, other: Any) -> Expr:  # type: ignore[override]
        return compare("==", self, other)

    def __ne__(self, other: Any) -> Expr:  # type: ignore[override]
        return compare("!=", self, other)

    def __lt__(self, other: Any) -> Expr:
        return compare("<", self, other)

    def __le__(self, other: Any) -> Expr:
        return compare("<=", self, other)

    def __gt__(self, other: Any) -> Expr:
        return compare(">", self, other)

    def __ge__(self, other: Any) -> Expr:
        return compare(">=", self, other)

    def __neg__(self) -> Value:
        return function("neg", self)

    def __bool__(self) -> bool:
        raise QueryError(f"A query value has no truth value: compare it ({self!r})")

    def in_(self, values: Any) -> Expr:
        """``value IN (values)``."""
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise AttributeTypeError(f"{self!r}.in_() takes a collection of values, got {values!r}")
        return InList(self, [self.bind(v) for v in values])

    def not_in(self, values: Any) -> Expr:
        """``value NOT IN (values)``."""
        return ~self.in_(values)

    def is_(self, value: Any) -> Expr:
        """``value IS NULL`` (only None is accepted)."""
        if value is not None:
            raise QueryError(f"{self!r}.is_() accepts only None, got {value!r}")
        return compare("==", self, None)

    def is_not(self, value: Any) -> Expr:
        """``value IS NOT NULL``."""
        if value is not None:
            raise QueryError(f"{self!r}.is_not() accepts only None, got {value!r}")
        return compare("!=", self, None)

    def startswith(self, prefix: Any) -> Expr:
        """The string starts with ``prefix`` (case-sensitive)."""
        return StringTest("startswith", self, prefix)

    def endswith(self, suffix: Any) -> Expr:
        """The string ends with ``suffix`` (case-sensitive)."""
        return StringTest("endswith", self, suffix)

    def contains(self, part: Any) -> Expr:
        """The string contains ``part`` (case-sensitive)."""
        return StringTest("contains", self, part)

    def desc(self) -> OrderBy:
        """Descending order by this value."""
        return OrderBy(self, descending=True)

    def asc(self) -> OrderBy:
        """Ascending order by this value."""
        return OrderBy(self, descending=False)


class Column(Value):
    """An entity attribute's column, qualified by ``table`` (an alias) when the query joins."""

    __slots__ = ("attr", "table")

    def __init__(self, attr: Any, table: str | None = None) -> None:
        self.attr = attr
        self.table = table
        self.py_type = attr.py_type

    def __repr__(self) -> str:
        return repr(self.attr)

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        if self.table is not None:
            return f"{self.table}.{dialect.quote(self.attr.column)}"
        return column_sql(self.attr, dialect)

    def entities(self) -> Iterator[Any]:
        yield from root_entities(self.attr)

    def bind(self, value: Any) -> Value:
        return _Bound(_bound(_db_value(self.attr, value)))

    def from_db(self, value: Any) -> Any:
        attr = self.attr.attr if type(self.attr) is ColumnRef else self.attr
        convert = attr.from_db
        return value if value is None or convert is None else convert(value)


class TableColumn(Value):
    """A column of the query's own table by name (the columns an object is loaded from), or of
    another object the query ranges over (``source``, a ``Var``)."""

    __slots__ = ("name", "source")

    def __init__(self, name: str, source: Var | None = None) -> None:
        self.name = name
        self.source = source
        self.py_type = None

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        if self.source is not None:
            return dialect.source_column(self.source, self.name)
        return dialect.column(self.name)


class Label(Value):
    """A column of a query in FROM, by the name the query gives it (``q."v"``)."""

    __slots__ = ("name", "table")

    def __init__(self, table: str, name: str, py_type: Any) -> None:
        self.table = table
        self.name = name
        self.py_type = py_type

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return f"{self.table}.{dialect.quote(self.name)}"


class Param(Value):
    """A Python value bound as a parameter."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value
        self.py_type = type(value)

    def __repr__(self) -> str:
        return repr(self.value)

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        value = self.value
        params.append(_bound(value) if isinstance(value, EntityBase) else dialect.literal(value))
        return dialect.param


class Func(Value):
    """A row of ``FUNCTIONS`` applied to values."""

    __slots__ = ("args", "name", "raw")

    def __init__(self, name: str, args: tuple[Value, ...], py_type: Any) -> None:
        self.name = name
        self.args = args
        self.py_type = py_type
        self.raw = any(arg.raw for arg in args)

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(map(repr, self.args))})"

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        texts = [arg.sql(dialect, params) for arg in self.args]
        spelling = FUNCTIONS[self.name][0]
        if spelling is None:
            return dialect.function_sql(self.name, texts)
        return spelling.format(*texts, args=", ".join(texts))

    def entities(self) -> Iterator[Any]:
        for arg in self.args:
            yield from arg.entities()

    def is_aggregate(self) -> bool:
        return any(arg.is_aggregate() for arg in self.args)

    def bind(self, value: Any) -> Value:
        # a function keeping its argument's type (coalesce, min, max) binds like that argument
        for arg in self.args:
            if isinstance(arg, Column) and arg.py_type is self.py_type is type(value):
                return arg.bind(value)
        return Param(value)


class Aggregate(Value):
    """``COUNT``/``SUM``/``MIN``/``MAX``/``AVG``/``GROUP_CONCAT`` of a value (COUNT of rows without one)."""

    __slots__ = ("arg", "distinct", "name", "raw", "sep")

    def __init__(self, name: str, arg: Value | None, distinct: bool = False, sep: str | None = None) -> None:
        if name not in AGGREGATES:
            raise QueryError(f"Unknown aggregate {name!r}")
        if arg is not None and arg.is_aggregate():
            raise QueryError(f"An aggregate of an aggregate is not allowed: {name}({arg!r})")
        if name in ("sum", "avg") and isinstance(arg, JsonPath):
            arg = arg.scalar(float)  # the JSON numbers at the path
        if name in ("sum", "avg") and arg is not None and not _is_numeric(arg.py_type):
            raise noted(QueryError(f"{name!r} is valid for numeric attributes only"), f"{name}() got {arg!r}")
        self.name = name
        self.arg = arg
        self.distinct = distinct
        self.sep = sep
        self.raw = arg is not None and arg.raw
        result = AGGREGATES[name]
        self.py_type = (arg.py_type if arg is not None else int) if result is None else result

    def __repr__(self) -> str:
        return f"{self.name}({'*' if self.arg is None else repr(self.arg)})"

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        if self.arg is None:
            return "COUNT(*)"
        arg = self.arg.sql(dialect, params)
        if self.name == "group_concat":
            return dialect.group_concat_sql(arg, self.distinct, self.sep, params)
        if self.distinct:
            arg = "DISTINCT " + arg
        if self.name == "sum":
            return f"coalesce(SUM({arg}), 0)"
        return f"{self.name.upper()}({arg})"

    def entities(self) -> Iterator[Any]:
        return iter(()) if self.arg is None else self.arg.entities()

    def is_aggregate(self) -> bool:
        return True

    def from_db(self, value: Any) -> Any:
        if value is None or self.name == "count":
            return value
        if self.name == "avg":
            return float(value)
        if self.py_type is int:
            return int(value)  # PostgreSQL sums integers as numeric
        return super().from_db(value)


class Nested(Value):
    """The single value of a nested statement (``(SELECT COUNT(*) FROM ...)``) selected as a value.

    ``statement`` is a node of the SQL layer with ``sql(dialect, params)``; ``aggregate`` is the
    SQL aggregate it applies (``COUNT``, ``SUM``, ``AVG``...), which decides its Python type with
    ``py_type``, the type of the aggregated value.
    """

    __slots__ = ("aggregate", "statement")

    def __init__(self, statement: Any, aggregate: str | None, py_type: Any) -> None:
        self.statement = statement
        self.aggregate = aggregate
        name = (aggregate or "").lower()
        result = AGGREGATES.get(name)
        self.py_type = result if result is not None else py_type

    def __repr__(self) -> str:
        return f"<nested {self.aggregate or 'value'}>"

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return f"({self.statement.sql(dialect, params)})"

    def from_db(self, value: Any) -> Any:
        if value is None or (self.py_type is int and type(value) is int):
            return value
        if self.py_type is float:
            return float(value)
        if self.py_type is int:
            return int(value)  # PostgreSQL sums integers as numeric
        return super().from_db(value)


class RawSQL(Value):
    """A fragment of SQL text written by the user, with ``$name`` / ``$(expression)`` values bound."""

    __slots__ = ("parts", "values")

    raw = True

    def __init__(self, parts: tuple[str, ...], values: tuple[Any, ...], py_type: Any = None) -> None:
        self.parts = parts
        self.values = values
        self.py_type = py_type

    def __repr__(self) -> str:
        return f"raw_sql({'?'.join(self.parts)!r})"

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        text = [dialect.escape_percent(self.parts[0])]
        for value, part in zip(self.values, self.parts[1:]):
            text.append(
                value.sql(dialect, params) if isinstance(value, Value) else _raw_param(value, dialect, params)
            )
            text.append(dialect.escape_percent(part))
        return "".join(text)

    def as_condition(self) -> Expr:
        """The fragment used as a condition."""
        return Truth(self)


def _raw_param(value: Any, dialect: Dialect, params: list[Any]) -> str:
    return Param(value).sql(dialect, params)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _balanced(text: str, start: int) -> int:
    """The index after the bracket closing the one at ``start``; -1 when it is not closed."""
    pairs = {"(": ")", "[": "]"}
    stack = [pairs[text[start]]]
    pos = start + 1
    while pos < len(text) and stack:
        char = text[pos]
        if char in pairs:
            stack.append(pairs[char])
        elif char == stack[-1]:
            stack.pop()
        pos += 1
    return -1 if stack else pos


def raw_sql_parts(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``text`` split at its ``$name`` (``$obj.attr``, ``$f(x)``...) and ``$(expression)``
    references: the texts between them, and the Python source of each (``$$`` is a dollar sign)."""
    parts: list[str] = []
    sources: list[str] = []
    current: list[str] = []
    pos = 0
    while True:
        dollar = text.find("$", pos)
        if dollar < 0:
            current.append(text[pos:])
            break
        current.append(text[pos:dollar])
        after = dollar + 1
        if text.startswith("$", after):
            current.append("$")
            pos = after + 1
            continue
        if text.startswith("(", after):
            end = _balanced(text, after)
            if end < 0:
                raise QueryError(f"Unbalanced $( in raw SQL: {text!r}")
            source, pos = text[after + 1 : end - 1], end
        else:
            match = _IDENTIFIER.match(text, after)
            if match is None:
                current.append("$")
                pos = after
                continue
            end = match.end()
            while end < len(text):  # attributes, calls and subscripts of the name
                if text[end] == "." and _IDENTIFIER.match(text, end + 1):
                    end = _IDENTIFIER.match(text, end + 1).end()  # type: ignore[union-attr]
                elif text[end] in "([":
                    closed = _balanced(text, end)
                    if closed < 0:
                        break
                    end = closed
                else:
                    break
            source, pos = text[after:end], end
        parts.append("".join(current))
        current = []
        sources.append(source)
    parts.append("".join(current))
    return tuple(parts), tuple(sources)


def raw_sql(text: str, result_type: Any = None, _values: tuple[Any, ...] | None = None) -> RawSQL:
    """A fragment of SQL inside a query; ``$name`` and ``$(expression)`` read the caller's variables."""
    if not isinstance(text, str):
        raise QueryError(f"raw_sql() takes the SQL text as a str, got {text!r}")
    parts, sources = raw_sql_parts(text)
    if _values is None:
        frame = sys._getframe(1)
        _values = tuple(eval(source, frame.f_globals, frame.f_locals) for source in sources)
    return RawSQL(parts, tuple(_values), result_type)


class Truth(Expr):
    """A value used as a condition (a bool column, a raw SQL fragment)."""

    __slots__ = ("raw", "value")

    def __init__(self, value: Value) -> None:
        self.value = value
        self.raw = value.raw

    def __repr__(self) -> str:
        return repr(self.value)

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return f"({self.value.sql(dialect, params)})"

    def entities(self) -> Iterator[Any]:
        return self.value.entities()

    def is_aggregate(self) -> bool:
        """Whether the condition needs HAVING."""
        return self.value.is_aggregate()


def decimal_sql(value: Value, sql: str, dialect: Dialect) -> str:
    """``sql`` of ``value`` as the dialect compares and orders Decimals: a column as it is (its
    collation or type does), a computed or bound Decimal by number."""
    if value.py_type is not Decimal or type(value) is Column:
        return sql
    return dialect.decimal_value(sql)


class ValueCompare(Expr):
    """``left <op> right`` between values."""

    __slots__ = ("left", "op", "raw", "right")

    def __init__(self, op: str, left: Value, right: Value) -> None:
        self.op = op
        self.left = left
        self.right = right
        self.raw = left.raw or right.raw

    def __repr__(self) -> str:
        return f"<{self.left!r} {self.op} {self.right!r}>"

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        left = self.left.sql(dialect, params)
        if isinstance(self.right, Param) and self.right.value is None:
            return f"{left} IS NULL" if self.op == "==" else f"{left} IS NOT NULL"
        right = self.right.sql(dialect, params)
        if self.left.py_type is Decimal or self.right.py_type is Decimal:
            left, right = decimal_sql(self.left, left, dialect), decimal_sql(self.right, right, dialect)
        return f"{left} {OPERATORS[self.op]} {right}"

    def entities(self) -> Iterator[Any]:
        yield from self.left.entities()
        yield from self.right.entities()

    def is_aggregate(self) -> bool:
        """Whether the condition needs HAVING."""
        return self.left.is_aggregate() or self.right.is_aggregate()


class InList(Expr):
    """``value IN (values)``; the values are bound values (``Param``)."""

    __slots__ = ("raw", "value", "values")

    def __init__(self, value: Value, values: list[Any]) -> None:
        self.value = value
        self.values = values
        self.raw = value.raw

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        text = self.value.sql(dialect, params)
        values: list[Any] = []
        for value in self.values:
            value.sql(dialect, values)
        return dialect.in_values_sql(text, values, params)

    def entities(self) -> Iterator[Any]:
        return self.value.entities()

    def is_aggregate(self) -> bool:
        """Whether the condition needs HAVING."""
        return self.value.is_aggregate()


def _string_test_error(value: str, op: str, part: Any) -> AttributeTypeError:
    """The error of ``startswith``/``endswith``/``contains`` of a string ``value`` given a ``part``
    that is not a str: an IncomparableTypesError for ``contains`` (``1 in s.name``)."""
    kind = type(part).__name__
    written = f"{value}.{op}({part!r})"
    if op == "contains":
        error: AttributeTypeError = IncomparableTypesError(
            f"Incomparable types {kind!r} and 'str' in expression: {written}"
        )
    else:
        error = AttributeTypeError(f"Expected 'str' argument but got {kind!r} in expression {written}")
    error.value = part
    return written_as(error, written)


class StringTest(Expr):
    """``startswith``/``endswith``/``contains`` of a string value."""

    __slots__ = ("op", "part", "raw", "value")

    def __init__(self, op: str, value: Value, part: Any) -> None:
        if isinstance(part, Operand):
            # a part the query computes (``s.bar in s.foo``, ``s.foo.startswith(raw_sql(...))``)
            part = value_of(part)
            if not (isinstance(part, RawSQL) and part.py_type is None):  # raw SQL's type is the user's word
                _check_text(part, "test of `in`" if op == "contains" else f"{op}()")
        elif not isinstance(part, str):
            raise _string_test_error(repr(value), op, part)
        self.op = op
        self.value = value
        self.part = part
        self.raw = value.raw

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        part = self.part
        if isinstance(part, Value):
            if self.op == "contains":
                text = self.value.sql(dialect, params)
                return dialect.contains_value_sql(text, part.sql(dialect, params))
            # the dialect may spell the text or the part twice: each spelling binds its own values
            return dialect.affix_value_sql(
                self.op, lambda: self.value.sql(dialect, params), lambda: part.sql(dialect, params)
            )
        return dialect.string_test(self.op, self.value.sql(dialect, params), part, params)

    def entities(self) -> Iterator[Any]:
        yield from self.value.entities()
        if isinstance(self.part, Value):
            yield from self.part.entities()

    def is_aggregate(self) -> bool:
        """Whether the condition needs HAVING."""
        return self.value.is_aggregate() or (isinstance(self.part, Value) and self.part.is_aggregate())


# -- values computed from a column: Json paths, arrays -------------------------------------------


class RowValue(Value):
    """A value the database computes from a row's column (a Json path, an array item, slice or length).

    Compared with a Python value (``==``, ``<``, ``is_(None)`` ...) the value is bound as the column
    stores it (a Json path compares JSON values); compared with another value of the query it is
    compared as a value. Selected, it reads back as Python sees the column's parts.
    """

    __slots__ = ("attr",)

    def __init__(self, attr: Any, py_type: Any) -> None:
        self.attr = attr
        self.py_type = py_type

    def compare_sql(self, dialect: Dialect, op: str, value: Any, params: list[Any]) -> str:
        """``self <op> value`` (value not None)."""
        left = self.sql(dialect, params)
        params.append(value)
        return f"{left} {OPERATORS[op]} {dialect.param}"

    def null_sql(self, dialect: Dialect, params: list[Any]) -> str:
        """``self IS NULL``."""
        return f"{self.sql(dialect, params)} IS NULL"

    def _compare(self, op: str, value: Any) -> Expr:
        if isinstance(value, Operand):
            return compare(op, self, value)
        if isinstance(value, Expr):
            raise QueryError(f"Cannot compare {self!r} with a condition {value!r}")
        return RowCompare(self, op, value)

    def __eq__(self, other: Any) -> Expr:  # type: ignore[override]
        return self._compare("==", other)

    def __ne__(self, other: Any) -> Expr:  # type: ignore[override]
        return self._compare("!=", other)

    def __lt__(self, other: Any) -> Expr:
        return self._compare("<", other)

    def __le__(self, other: Any) -> Expr:
        return self._compare("<=", other)

    def __gt__(self, other: Any) -> Expr:
        return self._compare(">", other)

    def __ge__(self, other: Any) -> Expr:
        return self._compare(">=", other)

    __hash__ = object.__hash__

    def entities(self) -> Iterator[Any]:
        yield from root_entities(self.attr)

    def attrs(self) -> Iterator[Any]:
        yield self.attr
        yield from super().attrs()

    def _column_from_db(self, value: Any) -> Any:
        """``value`` read back as the attribute's own column reads (JSON text on SQLite)."""
        attr = self.attr.attr if type(self.attr) is ColumnRef else self.attr
        convert = attr.from_db
        return value if value is None or convert is None else convert(value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.attr!r}>"


class RowCompare(Expr):
    """``row value <op> value``; ``== None`` is IS NULL."""

    __slots__ = ("left", "op", "value")

    def __init__(self, left: RowValue, op: str, value: Any) -> None:
        self.left = left
        self.op = op
        self.value = value

    def __repr__(self) -> str:
        return f"<{self.left!r} {self.op} {self.value!r}>"

    def entities(self) -> Iterator[Any]:
        return self.left.entities()

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        if self.value is None:
            test = self.left.null_sql(dialect, params)
            return test if self.op == "==" else f"NOT ({test})"
        return self.left.compare_sql(dialect, self.op, self.value, params)


class JsonPath(RowValue):
    """``Product.info["os"]["version"]``: the part of a Json column at a path of keys and indexes."""

    __slots__ = ("path",)

    def __init__(self, attr: Any, path: tuple[Any, ...]) -> None:
        super().__init__(attr, Json)
        for key in path:
            if isinstance(key, slice) or key is Ellipsis:
                wildcard = "[:]" if isinstance(key, slice) else "[...]"
                before = "".join(f"[{k!r}]" for k in path[: path.index(key)])
                raise TranslationError(
                    f"nextorm does not support wildcards in JSON paths (SQLite and PostgreSQL have "
                    f"none): {wildcard} in {attr.qualname}{before}{wildcard}"
                )
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise QueryError(f"A path into {attr.qualname} takes str keys and int indexes, got {key!r}")
        self.path = path

    def __getitem__(self, key: Any) -> JsonPath:
        return JsonPath(self.attr, (*self.path, key))

    def __repr__(self) -> str:
        return self.attr.qualname + "".join(f"[{key!r}]" for key in self.path)

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return dialect.json_part_sql(column_sql(self.attr, dialect), self.path, params)

    def compare_sql(self, dialect: Dialect, op: str, value: Any, params: list[Any]) -> str:
        value = value.wrapped if isinstance(value, Json) else value
        spelling = OPERATORS[op] or op  # every comparison of a RowValue has a spelling
        return dialect.json_compare_sql(column_sql(self.attr, dialect), self.path, spelling, value, params)

    def null_sql(self, dialect: Dialect, params: list[Any]) -> str:
        return dialect.json_is_null_sql(column_sql(self.attr, dialect), self.path, params)

    def from_db(self, value: Any) -> Any:
        return self._column_from_db(value)

    def scalar(self, py_type: Any) -> JsonScalar:
        """The JSON scalar at the path as a value of ``py_type`` (str, int, float, bool)."""
        return JsonScalar(self, py_type)

    def truth(self) -> Expr:
        """Python's truth of the part: false for null, false, 0, "", [], {} and a missing part."""
        return JsonTruth(self)

    def contains(self, item: Any) -> Expr:  # type: ignore[override]
        """``item in value``: a key of a Json object, an item of a Json array."""
        return JsonContains(self, item)

    def length(self) -> JsonLength:
        """``len(value)`` of a Json array."""
        return JsonLength(self)


#: the Python types of JSON scalars
_SCALARS = (str, int, float, bool, Decimal)


class JsonScalar(RowValue):
    """The JSON scalar at a path as an SQL value of a Python type (``int(p.info["version"])``)."""

    __slots__ = ("path",)

    def __init__(self, path: JsonPath, py_type: Any) -> None:
        super().__init__(path.attr, py_type)
        self.path = path

    def __repr__(self) -> str:
        return f"{_type_name(self.py_type)}({self.path!r})"

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        column = column_sql(self.attr, dialect)
        return dialect.json_scalar_sql(column, self.path.path, self.py_type, params)

    def _compare(self, op: str, value: Any) -> Expr:
        return (
            compare(op, self, value)
            if isinstance(value, Operand)
            else ValueCompare(op, self, self.bind(value))
        )


class JsonTruth(Expr):
    """``if p.info["key"]``: the part is not null, false, 0, "", [] or {} (nor missing)."""

    __slots__ = ("path",)

    def __init__(self, path: JsonPath) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"<truth of {self.path!r}>"

    def entities(self) -> Iterator[Any]:
        return self.path.entities()

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return dialect.json_truth_sql(self.path.sql(dialect, params))


class JsonContains(Expr):
    """``key in Product.info[...]`` (an object's key or an array's item)."""

    __slots__ = ("item", "path")

    def __init__(self, path: JsonPath, item: Any) -> None:
        self.path = path
        self.item = item

    def entities(self) -> Iterator[Any]:
        return self.path.entities()

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        column = column_sql(self.path.attr, dialect)
        return dialect.json_contains_sql(column, self.path.path, self.item, params)


class JsonLength(RowValue):
    """``len(Product.info["colors"])``: the length of a Json array."""

    __slots__ = ("path",)

    def __init__(self, path: JsonPath) -> None:
        super().__init__(path.attr, int)
        self.path = path

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return dialect.json_length_sql(column_sql(self.attr, dialect), self.path.path, params)


class ArrayContains(Expr):
    """``10 in Foo.numbers`` (an item) or ``[10, 20] in Foo.numbers`` (every item of a list)."""

    __slots__ = ("attr", "items", "many")

    def __init__(self, attr: Any, value: Any) -> None:
        self.attr = attr
        self.many = isinstance(value, (list, tuple))
        self.items = list(value) if self.many else [value]
        self.items = [attr.ctype.validate_item(item) for item in self.items]

    def entities(self) -> Iterator[Any]:
        yield from root_entities(self.attr)

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        column = column_sql(self.attr, dialect)
        if not self.many:
            return dialect.array_has_sql(column, self.items[0], params)
        if not self.items:
            return "1 = 1"
        value = self.items if self.attr.to_db is None else self.attr.to_db(self.items)
        return dialect.array_has_all_sql(column, value, dialect.sql_type(self.attr), params)


class ArrayLength(RowValue):
    """``len(Foo.numbers)``."""

    __slots__ = ()

    def __init__(self, attr: Any) -> None:
        super().__init__(attr, int)

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return dialect.array_length_sql(column_sql(self.attr, dialect))


def written_as(error: _E, written: str) -> _E:
    """``error``, whose message names an operation as ``written`` in the attribute-expression form
    (``Student.name[1:3:5]``): a generator or lambda query names it as its source reads instead."""
    error.written = written  # type: ignore[attr-defined]
    return error


def _slice_text(key: slice) -> str:
    """``start:stop:step`` of a slice as Python writes it."""
    parts = ["" if part is None else repr(part) for part in (key.start, key.stop, key.step)]
    return ":".join(parts if key.step is not None else parts[:2])


def _non_index_type(value: Any) -> str | None:
    """The name of ``value``'s type when it cannot index a string in a query (None for an int, or
    an int value the query computes)."""
    if isinstance(value, Operand):
        kind = value_of(value).py_type
        return None if _is_numeric(kind) and kind not in (float, Decimal) else _type_name(kind)
    if isinstance(value, bool) or not isinstance(value, int):
        return type(value).__name__
    return None


def _index_value(value: Any, what: str) -> Any:
    """An index or slice bound in a query: an int, or an int value the query computes."""
    if isinstance(value, Operand):
        index = value_of(value)
        if not (_is_numeric(index.py_type) and index.py_type not in (float, Decimal)):
            raise QueryError(f"{what} is an int, got {index!r} of type {_type_name(index.py_type)}")
        return index
    if isinstance(value, bool) or not isinstance(value, int):
        raise QueryError(f"{what} is an int, got {value!r}")
    return value


def _bound_sql(bound: Any, dialect: Dialect, params: list[Any]) -> str | None:
    """The SQL text of a slice bound (None when it is left out)."""
    if bound is None:
        return None
    return value_of(bound).sql(dialect, params)


class ArrayItem(RowValue):
    """``Foo.numbers[i]`` (negative ``i`` counts from the end; NULL past either end).

    ``i`` is an int, or an int value the query computes (``Foo.numbers[Foo.position]``).
    """

    __slots__ = ("index",)

    def __init__(self, attr: Any, index: Any) -> None:
        super().__init__(attr, attr.py_type.item_type)
        self.index = _index_value(index, f"An index into {attr.qualname}")

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        column = column_sql(self.attr, dialect)
        if isinstance(self.index, Value):
            return dialect.array_item_at_sql(column, self.index.sql(dialect, params))
        return dialect.array_item_sql(column, self.index, params)

    def attrs(self) -> Iterator[Any]:
        yield self.attr
        if isinstance(self.index, Value):
            yield from self.index.attrs()

    def entities(self) -> Iterator[Any]:
        yield from root_entities(self.attr)
        if isinstance(self.index, Value):
            yield from self.index.entities()


class ArraySlice(RowValue):
    """``Foo.numbers[start:stop]``: a list of the array's items, with Python's slice bounds
    (negative from the end, None for either end; ints or int values the query computes)."""

    __slots__ = ("start", "stop")

    def __init__(self, attr: Any, key: slice) -> None:
        super().__init__(attr, attr.py_type)
        if key.step not in (None, 1):
            raise QueryError(f"A slice of {attr.qualname} in a query takes no step, got {key!r}")
        what = f"A slice bound of {attr.qualname}"
        self.start = None if key.start is None else _index_value(key.start, what)
        self.stop = None if key.stop is None else _index_value(key.stop, what)

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        column = column_sql(self.attr, dialect)
        start = _bound_sql(self.start, dialect, params)
        stop = _bound_sql(self.stop, dialect, params)
        return dialect.array_slice_sql(column, start, stop)

    def from_db(self, value: Any) -> Any:
        return self._column_from_db(value)

    def attrs(self) -> Iterator[Any]:
        yield self.attr
        for bound in (self.start, self.stop):
            if isinstance(bound, Value):
                yield from bound.attrs()

    def entities(self) -> Iterator[Any]:
        yield from root_entities(self.attr)
        for bound in (self.start, self.stop):
            if isinstance(bound, Value):
                yield from bound.entities()


def _check_text(value: Value, what: str) -> None:
    if not (isinstance(value.py_type, type) and issubclass(value.py_type, str)):
        raise AttributeTypeError(
            f"A string {what} in a query takes a str value, got {_type_name(value.py_type)}: {value!r}"
        )


class StringSlice(Value):
    """``value[start:stop]`` of a string with a negative or computed bound (Python's slice bounds)."""

    __slots__ = ("start", "stop", "value")

    def __init__(self, value: Value, start: Any, stop: Any) -> None:
        self.value = value
        self.start = start
        self.stop = stop
        self.py_type = value.py_type

    def __repr__(self) -> str:
        return f"{self.value!r}[{'' if self.start is None else self.start!r}:{'' if self.stop is None else self.stop!r}]"

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        text = self.value.sql(dialect, params)
        start = _bound_sql(self.start, dialect, params)
        stop = _bound_sql(self.stop, dialect, params)
        return dialect.string_slice_sql(text, start, stop)

    def entities(self) -> Iterator[Any]:
        for part in (self.value, self.start, self.stop):
            if isinstance(part, Value):
                yield from part.entities()

    def attrs(self) -> Iterator[Any]:
        for part in (self.value, self.start, self.stop):
            if isinstance(part, Value):
                yield from part.attrs()

    def is_aggregate(self) -> bool:
        return any(
            isinstance(part, Value) and part.is_aggregate() for part in (self.value, self.start, self.stop)
        )


class StringItem(Value):
    """``value[index]`` of a string with a negative or computed index ('' past either end)."""

    __slots__ = ("index", "value")

    def __init__(self, value: Value, index: Any) -> None:
        self.value = value
        self.index = index
        self.py_type = value.py_type

    def __repr__(self) -> str:
        return f"{self.value!r}[{self.index!r}]"

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        text = self.value.sql(dialect, params)
        return dialect.string_item_sql(text, value_of(self.index).sql(dialect, params))

    def entities(self) -> Iterator[Any]:
        for part in (self.value, self.index):
            if isinstance(part, Value):
                yield from part.entities()

    def attrs(self) -> Iterator[Any]:
        for part in (self.value, self.index):
            if isinstance(part, Value):
                yield from part.attrs()

    def is_aggregate(self) -> bool:
        return any(isinstance(part, Value) and part.is_aggregate() for part in (self.value, self.index))


class Case(Value):
    """``then if condition else otherwise``: ``CASE WHEN condition THEN then ELSE otherwise END``."""

    __slots__ = ("condition", "otherwise", "raw", "then")

    def __init__(self, condition: Expr, then: Value, otherwise: Value, py_type: Any) -> None:
        self.condition = condition
        self.then = then
        self.otherwise = otherwise
        self.py_type = py_type
        self.raw = bool(getattr(condition, "raw", False)) or then.raw or otherwise.raw

    def __repr__(self) -> str:
        return f"({self.then!r} if {self.condition!r} else {self.otherwise!r})"

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        condition = self.condition.sql(dialect, params)
        then = self.then.sql(dialect, params)
        otherwise = self.otherwise.sql(dialect, params)
        return f"(CASE WHEN {condition} THEN {then} ELSE {otherwise} END)"

    def entities(self) -> Iterator[Any]:
        yield from self.condition.entities()
        yield from self.then.entities()
        yield from self.otherwise.entities()

    def attrs(self) -> Iterator[Any]:
        condition_attrs = getattr(self.condition, "attrs", None)
        if condition_attrs is not None:
            yield from condition_attrs()
        yield from self.then.attrs()
        yield from self.otherwise.attrs()

    def is_aggregate(self) -> bool:
        return self.condition.is_aggregate() or self.then.is_aggregate() or self.otherwise.is_aggregate()


def case(condition: Expr, then: Any, otherwise: Any) -> Value:
    """The value ``then`` where ``condition`` holds, else ``otherwise`` (SQL's ``CASE WHEN``).

    Both values are numbers, or of one type (a value and None mix); the result has the type of the
    two (a float where one of two numbers is a float).
    """
    if not isinstance(condition, Expr):
        raise QueryError(f"case() takes a condition first, got {condition!r}")
    then, otherwise = value_of(then), value_of(otherwise)
    lt, rt = then.py_type, otherwise.py_type
    if lt is type(None):
        py_type = rt
    elif rt is type(None) or lt is rt:
        py_type = lt
    elif _is_numeric(lt) and _is_numeric(rt):
        py_type = float if float in (lt, rt) else Decimal if Decimal in (lt, rt) else int
    elif isinstance(lt, type) and isinstance(rt, type) and issubclass(rt, lt):
        py_type = lt
    elif isinstance(lt, type) and isinstance(rt, type) and issubclass(lt, rt):
        py_type = rt
    else:
        raise AttributeTypeError(
            f"The two values of a conditional expression have types {_type_name(lt)!r} and "
            f"{_type_name(rt)!r}, which do not mix: {then!r} if {condition!r} else {otherwise!r}"
        )
    return Case(condition, then, otherwise, py_type)


class ConditionValue(Value):
    """A condition selected as a value: True, False, or None where SQL cannot tell."""

    __slots__ = ("condition", "raw")

    def __init__(self, condition: Expr) -> None:
        self.condition = condition
        self.py_type = bool
        self.raw = bool(getattr(condition, "raw", False))

    def __repr__(self) -> str:
        return repr(self.condition)

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        return f"({self.condition.sql(dialect, params)})"

    def entities(self) -> Iterator[Any]:
        return self.condition.entities()

    def attrs(self) -> Iterator[Any]:
        condition_attrs = getattr(self.condition, "attrs", None)
        return condition_attrs() if condition_attrs is not None else iter(())

    def is_aggregate(self) -> bool:
        return self.condition.is_aggregate()


def value_of(item: Any) -> Value:
    """``item`` as a value: an attribute's column, a value itself, or a Python value to bind."""
    if isinstance(item, Value):
        return item
    if isinstance(item, Operand):
        return item._value_()
    if isinstance(item, Expr):
        raise QueryError(f"A condition is not a value here: {item!r}")
    return Param(item)


def _is_numeric(py_type: Any) -> bool:
    return isinstance(py_type, type) and issubclass(py_type, _NUMERIC)


#: whether a value's Python type is a number (what sum() and avg() take)
is_numeric_type = _is_numeric


def _comparable(left: Any, right: Any) -> bool:
    if left is None or right is None or left is right:
        return True
    if _is_numeric(left) and _is_numeric(right):
        return True
    if (
        isinstance(left, type)
        and isinstance(right, type)
        and (issubclass(left, right) or issubclass(right, left))
    ):
        return True
    return False


#: whether values of two Python types compare in SQL (numbers with numbers, a type with its subclasses)
comparable_types = _comparable


def compare(op: str, left: Any, right: Any) -> Expr:
    """``left <op> right`` where either side is a value (or an attribute)."""
    if not isinstance(left, Operand):
        left, right = right, left
        op = _MIRRORED[op]
    left = value_of(left)
    if isinstance(left, Column) and not isinstance(right, Operand):
        return expression_for(left.attr, op, right)
    if isinstance(left, RowValue) and not isinstance(right, Operand):
        return left._compare(op, right)
    if isinstance(right, Operand):
        right = value_of(right)
        # a JSON scalar compared with a value of the query (``p.info["name"] == p.name``)
        if type(left) is JsonPath and right.py_type in _SCALARS:
            left = left.scalar(right.py_type)
        elif type(right) is JsonPath and left.py_type in _SCALARS:
            right = right.scalar(left.py_type)
        if not _comparable(left.py_type, right.py_type):
            raise AttributeTypeError(f"Incomparable types in {left!r} {op} {right!r}")
        return ValueCompare(op, left, right)
    if right is not None and not _comparable(left.py_type, type(right)):
        raise AttributeTypeError(
            f"Incomparable types {_type_name(left.py_type)} and {type(right).__name__} in {left!r} {op} {right!r}"
        )
    if right is None and op not in ("==", "!="):
        raise AttributeTypeError(f"{left!r} {op} None: None is compared with == and != only (IS NULL)")
    return ValueCompare(op, left, Param(None) if right is None else left.bind(right))


_MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


class _Bound(Param):
    """A Python value already converted for the database."""

    __slots__ = ()

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        params.append(self.value)
        return dialect.param


def _type_name(py_type: Any) -> str:
    return getattr(py_type, "__name__", repr(py_type))


def operand_types_message(left_type: str, right_type: str, op: str, expression: str) -> str:
    """The message of arithmetic on operands of types it does not apply to (``str + int``)."""
    return (
        f"Unsupported operand types {left_type!r} and {right_type!r} for operation {op!r} "
        f"in expression: {expression}"
    )


def _operand_types_error(op: str, left: Value, right: Value, note: str = "") -> QueryError:
    """A QueryError for ``left <op> right`` naming both types and the expression.

    It keeps the types and the operator in ``operand_types``: a translated query words the
    error again with the expression as its source spells it (``s.name + 2``, not ``Student.name + 2``).
    """
    kinds = (_type_name(left.py_type), _type_name(right.py_type), op)
    error = noted(QueryError(operand_types_message(*kinds, f"{left!r} {op} {right!r}")), note)
    error.operand_types = kinds  # type: ignore[attr-defined]
    return error


def arithmetic(op: str, left: Any, right: Any) -> Value:
    """``left <op> right`` of numbers (``+`` of strings concatenates)."""
    left, right = value_of(left), value_of(right)
    lt, rt = left.py_type, right.py_type
    if op == "+" and (lt is str or rt is str):
        if lt is not str or rt is not str:
            raise _operand_types_error(op, left, right)
        return Func("concat", (left, right), str)
    if op in "+-" and (_is_date(lt) or _is_date(rt)):
        return _date_arithmetic(op, left, right)
    for py_type in (lt, rt):
        if not _is_numeric(py_type):
            raise _operand_types_error(op, left, right)
    if {lt, rt} == {Decimal, float}:
        note = "A Decimal and a float do not mix in arithmetic, as in Python: convert one with Decimal() or float()"
        raise _operand_types_error(op, left, right, note)
    if op == "/":
        floating = float if float in (lt, rt) or Decimal not in (lt, rt) else Decimal
        name = "div" if floating is Decimal or float in (lt, rt) else "int_div_true"
        return Func(name, (left, right), floating)
    if op == "**":  # a float, as the database's power() computes it
        return Func("pow", (left, right), float)
    if op == "//":
        if float in (lt, rt) or Decimal in (lt, rt):
            raise QueryError(
                f"Floor division (//) of non-integers is not supported in queries: {left!r} // {right!r}"
            )
        return Func("div", (left, right), int)
    result = float if float in (lt, rt) else Decimal if Decimal in (lt, rt) else int
    return Func(op, (left, right), result)


def _is_date(py_type: Any) -> bool:
    return isinstance(py_type, type) and issubclass(py_type, (date, timedelta))


def _date_arithmetic(op: str, left: Value, right: Value) -> Value:
    """A date or datetime moved by a timedelta, or the timedelta between two dates or datetimes."""
    lt, rt = left.py_type, right.py_type
    given = left, right  # as written, for the error
    if lt is timedelta and op == "+":
        left, right, lt, rt = right, left, rt, lt  # td + date is date + td
    if isinstance(lt, type) and issubclass(lt, date) and rt is timedelta and isinstance(right, Param):
        delta = right.value if op == "+" else -right.value
        of_date = lt is date
        return Func("date_add" if of_date else "datetime_add", (left, Interval(delta, of_date)), lt)
    if (
        op == "-"
        and lt in (date, datetime)
        and rt in (date, datetime)
        and (lt is rt or Param in (type(left), type(right)))
    ):
        kind = lt if not isinstance(left, Param) else rt
        return Func("date_diff" if kind is date else "datetime_diff", (left, right), timedelta)
    raise _operand_types_error(
        op, *given, "A query moves a date or datetime by a timedelta value, or subtracts two of them."
    )


class Interval(Value):
    """A timedelta added to a date (whole days) or a datetime, in the dialect's spelling."""

    __slots__ = ("of_date", "value")

    def __init__(self, value: timedelta, of_date: bool) -> None:
        self.value = value
        self.of_date = of_date
        self.py_type = timedelta

    def sql(self, dialect: Dialect, params: list[Any]) -> str:
        params.append(dialect.interval(self.value, self.of_date))
        return dialect.param


def function(name: str, *args: Any) -> Value:
    """The value of the ``FUNCTIONS`` row ``name`` applied to ``args``."""
    values = tuple(value_of(arg) for arg in args)
    result = FUNCTIONS[name][1]
    accepts = _ARGUMENT_TYPES.get(name)
    if (
        accepts is not None
        and values
        and not any(isinstance(values[0].py_type, type) and issubclass(values[0].py_type, t) for t in accepts)
    ):
        raise AttributeTypeError(
            f"{name}() takes a value of type {' or '.join(t.__name__ for t in accepts)}, "
            f"got {_type_name(values[0].py_type)}: {values[0]!r}"
        )
    if result is None:  # the type of the first argument
        result = values[0].py_type
    return Func(name, values, result)


def coalesce(*values: Any) -> Value:
    """The first of ``values`` that is not NULL."""
    if len(values) < 2:
        raise QueryError("coalesce() takes two or more values")
    return function("coalesce", *values)


def concat(*values: Any) -> Value:
    """The values as text, joined."""
    if not values:
        raise QueryError("concat() takes one or more values")
    texts = [v if value_of(v).py_type is str else function("text", v) for v in values]
    result = value_of(texts[0])
    for text in texts[1:]:
        result = Func("concat", (result, value_of(text)), str)
    return result


def least(*values: Any) -> Value:
    """The smallest of two or more values (``min(a, b)`` in a generator query)."""
    return function("least", *values)


def greatest(*values: Any) -> Value:
    """The largest of two or more values (``max(a, b)`` in a generator query)."""
    return function("greatest", *values)


#: the functions and operators of values: name -> (SQL template over the arguments' texts, or None
#: where each dialect spells it (``Dialect.function_sql``); the result's Python type, or None for
#: the first argument's). A template uses each argument once, in order (``{args}``: all of them).
FUNCTIONS: dict[str, tuple[str | None, Any]] = {
    "+": ("({0} + {1})", None),
    "-": ("({0} - {1})", None),
    "*": ("({0} * {1})", None),
    "%": (None, None),
    "pow": ("power({0}, {1})", float),
    "div": ("({0} / {1})", None),
    "int_div_true": (None, float),
    "neg": ("(-{0})", None),
    "abs": ("abs({0})", None),
    "concat": ("({0} || {1})", str),
    "text": ("CAST({0} AS TEXT)", str),
    "int": (None, int),
    "float": (None, float),
    "lower": (None, str),
    "upper": (None, str),
    "strip": (None, str),
    "strip_chars": (None, str),
    "lstrip": ("ltrim({0})", str),
    "lstrip_chars": ("ltrim({0}, {1})", str),
    "rstrip": ("rtrim({0})", str),
    "rstrip_chars": ("rtrim({0}, {1})", str),
    "len": (None, int),
    "substr": ("substr({0}, {1})", str),
    "substr_len": ("substr({0}, {1}, {2})", str),
    "coalesce": ("coalesce({args})", None),
    "least": (None, None),
    "greatest": (None, None),
    "year": (None, int),
    "month": (None, int),
    "day": (None, int),
    "hour": (None, int),
    "minute": (None, int),
    "second": (None, int),
    "date": (None, date),
    "random": ("random()", float),
    "date_add": (None, date),
    "datetime_add": (None, datetime),
    "date_diff": (None, timedelta),
    "datetime_diff": (None, timedelta),
}

_TEXT = (str,)
_ARGUMENT_TYPES: dict[str, tuple[type, ...]] = {
    "lower": _TEXT,
    "upper": _TEXT,
    "strip": _TEXT,
    "strip_chars": _TEXT,
    "lstrip": _TEXT,
    "lstrip_chars": _TEXT,
    "rstrip": _TEXT,
    "rstrip_chars": _TEXT,
    "len": _TEXT,
    "substr": _TEXT,
    "substr_len": _TEXT,
    "abs": _NUMERIC,
    "neg": _NUMERIC,
    "year": (date,),
    "month": (date,),
    "day": (date,),
    "hour": (datetime, time),
    "minute": (datetime, time),
    "second": (datetime, time),
    "date": (datetime,),
}

#: aggregates: name -> the result's Python type, or None for the argument's
AGGREGATES: dict[str, Any] = {
    "count": int,
    "sum": None,
    "min": None,
    "max": None,
    "avg": float,
    "group_concat": str,
}


def desc(item: Any) -> OrderBy:
    """Descending order by an attribute, a value or a 1-based position (``desc(desc(a))`` is ascending)."""
    if isinstance(item, OrderBy):
        return OrderBy(item.attr, descending=not item.descending)
    if type(item) is int and item > 0:
        return OrderBy(item, descending=True)
    if isinstance(item, (Value, ColumnRef)) or (isinstance(item, Operand) and hasattr(item, "column")):
        return OrderBy(item, descending=True)
    raise QueryError(f"desc() takes an entity attribute, a value or a position from 1, got {item!r}")
