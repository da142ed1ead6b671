"""Pony's query syntax (generators, lambdas and strings) translated into attribute expressions.

``select(p for p in Person if p.age > x)``, ``Person.select(lambda p: p.age > x)`` and
``select("p for p in Person if p.age > x")`` are read from the syntax tree of their source,
found through the code object's positions (``co_positions()``), never from bytecode, so the
translation does not depend on the Python version. The condition is rewritten into the
attribute-expression form (``Person.age > x``) and compiled once per code object into a
function whose arguments are the query's entity and the names it reads from its enclosing scope.
Running a query again only calls that function: every name becomes a bound parameter when the
expression API validates it, and choices that depend on a value's type (``in`` over a list or
a string, an entity compared by key) are made there, so one translation serves every type.

Constructs the expression layer does not offer yet raise ``TranslationError`` naming the
construct and its line; nothing is guessed.
"""

from __future__ import annotations

import ast
import builtins
import copy
import dis
import functools
import inspect
import itertools
import linecache
import operator
import re
import sys
import textwrap
import types
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload
from uuid import UUID

from ._impl import Column as _AttributeBase
from .exceptions import (
    AttributeTypeError,
    ExprEvalError,
    IncomparableTypesError,
    OrmError,
    QueryAttributeError,
    QueryError,
    QueryNameError,
    TranslationError,
    UnknownAttributeError,
    UnsupportedQueryError,
    noted,
)
from .expressions import (
    Aggregate,
    Column,
    ColumnRef,
    ConditionValue,
    Expr,
    JsonPath,
    Nested,
    Operand,
    OrderBy,
    Param,
    Path,
    RawSQL,
    StringTest,
    Truth,
    Truthy,
    Value,
    Var,
    case,
    check_entities,
    coalesce,
    comparable_types,
    compare,
    concat,
    desc,
    expression_for,
    function,
    greatest,
    is_numeric_type,
    least,
    operand_types_message,
    raw_sql_parts,
    value_of,
)
from .sql import (
    Comparison,
    Exists,
    InQuery,
    InSubquery,
    Key,
    KeyIsNull,
    KeysEqual,
    MemberOf,
    Select,
    Subquery,
    key_columns,
    reference_columns,
)
from .types import COLUMN_TYPES

if TYPE_CHECKING:
    from .query import Query

#: what a generator query yields: the entity class it selects
_T = TypeVar("_T")

__all__ = [
    "JOIN",
    "avg",
    "between",
    "conditions_from",
    "count",
    "delete",
    "distinct",
    "exists",
    "get",
    "group_concat",
    "left_join",
    "max",
    "min",
    "order_from",
    "select",
    "sum",
    "use_query_classes",
]


# -- public query functions ----------------------------------------------------------------------


@overload
def select(query: str) -> Query[Any]: ...
@overload
def select(query: Iterable[_T]) -> Query[_T]: ...
def select(query: Any) -> Any:
    """The query of a generator (``p for p in Person if ...``) or of the same text as a string."""
    return _query_of(query, "select")


@overload
def get(query: str) -> Any: ...
@overload
def get(query: Iterable[_T]) -> _T | None: ...
def get(query: Any) -> Any:
    """The one object a generator query selects, or None; MultipleObjectsFoundError when several."""
    return _query_of(query, "get").get()


def left_join(query: Any) -> Any:
    """``select()`` of a generator whose other ``for`` clauses need not match a row.

    The query selects objects of one ``for``, so an object is selected once, whether the other
    ``for`` clauses match one row, several or (with ``left_join``) none at all.
    """
    return _query_of(query, "left_join")


def exists(query: Any) -> bool:
    """Whether a generator query selects any object."""
    return bool(_query_of(query, "exists").exists())


def JOIN(condition: Any) -> Any:
    """Pony's hint to join rather than nest a query; nextorm chooses itself, so it is the condition."""
    return condition


def count(*args: Any, **kwargs: Any) -> Any:
    """The number of objects a generator query (or its text) selects.

    Called with anything else it is ``itertools.count``, which a star import of nextorm would
    otherwise hide (as Pony's ``count`` does).
    """
    if len(args) == 1 and _is_query_generator(args[0], members=True):
        return int(_query_of(args[0], "count").count(**kwargs))
    return itertools.count(*args, **kwargs)


def _is_query_generator(value: Any, members: bool = False) -> bool:
    """Whether ``value`` is a generator expression over an entity or a query (not over a list);
    ``members``: or over an object's collection (``g.students``), which Python's sum(), min()
    and max() keep reading as the loaded members."""
    if isinstance(value, str):
        return True
    if not isinstance(value, types.GeneratorType) or value.gi_frame is None:
        return False
    source = value.gi_frame.f_locals.get(".0")
    if not members and getattr(source, "reads_loaded_members", False):
        return False
    return hasattr(source, "query")


def sum(*args: Any, **kwargs: Any) -> Any:
    """The sum of the values a generator query selects (0 when none); else Python's ``sum``."""
    if len(args) == 1 and _is_query_generator(args[0]):
        return _query_of(args[0], "sum").sum(**kwargs)
    return builtins.sum(*args, **kwargs)


def min(*args: Any, **kwargs: Any) -> Any:
    """The smallest value a generator query selects (None when none); else Python's ``min``."""
    if len(args) == 1 and _is_query_generator(args[0]):
        return _query_of(args[0], "min").min(**kwargs)
    return builtins.min(*args, **kwargs)


def max(*args: Any, **kwargs: Any) -> Any:
    """The largest value a generator query selects (None when none); else Python's ``max``."""
    if len(args) == 1 and _is_query_generator(args[0]):
        return _query_of(args[0], "max").max(**kwargs)
    return builtins.max(*args, **kwargs)


def avg(query: Any, distinct: bool | None = None) -> Any:
    """The average of the values a generator query selects (None when none)."""
    return _query_of(query, "avg").avg(distinct=distinct)


def group_concat(query: Any, sep: str | None = None, distinct: bool | None = None) -> Any:
    """The texts of the values a generator query selects joined by ``sep`` (a comma by default)."""
    return _query_of(query, "group_concat").group_concat(sep=sep, distinct=distinct)


def distinct(query: Any) -> Any:
    """The query of a generator with duplicate rows removed."""
    return _query_of(query, "distinct").distinct()


def delete(query: Any, bulk: bool = False) -> int:
    """Delete the objects a generator query selects (see ``Query.delete``); returns how many."""
    return int(_query_of(query, "delete").delete(bulk=bulk))


def between(value: Any, low: Any, high: Any) -> Any:
    """``low <= value <= high``: a condition for an attribute (inside or outside a query), else a bool."""
    if hasattr(value, "in_"):  # an entity attribute: build the condition
        return (value >= low) & (value <= high)
    return bool(low <= value <= high)


# -- entry points for Entity.select / Query.filter / Query.order_by ------------------------------


def conditions_from(
    entity: Any, query: Any, var: str | None = None, selected: str | None = None
) -> tuple[Any, ...]:
    """The conditions of a lambda (``lambda p: p.age > 18``) or string over ``entity``'s objects.

    ``var`` names the entity in a lambda without parameters or a bare string condition
    (``q.filter("p.age > 18")`` on a query written as ``p for p in Person``). ``selected`` is the
    source of what a query of values selects (``p.name, p.age``): a lambda taking one parameter
    per selected item (``lambda name, age: age > 18``) reads those items.
    """
    translation, params = _prepare(entity, query, var, order=False, selected=selected)
    return _finish_conditions(entity, translation, translation.run(entity, params))


def order_from(
    entity: Any, query: Any, var: str | None = None, selected: str | None = None
) -> tuple[Any, ...]:
    """The ORDER BY items of a lambda (``lambda p: (p.name, desc(p.age))``) or string; ``selected``
    as for ``conditions_from`` (``lambda name, age: desc(age)`` on a query of tuples)."""
    translation, params = _prepare(entity, query, var, order=True, selected=selected)
    return tuple(translation.run(entity, params))


def repeated_lambda(entity: Any, condition: Any) -> tuple[Any, ...] | None:
    """The conditions of a lambda over ``entity``'s objects translated before, from the values
    it reads and checked to be about ``entity``; None when it is not one (or the general way reads
    its values)."""
    if type(condition) is not types.FunctionType:
        return None
    code = condition.__code__
    hit = _recent.get(id(code))
    if hit is None or hit[0] is not code or hit[1] is not entity or hit[2] is not _PLAIN_CONDITION:
        return None
    translation = hit[3]
    cells = translation.cells
    if cells is None:
        return None  # a raw_sql() `$name` the lambda's code does not read itself
    try:
        if not cells:
            values: tuple[Any, ...] = ()
        elif len(cells) == 1:
            values = (condition.__closure__[cells[0]].cell_contents,)  # type: ignore[index]
        else:
            closure = cast(tuple[Any, ...], condition.__closure__)  # it holds the cells when there are some
            values = tuple(map(_cell_contents, map(closure.__getitem__, cells)))
    except ValueError:
        return None  # a name not assigned yet: the general way says so
    conditions = _finish_conditions(
        entity, translation, translation.bound(entity, condition.__globals__, values)
    )
    if translation.checked is not entity or (
        values and (len(values) > 1 or type(values[0]) not in _PLAIN_TYPES)
    ):
        translation.check_entities(entity, values, conditions)  # (else: checked before, nothing to do)
    return conditions


#: the key of a lambda's translation as conditions over an entity's own objects (this very tuple)
_PLAIN_CONDITION = ("cond", None, None)
_cell_contents = operator.attrgetter("cell_contents")


def lambda_var(conditions: tuple[Any, ...]) -> str | None:
    """The parameter name of the first one-parameter lambda among ``conditions`` (``p`` in ``lambda p: ...``)."""
    for condition in conditions:
        if isinstance(condition, str):
            # the text of a lambda: Person.select("lambda p: p.age > x")
            match = _LAMBDA_TEXT.match(condition)
            if match is not None:
                return match.group(1)
        elif is_query_text(condition) and condition.__code__.co_argcount == 1:
            return str(condition.__code__.co_varnames[0])
    return None


_LAMBDA_TEXT = re.compile(r"\s*lambda\s+([^\W\d]\w*)\s*:")


def is_query_text(value: Any) -> bool:
    """Whether ``value`` is a lambda or a string that a query method translates."""
    return isinstance(value, str) or (
        isinstance(value, types.FunctionType) and value.__code__.co_name == "<lambda>"
    )


# -- the translation -----------------------------------------------------------------------------


class _Marker:
    """A condition known without the database: always true or always false."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<always {self.value}>"


_TRUE, _FALSE = _Marker(True), _Marker(False)
#: the ids of the two markers: whether a translation's results hold one, checked without a Python loop
_MARKER_IDS = frozenset({id(_TRUE), id(_FALSE)})


def _fold(items: tuple[Any, ...], absorbing: Any, neutral: Any, combine: Any) -> Any:
    """``items`` combined with ``combine``: ``absorbing`` if any item is, ``neutral`` items left out."""
    kept = []
    for item in items:
        if item is absorbing:
            return absorbing
        if item is not neutral:
            kept.append(item)
    if not kept:
        return neutral
    return functools.reduce(combine, kept)


class _Runtime:
    """The helpers a translated query calls (its ``__nx`` argument)."""

    TRUE, FALSE = _TRUE, _FALSE

    @staticmethod
    def and_(*items: Any) -> Any:
        """The conjunction of conditions, folding conditions known in advance."""
        if len(items) == 2:
            first, second = items
            if type(first) is not _Marker and type(second) is not _Marker:
                return first & second
        return _fold(items, _FALSE, _TRUE, operator.and_)

    @staticmethod
    def or_(*items: Any) -> Any:
        """The disjunction of conditions, folding conditions known in advance."""
        if len(items) == 2:
            first, second = items
            if type(first) is not _Marker and type(second) is not _Marker:
                return first | second
        return _fold(items, _TRUE, _FALSE, operator.or_)

    @staticmethod
    def not_(item: Any) -> Any:
        """The negation of a condition."""
        if isinstance(item, _Marker):
            return _FALSE if item.value else _TRUE
        return ~item

    @staticmethod
    def in_(column: Any, values: Any, negate: bool, where: str) -> Any:
        """``column in values`` over a collection of values."""
        if isinstance(values, str) and _is_text(column):
            condition = StringTest("contains", Param(values), column)  # `p.name in "text"`
            return _Runtime.not_(condition) if negate else condition
        if isinstance(values, (str, bytes)):
            raise TranslationError(f"`in` over a string value is not supported in queries: {where}")
        if hasattr(values, "entity") and hasattr(values, "statement"):
            condition = _in_query(_operand(column), values, where)
            return _Runtime.not_(condition) if negate else condition
        return column.not_in(values) if negate else column.in_(values)

    @staticmethod
    def construct(function: Any, where: str, *args: Any, **keywords: Any) -> Any:
        """``date(...)``, ``datetime(...)`` or ``bytes(...)`` of values of the scope: arguments that
        do not fit raise a QueryError (a TypeError) naming the argument, not an ExprEvalError."""
        try:
            return function(*args, **keywords)
        except TypeError as exc:
            if function is date or function is datetime:
                names = _DATE_ARGUMENTS[: 3 if function is date else 7]
                given = {**dict(zip(names, args)), **keywords}
                wrong = next(
                    (name for name in names if name in given and (type(given[name]) is not int)), None
                )
                if wrong is not None:
                    signature = "date(year, month, day)" if function is date else "datetime(...)"
                    raise noted(
                        QueryError(
                            f"{wrong!r} argument of {signature} function must be of 'int' type. "
                            f"Got: {type(given[wrong]).__name__!r}"
                        ),
                        f"TypeError: {exc}: {where}",
                    ) from exc
            elif function is bytes:
                raise noted(QueryError(str(exc)), f"TypeError: {exc}: {where}") from exc
            raise

    @staticmethod
    def contains(column: Any, part: Any, negate: bool) -> Any:
        """``part in column`` for a string column."""
        condition = column.contains(part)
        return ~condition if negate else condition

    @staticmethod
    def known(value: Any) -> Any:
        """A condition from the enclosing scope: a condition object, or a Python truth value."""
        if isinstance(value, Expr):
            return value
        if isinstance(value, RawSQL):
            return value.as_condition()
        return _TRUE if value else _FALSE

    @staticmethod
    def item(value: Any, where: str) -> Any:
        """A selected value."""
        if isinstance(value, Value) or type(value) is Var:  # a value, or an object of another `for`
            return value
        if isinstance(value, _AttributeBase):  # an attribute of the query's object: its column
            hit = _fixed.get((id(value),))
            if hit is None:
                hit = _fix((id(value),), value, cast(Any, value)._value_())
            return hit[-1]
        value = _value_operand(value)  # count(p.posts), sum(p.orders.total): a nested query's value
        if type(value) is _Many and value.value_condition is None:
            return value  # a collection (s.groups, g.students.name): its members, flattened
        if isinstance(value, Operand):
            return value._value_()
        if isinstance(value, Expr):  # a condition: True or False of each row
            return ConditionValue(value)
        raise TranslationError(f"Selecting {value!r} is not supported in queries: {where}")

    @staticmethod
    def case(condition: Any, then: Any, otherwise: Any, where: str) -> Any:
        """``then if condition else otherwise``: the branch itself where the condition is known."""
        if isinstance(condition, _Marker):
            return then if condition.value else otherwise
        values = []
        for branch in (then, otherwise):
            value = _value_operand(branch)
            if not isinstance(value, Operand) and (
                _is_object(value) or _is_entity(value) or type(value) in (_Many, Var)
            ):
                raise TranslationError(
                    f"A conditional expression selects values, not objects or collections: {where}"
                )
            values.append(value)
        try:
            return case(condition, *values)
        except AttributeTypeError as exc:
            raise noted(exc, f"in {where}") from None

    @staticmethod
    def scope_item(value: Any, name: str) -> Any:
        """A name of the enclosing scope selected by itself: refused (a query selects what it reads)."""
        raise TranslationError(f"External parameter {name!r} cannot be used as query result")

    @staticmethod
    def arith(op: str, left: Any, right: Any, expression: str, where: str) -> Any:
        """``left <op> right``; an error on the operands' types names the expression as written."""
        try:
            return _BINARY[op](left, right)
        except QueryError as error:
            kinds: tuple[str, str, str] | None = getattr(error, "operand_types", None)
            if kinds is None:
                raise
            raise noted(
                QueryError(operand_types_message(*kinds, expression)), *getattr(error, "__notes__", ()), where
            ) from None

    @staticmethod
    def neg(value: Any) -> Any:
        """``-value``."""
        return function("neg", value)

    @staticmethod
    def fstring(*parts: Any) -> Any:
        """An f-string of values: their texts joined."""
        return concat(*[part for part in parts if not (isinstance(part, str) and not part)])

    @staticmethod
    def raw(parts: tuple[str, ...], values: tuple[Any, ...], result_type: Any = None) -> Any:
        """A raw SQL fragment with its ``$`` values."""
        return RawSQL(parts, tuple(value_of(v) if isinstance(v, Operand) else v for v in values), result_type)

    @staticmethod
    def raw_text(text: Any, result_type: Any = None) -> Any:
        """A raw SQL fragment whose text is a value of the query's scope; its $names are read from
        the code that runs the query."""
        if isinstance(text, RawSQL):
            return text
        frame = sys._getframe(1)
        while frame.f_back is not None and (
            (frame.f_code.co_name == "<lambda>" and "__nx" in frame.f_code.co_varnames)
            or frame.f_globals.get("__name__", "").partition(".")[0] == "nextorm"
        ):
            frame = frame.f_back  # the translated function, then nextorm's own frames
        try:
            parts, sources = raw_sql_parts(text)
            values = tuple(eval(source, frame.f_globals, frame.f_locals) for source in sources)
        except (QueryError, TypeError) as exc:
            raise TranslationError(f"raw_sql() takes SQL text, got {text!r}: {exc}") from None
        return RawSQL(parts, values, result_type)

    @staticmethod
    def desc(value: Any) -> Any:
        """Descending order by a value."""
        value = _value_operand(value)
        return OrderBy(value, descending=True) if not isinstance(value, OrderBy) else desc(value)

    @staticmethod
    def order(value: Any) -> Any:
        """Ascending order by a value."""
        value = _value_operand(value)
        if isinstance(value, (OrderBy, Operand)):
            return value
        raise QueryError(f"order_by() takes values of the query's objects, got {value!r}")

    @staticmethod
    def same(entity: Any, value: Any, negate: bool, where: str) -> Any:
        """The query's object compared with an object (by primary key)."""
        if value is None:
            return _TRUE if negate else _FALSE
        condition = _key_equals(entity, _Runtime._object(entity, value, where))
        return _Runtime.not_(condition) if negate else condition

    @staticmethod
    def same_in(entity: Any, values: Any, negate: bool, where: str) -> Any:
        """The query's object is one of the given objects (compared by primary key)."""
        if hasattr(values, "entity") and hasattr(values, "statement"):
            condition = _in_query(entity, values, where)
            return _Runtime.not_(condition) if negate else condition
        keys = entity._pk_attrs_
        if len(keys) != 1:  # a composite key: one of the objects' key values
            condition = _Runtime.or_(
                *(_key_equals(entity, _Runtime._member(entity, v, where)) for v in values)
            )
            return _Runtime.not_(condition) if negate else condition
        pks = []
        for value in values:
            if not isinstance(value, entity):
                value = _Runtime._member(entity, value, where)
            pks.append(value.get_pk())
        return keys[0].not_in(pks) if negate else keys[0].in_(pks)

    @staticmethod
    def row_in(items: tuple[Any, ...], rows: Any, negate: bool, where: str) -> Any:
        """``(a, b) in rows``: a tuple of values among tuples from the enclosing scope, or from a nested generator."""
        condition = _member(items, rows, where)
        return _Runtime.not_(condition) if negate else condition

    @staticmethod
    def _member(entity: Any, value: Any, where: str) -> Any:
        """A value of the objects ``p in values`` compares with, as an object of ``entity``."""
        if value is None:
            text = _split_where(where)[0]
            try:
                named = ast.unparse(cast(ast.Compare, ast.parse(text, mode="eval").body).comparators[0])
            except (SyntaxError, AttributeError, IndexError):
                named = text
            raise noted(
                TranslationError(f"Expression `{named}` should not contain None values"),
                f"An object of {entity.__name__} is never None: {where}",
            )
        return _Runtime._object(entity, value, where)

    @staticmethod
    def _object(entity: Any, value: Any, where: str) -> Any:
        """``value`` as an object of ``entity``: itself, or the object a proxy stands for."""
        if isinstance(value, entity):
            return value
        proxied = getattr(value, "_get_object", None)
        if proxied is None:
            raise TranslationError(
                f"An object of {entity.__name__} can only be compared with a {entity.__name__} "
                f"object, got {value!r}: {where}"
            )
        return proxied()

    @staticmethod
    def length(value: Any, where: str) -> Any:
        """``len(p.tags)``: the length the database computes of a Json array or an array."""
        length = getattr(value, "length", None)
        if length is None:
            raise TranslationError(f"len() of this value is not supported in queries yet: {where}")
        return length()

    @staticmethod
    def is_instance(entity: Any, classes: Any, where: str) -> Any:
        """``isinstance(p, Student)``: a test of the discriminator column of p's hierarchy."""
        classes = classes if isinstance(classes, tuple) else (classes,)
        model: Any = entity  # an entity class: its hierarchy attributes are set by its metaclass
        if not isinstance(entity, type) or not all(isinstance(c, type) for c in classes):
            raise TranslationError(f"isinstance() takes the query's object and entity classes: {where}")
        if any(issubclass(entity, cls) for cls in classes):
            return _TRUE
        codes = [
            kind._discriminator_
            for cls in classes
            if getattr(cls, "_root_", None) is model._root_
            for kind in (cls, *cls._subclasses_)
        ]
        if not codes:
            return _FALSE
        return model._discriminator_attr_.in_(list(dict.fromkeys(codes)))

    @staticmethod
    def call(function: Any, where: str, *args: Any, **keywords: Any) -> Any:
        """A call of a function with values, collections or nested queries of the query's objects."""
        if len(args) == 1 and not keywords and isinstance(args[0], (type, _AttributeBase)):
            # count(p), max(p.name), len(p.name): the same value for the same function and object
            key = (id(function), id(args[0]))
            hit = _fixed.get(key)
            if hit is None:
                hit = _fix(key, function, args[0], _Runtime._call(function, where, *args))
            return hit[-1]
        return _Runtime._call(function, where, *args, **keywords)

    @staticmethod
    def _call(function: Any, where: str, *args: Any, **keywords: Any) -> Any:
        if function is isinstance and len(args) == 2 and not keywords:
            return _Runtime.is_instance(*args, where)
        name = getattr(function, "__name__", None)
        if name in _COLLECTION_FUNCTIONS and len(args) == 1 and type(args[0]) is _Many and not keywords:
            return _COLLECTION_FUNCTIONS[name](args[0], where)
        if function is group_concat and args and type(args[0]) is _Many:
            return _group_concat_of(where, *args, **keywords)
        if function in _QUERY_FUNCTIONS and not keywords:
            return function(*[_value_operand(arg) for arg in args])
        return _value_call(function, where, *[_value_operand(arg) for arg in args], **keywords)

    # -- paths, objects of several tables, collections and nested queries

    @staticmethod
    def getattr(base: Any, name: Any, text: str, where: str) -> Any:
        """``getattr(p, name)`` with the name the enclosing scope gives when the query runs."""
        if not isinstance(name, str):
            raise TranslationError(f"In `{text}` second argument should be a string. Got: {name!r}")
        if getattr(base, "is_reference", False) and not _is_object(base):
            # a reference attribute of the query's own object (getattr(c.owner, name))
            return _path(base.entity, (base.name, name), where)
        return _path(base, (name,), where)

    @staticmethod
    def path(base: Any, where: str, *names: str) -> Any:
        """``base.a.b...`` read through references and collections: a column, an object or a collection."""
        return _path(base, names, where)

    @staticmethod
    def compare(left: Any, op: str, right: Any, where: str) -> Any:
        """``left <op> right`` where either side reads the query's objects."""
        try:
            return _compare(left, op, right, where)
        except IncomparableTypesError:
            raise
        except AttributeTypeError as exc:
            incomparable = _incomparable(_type_of(left), _type_of(right), where, exc)
            if incomparable is None:
                raise
            raise incomparable from exc

    @staticmethod
    def member(item: Any, values: Any, negate: bool, where: str) -> Any:
        """``item in values`` where either side reads the query's objects."""
        condition = _member(item, values, where)
        return _Runtime.not_(condition) if negate else condition

    @staticmethod
    def truth(value: Any, where: str) -> Any:
        """The truth value of an operand, as Python would test it."""
        if isinstance(value, Expr):
            return value  # a condition already (the most frequent)
        return _truth(value, where)

    @staticmethod
    def gen(where: str, iters: tuple[Any, ...], conditions: Any, elt: Any, elt_condition: Any) -> _Many:
        """A nested generator: objects of other tables, the conditions on them and what it yields."""
        sources: list[Any] = []
        variables: list[Var] = []
        conds: list[Any] = []
        exact = len(iters) == 1
        for make in iters:
            source = make(*sources)
            if _is_entity(source):
                var = Var(source)
                variables.append(var)
            elif type(source) is _Many and type(source.value) is Var:
                variables += source.variables
                conds += source.conditions
                var = source.value
                exact = exact and source.exact
            elif hasattr(source, "entity") and hasattr(source, "filter") and not source._where:
                var = Var(source.entity)
                variables.append(var)
            else:
                raise TranslationError(
                    f"A nested `for` iterates over an entity, a collection or a query without "
                    f"conditions, got {source!r}: {where}"
                )
            sources.append(var)
        conds += conditions(*sources)
        value = elt(*sources)
        value_condition = None
        if elt_condition is not None:
            try:
                value_condition = elt_condition(*sources)
            except TranslationError:  # a value with no truth value (an aggregate): not for exists()
                value_condition = None
        return _Many(tuple(variables), tuple(conds), value, value_condition, exact)

    @staticmethod
    def join(
        where: str,
        root: Any,
        iters: tuple[Any, ...],
        conditions: Any,
        optional: bool,
        loops: tuple[str, ...] = (),
        select: Any = None,
    ) -> Any:
        """Several ``for`` clauses selecting ``root``'s objects: the others are an EXISTS query.

        ``loops`` holds the source text of each ``for`` clause (``for g in Group``), for errors.
        Selecting values (``select``), the others are tables the query itself ranges over: the
        result is a ``_Joined`` of them, the condition linking them and the selected items.
        """
        sources: list[Any] = []
        variables: list[Var] = []
        conds: list[Any] = []
        #: selecting values with left_join: the condition joining each other object to the earlier ones
        joined_on: list[Any] = []
        left = optional and select is not None
        for index, make in enumerate(iters):
            source = make(*sources)
            if source is None:  # the root's own `for`
                sources.append(root)
                continue
            loop = loops[index] if index < len(loops) else where
            if _is_entity(source):
                if source._database_ is not _entity_of(root)._database_:
                    raise TranslationError("All entities in a query must belong to the same database")
                if left:
                    raise noted(
                        TranslationError(f"Collection expected inside left join query. Got: {loop}"),
                        f"left_join() joins the collections of the first `for`'s objects: {where}",
                    )
                var: Any = Var(source)
                variables.append(var)
            elif type(source) is _Many and (type(source.value) is Var or source.value is root):
                if left:
                    if len(source.variables) != 1:
                        raise UnsupportedQueryError(
                            f"left_join() of values over a `for` through several collections is not "
                            f"supported yet: {loop}"
                        )
                    joined_on.append(_Runtime.and_(*source.conditions))
                else:
                    conds += source.conditions
                variables += source.variables
                var = source.value
            else:
                if isinstance(source, (Operand, Expr)):  # a value of the query's objects (`for x in s.name`)
                    raise noted(
                        UnsupportedQueryError(loop),
                        f"A `for` of a query iterates over an entity or a collection, not over a value: {where}",
                    )
                raise noted(
                    TranslationError(
                        f"Inside declarative query, iterator must be entity or query. Got: {loop}"
                    ),
                    f"A `for` of a query iterates over an entity or a collection, got {source!r}: {where}",
                )
            sources.append(var)
        others = conditions(*sources)
        condition = _Runtime.and_(*conds, *others)
        if select is not None:
            return _Joined(tuple(variables), condition, tuple(select(*sources)), tuple(joined_on))
        if not variables:
            return condition
        if optional and not others:
            # left_join: the other `for` clauses need not match a row (a condition on them would)
            return _TRUE
        return Exists(_Many(tuple(variables), (condition,), None).query())

    @staticmethod
    def root_of(first: Any, where: str, *names: str) -> Any:
        """The entity of the selected ``for`` clause when it iterates a collection of the first one."""
        entity = first
        for name in names:
            attr = _attribute(entity, name, where)
            if not (attr.is_collection or attr.is_reference):
                raise TranslationError(f"A `for` iterates over a collection, not {attr.qualname}: {where}")
            entity = attr.py_type
        return entity

    @staticmethod
    def collection_of(base: Any, root: Any, where: str, *names: str) -> Any:
        """The root's own ``for`` over a collection (``for s in g.students`` selecting s)."""
        owner = _path(base, names[:-1], where) if len(names) > 1 else base
        through = None
        if type(owner) is _Many:  # `for s in d.groups.students`: the members of each group
            through, owner = owner, owner.value
        attr = _attribute(_entity_of(owner), names[-1], where)
        if not attr.is_collection:
            raise TranslationError(f"A `for` iterates over a collection, not {attr.qualname}: {where}")
        members = _collection(owner, attr, root)
        if through is None:
            return members
        return _Many(
            through.variables + members.variables, through.conditions + members.conditions, members.value
        )

    @staticmethod
    def method(many: Any, name: str, where: str, *conditions: Any, distinct: Any = None) -> Any:
        """A collection's method in a query: ``is_empty()``, ``exists()``, ``count()``, ``select()``..."""
        if type(many) is not _Many or (conditions and type(many.value) is not Var):
            raise TranslationError(f"{name}() in a query is a method of a collection of objects: {where}")
        if conditions:
            extra = tuple(condition(many.value) for condition in conditions)
            many = _Many(many.variables, many.conditions + extra, many.value, None, many.exact)
        result = _COLLECTION_METHODS[name](many, where)
        if distinct is not None:
            if type(result) is not Subquery or type(distinct) is not bool:
                raise TranslationError(
                    f"{name}() in a query takes distinct=True or False only as an aggregate: {where}"
                )
            result.distinct = distinct
        return result

    # -- methods, properties and functions inlined from their source

    @staticmethod
    def const(key: int) -> Any:
        """A value an inlined method or function reads (itself, its class, a default value)."""
        return _inlined_values[key]

    @staticmethod
    def outer(function: Any, name: str) -> Any:
        """A name an inlined method or function reads from where it was defined, when the query runs."""
        code = function.__code__
        if name in code.co_freevars and function.__closure__:
            cell = function.__closure__[code.co_freevars.index(name)]
            if _has_contents(cell):
                return cell.cell_contents
        scope = function.__globals__
        if name in scope:
            return scope[name]
        builtins_ = scope.get("__builtins__", builtins)
        builtins_ = builtins_ if isinstance(builtins_, dict) else vars(builtins_)
        if name in builtins_:
            return builtins_[name]
        raise ExprEvalError(f"The name {name!r} is not defined where {function.__qualname__}() was defined")

    @staticmethod
    def inlined(function: Any, code: Any, name: str) -> Any:
        """The function a query inlined, checked to be the one it was translated with."""
        if getattr(function, "__code__", None) is not code:
            raise TranslationError(
                f"The query inlined the function {name}() when it was first translated, and the name "
                f"{name} is now {function!r}: a query calls one function at each place"
            )
        return function


_QUERY_FUNCTIONS: set[Any] = {between, JOIN}


class _Joined:
    """Several ``for`` clauses selecting values: the other objects, their condition and the items."""

    __slots__ = ("condition", "joined_on", "selection", "variables")

    def __init__(
        self,
        variables: tuple[Var, ...],
        condition: Any,
        selection: tuple[Any, ...],
        joined_on: tuple[Any, ...] = (),
    ) -> None:
        self.variables = variables
        self.condition = condition
        self.selection = selection
        #: of left_join: the condition joining each object of ``variables`` (a LEFT JOIN's ON)
        self.joined_on = joined_on


class _Many:
    """Several values per row of the query: a collection path or a nested generator.

    ``variables`` are the objects it ranges over, ``conditions`` link them to the query,
    ``value`` is what it yields and ``value_condition`` its truth value (for ``exists``).
    """

    __slots__ = ("conditions", "exact", "one_owner", "value", "value_condition", "variables")

    def __init__(
        self,
        variables: tuple[Var, ...],
        conditions: tuple[Any, ...],
        value: Any,
        value_condition: Any = None,
        exact: bool = True,
    ) -> None:
        self.variables = variables
        self.conditions = conditions
        self.value = value
        self.value_condition = value_condition
        #: whether each object it yields appears once (COUNT(*) counts them)
        self.exact = exact
        #: of a collection: whether each member has one owner (a one-to-many collection)
        self.one_owner = False

    def query(self, extra: tuple[Any, ...] = (), value: Any = None, aggregate: str | None = None) -> Subquery:
        condition = _Runtime.and_(*self.conditions, *extra)
        if condition is _FALSE:
            condition = Comparison(1, "==", 0)
        return Subquery(self.variables, () if condition is _TRUE else (condition,), value, aggregate)


#: the values a query builds from an entity or an attribute alone (``count(p)``, ``len(p.name)``,
#: a selected ``p.name``), by the ids of the function and the entity or attribute: those objects,
#: then the value (kept, the ids stay theirs). Values are never changed once built: queries share them.
_fixed: dict[tuple[int, ...], tuple[Any, ...]] = {}


def _fix(key: tuple[int, ...], *objects_and_value: Any) -> tuple[Any, ...]:
    if len(_fixed) >= _CACHE_SIZE:
        _fixed.clear()
    _fixed[key] = objects_and_value
    return objects_and_value


def _split_where(where: str) -> tuple[str, str]:
    """The construct's source text and its location, from a ``where`` of ``_Rewriter._at``."""
    if where.startswith("`"):
        for separator in ("` at line ", "` in "):
            end = where.rfind(separator)
            if end > 0:
                return where[1:end], where[end + 2 :]
    return where, ""


def _argument_text(where: str, index: int) -> str:
    """The source text of the ``index``-th argument of the call a ``where`` names (else the call's)."""
    text = _split_where(where)[0]
    try:
        return ast.unparse(cast(ast.Call, ast.parse(text, mode="eval").body).args[index])
    except (SyntaxError, AttributeError, IndexError):
        return text


def _is_entity(value: Any) -> bool:
    return isinstance(value, type) and hasattr(value, "_attrs_by_name_")


def _entity_of(obj: Any) -> Any:
    """The entity of an object operand: the query's entity (a class), a Var or a Path."""
    if type(obj) is Var:
        return obj.entity
    if type(obj) is Path:
        return obj.attr.py_type
    return obj


def _source_of(obj: Any) -> Any:
    return None if _is_entity(obj) else obj


def _is_object(value: Any) -> bool:
    return type(value) is Var or type(value) is Path or _is_entity(value)


def _attribute(entity: Any, name: str, where: str) -> Any:
    attr = entity._attrs_by_name_.get(name)
    if attr is None:
        attr = entity._relations_by_name_.get(name)
    if attr is None:
        raise noted(
            UnknownAttributeError(
                f"Entity {entity.__name__} does not have attribute {name}: {_split_where(where)[0]}"
            ),
            f"Entity {entity.__name__} has no attribute {name!r}: {where}",
        )
    return attr


def _pk_ref(obj: Any, where: str) -> ColumnRef:
    """The primary-key column of an object operand."""
    if type(obj) is Path and obj.attr.is_column:
        return ColumnRef(obj.base, obj.attr)  # the reference column holds the key: no join
    entity = _entity_of(obj)
    keys = entity._pk_attrs_
    if len(keys) != 1:
        raise TranslationError(
            f"Comparing objects of {entity.__name__}, whose primary key has several columns, "
            f"is not supported in queries yet: {where}"
        )
    return ColumnRef(_source_of(obj), keys[0])


def _key_of(obj: Any) -> Key:
    """The key columns of an object operand, or of the object a reference column holds."""
    if type(obj) is ColumnRef:
        return Key(obj.source, reference_columns(obj.attr))
    if type(obj) is Path and obj.attr.is_column:
        return Key(obj.base, reference_columns(obj.attr))  # the reference column holds the key: no join
    return Key(_source_of(obj), key_columns(_entity_of(obj)))


def _path(base: Any, names: tuple[str, ...], where: str) -> Any:
    source = _source_of(base)
    entity = _entity_of(base)
    if type(base) is Path:
        source = base
    for i, name in enumerate(names):
        attr = _attribute(entity, name, where)
        last = i == len(names) - 1
        if attr.is_collection:
            owner = source if source is not None else entity
            many = _collection(owner, attr, None)
            if last:
                return many
            member = attr.py_type
            if names[i + 1] not in member._attrs_by_name_ and names[i + 1] not in member._relations_by_name_:
                # as an attribute of the collection itself (`s.courses.foo`), named by its path alone
                raise noted(
                    QueryAttributeError(_path_text(where, names, i + 2)),
                    f"Entity {member.__name__} has no attribute {names[i + 1]!r}: {where}",
                )
            rest = _path(many.value, names[i + 1 :], where)
            if type(rest) is _Many:
                # members of a many-to-many collection repeat across the owners
                exact = rest.exact and rest.one_owner
                return _Many(
                    many.variables + rest.variables,
                    many.conditions + rest.conditions,
                    rest.value,
                    None,
                    exact,
                )
            return _Many(many.variables, many.conditions, rest)
        if attr.is_reference:
            if last and attr.is_column:
                return ColumnRef(source, attr)
            if attr.is_column and i == len(names) - 2:
                key = _key_read_through(source, attr, names[-1])
                if key is not None:
                    return key
            source = Path(source, attr)
            entity = attr.py_type
            if last:
                return source
            continue
        if not last:
            raise noted(
                QueryAttributeError(_path_text(where, names, i + 2)),
                f"{attr.qualname} is not a reference: `.{names[i + 1]}` cannot follow it: {where}",
            )
        return ColumnRef(source, attr) if source is not None else attr
    return base


def _path_text(where: str, names: tuple[str, ...], count: int) -> str:
    """The text of a path as written in the query, up to its ``count``-th of ``names``."""
    text = _split_where(where)[0]
    cut = text.find(".".join(names))
    return text[: cut + len(".".join(names[:count]))] if cut >= 0 else text


def _key_read_through(source: Any, attr: Any, name: str) -> ColumnRef | None:
    """``s.group.id``: the referenced key is the reference's own column, read without a join."""
    target = attr.py_type
    keys = target._pk_attrs_
    if len(keys) != 1 or keys[0].name != name or len(reference_columns(attr)) != 1:
        return None
    ref = ColumnRef(source, keys[0])
    ref.column = reference_columns(attr)[0]
    ref.column_names = (ref.column,)
    ref.owner = attr.entity
    return ref


def _collection(owner: Any, attr: Any, element: Any) -> _Many:
    """The members of ``owner.attr``; ``element`` is the object standing for them (a new one if None)."""
    var = Var(attr.py_type) if element is None else element
    owner_key = _key_of(owner)
    if attr.is_m2m:
        condition: Any = MemberOf(_key_of(var), attr, owner_key)
    else:
        condition = KeysEqual(Key(_source_of(var), reference_columns(attr.reverse)), owner_key)
    many = _Many((var,) if element is None else (), (condition,), var)
    many.one_owner = not attr.is_m2m
    return many


def _operand(value: Any) -> Any:
    """A plain attribute of the query's own object as a ColumnRef; anything else unchanged."""
    if hasattr(value, "ctype") and type(value) is not ColumnRef and hasattr(value, "column"):
        return ColumnRef(None, value)
    return value


_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _compare(left: Any, op: str, right: Any, where: str) -> Any:
    if isinstance(left, Value) or isinstance(right, Value):
        if op in ("is", "is not"):
            op = "==" if op == "is" else "!="
        return compare(op, left, right)
    left, right = _operand(left), _operand(right)
    if type(left) is _Many and type(right) is _Many:
        raise UnsupportedQueryError(f"Comparing two collections is not supported in queries: {where}")
    if type(left) is _Many or type(right) is _Many:
        text, location = _split_where(where)
        raise noted(
            IncomparableTypesError(
                f"Incomparable types {_compared_type_name(left)!r} and {_compared_type_name(right)!r} in expression: {text}"
            ),
            f"A collection can only be tested with `in`, exists() or aggregates ({location})",
        )
    if op in ("is", "is not"):
        op = "==" if op == "is" else "!="
    left_query, right_query = _reads_query(left), _reads_query(right)
    if not left_query:
        left, right, op = right, left, _FLIPPED[op]
        left_query, right_query = right_query, left_query
    if _is_object(left):
        if op not in ("==", "!="):
            raise TranslationError(f"An ordering comparison of objects is not supported in queries: {where}")
        if right is None:
            if type(left) is Path or type(left) is Var:  # a left-joined object may be missing
                return KeyIsNull(_key_of(left), negate=op == "!=")
            return _FALSE if op == "==" else _TRUE
        if _is_object(right) or type(right) is ColumnRef:
            if _is_object(right):
                _check_related(_entity_of(left), _entity_of(right), where)
            if type(right) is ColumnRef and not getattr(right.attr, "is_reference", False):
                raise TranslationError(
                    f"An object compared with {right!r}, which is not a reference: {where}"
                )
            return KeysEqual(_key_of(left), _key_of(right), negate=op == "!=")
        return _same(left, right, op == "!=", where)
    if type(left) is ColumnRef:
        if _is_object(right):
            if not getattr(left.attr, "is_reference", False) or op not in ("==", "!="):
                raise TranslationError(f"{left!r} compared with an object: {where}")
            return KeysEqual(_key_of(left), _key_of(right), negate=op == "!=")
        if right_query:
            if (
                type(right) is ColumnRef
                and getattr(left.attr, "is_reference", False)
                and getattr(right.attr, "is_reference", False)
                and op in ("==", "!=")
            ):
                return KeysEqual(_key_of(left), _key_of(right), negate=op == "!=")
            if type(right) is ColumnRef and not comparable_types(left.py_type, right.py_type):
                raise noted(
                    AttributeTypeError(f"Incomparable types in {left!r} {op} {right!r}"), f"in {where}"
                )
            return Comparison(left, op, right)
        return expression_for(left, op, right)
    if type(left) is Subquery:
        if isinstance(right, Expr):
            raise TranslationError(f"A comparison with a condition is not supported in queries: {where}")
        return Comparison(left, op, right)
    raise TranslationError(f"The comparison is not supported in queries yet: {where}")


def _compared_type_name(value: Any) -> str:
    """The type of a compared operand as an error names it (``Set of Student`` for a collection)."""
    if type(value) is _Many:
        member = value.value
        kind = _entity_of(member) if _is_object(member) else getattr(member, "py_type", type(member))
        return f"Set of {getattr(kind, '__name__', kind)}"
    kind = _type_of(value)
    return getattr(kind, "__name__", str(kind))


def _type_of(value: Any) -> Any:
    """The Python type a query operand stands for: an attribute's type, else the value's own."""
    if isinstance(value, (Value, ColumnRef)) or (isinstance(value, Operand) and hasattr(value, "py_type")):
        return value.py_type
    if _is_object(value):
        return _entity_of(value)
    return type(value)


def _incomparable(
    left_type: Any, right_type: Any, where: str, exc: BaseException
) -> IncomparableTypesError | None:
    """The error for comparing values of ``left_type`` and ``right_type``, which do not compare (None for
    two numbers: those compare, and the attribute's own refusal, such as a float for an int, stays)."""
    if is_numeric_type(left_type) and is_numeric_type(right_type):
        return None
    text, location = _split_where(where)
    return noted(
        IncomparableTypesError(
            f"Incomparable types {getattr(left_type, '__name__', left_type)!r} and "
            f"{getattr(right_type, '__name__', right_type)!r} in expression: {text}"
        ),
        f"{exc} ({location})" if location else str(exc),
    )


def _check_related(left: Any, right: Any, where: str) -> None:
    """Objects of two entities compare only when one entity is the other or inherits from it."""
    if (
        isinstance(left, type)
        and isinstance(right, type)
        and not (issubclass(left, right) or issubclass(right, left))
    ):
        text, location = _split_where(where)
        raise noted(
            IncomparableTypesError(
                f"Incomparable types {left.__name__!r} and {right.__name__!r} in expression: {text}"
            ),
            f"objects of {left.__name__} and {right.__name__} are never equal ({location})",
        )


def _reads_query(value: Any) -> bool:
    return type(value) in (ColumnRef, Subquery, Var, Path, _Many) or _is_entity(value)


def _same(obj: Any, value: Any, negate: bool, where: str) -> Any:
    """An object operand compared with an object from the enclosing scope (by primary key)."""
    entity = _entity_of(obj)
    if not isinstance(value, entity):
        value = _Runtime._object(entity, value, where)
    keys = entity._pk_attrs_
    if len(keys) == 1:
        condition = expression_for(_pk_ref(obj, where), "==", value.get_pk())
    else:  # a composite key: each of its attributes
        source = _source_of(obj)
        condition = _Runtime.and_(
            *(expression_for(ColumnRef(source, k), "==", k.__get__(value)) for k in keys)
        )
    return _Runtime.not_(condition) if negate else condition


def _key_equals(entity: Any, obj: Any) -> Any:
    """The query's own object is ``obj``: each attribute of its primary key equal to obj's."""
    return _Runtime.and_(*(attr == attr.__get__(obj) for attr in entity._pk_attrs_))


def _row_member(items: tuple[Any, ...], values: Any, where: str) -> Any:
    """``(a, b) in values``: the tuple among a nested generator's tuples or the scope's tuples."""
    if type(values) is _Many:
        row = values.value
        if not (isinstance(row, tuple) and len(row) == len(items)):
            raise TranslationError(f"`in` compares a tuple with a generator of tuples of its length: {where}")
        return Exists(values.query(tuple(_compare(v, "==", i, where) for v, i in zip(row, items))))
    if hasattr(values, "entity") and hasattr(values, "statement"):  # a query of tuples
        return _in_rows_query(items, values, where)
    if _reads_query(values) or isinstance(values, (str, bytes, Operand)) or hasattr(values, "statement"):
        raise TranslationError(f"`in` of a tuple over this is not supported in queries yet: {where}")
    rows = list(values)
    for row in rows:
        if not (isinstance(row, tuple) and len(row) == len(items)):
            raise TranslationError(
                f"`in` compares a tuple with tuples of {len(items)} values, got {row!r}: {where}"
            )
    return _Runtime.or_(
        *(_Runtime.and_(*(_compare(i, "==", v, where) for i, v in zip(items, row))) for row in rows)
    )


def _member(item: Any, values: Any, where: str) -> Any:
    if type(item) is tuple:
        return _row_member(item, values, where)
    if isinstance(values, Value):  # a part of a computed string
        if not _is_text(values) or (isinstance(item, Operand) and not _is_text(item)):
            raise TranslationError(f"`in` on this value is not supported in queries yet: {where}")
        return values.contains(item)
    if (
        isinstance(item, Value)
        and _is_text(item)
        and type(values) is not _Many
        and _is_text(_operand(values))
    ):
        return StringTest("contains", value_of(_operand(values)), item)  # `p.name[:1] in p.nick`
    if isinstance(item, Value) and _is_text(item) and isinstance(values, str):
        return StringTest("contains", Param(values), item)  # `p.name[:1] in "abc"`
    if isinstance(item, Value):
        if (
            isinstance(values, (str, bytes))
            or isinstance(values, (Value, Operand))
            or hasattr(values, "filter")
        ):
            raise TranslationError(
                f"`in` over this is not supported for a computed value in queries yet: {where}"
            )
        return item.in_(values)
    item = _operand(item)
    if type(values) is _Many:
        if _is_object(item) and _is_object(values.value):
            _check_related(_entity_of(item), _entity_of(values.value), where)
        return Exists(values.query((_compare(values.value, "==", item, where),)))
    values = _operand(values)
    if type(values) is ColumnRef and values.py_type is str and not _reads_query(item):
        return values.contains(item)
    if _is_text(values) and _is_text(item):  # a part the query computes: `p.nick in p.name`
        return StringTest("contains", value_of(values), item)
    if hasattr(values, "entity") and hasattr(values, "statement"):  # a query: a nested SELECT of its keys
        return _in_query(item, values, where)
    if _reads_query(values):
        raise TranslationError(f"`in` over this value is not supported in queries yet: {where}")
    if isinstance(values, (str, bytes)):
        raise TranslationError(f"`in` over a string value is not supported in queries: {where}")
    if _is_object(item):
        pks = [
            (v if isinstance(v, _entity_of(item)) else _Runtime._object(_entity_of(item), v, where)).get_pk()
            for v in values
        ]
        return _pk_ref(item, where).in_(pks)
    if type(item) is ColumnRef:
        return item.in_(values)
    raise TranslationError(f"`in` is not supported here in queries yet: {where}")


def _is_text(value: Any) -> bool:
    """Whether ``value`` is a str value of the query (a column, a computed string)."""
    py_type = getattr(value, "py_type", None) if isinstance(value, Operand) else None
    return isinstance(py_type, type) and issubclass(py_type, str)


def _in_query(item: Any, query: Any, where: str) -> Any:
    entity = query.entity
    if query._select is not None:
        return _in_values_query(item, query, where)
    if len(entity._pk_attrs_) != 1:
        raise TranslationError(
            f"`in` over a query of {entity.__name__}, whose primary key has several columns, "
            f"is not supported in queries yet: {where}"
        )
    if _is_object(item):
        if _entity_of(item) is not entity:
            raise TranslationError(
                f"An object of {_entity_of(item).__name__} cannot be in a query of {entity.__name__}: {where}"
            )
        column = _pk_ref(item, where)
    elif type(item) is ColumnRef and getattr(item.attr, "is_reference", False):
        column = item
    else:
        raise TranslationError(f"`in` over a query takes an object of its entity: {where}")
    limited = query._limit is not None or query._offset
    # the order stays for a limited query: it says which rows the limit keeps
    keys = query._copy(_order=query._order if limited else (), _for_update=None).statement()
    return InQuery(
        column,
        Select(
            keys.table,
            (entity._pk_attrs_[0].column,),
            where=keys.where,
            order=keys.order,
            limit=keys.limit,
            offset=keys.offset,
        ),
    )


def _in_values_query(item: Any, query: Any, where: str) -> Any:
    """``p.name in q`` where ``q`` selects one value: a nested query for a row of that value."""
    selected = query._select
    if query._tuple or len(selected) != 1 or isinstance(selected[0], type) or query._sources:
        raise TranslationError(
            f"`in` over a query of tuples or objects of several tables is not supported yet: {where}"
        )
    item = _operand(item)
    if type(item) is not ColumnRef:
        raise TranslationError(f"`in` over a query of values takes an attribute: {where}")
    if query._limit is not None or query._offset:
        # the rows the limit keeps, in the query's order and with its DISTINCT, by a name
        statement = query._copy(_for_update=None).statement()
        return InQuery(item, replace(statement, label="v"))
    statement = query._copy(_order=(), _distinct=False).statement()
    if statement.group_by or statement.having:
        raise TranslationError(f"`in` over a query of grouped values is not supported yet: {where}")
    return InQuery(item, statement)


def _in_rows_query(items: tuple[Any, ...], query: Any, where: str) -> Any:
    """``(s.a, s.b) in q`` where ``q`` selects tuples of as many values: EXISTS of such a row."""
    selected = query._select
    if (
        selected is None
        or not query._tuple
        or len(selected) != len(items)
        or query._sources
        or any(
            isinstance(value, type) or getattr(getattr(value, "attr", None), "width", 1) != 1
            for value in selected
        )
    ):
        raise TranslationError(
            f"`in` of a tuple over a query takes a query selecting as many values (not objects): {where}"
        )
    if query._limit is not None or query._offset:
        raise UnsupportedQueryError(
            f"`in` of a tuple over a query with a limit or offset is not supported yet: {where}"
        )
    columns = tuple(_operand(item) for item in items)
    if any(type(column) is not ColumnRef or column.width != 1 for column in columns):
        raise TranslationError(
            f"`in` of a tuple over a query compares attributes of one column each: {where}"
        )
    statement = query._copy(_order=(), _distinct=False).statement()
    if statement.group_by or statement.having:
        raise TranslationError(f"`in` over a query of grouped values is not supported yet: {where}")
    return InQuery(columns, statement)


def _truth(value: Any, where: str) -> Any:
    value = _operand(value)
    if type(value) is _Many:
        return _exists_of(value, where)
    if type(value) is Path:
        return KeyIsNull(_key_of(value), negate=True)
    if type(value) is Var or _is_entity(value):
        return _TRUE
    if type(value) is ColumnRef:
        if value.py_type is bool:
            return value == True  # noqa: E712 - builds the condition
        if getattr(value.attr, "is_reference", False):
            return value.is_not(None)
        if value.py_type is str:
            return Truthy(value, "")
        if value.py_type is bytes:
            return Truthy(value, b"")
        if not is_numeric_type(value.py_type):  # a date, a datetime, a uuid: true unless NULL
            return value.is_not(None)
        return Truthy(value, 0)
    if type(value) is Subquery:
        return Comparison(value, "!=", 0)
    if isinstance(value, Expr) or value is _TRUE or value is _FALSE:
        return value
    if isinstance(value, JsonPath):
        return value.truth()
    if isinstance(value, RawSQL) or (isinstance(value, Value) and value.py_type is bool):
        return Truth(value)
    if isinstance(value, Value) and _is_text(value):
        return Truthy(value, "")
    if isinstance(value, Value) and value.py_type in (int, float, Decimal):
        return Truthy(value, 0)
    raise TranslationError(f"The truth value of {value!r} is not supported in queries: {where}")


def _exists_of(many: Any, where: str) -> Any:
    if type(many) is not _Many:
        raise TranslationError(f"exists() takes a generator or a collection: {where}")
    extra: tuple[Any, ...] = ()
    if type(many.value) is not Var:
        condition = many.value_condition
        if condition is None:
            condition = _truth(many.value, where)
        extra = (condition,)
    return Exists(many.query(extra))


def _count_of(many: Any, where: str) -> Any:
    if type(many) is not _Many:
        raise TranslationError(f"count() in a query takes a generator or a collection: {where}")
    value = many.value
    if type(value) is Var:
        if many.exact and value is many.variables[-1]:
            counted = many.query(aggregate="COUNT")
            link = many.conditions[0] if len(many.conditions) == 1 else None
            if len(many.variables) == 1 and type(link) is MemberOf and link.member.source is value:
                counted.link = link  # a many-to-many collection: its rows of the join table
            return counted
        return many.query(value=_pk_ref(value, where), aggregate="COUNT")
    return many.query(
        value=_operand(value) if not _is_object(value) else _pk_ref(value, where), aggregate="COUNT"
    )


def _aggregate(name: str) -> Any:
    def aggregate(many: Any, where: str) -> Any:
        if type(many) is not _Many:
            raise TranslationError(f"{name.lower()}() in a query takes a generator or a collection: {where}")
        value = _operand(many.value)
        numeric = name in ("SUM", "AVG")
        if type(value) is not ColumnRef or (numeric and not is_numeric_type(value.py_type)):
            if _is_object(many.value):
                type_name = _entity_of(many.value).__name__
            else:
                type_name = getattr(getattr(value, "py_type", None), "__name__", type(value).__name__)
            text, location = _split_where(where)
            if numeric:
                message = f"Function {name.lower()}() expects query or items of numeric type, got {type_name!r} in {text}"
            else:
                message = f"Function {name.lower()}() cannot be applied to type {type_name!r} in {text}"
            raise noted(
                TranslationError(message),
                f"{name.lower()}() in a query takes the values of an attribute {location}",
            )
        return many.query(value=value, aggregate=name)

    return aggregate


def _group_concat_of(where: str, many: Any, sep: Any = None, distinct: Any = None) -> Any:
    """``group_concat(s.name for s in ...)`` in a query: the nested query's texts joined by ``sep``."""
    value = many.value
    if _is_object(value):  # of objects: their keys
        if len(_entity_of(value)._pk_attrs_) > 1:
            raise QueryError("`group_concat` cannot be used with entity with composite primary key")
        value = _pk_ref(value, where)
    value = _operand(value)
    if type(value) is ColumnRef:
        value = value._value_()
    if not isinstance(value, Value) or value.is_aggregate() or type(many) is not _Many:
        raise TranslationError(
            f"group_concat() in a query takes a generator or a collection of values: {where}"
        )
    if (sep is not None and not isinstance(sep, str)) or not isinstance(distinct, (bool, type(None))):
        raise TranslationError(
            f"group_concat() in a query takes a str sep and distinct=True or False: {where}"
        )
    return Nested(many.query(value=Aggregate("group_concat", value, bool(distinct), sep)), None, str)


_COLLECTION_METHODS: dict[str, Any] = {
    "is_empty": lambda many, where: ~_exists_of(many, where),
    "exists": _exists_of,
    "count": _count_of,
    "select": lambda many, where: many,
    "filter": lambda many, where: many,
    "sum": _aggregate("SUM"),
    "min": _aggregate("MIN"),
    "max": _aggregate("MAX"),
    "avg": _aggregate("AVG"),
}

_COLLECTION_FUNCTIONS: dict[str, Any] = {
    "select": lambda many, where: many,
    "exists": _exists_of,
    "count": _count_of,
    "len": _count_of,
    "sum": _aggregate("SUM"),
    "min": _aggregate("MIN"),
    "max": _aggregate("MAX"),
    "avg": _aggregate("AVG"),
}


def _value_call(func: Any, where: str, *args: Any, **keywords: Any) -> Any:
    """A call of a function with values of the query's object as arguments."""
    for index, arg in enumerate(args):
        if type(arg) is _Many:
            name = getattr(func, "__name__", repr(func))
            raise noted(
                TranslationError(f"Invalid argument of {name}() function: {_argument_text(where, index)}"),
                f"{name}() takes values, not a collection or a nested query, as its arguments: {where}",
            )
    try:
        name = _VALUE_FUNCTIONS.get(func)
    except TypeError:  # an unhashable callable is none of them
        name = None
    if name is None:
        name = getattr(func, "__name__", repr(func))
        raise noted(
            UnsupportedQueryError(_split_where(where)[0]),
            f"The function {name}() is not supported in queries yet: {where}",
        )
    if keywords and name != "group_concat" and not (name in _AGGREGATES and set(keywords) <= {"distinct"}):
        raise TranslationError(f"{name}() takes no keyword arguments {sorted(keywords)} in queries: {where}")
    if name in ("min", "max") and len(args) > 1:
        return least(*args) if name == "min" else greatest(*args)
    if name == "group_concat" and len(args) == 2 and "sep" not in keywords:
        keywords = {**keywords, "sep": args[1]}  # group_concat(value, sep)
        args = args[:1]
    if any(type(arg) is _Many for arg in args):
        many = next(arg for arg in args if type(arg) is _Many)
        if name == "group_concat" and _is_object(many.value) and len(_entity_of(many.value)._pk_attrs_) > 1:
            raise QueryError("`group_concat` cannot be used with entity with composite primary key")
        raise TranslationError(f"{name}() of a collection in a query is not supported yet: {where}")
    if name in _AGGREGATES:
        if len(args) > 1 or (not args and name != "count"):
            raise TranslationError(f"{name}() in a query takes one value: {where}")
        arg = args[0] if args else None
        if isinstance(arg, type):  # the query's object: count(p) counts the objects
            if name != "count":
                raise TranslationError(
                    f"{name}() takes a value of the query's object, not the object: {where}"
                )
            keys = cast(Any, arg)._pk_attrs_
            arg = Column(keys[0]) if len(keys) == 1 else None
        elif (
            type(arg) is Var or type(arg) is Path
        ):  # an object of a nested generator or another `for`: its key
            if name != "count":
                raise TranslationError(f"{name}() takes a value of an object, not the object: {where}")
            arg = _pk_ref(arg, where)._value_()
        elif (
            name == "count" and isinstance(arg, str) and arg == "*"
        ):  # count('*'): the rows, whatever `distinct` says
            arg, keywords = None, {}
        elif arg is not None:
            arg = value_of(arg)
        distinct = keywords.get("distinct", name == "count" and arg is not None)
        return Aggregate(name, arg, bool(distinct), keywords.get("sep"))
    if name == "len":
        if len(args) == 1 and (getattr(args[0], "has_items", False) or isinstance(args[0], JsonPath)):
            return args[0].length()  # of a Json or array column, or of a Json path
        return function("len", *args)
    if name in _CASTS:
        if len(args) != 1:
            raise TranslationError(f"{name}() in a query takes one value: {where}")
        if isinstance(args[0], JsonPath):
            return args[0].scalar(_CASTS[name])  # the JSON scalar at the path
        return function("text" if name == "str" else name, *args)
    if name == "abs":
        return function("abs", *args)
    if name == "between":
        return between(*args)
    if name == "coalesce":
        return coalesce(*args)
    if name == "concat":
        return concat(*args)
    return desc(*args)


def _value_operand(value: Any) -> Any:
    """A column read through a path, or a nested query's one value, as a value; anything else unchanged."""
    kind = type(value)
    if kind is ColumnRef:
        return value._value_()
    if kind is Subquery:
        inner = value.value
        return Nested(value, value.aggregate, None if inner is None else inner.py_type)
    if kind is _Many and isinstance(value.value, Value) and value.value.is_aggregate():
        # select(sum(c.price) for c in p.cars): the aggregate of the nested query's rows
        return Nested(value.query(value=value.value), None, value.value.py_type)
    return value


#: the functions a query may call with its values, by the name of their operation
_VALUE_FUNCTIONS: dict[Any, str] = {
    count: "count",
    itertools.count: "count",  # what `count` is where nextorm's is not imported
    sum: "sum",
    builtins.sum: "sum",
    min: "min",
    builtins.min: "min",
    max: "max",
    builtins.max: "max",
    avg: "avg",
    group_concat: "group_concat",
    len: "len",
    abs: "abs",
    int: "int",
    float: "float",
    str: "str",
    between: "between",
    coalesce: "coalesce",
    concat: "concat",
    desc: "desc",
}
#: conversions a query may call: the Python type of their result
_CASTS: dict[str, type] = {"int": int, "float": float, "str": str}
_AGGREGATES = frozenset({"count", "sum", "min", "max", "avg", "group_concat"})
_RUNTIME = _Runtime()


class _Translation:
    """One query's translation: a function from the entity and the scope's names to conditions."""

    __slots__ = (
        "cells",
        "checked",
        "comparisons",
        "externals",
        "function",
        "function_code",
        "line",
        "names",
        "operations",
        "raw_sources",
        "root_path",
        "selected",
        "several",
        "shape",
        "text",
        "var",
    )

    def __init__(
        self,
        function_code: types.CodeType,
        names: tuple[str, ...],
        var: str,
        text: str,
        line: int,
        externals: tuple[tuple[tuple[int, int, int, int], str], ...] = (),
    ) -> None:
        self.function_code = function_code
        #: of a lambda's translation: the index of each of ``names`` among the closure's cells
        #: (None when a name is not one of them)
        self.cells: tuple[int, ...] | None = None
        #: the values the query takes from its scope: their source spans and text
        self.externals = externals
        #: the comparisons of an attribute with a value run as Python: their source spans and text
        self.comparisons: tuple[tuple[tuple[int, int, int, int], str], ...] = ()
        #: the string operations (indexes, slices, methods, `in`): their source spans and text
        self.operations: tuple[tuple[tuple[int, int, int, int], str], ...] = ()
        #: the text of the raw_sql() call reading each ``$name`` the query's own code does not
        self.raw_sources: dict[str, str] = {}
        self.names = names
        self.var = var
        self.text = text
        self.line = line
        self.function: types.FunctionType | None = None
        #: of several `for` clauses selecting a later one: its collection path from the first
        self.root_path: tuple[str, ...] | None = None
        #: whether the generator has several `for` clauses (its function takes the first's entity)
        self.several = False
        #: what a generator selects: None for its objects, "one" value, or a "tuple" of them
        self.shape: str | None = None
        #: the text of what a generator selects (for messages about queries over it)
        self.selected: str | None = None
        #: the entity a run with values of plain types found the conditions about, when the
        #: function reads no global name: then every such run's conditions are about it
        #: (``_READS_GLOBALS`` when it reads one, None before a first run with such values)
        self.checked: Any = None

    def check_entities(self, entity: Any, values: tuple[Any, ...], conditions: Any) -> None:
        """UnknownAttributeError unless ``conditions`` (of a run with ``values``) are about ``entity``.

        Paid once for runs whose values are all of plain types: such a value is bound as itself, so
        the attributes the conditions read are those of the function and ``entity``, unless the
        function reads a global name (which may name another entity on the next run).
        """
        for value in values:
            if type(value) not in _PLAIN_TYPES:
                check_entities(entity, conditions)  # an entity or an attribute may be another entity's
                return
        checked = self.checked
        if checked is not entity:
            check_entities(entity, conditions)
            if checked is None:
                self.checked = _READS_GLOBALS if _reads_globals(self.function_code) else entity

    def run(self, entity: Any, params: tuple[dict[str, Any], tuple[Any, ...]], *extra: Any) -> Any:
        """Evaluate the translated query with the entity and the values of the scope's names."""
        globals_, values = params
        return self.bound(entity, globals_, (*extra, *values) if extra else values)

    def bound(self, entity: Any, globals_: dict[str, Any], values: tuple[Any, ...]) -> Any:
        """Evaluate the translated query with the entity and its other arguments (``values``)."""
        function = self.function
        if function is None or function.__globals__ is not globals_:
            # a code object's module is always the same one, except for query text
            function = self.function = types.FunctionType(self.function_code, globals_)
        try:
            # a call with a fixed number of arguments runs inline; one with ``*values`` goes through C
            count = len(values)
            if count == 0:
                return function(_RUNTIME, entity)
            if count == 1:
                return function(_RUNTIME, entity, values[0])
            if count == 2:
                return function(_RUNTIME, entity, values[0], values[1])
            if count == 3:
                return function(_RUNTIME, entity, values[0], values[1], values[2])
            return function(_RUNTIME, entity, *values)
        except Exception as exc:
            error = self._error(exc)
            if error is exc:
                raise
            raise error from exc

    def _error(self, exc: Exception) -> Exception:
        """What a failure of the translated query raises: ``exc`` itself, or an error naming the
        value and the query."""
        written = getattr(exc, "written", None)
        if written is not None:
            # an operation's error names it in the attribute-expression form: name it as written
            text = _failing_external(exc, self.function_code, self.operations)
            if text is not None:
                error = type(exc)(str(exc).replace(written, text))
                for name in ("attr", "value"):
                    if hasattr(exc, name):
                        setattr(error, name, getattr(exc, name))
                return noted(error, f"in the query `{self.text}` at line {self.line}")
        if isinstance(exc, AttributeTypeError):
            if _failing_external(exc, self.function_code, self.externals) is not None:
                return self._eval_error(exc)  # a value of the scope failed (`Group[date(...)]`)
            # an attribute compared with a value of a type it does not compare with
            text = _failing_external(exc, self.function_code, self.comparisons)
            attr = getattr(exc, "attr", None)
            if text is None or attr is None or not hasattr(exc, "value"):
                return exc
            value = exc.value  # type: ignore[attr-defined]
            if not _is_bindable(value):
                named = _failing_external(exc, self.function_code, self.externals, inner=True)
                return noted(
                    QueryError(f"Expression `{named or text}` has unsupported type {type(value).__name__!r}"),
                    f"{exc} (`{text}` at line {self.line})",
                )
            incomparable = _incomparable(
                attr.py_type, _value_type(value), f"`{text}` at line {self.line}", exc
            )
            return exc if incomparable is None else incomparable
        if isinstance(exc, OrmError):
            return exc
        return self._eval_error(exc)

    def _eval_error(self, exc: BaseException) -> ExprEvalError:
        """The ExprEvalError of a value of the scope whose evaluation raised ``exc``."""
        expression = _failing_external(exc, self.function_code, self.externals) or self.text
        error = ExprEvalError(f"`{expression}` raises {type(exc).__name__}: {exc}")
        error.expression = expression
        error.query = self.text
        error.line = self.line
        error.add_note(f"in the query `{self.text}` at line {self.line}")
        return error


#: the arguments of datetime(), the first three those of date()
_DATE_ARGUMENTS = ("year", "month", "day", "hour", "minute", "second", "microsecond")
#: the constructors whose arguments a query checks (buffer: Pony's name of bytes)
_CONSTRUCTORS = frozenset({"date", "datetime", "bytes", "buffer"})


def _is_constructor_call(node: ast.AST) -> bool:
    """Whether ``node`` calls date(), datetime() or bytes() by name, with no ``*args``/``**kwargs``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _CONSTRUCTORS
        and not any(isinstance(arg, ast.Starred) for arg in node.args)
        and all(keyword.arg is not None for keyword in node.keywords)
    )


def _holds(code: types.CodeType, inner: types.CodeType) -> bool:
    """Whether ``inner`` is the code of a function defined within ``code`` (at any depth)."""
    return any(
        const is inner or (isinstance(const, types.CodeType) and _holds(const, inner))
        for const in code.co_consts
    )


def _is_bindable(value: Any) -> bool:
    """Whether ``value`` is of a type a query may compare or bind (a column type, an object, a
    collection or None)."""
    return (
        value is None
        or isinstance(value, (*COLUMN_TYPES, list, tuple, dict, set, frozenset))
        or hasattr(type(value), "_attrs_by_name_")
    )


def _value_type(value: Any) -> Any:
    """The type of a compared value as an error names it: an array type for a list of str, int or float."""
    if type(value) is list and value:
        for kind, array in ((str, "StrArray"), (int, "IntArray"), (float, "FloatArray")):
            if all(type(item) is kind for item in value):
                return array
    return type(value)


def _failing_external(
    exc: BaseException,
    code: types.CodeType,
    externals: tuple[tuple[tuple[int, int, int, int], str], ...],
    inner: bool = False,
) -> str | None:
    """The text of the scope value whose evaluation raised ``exc`` in a query's function, if known.

    The traceback's frame of the function tells the instruction that raised; its source position
    lies within the value's span (the function keeps the positions of the query's own source).
    With ``inner``, the value is one the failing instruction's span holds (the value a comparison
    that failed compares).
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code is not code:
        tb = tb.tb_next
    # the innermost frame of the function or of a function it holds (a nested generator's)
    later = tb.tb_next if tb is not None else None
    while later is not None:
        if _holds(code, later.tb_frame.f_code):
            tb = later
        later = later.tb_next
    if tb is None or tb.tb_lasti < 0:
        return None
    positions = list(tb.tb_frame.f_code.co_positions())
    index = tb.tb_lasti // 2
    if index >= len(positions):
        return None
    line, end_line, col, end_col = positions[index]
    if line is None or col is None or end_line is None or end_col is None:
        return None
    found: tuple[tuple[int, int, int, int], str] | None = None
    for span, text in externals:
        if inner:
            if (line, col) <= (span[0], span[1]) and (span[2], span[3]) <= (end_line, end_col):
                return text
        elif (span[0], span[1]) <= (line, col) and (end_line, end_col) <= (span[2], span[3]):
            if found is None or (found[0][0], found[0][1]) < (span[0], span[1]):
                found = (span, text)  # the innermost of nested spans
    return None if found is None else found[1]


#: the types of the values a run's check of entities is remembered for: never an entity, an
#: attribute or an expression (which may be another entity's)
_PLAIN_TYPES = frozenset(
    {int, float, str, bool, bytes, type(None), Decimal, datetime, date, time, timedelta, UUID}
)
#: ``_Translation.checked`` of a function reading a global name: its runs are all checked
_READS_GLOBALS = object()


def _reads_globals(code: types.CodeType) -> bool:
    """Whether a translated function (or a function nested in it) reads a global or builtin name."""
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            return True
    return any(_reads_globals(const) for const in code.co_consts if isinstance(const, types.CodeType))


_translations: dict[Any, _Translation] = {}


class _query_classes:
    """The query module's ``query_of`` and ``QueryIterator``, given by ``use_query_classes``."""

    query_of: Any = None
    QueryIterator: Any = None


def use_query_classes(query_of: Any, iterator: Any) -> None:
    """Called once by the query module (which imports this one): how a repeated generator makes
    its query directly (``query_of(entity, conditions)``), and the class of an entity's iterator
    it recognises."""
    _query_classes.query_of = query_of
    _query_classes.QueryIterator = iterator


#: the last translation of each code object, by the code's id: (code, entity, key, translation)
_recent: dict[int, tuple[Any, Any, Any, _Translation]] = {}
_CACHE_SIZE = 10_000
_parsed_sources: dict[str, tuple[list[str], list[Any]]] = {}


def _query_of(query: Any, function: str) -> Any:
    if type(query) is types.GeneratorType:
        # the most frequent: `select(p for p in Person if ...)` translated before
        frame = query.gi_frame
        if frame is not None and not query.gi_suspended and not query.gi_running:
            local_values = frame.f_locals  # built anew on each access: read it once
            source: Any = local_values.get(".0")
            if type(source) is _query_classes.QueryIterator and source._query is None:
                code = query.gi_code
                hit = _recent.get(id(code))
                if hit is not None and hit[0] is code and hit[1] is source.entity and hit[2] is None:
                    repeated = _repeat(hit[3], source.entity, local_values, frame.f_globals)
                    if repeated is not None:
                        return repeated
    if isinstance(query, str):
        namespace = _caller_namespace()
        node, where = _parse_text(query)
        if not isinstance(node, ast.GeneratorExp):
            raise TranslationError(f"{function}() takes a generator expression as text, got {query!r}")
        source_query = _evaluate_source(node.generators[0].iter, namespace, where)
        key: Any = ("gen", query)
        shape = _shape_of(source_query)
        translation = _translations.get((key, source_query.entity, shape))
        if translation is None:
            translation = _translate_generator(
                node,
                source_query.entity,
                where,
                None,
                _scope_of(*namespace[::-1]),
                shape,
                _described(source_query),
            )
            _remember((key, source_query.entity, shape), translation)
        var = translation.var
        params = _string_params(translation, namespace)
    elif isinstance(query, types.GeneratorType):
        frame = query.gi_frame
        code = query.gi_code
        if frame is None or query.gi_suspended or query.gi_running or code.co_name != "<genexpr>":
            raise TranslationError(
                f"{function}() takes a generator expression that has not started, got {query!r}"
            )
        local_values = frame.f_locals  # built anew on each access: read it once
        source = local_values.get(".0")
        if isinstance(source, types.GeneratorType):
            # `for x in (s for s in Student if ...)`: over the query the inner generator is
            source_query = _query_of(source, function)
        else:
            source_query = getattr(source, "query", None)
        if source_query is None or not hasattr(source_query, "entity"):
            where = f"line {code.co_firstlineno} of {code.co_filename}"
            if type(source) in _SEQUENCE_ITERATORS:
                raise TranslationError(
                    "Query can only iterate over entity or another query (not a list of objects)"
                )
            raise TranslationError(
                f"The first `for` of a query must iterate over an entity or a query, got {source!r}: {where}"
            )
        shape = _shape_of(source_query)
        # a code object hashes its whole contents: the last translation of each is found by id
        hit = _recent.get(id(code))
        if hit is not None and hit[0] is code and hit[1] is source_query.entity and hit[2] == shape:
            translation = hit[3]
        else:
            translation = _translations.get((code, source_query.entity, shape))
            if translation is None:
                node, where = _locate(code, ast.GeneratorExp)
                scope = _scope_of(local_values, frame.f_globals)
                translation = _translate_generator(
                    node, source_query.entity, where, code.co_freevars, scope, shape, _described(source_query)
                )
                _remember((code, source_query.entity, shape), translation)
            _recent[id(code)] = (code, source_query.entity, shape, translation)
        var = translation.var
        try:
            values = tuple(map(local_values.__getitem__, translation.names))
        except KeyError:  # a raw_sql() `$name` the generator's code does not read itself
            values = _string_params(translation, _caller_namespace(), local_values)[1]
        params = (frame.f_globals, values)
    else:
        raise TranslationError(
            f"{function}() takes a generator expression (p for p in Person if ...) or its text, got {query!r}"
        )
    if source_query._limit is not None or source_query._offset:
        if shape is not None:
            source_query = _limited_values_source(source_query, translation)
        else:
            source_query = _limited_source(source_query)
    extra: tuple[Any, ...] = ()
    if translation.several:
        first = source_query.entity
        if translation.root_path is not None:
            if source_query._where:
                raise TranslationError(
                    f"The first `for` of a query selecting a later one iterates over an entity: "
                    f"{_where_of(translation)}"
                )
            source_query = _Runtime.root_of(first, _where_of(translation), *translation.root_path).select()
        extra = (first, function == "left_join")
    if shape is not None:
        # a query over a query of values: its names stand for the values that query selects
        extra = tuple(item for item in source_query._select if not isinstance(item, type))
    result = translation.run(source_query.entity, params, *extra)
    sources: tuple[Any, ...] = ()
    joined_on: tuple[Any, ...] = ()
    if translation.several and translation.shape is not None:
        joined = result[0]
        selection, sources, result = joined.selection, joined.variables, (joined.condition, *result[1:])
        joined_on = joined.joined_on
    elif translation.shape is not None:
        selection, result = result[0], result[1:]
    if translation.shape is not None and any(type(item) is _Many for item in selection):
        # a selected collection ranges over its members: they are tables of the query's FROM
        flat = []
        for item in selection:
            if type(item) is _Many:
                sources += item.variables
                result = (*result, *item.conditions)
                item = item.value if type(item.value) is Var else _Runtime.item(_operand(item.value), "")
            flat.append(item)
        selection = tuple(flat)
    conditions = _finish_conditions(source_query.entity, translation, result)
    if not translation.several and shape is None:
        # an attribute of a class the query does not iterate (``Other.name == x``) is refused
        check_entities(source_query.entity, conditions)
    query = source_query._named(var, conditions)
    if joined_on:
        if source_query._sources:
            raise UnsupportedQueryError(
                f"left_join() of values over a query of several `for` clauses is not supported yet: "
                f"{_where_of(translation)}"
            )
        # left_join: its objects are LEFT JOINed on the conditions linking them (None where none)
        query = query._copy(_joined_on=tuple(_finish_on(on) for on in joined_on))
    if sources:
        query = query._copy(_sources=source_query._sources + sources)
    if shape is not None and not source_query._group_by:
        grouped, _ = source_query._layout()
        if any(value.is_aggregate() for value in grouped):
            # over a grouped query: its groups stay, whichever of its values this one selects
            query = query._copy(_group_by=tuple(value for value in grouped if not value.is_aggregate()))
    if translation.shape is not None:
        query = query._selecting(selection, translation.shape == "tuple")
    elif shape is not None:
        query = query._copy(_select=None, _tuple=False)  # its objects again
    query._selected_text = translation.selected  # a new query (``_named`` copies): set in place
    return query


def _repeat(translation: _Translation, entity: Any, local_values: Any, globals_: dict[str, Any]) -> Any:
    """The query of a generator over all of ``entity``'s objects translated before, or None when
    the general way builds it (several ``for`` clauses, a selected collection, a raw_sql() name)."""
    if translation.several:
        return None
    names = translation.names
    try:
        if len(names) == 1:
            values: tuple[Any, ...] = (local_values[names[0]],)
        else:
            values = tuple(map(local_values.__getitem__, names))
    except KeyError:  # a raw_sql() `$name` the generator's code does not read itself
        return None
    result = translation.bound(entity, globals_, values)
    if translation.shape is None:
        conditions = _finish_conditions(entity, translation, result)
    else:
        selection = result[0]
        for item in selection:
            if type(item) is _Many:
                return None
        conditions = _finish_conditions(entity, translation, result[1:])
    if translation.checked is not entity or (
        values and (len(values) > 1 or type(values[0]) not in _PLAIN_TYPES)
    ):
        translation.check_entities(entity, values, conditions)  # (else: checked before, nothing to do)
    query = _query_classes.query_of(entity, conditions)
    if translation.shape is not None:
        query._select = selection
        query._tuple = translation.shape == "tuple"
    query._var = translation.var
    if translation.selected is not None:
        query._selected_text = translation.selected
    return query


#: the iterators of Python's sequences: a query's result already fetched, not a query
_SEQUENCE_ITERATORS: tuple[type, ...] = (type(iter([])), type(iter(())))


def _shape_of(query: Any) -> tuple[bool, tuple[bool, ...]] | None:
    """Of a query of values: whether it selects tuples, and which of its items are its objects."""
    if query._select is None:
        return None
    return query._tuple, tuple(isinstance(item, type) for item in query._select)


def _described(query: Any) -> str:
    """What a query selects, as messages show it (``s.name, s.age``)."""
    return getattr(query, "_selected_text", None) or query._var or "..."


def _limited_source(query: Any) -> Any:
    """A query over a query with a limit: its objects are those whose key the limited query selects."""
    entity = query.entity
    if len(entity._pk_attrs_) != 1:
        raise TranslationError(
            f"A query over a limited query of {entity.__name__}, whose primary key has several "
            "columns, is not supported yet"
        )
    keys = query._copy(_for_update=None).statement()
    key = entity._pk_attrs_[0].column
    selected = Select(
        keys.table, (key,), where=keys.where, order=keys.order, limit=keys.limit, offset=keys.offset
    )
    # the rows of the limited query, in its order and with its repeats (no DISTINCT of its values)
    return (
        entity.select()
        ._named(query._var, (InSubquery(key, selected),))
        ._copy(_order=query._order, _distinct=False)
    )


def _finish_on(condition: Any) -> Any:
    """A LEFT JOIN's ON condition: None for one always true."""
    if condition is _TRUE:
        return None
    if condition is _FALSE:
        return Comparison(1, "==", 0)
    return condition


def _limited_values_source(query: Any, translation: _Translation) -> Any:
    """A query over a limited query of values that selects its objects (``(c, count(c.students))``):
    the same values of the objects whose keys the limited query selects, in its order."""
    entity = query.entity
    if query._sources or not any(item is entity for item in query._select):
        raise UnsupportedQueryError(
            "A query over a query of values with a limit or offset is supported when that query "
            f"selects the objects of its one `for` among its values: {_where_of(translation)}"
        )
    order: list[OrderBy] = []
    for item in query._order:
        if type(item.attr) is not int:
            order.append(item)
        elif query._select[item.attr - 1] is entity:  # the objects: by their key
            order += [OrderBy(Column(key), item.descending) for key in entity._pk_attrs_]
        else:  # a position names a value the query over this one may not select: the value itself
            order.append(OrderBy(query._select[item.attr - 1], item.descending))
    ordered = query._copy(_order=tuple(order), _for_update=None, _distinct=query._distinct or None)
    keys = tuple(Column(key) for key in entity._pk_attrs_)
    statement = replace(ordered.statement(), values=keys, distinct=False)
    columns = tuple(key.column for key in entity._pk_attrs_)
    restricted = InSubquery(columns[0] if len(columns) == 1 else columns, statement)
    # the rows of the limited query, in its order and with its repeats (no DISTINCT of its values)
    return query._copy(_where=(restricted,), _order=tuple(order), _limit=None, _offset=0, _distinct=False)


def _finish_conditions(entity: Any, translation: _Translation, items: tuple[Any, ...]) -> tuple[Any, ...]:
    """``items`` without the conditions known true, and a condition no row meets for each known false."""
    if _MARKER_IDS.isdisjoint(map(id, items)):
        return items  # conditions only (the most frequent), found without a Python loop
    result = []
    for item in items:
        if item is _TRUE:
            continue
        if item is _FALSE:
            item = entity._pk_attrs_[0].in_(())  # no row matches an empty IN list
        result.append(item)
    return tuple(result)


def _prepare(
    entity: Any, query: Any, var: str | None, order: bool, selected: str | None = None
) -> tuple[_Translation, Any]:
    kind = "order" if order else "cond"
    if isinstance(query, str):
        namespace = _caller_namespace()
        key: tuple[Any, ...] = (kind, query, var)
        translation = _translations.get((key, entity))
        if translation is None:
            node, where = _parse_text(query, entity)
            translation = _translate_function(
                node, entity, var, where, None, order, _scope_of(*namespace[::-1])
            )
            _remember((key, entity), translation)
        return translation, _string_params(translation, namespace)
    code = query.__code__
    items = _item_params(code, var, selected)
    # a code object hashes its whole contents: the last translation of each is found by id
    hit = _recent.get(id(code))
    if (
        hit is not None
        and hit[0] is code
        and hit[1] is entity
        and hit[2] == (kind, var, None if items is None else selected)
    ):
        translation = hit[3]
    else:
        key = (kind, code, var) if items is None else (kind, code, var, selected)
        translation = _translations.get((key, entity))
        if translation is None:
            node, where = _locate(code, ast.Lambda)
            if items is not None:
                node = _read_items(node, var, cast(str, selected), where)
            cells = dict(zip(code.co_freevars, query.__closure__ or ()))
            closure = {name: cell.cell_contents for name, cell in cells.items() if _has_contents(cell)}
            scope = _scope_of(closure, query.__globals__)
            translation = _translate_function(node, entity, var, where, code.co_freevars, order, scope)
            free = code.co_freevars
            if all(name in free for name in translation.names):
                # the names are among the code's free variables, whose cells the closure holds in order
                translation.cells = tuple(free.index(name) for name in translation.names)
            _remember((key, entity), translation)
        shape = (kind, var, None if items is None else selected)
        _recent[id(code)] = (
            code,
            entity,
            _PLAIN_CONDITION if shape == _PLAIN_CONDITION else shape,
            translation,
        )
    closure = query.__closure__
    free = code.co_freevars
    indexes = translation.cells
    if indexes is not None:
        try:
            values = tuple([closure[index].cell_contents for index in indexes])
        except ValueError:
            unset = next(name for name in translation.names if not _has_contents(closure[free.index(name)]))
            raise noted(
                QueryNameError(f"Free variable `{unset}` referenced before assignment in enclosing scope"),
                f"A name the query reads is not defined yet when it runs: {_where_of(translation)}",
            ) from None
    else:  # a raw_sql() `$name` the lambda's code does not read itself
        own = {name: closure[free.index(name)].cell_contents for name in free if name in translation.names}
        values = _string_params(translation, _caller_namespace(), own)[1]
    return translation, (query.__globals__, values)


def _item_params(code: Any, var: str | None, selected: str | None) -> tuple[str, ...] | None:
    """The parameters of a lambda over a query of values that name its selected items, else None."""
    if selected is None or var is None or code.co_argcount == 0:
        return None
    params = code.co_varnames[: code.co_argcount]
    if params == (var,):
        return None  # the query's own variable
    return params


def _read_items(node: ast.Lambda, var: str | None, selected: str, where: str) -> ast.Lambda:
    """``lambda name, age: age > 18`` over ``select((p.name, p.age) for p in Person)``, as
    ``lambda p: p.age > 18``: each parameter replaced by the selected item it names."""
    parsed = ast.parse(selected, mode="eval").body
    items = parsed.elts if isinstance(parsed, ast.Tuple) else [parsed]
    params = [arg.arg for arg in node.args.args]
    if len(params) != len(items):
        raise TranslationError(
            f"The lambda takes {len(params)} parameters and the query selects {len(items)} items "
            f"({selected}): {where}"
        )
    by_name = dict(zip(params, items))

    class Items(ast.NodeTransformer):
        def visit_Name(self, name: ast.Name) -> ast.AST:
            item = by_name.get(name.id)
            return name if item is None else ast.copy_location(item, name)

    body = Items().visit(copy.deepcopy(node.body))
    lam = _lambda([cast(str, var)], body)
    return ast.fix_missing_locations(ast.copy_location(lam, node))


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - a cell of a name not assigned yet raises
    except ValueError:
        return False
    return True


def _where_of(translation: _Translation) -> str:
    """The query's text and line, for messages."""
    return f"`{translation.text}` (line {translation.line})"


def _caller_namespace() -> tuple[dict[str, Any], dict[str, Any]]:
    """The globals and locals of the nearest caller outside nextorm."""
    frame = sys._getframe(1)
    while frame.f_globals.get("__name__", "").partition(".")[0] == "nextorm":
        assert frame.f_back is not None
        frame = frame.f_back
    return frame.f_globals, dict(frame.f_locals)


def _string_params(
    translation: _Translation, namespace: tuple[dict[str, Any], dict[str, Any]], own: Any = None
) -> Any:
    globals_, locals_ = namespace
    builtins_ = globals_.get("__builtins__", {})
    if not isinstance(builtins_, dict):
        builtins_ = vars(builtins_)
    values = []
    for name in translation.names:
        for scope in (own or {}, locals_, globals_, builtins_):
            if name in scope:
                values.append(scope[name])
                break
        else:
            source = translation.raw_sources.get(name)
            if source is not None:
                # the name a `$name` of raw_sql() reads: named as Python names its missing names
                raise noted(
                    QueryNameError(f"`{source}` raises NameError: name {name!r} is not defined"),
                    f"The name {name!r} is not defined where the query runs: {_where_of(translation)}",
                )
            raise ExprEvalError(
                f"The name {name!r} is not defined where the query runs: {_where_of(translation)}"
            )
    return globals_, tuple(values)


def _remember(key: Any, translation: _Translation) -> None:
    # query texts built with values inside (f-strings) would grow the cache without end
    if len(_translations) >= _CACHE_SIZE:
        _translations.clear()
        _recent.clear()
    _translations[key] = translation


def _parse_text(text: str, entity: Any = None) -> tuple[ast.AST, str]:
    where = f"the query text {text!r}" + (f" of a {entity.__name__} query" if entity is not None else "")
    try:
        # parenthesized, so that a generator's text parses without its own parentheses
        tree = ast.parse(f"({text.strip()}\n)", mode="eval")
    except SyntaxError as exc:
        raise TranslationError(
            f"{where[0].upper()}{where[1:]} is not a Python expression: {exc.msg}"
        ) from None
    body = tree.body
    return body, where


def _evaluate_source(node: ast.expr, namespace: tuple[dict[str, Any], dict[str, Any]], where: str) -> Any:
    code = compile(ast.Expression(body=node), "<query>", "eval")
    source = eval(code, namespace[0], namespace[1])  # the user's own query text, in the caller's scope
    query = source.select() if hasattr(source, "_attrs_by_name_") else source
    if not (hasattr(query, "entity") and hasattr(query, "filter")):
        raise TranslationError(f"Cannot iterate over non-entity object {ast.unparse(node)}")
    return query


# -- finding the source --------------------------------------------------------------------------


def _locate(code: types.CodeType, kind: type[Any]) -> tuple[Any, str]:
    """The syntax tree node of ``code`` (a generator expression or a lambda) in its source file."""
    filename = code.co_filename
    where = f"line {code.co_firstlineno} of {filename}"
    lines = linecache.getlines(filename)
    if not lines:
        raise TranslationError(
            f"The source of the query at {where} is not available (an interactive prompt keeps none): "
            "write the query as a string, select('p for p in Person if p.age > x'), or with attribute "
            "expressions, Person.select(Person.age > x)"
        )
    # positions of zero width stand for the code object's setup, not for any source
    spans: list[tuple[int, int, int, int]] = [
        (a, c, b, d)  # type: ignore[misc]  # None is filtered out
        for a, b, c, d in code.co_positions()
        if None not in (a, b, c, d) and (a, c) != (b, d)
    ]
    first = builtins.min(spans) if spans else (code.co_firstlineno, 0, 0, 0)
    last = builtins.max((b, d) for _, _, b, d in spans) if spans else (code.co_firstlineno, 0)
    nodes = _nodes_of(filename, lines, first[:2], last)
    candidates = [
        node
        for node in nodes
        if isinstance(node, kind)
        and node.lineno == code.co_firstlineno
        and (node.lineno, node.col_offset) <= first[:2]
        and (node.end_lineno, node.end_col_offset) >= last
    ]
    candidates.sort(key=lambda n: (n.end_lineno - n.lineno, n.end_col_offset - n.col_offset))
    for node in candidates:
        if set(code.co_names) <= _identifiers(node):
            return node, f"line {node.lineno} of {filename}"
    raise TranslationError(
        f"The source of the query at {where} does not match the running code (was the file changed "
        "after it was imported?): write the query as a string or with attribute expressions"
    )


def _nodes_of(filename: str, lines: list[str], first: tuple[int, int], last: tuple[int, int]) -> list[Any]:
    cached = _parsed_sources.get(filename)
    if cached is not None and cached[0] is lines:
        return cached[1]
    try:
        tree = ast.parse("".join(lines), filename)
    except SyntaxError:
        # not a Python file as a whole (code run from Markdown, a notebook's cells): the
        # parenthesized expression around the code's own positions
        return _fragment_nodes(filename, lines, first, last)
    nodes: list[Any] = [node for node in ast.walk(tree) if isinstance(node, (ast.GeneratorExp, ast.Lambda))]
    _parsed_sources[filename] = (lines, nodes)
    return nodes


def _fragment_nodes(
    filename: str, lines: list[str], first: tuple[int, int], last: tuple[int, int]
) -> list[Any]:
    """The generators and lambdas of the smallest parenthesized expression holding ``first``..``last``."""
    head, tail = lines[first[0] - 1], lines[last[0] - 1]
    middle = lines[first[0] : last[0] - 1]
    opens = [i for i in range(builtins.min(first[1], len(head) - 1), -1, -1) if head[i] == "("]
    closes = [i for i in range(builtins.max(last[1] - 1, 0), len(tail)) if tail[i] == ")"]
    for start in opens[:8]:
        for end in closes[:8]:
            if first[0] == last[0]:
                text = head[start : end + 1]
            else:
                text = head[start:] + "".join(middle) + tail[: end + 1]
            try:
                # on the file's lines; the first line's columns shifted back into place below
                tree = ast.parse("\n" * (first[0] - 1) + text, filename, mode="eval")
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if getattr(node, "lineno", None) == first[0]:
                    node.col_offset += start  # type: ignore[attr-defined]
                    if node.end_lineno == first[0]:  # type: ignore[attr-defined]
                        node.end_col_offset += start  # type: ignore[attr-defined]
            return [node for node in ast.walk(tree) if isinstance(node, (ast.GeneratorExp, ast.Lambda))]
    raise TranslationError(f"The source file {filename} of a query does not parse")


def _identifiers(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            names.add(child.id)
        elif isinstance(child, ast.Attribute):
            names.add(child.attr)
    return names


# -- entity methods, properties and functions inlined from their source --------------------------

#: the values inlined code reads (functions, classes, default values), by id: `__nx.const(id)`
_inlined_values: dict[int, Any] = {}
_INLINE_DEPTH = 20


def _const(value: Any) -> ast.expr:
    """A node standing for ``value`` when the translated query runs."""
    _inlined_values.setdefault(id(value), value)
    return ast.Call(
        func=ast.Attribute(value=ast.Name(id="__nx", ctx=ast.Load()), attr="const", ctx=ast.Load()),
        args=[ast.Constant(value=id(value))],
        keywords=[],
    )


def _is_query_value(value: Any) -> bool:
    """Whether ``value`` is an entity class or a query (what a list comprehension must not iterate)."""
    return _is_entity(value) or (hasattr(value, "entity") and hasattr(value, "filter"))


def _function_source(function: Any, label: str, inside: str) -> ast.expr:
    """The expression ``function`` returns, from its source: its body is one ``return``."""
    code = function.__code__
    too_complex = TranslationError(
        f"{label}(...) is too complex to decompile{inside}: a method, property or function a query "
        "calls is translated from its source, whose body must be a single `return <expression>`"
    )
    if code.co_name == "<lambda>":
        try:
            node, _ = _locate(code, ast.Lambda)
        except TranslationError:
            raise too_complex from None
        return cast(ast.expr, node.body)
    try:
        # the function's own lines (also of code run from Markdown or a notebook cell)
        tree = ast.parse(textwrap.dedent(inspect.getsource(code)))
    except (OSError, TypeError, SyntaxError, ValueError):
        raise too_complex from None
    definition = tree.body[0] if tree.body else None
    if not isinstance(definition, ast.FunctionDef) or definition.name != code.co_name:
        raise too_complex
    if definition is None or isinstance(definition, ast.AsyncFunctionDef):
        raise too_complex
    body = definition.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]  # the docstring
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        raise too_complex
    args = definition.args
    if args.vararg or args.kwarg or args.posonlyargs or args.kwonlyargs:
        raise too_complex
    return body[0].value


class _Substitute(ast.NodeTransformer):
    """An inlined function's expression with its parameters replaced by the call's arguments.

    Names bound inside it (by a nested generator or lambda) stay; the other names are read where
    the function was defined, when the query runs (``scope``: the node of the function's value).
    """

    def __init__(self, bound: dict[str, ast.expr], scope: ast.expr, taken: set[str]) -> None:
        self.bound = bound
        self.scope = scope
        self.local: list[set[str]] = []
        self.taken = taken
        self.renamed: list[dict[str, str]] = []

    def _bind(self, names: list[str]) -> dict[str, str]:
        renamed = {}
        for name in names:
            if name in self.taken:  # would capture a name of the call's arguments
                fresh = f"{name}_"
                while fresh in self.taken:
                    fresh += "_"
                renamed[name] = fresh
        self.local.append(set(names))
        self.renamed.append(renamed)
        return renamed

    def _unbind(self) -> None:
        self.local.pop()
        self.renamed.pop()

    def visit_Name(self, node: ast.Name) -> Any:
        for names, renamed in zip(reversed(self.local), reversed(self.renamed)):
            if node.id in names:
                return ast.Name(id=renamed.get(node.id, node.id), ctx=node.ctx)
        if node.id in self.bound:
            return copy.deepcopy(self.bound[node.id])
        return ast.Call(
            func=ast.Attribute(value=ast.Name(id="__nx", ctx=ast.Load()), attr="outer", ctx=ast.Load()),
            args=[copy.deepcopy(self.scope), ast.Constant(value=node.id)],
            keywords=[],
        )

    def _comprehension(self, node: Any) -> Any:
        targets = [n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)]
        node.generators[0].iter = self.visit(node.generators[0].iter)
        self._bind(targets)
        try:
            for i, loop in enumerate(node.generators):
                loop.target = self.visit(loop.target)
                if i:
                    loop.iter = self.visit(loop.iter)
                loop.ifs = [self.visit(test) for test in loop.ifs]
            for field in ("elt", "key", "value"):
                if hasattr(node, field):
                    setattr(node, field, self.visit(getattr(node, field)))
        finally:
            self._unbind()
        return node

    visit_GeneratorExp = visit_ListComp = visit_SetComp = visit_DictComp = _comprehension

    def visit_Lambda(self, node: ast.Lambda) -> Any:
        args = node.args
        names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
        renamed = self._bind(names)
        try:
            for a in (*args.posonlyargs, *args.args, *args.kwonlyargs):
                a.arg = renamed.get(a.arg, a.arg)
            node.body = self.visit(node.body)
        finally:
            self._unbind()
        return node


class _Inliner(ast.NodeTransformer):
    """Inlines the entity methods and properties, and the functions, that a query calls on its objects.

    ``p.full_name`` (a property) and ``p.full_name_with(sep)`` (a method) become the expression
    their source returns with ``self`` and the parameters replaced; a function of the enclosing
    scope called with the query's objects (``adult(p)``) likewise. Their other names are read
    where they were defined, each time the query runs.
    """

    def __init__(self, entities: dict[str, Any], where: str, scope: Any) -> None:
        self.entities: list[dict[str, Any]] = [entities]
        self.where = where
        self.scope = scope
        self.inside: list[str] = []
        self.changed = False
        #: checks that the functions of the enclosing scope it inlined are still those
        self.guards: list[ast.expr] = []

    # -- what an expression is, when known before the query runs

    def entity_of(self, node: ast.AST) -> Any:
        """The entity of the object ``node`` reads (``p``, ``p.owner``), or None when not known."""
        if isinstance(node, ast.Name):
            for scope in reversed(self.entities):
                if node.id in scope:
                    return scope[node.id]
            return None
        if isinstance(node, ast.Attribute):
            owner = self.entity_of(node.value)
            attr = self._attr(owner, node.attr) if owner is not None else None
            if attr is not None and getattr(attr, "is_reference", False) and not attr.is_collection:
                return attr.py_type if _is_entity(attr.py_type) else None
        return None

    def element_of(self, node: ast.AST) -> Any:
        """The entity of the objects a ``for`` iterates (``p.cars``), or None when not known."""
        if isinstance(node, ast.Attribute):
            owner = self.entity_of(node.value)
            attr = self._attr(owner, node.attr) if owner is not None else None
            if attr is not None and getattr(attr, "is_collection", False):
                return attr.py_type if _is_entity(attr.py_type) else None
        return None

    @staticmethod
    def _attr(entity: Any, name: str) -> Any:
        return entity._attrs_by_name_.get(name) or getattr(entity, "_relations_by_name_", {}).get(name)

    def _member(self, entity: Any, name: str) -> Any:
        """The method or property ``name`` of ``entity`` defined in Python, or None."""
        if self._attr(entity, name) is not None or entity.__dict__.get("_subclass_names_", {}).get(name):
            return None
        try:
            return inspect.getattr_static(entity, name)
        except AttributeError:
            return None

    # -- scopes of nested generators and lambdas

    def _comprehension(self, node: Any) -> Any:
        scope: dict[str, Any] = {}
        self.entities.append(scope)
        try:
            for loop in node.generators:
                loop.iter = self.visit(loop.iter)
                if isinstance(loop.target, ast.Name):
                    scope[loop.target.id] = self.element_of(loop.iter)
                loop.ifs = [self.visit(test) for test in loop.ifs]
            for field in ("elt", "key", "value"):
                if hasattr(node, field):
                    setattr(node, field, self.visit(getattr(node, field)))
        finally:
            self.entities.pop()
        return node

    visit_GeneratorExp = visit_SetComp = visit_DictComp = _comprehension

    def visit_ListComp(self, node: ast.ListComp) -> Any:
        first = node.generators[0].iter
        source: Any = None
        if self.element_of(first) is not None or self.entity_of(first) is not None:
            source = True
        elif self.scope is not None and isinstance(first, ast.Name):
            try:
                source = _is_query_value(self.scope(first.id))
            except KeyError:
                source = None
        if source:
            text = ast.unparse(ast.GeneratorExp(elt=node.elt, generators=node.generators))[1:-1]
            raise TranslationError(
                f"Use generator expression ({text}) instead of list comprehension [{text}] inside "
                f"query: a query's nested queries are generators: {self._at(node)}"
            )
        return self._comprehension(node)

    def visit_Lambda(self, node: ast.Lambda) -> Any:
        # a collection's method `p.cars.select(lambda c: ...)`: c is an object of the collection
        self.entities.append({a.arg: None for a in node.args.args})
        try:
            node.body = self.visit(node.body)
        finally:
            self.entities.pop()
        return node

    def visit_Call(self, node: ast.Call) -> Any:
        func = node.func
        # p.cars.select(lambda c: ...): the lambda's parameter is an object of the collection
        element = self.element_of(func.value) if isinstance(func, ast.Attribute) else None
        node.func = self.visit(func)
        args: list[ast.expr] = []
        for arg in node.args:
            if element is not None and isinstance(arg, ast.Lambda) and len(arg.args.args) == 1:
                self.entities.append({arg.args.args[0].arg: element})
                try:
                    arg.body = self.visit(arg.body)
                finally:
                    self.entities.pop()
                args.append(arg)
            else:
                args.append(self.visit(arg))
        node.args = args
        node.keywords = [self.visit(keyword) for keyword in node.keywords]
        func = node.func
        entity = self.entity_of(func.value) if isinstance(func, ast.Attribute) else None
        if entity is not None:
            attr_name = cast(ast.Attribute, func).attr
            member = self._member(entity, attr_name)
            if isinstance(member, (staticmethod, classmethod)):
                function = cast(types.FunctionType, member.__func__)
                receiver = None if isinstance(member, staticmethod) else _const(entity)
            elif isinstance(member, types.FunctionType):
                function, receiver = member, cast(ast.Attribute, func).value
            else:
                return node
            return self.inline(function, f"{entity.__name__}.{attr_name}", receiver, node, entity)
        if self.scope is not None and any(self._reads(arg) for arg in node.args):
            function, label = self._scope_function(func)
            if function is not None:
                receiver = None
                if isinstance(func, ast.Attribute) and isinstance(function, classmethod):
                    receiver = func.value
                function = cast(types.FunctionType, getattr(function, "__func__", function))
                scope = ast.Call(
                    func=ast.Attribute(
                        value=ast.Name(id="__nx", ctx=ast.Load()), attr="inlined", ctx=ast.Load()
                    ),
                    args=[func, _const(function.__code__), ast.Constant(value=label)],
                    keywords=[],
                )
                self.guards.append(copy.deepcopy(scope))
                return self.inline(function, label, receiver, node, None, scope)
        return node

    def _scope_function(self, func: ast.expr) -> tuple[Any, str]:
        """The function of the enclosing scope a call names (``adult``, ``Person.older``) to inline."""
        try:
            if isinstance(func, ast.Name):
                function, label = self.scope(func.id), func.id
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                owner = self.scope(func.value.id)
                if not _is_entity(owner):
                    return None, ""
                function = self._member(owner, func.attr)
                label = f"{owner.__name__}.{func.attr}"
            else:
                return None, ""
        except KeyError:
            return None, ""
        if isinstance(function, types.MethodType) and not isinstance(function.__self__, type):
            # a method bound to an object of the scope (`m1 = obj.method`): not inlined
            raise noted(
                UnsupportedQueryError(label),
                f"{label} is a method bound to {function.__self__!r}, which a query does not inline "
                f"(a function or an entity's method is): {self._at(func)}",
            )
        plain = getattr(function, "__func__", function)
        if (
            isinstance(plain, types.FunctionType)
            and not str(getattr(plain, "__module__", "")).startswith("nextorm")
            and plain not in _VALUE_FUNCTIONS
            # a function named as a query function is that function in a query (avg(g.students.gpa))
            and plain.__name__ not in _COLLECTION_FUNCTIONS
            and plain.__name__ not in _VALUE_FUNCTIONS.values()
        ):
            return function, label
        return None, ""

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        node = self.generic_visit(node)  # type: ignore[assignment]
        if not isinstance(node.ctx, ast.Load):
            return node
        entity = self.entity_of(node.value)
        if entity is None:
            return node
        member = self._member(entity, node.attr)
        if isinstance(member, property) and isinstance(member.fget, types.FunctionType):
            return self.inline(member.fget, f"{entity.__name__}.{node.attr}", node.value, node, entity)
        return node

    def _reads(self, node: ast.AST) -> bool:
        return any(
            isinstance(child, ast.Name) and any(child.id in scope for scope in self.entities)
            for child in ast.walk(node)
        )

    def _at(self, node: ast.AST) -> str:
        preposition = "in" if self.where.startswith("the query text") else "at"
        return f"`{_source_text(node)}` {preposition} {self.where}"

    # -- the inlining

    def inline(
        self,
        function: types.FunctionType,
        label: str,
        receiver: ast.expr | None,
        call: ast.AST,
        entity: Any,
        scope: ast.expr | None = None,
    ) -> ast.expr:
        inside = f" (inside {self.inside[-1]})" if self.inside else ""
        if len(self.inside) >= _INLINE_DEPTH:
            raise TranslationError(
                f"{label}() calls itself too deeply to be inlined into a query{inside}: {self._at(call)}"
            )
        body = _function_source(function, label, inside)
        code = function.__code__
        params = list(code.co_varnames[: code.co_argcount])
        given: list[ast.expr] = [] if receiver is None else [receiver]
        keywords: dict[str, ast.expr] = {}
        if isinstance(call, ast.Call):
            if any(isinstance(arg, ast.Starred) for arg in call.args) or any(
                k.arg is None for k in call.keywords
            ):
                raise TranslationError(
                    f"{label}() with * or ** arguments cannot be inlined into a query: {self._at(call)}"
                )
            given += call.args
            keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
        if len(given) > len(params):
            raise TranslationError(
                f"{label}() takes {len(params)} arguments, got {len(given)}: {self._at(call)}"
            )
        defaults = function.__defaults__ or ()
        bound: dict[str, ast.expr] = dict(zip(params, given))
        for name in keywords:
            if name not in params or name in bound:
                raise TranslationError(f"{label}() got an unexpected argument {name!r}: {self._at(call)}")
        bound.update(keywords)
        for i, name in enumerate(params):
            if name not in bound:
                j = i - (len(params) - len(defaults))
                if j < 0:
                    raise TranslationError(f"{label}() is missing the argument {name!r}: {self._at(call)}")
                bound[name] = _const(defaults[j])
        if entity is not None and receiver is not None and params:
            self._check_attributes(body, params[0], entity, label, inside)
        taken = {n.id for value in bound.values() for n in ast.walk(value) if isinstance(n, ast.Name)}
        expression = _Substitute(bound, scope if scope is not None else _const(function), taken).visit(
            copy.deepcopy(body)
        )
        for child in ast.walk(expression):
            ast.copy_location(child, call)
            if hasattr(child, "end_lineno"):
                child.end_lineno, child.end_col_offset = call.end_lineno, call.end_col_offset  # type: ignore[attr-defined]
        self.changed = True
        self.inside.append(label)
        try:
            return cast(ast.expr, self.visit(expression))
        finally:
            self.inside.pop()

    def _check_attributes(self, body: ast.expr, name: str, entity: Any, label: str, inside: str) -> None:
        """``self.x`` naming neither an attribute nor a method or property of the entity."""
        for child in ast.walk(body):
            if (
                isinstance(child, ast.Attribute)
                and isinstance(child.value, ast.Name)
                and child.value.id == name
                and self._attr(entity, child.attr) is None
                and self._member(entity, child.attr) is None
            ):
                raise UnknownAttributeError(
                    f"Entity {entity.__name__} does not have attribute {child.attr}: "
                    f"{ast.unparse(child)} (inside {label})"
                )


class _Display(ast.NodeTransformer):
    """Inlined code as its source read: the helpers reading its names shown as the names."""

    def visit_Call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "__nx":
            if func.attr == "outer":
                return ast.Name(id=str(cast(ast.Constant, node.args[1]).value), ctx=ast.Load())
            if func.attr == "inlined":
                return node.args[0]
            if func.attr == "arith":
                op = next(
                    kind
                    for kind, symbol in _SYMBOLS.items()
                    if symbol == cast(ast.Constant, node.args[0]).value
                )
                return ast.BinOp(left=self.visit(node.args[1]), op=op(), right=self.visit(node.args[2]))
            if func.attr == "const":
                value = _inlined_values.get(cast(int, cast(ast.Constant, node.args[0]).value))
                name = getattr(value, "__name__", None)
                return (
                    ast.Name(id=name, ctx=ast.Load()) if isinstance(name, str) else ast.Constant(value=value)
                )
        return self.generic_visit(node)


def _source_text(node: ast.AST) -> str:
    """The text of ``node`` for messages, as written (``sum(x for x in ...)`` keeps one pair of parentheses)."""
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        arg = node.args[0]
        if isinstance(arg, ast.GeneratorExp):
            return f"{_source_text(node.func)}({_source_text(arg)[1:-1]})"
    text = ast.unparse(node)
    if "__nx." not in text:
        return text
    try:
        return ast.unparse(_Display().visit(copy.deepcopy(node)))
    except Exception:  # a value ast.unparse cannot spell: the text as it is
        return text


def _inline(node: Any, entities: dict[str, Any], where: str, scope: Any) -> Any:
    """``node`` with the methods, properties and functions it calls on the query's objects inlined."""
    inliner = _Inliner(entities, where, scope)
    copied = inliner.visit(copy.deepcopy(node))
    return (copied, inliner.guards) if inliner.changed else (node, [])


def _inline_generator(node: ast.GeneratorExp, entity: Any, where: str, scope: Any) -> Any:
    """A generator query with the methods, properties and functions it calls inlined."""
    inliner = _Inliner({}, where, scope)
    top = inliner.entities[0]
    copied = copy.deepcopy(node)
    for i, loop in enumerate(copied.generators):
        if i:
            loop.iter = inliner.visit(loop.iter)
        if isinstance(loop.target, ast.Name):
            top[loop.target.id] = entity if i == 0 else inliner.element_of(loop.iter)
        loop.ifs = [inliner.visit(test) for test in loop.ifs]
    copied.elt = inliner.visit(copied.elt)
    return (copied, inliner.guards) if inliner.changed else (node, [])


def _scope_of(*scopes: Any) -> Any:
    """A lookup of names in ``scopes`` (dicts, tried in order) and the builtins; KeyError if none."""

    def lookup(name: str) -> Any:
        for scope in scopes:
            if name in scope:
                return scope[name]
        builtins_ = scopes[-1].get("__builtins__", builtins)
        return (builtins_ if isinstance(builtins_, dict) else vars(builtins_))[name]

    return lookup


# -- rewriting the syntax tree -------------------------------------------------------------------


def _generator_vars(node: ast.GeneratorExp, where: str) -> list[str]:
    names = []
    for loop in node.generators:
        if loop.is_async:
            raise TranslationError(f"`async for` is not supported in queries: {where}")
        if not isinstance(loop.target, ast.Name):
            raise TranslationError(
                f"The `for` of a query takes one name, got `{ast.unparse(loop.target)}`: {where}"
            )
        names.append(loop.target.id)
    return names


def _generator_var(node: ast.GeneratorExp, where: str) -> str:
    """The name of the objects a generator query selects."""
    names = _generator_vars(node, where)
    if len(names) > 1 and isinstance(node.elt, ast.Name) and node.elt.id in names:
        return node.elt.id
    return names[0]


def _translate_generator(
    node: Any,
    entity: Any,
    where: str,
    scope_names: Any,
    scope: Any = None,
    shape: tuple[bool, tuple[bool, ...]] | None = None,
    source: str = "",
) -> _Translation:
    if shape is not None or isinstance(node.generators[0].target, ast.Tuple):
        return _translate_over_values(node, entity, where, scope_names, shape, source)
    names = _generator_vars(node, where)
    node, guards = _inline_generator(node, entity, where, scope)
    values = not (isinstance(node.elt, ast.Name) and node.elt.id in names)
    var = names[0] if values else _generator_var(node, where)
    root_index = names.index(var)
    if root_index:
        # the selected `for` iterates a collection of the first one: its entity is the query's
        chain: list[str] = []
        iter_node = node.generators[root_index].iter
        while isinstance(iter_node, ast.Attribute):
            chain.insert(0, iter_node.attr)
            iter_node = iter_node.value
        if not (isinstance(iter_node, ast.Name) and iter_node.id == names[0] and chain):
            raise TranslationError(
                f"The selected `for {var}` comes first or iterates over a collection of the first "
                f"`for`'s objects: {where}"
            )
        entity = _Runtime.root_of(entity, where, *chain)
    rewriter = _Rewriter(entity, var, where)
    rewriter.guards = [rewriter.external(guard) for guard in guards]
    if len(names) == 1:
        return _translate_single(node, var, rewriter, scope_names)
    return _translate_join(node, names, var, rewriter, scope_names, values)


def _translate_single(
    node: Any, var: str, rewriter: _Rewriter, scope_names: Any, values: tuple[str, ...] = ()
) -> _Translation:
    """One ``for`` clause: what it selects and its conditions."""
    selected, is_tuple = rewriter.selection(node.elt)
    ifs = node.generators[0].ifs
    body = [] if selected is None else [selected]
    if ifs:
        # several `if` clauses mean what `and` between them means
        body.append(rewriter.condition(ifs[0] if len(ifs) == 1 else ast.BoolOp(op=ast.And(), values=ifs)))
    translation = _compile(node, body, var, scope_names, rewriter, extra=values)
    translation.shape = None if selected is None else "tuple" if is_tuple else "one"
    elt = node.elt
    translation.selected = ast.unparse(elt)[1:-1] if isinstance(elt, ast.Tuple) else ast.unparse(elt)
    return translation


def _translate_over_values(
    node: Any,
    entity: Any,
    where: str,
    scope_names: Any,
    shape: tuple[bool, tuple[bool, ...]] | None,
    source: str,
) -> _Translation:
    """A query over a query of values (``x for x in q``, ``(a, b) for a, b in q``): each name
    stands for the value (or the object) that query selects, and the result is that query
    refined by the conditions and selecting the new items."""
    loop = node.generators[0]
    target = loop.target
    if len(node.generators) > 1 or loop.is_async:
        raise TranslationError(f"A query over a query of values takes one `for` clause: {where}")
    if isinstance(target, ast.Tuple) and all(isinstance(e, ast.Name) for e in target.elts):
        targets = [cast(ast.Name, e).id for e in target.elts]
    elif isinstance(target, ast.Name):
        targets = [target.id]
    else:
        raise TranslationError(
            f"The `for` of a query takes one name or a tuple of names, got `{ast.unparse(target)}`: {where}"
        )
    is_tuple, objects = shape if shape is not None else (False, (True,))
    if isinstance(target, ast.Tuple):
        if len(targets) != len(objects):
            kind = "Too many" if len(targets) > len(objects) else "Not enough"
            raise TranslationError(
                f'{kind} values to unpack "for {ast.unparse(target)[1:-1]} in select({source} for ...)" '
                f"(expected {len(targets)}, got {len(objects)})"
            )
    elif is_tuple:
        raise UnsupportedQueryError(
            f"Please unpack a tuple of ({source}) in for-loop to individual variables "
            f'(like: "for x, y in ..."): {where}'
        )
    own = [name for name, is_object in zip(targets, objects) if is_object]
    if len(own) > 1:
        raise TranslationError(f"A query over a query selecting its object twice is not supported: {where}")
    var = own[0] if own else "__object"
    values = tuple(name for name, is_object in zip(targets, objects) if not is_object)
    if len(set(targets)) != len(targets):
        raise TranslationError(f"The `for` of a query names each item once: {where}")
    rewriter = _Rewriter(entity, var, where)
    rewriter.values = set(values)
    return _translate_single(node, var, rewriter, scope_names, values)


def _translate_join(
    node: Any, names: list[str], var: str, rewriter: _Rewriter, scope_names: Any, values: bool = False
) -> _Translation:
    """Several ``for`` clauses: the selected one is the query's object, the others a nested query;
    selecting values (``values``), the first is the query's object and the others tables of its FROM."""
    root_index = names.index(var)
    root_path: tuple[str, ...] | None = None
    others = [n for n in names if n != var]
    rewriter.push(others)
    iters: list[ast.expr] = []
    conditions: list[ast.expr] = []
    own: list[ast.expr] = []
    for i, loop in enumerate(node.generators):
        earlier = names[:i]
        if i == root_index:
            if i == 0:
                made: ast.expr = ast.Constant(value=None)
            else:
                chain = rewriter.chain(loop.iter)
                if chain is None or chain[0] != names[0] or chain[0] == var:
                    raise TranslationError(
                        f"The selected `for {var}` iterates over a collection of the first `for`'s "
                        f"objects, or comes first: {rewriter._at(loop.iter)}"
                    )
                root_path = tuple(chain[1])
                made = rewriter._helper(
                    "collection_of",
                    ast.Name(id=chain[0], ctx=ast.Load()),
                    ast.Name(id=var, ctx=ast.Load()),
                    ast.Constant(value=rewriter._at(loop.iter)),
                    *[ast.Constant(value=n) for n in chain[1]],
                )
        elif i == 0 and root_index != 0:
            made = ast.Name(id="__first", ctx=ast.Load())
        elif rewriter.uses_var(loop.iter):
            made = rewriter.operand(loop.iter)
        else:
            made = rewriter.external(loop.iter)
        iters.append(_lambda(earlier, made))
        for test in loop.ifs:
            for part in _conjuncts(test):
                # a condition on the selected objects alone stays outside the nested query
                uses_others = any(isinstance(n, ast.Name) and n.id in others for n in ast.walk(part))
                (conditions if uses_others else own).append(rewriter.condition(part))
    at = ast.Constant(value=rewriter._at(node))
    selection: ast.expr = ast.Constant(value=None)
    is_tuple = False
    if values:
        selected, is_tuple = rewriter.selection(node.elt)
        selection = _lambda(names, cast(ast.expr, selected))
    body = [
        rewriter._helper(
            "join",
            at,
            ast.Name(id=var, ctx=ast.Load()),
            ast.Tuple(elts=iters, ctx=ast.Load()),
            _lambda(names, ast.Tuple(elts=conditions, ctx=ast.Load())),
            ast.Name(id="__optional", ctx=ast.Load()),
            ast.Tuple(
                elts=[
                    ast.Constant(value=f"for {ast.unparse(loop.target)} in {_source_text(loop.iter)}")
                    for loop in node.generators
                ],
                ctx=ast.Load(),
            ),
            selection,
        ),
        *own,
    ]
    rewriter.pop()
    translation = _compile(node, body, var, scope_names, rewriter, extra=("__first", "__optional"))
    translation.root_path = root_path
    translation.several = True
    if values:
        translation.shape = "tuple" if is_tuple else "one"
        elt = node.elt
        translation.selected = ast.unparse(elt)[1:-1] if isinstance(elt, ast.Tuple) else ast.unparse(elt)
    return translation


def _conjuncts(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return [part for value in node.values for part in _conjuncts(value)]
    return [node]


def _lambda(params: list[str], body: ast.expr) -> ast.Lambda:
    return ast.Lambda(
        args=ast.arguments(
            posonlyargs=[], args=[ast.arg(arg=p) for p in params], kwonlyargs=[], kw_defaults=[], defaults=[]
        ),
        body=body,
    )


def _translate_function(
    node: Any, entity: Any, var: str | None, where: str, scope_names: Any, order: bool, scope: Any = None
) -> _Translation:
    if isinstance(node, ast.Lambda):
        args = node.args
        if args.posonlyargs or args.kwonlyargs or args.vararg or args.kwarg or len(args.args) > 1:
            raise TranslationError(f"A query lambda takes one parameter, the object: {where}")
        if args.args:
            var = args.args[0].arg
        body_node = node.body
    else:
        body_node = node
    if var is None:
        raise TranslationError(
            f"A query condition without a parameter needs a query written as a generator, whose "
            f"variable it uses; write `lambda x: ...`: {where}"
        )
    body_node, guards = _inline(body_node, {var: entity}, where, scope)
    rewriter = _Rewriter(entity, var, where)
    rewriter.guards = [rewriter.external(guard) for guard in guards]
    if order:
        items = body_node.elts if isinstance(body_node, ast.Tuple) else [body_node]
        body = [rewriter.order_item(item) for item in items]
    else:
        body = [rewriter.condition(body_node)]
    return _compile(node, body, var, scope_names, rewriter)


def _compile(
    node: Any,
    body: list[ast.expr],
    var: str,
    scope_names: Any,
    rewriter: _Rewriter,
    extra: tuple[str, ...] = (),
) -> _Translation:
    # query text reads every name from its caller's scope; code reads its free variables from
    # the frame or closure, and the rest as globals of its module
    used = rewriter.names_used - {var} - set(extra)
    # raw_sql's `$name`s are read where the query runs, as Pony reads them, also when the code
    # itself does not mention them
    raw = rewriter.raw_names - {var} - set(extra)
    names = tuple(sorted(used if scope_names is None else used & set(scope_names) | raw))
    arguments = ast.arguments(
        posonlyargs=[],
        args=[ast.arg(arg="__nx"), ast.arg(arg=var)]
        + [ast.arg(arg=name) for name in extra]
        + [ast.arg(arg=name) for name in names],
        kwonlyargs=[],
        kw_defaults=[],
        defaults=[],
    )
    result: ast.expr = ast.Tuple(elts=body, ctx=ast.Load())
    if rewriter.guards:
        # the inlined functions checked first: (check, ..., (items...))[-1]
        result = ast.Subscript(
            value=ast.Tuple(elts=[*rewriter.guards, result], ctx=ast.Load()),
            slice=ast.Constant(value=-1),
            ctx=ast.Load(),
        )
    function = ast.Lambda(args=arguments, body=result)
    ast.copy_location(function, node)
    module = ast.Expression(body=function)
    ast.fix_missing_locations(module)
    code = compile(module, rewriter.filename, "eval")
    function_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    text = _source_text(node)
    translation = _Translation(
        function_code, names, var, text, getattr(node, "lineno", 1), tuple(rewriter.externals)
    )
    translation.comparisons = tuple(rewriter.comparisons)
    translation.operations = tuple(rewriter.operations)
    translation.raw_sources = {
        name: rewriter.raw_sources[name] for name in raw if name in rewriter.raw_sources
    }
    return translation


class _Rewriter:
    """Rewrites a query's conditions into calls of the attribute-expression API.

    The query's own object (``var``) is its entity class when the function runs, so ``p.age`` is
    the attribute itself; anything reading other tables (paths through references and
    collections, objects of nested generators and of other ``for`` clauses) goes through the
    runtime's helpers, which build the joins and nested queries.
    """

    def __init__(self, entity: Any, var: str, where: str) -> None:
        self.entity = entity
        self.var = var
        self.where = where
        # `where` is "line N of FILE" for source code, "the query text '...'" for a string
        self.filename = "<query>" if where.startswith("the query text") else where.partition(" of ")[2]
        self.names_used: set[str] = set()
        #: the source spans and text of the values taken from the scope (for ExprEvalError)
        self.externals: list[tuple[tuple[int, int, int, int], str]] = []
        #: the same of the comparisons of an attribute with a value compiled as Python comparisons
        self.comparisons: list[tuple[tuple[int, int, int, int], str]] = []
        #: the same of the string operations (indexes, slices, methods, `in`), for their errors
        self.operations: list[tuple[tuple[int, int, int, int], str]] = []
        #: names of the objects of nested generators and other `for` clauses, innermost last
        self.scopes: list[list[str]] = []
        #: the names raw_sql() fragments read (``$name``)
        self.raw_names: set[str] = set()
        #: the text of the raw_sql() call that first reads each of them
        self.raw_sources: dict[str, str] = {}
        #: checks that the functions of the enclosing scope the query inlined are still those
        self.guards: list[ast.expr] = []
        #: of a query over a query of values: the names standing for its values
        self.values: set[str] = set()

    # -- helpers

    def _at(self, node: ast.AST) -> str:
        if self.filename == "<query>":
            return f"`{_source_text(node)}` in {self.where}"
        return f"`{_source_text(node)}` at line {getattr(node, 'lineno', '?')} of {self.filename}"

    def unsupported(self, construct: str, node: ast.AST) -> TranslationError:
        """The error for a construct the expression layer does not offer yet."""
        return UnsupportedQueryError(
            f"{construct} is not supported in queries yet: {self._at(node)}; "
            "select_by_sql() can express it in SQL"
        )

    def refused(self, message: str, node: ast.AST, construct: str | None = None) -> TranslationError:
        """An UnsupportedQueryError whose message keeps Pony's wording; a note names the query."""
        return noted(
            UnsupportedQueryError(message),
            f"{construct or 'This'} is not supported in queries: {self._at(node)}",
        )

    def _helper(self, name: str, *args: ast.expr) -> ast.expr:
        return ast.Call(
            func=ast.Attribute(value=ast.Name(id="__nx", ctx=ast.Load()), attr=name, ctx=ast.Load()),
            args=list(args),
            keywords=[],
        )

    def _marker(self, value: bool) -> ast.expr:
        return ast.Attribute(
            value=ast.Name(id="__nx", ctx=ast.Load()), attr="TRUE" if value else "FALSE", ctx=ast.Load()
        )

    def _method(self, target: ast.expr, name: str, *args: ast.expr) -> ast.expr:
        return ast.Call(
            func=ast.Attribute(value=target, attr=name, ctx=ast.Load()), args=list(args), keywords=[]
        )

    def _reads(self, node: ast.AST) -> bool:
        """Whether ``node`` reads the query's rows (its objects, a raw_sql() fragment, or their
        number: ``count()``, ``count('*')``)."""
        return self.uses_var(node) or any(
            _is_raw_sql(child) or _is_row_count(child) for child in ast.walk(node)
        )

    # -- what a query selects

    def selection(self, node: ast.expr) -> tuple[ast.expr | None, bool]:
        """The selected items of a generator (None for the objects themselves) and whether it is a tuple."""
        if isinstance(node, ast.Name) and self.is_own(node.id):
            return None, False
        if isinstance(node, ast.Tuple):
            if not node.elts:
                raise self.unsupported("Selecting an empty tuple", node)
            return ast.Tuple(elts=[self.item(elt) for elt in node.elts], ctx=ast.Load()), True
        return ast.Tuple(elts=[self.item(node)], ctx=ast.Load()), False

    def item(self, node: ast.expr) -> ast.expr:
        """One selected item: the object, or a value."""
        if isinstance(node, ast.Name) and self.is_own(node.id):
            return node
        if not self._reads(node):
            if isinstance(node, ast.Name):
                # evaluated when the query runs: a name not defined raises ExprEvalError there
                return self._helper("scope_item", self.external(node), ast.Constant(value=node.id))
            raise self.unsupported("Selecting a value that does not read the query's object", node)
        return self._helper("item", self.operand(node), ast.Constant(value=self._at(node)))

    def push(self, names: list[str]) -> None:
        """Enter a nested generator (or the other ``for`` clauses) naming objects ``names``."""
        self.scopes.append(names)

    def pop(self) -> None:
        """Leave the innermost nested generator."""
        self.scopes.pop()

    def is_var(self, name: str) -> bool:
        """Whether ``name`` names an object of the query (its own or a nested one)."""
        return name == self.var or name in self.values or any(name in scope for scope in self.scopes)

    def is_own(self, name: str) -> bool:
        """Whether ``name`` names the query's own object here (a nested generator may reuse the name)."""
        return name == self.var and not self.is_nested_var(name)

    def is_nested_var(self, name: str) -> bool:
        for scope in reversed(self.scopes):
            if name in scope:
                return True
        return False

    def uses_var(self, node: ast.AST) -> bool:
        """Whether ``node`` reads the query's objects (or holds a nested generator); a lambda's own
        parameters are not the query's objects (``Student.select(lambda s: s.gpa > 3)``)."""
        return any(
            (isinstance(child, ast.Name) and self.is_var(child.id)) or isinstance(child, ast.GeneratorExp)
            for child in _free_walk(node)
        )

    def external(self, node: ast.expr) -> ast.expr:
        """A value from the enclosing scope, evaluated as Python and bound as a parameter."""
        constructed = False
        for child in ast.walk(node):
            if isinstance(child, ast.GeneratorExp):
                raise self.unsupported(_construct(child), child)
            if isinstance(child, ast.Name) and child.id != "__nx":  # __nx: inlined code's helpers
                self.names_used.add(child.id)
            constructed = constructed or _is_constructor_call(child)
        self._spanned(self.externals, node)
        return self._checked_constructors(node) if constructed else node

    def _checked_constructors(self, node: ast.expr) -> ast.expr:
        """``node`` with each call of date(), datetime() or bytes() made through the runtime's
        ``construct``, which names an argument that does not fit."""
        rewriter = self

        class Checked(ast.NodeTransformer):
            def visit_Call(self, call: ast.Call) -> ast.AST:
                self.generic_visit(call)
                if not _is_constructor_call(call):
                    return call
                made = rewriter._helper(
                    "construct", call.func, ast.Constant(value=rewriter._at(call)), *call.args
                )
                made.keywords = call.keywords  # type: ignore[attr-defined]
                return ast.copy_location(made, call)

        return cast(ast.expr, Checked().visit(copy.deepcopy(node)))

    def _operation(self, made: ast.expr, node: ast.AST) -> ast.expr:
        """``made``, the rewriting of the operation ``node``, at its place in the source: an error
        of the operation names it as written (``s.name[1:3:5]``)."""
        self._spanned(self.operations, node)
        return ast.copy_location(made, node)

    @staticmethod
    def _spanned(spans: list[tuple[tuple[int, int, int, int], str]], node: ast.AST) -> None:
        """Record ``node``'s source span and text (to name it when its evaluation fails)."""
        if getattr(node, "end_col_offset", None) is not None:
            span = (node.lineno, node.col_offset, node.end_lineno or node.lineno, node.end_col_offset or 0)  # type: ignore[attr-defined]
            spans.append((span, _source_text(node)))

    def chain(self, node: ast.AST) -> tuple[str, list[str]] | None:
        """``(var, [a, b])`` for ``var.a.b`` where var names an object of the query."""
        names: list[str] = []
        while isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and self.is_var(node.id) and names:
            return node.id, names[::-1]
        return None

    # -- conditions

    def condition(self, node: ast.expr) -> ast.expr:
        """A condition in boolean context."""
        if _is_raw_sql(node):
            return self._helper("truth", self.raw_sql(node), ast.Constant(value=self._at(node)))  # type: ignore[arg-type]
        if not self._reads(node):
            return self._helper("known", self.external(node))
        if isinstance(node, ast.BoolOp):
            return self._bool_op(isinstance(node.op, ast.And), node.values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self._helper("not_", self.condition(node.operand))
        if isinstance(node, ast.Compare):
            pairs = []
            left = node.left
            for op, right in zip(node.ops, node.comparators):
                pairs.append(self.compare(left, op, right, node))
                left = right
            return pairs[0] if len(pairs) == 1 else self._helper("and_", *pairs)
        if isinstance(node, ast.Attribute) and self._is_column(node):
            attr = self.column_attr(node)
            if attr.py_type is bool:
                return ast.Compare(left=node, ops=[ast.Eq()], comparators=[ast.Constant(value=True)])
        if isinstance(node, ast.Call):
            return self._helper("truth", self.call(node), ast.Constant(value=self._at(node)))
        if isinstance(
            node,
            (ast.Attribute, ast.Name, ast.GeneratorExp, ast.Subscript, ast.BinOp, ast.JoinedStr, ast.IfExp),
        ):
            return self._helper("truth", self.operand(node), ast.Constant(value=self._at(node)))
        raise self.unsupported(_construct(node), node)

    def _bool_op(self, is_and: bool, values: list[ast.expr]) -> ast.expr:
        # Operands from the enclosing scope keep Python's short-circuit: `x and p.a == x.a`
        # does not evaluate `x.a` when x is None.
        first, rest = values[0], values[1:]
        if not rest:
            return self.condition(first)
        if not self._reads(first):
            test = self.external(first)
            remainder = self._bool_op(is_and, rest)
            return (
                ast.IfExp(test=test, body=remainder, orelse=self._marker(False))
                if is_and
                else ast.IfExp(test=test, body=self._marker(True), orelse=remainder)
            )
        return self._helper("and_" if is_and else "or_", self.condition(first), self._bool_op(is_and, rest))

    def _is_plain(self, node: ast.AST) -> bool:
        """Whether ``node`` is a column of the query's own object (``p.age``), read directly."""
        if not self._is_column(node):
            return False
        attr = self.column_attr(node)  # type: ignore[arg-type]
        return attr is not None and not getattr(attr, "is_collection", False) and attr.is_column

    def compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr, whole: ast.AST) -> ast.expr:
        """One comparison of a (possibly chained) comparison."""
        node = ast.Compare(left=left, ops=[op], comparators=[right])
        ast.copy_location(node, whole)
        left_col, right_col = self._reads(left), self._reads(right)
        if not (left_col or right_col):
            return ast.IfExp(test=self.external(node), body=self._marker(True), orelse=self._marker(False))
        where = ast.Constant(value=self._at(node))
        if isinstance(op, (ast.In, ast.NotIn)) and isinstance(left, ast.Tuple) and left_col:
            # `(p.a, p.b) in [(1, 2), ...]` or in a generator of tuples
            row = ast.Tuple(elts=[self.operand(elt) for elt in left.elts], ctx=ast.Load())
            rows = self.operand(right) if right_col else self.external(right)
            return self._helper("row_in", row, rows, ast.Constant(value=isinstance(op, ast.NotIn)), where)
        if isinstance(op, (ast.In, ast.NotIn)):
            negate = ast.Constant(value=isinstance(op, ast.NotIn))
            if not right_col:
                if isinstance(left, ast.Name) and self.is_own(left.id):
                    return self._helper("same_in", left, self.external(right), negate, where)
                if self._is_plain(left):
                    return self._helper("in_", left, self.external(right), negate, where)
                return self._helper("member", self.operand(left), self.external(right), negate, where)
            if not left_col and self._has_items(right):
                target = right if self._is_plain(right) else self.items(right)
                return self._helper("contains", target, self.external(left), negate)
            if not left_col and self._is_plain(right):
                attr = self.column_attr(right)
                if getattr(attr, "py_type", None) is not str:
                    raise self.unsupported("`in` on a non-string attribute", node)
                return self._operation(self._helper("contains", right, self.external(left), negate), node)
            item = self.operand(left) if left_col else self.external(left)
            return self._helper("member", item, self.operand(right), negate, where)
        if left_col and right_col:
            return self._helper(
                "compare",
                self.operand(left),
                ast.Constant(value=_OP_NAMES[type(op)]),
                self.operand(right),
                where,
            )
        column_side, value_side = (left, right) if left_col else (right, left)
        if self._is_items(column_side):
            return self._items_compare(column_side, op, value_side, left_col)
        if (
            isinstance(op, (ast.Is, ast.IsNot))
            and isinstance(value_side, ast.Constant)
            and (value_side.value is True or value_side.value is False)
        ):
            # `x is True` of a bool column or a condition: its value, as `==` compares it
            wanted = (value_side.value is True) == isinstance(op, ast.Is)
            if isinstance(column_side, (ast.Compare, ast.BoolOp, ast.UnaryOp)):
                test = self.condition(column_side)
                return test if wanted else self._helper("not_", test)
            return self.compare(left, ast.Eq() if isinstance(op, ast.Is) else ast.NotEq(), right, whole)
        if isinstance(op, (ast.Is, ast.IsNot)):
            if not (isinstance(value_side, ast.Constant) and value_side.value is None):
                raise self.unsupported("`is` with anything but None", node)
            if not self._is_plain(column_side):
                return self._helper(
                    "compare",
                    self.operand(column_side),
                    ast.Constant(value=_OP_NAMES[type(op)]),
                    ast.Constant(value=None),
                    where,
                )
            method = "is_" if isinstance(op, ast.Is) else "is_not"
            return ast.Call(
                func=ast.Attribute(value=column_side, attr=method, ctx=ast.Load()),
                args=[ast.Constant(value=None)],
                keywords=[],
            )
        if isinstance(column_side, ast.Name) and self.is_own(column_side.id):
            if not isinstance(op, (ast.Eq, ast.NotEq)):
                raise self.unsupported("An ordering comparison of objects", node)
            return self._helper(
                "same",
                ast.Name(id=self.var, ctx=ast.Load()),
                self.external(value_side),
                ast.Constant(value=isinstance(op, ast.NotEq)),
                where,
            )
        if self._is_plain(column_side):
            value = self.external(value_side)
            plain = ast.Compare(
                left=column_side if left_col else value,
                ops=[op],
                comparators=[value if left_col else column_side],
            )
            ast.copy_location(plain, node)
            self._spanned(self.comparisons, node)
            return plain
        operand, value = self.operand(column_side), self.external(value_side)
        return self._helper(
            "compare",
            operand if left_col else value,
            ast.Constant(value=_OP_NAMES[type(op)]),
            value if left_col else operand,
            where,
        )

    def _is_items(self, node: ast.AST) -> bool:
        """Whether ``node`` is a Json path or an array item (``p.info["k"][0]``), or ``len()`` of one or of a column."""
        if isinstance(node, ast.Subscript):
            inner = node.value
        elif _is_len(node):
            inner = cast(ast.Call, node).args[0]
        else:
            return False
        return self._has_items(inner)

    def _has_items(self, node: ast.AST) -> bool:
        """Whether ``node`` is a Json or array column of the query's object, or a path into one."""
        if self._is_plain(node):
            return bool(getattr(self.column_attr(node), "has_items", False))  # type: ignore[arg-type]
        return isinstance(node, ast.Subscript) and self._is_items(node)

    def items(self, node: ast.expr) -> ast.expr:
        """A Json path, array item or ``len()`` as the value the database computes (indexes from the scope)."""
        if isinstance(node, ast.Subscript):
            base = node.value if self._is_plain(node.value) else self.items(node.value)
            return ast.Subscript(value=base, slice=self.index(node.slice), ctx=ast.Load())
        arg = cast(ast.Call, node).args[0]
        base = arg if self._is_plain(arg) else self.items(arg)
        return self._helper("length", base, ast.Constant(value=self._at(node)))

    def _items_compare(
        self, column_side: ast.expr, op: ast.cmpop, value_side: ast.expr, left_col: bool
    ) -> ast.expr:
        """A Json path, array item or length compared with a value (``is None``/``is True`` included)."""
        column = self.items(column_side)
        if isinstance(op, (ast.Is, ast.IsNot)):
            if not (isinstance(value_side, ast.Constant) and value_side.value in (None, True, False)):
                raise self.unsupported("`is` with anything but None, True or False", value_side)
            if value_side.value is None:
                method = "is_" if isinstance(op, ast.Is) else "is_not"
                return ast.Call(
                    func=ast.Attribute(value=column, attr=method, ctx=ast.Load()),
                    args=[ast.Constant(value=None)],
                    keywords=[],
                )
            op = ast.Eq() if isinstance(op, ast.Is) else ast.NotEq()  # `is True`: the JSON true
        value = self.external(value_side)
        return ast.Compare(
            left=column if left_col else value, ops=[op], comparators=[value if left_col else column]
        )

    def operand(self, node: ast.expr) -> ast.expr:
        """A value that reads the query's objects: a column, an object, a collection, a nested
        query, or a value computed from them (arithmetic, functions, f-strings, raw SQL)."""
        if _is_raw_sql(node):
            return self.raw_sql(node)  # type: ignore[arg-type]
        if not self._reads(node):
            return self.external(node)
        if isinstance(node, ast.Name):
            return node
        if isinstance(node, ast.Attribute):
            inner = node.value
            if node.attr in _PARTS and (
                (self._is_plain(inner) and not self.column_attr(inner).is_reference)
                or not (isinstance(inner, ast.Name) or self.chain(inner) is not None)
            ):
                return ast.Attribute(value=self.operand(inner), attr=node.attr, ctx=ast.Load())
            return self.column(node)
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ARITHMETIC):
                raise self.unsupported(f"The operator {type(node.op).__name__}", node)
            return self._helper(
                "arith",
                ast.Constant(value=_SYMBOLS[type(node.op)]),
                self.operand(node.left),
                self.operand(node.right),
                ast.Constant(value=_source_text(node)),
                ast.Constant(value=self._at(node)),
            )
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return self._helper("neg", self.operand(node.operand))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
            return self.operand(node.operand)
        if isinstance(node, ast.Subscript):
            return self._operation(
                ast.Subscript(value=self.operand(node.value), slice=self.index(node.slice), ctx=ast.Load()),
                node,
            )
        if isinstance(node, ast.JoinedStr):
            parts: list[ast.expr] = []
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    if part.format_spec is not None:
                        raise self.refused(
                            "You cannot set width and precision for f-string expression in query",
                            node,
                            "A format specification in an f-string",
                        )
                    if part.conversion not in (-1, ord("s")):
                        raise self.refused(
                            "You cannot specify conversion type for f-string expression in query",
                            node,
                            "A conversion (!r, !a) in an f-string",
                        )
                    parts.append(self.operand(part.value))
                else:
                    parts.append(part)
            return self._helper("fstring", *parts)
        if isinstance(node, ast.IfExp):
            branches = [
                self.operand(b) if self._reads(b) else self.external(b) for b in (node.body, node.orelse)
            ]
            return self._helper(
                "case", self.condition(node.test), *branches, ast.Constant(value=self._at(node))
            )
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.GeneratorExp):
            return self.generator(node)
        if isinstance(node, (ast.Compare, ast.BoolOp)) or (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
        ):
            return self.condition(node)
        raise self.unsupported(_construct(node), node)

    def index(self, node: ast.expr) -> ast.expr:
        """An index or a slice: each bound a value of the query's objects or of the enclosing scope."""
        if isinstance(node, ast.Slice):
            parts = [
                None if part is None else self.index(part) for part in (node.lower, node.upper, node.step)
            ]
            return ast.Slice(lower=parts[0], upper=parts[1], step=parts[2])
        return self.operand(node) if self._reads(node) else self.external(node)

    def generator(self, node: ast.GeneratorExp) -> ast.expr:
        """A nested generator: a nested query over its ``for`` clauses."""
        names = _generator_vars(node, self._at(node))
        self.push(names)
        try:
            iters: list[ast.expr] = []
            conditions: list[ast.expr] = []
            for i, loop in enumerate(node.generators):
                made = self.operand(loop.iter) if self.uses_var(loop.iter) else self.external(loop.iter)
                iters.append(_lambda(names[:i], made))
                conditions += [self.condition(c) for c in loop.ifs]
            elt = node.elt
            if isinstance(elt, ast.Tuple):  # a generator of tuples (for `(a, b) in ...`)
                value: ast.expr = ast.Tuple(elts=[self.operand(e) for e in elt.elts], ctx=ast.Load())
            else:
                value = self.operand(elt)
            elt_condition: ast.expr = ast.Constant(value=None)
            if not (isinstance(elt, ast.Name) and elt.id in names):
                try:
                    elt_condition = _lambda(names, self.condition(elt))
                except TranslationError:
                    pass
        finally:
            self.pop()
        return self._helper(
            "gen",
            ast.Constant(value=self._at(node)),
            ast.Tuple(elts=iters, ctx=ast.Load()),
            _lambda(names, ast.Tuple(elts=conditions, ctx=ast.Load())),
            _lambda(names, value),
            elt_condition,
        )

    def call(self, node: ast.Call) -> ast.expr:
        """A method of a value or a collection, or a function (nextorm's or a builtin)."""
        func = node.func
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.refused("*args is not supported", node, "An argument list (*args)")
        if any(keyword.arg is None for keyword in node.keywords):
            raise self.refused("**kwargs is not supported", node, "Keyword arguments (**kwargs)")
        if isinstance(func, ast.Attribute) and self.uses_var(func.value):
            if (
                func.attr in _COLLECTION_METHODS
                and all(k.arg == "distinct" and not self.uses_var(k.value) for k in node.keywords)
                and (
                    self.chain(func.value) is not None or isinstance(func.value, (ast.Call, ast.GeneratorExp))
                )
            ):
                call = self._helper(
                    "method",
                    self.operand(func.value),
                    ast.Constant(value=func.attr),
                    ast.Constant(value=self._at(node)),
                    *[self.member_lambda(arg) for arg in node.args],
                )
                # `.count(distinct=False)`, `.sum(distinct=True)`
                distinct = [ast.keyword(arg="distinct", value=self.external(k.value)) for k in node.keywords]
                call.keywords = distinct  # type: ignore[attr-defined]
                return call
            if func.attr not in _METHODS:
                attr = self.column_attr(func.value) if self._is_plain(func.value) else None
                py_type = getattr(attr, "py_type", None)
                if isinstance(py_type, type) and not hasattr(py_type, func.attr):
                    raise noted(
                        QueryAttributeError(
                            f"{py_type.__name__!r} object has no attribute {func.attr!r}: {_source_text(func)}"
                        ),
                        f"{getattr(attr, 'qualname', attr)} is a {py_type.__name__}: {self._at(node)}",
                    )
                raise self.unsupported(f"The method {func.attr}()", node)
            most = _METHOD_ARGUMENTS.get(func.attr)
            if most is not None and len(node.args) > most:
                takes = "no arguments" if most == 0 else f"at most {most} argument"
                raise noted(
                    TranslationError(f"{func.attr}() takes {takes} ({len(node.args)} given)"),
                    f"in {self._at(node)}",
                )
            if node.keywords or any(self.uses_var(arg) for arg in node.args):
                raise self.unsupported(f"{func.attr}() with these arguments", node)
            if func.attr in ("startswith", "endswith") and len(node.args) != 1:
                raise self.unsupported(f"{func.attr}() here", node)
            return self._operation(
                self._method(self.operand(func.value), func.attr, *[self.operand(arg) for arg in node.args]),
                node,
            )
        if self.uses_var(func):
            raise self.unsupported(_construct(node), node)
        if _is_getattr(node) and self.uses_var(node.args[0]):
            return self.getattr(node)
        if _is_raw_sql(node):
            return self.raw_sql(node)
        args = [self.operand(arg) if self._reads(arg) else self.external(arg) for arg in node.args]
        call = self._helper("call", self.external(func), ast.Constant(value=self._at(node)), *args)
        for keyword in node.keywords:
            if keyword.arg == "distinct" and self.uses_var(keyword.value):
                raise TranslationError(
                    f"`distinct` value should be True or False. Got: {ast.unparse(keyword.value)}"
                )
            if keyword.arg is None or self.uses_var(keyword.value):
                raise self.unsupported("These keyword arguments in a query call", node)
            call.keywords.append(ast.keyword(arg=keyword.arg, value=self.external(keyword.value)))  # type: ignore[attr-defined]
        return call

    def getattr(self, node: ast.Call) -> ast.expr:
        """``getattr(p, name)``: the attribute a name from the enclosing scope names, when the query runs."""
        obj, name = node.args
        if self._reads(name):
            raise TranslationError(
                f"Expression `{_source_text(node)}` cannot be translated into SQL because "
                f"{_source_text(name)} will be different for each row"
            )
        return self._helper(
            "getattr",
            self.operand(obj),
            self.external(name),
            ast.Constant(value=_source_text(node)),
            ast.Constant(value=self._at(node)),
        )

    def raw_sql(self, node: ast.Call) -> ast.expr:
        """``raw_sql('text with $name')``: the names are read where the query is written."""
        if node.args and self.uses_var(node.args[0]):
            raise noted(
                TranslationError(
                    f"Expression `{_source_text(node)}` cannot be translated into SQL "
                    "because raw SQL fragment will be different for each row"
                ),
                f"raw_sql() takes SQL text, not a value of the query's objects: {self._at(node)}",
            )
        if (
            not node.args
            or len(node.args) + len(node.keywords) > 2
            or any(keyword.arg != "result_type" for keyword in node.keywords)
        ):
            raise self.unsupported("raw_sql() of anything but SQL text (and a result type)", node)
        result_type = [self.external(arg) for arg in node.args[1:]]
        result_type += [self.external(keyword.value) for keyword in node.keywords]
        if not (isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            # text computed where the query runs: its $names are read from there too
            return self._helper("raw_text", self.external(node.args[0]), *result_type)
        try:
            parts, sources = raw_sql_parts(node.args[0].value)
        except QueryError as exc:
            raise TranslationError(f"{exc}: {self._at(node)}") from None
        values = []
        for source in sources:
            try:
                expression = ast.parse(source.strip(), mode="eval").body
            except SyntaxError:
                raise TranslationError(
                    f"`${source}` in raw_sql() is not a Python expression: {self._at(node)}"
                ) from None
            before = set(self.names_used)
            values.append(self.operand(expression))
            for name in self.names_used - before:
                self.raw_sources.setdefault(name, _source_text(node))
            self.raw_names |= self.names_used - before
        return self._helper(
            "raw",
            ast.Tuple(elts=[ast.Constant(value=part) for part in parts], ctx=ast.Load()),
            ast.Tuple(elts=values, ctx=ast.Load()),
            *result_type,
        )

    def member_lambda(self, node: ast.expr) -> ast.expr:
        """The condition on a collection's members in ``g.students.select(lambda s: ...)``."""
        if not isinstance(node, ast.Lambda) or len(node.args.args) != 1:
            raise self.unsupported("A collection method argument other than a one-parameter lambda", node)
        name = node.args.args[0].arg
        self.push([name])
        try:
            return _lambda([name], self.condition(node.body))
        finally:
            self.pop()

    # -- order

    def order_item(self, node: ast.expr) -> ast.expr:
        """One ORDER BY item: a value, ``desc(value)``, ``value.desc()`` or ``-value``."""
        if _is_raw_sql(node):
            return self._helper("order", self.raw_sql(node))  # type: ignore[arg-type]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and self.chain(node.operand):
            return ast.Call(
                func=ast.Attribute(value=self.column(node.operand), attr="desc", ctx=ast.Load()),
                args=[],
                keywords=[],
            )
        if self.chain(node):
            return self.column(node)
        if isinstance(node, ast.Call) and not node.keywords:
            func = node.func
            if (
                not node.args
                and isinstance(func, ast.Attribute)
                and func.attr in ("desc", "asc")
                and self.chain(func.value)
            ):
                return ast.Call(
                    func=ast.Attribute(value=self.column(func.value), attr=func.attr, ctx=ast.Load()),
                    args=[],
                    keywords=[],
                )
            if (
                len(node.args) == 1
                and isinstance(func, ast.Name)
                and func.id in ("desc", "asc")
                and self.chain(node.args[0])
            ):
                return ast.Call(func=self.external(func), args=[self.column(node.args[0])], keywords=[])
        if not self._reads(node):
            return self.external(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return self._helper("desc", self.operand(node.operand))
        if isinstance(node, ast.Call) and not node.keywords:
            func = node.func
            if not node.args and isinstance(func, ast.Attribute) and func.attr in ("desc", "asc"):
                return self._method(self.operand(func.value), func.attr)
            if len(node.args) == 1 and isinstance(func, ast.Name) and func.id in ("desc", "asc"):
                return self._helper("desc" if func.id == "desc" else "order", self.operand(node.args[0]))
        return self._helper("order", self.operand(node))

    # -- attributes

    def _is_column(self, node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and self.is_own(node.value.id)
        )

    def column_attr(self, node: ast.expr) -> Any:
        """The attribute of the query's own entity ``node`` (``p.name``) reads; errors for unknown names."""
        if isinstance(node, ast.Attribute) and self._is_column(node):
            name = node.attr
            attr = self.entity._attrs_by_name_.get(name) or self.entity.__dict__.get(
                "_subclass_names_", {}
            ).get(name)
            if attr is None:
                attr = getattr(self.entity, "_relations_by_name_", {}).get(name)
            if attr is None:
                raise noted(
                    UnknownAttributeError(
                        f"Entity {self.entity.__name__} does not have attribute {name}: {_source_text(node)}"
                    ),
                    f"Entity {self.entity.__name__} has no attribute {name!r}: {self._at(node)}",
                )
            return attr
        if isinstance(node, ast.Name) and self.is_own(node.id):
            return None
        raise self.unsupported(_construct(node), node)

    def column(self, node: ast.expr) -> ast.expr:
        """``node`` (``p.a.b``) as the column, object or collection it reads."""
        chain = self.chain(node)
        if chain is None:
            inner: ast.expr = node
            while isinstance(inner, ast.Attribute):
                inner = inner.value
            if isinstance(inner, ast.Subscript) and self._reads(inner.slice):
                # `Group[s.group.number].dept`: an object looked up by a value of each row
                raise self.refused(_source_text(inner), node, "An object looked up by a value of the query")
            raise self.unsupported(_construct(node), node)
        if self._is_plain(node):
            return node
        base, names = chain
        if base == self.var and not self.is_nested_var(base):
            self._check_path(names, node)
        return self._helper(
            "path",
            ast.Name(id=base, ctx=ast.Load()),
            ast.Constant(value=self._at(node)),
            *[ast.Constant(value=n) for n in names],
        )

    def _check_path(self, names: list[str], node: ast.AST) -> None:
        """Unknown attributes of a path from the query's own object fail at translation."""
        entity = self.entity
        collection = None
        for index, name in enumerate(names):
            attr = entity._attrs_by_name_.get(name) or getattr(entity, "_relations_by_name_", {}).get(name)
            if attr is None:
                read = node  # the path up to the unknown name
                for _ in range(len(names) - 1 - index):
                    read = getattr(read, "value", read)
                note = f"Entity {entity.__name__} has no attribute {name!r}: {self._at(node)}"
                if collection is not None:
                    # read as an attribute of the collection itself (`s.courses.foo`): named by its path
                    raise noted(QueryAttributeError(_source_text(read)), note)
                raise noted(
                    UnknownAttributeError(
                        f"Entity {entity.__name__} does not have attribute {name}: {_source_text(read)}"
                    ),
                    note,
                )
            if not (getattr(attr, "is_reference", False) or getattr(attr, "is_collection", False)):
                return
            if getattr(attr, "is_collection", False):
                collection = attr
            entity = attr.py_type
            if isinstance(entity, str):
                return


_OP_NAMES: dict[type, str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
}


def _is_len(node: ast.AST) -> bool:
    """Whether ``node`` is ``len(x)`` of one argument."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "len"
        and len(node.args) == 1
        and not node.keywords
    )


def _free_walk(node: ast.AST, bound: frozenset[str] = frozenset()) -> Iterable[ast.AST]:
    """The nodes of ``node`` (as ``ast.walk``) but the names a lambda inside it binds, in its body."""
    if isinstance(node, ast.Lambda):
        args = node.args
        params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
        params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
        bound = bound | frozenset(params)
    elif isinstance(node, ast.Name) and node.id in bound:
        return
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _free_walk(child, bound)


def _is_row_count(node: ast.AST) -> bool:
    """Whether ``node`` is ``count()`` or ``count('*')``: the number of the query's rows."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "count"
        and (
            not node.args
            or (len(node.args) == 1 and isinstance(node.args[0], ast.Constant) and node.args[0].value == "*")
        )
    )


def _is_getattr(node: ast.AST) -> bool:
    """Whether ``node`` is ``getattr(x, name)`` of two arguments."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) == 2
        and not node.keywords
    )


def _is_raw_sql(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "raw_sql"


#: the methods of values a query may call (on strings, dates and orderings)
_METHODS = frozenset(
    {"startswith", "endswith", "lower", "upper", "strip", "lstrip", "rstrip", "date", "desc", "asc"}
)
#: the most positional arguments each of the methods takes (startswith and endswith take one)
_METHOD_ARGUMENTS = {
    "lower": 0,
    "upper": 0,
    "strip": 1,
    "lstrip": 1,
    "rstrip": 1,
    "date": 0,
    "desc": 0,
    "asc": 0,
}
#: the parts of dates and times a query may read
_PARTS = frozenset({"year", "month", "day", "hour", "minute", "second"})
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
#: the operator each arithmetic node spells, and the function applying it
_SYMBOLS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_BINARY = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}


def _construct(node: ast.AST) -> str:
    """A name for the kind of construct ``node`` is, for messages."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute):
            return f"The method {func.attr}()"
        return f"The call {func.id}()" if isinstance(func, ast.Name) else "A call"
    names: dict[type, str] = {
        ast.BinOp: "Arithmetic on attributes",
        ast.UnaryOp: "An arithmetic sign on attributes",
        ast.Subscript: "Indexing or slicing",
        ast.GeneratorExp: "A nested generator (a subquery)",
        ast.ListComp: "A list comprehension",
        ast.Lambda: "A lambda",
        ast.IfExp: "A conditional expression",
        ast.Tuple: "A tuple",
        ast.JoinedStr: "An f-string",
        ast.Attribute: "An attribute path",
    }
    return names.get(type(node), f"The construct {type(node).__name__}")
