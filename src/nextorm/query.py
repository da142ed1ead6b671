"""Query expressions on entity attributes and the lazy ``Query`` they build."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from ._impl import EntityBase
from .exceptions import MultipleObjectsFoundError, UnknownAttributeError
from .steps import Steps, run_async, run_sync

if TYPE_CHECKING:
    from .attributes import Attribute

__all__ = ["Expr", "OrderBy", "Query", "caller_namespace", "expression_for"]


def caller_namespace(depth: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
    """The globals and locals of the caller of the function calling this one (for ``$name`` in raw SQL)."""
    frame = sys._getframe(depth)
    return frame.f_globals, frame.f_locals


class Expr:
    """A boolean SQL condition; combine with ``&``, ``|`` and ``~``."""

    __slots__ = ()

    def __and__(self, other: Expr) -> Expr:
        return BoolOp("AND", (self, _as_expr(other)))

    def __or__(self, other: Expr) -> Expr:
        return BoolOp("OR", (self, _as_expr(other)))

    def __invert__(self) -> Expr:
        return Not(self)

    def __bool__(self) -> bool:
        raise TypeError("A query condition has no truth value: combine conditions with & | ~, not and/or/not")

    def sql(self, provider: Any, params: list[Any]) -> str:
        """The SQL text of the condition, appending bound values to ``params``."""
        raise NotImplementedError


def _as_expr(value: Any) -> Expr:
    if not isinstance(value, Expr):
        raise TypeError(f"Expected a query condition, got {value!r}")
    return value


class BoolOp(Expr):
    __slots__ = ("items", "op")

    def __init__(self, op: str, items: tuple[Expr, ...]) -> None:
        self.op = op
        self.items = items

    def sql(self, provider: Any, params: list[Any]) -> str:
        return "(" + f" {self.op} ".join(item.sql(provider, params) for item in self.items) + ")"


class Not(Expr):
    __slots__ = ("item",)

    def __init__(self, item: Expr) -> None:
        self.item = item

    def sql(self, provider: Any, params: list[Any]) -> str:
        return f"NOT {self.item.sql(provider, params)}"


class Compare(Expr):
    """``attr <op> value`` with the value converted by the attribute and bound."""

    __slots__ = ("attr", "op", "value")

    def __init__(self, attr: Attribute, op: str, value: Any) -> None:
        self.attr = attr
        self.op = op
        self.value = value

    def sql(self, provider: Any, params: list[Any]) -> str:
        column = provider.quote(self.attr.column)
        op, value = self.op, self.value
        if value is None:
            return f"{column} IS NULL" if op == "==" else f"{column} IS NOT NULL"
        if op == "in":
            if not value:
                return "0 = 1"
            params.extend(map(_bound, value))
            return f"{column} IN ({', '.join([provider.param] * len(value))})"
        if op in ("startswith", "endswith", "contains"):
            return provider.string_test(op, column, value, params)
        params.append(_bound(value))
        return f"{column} {'=' if op == '==' else '<>' if op == '!=' else op} {provider.param}"


_OPERATORS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "startswith", "endswith", "contains"})


def expression_for(attr: Attribute, op: str, value: Any) -> Expr:
    """Validate ``value`` for ``attr`` and build ``attr <op> value``."""
    if op not in _OPERATORS:
        raise ValueError(f"Unknown operator {op!r}")
    if op == "in":
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise TypeError(f"{attr.qualname}.in_() takes a collection of values, got {value!r}")
        value = [_db_value(attr, v) for v in value]
    elif op in ("startswith", "endswith", "contains"):
        if not isinstance(value, str) or attr.py_type is not str:
            raise TypeError(f"{attr.qualname}.{op}() needs a str attribute and a str argument, got {value!r}")
    elif value is not None:
        if op not in ("==", "!=") and isinstance(value, Expr):
            raise TypeError(f"Cannot compare {attr.qualname} with a condition")
        value = _db_value(attr, value)
    return Compare(attr, op, value)


def _db_value(attr: Attribute, value: Any) -> Any:
    value = attr.ctype.validate(value)
    if isinstance(value, EntityBase):
        return value  # a new object: its key is known once it is flushed, see _bound
    return value if attr.to_db is None else attr.to_db(value)


def _bound(value: Any) -> Any:
    """The value to bind; a new related object is flushed first to learn its key."""
    if isinstance(value, EntityBase):
        if value._pk_raw_() is None:
            value._cache_.flush()
        return value._pk_raw_()
    return value


class OrderBy:
    """One ORDER BY item."""

    __slots__ = ("attr", "descending")

    def __init__(self, attr: Attribute, descending: bool) -> None:
        self.attr = attr
        self.descending = descending

    def sql(self, provider: Any) -> str:
        return provider.quote(self.attr.column) + (" DESC" if self.descending else "")


class Query:
    """A lazy SELECT of entity objects; every refinement returns a new Query."""

    def __init__(self, entity: Any, where: tuple[Expr, ...] = ()) -> None:
        self.entity = entity
        self._where = where
        self._order: tuple[OrderBy, ...] = ()
        self._limit: int | None = None
        self._offset = 0
        self._for_update: str | None = None
        self._prefetch: tuple[Any, ...] = ()

    def _copy(self, **changes: Any) -> Query:
        query = Query.__new__(Query)
        query.__dict__.update(self.__dict__)
        query.__dict__.update(changes)
        return query

    def __repr__(self) -> str:
        return f"<Query {self.entity.__name__}: {self.sql()[0]}>"

    # -- refinement ----------------------------------------------------------------------------

    def filter(self, *conditions: Expr, **values: Any) -> Query:
        """Add conditions (ANDed), given as expressions or ``attr=value`` keywords."""
        return self._copy(_where=self._where + conditions_for(self.entity, conditions, values))

    where = filter

    def order_by(self, *items: Any) -> Query:
        """Order by attributes (ascending) or ``desc(attr)``; replaces an earlier order."""
        order = []
        for item in items:
            if isinstance(item, OrderBy):
                order.append(item)
            elif getattr(item, "entity", None) is self.entity:
                order.append(OrderBy(item, descending=False))
            else:
                raise TypeError(f"order_by() takes attributes of {self.entity.__name__}, got {item!r}")
        return self._copy(_order=tuple(order))

    def limit(self, limit: int | None, offset: int | None = None) -> Query:
        """At most ``limit`` objects, skipping ``offset``."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a non-negative int, got {limit!r}")
        if offset is not None and (not isinstance(offset, int) or offset < 0):
            raise ValueError(f"offset must be a non-negative int, got {offset!r}")
        return self._copy(_limit=limit, _offset=self._offset + (offset or 0))

    def for_update(self, nowait: bool = False, skip_locked: bool = False) -> Query:
        """Lock the selected rows (``SELECT ... FOR UPDATE``) where the database supports it."""
        if nowait and skip_locked:
            raise TypeError("nowait and skip_locked cannot be used together")
        return self._copy(_for_update="nowait" if nowait else "skip_locked" if skip_locked else "wait")

    def prefetch(self, *attrs: Any) -> Query:
        """Load these relationships of the whole result with one query each (not one per object).

        Each attribute belongs to the query's entity or to an entity an earlier attribute
        loads: ``Post.select().prefetch(Post.author, User.posts)``.
        """
        known = {self.entity} | {a.py_type for a in self._prefetch}
        for attr in attrs:
            if not (getattr(attr, "is_reference", False) or getattr(attr, "is_collection", False)):
                raise TypeError(f"prefetch() takes relationship attributes, got {attr!r}")
            if attr.entity not in known:
                raise TypeError(
                    f"prefetch({attr!r}): {attr.entity.__name__} is neither {self.entity.__name__} "
                    "nor loaded by an earlier prefetch attribute"
                )
            known.add(attr.py_type)
        return self._copy(_prefetch=self._prefetch + attrs)

    # -- SQL -------------------------------------------------------------------------------------

    def sql(self, columns: str | None = None) -> tuple[str, list[Any]]:
        """The SELECT statement and its parameters."""
        provider = self.entity._database_._provider_or_fail()
        params: list[Any] = []
        sql = f"SELECT {columns or self.entity._select_list_} FROM {provider.quote(self.entity._table_)}"
        if self._where:
            sql += " WHERE " + " AND ".join(expr.sql(provider, params) for expr in self._where)
        if self._order and columns is None:
            sql += " ORDER BY " + ", ".join(item.sql(provider) for item in self._order)
        if self._limit is not None or self._offset:
            sql += provider.limit_clause(self._limit, self._offset, params)
        if self._for_update:
            sql += provider.for_update_clause(self._for_update)
        return sql, params

    # -- execution: steps, run blocking or awaited ------------------------------------------------

    def fetch_steps(self) -> Steps[list[Any]]:
        """Steps that run the query (and its prefetches) and return the objects."""
        sql, params = self.sql()
        objects = yield from self.entity._fetch_steps_(sql, params, for_update=self._for_update is not None)
        if self._prefetch:
            from .relations import prefetch_steps

            yield from prefetch_steps(objects, self._prefetch)
        return objects

    def get_steps(self) -> Steps[Any]:
        """Steps returning the only object, or None; MultipleObjectsFoundError when several."""
        result = yield from self.limit(2).fetch_steps()
        if len(result) > 1:
            raise MultipleObjectsFoundError(
                f"Multiple objects were found. Use select(...) to retrieve them ({self.entity.__name__})"
            )
        return result[0] if result else None

    def first_steps(self) -> Steps[Any]:
        """Steps returning the first object, or None."""
        result = yield from self.limit(1).fetch_steps()
        return result[0] if result else None

    def count_steps(self) -> Steps[int]:
        """Steps returning the number of matching rows."""
        query = self._copy(_order=(), _for_update=None)
        if query._limit is not None or query._offset:
            inner, params = query.sql()
            sql = f"SELECT COUNT(*) FROM ({inner}) AS q"
        else:
            sql, params = query.sql("COUNT(*)")
        return (yield from self.entity._database_._scalar_steps_(sql, params))  # type: ignore[no-any-return]

    def exists_steps(self) -> Steps[bool]:
        """Steps returning whether any row matches."""
        sql, params = self._copy(_order=(), _for_update=None, _limit=1).sql("1")
        return (yield from self.entity._database_._scalar_steps_(sql, params)) is not None

    def _hint(self, method: str) -> str:
        return f"await {self.entity.__name__}.select(...).{method}()"

    def fetch(self) -> list[Any]:
        """Run the query and return the list of objects."""
        return run_sync(self.fetch_steps(), self._hint("afetch"))

    async def afetch(self) -> list[Any]:
        """Awaitable ``fetch()``."""
        return await run_async(self.fetch_steps())

    def _fetch_once(self) -> list[Any]:
        """The result, shared by an iteration and a ``len()`` that follow each other (as ``list(q)`` does)."""
        generation = self.entity._database_._generation_()
        fetched = self.__dict__.pop("_fetched", None)
        if fetched is not None and fetched[0] == generation and not generation[2]:
            return fetched[1]  # type: ignore[no-any-return]
        result = self.fetch()
        self._fetched = (self.entity._database_._generation_(), result)
        return result

    def __iter__(self) -> Iterator[Any]:
        return iter(self._fetch_once())

    def __len__(self) -> int:
        return len(self._fetch_once())

    async def __aiter__(self) -> AsyncIterator[Any]:
        for obj in await self.afetch():
            yield obj

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, slice):
            if key.step not in (None, 1):
                raise TypeError("Query slices do not support a step")
            start, stop = key.start or 0, key.stop
            if start < 0 or (stop is not None and stop < 0):
                raise TypeError("Query slices do not support negative indexes")
            limit = None if stop is None else max(stop - start, 0)
            return self.limit(limit, start).fetch() if (limit is not None or start) else self.fetch()
        if isinstance(key, int) and not isinstance(key, bool):
            if key < 0:
                raise TypeError("Query indexes must not be negative")
            result = self.limit(1, key).fetch()
            if not result:
                raise IndexError(f"Query index {key} out of range")
            return result[0]
        raise TypeError(f"Query indexes must be int or slice, got {key!r}")

    def first(self) -> Any:
        """The first object, or None."""
        return run_sync(self.first_steps(), self._hint("afirst"))

    async def afirst(self) -> Any:
        """Awaitable ``first()``."""
        return await run_async(self.first_steps())

    def get(self) -> Any:
        """The only object, None when there is none; MultipleObjectsFoundError when several."""
        return run_sync(self.get_steps(), self._hint("aget"))

    async def aget(self) -> Any:
        """Awaitable ``get()``."""
        return await run_async(self.get_steps())

    def count(self) -> int:
        """The number of matching rows."""
        return run_sync(self.count_steps(), self._hint("acount"))

    async def acount(self) -> int:
        """Awaitable ``count()``."""
        return await run_async(self.count_steps())

    def exists(self) -> bool:
        """Whether any row matches."""
        return run_sync(self.exists_steps(), self._hint("aexists"))

    async def aexists(self) -> bool:
        """Awaitable ``exists()``."""
        return await run_async(self.exists_steps())

    def delete(self) -> int:
        """Delete every matching object through the session (hooks run); returns the count."""
        objects = self.fetch()
        for obj in objects:
            obj.delete()
        return len(objects)


def conditions_for(entity: Any, conditions: tuple[Any, ...], values: dict[str, Any]) -> tuple[Expr, ...]:
    """Expressions from positional conditions and ``attr=value`` keywords of ``entity``."""
    result = [_as_expr(condition) for condition in conditions]
    attrs = entity._attrs_by_name_
    for name, value in values.items():
        attr = attrs.get(name)
        if attr is None:
            raise UnknownAttributeError(
                f"Unknown attribute {name!r} of entity {entity.__name__} (value {value!r})"
            )
        result.append(expression_for(attr, "==", value))
    return tuple(result)
