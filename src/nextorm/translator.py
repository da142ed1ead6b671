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
import functools
import itertools
import linecache
import operator
import sys
import types
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from .exceptions import ExprEvalError, OrmError, QueryError, TranslationError, UnknownAttributeError
from .expressions import (
    Aggregate,
    Column,
    Expr,
    Operand,
    OrderBy,
    RawSQL,
    Truth,
    Value,
    coalesce,
    concat,
    desc,
    function,
    greatest,
    least,
    raw_sql_parts,
    value_of,
)

if TYPE_CHECKING:
    from .query import Query

#: what a generator query yields: the entity class it selects
_T = TypeVar("_T")

__all__ = [
    "avg",
    "between",
    "conditions_from",
    "count",
    "delete",
    "distinct",
    "exists",
    "get",
    "group_concat",
    "max",
    "min",
    "order_from",
    "select",
    "sum",
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


def exists(query: Any) -> bool:
    """Whether a generator query selects any object."""
    return bool(_query_of(query, "exists").exists())


def count(*args: Any, **kwargs: Any) -> Any:
    """The number of objects a generator query (or its text) selects.

    Called with anything else it is ``itertools.count``, which a star import of nextorm would
    otherwise hide (as Pony's ``count`` does).
    """
    if len(args) == 1 and _is_query_generator(args[0]):
        return int(_query_of(args[0], "count").count(**kwargs))
    return itertools.count(*args, **kwargs)


def _is_query_generator(value: Any) -> bool:
    """Whether ``value`` is a generator expression over an entity or a query (not over a list)."""
    if isinstance(value, str):
        return True
    if not isinstance(value, types.GeneratorType) or value.gi_frame is None:
        return False
    return hasattr(value.gi_frame.f_locals.get(".0"), "query")


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


def conditions_from(entity: Any, query: Any, var: str | None = None) -> tuple[Any, ...]:
    """The conditions of a lambda (``lambda p: p.age > 18``) or string over ``entity``'s objects.

    ``var`` names the entity in a lambda without parameters or a bare string condition
    (``q.filter("p.age > 18")`` on a query written as ``p for p in Person``).
    """
    translation, params = _prepare(entity, query, var, order=False)
    return _finish_conditions(entity, translation, translation.run(entity, params))


def order_from(entity: Any, query: Any, var: str | None = None) -> tuple[Any, ...]:
    """The ORDER BY items of a lambda (``lambda p: (p.name, desc(p.age))``) or string."""
    translation, params = _prepare(entity, query, var, order=True)
    return tuple(translation.run(entity, params))


def lambda_var(conditions: tuple[Any, ...]) -> str | None:
    """The parameter name of the first one-parameter lambda among ``conditions`` (``p`` in ``lambda p: ...``)."""
    for condition in conditions:
        if (
            is_query_text(condition)
            and not isinstance(condition, str)
            and condition.__code__.co_argcount == 1
        ):
            return str(condition.__code__.co_varnames[0])
    return None


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
        return _fold(items, _FALSE, _TRUE, operator.and_)

    @staticmethod
    def or_(*items: Any) -> Any:
        """The disjunction of conditions, folding conditions known in advance."""
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
        if isinstance(values, (str, bytes)):
            raise TranslationError(f"`in` over a string value is not supported in queries: {where}")
        if hasattr(values, "entity") and hasattr(values, "filter"):
            raise TranslationError(f"`in` over a query (a subquery) is not supported in queries yet: {where}")
        return column.not_in(values) if negate else column.in_(values)

    @staticmethod
    def contains(column: Any, part: Any, negate: bool, where: str) -> Any:
        """``part in column`` for a string value."""
        if value_of(column).py_type is not str:
            raise TranslationError(f"`in` on a non-string value is not supported in queries yet: {where}")
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
    def truth(value: Any, where: str) -> Any:
        """A call's result used as a condition."""
        if isinstance(value, (Expr, _Marker)):
            return value
        if isinstance(value, RawSQL) or (isinstance(value, Value) and value.py_type is bool):
            return Truth(value)
        raise TranslationError(f"The truth value of a {type(value).__name__} is not supported in queries: {where}")

    @staticmethod
    def item(value: Any, where: str) -> Any:
        """A selected value."""
        if isinstance(value, Operand):
            return value._value_()
        raise TranslationError(f"Selecting {value!r} is not supported in queries: {where}")

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
            frame.f_code.co_name == "<lambda>" and "__nx" in frame.f_code.co_varnames
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
        return OrderBy(value, descending=True) if not isinstance(value, OrderBy) else desc(value)

    @staticmethod
    def order(value: Any) -> Any:
        """Ascending order by a value."""
        if isinstance(value, (OrderBy, Operand)):
            return value
        raise QueryError(f"order_by() takes values of the query's objects, got {value!r}")

    @staticmethod
    def same(entity: Any, value: Any, negate: bool, where: str) -> Any:
        """The query's object compared with an object (by primary key)."""
        if value is None:
            return _TRUE if negate else _FALSE
        pk = _Runtime._object(entity, value, where).get_pk()
        keys = entity._pk_attrs_
        values = (pk,) if len(keys) == 1 else pk
        condition = _Runtime.and_(*(attr == v for attr, v in zip(keys, values)))
        return _Runtime.not_(condition) if negate else condition

    @staticmethod
    def same_in(entity: Any, values: Any, negate: bool, where: str) -> Any:
        """The query's object is one of the given objects (compared by primary key)."""
        keys = entity._pk_attrs_
        if len(keys) != 1:
            raise TranslationError(
                f"`in` over objects of {entity.__name__}, whose primary key has several columns, "
                f"is not supported in queries yet: {where}"
            )
        pks = []
        for value in values:
            if not isinstance(value, entity):
                value = _Runtime._object(entity, value, where)
            pks.append(value.get_pk())
        return keys[0].not_in(pks) if negate else keys[0].in_(pks)

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
    def call(func: Any, where: str, *args: Any, **keywords: Any) -> Any:
        """A call of a function with values of the query's object as arguments."""
        try:
            name = _VALUE_FUNCTIONS.get(func)
        except TypeError:  # an unhashable callable is none of them
            name = None
        if name is None:
            name = getattr(func, "__name__", repr(func))
            raise TranslationError(f"The function {name}() is not supported in queries yet: {where}")
        if keywords and name != "group_concat" and not (name in _AGGREGATES and set(keywords) <= {"distinct"}):
            raise TranslationError(f"{name}() takes no keyword arguments {sorted(keywords)} in queries: {where}")
        if name in ("min", "max") and len(args) > 1:
            return least(*args) if name == "min" else greatest(*args)
        if name in _AGGREGATES:
            if len(args) > 1 or (not args and name != "count"):
                raise TranslationError(f"{name}() in a query takes one value: {where}")
            arg = args[0] if args else None
            if isinstance(arg, type):  # the query's object: count(p) counts the objects
                if name != "count":
                    raise TranslationError(f"{name}() takes a value of the query's object, not the object: {where}")
                keys = cast(Any, arg)._pk_attrs_
                arg = Column(keys[0]) if len(keys) == 1 else None
            elif arg is not None:
                arg = value_of(arg)
            distinct = keywords.get("distinct", name == "count" and arg is not None)
            return Aggregate(name, arg, bool(distinct), keywords.get("sep"))
        if name == "len":
            return function("len", *args)
        if name == "abs":
            return function("abs", *args)
        if name == "between":
            return between(*args)
        if name == "coalesce":
            return coalesce(*args)
        if name == "concat":
            return concat(*args)
        return desc(*args)
#: the functions a query may call with its values, by the name of their operation
_VALUE_FUNCTIONS: dict[Any, str] = {
    count: "count",
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
    between: "between",
    coalesce: "coalesce",
    concat: "concat",
    desc: "desc",
}
_AGGREGATES = frozenset({"count", "sum", "min", "max", "avg", "group_concat"})
_RUNTIME = _Runtime()


class _Translation:
    """One query's translation: a function from the entity and the scope's names to conditions."""

    __slots__ = ("function", "function_code", "line", "names", "shape", "text", "var")

    def __init__(
        self,
        function_code: types.CodeType,
        names: tuple[str, ...],
        var: str,
        text: str,
        line: int,
    ) -> None:
        self.function_code = function_code
        self.names = names
        self.var = var
        self.text = text
        self.line = line
        self.function: types.FunctionType | None = None
        #: what a generator selects: None for its objects, "one" value, or a "tuple" of them
        self.shape: str | None = None

    def run(self, entity: Any, params: tuple[dict[str, Any], tuple[Any, ...]]) -> Any:
        """Evaluate the translated query with the entity and the values of the scope's names."""
        globals_, values = params
        function = self.function
        if function is None or function.__globals__ is not globals_:
            # a code object's module is always the same one, except for query text
            function = self.function = types.FunctionType(self.function_code, globals_)
        try:
            return function(_RUNTIME, entity, *values)
        except OrmError:
            raise
        except Exception as exc:
            raise ExprEvalError(
                f"Evaluating the query `{self.text}` (line {self.line}) raised {type(exc).__name__}: {exc}"
            ) from exc


_translations: dict[Any, _Translation] = {}
_CACHE_SIZE = 10_000
_parsed_sources: dict[str, tuple[list[str], list[Any]]] = {}


def _query_of(query: Any, function: str) -> Any:
    if isinstance(query, str):
        namespace = _caller_namespace()
        node, where = _parse_text(query)
        if not isinstance(node, ast.GeneratorExp):
            raise TranslationError(f"{function}() takes a generator expression as text, got {query!r}")
        source_query = _evaluate_source(node.generators[0].iter, namespace, where)
        key: Any = ("gen", query)
        var = _generator_var(node, where)
        translation = _translations.get((key, source_query.entity))
        if translation is None:
            translation = _translate_generator(node, source_query.entity, where, None)
            _remember((key, source_query.entity), translation)
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
        source_query = getattr(source, "query", None)
        if source_query is None or not hasattr(source_query, "entity"):
            where = f"line {code.co_firstlineno} of {code.co_filename}"
            raise TranslationError(
                f"The first `for` of a query must iterate over an entity or a query, got {source!r}: {where}"
            )
        translation = _translations.get((code, source_query.entity))
        if translation is None:
            node, where = _locate(code, ast.GeneratorExp)
            translation = _translate_generator(node, source_query.entity, where, code.co_freevars)
            _remember((code, source_query.entity), translation)
        var = translation.var
        try:
            values = tuple([local_values[name] for name in translation.names])
        except KeyError:  # a raw_sql() `$name` the generator's code does not read itself
            values = _string_params(translation, _caller_namespace(), local_values)[1]
        params = (frame.f_globals, values)
    else:
        raise TranslationError(
            f"{function}() takes a generator expression (p for p in Person if ...) or its text, got {query!r}"
        )
    if source_query._limit is not None or source_query._offset:
        raise TranslationError(
            f"A query over a query with a limit or offset is not supported yet: line {translation.line}"
        )
    if source_query._select is not None:
        raise TranslationError(
            f"A query over a query of values is not supported yet: line {translation.line}"
        )
    selection, *conditions = translation.run(source_query.entity, params)
    # the conditions are built on the attributes of source_query's entity: no check needed
    query = source_query._named(var, _finish_conditions(source_query.entity, translation, tuple(conditions)))
    if selection is not None:
        query = query._selecting(selection, translation.shape == "tuple")
    return query


def _finish_conditions(entity: Any, translation: _Translation, items: tuple[Any, ...]) -> tuple[Any, ...]:
    result = []
    for item in items:
        if item is _TRUE:
            continue
        if item is _FALSE:
            item = entity._pk_attrs_[0].in_(())  # no row matches an empty IN list
        result.append(item)
    return tuple(result)


def _prepare(entity: Any, query: Any, var: str | None, order: bool) -> tuple[_Translation, Any]:
    kind = "order" if order else "cond"
    if isinstance(query, str):
        namespace = _caller_namespace()
        key = (kind, query, var)
        translation = _translations.get((key, entity))
        if translation is None:
            node, where = _parse_text(query, entity)
            translation = _translate_function(node, entity, var, where, None, order)
            _remember((key, entity), translation)
        return translation, _string_params(translation, namespace)
    code = query.__code__
    translation = _translations.get(((kind, code, var), entity))
    if translation is None:
        node, where = _locate(code, ast.Lambda)
        translation = _translate_function(node, entity, var, where, code.co_freevars, order)
        _remember(((kind, code, var), entity), translation)
    closure = query.__closure__
    free = code.co_freevars
    if all(name in free for name in translation.names):
        try:
            # the names are among the code's free variables, whose cells the closure holds in order
            values = tuple([closure[free.index(name)].cell_contents for name in translation.names])
        except ValueError:
            raise ExprEvalError(
                f"A name the query reads is not defined yet when it runs: {_where_of(translation)}"
            ) from None
    else:  # a raw_sql() `$name` the lambda's code does not read itself
        own = {name: closure[free.index(name)].cell_contents for name in free if name in translation.names}
        values = _string_params(translation, _caller_namespace(), own)[1]
    return translation, (query.__globals__, values)


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
            raise ExprEvalError(
                f"The name {name!r} is not defined where the query runs: {_where_of(translation)}"
            )
    return globals_, tuple(values)


def _remember(key: Any, translation: _Translation) -> None:
    # query texts built with values inside (f-strings) would grow the cache without end
    if len(_translations) >= _CACHE_SIZE:
        _translations.clear()
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
        raise TranslationError(f"The first `for` of a query must iterate over an entity or a query: {where}")
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


def _fragment_nodes(filename: str, lines: list[str], first: tuple[int, int], last: tuple[int, int]) -> list[Any]:
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


# -- rewriting the syntax tree -------------------------------------------------------------------


def _generator_var(node: ast.GeneratorExp, where: str) -> str:
    if len(node.generators) != 1:
        raise TranslationError(f"Several `for` clauses (a join) are not supported in queries yet: {where}")
    loop = node.generators[0]
    if loop.is_async:
        raise TranslationError(f"`async for` is not supported in queries: {where}")
    if not isinstance(loop.target, ast.Name):
        raise TranslationError(
            f"The `for` of a query takes one name, got `{ast.unparse(loop.target)}`: {where}"
        )
    return loop.target.id


def _translate_generator(node: Any, entity: Any, where: str, scope_names: Any) -> _Translation:
    var = _generator_var(node, where)
    rewriter = _Rewriter(entity, var, where)
    selected, is_tuple = rewriter.selection(node.elt)
    ifs = node.generators[0].ifs
    # several `if` clauses mean what `and` between them means
    body = [selected or ast.Constant(value=None)]
    if ifs:
        body.append(rewriter.condition(ifs[0] if len(ifs) == 1 else ast.BoolOp(op=ast.And(), values=ifs)))
    translation = _compile(node, body, var, scope_names, rewriter)
    translation.shape = None if selected is None else "tuple" if is_tuple else "one"
    return translation


def _translate_function(
    node: Any, entity: Any, var: str | None, where: str, scope_names: Any, order: bool
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
    rewriter = _Rewriter(entity, var, where)
    if order:
        items = body_node.elts if isinstance(body_node, ast.Tuple) else [body_node]
        body = [rewriter.order_item(item) for item in items]
    else:
        body = [rewriter.condition(body_node)]
    return _compile(node, body, var, scope_names, rewriter)


def _compile(
    node: Any, body: list[ast.expr], var: str, scope_names: Any, rewriter: _Rewriter
) -> _Translation:
    # query text reads every name from its caller's scope; code reads its free variables from
    # the frame or closure, and the rest as globals of its module
    used = rewriter.names_used - {var}
    # raw_sql's `$name`s are read where the query runs, as Pony reads them, also when the code
    # itself does not mention them
    names = tuple(sorted(used if scope_names is None else used & set(scope_names) | (rewriter.raw_names - {var})))
    arguments = ast.arguments(
        posonlyargs=[],
        args=[ast.arg(arg="__nx"), ast.arg(arg=var)] + [ast.arg(arg=name) for name in names],
        kwonlyargs=[],
        kw_defaults=[],
        defaults=[],
    )
    function = ast.Lambda(args=arguments, body=ast.Tuple(elts=body, ctx=ast.Load()))
    ast.copy_location(function, node)
    module = ast.Expression(body=function)
    ast.fix_missing_locations(module)
    code = compile(module, rewriter.filename, "eval")
    function_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    text = ast.unparse(node)
    return _Translation(function_code, names, var, text, getattr(node, "lineno", 1))


class _Rewriter:
    """Rewrites a query's conditions and values into calls of the attribute-expression API."""

    def __init__(self, entity: Any, var: str, where: str) -> None:
        self.entity = entity
        self.var = var
        self.where = where
        # `where` is "line N of FILE" for source code, "the query text '...'" for a string
        self.filename = "<query>" if where.startswith("the query text") else where.partition(" of ")[2]
        self.names_used: set[str] = set()
        #: the names raw_sql() fragments read (``$name``)
        self.raw_names: set[str] = set()

    # -- helpers

    def _at(self, node: ast.AST) -> str:
        if self.filename == "<query>":
            return f"`{ast.unparse(node)}` in {self.where}"
        return f"`{ast.unparse(node)}` at line {getattr(node, 'lineno', '?')} of {self.filename}"

    def unsupported(self, construct: str, node: ast.AST) -> TranslationError:
        """The error for a construct the expression layer does not offer yet."""
        return TranslationError(
            f"{construct} is not supported in queries yet: {self._at(node)}; "
            "select_by_sql() can express it in SQL"
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
        """Whether ``node`` reads the query's rows (its object, or a raw_sql() fragment)."""
        return self.uses_var(node) or any(_is_raw_sql(child) for child in ast.walk(node))

    def uses_var(self, node: ast.AST) -> bool:
        """Whether ``node`` reads the query's object."""
        return any(isinstance(child, ast.Name) and child.id == self.var for child in ast.walk(node))

    def external(self, node: ast.expr) -> ast.expr:
        """A value from the enclosing scope, evaluated as Python and bound as a parameter."""
        for child in ast.walk(node):
            if isinstance(child, ast.GeneratorExp):
                raise self.unsupported(_construct(child), child)
            if isinstance(child, ast.Name):
                self.names_used.add(child.id)
        return node

    # -- what a query selects

    def selection(self, node: ast.expr) -> tuple[ast.expr | None, bool]:
        """The selected items of a generator (None for the objects themselves) and whether it is a tuple."""
        if isinstance(node, ast.Name) and node.id == self.var:
            return None, False
        if isinstance(node, ast.Tuple):
            if not node.elts:
                raise self.unsupported("Selecting an empty tuple", node)
            return ast.Tuple(elts=[self.item(elt) for elt in node.elts], ctx=ast.Load()), True
        return ast.Tuple(elts=[self.item(node)], ctx=ast.Load()), False

    def item(self, node: ast.expr) -> ast.expr:
        """One selected item: the object, or a value."""
        if isinstance(node, ast.Name) and node.id == self.var:
            return node
        if not self._reads(node):
            raise self.unsupported("Selecting a value that does not read the query's object", node)
        return self._helper("item", self.value(node), ast.Constant(value=self._at(node)))

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
            raise self.unsupported(f"The truth value of {attr.py_type.__name__} attribute", node)
        if isinstance(node, ast.Call):
            return self._helper("truth", self.call(node), ast.Constant(value=self._at(node)))
        if isinstance(node, ast.Name):
            raise self.unsupported("The truth value of the query's object", node)
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

    def compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr, whole: ast.AST) -> ast.expr:
        """One comparison of a (possibly chained) comparison."""
        node = ast.Compare(left=left, ops=[op], comparators=[right])
        ast.copy_location(node, whole)
        left_col, right_col = self._reads(left), self._reads(right)
        if not (left_col or right_col):
            return ast.IfExp(test=self.external(node), body=self._marker(True), orelse=self._marker(False))
        where = ast.Constant(value=self._at(node))
        if isinstance(op, (ast.In, ast.NotIn)):
            negate = ast.Constant(value=isinstance(op, ast.NotIn))
            if left_col and right_col:
                raise self.unsupported("`in` between two values of the query", node)
            if left_col and isinstance(left, ast.Name):
                return self._helper("same_in", left, self.external(right), negate, where)
            if left_col:
                return self._helper("in_", self.value(left), self.external(right), negate, where)
            return self._helper("contains", self.value(right), self.external(left), negate, where)
        if left_col and right_col:
            if isinstance(left, ast.Name) or isinstance(right, ast.Name):
                raise self.unsupported("A comparison of the query's object with a value of it", node)
            if isinstance(op, (ast.Is, ast.IsNot)):
                raise self.unsupported("`is` with anything but None", node)
            return ast.Compare(left=self.value(left), ops=[op], comparators=[self.value(right)])
        column_side, value_side = (left, right) if left_col else (right, left)
        if isinstance(op, (ast.Is, ast.IsNot)):
            if not (isinstance(value_side, ast.Constant) and value_side.value is None):
                raise self.unsupported("`is` with anything but None", node)
            method = "is_" if isinstance(op, ast.Is) else "is_not"
            return self._method(self.value(column_side), method, ast.Constant(value=None))
        if isinstance(column_side, ast.Name):
            if not isinstance(op, (ast.Eq, ast.NotEq)):
                raise self.unsupported("An ordering comparison of objects", node)
            return self._helper(
                "same",
                ast.Name(id=self.var, ctx=ast.Load()),
                self.external(value_side),
                ast.Constant(value=isinstance(op, ast.NotEq)),
                where,
            )
        column = self.value(column_side)
        value = self.external(value_side)
        return ast.Compare(
            left=column if left_col else value, ops=[op], comparators=[value if left_col else column]
        )

    def call(self, node: ast.Call) -> ast.expr:
        """A call in a query: a method of a value, or a function (nextorm's or a builtin)."""
        func = node.func
        if isinstance(func, ast.Attribute) and self.uses_var(func.value):
            if func.attr not in _METHODS or func.value is None:
                raise self.unsupported(f"The method {func.attr}()", node)
            if node.keywords or any(self.uses_var(arg) for arg in node.args):
                raise self.unsupported(f"{func.attr}() with these arguments", node)
            if func.attr in ("startswith", "endswith") and (len(node.args) != 1):
                raise self.unsupported(f"{func.attr}() here", node)
            target = self.value(func.value)
            return self._method(target, func.attr, *[self.external(arg) for arg in node.args])
        if self.uses_var(func):
            raise self.unsupported(_construct(node), node)
        if isinstance(func, ast.Name) and func.id == "raw_sql":
            return self.raw_sql(node)
        args = [self.value(arg) for arg in node.args]
        call = self._helper("call", self.external(func), ast.Constant(value=self._at(node)), *args)
        for keyword in node.keywords:
            if keyword.arg is None or self.uses_var(keyword.value):
                raise self.unsupported("These keyword arguments in a query call", node)
            call.keywords.append(ast.keyword(arg=keyword.arg, value=self.external(keyword.value)))  # type: ignore[attr-defined]
        return call

    def raw_sql(self, node: ast.Call) -> ast.expr:
        """``raw_sql('text with $name')``: the names are read where the query is written."""
        if (
            not node.args
            or self.uses_var(node.args[0])
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
                raise TranslationError(f"`${source}` in raw_sql() is not a Python expression: {self._at(node)}") from None
            before = set(self.names_used)
            values.append(self.value(expression))
            self.raw_names |= self.names_used - before
        return self._helper(
            "raw",
            ast.Tuple(elts=[ast.Constant(value=part) for part in parts], ctx=ast.Load()),
            ast.Tuple(elts=values, ctx=ast.Load()),
            *result_type,
        )

    # -- values

    def value(self, node: ast.expr) -> ast.expr:
        """An expression of a value: of the query's object (built as an expression), else from the scope."""
        if _is_raw_sql(node):
            return self.raw_sql(node)  # type: ignore[arg-type]
        if not self._reads(node):
            return self.external(node)
        if isinstance(node, ast.Name):
            return node  # the query's object: the entity, which the runtime helpers take as such
        if isinstance(node, ast.Attribute):
            if self._is_column(node):
                return self.column(node)
            inner = node.value
            if self._is_column(inner) and self.column_attr(inner).is_reference:
                raise self.unsupported("An attribute path that joins another entity", node)
            if node.attr in _PARTS:
                return ast.Attribute(value=self.value(inner), attr=node.attr, ctx=ast.Load())
            raise self.unsupported(f"The attribute {node.attr} of a value", node)
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ARITHMETIC):
                raise self.unsupported(f"The operator {type(node.op).__name__}", node)
            return ast.BinOp(left=self.value(node.left), op=node.op, right=self.value(node.right))
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return self._helper("neg", self.value(node.operand))
            if isinstance(node.op, ast.UAdd):
                return self.value(node.operand)
            raise self.unsupported("A condition used as a value", node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Subscript):
            if self.uses_var(node.slice):
                raise self.unsupported("An index that reads the query's object", node)
            return ast.Subscript(value=self.value(node.value), slice=self.external(node.slice), ctx=ast.Load())
        if isinstance(node, ast.JoinedStr):
            parts: list[ast.expr] = []
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    if part.format_spec is not None or part.conversion not in (-1, ord("s")):
                        raise self.unsupported("A format specification or conversion in an f-string", node)
                    parts.append(self.value(part.value))
                else:
                    parts.append(part)
            return self._helper("fstring", *parts)
        if isinstance(node, ast.IfExp):
            raise self.unsupported("A conditional expression", node)
        if isinstance(node, (ast.Compare, ast.BoolOp)):
            raise self.unsupported("A condition used as a value", node)
        raise self.unsupported(_construct(node), node)

    # -- order

    def order_item(self, node: ast.expr) -> ast.expr:
        """One ORDER BY item: a value, ``desc(value)``, ``value.desc()`` or ``-value``."""
        if not self._reads(node):
            return self.external(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return self._helper("desc", self.value(node.operand))
        if isinstance(node, ast.Call) and not node.keywords:
            func = node.func
            if not node.args and isinstance(func, ast.Attribute) and func.attr in ("desc", "asc"):
                return self._method(self.value(func.value), func.attr)
            if len(node.args) == 1 and isinstance(func, ast.Name) and func.id in ("desc", "asc"):
                return ast.Call(func=self.external(func), args=[self.value(node.args[0])], keywords=[])
        return self._helper("order", self.value(node))

    # -- attributes

    def _is_column(self, node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == self.var
        )

    def column_attr(self, node: ast.expr) -> Any:
        """The entity attribute ``node`` (``p.name``) reads; errors for anything else."""
        if isinstance(node, ast.Attribute):
            if not self._is_column(node):
                if self.uses_var(node.value):
                    raise self.unsupported("An attribute path that joins another entity", node)
                raise self.unsupported(_construct(node), node)
            name = node.attr
            attr = self.entity._attrs_by_name_.get(name)
            if attr is None:
                if name in getattr(self.entity, "_relations_by_name_", {}):
                    raise self.unsupported(
                        f"The collection {self.entity.__name__}.{name} (membership, aggregates and joins "
                        "through collections)",
                        node,
                    )
                raise UnknownAttributeError(
                    f"Entity {self.entity.__name__} has no attribute {name!r}: {self._at(node)}"
                )
            return attr
        if isinstance(node, ast.Name) and node.id == self.var:
            return None
        raise self.unsupported(_construct(node), node)

    def column(self, node: ast.expr) -> ast.expr:
        """``node`` checked to be an attribute of the query's object, evaluating to the attribute."""
        self.column_attr(node)
        return node


def _is_raw_sql(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "raw_sql"


#: the methods of values a query may call (on strings, dates and orderings)
_METHODS = frozenset(
    {"startswith", "endswith", "lower", "upper", "strip", "lstrip", "rstrip", "date", "desc", "asc"}
)
#: the parts of dates and times a query may read
_PARTS = frozenset({"year", "month", "day", "hour", "minute", "second"})
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)


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
