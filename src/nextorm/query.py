"""The lazy ``Query`` of entity objects that attribute expressions build."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any, Generic, TypeVar, overload

from .display import show_objects
from .exceptions import MultipleObjectsFoundError, QueryError, ReadOnlyAttributeError, UnknownAttributeError
from .expressions import Expr, OrderBy, Value, as_expr, expression_for
from .loading import fetch_steps, prefetch_steps, refresh_columns_steps, stream_steps
from .session import require_session
from .sql import Count, Select, UpdateWhere, render
from .steps import Steps, run_async, run_sync
from .translator import conditions_from, is_query_text, order_from

INT64_MAX = 2**63 - 1

__all__ = ["Query", "QueryIterator", "caller_namespace", "conditions_for"]

#: the entity class a query selects (``Person.select()`` is a ``Query[Person]``)
_E = TypeVar("_E")


def caller_namespace(depth: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
    """The globals and locals of the caller of the function calling this one (for ``$name`` in raw SQL)."""
    frame = sys._getframe(depth)
    return frame.f_globals, frame.f_locals


class QueryIterator:
    """Iterates a query's objects, fetched on the first ``next()``; a generator query reads ``query``."""

    __slots__ = ("_objects", "query")

    def __init__(self, query: Query[Any]) -> None:
        self.query = query
        self._objects: Iterator[Any] | None = None

    def __iter__(self) -> QueryIterator:
        return self

    def __next__(self) -> Any:
        if self._objects is None:
            self._objects = iter(self.query._fetch_once())
        return next(self._objects)


class Query(Generic[_E]):
    """A lazy SELECT of entity objects; every refinement returns a new Query."""

    def __init__(self, entity: type[_E], where: tuple[Expr, ...] = ()) -> None:
        self.entity: Any = entity
        self._where = where
        self._order: tuple[OrderBy, ...] = ()
        self._limit: int | None = None
        self._offset = 0
        self._for_update: str | None = None
        self._prefetch: tuple[Any, ...] = ()
        #: the name a generator query gives its objects (``p`` in ``p for p in Person``)
        self._var: str | None = None

    def _copy(self, **changes: Any) -> Query[_E]:
        query: Query[_E] = Query.__new__(Query)
        query.__dict__.update(self.__dict__)
        query.__dict__.update(changes)
        return query

    def __repr__(self) -> str:
        return f"<Query {self.entity.__name__}: {self.sql()[0]}>"

    # -- refinement ----------------------------------------------------------------------------

    def filter(self, *conditions: Any, **values: Any) -> Query[_E]:
        """Add conditions (ANDed): expressions, ``attr=value`` keywords, lambdas or query text."""
        return self._copy(_where=self._where + conditions_for(self.entity, conditions, values, self._var))

    where = filter

    def _named(self, var: str, conditions: tuple[Expr, ...] = ()) -> Query[_E]:
        """This query with its objects named ``var`` (for conditions without a lambda parameter),
        refined by ``conditions`` already built on its entity's attributes."""
        return self._copy(_var=var, _where=self._where + conditions)

    def order_by(self, *items: Any) -> Query[_E]:
        """Order by attributes (ascending) or ``desc(attr)``; replaces an earlier order."""
        order = []
        translated: list[Any] = []
        for item in items:
            translated.extend(order_from(self.entity, item, self._var) if is_query_text(item) else (item,))
        for item in translated:
            if isinstance(item, OrderBy):
                if item.attr.entity is not self.entity:
                    raise UnknownAttributeError(
                        f"order_by(): {item.attr!r} is not an attribute of entity {self.entity.__name__}"
                    )
                order.append(item)
            elif getattr(item, "entity", None) is self.entity:
                order.append(OrderBy(item, descending=False))
            else:
                raise QueryError(f"order_by() takes attributes of {self.entity.__name__}, got {item!r}")
        return self._copy(_order=tuple(order))

    sort_by = order_by

    def limit(self, limit: int | None = None, offset: int | None = None) -> Query[_E]:
        """At most ``limit`` objects, skipping ``offset``."""
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (
                type(value) is not int
                or not 0 <= value <= INT64_MAX
                or (name == "offset" and value + self._offset > INT64_MAX)
            ):
                raise QueryError(
                    f"{name} of a {self.entity.__name__} query must be an int from 0 to 2**63-1, got {value!r}"
                )
        return self._copy(_limit=limit, _offset=self._offset + (offset or 0))

    def page(self, pagenum: int, pagesize: int = 10) -> Query[_E]:
        """Page ``pagenum`` (counted from 1) of ``pagesize`` objects."""
        if type(pagenum) is not int or pagenum < 1:
            raise QueryError(
                f"page() of a {self.entity.__name__} query takes a page number from 1, got {pagenum!r}"
            )
        if type(pagesize) is not int or pagesize < 0:
            raise QueryError(
                f"page() of a {self.entity.__name__} query takes a page size of 0 or more, got {pagesize!r}"
            )
        return self.limit(pagesize, (pagenum - 1) * pagesize)

    def for_update(self, nowait: bool = False, skip_locked: bool = False) -> Query[_E]:
        """Lock the selected rows (``SELECT ... FOR UPDATE``) where the database supports it."""
        if nowait and skip_locked:
            raise QueryError("nowait and skip_locked cannot be used together")
        return self._copy(_for_update="nowait" if nowait else "skip_locked" if skip_locked else "wait")

    def prefetch(self, *attrs: Any) -> Query[_E]:
        """Load these relationships of the whole result with one query each (not one per object).

        Each attribute belongs to the query's entity or to an entity an earlier attribute
        loads: ``Post.select().prefetch(Post.author, User.posts)``.
        """
        known = {self.entity} | {a.py_type for a in self._prefetch}
        for attr in attrs:
            if not (getattr(attr, "is_reference", False) or getattr(attr, "is_collection", False)):
                raise QueryError(f"prefetch() takes relationship attributes, got {attr!r}")
            if attr.entity not in known:
                raise QueryError(
                    f"prefetch({attr!r}): {attr.entity.__name__} is neither {self.entity.__name__} "
                    "nor loaded by an earlier prefetch attribute"
                )
            known.add(attr.py_type)
        return self._copy(_prefetch=self._prefetch + attrs)

    # -- SQL -------------------------------------------------------------------------------------

    def statement(self, count: bool = False, one: bool = False) -> Select:
        """The SELECT of the objects (or of ``COUNT(*)`` when ``count``, of 1 when ``one``)."""
        entity = self.entity
        return Select(
            entity._table_,
            entity._select_columns_,
            where=self._where,
            order=() if count or one else tuple(key for item in self._order for key in item.keys()),
            limit=self._limit,
            offset=self._offset,
            for_update=self._for_update,
            count=count,
            one=one,
        )

    def sql(self) -> tuple[str, list[Any]]:
        """The SELECT statement and its parameters."""
        return render(self.statement(), self.entity._database_._provider_or_fail().dialect)

    # -- execution: steps, run blocking or awaited ------------------------------------------------

    def fetch_steps(self) -> Steps[list[Any]]:
        """Steps that run the query (and its prefetches) and return the objects."""
        sql, params = self.sql()
        objects = yield from fetch_steps(self.entity, sql, params, for_update=self._for_update is not None)
        if self._prefetch:
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
            statement: Select | Count = Count(query.statement())
        else:
            statement = query.statement(count=True)
        sql, params = render(statement, self.entity._database_._provider_or_fail().dialect)
        return (yield from self.entity._database_._scalar_steps_(sql, params))  # type: ignore[no-any-return]

    def exists_steps(self) -> Steps[bool]:
        """Steps returning whether any row matches."""
        statement = self._copy(_order=(), _for_update=None, _limit=1).statement(one=True)
        sql, params = render(statement, self.entity._database_._provider_or_fail().dialect)
        return (yield from self.entity._database_._scalar_steps_(sql, params)) is not None

    def _hint(self, method: str) -> str:
        return f"await {self.entity.__name__}.select(...).{method}()"

    def fetch(self) -> list[_E]:
        """Run the query and return the list of objects."""
        return run_sync(self.fetch_steps(), self._hint("afetch"))

    async def afetch(self) -> list[_E]:
        """Awaitable ``fetch()``."""
        return await run_async(self.fetch_steps())

    def _fetch_once(self) -> list[_E]:
        """The result, shared by an iteration and a ``len()`` that follow each other (as ``list(q)`` does)."""
        generation = self.entity._database_._generation_()
        fetched = self.__dict__.pop("_fetched", None)
        if fetched is not None and fetched[0] == generation and not generation[2]:
            return fetched[1]  # type: ignore[no-any-return]
        result = self.fetch()
        self._fetched = (self.entity._database_._generation_(), result)
        return result

    def __iter__(self) -> Iterator[_E]:
        # runs on the first next(), so `p for p in query` builds a generator query without a fetch
        return QueryIterator(self)

    def __len__(self) -> int:
        return len(self._fetch_once())

    async def __aiter__(self) -> AsyncIterator[_E]:
        for obj in await self.afetch():
            yield obj

    @overload
    def __getitem__(self, key: int) -> _E: ...
    @overload
    def __getitem__(self, key: slice) -> list[_E]: ...
    def __getitem__(self, key: int | slice) -> _E | list[_E]:
        if isinstance(key, slice):
            if key.step not in (None, 1):
                raise QueryError("Query slices do not support a step")
            start, stop = key.start or 0, key.stop
            if type(start) is not int or (stop is not None and type(stop) is not int):
                raise QueryError(f"Query slices take int bounds, got {key!r}")
            if start < 0 or (stop is not None and stop < 0):
                raise QueryError("Query slices do not support negative indexes")
            limit = None if stop is None else max(stop - start, 0)
            return self.limit(limit, start).fetch() if (limit is not None or start) else self.fetch()
        if isinstance(key, int) and not isinstance(key, bool):
            if key < 0:
                raise QueryError("Query indexes must not be negative")
            result = self.limit(1, key).fetch()
            if not result:
                raise IndexError(f"Query index {key} out of range")
            return result[0]
        raise QueryError(f"Query indexes must be int or slice, got {key!r}")

    def show(self, width: int | None = None, stream: IO[str] | None = None) -> None:
        """Print the objects as a table of their attributes (lazy ones and collections left out)."""
        show_objects(self.entity, self.fetch(), width, stream)

    def first(self) -> _E | None:
        """The first object, or None."""
        return run_sync(self.first_steps(), self._hint("afirst"))

    async def afirst(self) -> _E | None:
        """Awaitable ``first()``."""
        return await run_async(self.first_steps())

    def get(self) -> _E | None:
        """The only object, None when there is none; MultipleObjectsFoundError when several."""
        return run_sync(self.get_steps(), self._hint("aget"))

    async def aget(self) -> _E | None:
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

    # -- set-based writes ------------------------------------------------------------------------

    def _update_statement(self, values: dict[str, Any]) -> tuple[UpdateWhere, list[Any]]:
        """The one UPDATE of every matching row, and the attributes it sets."""
        entity = self.entity
        name = entity.__name__
        if not values:
            raise QueryError(f"{name}.select(...).update() needs at least one attribute=value")
        if self._limit is not None or self._offset or self._for_update is not None:
            raise QueryError(
                f"update() of a {name} query cannot be combined with limit(), page(), slices or for_update()"
            )
        sets = []
        attrs = []
        for key, value in values.items():
            attr = entity._attrs_by_name_.get(key)
            if attr is None or not attr.is_column:
                raise UnknownAttributeError(
                    f"update(): {name} has no column attribute {key!r} (value {value!r})"
                )
            if attr.is_pk:
                raise ReadOnlyAttributeError(
                    f"update(): cannot change primary key attribute {attr.qualname} (value {value!r})"
                )
            if isinstance(value, Value):
                for used in value.attrs():
                    if used.entity is not entity:
                        raise QueryError(f"update(): {attr.qualname} = {value!r} reads a column of another entity")
                sets.append((attr.column, value))
            else:
                value = attr.validate(value, None)
                if value is not None and attr.is_reference:
                    value = value._pk_raw_() if hasattr(value, "_pk_raw_") else value
                sets.append((attr.column, value if value is None or attr.to_db is None else attr.to_db(value)))
            attrs.append(attr)
        return UpdateWhere(entity._table_, tuple(sets), self._where), attrs

    def update_steps(self, values: dict[str, Any]) -> Steps[int]:
        """Steps running one UPDATE of every matching row; objects in the session get the new values."""
        entity = self.entity
        self._update_statement(values)  # bad values are refused before anything is sent
        cache = require_session().cache_for(entity._database_)
        yield from cache.flush_steps()
        statement, attrs = self._update_statement(values)  # new related objects have keys now
        sql, params = render(statement, cache.provider.dialect)
        cache.generation += 1
        result = yield cache, "write", (sql, params)
        yield from refresh_columns_steps(entity, cache, attrs)
        return int(result.rowcount)

    def update(self, **values: Any) -> int:
        """``UPDATE ... SET attr = value WHERE <query>`` in one statement; returns the row count.

        Values may be expressions on the entity's columns (``age=Person.age + 1``). Pending
        changes are flushed first; objects already in the session show the new values.
        """
        return run_sync(self.update_steps(values), self._hint("aupdate"))

    async def aupdate(self, **values: Any) -> int:
        """Awaitable ``update()``."""
        return await run_async(self.update_steps(values))

    # -- streaming ---------------------------------------------------------------------------

    def yield_per(self, size: int) -> YieldPer[_E]:
        """Iterate in batches of ``size`` rows (``for`` or ``async for``) with memory bounded by a batch.

        Rows come from a server-side cursor on PostgreSQL. Objects already handed out that the
        caller no longer references, and that have no pending changes, leave the session.
        """
        if type(size) is not int or size < 1:
            raise QueryError(f"yield_per() of a {self.entity.__name__} query takes a batch size of 1 or more, got {size!r}")
        if self._prefetch:
            raise QueryError(f"yield_per() of a {self.entity.__name__} query cannot be combined with prefetch()")
        return YieldPer(self, size)

    def delete(self) -> int:
        """Delete every matching object through the session (hooks run); returns the count."""
        objects: list[Any] = self.fetch()
        for obj in objects:
            obj.delete()
        return len(objects)


class YieldPer(Generic[_E]):
    """The objects of a query fetched ``size`` rows at a time: iterate with ``for`` or ``async for``."""

    def __init__(self, query: Query[_E], size: int) -> None:
        self.query = query
        self.size = size

    def __iter__(self) -> Iterator[_E]:
        stream = stream_steps(self.query, self.size)
        hint = f"async for ... in {self.query.entity.__name__}.select(...).yield_per(n)"
        try:
            while True:
                batch = run_sync(stream.next_steps(), hint)
                if batch is None:
                    return
                yield from batch
                del batch
        finally:
            if not stream.done:
                run_sync(stream.close_steps(), hint)

    async def __aiter__(self) -> AsyncIterator[_E]:
        stream = stream_steps(self.query, self.size)
        try:
            while True:
                batch = await run_async(stream.next_steps())
                if batch is None:
                    return
                for obj in batch:
                    yield obj
                del batch
        finally:
            if not stream.done:
                await run_async(stream.close_steps())


def conditions_for(
    entity: Any, conditions: tuple[Any, ...], values: dict[str, Any], var: str | None = None
) -> tuple[Expr, ...]:
    """Expressions from positional conditions (expressions, lambdas, query text) and ``attr=value`` keywords."""
    result: list[Expr] = []
    for condition in conditions:
        if is_query_text(condition):
            result.extend(conditions_from(entity, condition, var))
        else:
            result.append(as_expr(condition))
    for condition in result:
        for other in condition.entities():
            if other is not entity:
                raise UnknownAttributeError(
                    f"A condition on {other.__name__} cannot filter {entity.__name__} objects: {condition!r}"
                )
    attrs = entity._attrs_by_name_
    for name, value in values.items():
        attr = attrs.get(name)
        if attr is None:
            raise UnknownAttributeError(
                f"Unknown attribute {name!r} of entity {entity.__name__} (value {value!r})"
            )
        result.append(expression_for(attr, "==", value))
    return tuple(result)
