"""The lazy ``Query`` of entity objects that attribute expressions build."""

from __future__ import annotations

import functools
import operator
import sys
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any, Generic, TypeVar, cast, overload

from ._impl import Column as AttributeBase
from ._impl import (
    EntityBase,
    LazyIterator,
    fetch_now,
    keyword_sql,
    select_shape,
    select_sql_now,
    use_condition_classes,
    use_entity_iterator,
)
from .display import show_objects
from .exceptions import (
    MultipleObjectsFoundError,
    QueryError,
    ReadOnlyAttributeError,
    UnknownAttributeError,
    noted,
)
from .expressions import (
    Aggregate,
    BoolOp,
    Column,
    Compare,
    Expr,
    Label,
    Not,
    Operand,
    OrderBy,
    RawSQL,
    TableColumn,
    Value,
    Var,
    _db_value,
    as_expr,
    check_entities,
    expression_for,
    function,
)
from .loading import fetch as fetch_objects
from .loading import fetch_steps, fetch_values_steps, prefetch_steps, refresh_columns_steps, stream_steps
from .results import QueryResult, query_result
from .session import require_session
from .sql import AggregateOf, Count, DeleteWhere, Select, UpdateWhere, render
from .steps import Steps, run_async, run_sync
from .translator import conditions_from, is_query_text, order_from, use_query_classes

INT64_MAX = 2**63 - 1

__all__ = [
    "Query",
    "QueryIterator",
    "caller_namespace",
    "check_entities",
    "conditions_for",
    "keyword_get_sql",
]

#: the entity class a query selects (``Person.select()`` is a ``Query[Person]``)
_E = TypeVar("_E")


def caller_namespace(depth: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
    """The globals and locals of the caller of the function calling this one (for ``$name`` in raw SQL)."""
    frame = sys._getframe(depth)
    return frame.f_globals, frame.f_locals


class QueryIterator(LazyIterator):
    """Iterates a query's objects, fetched on the first ``next()``; a generator query reads ``query``.

    Iterating an entity gives one without a query (``query`` is None until read), made in C by
    the entity's metaclass (``use_entity_iterator``): a generator query over the entity then
    builds its own query directly.
    """

    __slots__ = ("_query", "entity")

    def __init__(self, query: Query[Any] | None, entity: Any = None) -> None:
        self._query = query
        self.entity = entity if query is None else query.entity

    @property
    def query(self) -> Query[Any]:
        """The query iterated (for an entity: all its objects)."""
        query = self._query
        if query is None:
            query = self._query = Query(self.entity)
        return query

    def _items_(self) -> Any:
        return self.query._fetch_once()


_new_query = object.__new__


def query_of(entity: Any, where: tuple[Expr, ...] = ()) -> Query[Any]:
    """``Query(entity, where)`` without calling the class, which reaches ``__init__`` through C:
    the queries ``select()`` makes are made here."""
    query: Query[Any] = _new_query(Query)
    query.entity = entity
    if where:
        query._where = where
    return query


class Query(Generic[_E]):
    """A lazy SELECT of entity objects; every refinement returns a new Query."""

    # A query's state: what it does not change from a bare query is read from these class
    # defaults, so a query holds (and a refinement copies) only what it changed.
    _where: tuple[Expr, ...] = ()
    _order: tuple[OrderBy, ...] = ()
    _limit: int | None = None
    _offset = 0
    _for_update: str | None = None
    _prefetch: tuple[Any, ...] = ()
    #: the name a generator query gives its objects (``p`` in ``p for p in Person``)
    _var: str | None = None
    #: what a query of values selects (values, or the entity for its objects), None for objects
    _select: tuple[Any, ...] | None = None
    #: other objects the query ranges over (``Var``: the other ``for`` clauses of a query of values)
    _sources: tuple[Any, ...] = ()
    #: of ``left_join``: the ON condition of each of the first ``_sources`` (LEFT JOINed), None if none
    _joined_on: tuple[Any, ...] = ()
    #: over a grouped query of values: its groups (the values it grouped by), kept whatever is selected
    _group_by: tuple[Any, ...] = ()
    #: the text of what a generator query selects (for messages about queries over it)
    _selected_text: str | None = None
    #: whether each result is a tuple of the selected items (else the one item)
    _tuple = False
    #: DISTINCT asked for (True), refused (False), or as Pony decides (None)
    _distinct: bool | None = None

    def __init__(self, entity: type[_E], where: tuple[Expr, ...] = ()) -> None:
        self.entity: Any = entity
        if where:
            self._where = where

    def _copy(self, **changes: Any) -> Query[_E]:
        query: Query[_E] = _new_query(Query)
        state = self.__dict__.copy()
        if "_fetched" in state:
            del state["_fetched"]  # a result this query fetched is not the new one's
        state.update(changes)
        query.__dict__ = state
        return query

    def _with(self, name: str, value: Any) -> Query[_E]:
        """``_copy()`` changing one thing (the refinements' path: no keywords to gather)."""
        query: Query[_E] = _new_query(Query)
        state = self.__dict__.copy()
        if "_fetched" in state:
            del state["_fetched"]
        state[name] = value
        query.__dict__ = state
        return query

    def __repr__(self) -> str:
        return f"<Query {self.entity.__name__}: {self.sql()[0]}>"

    # -- refinement ----------------------------------------------------------------------------

    def filter(self, *conditions: Any, **values: Any) -> Query[_E]:
        """Add conditions (ANDed): expressions, ``attr=value`` keywords, lambdas or query text."""
        selected = self._selected_text if self._select is not None else None
        return self._copy(
            _where=self._where + conditions_for(self.entity, conditions, values, self._var, selected)
        )

    def where(self, *conditions: Any, **values: Any) -> Query[_E]:
        """``filter()`` on a query written with a variable: a lambda's parameter must be its name."""
        for condition in conditions:
            code = getattr(condition, "__code__", None)
            if (
                code is not None
                and self._var is not None
                and code.co_argcount == 1
                and code.co_varnames[0] != self._var
            ):
                raise QueryError(
                    f"Lambda argument `{code.co_varnames[0]}` does not correspond to any variable in original query"
                )
        return self.filter(*conditions, **values)

    def _named(self, var: str, conditions: tuple[Expr, ...] = ()) -> Query[_E]:
        """This query with its objects named ``var`` (for conditions without a lambda parameter),
        refined by ``conditions`` already built on its entity's attributes."""
        return self._copy(_var=var, _where=self._where + conditions)

    def _selecting(self, items: tuple[Any, ...], as_tuple: bool) -> Query[Any]:
        """This query selecting ``items`` (values, or the entity for its objects) instead of objects."""
        return self._copy(_select=items, _tuple=as_tuple)  # type: ignore[return-value]

    def values(self, *items: Any) -> Query[Any]:
        """The query selecting these values (attributes, expressions, aggregates, the entity for its
        objects) instead of the objects: one value per row, or a tuple of several."""
        if not items:
            raise QueryError(f"values() of a {self.entity.__name__} query takes one or more values")
        selected = []
        for item in items:
            if item is self.entity or isinstance(item, Value):
                selected.append(item)
            elif isinstance(item, Operand) and getattr(item, "entity", None) is self.entity:
                selected.append(item._value_())
            else:
                raise QueryError(
                    f"values() takes attributes or expressions of {self.entity.__name__}, or the entity, got {item!r}"
                )
        return self._selecting(tuple(selected), len(items) > 1)

    def distinct(self) -> Query[_E]:
        """The query with duplicate rows removed (``SELECT DISTINCT``)."""
        return self._copy(_distinct=True)

    def without_distinct(self) -> Query[_E]:
        """The query keeping duplicate rows (a query of values removes them by default, as Pony does)."""
        return self._copy(_distinct=False)

    def order_by(self, *items: Any) -> Query[_E]:
        """Order by attributes or values (ascending), ``desc(...)``, or 1-based positions of the
        selected items (negative for descending); replaces an earlier order."""
        if len(items) == 1:
            item = items[0]
            if item is None:  # Pony's order_by(None): no order
                return self._copy(_order=())
            known = self.entity._orders_.get(id(item))
            if known is not None and known[0] is item:
                return self._with("_order", known[1])  # the ascending order of an attribute, checked before
        order = []
        translated: list[Any] = []
        selected = self._selected_text if self._select is not None else None
        for item in items:
            translated.extend(
                order_from(self.entity, item, self._var, selected) if is_query_text(item) else (item,)
            )
        for item in translated:
            if getattr(item, "__name__", None) in ("desc", "asc") and isinstance(
                getattr(item, "__self__", None), (Value, Operand)
            ):
                item = item()  # Pony accepts the method itself: order_by(Person.age.desc)
            if type(item) is int:
                if item == 0 or abs(item) > len(self._select or (self.entity,)):
                    raise QueryError(
                        f"order_by({item}): a position is counted from 1 (negative for descending) up to "
                        f"the {len(self._select or (self.entity,))} selected item(s) of the query"
                    )
                item = OrderBy(abs(item), descending=item < 0)
            elif isinstance(item, Value):
                item = OrderBy(item, descending=False)
            if isinstance(item, OrderBy):
                attr = item.attr
                if not isinstance(attr, (Value, int)) and not _owns(self.entity, attr):
                    raise UnknownAttributeError(
                        f"order_by(): {item.attr!r} is not an attribute of entity {self.entity.__name__}"
                    )
                order.append(item)
            elif _owns(self.entity, item):
                order.append(OrderBy(item, descending=False))
                if len(translated) == 1 and isinstance(item, AttributeBase):
                    return self._with("_order", _shared_order(self.entity, item, order[0]))
            elif isinstance(item, AttributeBase):
                raise UnknownAttributeError(
                    f"order_by(): {item!r} is not an attribute of entity {self.entity.__name__}"
                )
            else:
                raise QueryError(f"order_by() takes attributes of {self.entity.__name__}, got {item!r}")
        return self._copy(_order=tuple(order))

    sort_by = order_by

    def limit(self, limit: int | None = None, offset: int | None = None) -> Query[_E]:
        """At most ``limit`` objects, skipping ``offset``."""
        if offset is None and type(limit) is int and 0 <= limit <= INT64_MAX:
            return self._with("_limit", limit)  # the most frequent: a limit alone
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
        """Load what these name with the whole result, one query per attribute instead of one per object.

        A relationship attribute loads its related objects (``Post.author``, ``User.posts``),
        of the result and of the objects prefetched with it; a lazy column attribute is read
        with the rows of its entity; an entity class loads every reference to it:
        ``Post.select().prefetch(Post.author, User.posts, Post.body)``, ``prefetch(User)``.
        """
        for item in attrs:
            is_entity = isinstance(item, type) and issubclass(item, EntityBase)
            if not (
                is_entity or isinstance(item, AttributeBase) or getattr(item, "is_collection", False) is True
            ):
                raise QueryError(
                    f"Argument of prefetch() query method must be entity class or attribute. Got: {item!r}"
                )
            database = item._database_ if is_entity else item.entity._database_
            if database is not self.entity._database_:
                raise QueryError(
                    f"prefetch({item!r}): it belongs to another database than {self.entity.__name__}"
                )
        return self._copy(
            _prefetch=self._prefetch + tuple(item for item in attrs if item not in self._prefetch)
        )

    # -- SQL -------------------------------------------------------------------------------------

    def _layout(self) -> tuple[tuple[Value, ...], list[tuple[Any, int, int]]]:
        """The selected values, and for each selected item its columns among them."""
        values: list[Value] = []
        layout = []
        for item in self._select or (self.entity,):
            start = len(values)
            if isinstance(item, type):
                values.extend(TableColumn(name) for name in cast(Any, item)._select_columns_)
            elif type(item) is Var:  # an object of another `for` clause
                values.extend(TableColumn(name, item) for name in item.entity._select_columns_)
                item = item.entity
            else:
                values.append(item)
            layout.append((item, start, len(values)))
        return tuple(values), layout

    def _order_keys(self, layout: list[tuple[Any, int, int]]) -> tuple[tuple[Any, bool], ...]:
        keys = []
        for item in self._order:
            for key, descending in item.keys():
                if type(key) is int:
                    key = layout[key - 1][1] + 1  # the position of the item's first column
                keys.append((key, descending))
        return tuple(keys)

    def statement(self, count: bool = False, one: bool = False) -> Select:
        """The SELECT of the objects or values (or of ``COUNT(*)`` when ``count``, of 1 when ``one``)."""
        entity = self.entity
        where = self._where + entity._kind_filter_
        having: tuple[Any, ...] = ()
        if any(getattr(c, "is_aggregate", _no)() for c in where):
            # each part of an AND goes where it belongs: aggregates to HAVING, the rest to WHERE
            where = tuple(_conjuncts(where))
            having = tuple(c for c in where if getattr(c, "is_aggregate", _no)())
            where = tuple(c for c in where if all(c is not h for h in having))
        # raw SQL fragments name the table by the query's variable, as Pony's do (``p.age``)
        alias = None
        if _mentions_raw(self):
            # without a variable, Pony's: the capitals of the entity's name (``p`` for Person)
            alias = self._var or "".join(c for c in entity.__name__ if c.isupper()).lower() or entity.__name__
        if self._select is None and not having and not self._sources:
            return Select(
                entity._table_,
                entity._select_columns_,
                alias=alias,
                where=where,
                order=() if count or one else self._order_keys([(entity, 0, 1)]),
                limit=self._limit,
                offset=self._offset,
                for_update=self._for_update,
                count=count,
                one=one,
                distinct=bool(self._distinct) and not (count or one),
            )
        values, layout = self._layout()
        aggregated = any(value.is_aggregate() for value in values)
        group_by = tuple(v for v in values if not v.is_aggregate()) if aggregated or having else ()
        if self._group_by:  # the groups of the query this one reads, and the values selected of them
            group_by = self._group_by + tuple(
                v for v in values if not v.is_aggregate() and all(v is not g for g in self._group_by)
            )
        distinct = self._distinct
        if distinct is None:
            distinct = (
                not aggregated and self._auto_distinct() and all(type(o.attr) is int for o in self._order)
            )
        return Select(
            entity._table_,
            values=values,
            alias=alias,
            where=where,
            group_by=group_by,
            having=having,
            distinct=distinct and not (count or one),
            order=() if count or one else self._order_keys(layout),
            limit=self._limit,
            offset=self._offset,
            for_update=self._for_update,
            count=count,
            one=one,
            sources=self._sources,
            joined_on=self._joined_on,
        )

    def _auto_distinct(self) -> bool:
        """Whether Pony removes duplicates by default: when the selected items lack the object's key
        (or, of several ``for`` clauses, lack any of their objects)."""
        if self._select is None:
            return False
        if self._sources and not all(
            any(item is source for item in self._select) for source in self._sources
        ):
            return True
        if any(item is self.entity for item in self._select):
            return False
        selected = {id(item.attr) for item in self._select if isinstance(item, Column)}
        return not all(id(key) in selected for key in self.entity._pk_attrs_)

    def sql(self) -> tuple[str, list[Any]]:
        """The SELECT statement and its parameters."""
        return self._sql(self._limit)

    def _sql(self, limit: int | None) -> tuple[str, list[Any]]:
        """``sql()`` of this query with ``limit`` as its limit (``query[:n]`` makes no query to say so)."""
        provider = self.entity._database_.provider
        if provider is None:
            provider = self.entity._database_._provider_or_fail()
        dialect = provider.dialect
        if self._select is None and not self._sources:
            found = select_sql_now(self, dialect, False, limit)  # a text kept: in one call
            return plain_select_sql(self, dialect, limit=limit) if found is None else found
        return render(self._limited(limit).statement(), dialect)

    def _limited(self, limit: int | None) -> Query[_E]:
        """This query with ``limit`` as its limit (itself when that is its limit)."""
        return self if limit == self._limit else self._with("_limit", limit)

    # -- execution: steps, run blocking or awaited ------------------------------------------------

    def fetch_steps(self) -> Steps[list[Any]]:
        """Steps that run the query (and its prefetches) and return the objects (or values)."""
        sql, params = self.sql()
        if self._select is not None:
            columns = yield from fetch_values_steps(
                self.entity._database_,
                sql,
                params,
                self._layout()[1],
                for_update=self._for_update is not None,
            )
            if self._prefetch:
                found = [v for column in columns for v in column if isinstance(v, EntityBase)]
                yield from prefetch_steps(found, self._prefetch)
            return list(zip(*columns)) if self._tuple else columns[0]
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

    def count_steps(self, distinct: bool | None = None) -> Steps[int]:
        """Steps returning the number of matching rows (of distinct values, for a query of one value)."""
        query = self._copy(_order=(), _for_update=None)
        statement: Select | Count
        if query._select is not None:
            inner = query.statement()
            single = len(inner.values) == 1 and not query._tuple
            if single and not (inner.group_by or inner.having or inner.limit is not None or inner.offset):
                counted = Aggregate("count", inner.values[0], distinct=distinct is not False)
                statement = Select(
                    inner.table,
                    values=(counted,),
                    where=inner.where,
                    sources=inner.sources,
                    joined_on=inner.joined_on,
                )
            else:
                statement = Count(inner)
        elif query._limit is not None or query._offset or query._distinct or distinct:
            # count(distinct=True) of objects: the distinct rows, as Pony counts them
            statement = Count(query._copy(_distinct=query._distinct or distinct).statement())
        else:
            sql, params = plain_select_sql(
                query, self.entity._database_._provider_or_fail().dialect, count=True
            )
            return int((yield from self.entity._database_._scalar_steps_(sql, params)) or 0)
        sql, params = render(statement, self.entity._database_._provider_or_fail().dialect)
        return int((yield from self.entity._database_._scalar_steps_(sql, params)) or 0)

    def aggregate_steps(self, name: str, distinct: bool | None = None, sep: str | None = None) -> Steps[Any]:
        """Steps returning ``name`` (sum, min, max, avg, group_concat) of a query's one value
        (``group_concat`` of a query of objects: of their primary keys)."""
        if name == "group_concat" and self._select is None:
            keys = self.entity._pk_attrs_
            if len(keys) != 1:
                raise QueryError("`group_concat` cannot be used with entity with composite primary key")
            return (
                yield from self._selecting((Column(keys[0]),), False).aggregate_steps(name, distinct, sep)
            )
        if self._select is None or self._tuple or isinstance(self._select[0], type):
            raise noted(
                QueryError(
                    f"{'Single attribute' if self._tuple else 'Attribute'} should be specified for "
                    f"{name!r} aggregate function"
                ),
                f"{name}() needs a query of one value, such as select(p.attr for p in {self.entity.__name__}); "
                f"this query selects {'tuples' if self._tuple else 'objects'}",
            )
        # the order stays for a limited query: it says which rows the limit keeps
        limited = self._limit is not None or self._offset
        inner = self._copy(_order=self._order if limited else (), _for_update=None).statement()
        value = inner.values[0]
        if inner.group_by or inner.having or inner.limit is not None or inner.offset:
            aggregate = Aggregate(name, Label("q", "v", value.py_type), bool(distinct), sep)
            statement: Select | AggregateOf = AggregateOf(_labelled(inner), aggregate)
        else:
            aggregate = Aggregate(name, value, bool(distinct), sep)
            statement = Select(
                inner.table,
                values=(aggregate,),
                where=inner.where,
                sources=inner.sources,
                joined_on=inner.joined_on,
            )
        sql, params = render(statement, self.entity._database_._provider_or_fail().dialect)
        return aggregate.from_db((yield from self.entity._database_._scalar_steps_(sql, params)))

    def exists_steps(self) -> Steps[bool]:
        """Steps returning whether any row matches."""
        statement = self._copy(_order=(), _for_update=None, _limit=1).statement(one=True)
        sql, params = render(statement, self.entity._database_._provider_or_fail().dialect)
        return (yield from self.entity._database_._scalar_steps_(sql, params)) is not None

    def _hint(self, method: str) -> str:
        return f"await {self.entity.__name__}.select(...).{method}()"

    def fetch(self) -> QueryResult[_E]:
        """Run the query and return its objects (or values) as a read-only ``QueryResult``."""
        return self._fetch(self._limit)

    def _fetch(self, limit: int | None) -> QueryResult[_E]:
        """``fetch()`` of this query with ``limit`` as its limit (``query[:n]`` makes no query to say so)."""
        entity = self.entity
        hint = entity._afetch_hint_
        if self._select is None and not self._prefetch and self._for_update is None:
            sql, params = self._sql(limit)  # one statement, run directly: in one call when it can
            found = fetch_now(entity, sql, params)
            if found is None:
                found = fetch_objects(entity, sql, params, hint)
            return query_result(found, entity)
        query = self._limited(limit)
        return QueryResult(run_sync(query.fetch_steps(), hint), query._result_entity())

    async def afetch(self) -> QueryResult[_E]:
        """Awaitable ``fetch()``."""
        return QueryResult(await run_async(self.fetch_steps()), self._result_entity())

    def _result_entity(self) -> Any:
        """The entity whose objects the query returns, None when it returns values."""
        return self.entity if self._select is None else None

    def _fetch_once(self) -> QueryResult[_E]:
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
    def __getitem__(self, key: slice) -> QueryResult[_E]: ...
    def __getitem__(self, key: int | slice) -> _E | QueryResult[_E]:
        if type(key) is slice:
            start, stop = key.start, key.stop
            if start is None and type(stop) is int and 0 <= stop <= INT64_MAX and key.step is None:
                return self._fetch(stop)  # the most frequent: [:n]
        if isinstance(key, slice):
            if key.step not in (None, 1):
                raise QueryError("Query slices do not support a step")
            start, stop = key.start or 0, key.stop
            if type(start) is not int or (stop is not None and type(stop) is not int):
                raise QueryError(f"Query slices take int bounds, got {key!r}")
            if start < 0:
                raise QueryError("Parameter 'start' of slice object cannot be negative")
            if stop is not None and stop < 0:
                raise QueryError("Parameter 'stop' of slice object cannot be negative")
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

    def count(self, distinct: bool | None = None) -> int:
        """The number of matching rows (of distinct non-null values, for a query of one value)."""
        return run_sync(self.count_steps(distinct), self._hint("acount"))

    async def acount(self, distinct: bool | None = None) -> int:
        """Awaitable ``count()``."""
        return await run_async(self.count_steps(distinct))

    def sum(self, distinct: bool | None = None) -> Any:
        """The sum of a query's one value (0 when no row matches)."""
        return run_sync(self.aggregate_steps("sum", distinct), self._hint("asum"))

    async def asum(self, distinct: bool | None = None) -> Any:
        """Awaitable ``sum()``."""
        return await run_async(self.aggregate_steps("sum", distinct))

    def min(self) -> Any:
        """The smallest of a query's one value (None when no row matches)."""
        return run_sync(self.aggregate_steps("min"), self._hint("amin"))

    async def amin(self) -> Any:
        """Awaitable ``min()``."""
        return await run_async(self.aggregate_steps("min"))

    def max(self) -> Any:
        """The largest of a query's one value (None when no row matches)."""
        return run_sync(self.aggregate_steps("max"), self._hint("amax"))

    async def amax(self) -> Any:
        """Awaitable ``max()``."""
        return await run_async(self.aggregate_steps("max"))

    def avg(self, distinct: bool | None = None) -> Any:
        """The average of a query's one value, a float (None when no row matches)."""
        return run_sync(self.aggregate_steps("avg", distinct), self._hint("aavg"))

    async def aavg(self, distinct: bool | None = None) -> Any:
        """Awaitable ``avg()``."""
        return await run_async(self.aggregate_steps("avg", distinct))

    def group_concat(self, sep: str | None = None, distinct: bool | None = None) -> Any:
        """The texts of a query's one value joined by ``sep`` (a comma by default); None when no row matches."""
        return run_sync(self.aggregate_steps("group_concat", distinct, sep), self._hint("agroup_concat"))

    async def agroup_concat(self, sep: str | None = None, distinct: bool | None = None) -> Any:
        """Awaitable ``group_concat()``."""
        return await run_async(self.aggregate_steps("group_concat", distinct, sep))

    def random(self, limit: int) -> list[Any]:
        """``limit`` rows chosen at random."""
        return self._copy(_order=(OrderBy(function("random"), False),)).limit(limit).fetch()

    async def arandom(self, limit: int) -> list[Any]:
        """Awaitable ``random()``."""
        return await self._copy(_order=(OrderBy(function("random"), False),)).limit(limit).afetch()

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
                        raise QueryError(
                            f"update(): {attr.qualname} = {value!r} reads a column of another entity"
                        )
                sets.append((attr.column, value))
            else:
                value = attr.validate(value, None)
                if value is not None and attr.is_reference:
                    value = value._pk_raw_() if hasattr(value, "_pk_raw_") else value
                sets.append(
                    (attr.column, value if value is None or attr.to_db is None else attr.to_db(value))
                )
            attrs.append(attr)
        return UpdateWhere(
            entity._table_, tuple(sets), self._where + entity._kind_filter_, entity._pk_columns_
        ), attrs

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
            raise QueryError(
                f"yield_per() of a {self.entity.__name__} query takes a batch size of 1 or more, got {size!r}"
            )
        if self._prefetch:
            raise QueryError(
                f"yield_per() of a {self.entity.__name__} query cannot be combined with prefetch()"
            )
        return YieldPer(self, size)

    def delete(self, bulk: bool = False) -> int:
        """Delete every matching object through the session (hooks and cascades run); returns the count.

        With ``bulk=True`` one ``DELETE ... WHERE`` statement deletes the rows instead: no object
        is loaded, no hook runs, and objects of the entity already in the session are not updated.
        """
        if bulk:
            return run_sync(self.bulk_delete_steps(), self._hint("adelete"))
        objects: list[Any] = self._objects_to_delete().fetch()
        for obj in objects:
            obj.delete()
        return len(objects)

    async def adelete(self, bulk: bool = False) -> int:
        """Awaitable ``delete()``."""
        if bulk:
            return await run_async(self.bulk_delete_steps())
        objects: list[Any] = await self._objects_to_delete().afetch()
        for obj in objects:
            obj.delete()
        return len(objects)

    def _objects_to_delete(self) -> Query[_E]:
        if self._select is not None:
            if self._selected_text is not None:
                selected = f"({self._selected_text})" if self._tuple else self._selected_text
                raise noted(
                    QueryError(f"Delete query should be applied to a single entity. Got: {selected}"),
                    f"delete() deletes objects: this query of {self.entity.__name__} selects values",
                )
            raise QueryError(f"delete() deletes objects: this query of {self.entity.__name__} selects values")
        return self

    def bulk_delete_steps(self) -> Steps[int]:
        """Steps deleting the matching rows with one statement; returns the number of rows."""
        self._objects_to_delete()
        if (
            self._limit is not None
            or self._offset
            or any(getattr(c, "is_aggregate", _no)() for c in self._where)
        ):
            raise QueryError(
                f"delete(bulk=True) of {self.entity.__name__} takes a query without limit, offset or aggregates"
            )
        database = self.entity._database_
        sql, params = render(
            DeleteWhere(
                self.entity._table_, self._where + self.entity._kind_filter_, self.entity._pk_columns_
            ),
            database._provider_or_fail().dialect,
        )
        cache = require_session().cache_for(database)
        yield from cache.flush_steps()
        cache.generation += 1
        result = yield cache, "write", (sql, params)
        return int(result.rowcount)


def _no() -> bool:
    return False


def _shared_order(entity: Any, attr: Any, item: OrderBy) -> tuple[OrderBy, ...]:
    """The order of ``order_by(attr)``, kept in ``entity._orders_`` for every query of ``entity``
    ordered by ``attr``: by the attribute's id, ``(attr, order, keys)``, and by the order's id,
    ``(order, order, keys)``; ``keys`` are its ORDER BY keys, None when one is not a column name
    (then a SELECT of it is not kept per shape). Both ids are of objects the entry holds."""
    order = (item,)
    keys: tuple[tuple[Any, bool], ...] | None = item.keys()
    if not all(type(name) is str for name, _ in keys):  # type: ignore[union-attr]
        keys = None
    known = entity._orders_
    if len(known) >= SELECT_SQL_LIMIT:
        known.clear()
    known[id(attr)] = (attr, order, keys)
    known[id(order)] = (order, order, keys)
    return order


def _conjuncts(conditions: Any) -> Any:
    """The conditions with every AND taken apart."""
    for condition in conditions:
        if isinstance(condition, BoolOp) and condition.op == "AND":
            yield from _conjuncts(condition.items)
        else:
            yield condition


def _mentions_raw(query: Query[Any]) -> bool:
    """Whether a raw SQL fragment is among the query's conditions, values or order."""
    return (
        any(getattr(c, "raw", False) for c in query._where)
        or any(getattr(v, "raw", False) for v in query._select or ())
        or any(getattr(o.attr, "raw", False) for o in query._order)
    )


def _labelled(statement: Select) -> Select:
    """``statement`` with its one value named ``v`` and no order (for an aggregate around it)."""
    return Select(
        statement.table,
        values=statement.values,
        label="v",
        where=statement.where,
        group_by=statement.group_by,
        having=statement.having,
        distinct=statement.distinct,
        order=statement.order,
        limit=statement.limit,
        offset=statement.offset,
        sources=statement.sources,
    )


def _owns(entity: Any, attr: Any) -> bool:
    """Whether ``attr`` is an attribute of ``entity`` (declared by it or by a base entity)."""
    owner = getattr(attr, "entity", None)
    return owner is entity or (
        isinstance(owner, type) and isinstance(entity, type) and issubclass(entity, owner)
    )


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
    entity: Any,
    conditions: tuple[Any, ...],
    values: dict[str, Any],
    var: str | None = None,
    selected: str | None = None,
) -> tuple[Expr, ...]:
    """Expressions from positional conditions (expressions, lambdas, query text) and ``attr=value``
    keywords; ``selected``: the source of the items a query of values selects, which a lambda
    taking one parameter per item reads."""
    result: list[Expr] = []
    for index, condition in enumerate(conditions):
        if is_query_text(condition):
            result.extend(conditions_from(entity, condition, var, selected))
        elif index == 0 and not isinstance(condition, (Expr, RawSQL)):
            raise noted(
                QueryError(
                    f"The first positional argument must be lambda function or its text source. Got: {condition!r}"
                ),
                f"A condition of {entity.__name__} is an attribute expression, a lambda or its text",
            )
        else:
            result.append(as_expr(condition))
    check_entities(entity, result)
    attrs = entity._attrs_by_name_
    for name, value in values.items():
        attr = attrs.get(name)
        if attr is None:
            collection = getattr(entity, "_relations_by_name_", {}).get(name)
            if collection is not None and collection.is_collection:
                raise noted(
                    UnknownAttributeError(
                        f"Collection attribute {collection.qualname} cannot be specified as search criteria"
                    ),
                    f"value {value!r}; a condition on members is written in a query: "
                    f"select(x for x in {entity.__name__} if ... in x.{name})",
                )
            raise UnknownAttributeError(
                f"Unknown attribute {name!r} of entity {entity.__name__} (value {value!r})"
            )
        result.append(expression_for(attr, "==", value))
    return tuple(result)


#: the value types (of attributes and of keyword values) whose ``get(attr=value, ...)`` shares a
#: cached SELECT text per shape: values that bind as themselves, never an expression or an object
_PLAIN_TYPES = frozenset({str, int, float, bool, bytes})


#: ``value is None``, as a function ``map`` calls without a Python frame
_is_none = functools.partial(operator.is_, None)


def keyword_get_sql(entity: Any, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """The text and parameters of ``entity.select(**values).limit(2)``, the query of ``get(**values)``.

    The text is kept per shape (the keywords, in order, and which values are None) in the
    entity's ``_keyword_sql_``, so a repeated ``get(email=...)`` binds its values to the text
    already made instead of building and rendering the query again. A shape is kept only when
    every attribute and value is of a plain type and the parameters the query made are the
    values converted for their attributes followed by constants (a subclass's discriminator
    codes, the limit), checked on the query that made it. Values that pass their attributes'
    ``plain_check`` bind as given (``keyword_sql``, one call), as validating them would leave them as they are.
    """
    provider = entity._database_.provider
    if provider is not None:
        found = keyword_sql(entity._keyword_sql_, values, provider.dialect)
        if found is not None:
            return found
    shape = (tuple(values), tuple(map(_is_none, values.values())))
    entry = entity._keyword_sql_.get(shape)
    if entry is not None:
        dialect, sql, attrs, as_given, tail = entry
        if dialect is entity._database_.provider.dialect:
            # values bound converted for their attributes
            params = []
            for attr, value in zip(attrs, values.values()):
                if value is not None:
                    if type(value) not in _PLAIN_TYPES:
                        break  # bound otherwise (an expression, an object): the query says how
                    params.append(_db_value(attr, value))
            else:
                params.extend(tail)
                return sql, params
    entity._database_._require_mapping_(entity)
    dialect = entity._database_._provider_or_fail().dialect
    query = entity.select(**values).limit(2)
    sql, params = query.sql()
    attrs = tuple(entity._attrs_by_name_[name] for name in values)
    if all(
        attr.is_column and not attr.is_reference and attr.width == 1 and attr.py_type in _PLAIN_TYPES
        for attr in attrs
    ) and all(value is None or type(value) in _PLAIN_TYPES for value in values.values()):
        bound = [_db_value(attr, value) for attr, value in zip(attrs, values.values()) if value is not None]
        if len(params) >= len(bound) and all(type(a) is type(b) and a == b for a, b in zip(bound, params)):
            as_given = all(attr.to_db is None for attr in attrs)
            entity._keyword_sql_[shape] = (dialect, sql, attrs, as_given, tuple(params[len(bound) :]))
    return sql, params


#: most SELECT texts kept per entity: a query paged through many offsets makes one per page
SELECT_SQL_LIMIT = 256
#: ``plain_select_sql``'s default limit: the query's own
_OWN_LIMIT: Any = object()


def plain_select_sql(
    query: Query[Any], dialect: Any, count: bool = False, limit: Any = _OWN_LIMIT
) -> tuple[str, list[Any]]:
    """The text and parameters of the SELECT of ``query``'s objects (of ``COUNT(*)`` when ``count``),
    with ``limit`` as its limit when given.

    A query whose conditions are comparisons of the entity's own columns with plain values,
    combined with and/or/not, keeps its text per shape in the entity's ``_select_sql_``: the
    conditions' structure, columns and operators, which values are None, the length of each IN
    list, the order, limit, offset, locking and DISTINCT. A repeated query of that shape binds its
    values to the text already made instead of building and rendering the statement again. A shape
    is kept only when the parameters the statement made are those values, in order, followed by
    constants (the limit and offset), checked on the query that made it.
    """
    if limit is _OWN_LIMIT:
        limit = query._limit
    found = select_sql_now(query, dialect, count, limit)
    if found is not None:
        return found
    entity = query.entity
    order = query._order
    if count or not order:
        keys: Any = ()
    else:
        known = entity._orders_.get(id(order))
        if known is not None and known[0] is order:  # order_by(attr): its keys, found before
            keys = known[2]
        else:
            keys = query._order_keys([(entity, 0, 1)])
            if not all(type(item) is str or type(item) is int for item, _ in keys):
                keys = None
        if keys is None:
            return render(query._limited(limit).statement(count=count), dialect)
    shaped = select_shape(query, count, limit, keys)
    if shaped is None:
        return render(query._limited(limit).statement(count=count), dialect)
    shape, params = shaped
    entry = entity._select_sql_.get(shape)
    if entry is not None and entry[0] is dialect:
        params.extend(entry[2])
        return entry[1], params
    sql, rendered = render(query._limited(limit).statement(count=count), dialect)
    bound = len(params)
    if len(rendered) >= bound and all(type(a) is type(b) and a == b for a, b in zip(params, rendered)):
        known = entity._select_sql_
        if len(known) >= SELECT_SQL_LIMIT:
            known.clear()
        known[shape] = (dialect, sql, tuple(rendered[bound:]))
    return sql, rendered


# the translator builds the queries of repeated generators directly (it cannot import this module,
# which imports it): it is given how to make a query, and the class of an entity's iterator
use_query_classes(query_of, QueryIterator)
use_entity_iterator(QueryIterator)
use_condition_classes(Compare, BoolOp, Not)
